//! Fan-out between nodes: what one node publishes, every node's hub receives.
//!
//! With one node the bus is [`LocalBus`]: publishing hands the event straight to this
//! process's hub. With several nodes a Redis implementation takes its place, subscribed
//! once per process (never once per socket) and feeding the same hub.
//!
//! Architecture invariant: `publish` keeps order. Events published one after another by
//! one caller reach every hub in that order; the store's commit hooks publish each room's
//! events in seq order, so hubs see them in seq order too. A bus may lose events (Redis
//! pub/sub is at most once): connections detect the gap by seq and fill it from the store.

mod local;

use axum::extract::ws::Utf8Bytes;

pub use local::LocalBus;

use crate::domain::{RoomId, SessionId, UserId};

/// Something that happened, addressed to the connections it concerns.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// An event of a room's stream, already serialized as the frame clients receive; the
    /// same bytes go to every member's connections.
    Room { room_id: RoomId, seq: i64, frame: Utf8Bytes },
    /// A frame for a room's members that is not part of its stream (typing, receipts),
    /// except the connections of `except` (the user it is about).
    RoomMoment { room_id: RoomId, except: Option<UserId>, frame: Utf8Bytes },
    /// A frame for one user's connections (their unread counts, a mention).
    User { user_id: UserId, frame: Utf8Bytes },
    /// A user's presence changed: the frame goes once to every other connection that shares
    /// one of `rooms` with them. `version` orders one user's changes; an older one arriving
    /// late is dropped.
    Presence { user_id: UserId, version: u64, rooms: Vec<RoomId>, frame: Utf8Bytes },
    /// A user became a member of a room: their connections start its stream.
    Joined { user_id: UserId, room_id: RoomId },
    /// A user stopped being a member: their connections stop its stream at once.
    Left { user_id: UserId, room_id: RoomId },
    /// A user's profile changed: the frame goes once to every connection that shares one of
    /// `rooms` with them, their own included.
    Profile { user_id: UserId, rooms: Vec<RoomId>, frame: Utf8Bytes },
    /// A session ended (logout): its connections close.
    SessionEnded { user_id: UserId, session_id: SessionId },
}

pub trait Bus: Send + Sync + 'static {
    /// Hands an event to every node's hub, this one's included. Never waits on the network:
    /// a networked bus queues the event and sends it in the background, in order.
    fn publish(&self, event: BusEvent);
}
