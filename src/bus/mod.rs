//! Fan-out between nodes: what one node publishes, every node's hub receives.
//!
//! With one node the bus is [`LocalBus`]: publishing hands the event straight to this
//! process's hub. With several nodes it is [`RedisBus`]: publishing hands the event to this
//! process's hub at once and sends it to Redis in the background; one subscription per
//! process (never one per socket) feeds the other nodes' events to the same hub.
//!
//! Architecture invariant: `publish` keeps order. Events published one after another by
//! one caller reach every hub in that order; the store's commit hooks publish each room's
//! events in seq order, so hubs see them in seq order too. A bus may lose events (Redis
//! pub/sub is at most once): `realtime::repair` makes good what it drops.

mod local;
mod redis;
mod wire;

use std::fmt;

use axum::extract::ws::Utf8Bytes;

pub use local::LocalBus;
pub use redis::{RedisBus, publish_once};

use crate::domain::{PresenceStatus, RoomId, SessionId, Timestamp, UserId};

/// One server process of a cluster, named at random when it starts: a restarted node is a
/// new node, so nothing it said before it stopped is mistaken for what it says now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn generate() -> Self {
        Self(rand::random())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

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
    /// What `node`'s connections add up to for a user (`rooms`: the rooms they follow).
    /// `version` orders one node's changes for a user; an older one arriving late is
    /// dropped. Each hub adds up every node's word and tells its connections that share a
    /// room with the user when the sum changes.
    Presence {
        node: NodeId,
        user_id: UserId,
        version: u64,
        status: PresenceStatus,
        rooms: Vec<RoomId>,
        last_seen_at: Option<Timestamp>,
    },
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

    /// Whether events reach the other nodes now (for readiness). A local bus always does.
    fn connected(&self) -> bool {
        true
    }

    /// Whether other nodes may publish on this bus: then what it drops must be repaired
    /// (`realtime::repair`).
    fn is_shared(&self) -> bool {
        false
    }
}
