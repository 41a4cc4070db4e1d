//! Credentials: password hashing, session tokens and the throttle on failed logins.
//!
//! This module knows nothing of HTTP or the database; the application layer combines it
//! with the store. With several nodes the throttle's counts are shared through Redis
//! (`shared.rs`).

mod password;
mod shared;
mod throttle;
mod token;

pub use password::PasswordHasher;
pub use shared::SharedThrottle;
pub use throttle::{LoginThrottle, Policies, ThrottlePolicy};
pub use token::{SessionToken, hash_token};
