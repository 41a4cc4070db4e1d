//! Credentials: password hashing, session tokens and the throttle on failed logins.
//!
//! This module knows nothing of HTTP or the database; the application layer combines it
//! with the store.

mod password;
mod throttle;
mod token;

pub use password::PasswordHasher;
pub use throttle::{LoginThrottle, ThrottlePolicy};
pub use token::{SessionToken, hash_token};
