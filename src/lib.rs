//! Confab: a self-hostable realtime chat server.
//!
//! See ARCHITECTURE.md for the map of this crate and the invariants it keeps.

pub mod app;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod control;
pub mod domain;
pub mod error;
pub mod http;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod private;
pub mod realtime;
pub mod server;
pub mod store;
pub mod telemetry;
