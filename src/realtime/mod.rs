//! Realtime delivery: the WebSocket protocol, the per-connection task, and the hub that
//! routes bus events to this process's connections.

pub mod connection;
mod hub;
mod peer;
pub mod protocol;
pub mod repair;
mod sync;

pub use hub::{Hub, PresenceChange};
pub use peer::{CloseRequest, Outbound, Peer, PeerPresence};
