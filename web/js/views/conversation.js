// The open conversation: its header, the message list, who is typing, and the composer.
// A room opens where its reader left off (a "New" divider above the first unread
// message); older messages load as you scroll up, without jumping; the view follows new
// messages only when you are at the bottom. A message counts as read once it has been on
// screen while the page is visible and focused. Each message takes the focus (Tab into
// the list, then the arrow keys), which shows its actions. A search result opens its room
// at that message (`landAt`), however far back: the window then shows the run of
// messages held around it (state.js), which grows both ways as you scroll until it joins
// the newest.

import { bdi, dayLabel, h, keepingFocus, replace } from '../dom.js';
import { icon } from '../icons.js';
import { Composer } from './composer.js';
import { openBlockDialog, openMembersDialog } from './dialogs.js';
import { messageElement, messageKey, receiptOf } from './message.js';
import { onPresenceTick, presenceLabel } from './presence.js';

export { avatar } from './message.js';

const GROUP_WITHIN_MS = 5 * 60_000;
const NEAR_EDGE_PX = 80;
/** The most messages the page holds at once, and how many it takes in as you scroll. */
const WINDOW_MAX = 150;
const WINDOW_PAGE = 50;
/** Messages shown above the first unread when a room opens there, and the gap above it. */
const CONTEXT_ABOVE = 10;
/** How long a message opened from search stays highlighted (web/css/search.css fades it). */
const HIGHLIGHT_MS = 2_500;
const LANDING_MARGIN_PX = 12;
/** What the bar over the conversation says while the connection is down. */
const CONNECTION_NOTICES = {
  reconnecting: 'Reconnecting… Messages you write will be sent when the connection is back.',
  offline: 'Offline. Messages you write will be sent when the connection is back.',
};

export class Conversation {
  constructor(model, client, openSidebar) {
    this.model = model;
    this.client = client;
    this.roomId = null;
    this.title = h('h2', { id: 'room-title' });
    this.meta = h('span', { class: 'meta', attrs: { 'data-testid': 'room-meta' } });
    this.membersButton = h('button', { class: 'btn', text: 'Members', on: { click: () => openMembersDialog(this.model, this.client, this.roomId) } });
    // Who added you to a group, beside the way out: built once, so that re-rendering the
    // header keeps the focus on Leave.
    this.adderName = h('bdi');
    this.leaveButton = h('button', { class: 'btn danger', type: 'button', text: 'Leave', on: { click: () => this.leave() } });
    this.addedBy = h('span', { class: 'added-by', hidden: true, attrs: { 'data-testid': 'added-by' } },
      h('span', {}, 'Added by ', this.adderName), this.leaveButton);
    this.blockButton = h('button', { class: 'btn danger', type: 'button', text: 'Block', hidden: true, on: { click: () => this.blockPeer() } });
    this.header = h('header', { class: 'room-head' },
      h('button', { class: 'icon-btn menu-toggle', attrs: { 'aria-label': 'Show rooms' }, on: { click: openSidebar } }, icon('menu')),
      this.title, this.meta, this.addedBy, h('span', { class: 'spacer' }), this.blockButton, this.membersButton);
    this.connectionBar = h('div', { class: 'connection-bar', attrs: { role: 'status', 'data-testid': 'connection-bar' } });
    this.list = h('div', { class: 'messages', attrs: { role: 'log', 'aria-labelledby': 'room-title', tabindex: '0' }, on: { scroll: () => this.onScroll(), keydown: (event) => this.onListKey(event) } });
    this.newMessages = h('button', { class: 'btn primary new-messages', text: 'New messages ↓', hidden: true, on: { click: () => this.scrollToBottom() } });
    this.jumpButton = h('button', { class: 'btn primary jump-unread', text: '↑ Jump to first unread', hidden: true, attrs: { 'data-testid': 'jump-unread' }, on: { click: () => this.jumpToUnread() } });
    this.divider = h('div', { class: 'unread-divider', attrs: { role: 'separator', 'data-testid': 'unread-divider' } }, h('span', { text: 'New' }));
    this.olderMarker = h('div', { class: 'loading-older', text: 'Scroll up for older messages' });
    this.newerMarker = h('div', { class: 'loading-older', text: 'Scroll down for newer messages' });
    this.loadingMarker = h('div', { class: 'loading-older', text: 'Loading…' });
    this.typing = h('div', { class: 'typing', attrs: { 'aria-live': 'polite', 'data-testid': 'typing' } });
    this.composer = new Composer(model, client);
    this.empty = h('div', { class: 'empty', text: 'Pick a room, or start a conversation.' });
    this.element = h('main', { class: 'main' }, this.empty);
    // Files dropped on the conversation go to the composer.
    this.element.addEventListener('dragover', (event) => {
      if (this.roomId && event.dataTransfer?.types.includes('Files')) event.preventDefault();
    });
    this.element.addEventListener('drop', (event) => {
      if (!this.roomId || !event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.composer.addFiles([...event.dataTransfer.files]);
    });
    /** The elements of the messages in the window, by id: {message, key, element}. */
    this.views = new Map();
    /** Each message's files, built once and moved into every element built for it. */
    this.fileViews = new Map();
    /** Day separators, by the id of the message they stand above and their label. */
    this.days = new Map();
    /** The message whose reaction picker is open, kept open across re-renders. */
    this.pickerFor = null;
    this.resetList();
    /** The message elements at least half on screen. */
    this.onScreen = new Set();
    // Thresholds every 5 %: a message taller than the list is seen once half the list
    // shows it, which a coarser set would not report.
    const threshold = Array.from({ length: 21 }, (_, i) => i / 20);
    this.seen = new IntersectionObserver((entries) => this.onVisibility(entries), { root: this.list, threshold });
    // A dialog closing uncovers the list ('close' does not bubble: caught on the way down).
    document.addEventListener('close', () => this.noteSeen(), true);
    // "Last seen 5 minutes ago" moves on as time passes.
    onPresenceTick(() => { if (this.roomId) this.renderHeader(); });
  }

  show(roomId) {
    const changedRoom = roomId !== this.roomId;
    this.roomId = roomId;
    if (!roomId || !this.model.room(roomId)) {
      this.roomId = null;
      replace(this.element, this.header, this.connectionBar, this.empty);
      this.title.textContent = 'Confab';
      this.meta.textContent = '';
      this.membersButton.hidden = true;
      this.addedBy.hidden = true;
      this.blockButton.hidden = true;
      return;
    }
    if (changedRoom || this.element.firstChild === this.empty || !this.element.contains(this.list)) {
      replace(this.element, this.header, this.connectionBar, this.jumpButton, this.list, this.newMessages, this.typing, this.composer.element);
      this.composer.setRoom(roomId);
    }
    if (changedRoom) this.resetList();
    this.membersButton.hidden = false;
    this.renderHeader();
    this.renderMessages();
    this.renderTyping();
    if (changedRoom) this.composer.focus();
  }

  /** The list's state for a room about to open: it lands where its reader left off. */
  resetList() {
    /** Which of the room's runs the window shows (state.js): 'live', which reaches the
     *  newest, or 'detached', held around a message far back. */
    this.part = 'live';
    /** The window: from `fromSeq` (null: the newest page) to `toSeq`, or to the end. */
    this.fromSeq = null;
    this.toSeq = null;
    this.atEnd = true;
    /** Whether the window last rendered reached the newest message. */
    this.renderedAtEnd = true;
    /** The window as last rendered: {start, end, length, stored}. */
    this.window = null;
    this.olderWanted = false;
    this.stickToBottom = true;
    /** Until the room's history is in, nothing shows; `landToken` marks the landing
     *  under way, so that one superseded by another does nothing. */
    this.landing = true;
    this.landingNow = false;
    this.landToken = null;
    /** The seq of the first unread message when the room opened, where "New" stands. */
    this.unreadFrom = null;
    this.lastRendered = null;
    this.newMessages.hidden = true;
    this.jumpButton.hidden = true;
  }

  /** Opens `roomId` (now, or once it is shown) at the message of `seq`, with the messages
   *  around it, however far back it is: the landing fetches them, puts the message in
   *  the middle of the list and highlights it briefly. */
  landAt(roomId, seq) {
    this.target = { roomId, seq };
    if (roomId !== this.roomId) return;
    this.resetList();
    this.renderMessages();
  }

  /** The messages of the run the window shows. When the detached run has joined the live
   *  one, the window goes on in the live run, where the same messages are; when it went
   *  otherwise (the room was loaded afresh), the window goes to the newest. */
  messagesShown(room) {
    if (this.part === 'detached' && !room.detached) {
      this.part = 'live';
      const all = this.model.messagesOf(this.roomId);
      const stored = storedCount(all);
      const kept = this.fromSeq !== null && all[indexOf(all, stored, this.fromSeq)]?.seq === this.fromSeq;
      if (!kept) {
        this.fromSeq = null;
        this.toSeq = null;
        this.atEnd = true;
        this.stickToBottom = true;
      }
      return all;
    }
    return this.model.messagesOf(this.roomId, this.part);
  }

  update(what) {
    if (!this.roomId) return;
    if (!this.model.room(this.roomId)) return this.show(null);
    // 'messages' too: a user looked up (who added you) arrives as one.
    if (what.has('rooms') || what.has('presence') || what.has('members') || what.has('messages')) this.renderHeader();
    if (what.has('messages') || what.has('receipts') || what.has('members')) this.renderMessages();
    if (what.has('typing') || what.has('messages')) this.renderTyping();
  }

  /** The sidebar shows the connection too, but a phone hides it: the bar is always in
   *  view. It stays in the page (empty when connected) so that screen readers announce
   *  it as a live region when it changes. */
  setConnection(state) {
    this.composer.setConnection(state);
    const notice = CONNECTION_NOTICES[state] || '';
    if (this.connectionBar.textContent !== notice) this.connectionBar.textContent = notice;
    this.connectionBar.dataset.state = state;
  }

  /** A user's name; one not known yet is looked up (and the list re-renders then). */
  nameOf(userId, fallback) {
    const user = this.model.users.get(userId);
    if (user) return user.display_name;
    this.client.lookUpUser(userId);
    return fallback;
  }

  renderHeader() {
    const room = this.model.room(this.roomId);
    const info = room.info;
    replace(this.title, info.kind === 'public' ? '# ' : '', bdi(info.name));
    const adder = info.kind !== 'dm' && info.added_by;
    this.addedBy.hidden = !adder;
    if (adder) this.adderName.textContent = this.nameOf(info.added_by, 'someone');
    this.blockButton.hidden = !(info.kind === 'dm' && info.peer && info.peer.id !== this.model.me.id);
    if (!this.blockButton.hidden) this.blockButton.setAttribute('aria-label', 'Block ' + info.peer.display_name);
    if (info.kind === 'dm' && info.peer) {
      this.meta.textContent = presenceLabel(this.model, info.peer.id);
    } else {
      const members = [...room.members.values()];
      const online = members.filter((m) => (this.model.presence.get(m.id) || m.presence.status) !== 'offline').length;
      const count = `${members.length} ${members.length === 1 ? 'member' : 'members'} · ${online} online`;
      this.meta.textContent = members.length ? count : '';
    }
  }

  async leave() {
    try {
      await this.client.leave(this.roomId);
    } catch (error) {
      this.client.shell.toast(error.message);
    }
  }

  blockPeer() {
    const peer = this.model.room(this.roomId)?.info.peer;
    if (peer) openBlockDialog(this.client, peer);
  }

  renderTyping() {
    if (!this.roomId) return;
    const names = this.model.typingIn(this.roomId).map((id) => this.nameOf(id, 'Someone'));
    const line =
      names.length === 0 ? [] :
      names.length === 1 ? [bdi(names[0]), ' is typing…'] :
      names.length === 2 ? [bdi(names[0]), ' and ', bdi(names[1]), ' are typing…'] :
      ['Several people are typing…'];
    // Checked every second: writing the same text again would be announced again.
    const text = line.map((part) => (typeof part === 'string' ? part : part.textContent)).join('');
    if (this.typing.textContent !== text) replace(this.typing, line);
  }

  // The message list. The model may hold thousands of a room's messages; the page holds a
  // window of at most WINDOW_MAX of them around what is on screen, each element built once
  // and again only when what it shows changed (`messageKey`). Scrolling near an edge of
  // the window moves it by a page (at the oldest held, older history is fetched), keeping
  // the message on screen where it was.

  /** Renders the window, keeping the view where it was: at the bottom if it was there,
   *  otherwise on the same message at the same height. */
  renderMessages() {
    const room = this.model.room(this.roomId);
    if (!room) return;
    if (this.landing) {
      // Nothing shows (so nothing is read) until the room opens where its reader left off.
      if (room.loaded && !this.landingNow) this.land(room);
      return this.reconcile([this.loadingMarker]);
    }
    const all = this.messagesShown(room);
    const stored = storedCount(all);
    // The view follows what comes only if it was at the bottom of a window that reached
    // the newest (or is asked to): at the bottom of one that ends before, or that has just
    // been extended to the end, it keeps its place.
    const follow = this.followNext || this.stickToBottom || (this.isAtBottom() && this.renderedAtEnd);
    this.followNext = false;
    const anchor = follow ? null : this.firstVisible();
    const anchorSeq = anchor ? this.views.get(anchor.id)?.message.seq : undefined;
    const [start, end] = this.windowOf(room, all, stored, follow, anchorSeq);
    this.usernames = this.model.usernames();
    const nodes = [this.topMarker(room, start)];
    const views = new Map();
    for (let i = start; i < end; i++) {
      const message = all[i];
      const previous = i > 0 ? all[i - 1] : null;
      const date = new Date(message.created_at);
      const newDay = !previous || dayLabel(new Date(previous.created_at)) !== dayLabel(date);
      if (newDay) nodes.push(this.daySeparator(message, date));
      const divided = !message.pending && message.seq === this.unreadFrom;
      if (divided) nodes.push(this.divider);
      const grouped = !newDay && !divided && previous.author_id === message.author_id && !previous.deleted &&
        date - new Date(previous.created_at) < GROUP_WITHIN_MS;
      const next = all[i + 1];
      const own = message.author_id === this.model.me.id;
      const lastOfRun = own && !message.pending && !message.deleted && (!next || next.pending || next.author_id !== message.author_id);
      const place = { first: !grouped, receipt: lastOfRun ? receiptOf(this, room, message) : null };
      const key = messageKey(this, room, message, place);
      let view = this.views.get(message.id);
      if (!view || view.key !== key || (!message.pending && view.message !== message)) {
        view = { message, key, element: messageElement(this, room, message, place) };
      }
      views.set(message.id, view);
      nodes.push(view.element);
    }
    // The detached run ends before a gap: scrolling down fetches what follows.
    if (this.part === 'detached' && end >= stored) nodes.push(this.newerMarker);
    keepingFocus(this.list, 'id', () => this.reconcile(nodes));
    for (const id of this.views.keys()) if (!views.has(id)) this.fileViews.delete(id);
    this.views = views;

    const newest = stored ? all[stored - 1].id : null;
    const newestBefore = this.lastRendered;
    this.lastRendered = newest;
    this.renderedAtEnd = this.atEnd;
    if (follow && this.atEnd) {
      this.stickToBottom = true;
      this.scrollToBottom();
    } else {
      if (anchor) this.restore(anchor);
      if (newest !== newestBefore && newestBefore !== null) this.newMessages.hidden = false;
    }
    // Far back, the way to the newest is always at hand.
    if (this.part === 'detached') this.newMessages.hidden = false;
    const label = this.part === 'detached' ? 'Newest messages ↓' : 'New messages ↓';
    if (this.newMessages.textContent !== label) this.newMessages.textContent = label;
    this.showJump();
  }

  /** Which of `all` the page shows, [start, end): from `fromSeq` (or the newest
   *  WINDOW_MAX) to `toSeq` (or the end, pending messages included), trimmed to
   *  WINDOW_MAX on the side away from the reader. */
  windowOf(room, all, stored, follow, anchorSeq) {
    let end = this.atEnd ? all.length : Math.min(stored, indexAfter(all, stored, this.toSeq));
    const newest = Math.max(0, Math.min(end, stored) - WINDOW_PAGE * 2);
    let start = this.fromSeq === null ? newest : indexOf(all, stored, this.fromSeq);
    // At the bottom, at least the newest pages show (the window may have started with
    // what the room held before its history came).
    if (follow && this.atEnd) start = Math.min(start, newest);
    if (this.olderWanted) {
      start = Math.max(0, start - WINDOW_PAGE);
      this.olderWanted = false;
    }
    if (end - start > WINDOW_MAX) {
      // The side away from the reader goes: following the bottom, the top; otherwise the
      // side farther from the message on screen.
      const at = anchorSeq === undefined ? end : indexOf(all, stored, anchorSeq);
      if (!follow && at - start < end - at) end = start + WINDOW_MAX;
      else start = end - WINDOW_MAX;
    }
    this.fromSeq = start < stored && room.loaded ? all[start].seq : null;
    // The detached run never reaches the end: the live run's newest lies beyond it.
    this.atEnd = end >= all.length && this.part === 'live';
    this.toSeq = this.atEnd || end === 0 ? null : all[Math.min(end, stored) - 1].seq;
    this.window = { start, end, length: all.length, stored };
    return [start, end];
  }

  /** Puts `nodes` in the list, moving only what moved: the message elements that stay are
   *  left where they are (a playing video plays on), those that go stop being watched. */
  reconcile(nodes) {
    const wanted = new Set(nodes);
    for (const child of [...this.list.children]) {
      if (wanted.has(child)) continue;
      this.seen.unobserve(child);
      this.onScreen.delete(child);
      child.remove();
    }
    let cursor = this.list.firstElementChild;
    for (const node of nodes) {
      if (node === cursor) {
        cursor = cursor.nextElementSibling;
        continue;
      }
      this.list.insertBefore(node, cursor);
      if (node.dataset.id) this.seen.observe(node);
    }
  }

  topMarker(room, start) {
    if (start > 0 || (room.hasMore && room.loaded)) return this.olderMarker;
    // Above the live run, a gap and then the detached run.
    if (this.part === 'live' && room.detached) return this.olderMarker;
    const name = room.info.name;
    if (this.beginning?.dataset.name !== name) {
      const opening = room.info.kind === 'dm' ? 'This is the beginning of your conversation with ' : 'This is the beginning of ';
      this.beginning = h('div', { class: 'loading-older', attrs: { 'data-name': name } }, opening, bdi(name), '.');
    }
    return this.beginning;
  }

  daySeparator(message, date) {
    const label = dayLabel(date);
    const key = message.id + label;
    let separator = this.days.get(key);
    if (!separator) {
      separator = h('div', { class: 'day', attrs: { role: 'separator' } }, label);
      this.days.set(key, separator);
      if (this.days.size > WINDOW_MAX) this.days.delete(this.days.keys().next().value);
    }
    return separator;
  }

  /** Opens a room where its reader left off: with a "New" divider above the first message
   *  they have not read (fetching back to it, a few pages at most) and that message near
   *  the top, or at the bottom when everything unread fits on screen. */
  async land(room) {
    this.landingNow = true;
    const token = (this.landToken = {});
    const roomId = room.id;
    const target = this.target?.roomId === roomId ? this.target : null;
    this.target = null;
    if (target) return this.landOn(room, target.seq, token);
    if (room.unread > 0) {
      await this.client.loadBack(roomId, room.lastReadSeq + 1);
      // Another room, or this one opened again meanwhile: that opening lands it.
      if (this.landToken !== token) return;
      const all = this.model.messagesOf(roomId);
      const me = this.model.me.id;
      const first = all.find((m) => !m.pending && m.seq > room.lastReadSeq && m.author_id !== me && !m.deleted);
      this.unreadFrom = first ? first.seq : null;
    }
    this.landing = false;
    this.landingNow = false;
    this.fromSeq = null;
    if (this.unreadFrom === null) {
      this.stickToBottom = true;
      return this.renderMessages();
    }
    this.showAround(this.unreadFrom, this.divider);
  }

  /** Lands on a message opened from search: fetches the messages around it (state.js
   *  holds them apart from the newest if there is a gap between), shows it in the middle
   *  of the list, highlighted for a moment, with the focus on it. No "New" divider: the
   *  reader came for this message. */
  async landOn(room, seq, token) {
    const roomId = room.id;
    await this.client.loadAround(roomId, seq);
    if (this.landToken !== token) return;
    const held = this.model.room(roomId);
    if (!held) return;
    this.part = held.detached && seq <= held.detached.to ? 'detached' : 'live';
    this.unreadFrom = null;
    this.landing = false;
    this.landingNow = false;
    this.showAround(seq, null, 'center');
    const element = this.views.get(this.messageAt(seq)?.id)?.element;
    if (!element?.isConnected) return;
    element.classList.add('found');
    setTimeout(() => element.classList.remove('found'), HIGHLIGHT_MS);
    element.focus({ preventScroll: true });
  }

  /** The message of `seq` in the run shown, if it holds it. */
  messageAt(seq) {
    const all = this.messagesShown(this.model.room(this.roomId));
    const found = all[indexOf(all, storedCount(all), seq)];
    return found?.seq === seq ? found : null;
  }

  /** Renders the window around the message of `seq` and scrolls `target` (that message,
   *  or the divider above it) near the top of the list (or, `place` 'center', to its
   *  middle), or to the bottom if what follows it fits on screen. */
  showAround(seq, target, place = 'top') {
    const room = this.model.room(this.roomId);
    const all = this.messagesShown(room);
    const stored = storedCount(all);
    const index = indexOf(all, stored, seq);
    const start = Math.max(0, index - (place === 'center' ? WINDOW_PAGE : CONTEXT_ABOVE));
    this.fromSeq = start < stored ? all[start].seq : null;
    this.atEnd = this.part === 'live' && stored - start <= WINDOW_MAX;
    this.toSeq = this.atEnd || stored === 0 ? null : all[Math.min(start + WINDOW_MAX, stored) - 1].seq;
    this.stickToBottom = false;
    this.renderedAtEnd = false;
    this.list.scrollTop = 0;
    this.renderMessages();
    const element = target || this.list.querySelector(`[data-seq="${seq}"]`);
    if (!element?.isConnected) return;
    const margin = place === 'center' ? (this.list.clientHeight - element.offsetHeight) / 2 : LANDING_MARGIN_PX;
    const offset = element.getBoundingClientRect().top - this.list.getBoundingClientRect().top - Math.max(LANDING_MARGIN_PX, margin);
    const bottom = this.list.scrollHeight - this.list.clientHeight;
    if (this.atEnd && this.list.scrollTop + offset >= bottom) {
      this.stickToBottom = true;
      this.scrollToBottom();
    } else {
      this.list.scrollTop += offset;
    }
    this.showJump();
  }

  /** The "Jump to first unread" control shows while the "New" divider is above the view
   *  and something is still unread. */
  showJump() {
    const room = this.model.room(this.roomId);
    let above = false;
    if (room && this.unreadFrom !== null && room.unread > 0) {
      if (!this.divider.isConnected) above = this.fromSeq !== null && this.fromSeq > this.unreadFrom;
      else above = this.divider.getBoundingClientRect().bottom < this.list.getBoundingClientRect().top;
    }
    if (this.jumpButton.hidden === above) this.jumpButton.hidden = !above;
  }

  jumpToUnread() {
    if (this.unreadFrom !== null) this.showAround(this.unreadFrom, this.divider);
  }

  /** Scrolls the list so that the anchor message is where it was on screen. */
  restore(anchor) {
    const element = this.views.get(anchor.id)?.element;
    if (element?.isConnected) this.list.scrollTop += element.getBoundingClientRect().top - anchor.top;
  }

  /** Notes which messages are on screen (at least half of one, or half the list's height
   *  for a tall one), and marks read up to the newest of them. */
  onVisibility(entries) {
    for (const entry of entries) {
      const half = (entry.rootBounds?.height || 0) / 2;
      const shown = entry.isIntersecting && (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= half);
      if (shown && entry.target.isConnected) this.onScreen.add(entry.target);
      else this.onScreen.delete(entry.target);
    }
    this.noteSeen();
  }

  /** A message is read once it has been on screen while the page is visible and has the
   *  focus: the read marker moves to the newest message on screen (and past every event
   *  after it, if that is the room's newest message). Called again when the page comes
   *  back into view or focus. */
  noteSeen() {
    if (!this.roomId || document.visibilityState !== 'visible' || !document.hasFocus()) return;
    // Covered by the phone's room list or by a dialog, the list is not being read.
    if (this.element.inert || document.querySelector('dialog[open]')) return;
    let newest = 0;
    for (const element of this.onScreen) newest = Math.max(newest, Number(element.dataset.seq) || 0);
    if (newest) this.client.markRead(this.roomId, newest);
  }

  /** Up and down move between messages, Home and End go to the first and last, and a
   *  message's actions are reached with Tab from it. */
  onListKey(event) {
    const current = event.target.closest('.message');
    if (!current || event.target !== current) return;
    const messages = [...this.list.querySelectorAll('.message')];
    const index = messages.indexOf(current);
    const next = { ArrowUp: index - 1, ArrowDown: index + 1, Home: 0, End: messages.length - 1 }[event.key];
    if (next === undefined || !messages[next]) return;
    event.preventDefault();
    messages[next].focus();
  }

  isAtBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
  }

  firstVisible() {
    const top = this.list.getBoundingClientRect().top;
    for (const element of this.list.children) {
      if (!element.dataset.id) continue;
      const rect = element.getBoundingClientRect();
      if (rect.bottom > top) return { id: element.dataset.id, top: rect.top };
    }
    return null;
  }

  /** One's own message goes at the bottom: the next render shows it, wherever the view
   *  was. */
  followOwn() {
    this.followNext = true;
    if (!this.atEnd) {
      this.part = 'live';
      this.fromSeq = null;
      this.atEnd = true;
    }
  }

  /** To the newest message: the window moves there if it is elsewhere. */
  scrollToBottom() {
    if (!this.atEnd) {
      this.part = 'live';
      this.fromSeq = null;
      this.atEnd = true;
      this.stickToBottom = true;
      return this.renderMessages();
    }
    this.list.scrollTop = this.list.scrollHeight;
    this.newMessages.hidden = true;
  }

  onScroll() {
    // Emptied for a room that is opening: nothing to move yet.
    if (this.landing) return;
    this.stickToBottom = false;
    const { scrollTop, scrollHeight, clientHeight } = this.list;
    if (scrollTop < NEAR_EDGE_PX) this.readUp();
    else if (scrollHeight - scrollTop - clientHeight < NEAR_EDGE_PX && !this.atEnd) this.readDown();
    if (this.atEnd && this.isAtBottom()) this.newMessages.hidden = true;
    this.showJump();
  }

  /** Near the top: the window takes in the page above, or older history is fetched. */
  async readUp() {
    const { start } = this.window || { start: 0 };
    if (start > 0) {
      this.olderWanted = true;
      return this.renderMessages();
    }
    const roomId = this.roomId;
    if (this.fetchingOlder) return;
    this.fetchingOlder = true;
    try {
      const more = await this.client.loadOlder(roomId, this.part);
      if (more && this.roomId === roomId && !this.landing) {
        this.olderWanted = true;
        this.renderMessages();
      }
    } finally {
      this.fetchingOlder = false;
    }
  }

  /** Near the bottom of a window that ends before the newest: it takes in the page below;
   *  at the end of the detached run, newer history is fetched first. */
  async readDown() {
    if (this.extendDown()) return;
    const roomId = this.roomId;
    if (this.fetchingNewer) return;
    this.fetchingNewer = true;
    try {
      const more = await this.client.loadNewer(roomId);
      if (more && this.roomId === roomId && !this.landing) this.extendDown();
    } finally {
      this.fetchingNewer = false;
    }
  }

  /** Moves the window's end a page further down, if the run holds more; returns false
   *  at the end of the detached run, which needs newer history first. */
  extendDown() {
    const all = this.messagesShown(this.model.room(this.roomId));
    const stored = storedCount(all);
    const end = Math.min(stored, indexAfter(all, stored, this.toSeq));
    if (this.part === 'detached') {
      if (end >= stored) return false;
      this.toSeq = all[Math.min(end + WINDOW_PAGE, stored) - 1].seq;
    } else if (end + WINDOW_PAGE >= stored) {
      this.atEnd = true;
      this.toSeq = null;
    } else {
      this.toSeq = all[end + WINDOW_PAGE - 1].seq;
    }
    this.renderMessages();
    return true;
  }
}

/** How many of a room's messages (stored first, then pending) are stored. */
function storedCount(all) {
  let count = all.length;
  while (count > 0 && all[count - 1].pending) count--;
  return count;
}

/** The index of the first stored message with a seq of at least `seq`. */
function indexOf(all, stored, seq) {
  let low = 0;
  let high = stored;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (all[middle].seq < seq) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The index after the last stored message with a seq of at most `seq`. */
function indexAfter(all, stored, seq) {
  return seq === null ? stored : indexOf(all, stored, seq + 1);
}
