//! The hub's side of one connection: its bounded queue, how to ask it to close, the rooms
//! it is subscribed to, and what it says of its user's presence.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::domain::{RoomId, SessionId, UserId};

/// Why the hub asks a connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRequest {
    /// Its outbound queue overflowed.
    TooSlow,
    /// Its session was ended by a logout.
    SessionEnded,
    /// The server is shutting down.
    Shutdown,
}

/// An item in a connection's outbound queue.
///
/// A slot is two words: what the hub offers to every subscriber (an event, a moment)
/// is made once and shared. The queue allocates its first block of slots up front, so the
/// width of an item is memory that every connection holds, idle or not (16 bytes a slot
/// instead of 56 took an idle connection's queue from 1.8 KB to 0.6 KB; BENCHMARKS.md).
#[derive(Debug)]
pub enum Outbound {
    /// A room event: the connection sends its frame unless it already has that seq.
    Event(Arc<RoomEvent>),
    /// A frame outside any room's stream.
    Moment(Arc<Moment>),
    /// The user joined a room: the connection starts the room's stream.
    Joined(RoomId),
    /// The user left a room: the connection stops the room's stream.
    Left(RoomId),
    /// The room's stream reached a seq while the bus lost events on the way: the
    /// connection reads from the store what it has not sent up to there.
    Head(Arc<RoomHead>),
}

const _: () = assert!(std::mem::size_of::<Outbound>() == 16, "an outbound slot is two words");

/// A room event as each of its subscribers gets it.
#[derive(Debug)]
pub struct RoomEvent {
    pub room_id: RoomId,
    pub seq: i64,
    pub frame: Utf8Bytes,
}

/// A frame of the moment (typing, presence, receipts, counts, profiles); when it names a
/// room, it is sent only while the connection follows that room.
#[derive(Debug)]
pub struct Moment {
    pub room_id: Option<RoomId>,
    pub frame: Utf8Bytes,
}

/// Where a room's stream stands, when the bus lost some of it.
#[derive(Debug)]
pub struct RoomHead {
    pub room_id: RoomId,
    pub seq: i64,
}

/// What one connection says of its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerPresence {
    /// Not yet started: does not count.
    Starting = 0,
    Online = 1,
    Away = 2,
}

pub struct Peer {
    pub id: u64,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The connection's bounded outbound queue.
    queue: mpsc::Sender<Outbound>,
    /// Cancelled when the hub wants the connection closed (`close_request` says why), or
    /// when the server shuts down: a child of the server's shutdown signal, so that the
    /// connection waits on one signal for both.
    pub(super) closing: CancellationToken,
    close_request: OnceLock<CloseRequest>,
    /// The rooms this peer is subscribed to, so that unregistering finds them all, including
    /// rooms the connection task has not heard of yet. Held while the room map changes for
    /// this peer, so the two always agree.
    rooms: Mutex<PeerRooms>,
    /// A `PeerPresence`, changed under the hub's lock for this user.
    presence: AtomicU8,
    /// The hub's count of frames of the moment dropped for a full queue.
    dropped: metrics::Counter,
}

pub(super) struct PeerRooms {
    pub subscribed: HashSet<RoomId>,
    /// While the connection starts (until `Hub::started`), the rooms whose membership the
    /// hub has changed for it: what the hub did is newer than what the connection read
    /// from the store, so the connection leaves those rooms as they are.
    pub changed_while_starting: Option<HashSet<RoomId>>,
    /// Set once the connection is gone; a late membership change must not subscribe it.
    pub unregistered: bool,
}

impl PeerRooms {
    /// Notes that the hub changed a room's membership for this connection.
    pub fn note_change(&mut self, room: RoomId) {
        if let Some(changed) = &mut self.changed_while_starting {
            changed.insert(room);
        }
    }
}

impl Peer {
    pub(super) fn new(
        id: u64,
        user_id: UserId,
        session_id: SessionId,
        queue: mpsc::Sender<Outbound>,
        closing: CancellationToken,
        dropped: metrics::Counter,
    ) -> Self {
        Self {
            id,
            user_id,
            session_id,
            queue,
            closing,
            close_request: OnceLock::new(),
            rooms: Mutex::new(PeerRooms {
                subscribed: HashSet::new(),
                changed_while_starting: Some(HashSet::new()),
                unregistered: false,
            }),
            presence: AtomicU8::new(PeerPresence::Starting as u8),
            dropped,
        }
    }

    /// Offers an item without waiting. A full queue closes the connection, except for a
    /// moment (typing, presence, receipts, counts), which is dropped instead: losing one is
    /// cheaper than losing the connection, and a reconnect brings the state back anyway.
    pub(super) fn offer(&self, item: Outbound) {
        let droppable = matches!(item, Outbound::Moment(_));
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) if droppable => self.dropped.increment(1),
            Err(TrySendError::Full(_)) => self.request_close(CloseRequest::TooSlow),
            // The connection is on its way out; its guard unregisters it.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    pub fn request_close(&self, request: CloseRequest) {
        let _ = self.close_request.set(request);
        self.closing.cancel();
    }

    /// Resolves when the hub asks this connection to close, or the server shuts down.
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.closing.clone().cancelled_owned()
    }

    /// Why the connection was told to close: what the hub asked, or else the shutdown.
    pub fn close_request(&self) -> CloseRequest {
        self.close_request.get().copied().unwrap_or(CloseRequest::Shutdown)
    }

    pub(super) fn room_set(&self) -> MutexGuard<'_, PeerRooms> {
        // A panic while holding this lock cannot leave the set half-updated (every update
        // is a single insert or remove), so a poisoned lock is still consistent.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The rooms this connection follows now.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.room_set().subscribed.iter().copied().collect()
    }

    pub(super) fn presence(&self) -> PeerPresence {
        match self.presence.load(Ordering::Relaxed) {
            1 => PeerPresence::Online,
            2 => PeerPresence::Away,
            _ => PeerPresence::Starting,
        }
    }

    pub(super) fn set_presence(&self, presence: PeerPresence) {
        self.presence.store(presence as u8, Ordering::Relaxed);
    }
}
