//! Realtime delivery: the WebSocket protocol, the per-connection task, and the hub that
//! routes bus events to this process's connections.

pub mod connection;
mod hub;
pub mod protocol;
mod sync;

pub use hub::{CloseRequest, Hub, Outbound, Peer};
