//! Integration tests: real servers on loopback, real HTTP and WebSocket clients.
//!
//! One test binary (faster to build than one per file); each module covers one area.
//! Set `CONFAB_TEST_LOG=debug` to see the servers' logs.

mod accounts;
mod admin;
mod bad_input;
mod bench;
mod binary;
mod blocks;
mod browser;
mod cluster;
mod concurrency;
mod connections;
mod container;
mod conversation;
mod faults;
mod harness;
mod lifecycle;
mod limits;
mod media;
mod messaging;
mod metrics;
mod names;
mod nginx;
mod oidc_provider;
mod openapi;
mod postgres;
mod presence;
mod receipts;
mod rooms;
mod search;
mod slow_client;
mod sso;
mod store_order;
mod support;
mod sync;
mod web;
