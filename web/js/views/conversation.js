// The open conversation: its header, the message list (older messages load as you scroll
// up, without jumping; the view follows new messages only when you are at the bottom),
// who is typing, and the composer. Each message takes the focus (Tab into the list, then
// the arrow keys), which shows its actions.

import { bdi, dayLabel, h, initials, keepingFocus, replace, richText, timeLabel } from '../dom.js';
import { attachmentList, filesSummary } from './attachments.js';
import { Composer } from './composer.js';
import { openBlockDialog, openMembersDialog } from './dialogs.js';
import { quickEmoji, rememberEmoji } from './emoji-recent.js';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];
const GROUP_WITHIN_MS = 5 * 60_000;
const NEAR_EDGE_PX = 80;
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
      h('button', { class: 'icon-btn menu-toggle', text: '☰', attrs: { 'aria-label': 'Show rooms' }, on: { click: openSidebar } }),
      this.title, this.meta, this.addedBy, h('span', { class: 'spacer' }), this.blockButton, this.membersButton);
    this.connectionBar = h('div', { class: 'connection-bar', attrs: { role: 'status', 'data-testid': 'connection-bar' } });
    this.list = h('div', { class: 'messages', attrs: { role: 'log', 'aria-labelledby': 'room-title', tabindex: '0' }, on: { scroll: () => this.onScroll(), keydown: (event) => this.onListKey(event) } });
    this.newMessages = h('button', { class: 'btn primary new-messages', text: 'New messages ↓', hidden: true, on: { click: () => this.scrollToBottom() } });
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
    this.lastRendered = null;
    // Each message's files, built once and moved into every re-render of the list: a
    // receipt or a new message must not restart a playing voice message or video, or
    // reload a picture.
    this.fileViews = new Map();
    /** The message whose reaction picker is open, kept open across re-renders. */
    this.pickerFor = null;
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
      replace(this.element, this.header, this.connectionBar, this.list, this.newMessages, this.typing, this.composer.element);
      this.composer.setRoom(roomId);
      this.stickToBottom = true;
    }
    this.membersButton.hidden = false;
    this.renderHeader();
    this.renderMessages();
    this.renderTyping();
    if (changedRoom) this.composer.focus();
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
      const status = this.model.presence.get(info.peer.id) || 'offline';
      this.meta.textContent = status === 'online' ? 'Online' : status === 'away' ? 'Away' : 'Offline';
    } else {
      const members = [...room.members.values()];
      const online = members.filter((m) => (this.model.presence.get(m.id) || m.presence.status) !== 'offline').length;
      this.meta.textContent = members.length ? `${members.length} members · ${online} online` : '';
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

  /** Re-renders the list, keeping the view where it was: at the bottom if it was there,
   *  otherwise on the same message at the same height. */
  renderMessages() {
    const room = this.model.room(this.roomId);
    const messages = this.model.messagesOf(this.roomId);
    const atBottom = this.stickToBottom || this.isAtBottom();
    const anchor = atBottom ? null : this.firstVisible();
    const newestBefore = this.lastRendered;

    const usernames = this.model.usernames();
    const nodes = [];
    if (room.hasMore && room.loaded) nodes.push(h('div', { class: 'loading-older', text: 'Scroll up for older messages' }));
    if (room.loaded && !room.hasMore) {
      const start = room.info.kind === 'dm' ? 'This is the beginning of your conversation with ' : 'This is the beginning of ';
      nodes.push(h('div', { class: 'loading-older' }, start, bdi(room.info.name), '.'));
    }
    let previous = null;
    this.rendered = new Set();
    for (const message of messages) {
      const date = new Date(message.created_at);
      const newDay = !previous || dayLabel(new Date(previous.created_at)) !== dayLabel(date);
      if (newDay) nodes.push(h('div', { class: 'day', attrs: { role: 'separator' } }, dayLabel(date)));
      const grouped = !newDay && previous && previous.author_id === message.author_id && !previous.deleted &&
        date - new Date(previous.created_at) < GROUP_WITHIN_MS;
      nodes.push(this.messageElement(room, message, !grouped, usernames));
      previous = message;
    }
    keepingFocus(this.list, 'id', () => replace(this.list, nodes));
    for (const id of this.fileViews.keys()) if (!this.rendered.has(id)) this.fileViews.delete(id);

    const newest = messages.length ? messages[messages.length - 1].id : null;
    this.lastRendered = newest;
    if (atBottom) {
      this.scrollToBottom();
    } else if (anchor) {
      const element = this.list.querySelector(`[data-id="${CSS.escape(anchor.id)}"]`);
      if (element) this.list.scrollTop += element.getBoundingClientRect().top - anchor.top;
      if (newest !== newestBefore) this.newMessages.hidden = false;
    }
  }

  messageElement(room, message, first, usernames) {
    const me = this.model.me;
    const author = this.model.users.get(message.author_id);
    const name = this.nameOf(message.author_id, 'Unknown');
    const own = message.author_id === me.id;
    const classes = ['message'];
    if (first) classes.push('first');
    if (own) classes.push('own');
    if (message.deleted) classes.push('deleted');
    if (message.pending) classes.push('pending');
    if (message.failed) classes.push('failed');
    if (!own && message.mentions.includes(me.id)) classes.push('mentions-me');
    const date = new Date(message.created_at);
    const head = first ? [
      avatar(author, name),
      h('div', { class: 'head' },
        bdi(name, { class: 'author' }),
        h('time', { class: 'time', text: timeLabel(date), dateTime: message.created_at, title: date.toLocaleString() })),
    ] : [];
    const quote = message.reply_to ? h('div', { class: 'quote' },
      bdi(this.nameOf(message.reply_to.author_id, 'Someone')), ': ', bdi(this.quoted(room, message.reply_to))) : null;
    const body = message.deleted
      ? h('div', { class: 'body', text: 'This message was deleted.' })
      : message.body ? h('div', { class: 'body', attrs: { dir: 'auto' } }, richText(message.body, usernames, me.username)) : null;
    const meta = [];
    if (message.edited_at && !message.deleted) meta.push(h('span', { class: 'edited', text: ' (edited)' }));
    if (message.pending) meta.push(h('span', { class: 'status', text: message.failed ? 'Not sent: ' + message.failed : message.retrying ? 'Trying again…' : 'Sending…' }));
    else if (own && !message.deleted) meta.push(this.receiptStatus(room, message));
    const reactions = message.reactions.length ? h('div', { class: 'reactions' }, message.reactions.map((reaction) => {
      const mine = reaction.user_ids.includes(me.id);
      const who = reaction.user_ids.map((id) => this.nameOf(id, 'someone')).join(', ');
      return h('button', {
        class: 'reaction' + (mine ? ' mine' : ''), title: who,
        attrs: { 'aria-pressed': mine, 'aria-label': `${reaction.emoji} ${reaction.count}: ${who}` },
        on: { click: () => this.client.toggleReaction(room.id, message.id, reaction.emoji) },
      }, bdi(reaction.emoji), ` ${reaction.count}`);
    })) : null;
    return h('article', {
      class: classes.join(' '), attrs: { 'data-id': message.id, 'aria-label': `${name}, ${timeLabel(date)}`, tabindex: '0' },
    }, head, quote, body, this.filesOf(message), meta, reactions, this.actions(room, message, own));
  }

  /** The text of a reply's quote: the original's first words, or, for a message of files
   *  only, what it carries (the quote itself holds no files: the original says). */
  quoted(room, replyTo) {
    if (replyTo.deleted) return 'Message deleted';
    if (replyTo.preview) return replyTo.preview;
    const original = room.messages.get(replyTo.message_id);
    return (original && filesSummary(original)) || 'Attachment';
  }

  filesOf(message) {
    if (message.deleted || !message.attachments?.length) return null;
    this.rendered.add(message.id);
    let view = this.fileViews.get(message.id);
    if (!view) {
      view = attachmentList(message.attachments);
      this.fileViews.set(message.id, view);
    }
    return view;
  }

  /** ✓ sent, ✓✓ delivered, blue ✓✓ read in a DM; "Read by N" in a group. */
  receiptStatus(room, message) {
    const others = [...room.receipts.entries()].filter(([id]) => id !== this.model.me.id);
    if (room.info.kind === 'dm') {
      const peer = room.info.peer && room.receipts.get(room.info.peer.id);
      const state = peer && peer.read_seq >= message.seq ? 'read' : peer && peer.delivered_seq >= message.seq ? 'delivered' : 'sent';
      const marks = state === 'sent' ? '✓' : '✓✓';
      return h('span', { class: 'status' + (state === 'read' ? ' read' : ''), text: marks, title: state[0].toUpperCase() + state.slice(1), attrs: { 'aria-label': state, 'data-receipt': state } });
    }
    const readers = others.filter(([, r]) => r.read_seq >= message.seq).map(([id]) => this.nameOf(id, 'someone'));
    if (readers.length === 0) return h('span', { class: 'status', text: '✓', title: 'Sent', attrs: { 'data-receipt': 'sent' } });
    return h('span', { class: 'status', text: `Read by ${readers.length}`, title: readers.join(', '), attrs: { 'data-receipt': 'read' } });
  }

  actions(room, message, own) {
    if (message.pending) {
      if (!message.failed) return null;
      const clientId = message.id.slice('pending-'.length);
      return h('div', { class: 'actions' },
        h('button', { class: 'icon-btn', text: 'Retry', on: { click: () => this.client.retryPending(clientId) } }),
        h('button', { class: 'icon-btn', text: 'Discard', on: { click: () => this.client.discardPending(clientId) } }));
    }
    if (message.deleted) return null;
    const canDelete = own || (room.info.role === 'owner' && room.info.kind !== 'dm');
    // The quick row is the emoji used most recently (today's six until there are some);
    // "More reactions" opens the full picker, loaded then.
    const react = (emoji) => { this.pickerFor = null; picker.hidden = true; rememberEmoji(emoji); this.client.toggleReaction(room.id, message.id, emoji); };
    const more = (event) => {
      const button = event.currentTarget;
      // A re-render while the picker was open replaced its button: Escape goes back to the new one.
      const refocus = (reason) => { if (reason === 'escape' && !button.isConnected) this.list.querySelector(`.message[data-id="${CSS.escape(message.id)}"] [data-testid=more-reactions]`)?.focus(); };
      import('./emoji.js').then(({ pickEmoji }) => pickEmoji(button, { onPick: react, onClose: refocus })).catch((error) => this.client.shell.toast(error.message));
    };
    const picker = h('span', { class: 'picker', hidden: this.pickerFor !== message.id }, quickEmoji(QUICK_REACTIONS).map((emoji) => h('button', {
      class: 'icon-btn', text: emoji, attrs: { 'aria-label': 'React ' + emoji },
      on: { click: () => react(emoji) },
    })), h('button', { class: 'icon-btn', text: '＋', title: 'More reactions', attrs: { 'aria-label': 'More reactions', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'data-testid': 'more-reactions' }, on: { click: more } }));
    const togglePicker = () => {
      picker.hidden = !picker.hidden;
      this.pickerFor = picker.hidden ? null : message.id;
    };
    return h('div', { class: 'actions' },
      h('button', { class: 'icon-btn', text: '↩', title: 'Reply', attrs: { 'aria-label': 'Reply' }, on: { click: () => this.composer.replyTo(message) } }),
      h('button', { class: 'icon-btn', text: '☺', title: 'React', attrs: { 'aria-label': 'Add reaction', 'aria-expanded': String(this.pickerFor === message.id) }, on: { click: (event) => { togglePicker(); event.currentTarget.setAttribute('aria-expanded', String(!picker.hidden)); } } }),
      picker,
      own ? h('button', { class: 'icon-btn', text: '✎', title: 'Edit', attrs: { 'aria-label': 'Edit' }, on: { click: () => this.composer.edit(message) } }) : null,
      canDelete ? h('button', { class: 'icon-btn', text: '🗑', title: 'Delete', attrs: { 'aria-label': 'Delete' }, on: { click: () => { if (confirm('Delete this message for everyone?')) this.client.remove(room.id, message.id); } } }) : null);
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
    for (const element of this.list.querySelectorAll('[data-id]')) {
      const rect = element.getBoundingClientRect();
      if (rect.bottom > top) return { id: element.dataset.id, top: rect.top };
    }
    return null;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.newMessages.hidden = true;
    this.client.markReadIfLooking();
  }

  onScroll() {
    this.stickToBottom = false;
    if (this.list.scrollTop < NEAR_EDGE_PX) this.client.loadOlder(this.roomId);
    if (this.isAtBottom()) {
      this.newMessages.hidden = true;
      this.client.markReadIfLooking();
    }
  }
}

/** A user's picture, or their initials. */
export function avatar(user, name) {
  if (user && user.avatar_url) return h('img', { class: 'avatar', src: user.avatar_url, alt: '', attrs: { 'aria-hidden': 'true' } });
  return h('span', { class: 'avatar', text: initials(name), attrs: { 'aria-hidden': 'true' } });
}
