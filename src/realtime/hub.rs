//! The hub: which of this process's connections want which room's events.
//!
//! The bus hands every event to [`Hub::dispatch`], which offers it to the bounded queue of
//! each connection concerned. Offering never waits: a connection whose queue is full is
//! told to close (it is too slow, and will resume with a `sync` when it reconnects), so one
//! slow client never delays another and never makes the server's memory grow.
//!
//! Presence is added up twice. Each user's connections here add up to what this node says
//! of them (`UserPeers`); each node's word on a user, this one's included, adds up to what
//! this node shows its connections (`Presences`): online while any node says online.
//!
//! Architecture invariant: the hub only moves pre-serialized frames and small control
//! messages (it serializes only a presence frame, once per change of what it shows); it
//! never does IO and never awaits while holding a lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::peer::{CloseRequest, Moment, Outbound, Peer, PeerPresence, RoomEvent, RoomHead};
use super::protocol::ServerFrame;
use crate::bus::{BusEvent, NodeId};
use crate::domain::{Presence, PresenceStatus, RoomId, SessionId, Timestamp, UserId};

/// A user's connections on this node, and the presence they add up to. Kept while the user
/// has a connection here, or a presence change not yet dispatched; then forgotten.
struct UserPeers {
    peers: Vec<Arc<Peer>>,
    /// The status last announced for this user.
    status: Option<PresenceStatus>,
    /// The version of the user's newest presence change.
    computed: u64,
    /// The version of the newest presence change dispatched: an older one arriving late is
    /// dropped.
    dispatched: u64,
    /// Counts the membership changes dispatched for this user, so that a check against
    /// the store applies only if none came in while it read.
    memberships: u64,
}

impl UserPeers {
    /// A user who was not here: every presence version so far, `clock`, is older than
    /// anything they will announce now, so a late announcement from a previous visit is
    /// dropped.
    fn new(clock: u64) -> Self {
        Self { peers: Vec::new(), status: None, computed: clock, dispatched: clock, memberships: 0 }
    }

    /// Nothing is left to remember: no connection, no announcement on its way.
    fn is_done(&self) -> bool {
        self.peers.is_empty() && self.dispatched >= self.computed
    }

    /// Online if any connection is, away if every started one is, offline with none.
    fn status(&self) -> PresenceStatus {
        let mut away = false;
        for peer in &self.peers {
            match peer.presence() {
                PeerPresence::Online => return PresenceStatus::Online,
                PeerPresence::Away => away = true,
                PeerPresence::Starting => {}
            }
        }
        if away { PresenceStatus::Away } else { PresenceStatus::Offline }
    }
}

/// This node's connections that follow a room.
#[derive(Default)]
struct Subscribers {
    /// A Vec: dispatch walks it on every event, subscription changes are rare.
    peers: Vec<Arc<Peer>>,
    /// The highest seq of the room this hub has dispatched, for `realtime::repair` to
    /// notice events the bus lost.
    seen: AtomicI64,
}

/// What one node says of a user.
struct Word {
    status: PresenceStatus,
    version: u64,
    /// The rooms the user's connections on that node follow.
    rooms: Vec<RoomId>,
    /// When it was said.
    at: Instant,
}

/// Every node's word on a user, and what this node shows its connections.
#[derive(Default)]
struct Presences {
    words: HashMap<NodeId, Word>,
    shown: Option<PresenceStatus>,
}

impl Presences {
    /// Online if any node says so, away if any says away, offline otherwise.
    fn sum(&self) -> PresenceStatus {
        let mut sum = PresenceStatus::Offline;
        for word in self.words.values() {
            match word.status {
                PresenceStatus::Online => return PresenceStatus::Online,
                PresenceStatus::Away => sum = PresenceStatus::Away,
                PresenceStatus::Offline => {}
            }
        }
        sum
    }

    fn shown(&self) -> PresenceStatus {
        self.shown.unwrap_or(PresenceStatus::Offline)
    }

    fn shares(&self, rooms: &HashSet<RoomId>) -> bool {
        self.words.values().any(|word| word.rooms.iter().any(|room| rooms.contains(room)))
    }

    /// Nothing left worth keeping: no node says the user is around, and the newest word
    /// is old enough that no older one of the same node can still be on its way.
    fn is_stale(&self, now: Instant, silence: Duration) -> bool {
        self.words.values().all(|w| w.status == PresenceStatus::Offline)
            && self.words.values().all(|w| now.duration_since(w.at) >= silence)
    }
}

/// A change of a user's presence, to be announced in order of `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    pub status: PresenceStatus,
    pub version: u64,
}

pub struct Hub {
    /// This node, as other nodes know it.
    node: NodeId,
    next_id: AtomicU64,
    /// Subscribers of each room.
    rooms: DashMap<RoomId, Subscribers>,
    /// Connections of each user, for membership changes, session ends and presence.
    /// A user who has gone (and whose going has been announced) has no entry, so the map
    /// holds the users connected now, not every user ever seen.
    users: DashMap<UserId, UserPeers>,
    /// Numbers presence changes, so that one user's announcements can be ordered even
    /// across their going offline and coming back.
    presence_clock: AtomicU64,
    /// Every node's word on each user who is around somewhere (or was, moments ago).
    presence: DashMap<UserId, Presences>,
    /// When each other node was last heard from.
    nodes: DashMap<NodeId, Instant>,
    /// Counts the frames of the moment dropped for full queues; each peer holds a clone, so
    /// that a drop on the fan-out path costs an atomic add, not a registry lookup. Taken
    /// when the hub is made, after the server installed the metrics recorder.
    dropped: metrics::Counter,
    /// This node's users online.
    users_online: metrics::Gauge,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            node: NodeId::generate(),
            next_id: AtomicU64::new(0),
            rooms: DashMap::new(),
            users: DashMap::new(),
            presence_clock: AtomicU64::new(0),
            presence: DashMap::new(),
            nodes: DashMap::new(),
            dropped: metrics::counter!(crate::metrics::EVENTS_DROPPED),
            users_online: metrics::gauge!(crate::metrics::USERS_ONLINE),
        }
    }

    /// This node's name on the bus.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Registers a new connection of `user_id` with an outbound queue of `queue_len` items,
    /// told to close through `closing` (a child of the server's shutdown signal). It
    /// receives membership changes at once; room events once subscribed. Returns the peer
    /// and the receiving end of its queue.
    pub fn register(
        &self,
        user_id: UserId,
        session_id: SessionId,
        queue_len: usize,
        closing: CancellationToken,
    ) -> (Arc<Peer>, mpsc::Receiver<Outbound>) {
        let (queue, receiver) = mpsc::channel(queue_len);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let peer =
            Arc::new(Peer::new(id, user_id, session_id, queue, closing, self.dropped.clone()));
        self.users
            .entry(user_id)
            .or_insert_with(|| UserPeers::new(self.presence_clock.load(Ordering::Relaxed)))
            .peers
            .push(peer.clone());
        (peer, receiver)
    }

    /// Removes a connection from every room and from its user, for good. Returns the
    /// user's presence change, if this was what made them go offline (or come back from
    /// away), with the rooms the connection followed.
    pub fn unregister(&self, peer: &Peer) -> (Option<PresenceChange>, Vec<RoomId>) {
        let mut rooms = peer.room_set();
        rooms.unregistered = true;
        let followed: Vec<RoomId> = rooms.subscribed.drain().collect();
        for room in &followed {
            remove_peer(&self.rooms, room, peer.id);
        }
        drop(rooms);
        let change = self.change_presence(peer.user_id, |user| {
            user.peers.retain(|p| p.id != peer.id);
        });
        // With a change to announce (going offline), the entry stays until it is
        // dispatched, so that an older announcement still on its way is recognised.
        self.users.remove_if(&peer.user_id, |_, user| user.is_done());
        (change, followed)
    }

    /// Sets what one connection says of its user; returns the user's presence change, if
    /// any, to be announced.
    pub fn set_presence(&self, peer: &Peer, presence: PeerPresence) -> Option<PresenceChange> {
        self.change_presence(peer.user_id, |_| peer.set_presence(presence))
    }

    /// A user's presence, as this node shows it: online if any node says so.
    pub fn presence_of(&self, user: UserId) -> PresenceStatus {
        self.presence.get(&user).map_or(PresenceStatus::Offline, |p| p.shown())
    }

    /// The users other than `viewer` who are online or away in any of `rooms`, on any
    /// node. Everyone else in them is offline.
    pub fn present_in(&self, rooms: &[RoomId], viewer: UserId) -> Vec<(UserId, PresenceStatus)> {
        let rooms: HashSet<RoomId> = rooms.iter().copied().collect();
        self.presence
            .iter()
            .filter(|entry| *entry.key() != viewer && entry.shown() != PresenceStatus::Offline)
            .filter(|entry| entry.shares(&rooms))
            .map(|entry| (*entry.key(), entry.shown()))
            .collect()
    }

    /// What this node says of each of its users who is around, to be published again
    /// for nodes that missed it.
    pub fn local_presence(&self) -> Vec<BusEvent> {
        self.users
            .iter()
            .filter_map(|entry| {
                let status = entry.status.filter(|s| *s != PresenceStatus::Offline)?;
                let rooms: HashSet<RoomId> =
                    entry.peers.iter().flat_map(|peer| peer.rooms()).collect();
                Some(BusEvent::Presence {
                    node: self.node,
                    user_id: *entry.key(),
                    version: entry.computed,
                    status,
                    rooms: rooms.into_iter().collect(),
                    last_seen_at: None,
                })
            })
            .collect()
    }

    /// Notes that `node` spoke; returns whether it was known (heard from recently).
    pub fn node_heard(&self, node: NodeId) -> bool {
        self.nodes.insert(node, Instant::now()).is_some()
    }

    /// Takes back what nodes silent for `silence` said of their users (they are taken to
    /// be dead), and what another node said of a user and has not said again for as long
    /// (its word that the user left was lost), and forgets presence nobody has spoken of
    /// for as long. Returns the nodes forgotten.
    pub fn forget_silent_nodes(&self, silence: Duration) -> Vec<NodeId> {
        let now = Instant::now();
        let mut silent = Vec::new();
        self.nodes.retain(|node, heard| {
            let alive = now.duration_since(*heard) < silence;
            if !alive {
                silent.push(*node);
            }
            alive
        });
        self.presence.retain(|user, presences| {
            let (mut rooms, before) = (Vec::new(), presences.words.len());
            presences.words.retain(|node, word| {
                let unsaid = *node != self.node
                    && word.status != PresenceStatus::Offline
                    && now.duration_since(word.at) >= silence;
                let keep = !silent.contains(node) && !unsaid;
                if !keep {
                    rooms.append(&mut word.rooms);
                }
                keep
            });
            if presences.words.len() != before {
                self.show(*user, presences, rooms, None);
            }
            !presences.is_stale(now, silence)
        });
        silent
    }

    /// Applies `change` to a user's connections under the lock for that user, and reports
    /// the new status if it differs from the last one announced. Holding the lock makes
    /// the versions follow the order of the changes.
    fn change_presence(
        &self,
        user: UserId,
        change: impl FnOnce(&mut UserPeers),
    ) -> Option<PresenceChange> {
        let mut entry = self.users.get_mut(&user)?;
        change(&mut entry);
        let status = entry.status();
        if entry.status == Some(status)
            || (entry.status.is_none() && status == PresenceStatus::Offline)
        {
            return None;
        }
        // This node's users online: counted as one comes (from nothing, or offline) and
        // goes (to offline), under the user's entry, so the gauge never drifts.
        let was_here = entry.status.is_some_and(|was| was != PresenceStatus::Offline);
        let is_here = status != PresenceStatus::Offline;
        if was_here != is_here {
            let step = if is_here { 1.0 } else { -1.0 };
            self.users_online.increment(step);
        }
        entry.status = Some(status);
        let version = self.presence_clock.fetch_add(1, Ordering::Relaxed) + 1;
        entry.computed = version;
        Some(PresenceChange { status, version })
    }

    /// Subscribes a starting connection to a room the store says its user is in, unless a
    /// membership change of that room has been dispatched to it since it registered: that
    /// change is newer than the connection's read, and it stands. (A `Left` dispatched
    /// between the read and this call would otherwise be undone for the connection's
    /// life: the ex-member would go on hearing the room's presence.) Subscribing twice is
    /// harmless.
    pub fn subscribe_at_start(&self, peer: &Arc<Peer>, room: RoomId) {
        let mut rooms = peer.room_set();
        if rooms.changed_while_starting.as_ref().is_some_and(|changed| changed.contains(&room)) {
            return;
        }
        if !rooms.unregistered && rooms.subscribed.insert(room) {
            self.rooms.entry(room).or_default().peers.push(peer.clone());
        }
    }

    /// The connection has read where its rooms stand and subscribed to them: from now on
    /// only the hub changes its subscriptions, as it dispatches membership changes in
    /// commit order (a connection acting on its own, later, could undo a newer change).
    pub fn started(&self, peer: &Peer) {
        peer.room_set().changed_while_starting = None;
    }

    /// Starts a room's events for a connection, on a membership change; twice is harmless.
    fn subscribe(&self, peer: &Arc<Peer>, room: RoomId) {
        // Lock order: a peer's room set, then a shard of the room map. Dispatch takes only
        // the latter, so this cannot deadlock.
        let mut rooms = peer.room_set();
        rooms.note_change(room);
        if !rooms.unregistered && rooms.subscribed.insert(room) {
            self.rooms.entry(room).or_default().peers.push(peer.clone());
        }
    }

    /// Stops a room's events for a connection, on a membership change.
    fn unsubscribe(&self, peer: &Peer, room: RoomId) {
        let mut rooms = peer.room_set();
        rooms.note_change(room);
        if rooms.subscribed.remove(&room) {
            remove_peer(&self.rooms, &room, peer.id);
        }
    }

    /// Delivers an event from the bus to the connections it concerns.
    pub fn dispatch(&self, event: BusEvent) {
        match event {
            BusEvent::RoomMoment { room_id, except, frame } => {
                if let Some(room) = self.rooms.get(&room_id) {
                    let moment = Arc::new(Moment { room_id: Some(room_id), frame });
                    for peer in room.peers.iter().filter(|p| Some(p.user_id) != except) {
                        peer.offer(Outbound::Moment(moment.clone()));
                    }
                }
            }
            BusEvent::User { user_id, frame } => {
                let moment = Arc::new(Moment { room_id: None, frame });
                for peer in self.user_peers(user_id) {
                    peer.offer(Outbound::Moment(moment.clone()));
                }
            }
            BusEvent::Presence { node, user_id, version, status, rooms, last_seen_at } => {
                let word = Word { status, version, rooms, at: Instant::now() };
                self.dispatch_presence(node, user_id, word, last_seen_at);
            }
            BusEvent::Profile { user_id, rooms, frame } => {
                let moment = Arc::new(Moment { room_id: None, frame });
                let offered = self.offer_to_sharers(&rooms, &moment, |_| true);
                for peer in self.user_peers(user_id) {
                    if !offered.contains(&peer.id) {
                        peer.offer(Outbound::Moment(moment.clone()));
                    }
                }
            }
            BusEvent::Room { room_id, seq, frame } => {
                if let Some(room) = self.rooms.get(&room_id) {
                    room.seen.fetch_max(seq, Ordering::Relaxed);
                    let event = Arc::new(RoomEvent { room_id, seq, frame });
                    for peer in room.peers.iter() {
                        peer.offer(Outbound::Event(event.clone()));
                    }
                }
            }
            BusEvent::Joined { user_id, room_id } => {
                self.count_membership_change(user_id);
                // Subscribe before telling the connection, so that no event published from
                // now on is missed; the connection drops events it already has by seq.
                for peer in self.user_peers(user_id) {
                    self.subscribe(&peer, room_id);
                    peer.offer(Outbound::Joined(room_id));
                }
            }
            BusEvent::Left { user_id, room_id } => {
                self.count_membership_change(user_id);
                for peer in self.user_peers(user_id) {
                    self.unsubscribe(&peer, room_id);
                    peer.offer(Outbound::Left(room_id));
                }
            }
            BusEvent::SessionEnded { user_id, session_id } => {
                for peer in self.user_peers(user_id) {
                    if peer.session_id == session_id {
                        peer.request_close(CloseRequest::SessionEnded);
                    }
                }
            }
        }
    }

    /// Offers a frame once to each connection subscribed to any of `rooms` that `wanted`
    /// accepts; returns the connections it reached.
    fn offer_to_sharers(
        &self,
        rooms: &[RoomId],
        moment: &Arc<Moment>,
        wanted: impl Fn(&Peer) -> bool,
    ) -> HashSet<u64> {
        let mut offered = HashSet::new();
        for room in rooms {
            let Some(subscribers) = self.rooms.get(room) else { continue };
            for peer in subscribers.peers.iter() {
                if wanted(peer) && offered.insert(peer.id) {
                    peer.offer(Outbound::Moment(moment.clone()));
                }
            }
        }
        offered
    }

    fn count_membership_change(&self, user: UserId) {
        if let Some(mut entry) = self.users.get_mut(&user) {
            entry.memberships += 1;
        }
    }

    /// The rooms this node's connections follow, each with the highest seq dispatched.
    pub fn followed_rooms(&self) -> Vec<(RoomId, i64)> {
        self.rooms.iter().map(|room| (*room.key(), room.seen.load(Ordering::Relaxed))).collect()
    }

    /// The bus lost events of `room` up to `head` (committed, never dispatched here): each
    /// connection following it reads what it lacks from the store.
    pub fn repair_room(&self, room_id: RoomId, head: i64) {
        if let Some(room) = self.rooms.get(&room_id) {
            room.seen.fetch_max(head, Ordering::Relaxed);
            let head = Arc::new(RoomHead { room_id, seq: head });
            for peer in room.peers.iter() {
                peer.offer(Outbound::Head(head.clone()));
            }
        }
    }

    /// This node's users, each with the count of membership changes dispatched for them:
    /// taken before reading their memberships from the store, for
    /// [`Hub::reconcile_memberships`].
    pub fn membership_counts(&self) -> Vec<(UserId, u64)> {
        self.users.iter().map(|entry| (*entry.key(), entry.memberships)).collect()
    }

    /// Makes the subscriptions of this node's started connections agree with
    /// `memberships`, read from the store after `counts` were taken, as if the membership
    /// changes the bus lost had been dispatched. A user with a change dispatched since
    /// `counts` is left alone: that change is newer than the read. Returns how many
    /// subscriptions were added and removed.
    pub fn reconcile_memberships(
        &self,
        counts: &[(UserId, u64)],
        memberships: &[(UserId, RoomId)],
    ) -> (usize, usize) {
        let mut rooms_of: HashMap<UserId, HashSet<RoomId>> = HashMap::new();
        for (user, room) in memberships {
            rooms_of.entry(*user).or_default().insert(*room);
        }
        let (mut joined, mut left) = (0, 0);
        for (user, count) in counts {
            // Held while the subscriptions change, so that no membership change of the
            // user is dispatched in between.
            let Some(entry) = self.users.get(user) else { continue };
            if entry.memberships != *count {
                continue;
            }
            let stored = rooms_of.remove(user).unwrap_or_default();
            for peer in &entry.peers {
                let (missing, extra) = {
                    let rooms = peer.room_set();
                    if rooms.unregistered || rooms.changed_while_starting.is_some() {
                        continue; // Gone, or still starting from its own read.
                    }
                    let missing: Vec<RoomId> =
                        stored.difference(&rooms.subscribed).copied().collect();
                    let extra: Vec<RoomId> =
                        rooms.subscribed.difference(&stored).copied().collect();
                    (missing, extra)
                };
                for room in missing {
                    self.subscribe(peer, room);
                    peer.offer(Outbound::Joined(room));
                    joined += 1;
                }
                for room in extra {
                    self.unsubscribe(peer, room);
                    peer.offer(Outbound::Left(room));
                    left += 1;
                }
            }
        }
        (joined, left)
    }

    /// The sessions of this node's connections.
    pub fn sessions(&self) -> Vec<SessionId> {
        let sessions: HashSet<SessionId> = self
            .users
            .iter()
            .flat_map(|entry| entry.peers.iter().map(|peer| peer.session_id).collect::<Vec<_>>())
            .collect();
        sessions.into_iter().collect()
    }

    /// Closes the connections of sessions that are not in `live` (among those of
    /// `checked`): the store no longer has them, though their end was never dispatched
    /// here. Returns how many connections were asked to close.
    pub fn end_sessions_not_in(&self, checked: &[SessionId], live: &[SessionId]) -> usize {
        let ended: HashSet<SessionId> =
            checked.iter().filter(|s| !live.contains(s)).copied().collect();
        if ended.is_empty() {
            return 0;
        }
        let mut closed = 0;
        for entry in self.users.iter() {
            for peer in entry.peers.iter().filter(|peer| ended.contains(&peer.session_id)) {
                peer.request_close(CloseRequest::SessionEnded);
                closed += 1;
            }
        }
        closed
    }

    /// How many connections this process holds.
    pub fn connection_count(&self) -> usize {
        self.users.iter().map(|entry| entry.value().peers.len()).sum()
    }

    /// A snapshot of a user's connections, taken so that no map lock is held while they
    /// are subscribed elsewhere.
    fn user_peers(&self, user_id: UserId) -> Vec<Arc<Peer>> {
        self.users.get(&user_id).map(|user| user.peers.clone()).unwrap_or_default()
    }

    /// Takes in what `node` says of a user's presence, unless it is older than what that
    /// node said already, and tells this node's connections that share a room with the
    /// user if what it shows changes; then forgets the user's connections here if they
    /// have gone.
    ///
    /// This node's own changes are computed under the user's entry, which stays until
    /// the newest is dispatched (see `UserPeers`): without an entry, the user has gone and
    /// their going was dispatched, so whatever arrives now is older. Lock order: a user's
    /// entry, then their presence entry, then shards of the room map; nothing takes them
    /// the other way round.
    fn dispatch_presence(&self, node: NodeId, user: UserId, word: Word, seen: Option<Timestamp>) {
        if node != self.node {
            self.take_word(node, user, word, seen);
            return;
        }
        let Some(mut entry) = self.users.get_mut(&user) else { return };
        if word.version <= entry.dispatched {
            return;
        }
        entry.dispatched = word.version;
        self.take_word(node, user, word, seen);
        let done = entry.is_done();
        drop(entry);
        if done {
            self.users.remove_if(&user, |_, entry| entry.is_done());
        }
    }

    fn take_word(&self, node: NodeId, user: UserId, word: Word, seen: Option<Timestamp>) {
        let mut presences = self.presence.entry(user).or_default();
        if node != self.node
            && let Some(held) = presences.words.get_mut(&node)
            && held.version >= word.version
        {
            if held.version == word.version {
                // Said again (every node repeats what it says, see `bus/redis.rs`): still
                // true, so it is kept longer.
                held.at = word.at;
            }
            return; // Otherwise older than what that node said already.
        }
        let rooms = word.rooms.clone();
        if node == self.node && word.status == PresenceStatus::Offline {
            // This node's own order is kept by `UserPeers`: nothing to remember.
            presences.words.remove(&node);
        } else {
            presences.words.insert(node, word);
        }
        self.show(user, &mut presences, rooms, seen);
        let forget = presences.words.is_empty();
        drop(presences);
        if forget {
            self.presence.remove_if(&user, |_, p| p.words.is_empty());
        }
    }

    /// Tells this node's connections that share a room with `user` what it shows of them
    /// now, if that changed. `rooms`: those of the word that changed it, beside those of
    /// every word still held.
    fn show(
        &self,
        user: UserId,
        presences: &mut Presences,
        mut rooms: Vec<RoomId>,
        seen: Option<Timestamp>,
    ) {
        let status = presences.sum();
        if presences.shown() == status {
            presences.shown = Some(status);
            return;
        }
        presences.shown = Some(status);
        for word in presences.words.values() {
            rooms.extend_from_slice(&word.rooms);
        }
        rooms.sort_unstable();
        rooms.dedup();
        let last_seen_at =
            (status == PresenceStatus::Offline).then(|| seen.unwrap_or_else(Timestamp::now));
        let frame =
            ServerFrame::Presence { user_id: user, presence: Presence { status, last_seen_at } }
                .to_text();
        let moment = Arc::new(Moment { room_id: None, frame });
        self.offer_to_sharers(&rooms, &moment, |peer| peer.user_id != user);
    }
}

fn remove_peer(map: &DashMap<RoomId, Subscribers>, key: &RoomId, id: u64) {
    // `remove_if_mut` drops the entry when the last peer leaves, so that rooms nobody here
    // listens to cost nothing.
    map.remove_if_mut(key, |_, room| {
        room.peers.retain(|peer| peer.id != id);
        room.peers.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text)
    }

    #[tokio::test]
    async fn room_events_reach_subscribers_only() {
        let hub = Hub::new();
        let room = RoomId::generate();
        let (alice, mut alice_rx) =
            hub.register(UserId::generate(), SessionId::generate(), 8, CancellationToken::new());
        let (_bob, mut bob_rx) =
            hub.register(UserId::generate(), SessionId::generate(), 8, CancellationToken::new());
        hub.subscribe(&alice, room);
        hub.dispatch(BusEvent::Room { room_id: room, seq: 1, frame: frame("x") });
        assert!(matches!(alice_rx.try_recv(), Ok(Outbound::Event(event)) if event.seq == 1));
        assert!(bob_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_asks_the_connection_to_close_without_blocking() {
        let hub = Hub::new();
        let room = RoomId::generate();
        let (slow, _slow_rx) =
            hub.register(UserId::generate(), SessionId::generate(), 2, CancellationToken::new());
        let (fast, mut fast_rx) =
            hub.register(UserId::generate(), SessionId::generate(), 64, CancellationToken::new());
        hub.subscribe(&slow, room);
        hub.subscribe(&fast, room);
        for seq in 1..=10 {
            hub.dispatch(BusEvent::Room { room_id: room, seq, frame: frame("x") });
        }
        slow.closed().await;
        assert_eq!(slow.close_request(), CloseRequest::TooSlow);
        let mut received = 0;
        while fast_rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, 10);
    }

    #[tokio::test]
    async fn a_full_queue_drops_moments_but_keeps_the_connection() {
        let hub = Hub::new();
        let room = RoomId::generate();
        let (peer, _rx) =
            hub.register(UserId::generate(), SessionId::generate(), 2, CancellationToken::new());
        hub.subscribe(&peer, room);
        for _ in 0..5 {
            hub.dispatch(BusEvent::RoomMoment { room_id: room, except: None, frame: frame("t") });
        }
        assert!(!peer.closing.is_cancelled(), "typing and the like are dropped, not fatal");
        hub.dispatch(BusEvent::Room { room_id: room, seq: 1, frame: frame("m") });
        assert!(peer.closing.is_cancelled(), "a room event that does not fit is");
    }

    #[tokio::test]
    async fn joining_subscribes_every_connection_of_the_user_before_notifying() {
        let hub = Hub::new();
        let (user, room) = (UserId::generate(), RoomId::generate());
        let (_tab1, mut rx1) =
            hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        let (_tab2, mut rx2) =
            hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        hub.dispatch(BusEvent::Joined { user_id: user, room_id: room });
        hub.dispatch(BusEvent::Room { room_id: room, seq: 7, frame: frame("x") });
        for rx in [&mut rx1, &mut rx2] {
            assert!(matches!(rx.try_recv(), Ok(Outbound::Joined(r)) if r == room));
            assert!(matches!(rx.try_recv(), Ok(Outbound::Event(event)) if event.seq == 7));
        }
        hub.dispatch(BusEvent::Left { user_id: user, room_id: room });
        hub.dispatch(BusEvent::Room { room_id: room, seq: 8, frame: frame("x") });
        assert!(matches!(rx1.try_recv(), Ok(Outbound::Left(_))));
        assert!(rx1.try_recv().is_err(), "no event after leaving");
    }

    #[tokio::test]
    async fn unregistering_forgets_rooms_and_users() {
        let hub = Hub::new();
        let (user, room) = (UserId::generate(), RoomId::generate());
        let (peer, _rx) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        hub.subscribe(&peer, room);
        hub.unregister(&peer);
        assert!(hub.rooms.is_empty());
        assert_eq!(hub.connection_count(), 0);
    }

    #[tokio::test]
    async fn a_membership_change_after_unregistering_subscribes_nothing() {
        let hub = Hub::new();
        let (user, room) = (UserId::generate(), RoomId::generate());
        let (peer, _rx) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        let snapshot = hub.user_peers(user);
        hub.unregister(&peer);
        // A `Joined` dispatch that took its snapshot before the unregistering.
        for late in snapshot {
            hub.subscribe(&late, room);
        }
        assert!(hub.rooms.is_empty(), "no dead peer is left in a room");
    }

    #[tokio::test]
    async fn presence_adds_up_over_a_users_connections() {
        let hub = Hub::new();
        let user = UserId::generate();
        let (tab1, _rx1) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        let (tab2, _rx2) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        let status = |change: Option<PresenceChange>| change.map(|c| c.status);
        assert_eq!(hub.presence_of(user), PresenceStatus::Offline, "starting tabs do not count");
        assert_eq!(
            status(hub.set_presence(&tab1, PeerPresence::Online)),
            Some(PresenceStatus::Online)
        );
        assert_eq!(
            status(hub.set_presence(&tab2, PeerPresence::Away)),
            None,
            "one tab is still active"
        );
        assert_eq!(status(hub.set_presence(&tab1, PeerPresence::Away)), Some(PresenceStatus::Away));
        assert_eq!(
            status(hub.set_presence(&tab2, PeerPresence::Online)),
            Some(PresenceStatus::Online)
        );
        assert_eq!(status(hub.unregister(&tab2).0), Some(PresenceStatus::Away));
        let (gone, _) = hub.unregister(&tab1);
        assert_eq!(gone.map(|c| (c.status, c.version)), Some((PresenceStatus::Offline, 5)));
        let (again, _rx3) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        let back = hub.set_presence(&again, PeerPresence::Online);
        assert_eq!(back.map(|c| c.version), Some(6), "versions keep rising across absences");
    }

    /// The announcement of `change`, as `App::announce_presence` publishes it.
    fn announcement(
        hub: &Hub,
        user: UserId,
        change: Option<PresenceChange>,
        room: RoomId,
    ) -> BusEvent {
        let change = change.expect("a presence change");
        said(hub.node(), user, change.version, change.status, room)
    }

    /// What `node` says of `user`.
    fn said(
        node: NodeId,
        user: UserId,
        version: u64,
        status: PresenceStatus,
        room: RoomId,
    ) -> BusEvent {
        BusEvent::Presence {
            node,
            user_id: user,
            version,
            status,
            rooms: vec![room],
            last_seen_at: None,
        }
    }

    fn moments(rx: &mut mpsc::Receiver<Outbound>) -> usize {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|item| matches!(item, Outbound::Moment(_)))
            .count()
    }

    #[tokio::test]
    async fn a_late_older_presence_is_dropped() {
        let hub = Hub::new();
        let (alice, bob, room) = (UserId::generate(), UserId::generate(), RoomId::generate());
        let (watcher, mut rx) =
            hub.register(bob, SessionId::generate(), 8, CancellationToken::new());
        hub.subscribe(&watcher, room);
        let (tab, _tab_rx) =
            hub.register(alice, SessionId::generate(), 8, CancellationToken::new());
        let online = hub.set_presence(&tab, PeerPresence::Online);
        let away = hub.set_presence(&tab, PeerPresence::Away);
        hub.dispatch(announcement(&hub, alice, away, room));
        hub.dispatch(announcement(&hub, alice, online, room));
        assert_eq!(moments(&mut rx), 1, "online came after away");
        assert_eq!(hub.presence_of(alice), PresenceStatus::Away);
    }

    #[tokio::test]
    async fn a_user_who_has_gone_is_forgotten_once_their_going_is_announced() {
        let hub = Hub::new();
        let (alice, bob, room) = (UserId::generate(), UserId::generate(), RoomId::generate());
        let (watcher, mut rx) =
            hub.register(bob, SessionId::generate(), 8, CancellationToken::new());
        hub.subscribe(&watcher, room);
        let (tab, _tab_rx) =
            hub.register(alice, SessionId::generate(), 8, CancellationToken::new());
        let online = hub.set_presence(&tab, PeerPresence::Online);
        hub.dispatch(announcement(&hub, alice, online, room));
        let (offline, _) = hub.unregister(&tab);
        assert!(hub.users.contains_key(&alice), "remembered until offline is dispatched");
        hub.dispatch(announcement(&hub, alice, offline, room));
        assert!(!hub.users.contains_key(&alice), "forgotten: the map holds who is here");
        assert!(!hub.presence.contains_key(&alice));
        hub.dispatch(announcement(&hub, alice, online, room));
        assert_eq!(moments(&mut rx), 2, "online, offline, and the late 'online' undoes nothing");
        assert_eq!(hub.presence_of(alice), PresenceStatus::Offline);

        // Back again: what is left of the previous visit is older than anything now.
        let (again, _again_rx) =
            hub.register(alice, SessionId::generate(), 8, CancellationToken::new());
        let back = hub.set_presence(&again, PeerPresence::Online);
        hub.dispatch(announcement(&hub, alice, back, room));
        hub.dispatch(announcement(&hub, alice, offline, room));
        hub.dispatch(announcement(&hub, alice, online, room));
        assert_eq!(moments(&mut rx), 1, "only 'online' of this visit");
    }

    #[tokio::test]
    async fn a_user_is_online_while_any_node_says_so() {
        let hub = Hub::new();
        let (alice, bob, room) = (UserId::generate(), UserId::generate(), RoomId::generate());
        let (watcher, mut rx) =
            hub.register(bob, SessionId::generate(), 8, CancellationToken::new());
        hub.subscribe(&watcher, room);
        let (a, b) = (NodeId(1), NodeId(2));
        hub.node_heard(a);
        hub.node_heard(b);
        hub.dispatch(said(a, alice, 1, PresenceStatus::Online, room));
        hub.dispatch(said(b, alice, 1, PresenceStatus::Away, room));
        assert_eq!(moments(&mut rx), 1, "online, once");
        hub.dispatch(said(a, alice, 2, PresenceStatus::Offline, room));
        assert_eq!(hub.presence_of(alice), PresenceStatus::Away, "node b still has her");
        hub.dispatch(said(a, alice, 1, PresenceStatus::Online, room));
        assert_eq!(hub.presence_of(alice), PresenceStatus::Away, "a's late older word is dropped");
        assert_eq!(moments(&mut rx), 1, "away");
        assert_eq!(hub.present_in(&[room], bob), vec![(alice, PresenceStatus::Away)]);
        assert!(hub.present_in(&[RoomId::generate()], bob).is_empty(), "only where she is");

        // Node b dies without a word: once it has been silent long enough, she is gone.
        assert!(hub.forget_silent_nodes(Duration::from_secs(60)).is_empty());
        let mut forgotten = hub.forget_silent_nodes(Duration::ZERO);
        forgotten.sort();
        assert_eq!(forgotten, vec![a, b]);
        assert_eq!(hub.presence_of(alice), PresenceStatus::Offline);
        assert_eq!(moments(&mut rx), 1, "offline, once");
        assert!(hub.presence.is_empty(), "nothing is kept of a user nobody speaks of");
    }

    #[tokio::test]
    async fn a_connection_that_never_started_leaves_nothing_behind() {
        let hub = Hub::new();
        let user = UserId::generate();
        for _ in 0..3 {
            let (peer, _rx) =
                hub.register(user, SessionId::generate(), 8, CancellationToken::new());
            assert_eq!(hub.unregister(&peer).0, None, "it never said it was around");
        }
        assert!(hub.users.is_empty());
    }

    #[tokio::test]
    async fn a_room_left_while_a_connection_starts_stays_unsubscribed() {
        let hub = Hub::new();
        let (user, left, kept) = (UserId::generate(), RoomId::generate(), RoomId::generate());
        let (peer, _rx) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        // The connection read both rooms as the user's; the user left one before the
        // connection subscribed to it.
        hub.dispatch(BusEvent::Left { user_id: user, room_id: left });
        hub.subscribe_at_start(&peer, left);
        hub.subscribe_at_start(&peer, kept);
        hub.started(&peer);
        assert_eq!(peer.rooms(), [kept]);
        assert!(!hub.rooms.contains_key(&left), "no presence or profile of the room reaches it");

        // Rejoined before the connection read its rooms again: the hub's subscription stands.
        let (other, _rx) = hub.register(user, SessionId::generate(), 8, CancellationToken::new());
        hub.dispatch(BusEvent::Left { user_id: user, room_id: left });
        hub.dispatch(BusEvent::Joined { user_id: user, room_id: left });
        hub.subscribe_at_start(&other, left);
        hub.started(&other);
        assert_eq!(other.rooms(), [left]);

        // After the start only membership changes move subscriptions.
        hub.dispatch(BusEvent::Left { user_id: user, room_id: left });
        assert!(other.rooms().is_empty());
    }

    #[tokio::test]
    async fn ending_a_session_closes_only_its_connections() {
        let hub = Hub::new();
        let user = UserId::generate();
        let (ended, kept) = (SessionId::generate(), SessionId::generate());
        let (a, _rx_a) = hub.register(user, ended, 8, CancellationToken::new());
        let (b, _rx_b) = hub.register(user, kept, 8, CancellationToken::new());
        hub.dispatch(BusEvent::SessionEnded { user_id: user, session_id: ended });
        assert!(a.closing.is_cancelled());
        assert!(!b.closing.is_cancelled());
    }
}
