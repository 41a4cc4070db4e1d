//! Credentials: password hashing, session tokens, the throttle on failed logins, the
//! device cookies that let a browser the owner signed in with before pass a throttled
//! account, and signing in with OpenID Connect identity providers (`oidc`).
//!
//! This module knows nothing of HTTP or the database; the application layer combines it
//! with the store. With several nodes the throttle's counts are shared through Redis
//! (`shared.rs`).

mod device;
pub mod oidc;
mod password;
mod shared;
mod throttle;
mod token;

pub use device::{DEVICE_KEY_SECRET, DeviceKeys};
pub use password::PasswordHasher;
pub use shared::SharedThrottle;
pub use throttle::{LoginThrottle, Policies, ThrottlePolicy};
pub use token::{SessionToken, hash_token};
