//! The hub: which of this process's connections want which room's events.
//!
//! The bus hands every event to [`Hub::dispatch`], which offers it to the bounded queue of
//! each connection concerned. Offering never waits: a connection whose queue is full is
//! told to close (it is too slow, and will resume with a `sync` when it reconnects), so one
//! slow client never delays another and never makes the server's memory grow.
//!
//! Architecture invariant: the hub only moves pre-serialized frames and small control
//! messages; it never serializes, never does IO and never awaits while holding a lock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::bus::BusEvent;
use crate::domain::{RoomId, SessionId, UserId};

/// Why the hub asks a connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRequest {
    /// Its outbound queue overflowed.
    TooSlow,
    /// Its session was ended by a logout.
    SessionEnded,
}

/// An item in a connection's outbound queue.
#[derive(Debug)]
pub enum Outbound {
    /// A room event: the connection sends `frame` unless it already has that seq.
    Event { room_id: RoomId, seq: i64, frame: Utf8Bytes },
    /// The user joined a room: the connection starts the room's stream.
    Joined(RoomId),
    /// The user left a room: the connection stops the room's stream.
    Left(RoomId),
}

/// The hub's side of one connection.
pub struct Peer {
    pub id: u64,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The connection's bounded outbound queue.
    queue: mpsc::Sender<Outbound>,
    /// Cancelled when the hub wants the connection closed; `close_request` says why.
    closing: CancellationToken,
    close_request: OnceLock<CloseRequest>,
    /// The rooms this peer is subscribed to, so that unregistering finds them all, including
    /// rooms the connection task has not heard of yet. Held while the room map changes for
    /// this peer, so the two always agree.
    rooms: Mutex<PeerRooms>,
}

#[derive(Default)]
struct PeerRooms {
    subscribed: HashSet<RoomId>,
    /// Set once the connection is gone; a late membership change must not subscribe it.
    unregistered: bool,
}

impl Peer {
    /// Offers an item without waiting; a full queue closes the connection.
    fn offer(&self, item: Outbound) {
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.request_close(CloseRequest::TooSlow),
            // The connection is on its way out; its guard unregisters it.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    pub fn request_close(&self, request: CloseRequest) {
        let _ = self.close_request.set(request);
        self.closing.cancel();
    }

    /// Resolves when the hub asks this connection to close.
    pub async fn close_requested(&self) -> CloseRequest {
        self.closing.cancelled().await;
        self.close_request.get().copied().unwrap_or(CloseRequest::TooSlow)
    }

    fn room_set(&self) -> std::sync::MutexGuard<'_, PeerRooms> {
        // A panic while holding this lock cannot leave the set half-updated (every update
        // is a single insert or remove), so a poisoned lock is still consistent.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    /// Subscribers of each room. A Vec: dispatch walks it on every event, subscription
    /// changes are rare.
    rooms: DashMap<RoomId, Vec<Arc<Peer>>>,
    /// Connections of each user, for membership changes and session ends.
    users: DashMap<UserId, Vec<Arc<Peer>>>,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new connection of `user_id` with an outbound queue of `queue_len` items.
    /// It receives membership changes at once; room events once subscribed. Returns the
    /// peer and the receiving end of its queue.
    pub fn register(
        &self,
        user_id: UserId,
        session_id: SessionId,
        queue_len: usize,
    ) -> (Arc<Peer>, mpsc::Receiver<Outbound>) {
        let (queue, receiver) = mpsc::channel(queue_len);
        let peer = Arc::new(Peer {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user_id,
            session_id,
            queue,
            closing: CancellationToken::new(),
            close_request: OnceLock::new(),
            rooms: Mutex::new(PeerRooms::default()),
        });
        self.users.entry(user_id).or_default().push(peer.clone());
        (peer, receiver)
    }

    /// Removes a connection from every room and from its user, for good.
    pub fn unregister(&self, peer: &Peer) {
        let mut rooms = peer.room_set();
        rooms.unregistered = true;
        for room in rooms.subscribed.drain() {
            remove_peer(&self.rooms, &room, peer.id);
        }
        drop(rooms);
        remove_peer(&self.users, &peer.user_id, peer.id);
    }

    /// Starts a room's events for a connection; subscribing twice is harmless.
    ///
    /// After a connection's start, only the hub changes its subscriptions, as it dispatches
    /// membership changes in commit order; a connection acting on its own, later, could
    /// undo a newer change.
    pub fn subscribe(&self, peer: &Arc<Peer>, room: RoomId) {
        // Lock order: a peer's room set, then a shard of the room map. Dispatch takes only
        // the latter, so this cannot deadlock.
        let mut rooms = peer.room_set();
        if !rooms.unregistered && rooms.subscribed.insert(room) {
            self.rooms.entry(room).or_default().push(peer.clone());
        }
    }

    /// Stops a room's events for a connection.
    fn unsubscribe(&self, peer: &Peer, room: RoomId) {
        let mut rooms = peer.room_set();
        if rooms.subscribed.remove(&room) {
            remove_peer(&self.rooms, &room, peer.id);
        }
    }

    /// Delivers an event from the bus to the connections it concerns.
    pub fn dispatch(&self, event: BusEvent) {
        match event {
            BusEvent::Room { room_id, seq, frame } => {
                if let Some(peers) = self.rooms.get(&room_id) {
                    for peer in peers.iter() {
                        peer.offer(Outbound::Event { room_id, seq, frame: frame.clone() });
                    }
                }
            }
            BusEvent::Joined { user_id, room_id } => {
                // Subscribe before telling the connection, so that no event published from
                // now on is missed; the connection drops events it already has by seq.
                for peer in self.user_peers(user_id) {
                    self.subscribe(&peer, room_id);
                    peer.offer(Outbound::Joined(room_id));
                }
            }
            BusEvent::Left { user_id, room_id } => {
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

    /// How many connections this process holds.
    pub fn connection_count(&self) -> usize {
        self.users.iter().map(|entry| entry.value().len()).sum()
    }

    /// A snapshot of a user's connections, taken so that no map lock is held while they
    /// are subscribed elsewhere.
    fn user_peers(&self, user_id: UserId) -> Vec<Arc<Peer>> {
        self.users.get(&user_id).map(|peers| peers.clone()).unwrap_or_default()
    }
}

fn remove_peer<K: std::hash::Hash + Eq + Copy>(map: &DashMap<K, Vec<Arc<Peer>>>, key: &K, id: u64) {
    // `remove_if_mut` drops the entry when the last peer leaves, so that rooms nobody here
    // listens to cost nothing.
    map.remove_if_mut(key, |_, peers| {
        peers.retain(|peer| peer.id != id);
        peers.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text)
    }

    #[tokio::test]
    async fn room_events_reach_subscribers_only() {
        let hub = Hub::new();
        let room = RoomId::generate();
        let (alice, mut alice_rx) = hub.register(UserId::generate(), SessionId::generate(), 8);
        let (_bob, mut bob_rx) = hub.register(UserId::generate(), SessionId::generate(), 8);
        hub.subscribe(&alice, room);
        hub.dispatch(BusEvent::Room { room_id: room, seq: 1, frame: frame("x") });
        assert!(matches!(alice_rx.try_recv(), Ok(Outbound::Event { seq: 1, .. })));
        assert!(bob_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_asks_the_connection_to_close_without_blocking() {
        let hub = Hub::new();
        let room = RoomId::generate();
        let (slow, _slow_rx) = hub.register(UserId::generate(), SessionId::generate(), 2);
        let (fast, mut fast_rx) = hub.register(UserId::generate(), SessionId::generate(), 64);
        hub.subscribe(&slow, room);
        hub.subscribe(&fast, room);
        for seq in 1..=10 {
            hub.dispatch(BusEvent::Room { room_id: room, seq, frame: frame("x") });
        }
        assert_eq!(slow.close_requested().await, CloseRequest::TooSlow);
        let mut received = 0;
        while fast_rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, 10);
    }

    #[tokio::test]
    async fn joining_subscribes_every_connection_of_the_user_before_notifying() {
        let hub = Hub::new();
        let (user, room) = (UserId::generate(), RoomId::generate());
        let (_tab1, mut rx1) = hub.register(user, SessionId::generate(), 8);
        let (_tab2, mut rx2) = hub.register(user, SessionId::generate(), 8);
        hub.dispatch(BusEvent::Joined { user_id: user, room_id: room });
        hub.dispatch(BusEvent::Room { room_id: room, seq: 7, frame: frame("x") });
        for rx in [&mut rx1, &mut rx2] {
            assert!(matches!(rx.try_recv(), Ok(Outbound::Joined(r)) if r == room));
            assert!(matches!(rx.try_recv(), Ok(Outbound::Event { seq: 7, .. })));
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
        let (peer, _rx) = hub.register(user, SessionId::generate(), 8);
        hub.subscribe(&peer, room);
        hub.unregister(&peer);
        assert!(hub.rooms.is_empty());
        assert_eq!(hub.connection_count(), 0);
    }

    #[tokio::test]
    async fn a_membership_change_after_unregistering_subscribes_nothing() {
        let hub = Hub::new();
        let (user, room) = (UserId::generate(), RoomId::generate());
        let (peer, _rx) = hub.register(user, SessionId::generate(), 8);
        let snapshot = hub.user_peers(user);
        hub.unregister(&peer);
        // A `Joined` dispatch that took its snapshot before the unregistering.
        for late in snapshot {
            hub.subscribe(&late, room);
        }
        assert!(hub.rooms.is_empty(), "no dead peer is left in a room");
    }

    #[tokio::test]
    async fn ending_a_session_closes_only_its_connections() {
        let hub = Hub::new();
        let user = UserId::generate();
        let (ended, kept) = (SessionId::generate(), SessionId::generate());
        let (a, _rx_a) = hub.register(user, ended, 8);
        let (b, _rx_b) = hub.register(user, kept, 8);
        hub.dispatch(BusEvent::SessionEnded { user_id: user, session_id: ended });
        assert!(a.closing.is_cancelled());
        assert!(!b.closing.is_cancelled());
    }
}
