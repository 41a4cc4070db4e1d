// Confab's web client: signs in, keeps a model of the user's rooms in step with the server
// over one WebSocket, and renders it. It uses only the public API (docs/api.md).

import { ApiError, api, get, post } from './api.js';
import { Connection } from './connection.js';
import { Model } from './state.js';
import { showAuth } from './views/auth.js';
import { Shell } from './views/shell.js';

const root = document.getElementById('app');
const AWAY_AFTER_MS = 5 * 60_000;
const TYPING_EVERY_MS = 3_000;

async function boot() {
  try {
    start(await get('/me'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showAuth(root, start);
    else root.textContent = 'Confab cannot be reached: ' + error.message;
  }
}

function start(me) {
  const model = new Model(me);
  const client = new Client(model);
  client.run();
}

/** Everything the signed-in page does: the actions the views call, and the reactions to
 *  frames from the server. */
class Client {
  constructor(model) {
    this.model = model;
    this.activeRoom = null;
    this.typingSent = new Map();
    this.deliveredSent = new Map();
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
      return;
    }
    if (frame.type === 'error') return this.onError(frame);
    if (frame.type === 'user.updated') {
      this.model.updateUser(frame.user);
      return;
    }
    const notable = this.model.apply(frame);
    if (frame.type === 'message.created' || frame.type === 'sync.done') {
      if (notable && notable.message) this.onIncoming(notable.message);
      this.markReadIfLooking();
    }
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
    if (differs) this.refreshRooms();
    const since = this.model.syncPoints();
    if (Object.keys(since).length > 0) this.connection.send({ type: 'sync', since });
    for (const entry of this.model.outbox.values()) this.sendFrame(entry);
    if (document.visibilityState === 'hidden') this.connection.send({ type: 'presence', status: 'away' });
    if (this.activeRoom) this.loadMembers(this.activeRoom);
  }

  onError(frame) {
    const entry = frame.client_id && this.model.outbox.get(frame.client_id);
    if (entry) {
      // Refused for good (a retry would be refused again): show it as failed.
      entry.failed = frame.message;
      this.model.changed('messages');
    }
    this.shell.toast(frame.message);
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
    if (room && !room.loaded) {
      try {
        const page = await get(`/rooms/${roomId}/messages?limit=50`);
        this.model.addHistory(roomId, page.messages, page.has_more, false);
      } catch (error) {
        this.shell.toast(error.message);
      }
    }
    this.loadMembers(roomId);
    this.markReadIfLooking();
  }

  async loadOlder(roomId) {
    const room = this.model.room(roomId);
    if (!room || !room.hasMore || room.loadingOlder) return;
    const oldest = [...room.messages.values()].reduce((min, m) => Math.min(min, m.seq), Infinity);
    if (!Number.isFinite(oldest)) return;
    room.loadingOlder = true;
    try {
      const page = await get(`/rooms/${roomId}/messages?before=${oldest}&limit=50`);
      this.model.addHistory(roomId, page.messages, page.has_more, true);
    } catch (error) {
      this.shell.toast(error.message);
    } finally {
      room.loadingOlder = false;
    }
  }

  async loadMembers(roomId) {
    try {
      const { members } = await get(`/rooms/${roomId}/members`);
      this.model.setMembers(roomId, members);
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
    this.model.changed('messages');
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
    this.model.outbox.delete(clientId);
    this.model.changed('messages');
  }

  edit(roomId, messageId, body) {
    this.request({ type: 'edit', room_id: roomId, message_id: messageId, body }, () =>
      api('PATCH', `/rooms/${roomId}/messages/${messageId}`, { body }));
  }

  remove(roomId, messageId) {
    this.request({ type: 'delete', room_id: roomId, message_id: messageId }, () =>
      api('DELETE', `/rooms/${roomId}/messages/${messageId}`));
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

  markDelivered(roomId, seq) {
    if ((this.deliveredSent.get(roomId) || 0) >= seq) return;
    this.deliveredSent.set(roomId, seq);
    this.connection.send({ type: 'delivered', room_id: roomId, seq });
  }

  /** Marks the open room read when the user can see it: it is open and the page is visible
   *  (then again whenever the window comes back into view or focus). */
  markReadIfLooking() {
    const room = this.activeRoom && this.model.room(this.activeRoom);
    if (!room || document.visibilityState !== 'visible') return;
    const newest = Math.max(room.lastSeq, room.seen);
    if (newest <= room.lastReadSeq && room.unread === 0) return;
    room.lastReadSeq = newest;
    room.unread = 0;
    room.mentions = 0;
    this.model.changed('rooms');
    if (!this.connection.send({ type: 'read', room_id: room.id, seq: newest })) {
      post(`/rooms/${room.id}/read`, { seq: newest }).catch(() => {});
    }
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
      this.markReadIfLooking();
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
    await Notification.requestPermission();
    this.shell.render();
  }

  notify(message, mention) {
    if (!this.notificationsAllowed() || document.visibilityState === 'visible') return;
    const room = this.model.room(message.room_id);
    const author = this.model.users.get(message.author_id);
    const title = (mention ? 'Mentioned by ' : '') + (author ? author.display_name : 'Someone') + (room && room.info.kind !== 'dm' ? ' in ' + room.info.name : '');
    const notification = new Notification(title, { body: message.body.slice(0, 200), tag: message.id });
    notification.onclick = () => {
      window.focus();
      this.openRoom(message.room_id);
    };
  }
}

boot();
