// Confab's web client: signs in, keeps a model of the user's rooms in step with the server
// over one WebSocket, and renders it. It uses only the public API (docs/api.md).

import { ApiError, api, get, post } from './api.js';
import { Connection } from './connection.js';
import { isolated } from './dom.js';
import { Model } from './state.js';
import { showAuth } from './views/auth.js';
import { openProfileDialog } from './views/dialogs.js';
import { Shell } from './views/shell.js';
import { errorSentence, showSsoSignup, takeSsoReturn } from './views/sso.js';

const root = document.getElementById('app');
const AWAY_AFTER_MS = 5 * 60_000;
const TYPING_EVERY_MS = 3_000;
/** Send errors that say nothing about the message itself: it may well go through later. */
const TRANSIENT = new Set(['internal', 'unavailable', 'rate_limited', 'request_timeout']);
/** Automatic resends after a transient error, waiting twice as long each time, before the
 *  message is shown as not sent (with a Retry button). */
const RESENDS = 5;
const FIRST_RESEND_MS = 1_000;
/** Errors that mean a `sync` did not finish: what it should have sent is fetched over HTTP. */
const SYNC_ERRORS = new Set(['sync_failed', 'too_many_syncs']);
/** Messages per page of history, and the most pages a room opening goes back for its
 *  first unread message. */
const PAGE = 50;
const PAGES_BACK = 10;
/** How often a moving read marker goes to the server. */
const READ_EVERY_MS = 250;
/** How long a burst of joins and leaves may last before the member list is read again. */
const MEMBERS_AFTER_MS = 300;

async function boot() {
  // Back from an identity provider: the address says how it went (sso.js).
  const sso = takeSsoReturn();
  try {
    if (sso.outcome === 'signup') {
      // Without a sign-up to finish (it expired, or was cancelled), back to where the
      // session says: the chat, or the sign-in screen saying why.
      await showSsoSignup(root, start, enterOrSignIn);
      return;
    }
    const me = await get('/me');
    // Signed in with an error: linking failed. Said beside the sign-in methods.
    if (sso.error) return start(me, { text: errorSentence(sso.error), error: true });
    if (sso.outcome === 'linked') return start(me, { text: (sso.linked || 'The provider') + ' is now linked: you can sign in with it.', error: false });
    start(me);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showAuth(root, start, { notice: sso.error ? errorSentence(sso.error) : null });
    else root.textContent = 'Confab cannot be reached: ' + error.message;
  }
}

/** Enters the chat if signed in, else shows the sign-in screen with `notice` above it. */
async function enterOrSignIn(notice) {
  try {
    start(await get('/me'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showAuth(root, start, { notice });
    else root.textContent = 'Confab cannot be reached: ' + error.message;
  }
}

/** Enters the chat as `me`. `ssoNotice` (`{text, error}`), the outcome of linking a
 *  provider, is shown in the profile dialog, which opens with it beside the sign-in
 *  methods it changed. */
async function start(me, ssoNotice = null) {
  // Signing in and registering answer the user without `admin`; `GET /me` says it.
  if (me.admin === undefined) me = await get('/me').catch(() => me);
  const model = new Model(me);
  const client = new Client(model);
  client.run().then(() => {
    if (ssoNotice) openProfileDialog(model, client, { ssoNotice });
  });
}

/** Everything the signed-in page does: the actions the views call, and the reactions to
 *  frames from the server. */
class Client {
  constructor(model) {
    this.model = model;
    this.activeRoom = null;
    this.typingSent = new Map();
    this.deliveredSent = new Map();
    /** Read markers waiting to go to the server, by room. */
    this.readsDue = new Map();
    /** The latest member list asked for, by room. */
    this.membersAsked = new Map();
    /** Users looked up by id (authors no member list holds), so that each is asked once. */
    this.lookups = new Map();
    this.connection = new Connection({
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.shell.setConnection(state),
      onSessionEnded: () => location.reload(),
    });
    this.shell = new Shell(root, model, this);
    model.subscribe((what) => this.shell.changed(what));
  }

  async run() {
    await this.refreshRooms();
    this.loadBlocks();
    this.connection.start();
    this.watchAttention();
    // A wide screen opens the most recent room; a phone starts on the room list.
    const first = [...this.model.rooms.values()][0];
    if (first && window.matchMedia('(min-width: 721px)').matches) {
      this.openRoom(first.id);
    } else {
      this.shell.render();
      this.shell.toggleSidebar(true);
    }
  }

  async refreshRooms() {
    try {
      const { rooms } = await get('/rooms');
      this.model.setRooms(rooms);
    } catch (error) {
      this.shell.toast(error.message);
    }
  }

  // Frames from the server.

  onFrame(frame) {
    if (frame.type === 'ready') return this.onReady(frame);
    if (frame.type === 'room.added') {
      this.model.addRoom(frame.room).liveFrom = frame.last_seq;
      this.model.changed('rooms');
      if (frame.room.kind === 'dm') this.markDelivered(frame.room_id, frame.last_seq);
      return;
    }
    if (frame.type === 'sync.done') this.model.syncDone();
    if (frame.type === 'error') return this.onError(frame);
    if (frame.type === 'user.updated') {
      this.model.updateUser(frame.user);
      return;
    }
    if (frame.type === 'member.joined' || frame.type === 'member.left') {
      // The open room's member list is read again, once for a burst; another's, when it
      // is next opened.
      if (frame.room_id !== this.activeRoom) return;
      clearTimeout(this.membersTimer);
      this.membersTimer = setTimeout(() => this.loadMembers(frame.room_id), MEMBERS_AFTER_MS);
      return;
    }
    const notable = this.model.apply(frame);
    if (notable && notable.message) this.onIncoming(notable.message);
    if (notable && notable.mention) this.notify(notable.mention, true);
    if (frame.type === 'room.removed' && frame.room_id === this.activeRoom) this.openRoom(null);
  }

  /** After (re)connecting: catch up where history is loaded, refresh the room list if
   *  rooms came or went, and resend what the server has not confirmed. */
  onReady(ready) {
    const known = new Set(this.model.rooms.keys());
    const listed = new Set(ready.rooms.map((r) => r.room_id));
    const differs = known.size !== listed.size || [...listed].some((id) => !known.has(id));
    this.model.apply(ready);
    const listedNow = differs ? this.refreshRooms() : Promise.resolve();
    // Everything up to `last_seq` has reached this page (or will, by the sync below).
    listedNow.then(() => this.markDeliveredUpTo(ready.rooms));
    const since = this.model.syncPoints();
    if (Object.keys(since).length > 0 && this.connection.send({ type: 'sync', since })) this.model.startSync(since);
    for (const entry of this.model.outbox.values()) {
      clearTimeout(entry.resendTimer);
      this.sendFrame(entry);
    }
    if (document.visibilityState === 'hidden') this.connection.send({ type: 'presence', status: 'away' });
    if (this.activeRoom) {
      // An open room whose history never came (a failed request) is asked for again.
      if (this.model.room(this.activeRoom)?.loaded === false) this.loadNewest(this.activeRoom);
      this.loadMembers(this.activeRoom);
    }
  }

  onError(frame) {
    if (SYNC_ERRORS.has(frame.code)) return this.reloadRooms(this.model.syncing());
    const entry = frame.client_id && this.model.outbox.get(frame.client_id);
    if (!entry) return this.shell.toast(frame.message);
    // Sending faster than the server takes: wait as long as it says, as often as it says.
    if (frame.code === 'rate_limited' && frame.retry_after) return this.resendAfter(entry, frame.retry_after * 1000);
    if (TRANSIENT.has(frame.code) && (entry.resends || 0) < RESENDS) return this.resendLater(entry);
    // Refused for good, or failing again and again: show it as failed, with Retry.
    entry.failed = frame.message;
    entry.retrying = false;
    this.model.changed('messages');
    this.shell.toast(frame.message);
  }

  /** Sends a message again after a transient error, with the same client_id (so it is
   *  stored once however many tries reach the server), backing off with each try. */
  resendLater(entry) {
    entry.resends = (entry.resends || 0) + 1;
    entry.retrying = true;
    this.model.changed('messages');
    clearTimeout(entry.resendTimer);
    const wait = FIRST_RESEND_MS * 2 ** (entry.resends - 1) * (0.5 + Math.random() / 2);
    entry.resendTimer = setTimeout(() => this.sendFrame(entry), wait);
  }

  /** Sends a message again once the server's rate limit lets it, without using up the
   *  tries a failing message gets: it is held back, not refused. Every message held back
   *  goes again at once, in the order they were written, so that none overtakes another. */
  resendAfter(entry, wait) {
    entry.retrying = true;
    entry.heldBack = true;
    clearTimeout(entry.resendTimer);
    this.model.changed('messages');
    clearTimeout(this.heldBackTimer);
    this.heldBackTimer = setTimeout(() => {
      for (const held of this.model.outbox.values()) {
        if (held.heldBack) {
          held.heldBack = false;
          this.sendFrame(held);
        }
      }
    }, wait);
  }

  /** A sync that did not finish leaves its rooms with unknown gaps: fetch them afresh over
   *  HTTP instead (the open one now, the others when next opened). */
  reloadRooms(roomIds) {
    for (const id of roomIds) this.model.unload(id);
    if (this.activeRoom && roomIds.includes(this.activeRoom)) this.loadNewest(this.activeRoom);
  }

  onIncoming(message) {
    const room = this.model.room(message.room_id);
    if (room && room.info.kind === 'dm') this.markDelivered(room.id, message.seq);
    const mentionsMe = message.mentions.includes(this.model.me.id);
    if (document.visibilityState === 'hidden' && (room?.info.kind === 'dm' || !mentionsMe)) this.notify(message, false);
  }

  // Actions the views call.

  async openRoom(roomId) {
    this.activeRoom = roomId;
    this.shell.setActive(roomId);
    if (!roomId) return;
    const room = this.model.room(roomId);
    if (room && !room.loaded) await this.loadNewest(roomId);
    this.loadMembers(roomId);
  }

  /** A room's newest page of history: its first, or after catching up failed. */
  async loadNewest(roomId) {
    try {
      const page = await get(`/rooms/${roomId}/messages?limit=${PAGE}`);
      this.model.addHistory(roomId, page.messages, page.has_more, false);
    } catch (error) {
      this.shell.toast(error.message);
    }
  }

  /** The page before the oldest message of a run: of the live run (`part` 'live'), or of
   *  the detached run far back ('detached', state.js), which is the oldest held. Only once
   *  the newest page is in: before it, what the room holds came piecemeal (the room
   *  list's last message, live events) and paging back from it would skip what lies
   *  between. Resolves to whether the run grew (or joined the other). */
  async loadOlder(roomId, part = 'live') {
    const room = this.model.room(roomId);
    if (!room || !room.loaded) return false;
    // Above a detached run, the live run pages back through the gap between them.
    const gap = part === 'live' && room.detached !== null;
    if (!gap && !room.hasMore) return false;
    const key = gap ? 'gap' : 'oldest';
    room.loadingOlder ??= {};
    if (room.loadingOlder[key]) return room.loadingOlder[key];
    const oldestOf = () => (gap ? this.model.liveOldestSeq(room) : this.model.oldestSeq(room));
    const oldest = oldestOf();
    if (!Number.isFinite(oldest)) return false;
    room.loadingOlder[key] = get(`/rooms/${roomId}/messages?before=${oldest}&limit=${PAGE}`)
      .then((page) => {
        // What the room holds moved meanwhile (a jump replaced the detached run, the
        // room was loaded afresh): the page no longer continues the run. Asked again as
        // the reader scrolls on.
        if (this.model.room(roomId) !== room || oldestOf() !== oldest) return true;
        if (gap) this.model.addGap(roomId, page.messages, page.has_more);
        else this.model.addHistory(roomId, page.messages, page.has_more, true);
        return page.messages.length > 0;
      })
      .catch((error) => {
        this.shell.toast(error.message);
        return false;
      })
      .finally(() => {
        room.loadingOlder[key] = null;
      });
    return room.loadingOlder[key];
  }

  /** The page after the newest message of the detached run, towards the live run.
   *  Resolves to whether the run grew (or joined the live one). */
  async loadNewer(roomId) {
    const room = this.model.room(roomId);
    const run = room?.detached;
    if (!run) return false;
    if (room.loadingNewer) return room.loadingNewer;
    const after = run.to;
    room.loadingNewer = get(`/rooms/${roomId}/messages?after=${after}&limit=${PAGE}`)
      .then((page) => {
        if (run.to === after) this.model.addNewer(roomId, run, page.messages, page.has_more);
        return true;
      })
      .catch((error) => {
        this.shell.toast(error.message);
        return false;
      })
      .finally(() => {
        room.loadingNewer = null;
      });
    return room.loadingNewer;
  }

  /** Fetches the messages around the message of `seq` unless a run held has it: a page
   *  up to it and a page after it, however far back it is (state.js keeps them apart
   *  from the live run until the gap between is filled). Resolves to whether the room
   *  holds it now. */
  async loadAround(roomId, seq) {
    let room = this.model.room(roomId);
    if (room && !room.loaded) await this.loadNewest(roomId);
    room = this.model.room(roomId);
    if (!room || !room.loaded) return false;
    if (this.model.holds(room, seq)) return true;
    try {
      const [before, after] = await Promise.all([
        get(`/rooms/${roomId}/messages?before=${seq + 1}&limit=${PAGE}`),
        get(`/rooms/${roomId}/messages?after=${seq}&limit=${PAGE}`),
      ]);
      this.model.addAround(roomId, seq, before, after);
      return true;
    } catch (error) {
      this.shell.toast(error.message);
      return false;
    }
  }

  /** Opens a room at one of its messages (a search result), with the messages around it. */
  async openMessage(roomId, seq) {
    this.shell.conversation.landAt(roomId, seq);
    if (this.activeRoom === roomId) {
      this.shell.toggleSidebar(false);
      return;
    }
    await this.openRoom(roomId);
  }

  /** Pages back until the message of `seq` is held (a room opens at its first unread
   *  message), a few pages at most: further back, the room opens at the oldest held. */
  async loadBack(roomId, seq) {
    for (let page = 0; page < PAGES_BACK; page++) {
      const room = this.model.room(roomId);
      if (!room || !room.loaded || this.model.liveOldestSeq(room) <= seq) return;
      if (!room.hasMore && !room.detached) return;
      if (!(await this.loadOlder(roomId))) return;
    }
  }

  async loadMembers(roomId) {
    // Answers may come out of order: only the latest asked for counts.
    const ticket = (this.membersAsked.get(roomId) || 0) + 1;
    this.membersAsked.set(roomId, ticket);
    try {
      const asked = this.model.presenceClock;
      const { members } = await get(`/rooms/${roomId}/members`);
      if (this.membersAsked.get(roomId) !== ticket) return;
      this.model.setMembers(roomId, members, asked);
    } catch {
      // The room may have gone; the room list will say so.
    }
  }

  /** Sends a message; it shows as pending until the server confirms it, and is sent again
   *  with the same client_id after every reconnect until then. */
  send(roomId, body, replyTo, attachments = []) {
    const clientId = crypto.randomUUID();
    const original = replyTo && this.model.room(roomId)?.messages.get(replyTo);
    const entry = {
      clientId, roomId, body, replyTo, attachments, createdAt: new Date().toISOString(),
      replyPreview: original ? { message_id: original.id, author_id: original.author_id, preview: original.body.slice(0, 100), deleted: original.deleted } : null,
    };
    this.model.outbox.set(clientId, entry);
    if (roomId === this.activeRoom) this.shell.conversation.followOwn();
    this.model.changed('messages');
    // While messages are held back by the rate limit, a new one waits behind them: sent
    // now, it could be let through by a token that came back meanwhile and overtake them.
    if ([...this.model.outbox.values()].some((held) => held.heldBack)) {
      entry.heldBack = true;
      return;
    }
    this.sendFrame(entry);
  }

  sendFrame(entry) {
    if (entry.failed) return;
    const frame = { type: 'send', room_id: entry.roomId, body: entry.body, client_id: entry.clientId };
    if (entry.replyTo) frame.reply_to = entry.replyTo;
    if (entry.attachments.length) frame.attachments = entry.attachments.map((file) => file.id);
    this.connection.send(frame);
  }

  discardPending(clientId) {
    const entry = this.model.outbox.get(clientId);
    if (entry) clearTimeout(entry.resendTimer);
    this.model.outbox.delete(clientId);
    this.model.changed('messages');
  }

  /** Tries a failed message again, with its client_id, as if it were new; offline, it goes
   *  when the connection is back. */
  retryPending(clientId) {
    const entry = this.model.outbox.get(clientId);
    if (!entry) return;
    entry.failed = null;
    entry.resends = 0;
    this.model.changed('messages');
    this.sendFrame(entry);
  }

  /** Fetches a user no member list holds (the author of an old message, say), once. */
  lookUpUser(userId) {
    if (this.model.users.has(userId) || this.lookups.has(userId)) return;
    this.lookups.set(userId, get(`/users/${encodeURIComponent(userId)}`)
      .then((user) => this.model.addUser(user))
      .catch((error) => {
        // Shown as unknown meanwhile. A user that is gone (404) stays so; otherwise the
        // next render after a minute asks again.
        if (error.status !== 404) setTimeout(() => this.lookups.delete(userId), 60_000);
      }));
  }

  edit(roomId, messageId, body) {
    this.request({ type: 'edit', room_id: roomId, message_id: messageId, body }, () =>
      api('PATCH', `/rooms/${roomId}/messages/${messageId}`, { body }));
  }

  remove(roomId, messageId) {
    this.request({ type: 'delete', room_id: roomId, message_id: messageId }, () =>
      api('DELETE', `/rooms/${roomId}/messages/${messageId}`));
  }

  /** Deletes someone else's message in a public room, as an administrator; the deletion
   *  comes back as `message.deleted` like any other. */
  async removeAsAdmin(roomId, messageId) {
    try {
      await api('DELETE', `/admin/rooms/${roomId}/messages/${messageId}`);
    } catch (error) {
      this.shell.toast(error.message);
    }
  }

  toggleReaction(roomId, messageId, emoji) {
    const message = this.model.room(roomId)?.messages.get(messageId);
    const mine = message?.reactions.find((r) => r.emoji === emoji)?.user_ids.includes(this.model.me.id);
    this.request({ type: 'react', room_id: roomId, message_id: messageId, emoji, remove: !!mine }, () =>
      api(mine ? 'DELETE' : 'PUT', `/rooms/${roomId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`));
  }

  /** A change over the socket when connected, over HTTP otherwise; the room's event
   *  confirms it either way. */
  request(frame, overHttp) {
    if (!this.connection.send(frame)) overHttp().catch((error) => this.shell.toast(error.message));
  }

  typing(roomId) {
    const now = Date.now();
    if ((this.typingSent.get(roomId) || 0) + TYPING_EVERY_MS > now) return;
    this.typingSent.set(roomId, now);
    this.connection.send({ type: 'typing', room_id: roomId });
  }

  stoppedTyping(roomId) {
    this.typingSent.delete(roomId);
  }

  /** After `ready`: every DM's messages up to its `last_seq` have reached this page, or
   *  will with the sync that follows. */
  markDeliveredUpTo(readyRooms) {
    for (const entry of readyRooms) {
      if (entry.last_seq > 0 && this.model.room(entry.room_id)?.info.kind === 'dm') this.markDelivered(entry.room_id, entry.last_seq);
    }
  }

  markDelivered(roomId, seq) {
    if ((this.deliveredSent.get(roomId) || 0) >= seq) return;
    // Noted only once it went out: otherwise the next `ready` sends it.
    if (this.connection.send({ type: 'delivered', room_id: roomId, seq })) this.deliveredSent.set(roomId, seq);
  }

  /** Moves a room's read marker up to `seq`: the conversation calls this for what has
   *  been on screen. The counts drop at once by what is held (the server's `unread` frame
   *  then says exactly); the marker goes to the server at most every READ_EVERY_MS. */
  markRead(roomId, seq) {
    const room = this.model.room(roomId);
    if (!room || seq <= room.lastReadSeq) return;
    const before = room.lastReadSeq;
    room.lastReadSeq = seq;
    const me = this.model.me.id;
    const counts = (from, to) => {
      let unread = 0;
      let mentions = 0;
      for (const message of room.messages.values()) {
        if (message.seq <= from || message.seq > to || message.author_id === me || message.deleted) continue;
        unread += 1;
        if (message.mentions.includes(me)) mentions += 1;
      }
      return { unread, mentions };
    };
    if (room.detached === null) {
      // The room holds everything after the marker: what is left unread is what it holds.
      const left = counts(seq, Infinity);
      room.unread = Math.min(room.unread, left.unread);
      room.mentions = Math.min(room.mentions, left.mentions);
    } else {
      // With a gap, what it holds after the marker is not all that is unread: the counts
      // drop by what it holds of what was just read (the server's `unread` says exactly).
      const read = counts(before, seq);
      room.unread = Math.max(0, room.unread - read.unread);
      room.mentions = Math.max(0, room.mentions - read.mentions);
    }
    this.model.changed('rooms');
    this.readsDue.set(roomId, seq);
    if (!this.readTimer) this.readTimer = setTimeout(() => this.sendReads(), READ_EVERY_MS);
  }

  sendReads() {
    this.readTimer = null;
    for (const [roomId, seq] of this.readsDue) {
      if (!this.connection.send({ type: 'read', room_id: roomId, seq })) {
        post(`/rooms/${roomId}/read`, { seq }).catch(() => {});
      }
    }
    this.readsDue.clear();
  }

  async loadBlocks() {
    try {
      const { users } = await get('/me/blocks');
      this.model.setBlocked(users);
    } catch (error) {
      this.shell.toast(error.message);
    }
  }

  /** Blocks a user: the server hides your DM with them (its `room.removed` reaches every
   *  connection; the room list is read again too, in case this one is down). Rejects with
   *  the server's error. */
  async block(user) {
    await api('PUT', `/me/blocks/${encodeURIComponent(user.id)}`);
    this.model.blocked.set(user.id, user);
    this.model.changed('blocks');
    this.shell.toast(`You blocked ${user.display_name}.`);
    await this.refreshRooms();
    if (this.activeRoom && !this.model.room(this.activeRoom)) this.openRoom(null);
  }

  /** Unblocks a user; your DM with them, if any, comes back. */
  async unblock(user) {
    await api('DELETE', `/me/blocks/${encodeURIComponent(user.id)}`);
    this.model.blocked.delete(user.id);
    this.model.changed('blocks');
    this.shell.toast(`You unblocked ${user.display_name}.`);
    await this.refreshRooms();
  }

  /** Leaves a room (its `room.removed` closes it here and on your other devices). */
  async leave(roomId) {
    await post(`/rooms/${roomId}/leave`);
    this.model.rooms.delete(roomId);
    this.model.changed('rooms');
    if (this.activeRoom === roomId) this.openRoom(null);
  }

  async saveProfile(changes) {
    const user = await api('PATCH', '/me', changes);
    this.model.updateUser(user);
    return user;
  }

  async signOut() {
    this.connection.stop();
    try {
      await post('/auth/logout');
    } finally {
      location.reload();
    }
  }

  // Attention: the tab title, notifications, away.

  watchAttention() {
    const back = () => {
      this.setAway(false);
      this.shell.conversation.noteSeen();
    };
    window.addEventListener('focus', back);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') back();
      else this.setAway(true);
    });
    let idle = null;
    const active = () => {
      clearTimeout(idle);
      if (this.away && document.visibilityState === 'visible') this.setAway(false);
      idle = setTimeout(() => this.setAway(true), AWAY_AFTER_MS);
    };
    for (const event of ['pointerdown', 'keydown', 'pointermove']) window.addEventListener(event, active, { passive: true });
    active();
  }

  setAway(away) {
    if (this.away === away) return;
    this.away = away;
    this.connection.send({ type: 'presence', status: away ? 'away' : 'online' });
  }

  notificationsAllowed() {
    return 'Notification' in window && Notification.permission === 'granted';
  }

  async enableNotifications() {
    if (!('Notification' in window)) return this.shell.toast('This browser cannot show notifications.');
    const permission = await Notification.requestPermission();
    this.shell.render();
    return permission;
  }

  notify(message, mention) {
    if (!this.notificationsAllowed() || document.visibilityState === 'visible') return;
    const room = this.model.room(message.room_id);
    const author = this.model.users.get(message.author_id);
    // A notification is drawn outside the page, as plain text: names are isolated with
    // the characters a <bdi> stands for.
    const title = (mention ? 'Mentioned by ' : '') + (author ? isolated(author.display_name) : 'Someone') + (room && room.info.kind !== 'dm' ? ' in ' + isolated(room.info.name) : '');
    const notification = new Notification(title, { body: message.body.slice(0, 200), tag: message.id });
    notification.onclick = () => {
      window.focus();
      this.openRoom(message.room_id);
    };
  }
}

boot();
