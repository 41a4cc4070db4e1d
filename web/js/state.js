// The client's model of the server: rooms, their messages, members, receipts, typing and
// counts, and the outbox of messages not yet confirmed. `apply` takes every server frame;
// views read the model and re-render when it announces a change.
//
// Rules it keeps (docs/api.md, "Ordering and catching up" and "Receipts and counts"):
// messages are keyed by id and ordered by their own seq; every event is applied
// idempotently; `seen` is the highest seq applied per room, which is what a reconnect
// syncs from; unread counts follow the server's rule between its exact `unread` frames.
//
// A loaded room holds a run of its messages with no gap, up to the newest (the live run,
// which live events extend), and at most one more run further back, around a message
// opened from search (the detached run): every message with a seq up to `detached.to`
// is held from the oldest held on, then a gap of unknown length, then the live run. Paging
// newer from the detached run, or older from the live run, fills the gap until the two
// join. Nothing is ever put into the gap but a page that continues one of the runs.

const TYPING_LAPSES_MS = 6_000;
/** Reaction events for messages not loaded yet, kept per room until history arrives. */
const MAX_EARLY_REACTIONS = 200;
/** Older messages kept for the replies that quote them, per room. */
const MAX_ORIGINALS = 500;

export class Model {
  constructor(me) {
    this.me = me;
    /** Whether you administer the server (`GET /me`'s `admin`): the sidebar then offers
     *  Administration, and public rooms' messages a Delete. */
    this.admin = Boolean(me.admin);
    this.rooms = new Map();
    this.users = new Map([[me.id, me]]);
    this.presence = new Map();
    /** When users went offline, by id, from `presence` frames (views/presence.js reads it). */
    this.lastSeen = new Map();
    /** Live presence changes, counted, and the count at each user's latest: a member list
     *  asked for before someone's latest change holds older news of them. */
    this.presenceClock = 0;
    this.presenceAt = new Map();
    /** The users this user blocks, by id (GET /me/blocks, then kept by the client). */
    this.blocked = new Map();
    /** Sends not yet confirmed, by client_id: {clientId, roomId, body, replyTo, failed}. */
    this.outbox = new Map();
    this.listeners = new Set();
  }

  /** Calls `listener(what)` on every change; returns a function that stops it. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(what) {
    for (const listener of this.listeners) listener(what);
  }

  /** A room's state, created from a server Room object if new. */
  room(id) {
    return this.rooms.get(id);
  }

  addRoom(room) {
    const existing = this.rooms.get(room.id);
    const state = existing || {
      id: room.id,
      messages: new Map(),
      loaded: false,
      hasMore: true,
      seen: room.last_seq,
      liveFrom: room.last_seq,
      earlyReactions: [],
      /** Messages older than those held, known for the replies that quote them. */
      originals: new Map(),
      /** The ids of `messages` in seq order, or null until next asked for. */
      order: null,
      /** The run held apart from the live one, far back: {to}, the seq of its newest
       *  message (it starts at the oldest held); null when the room holds one run. */
      detached: null,
      members: new Map(),
      receipts: new Map(),
      typing: new Map(),
    };
    state.info = room;
    state.lastSeq = Math.max(existing ? existing.lastSeq : 0, room.last_seq);
    state.lastReadSeq = room.last_read_seq ?? 0;
    state.unread = room.unread_count ?? 0;
    state.mentions = room.mention_count ?? 0;
    if (room.peer) this.users.set(room.peer.id, room.peer);
    // A loaded room's history comes in order (a sync); the room list's last message would
    // stand below a gap until then.
    if (room.last_message && !state.loaded) this.upsert(state, room.last_message);
    this.rooms.set(room.id, state);
    return state;
  }

  setRooms(rooms) {
    const ids = new Set(rooms.map((room) => room.id));
    for (const id of this.rooms.keys()) if (!ids.has(id)) this.rooms.delete(id);
    for (const room of rooms) this.addRoom(room);
    this.changed('rooms');
  }

  setBlocked(users) {
    this.blocked = new Map(users.map((user) => [user.id, user]));
    this.changed('blocks');
  }

  /** A room's member list, asked for when `presenceClock` stood at `asked`: the presence
   *  of a member who changed since then is the live one, not the list's. */
  setMembers(roomId, members, asked = Infinity) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.members = new Map(members.map((member) => [member.id, member]));
    for (const member of members) {
      this.users.set(member.id, member);
      if ((this.presenceAt.get(member.id) ?? 0) > asked) {
        const status = this.presence.get(member.id);
        member.presence = { status, last_seen_at: this.lastSeen.get(member.id) ?? member.presence.last_seen_at };
      } else {
        this.presence.set(member.id, member.presence.status);
      }
      const known = room.receipts.get(member.id);
      if (!known || known.read_seq < member.read_seq) {
        room.receipts.set(member.id, { read_seq: member.read_seq, delivered_seq: Math.max(member.read_seq, known ? known.delivered_seq : 0) });
      }
    }
    this.changed('members');
  }

  /** Adds a page of history, then the reaction events that arrived for its messages
   *  before it did (applying one twice changes nothing). */
  addHistory(roomId, messages, hasMore, older) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (!older && !room.loaded) this.dropUnjoined(room, messages);
    for (const message of messages) this.upsert(room, message);
    if (older || !room.loaded) room.hasMore = hasMore;
    // Only the newest page makes a room loaded: an older one that came first (it should
    // not) must not let the newest skip `dropUnjoined`.
    if (!older) room.loaded = true;
    this.afterHistory(room);
  }

  /** Before a room's first page, what it holds came piecemeal: the room list's last
   *  message, live events, perhaps from before a reconnect (which does not sync a room not
   *  loaded). Older than the page, there may be a gap between them, and paging back starts
   *  from the oldest message held: so within and before the page's range only the page
   *  counts. What is newer came live while it was fetched, and joins it. */
  dropUnjoined(room, page) {
    room.detached = null;
    if (page.length === 0) return;
    const newest = page[page.length - 1].seq;
    const fetched = new Set(page.map((message) => message.id));
    for (const [id, message] of room.messages) {
      if (message.seq <= newest && !fetched.has(id)) room.messages.delete(id);
    }
    room.order = null;
  }

  /** Forgets that a room's history is loaded, so that it is fetched afresh over HTTP when
   *  next shown: for when catching up over the socket failed. */
  unload(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.loaded = false;
    room.hasMore = true;
    room.syncFrom = undefined;
  }

  /** A user met outside the member lists (say, the author of an old message). */
  addUser(user) {
    if (this.users.has(user.id)) return;
    this.users.set(user.id, user);
    this.changed('messages');
    this.changed('typing');
  }

  /** Adds the two pages around the message of `seq` (`before`: up to it, `after`: after
   *  it), which run on without a gap. If they reach the live run they join it; otherwise
   *  they become the detached run, in place of any there was. */
  addAround(roomId, seq, before, after) {
    const room = this.rooms.get(roomId);
    if (!room || !room.loaded) return;
    if (room.detached) {
      for (const [id, message] of room.messages) if (message.seq <= room.detached.to) room.messages.delete(id);
      room.detached = null;
      room.order = null;
    }
    const liveFrom = this.liveOldestSeq(room);
    const fetched = before.messages.concat(after.messages);
    const joins = !after.has_more || fetched.some((message) => message.seq >= liveFrom);
    for (const message of fetched) this.upsert(room, message);
    if (fetched.length && fetched[0].seq < liveFrom) room.hasMore = before.has_more;
    if (!joins) room.detached = { to: fetched.length ? fetched[fetched.length - 1].seq : seq };
    this.afterHistory(room);
  }

  /** Adds the page after the detached run `run` (asked for with `after=run.to`): it
   *  extends the run, or joins it to the live one once it reaches it. A page for a run
   *  since replaced or joined is dropped. */
  addNewer(roomId, run, messages, hasMore) {
    const room = this.rooms.get(roomId);
    if (!room || room.detached !== run) return;
    const liveFrom = this.liveOldestSeq(room);
    if (!hasMore || messages.some((message) => message.seq >= liveFrom)) room.detached = null;
    else run.to = messages[messages.length - 1].seq;
    for (const message of messages) this.upsert(room, message);
    this.afterHistory(room);
  }

  /** Adds the page before the live run's oldest message while a detached run lies further
   *  back: it extends the live run down into the gap, or joins the two once it reaches the
   *  detached run. `room.hasMore` is about what lies before the oldest held: unchanged. */
  addGap(roomId, messages, hasMore) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const run = room.detached;
    if (run && (!hasMore || messages.length === 0 || messages[0].seq <= run.to)) room.detached = null;
    for (const message of messages) this.upsert(room, message);
    this.afterHistory(room);
  }

  /** After history came: the reactions that waited for its messages. */
  afterHistory(room) {
    const early = room.earlyReactions;
    room.earlyReactions = [];
    for (const frame of early) this.react(room, frame);
    this.changed('messages');
  }

  /** Messages of a room in seq order: those of the live run (`part` 'live', the pending
   *  ones after them) or of the detached run ('detached'). The order is kept between
   *  calls: a room may hold thousands, and a new message usually goes last. */
  messagesOf(roomId, part = 'live') {
    const room = this.rooms.get(roomId);
    if (!room) return [];
    if (!room.order) room.order = [...room.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => m.id);
    const split = this.liveStart(room);
    const ids = part === 'detached' ? room.order.slice(0, split) : split === 0 ? room.order : room.order.slice(split);
    const stored = ids.map((id) => room.messages.get(id));
    if (part === 'detached') return stored;
    const pending = [...this.outbox.values()]
      .filter((entry) => entry.roomId === roomId)
      .map((entry) => ({
        id: 'pending-' + entry.clientId,
        pending: true,
        failed: entry.failed,
        room_id: roomId,
        author_id: this.me.id,
        body: entry.body,
        retrying: entry.retrying,
        created_at: entry.createdAt,
        reply_to: entry.replyPreview || null,
        reactions: [],
        mentions: [],
        attachments: entry.attachments,
      }));
    return stored.concat(pending);
  }

  upsert(room, message) {
    if (message.author_id === this.me.id && message.client_id) this.outbox.delete(message.client_id);
    if (!room.messages.has(message.id) && room.order) {
      const last = room.order.length ? room.messages.get(room.order[room.order.length - 1]) : null;
      if (!last || last.seq < message.seq) room.order.push(message.id);
      else room.order = null;
    }
    room.messages.set(message.id, message);
    if (room.originals.has(message.id)) room.originals.set(message.id, message);
    if (!room.info.last_message || room.info.last_message.seq <= message.seq) room.info.last_message = message;
  }

  /** A user's new profile, wherever it shows. */
  updateUser(user) {
    this.users.set(user.id, user);
    if (user.id === this.me.id) this.me = user;
    for (const room of this.rooms.values()) {
      const member = room.members.get(user.id);
      if (member) room.members.set(user.id, { ...member, ...user });
      if (room.info.peer && room.info.peer.id === user.id) {
        room.info.peer = user;
        room.info.name = user.display_name;
      }
    }
    this.changed('rooms');
    this.changed('messages');
  }

  totalUnread() {
    let total = 0;
    for (const room of this.rooms.values()) total += room.unread;
    return total;
  }

  usernames() {
    const names = new Set();
    for (const user of this.users.values()) names.add(user.username);
    return names;
  }

  /** Applies one server frame. Returns what a notification might want: the message of a
   *  `message.created` by someone else, or a `mention`. */
  apply(frame) {
    const room = frame.room_id ? this.rooms.get(frame.room_id) : null;
    if (frame.seq !== undefined && room) room.seen = Math.max(room.seen, frame.seq);
    switch (frame.type) {
      case 'ready':
        for (const entry of frame.rooms) {
          const known = this.rooms.get(entry.room_id);
          if (!known) continue;
          // A room whose history is not loaded has nothing to catch up: it starts here.
          if (!known.loaded) known.seen = entry.last_seq;
          // The counts below include everything up to here; only later messages count on.
          known.liveFrom = entry.last_seq;
          known.lastSeq = entry.last_seq;
          known.lastReadSeq = entry.last_read_seq;
          known.unread = entry.unread_count;
          known.mentions = entry.mention_count;
        }
        this.changed('rooms');
        return null;
      case 'message.created':
        return room ? this.created(room, frame.message, frame.seq) : null;
      case 'message.updated':
        if (room) this.updated(room, frame.message, frame.seq);
        return null;
      case 'message.deleted':
        if (room) this.deleted(room, frame.message, frame.seq);
        return null;
      case 'message.ack': {
        const target = this.rooms.get(frame.message.room_id);
        if (target) this.upsert(target, frame.message);
        this.outbox.delete(frame.client_id);
        this.changed('messages');
        return null;
      }
      case 'reaction.added':
      case 'reaction.removed':
        if (room) this.react(room, frame);
        return null;
      case 'typing':
        if (room) {
          room.typing.set(frame.user_id, Date.now() + TYPING_LAPSES_MS);
          this.changed('typing');
        }
        return null;
      case 'presence':
        this.setPresence(frame.user_id, frame.status, frame.last_seen_at);
        this.changed('presence');
        return null;
      case 'presence.snapshot': {
        // Everyone not listed is offline: in the one room, or in every room.
        const present = new Map(frame.users.map((u) => [u.user_id, u.status]));
        const scope = room ? [room] : [...this.rooms.values()];
        const known = new Set(scope.flatMap((r) => [...r.members.keys(), r.info.peer ? r.info.peer.id : null]));
        if (!room) for (const id of this.presence.keys()) known.add(id);
        for (const id of known) if (id && id !== this.me.id) this.setPresence(id, present.get(id) || 'offline');
        for (const [id, status] of present) this.setPresence(id, status);
        this.changed('presence');
        return null;
      }
      case 'receipts':
        // Markers only rise: keep the highest of what is known and what arrives.
        if (room) {
          for (const r of frame.receipts) {
            const known = room.receipts.get(r.user_id);
            room.receipts.set(r.user_id, {
              read_seq: Math.max(r.read_seq, known ? known.read_seq : 0),
              delivered_seq: Math.max(r.delivered_seq, known ? known.delivered_seq : 0),
            });
          }
          this.changed('receipts');
        }
        return null;
      case 'unread':
        if (room) {
          room.lastReadSeq = frame.last_read_seq;
          room.unread = frame.unread_count;
          room.mentions = frame.mention_count;
          this.changed('rooms');
        }
        return null;
      case 'mention':
        return { mention: frame.message };
      case 'room.removed':
        this.rooms.delete(frame.room_id);
        this.changed('rooms');
        return null;
      default:
        return null;
    }
  }

  setPresence(userId, status, lastSeenAt) {
    this.presenceClock += 1;
    this.presenceAt.set(userId, this.presenceClock);
    this.presence.set(userId, status);
    if (lastSeenAt) this.lastSeen.set(userId, lastSeenAt);
    for (const state of this.rooms.values()) {
      const member = state.members.get(userId);
      if (member) member.presence = { status, last_seen_at: lastSeenAt ?? member.presence.last_seen_at };
    }
  }

  /** Whether an event counts towards unread: it is live (catching up sends what `ready`'s
   *  counts already hold), by someone else, and after the read marker. */
  countsAsUnread(room, message, seq) {
    return seq > room.liveFrom && message.author_id !== this.me.id && message.seq > room.lastReadSeq;
  }

  created(room, message, seq) {
    const known = room.messages.has(message.id);
    this.upsert(room, message);
    room.lastSeq = Math.max(room.lastSeq, message.seq);
    room.typing.delete(message.author_id);
    // An author has read everything up to their own message (docs/api.md): the server
    // moves their marker with the message itself, and sends no receipt for it.
    const marker = room.receipts.get(message.author_id);
    if (marker && marker.read_seq < message.seq) {
      room.receipts.set(message.author_id, { read_seq: message.seq, delivered_seq: Math.max(marker.delivered_seq, message.seq) });
      this.changed('receipts');
    }
    let notify = null;
    if (message.author_id === this.me.id) {
      // Sending reads everything up to one's own message.
      room.lastReadSeq = Math.max(room.lastReadSeq, message.seq);
      room.unread = 0;
      room.mentions = 0;
    } else if (!known && !message.deleted && this.countsAsUnread(room, message, seq)) {
      room.unread += 1;
      if (message.mentions.includes(this.me.id)) room.mentions += 1;
      notify = { message };
    }
    this.changed('messages');
    this.changed('rooms');
    return notify;
  }

  /** Whether a change to `message` concerns one outside the runs held (older than them,
   *  or in the gap between the detached run and the live one): it is kept apart, for the
   *  replies that quote it, rather than among them with a gap between. */
  outsideHeld(room, message) {
    if (room.messages.has(message.id)) return false;
    if (message.seq < this.oldestSeq(room)) return true;
    return room.detached !== null && message.seq > room.detached.to && message.seq < this.liveOldestSeq(room);
  }

  /** The seq of the oldest message a room holds (Infinity if none), from its kept order. */
  oldestSeq(room) {
    if (room.messages.size === 0) return Infinity;
    if (!room.order) this.messagesOf(room.id);
    return room.messages.get(room.order[0]).seq;
  }

  /** The seq of the oldest message of the live run (Infinity if it holds none). */
  liveOldestSeq(room) {
    const start = this.liveStart(room);
    return start < room.order.length ? room.messages.get(room.order[start]).seq : Infinity;
  }

  /** Where the live run starts in the room's kept order: after the detached run. */
  liveStart(room) {
    if (!room.order) this.messagesOf(room.id);
    if (!room.detached) return 0;
    let low = 0;
    let high = room.order.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (room.messages.get(room.order[middle]).seq <= room.detached.to) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Whether the message of `seq` lies within a run held (it may be one not delivered
   *  yet, at the live end). */
  holds(room, seq) {
    if (seq >= this.liveOldestSeq(room)) return true;
    return room.detached !== null && seq >= this.oldestSeq(room) && seq <= room.detached.to;
  }

  keepOriginal(room, message) {
    room.originals.set(message.id, message);
    if (room.originals.size > MAX_ORIGINALS) room.originals.delete(room.originals.keys().next().value);
    this.changed('messages');
  }

  /** An edit may add or remove a mention of me in a message I have not read. */
  updated(room, message, seq) {
    if (this.outsideHeld(room, message)) return this.keepOriginal(room, message);
    const before = room.messages.get(message.id);
    if (before && !message.deleted && this.countsAsUnread(room, message, seq)) {
      const was = before.mentions.includes(this.me.id);
      const is = message.mentions.includes(this.me.id);
      if (is && !was) room.mentions += 1;
      if (was && !is) room.mentions = Math.max(0, room.mentions - 1);
      this.changed('rooms');
    }
    this.upsert(room, message);
    this.changed('messages');
  }

  deleted(room, tombstone, seq) {
    if (this.outsideHeld(room, tombstone)) return this.keepOriginal(room, tombstone);
    const before = room.messages.get(tombstone.id);
    const counted = before && !before.deleted && this.countsAsUnread(room, before, seq);
    if (counted) {
      room.unread = Math.max(0, room.unread - 1);
      if (before.mentions.includes(this.me.id)) room.mentions = Math.max(0, room.mentions - 1);
    }
    this.upsert(room, tombstone);
    this.changed('messages');
    this.changed('rooms');
  }

  /** Applies a reaction event; one for a message not loaded yet waits for its history. */
  react(room, frame) {
    const { message_id: messageId, emoji, user_id: userId } = frame;
    const added = frame.type === 'reaction.added';
    const message = room.messages.get(messageId);
    if (!message) {
      if (room.earlyReactions.length < MAX_EARLY_REACTIONS) room.earlyReactions.push(frame);
      return;
    }
    const reactions = message.reactions.map((r) => ({ ...r, user_ids: [...r.user_ids] }));
    let reaction = reactions.find((r) => r.emoji === emoji);
    if (added) {
      if (!reaction) reactions.push((reaction = { emoji, count: 0, user_ids: [] }));
      if (!reaction.user_ids.includes(userId)) reaction.user_ids.push(userId);
    } else if (reaction) {
      reaction.user_ids = reaction.user_ids.filter((id) => id !== userId);
    }
    for (const r of reactions) r.count = r.user_ids.length;
    room.messages.set(messageId, { ...message, reactions: reactions.filter((r) => r.count > 0) });
    this.changed('messages');
  }

  /** Who is typing in a room now, lapsed entries dropped. */
  typingIn(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return [];
    const now = Date.now();
    for (const [user, until] of room.typing) if (until <= now) room.typing.delete(user);
    return [...room.typing.keys()].filter((id) => id !== this.me.id);
  }

  /** The seqs to sync from after a reconnect: rooms whose history is loaded. A room still
   *  being synced resumes from where that sync started: live events mix with it, and
   *  resuming from them would skip the rest (docs/api.md, "Ordering and catching up"). */
  syncPoints() {
    const since = {};
    for (const room of this.rooms.values()) if (room.loaded) since[room.id] = room.syncFrom ?? room.seen;
    return since;
  }

  /** Notes that a sync from `since` is under way. */
  startSync(since) {
    for (const [id, seq] of Object.entries(since)) {
      const room = this.rooms.get(id);
      if (room) room.syncFrom = seq;
    }
  }

  /** The rooms a sync is under way for; it is over once `sync.done` comes. */
  syncing() {
    return [...this.rooms.values()].filter((room) => room.syncFrom !== undefined).map((room) => room.id);
  }

  syncDone() {
    for (const room of this.rooms.values()) room.syncFrom = undefined;
  }
}
