//! The one error type of the application layer, shared by the HTTP API and the WebSocket.
//!
//! Client errors carry a stable snake_case code and a sentence for a person; internal errors
//! keep their cause for the log and show the client only that something went wrong. The
//! HTTP status of each variant is chosen in `http::error`, the `error` frame in `realtime`.

use std::time::Duration;

use crate::domain::ValidationError;
use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field failed validation (422).
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The request could not be understood: malformed JSON, a bad query string (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No valid session (401).
    #[error("Sign in first.")]
    Unauthenticated,
    /// Wrong username or password (401).
    #[error("Wrong username or password.")]
    InvalidCredentials,
    /// Signed in, but not allowed to do this (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The thing does not exist, or the caller may not know that it exists (404).
    #[error("{0} not found.")]
    NotFound(&'static str),
    /// The request conflicts with the current state, e.g. a taken name (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String, field: Option<&'static str> },
    /// The request took too long, or its body arrived too slowly (408).
    #[error("The request took too long.")]
    Timeout,
    /// The route exists but not with this method (405).
    #[error("This route does not take that method.")]
    MethodNotAllowed,
    /// The body is larger than the server accepts (413); with the limit it passed, where
    /// the route has one of its own (an upload, an avatar), so the sentence can name it.
    #[error("{}", too_large_message(*limit))]
    PayloadTooLarge { limit: Option<SizeLimit> },
    /// Too many attempts; try again after the given time (429).
    #[error("{}", rate_limited_message(what, *retry_after))]
    RateLimited {
        retry_after: Duration,
        /// What was too much, as a sentence without its full stop.
        what: &'static str,
    },
    /// A server Confab depends on for this request (an identity provider) failed (502).
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// The server is shutting down or its database is unreachable (503).
    #[error("The service is unavailable. Try again shortly.")]
    Unavailable,
    /// A bug or a failure of the machine; logged with its cause, never shown (500).
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(e) => e.code,
            Self::BadRequest { code, .. } | Self::Forbidden { code, .. } => code,
            Self::BadGateway { code, .. } => code,
            Self::Conflict { code, .. } => code,
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::NotFound(_) => "not_found",
            Self::Timeout => "request_timeout",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The sentence shown to the client: never the cause of an internal error.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "Something went wrong on the server.".to_owned(),
            other => other.to_string(),
        }
    }

    /// The request field at fault, for validation errors.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation(e) => Some(e.field),
            Self::Conflict { field, .. } => *field,
            _ => None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into(), field: None }
    }

    /// A conflict caused by one field's value, such as a taken name.
    pub fn conflict_on(
        field: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Conflict { code, message: message.into(), field: Some(field) }
    }

    /// A body over a limit the route does not name (the JSON body limit, say).
    pub fn payload_too_large() -> Self {
        Self::PayloadTooLarge { limit: None }
    }

    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }
}

/// A size limit of one kind of body, for the 413 that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    /// What is limited, as the sentence starts: "Files", "Avatars".
    pub what: &'static str,
    pub bytes: u64,
}

impl SizeLimit {
    /// The error for a body over this limit.
    pub fn exceeded(self) -> Error {
        Error::PayloadTooLarge { limit: Some(self) }
    }
}

fn too_large_message(limit: Option<SizeLimit>) -> String {
    match limit {
        Some(SizeLimit { what, bytes }) => format!("{what} may be at most {}.", mb(bytes)),
        None => "The request body is too large.".to_owned(),
    }
}

/// A size in whole megabytes (of 1024 × 1024 bytes, as the settings count them), or in
/// bytes when it is not a whole number of them.
fn mb(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

fn rate_limited_message(what: &str, retry_after: Duration) -> String {
    match retry_after_secs(retry_after) {
        1 => format!("{what}. Try again in a second."),
        seconds => format!("{what}. Try again in {seconds} seconds."),
    }
}

/// A wait in whole seconds, rounded up (a client that waits exactly this long must
/// succeed), and at least one.
pub fn retry_after_secs(retry_after: Duration) -> u64 {
    (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1)
}

impl Error {
    /// For a 429: how many seconds to wait.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Closed => Self::Unavailable,
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the database is unavailable");
                Self::Unavailable
            }
            StoreError::NotMember => Self::NotFound("Room"),
            StoreError::NotOwner => {
                Self::forbidden("not_owner", "Only the room's owner can do that.")
            }
            StoreError::MessageNotFound => Self::NotFound("Message"),
            StoreError::NotAuthor => {
                Self::forbidden("not_author", "Only the message's author can do that.")
            }
            StoreError::MessageDeleted => {
                Self::conflict("message_deleted", "That message has been deleted.")
            }
            StoreError::Blocked => Self::forbidden(
                "blocked",
                "This user does not accept messages or invitations from you.",
            ),
            StoreError::Blocking => {
                Self::forbidden("blocking", "You block this user; unblock them first.")
            }
            StoreError::TooManyReactions => Self::Validation(ValidationError::new(
                "emoji",
                "too_many_reactions",
                "This message has as many different reactions as it may.",
            )),
            other => Self::Internal(Box::new(other)),
        }
    }
}

/// An error and its causes on one line, for the log.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_told_in_megabytes() {
        assert_eq!(mb(25 * 1024 * 1024), "25 MB");
        assert_eq!(mb(10 * 1024 * 1024), "10 MB");
        assert_eq!(mb(1000), "1000 bytes");
        assert_eq!(mb(3 * 1024 * 1024 + 1), "3145729 bytes");
    }
}
