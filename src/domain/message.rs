//! Message bodies and the client-chosen ids that make sends idempotent.

use std::fmt;

use serde::Serialize;

use super::{ValidationError, has_control_chars};

/// The text of a message: not empty after trimming, at most 4,000 characters, no control
/// characters but newline and tab. Windows line endings are folded to `\n` first, and
/// surrounding whitespace is removed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let normalized = input.replace("\r\n", "\n");
        let trimmed = normalized.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new("body", "empty_body", "Message must not be empty."));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "body",
                "body_too_long",
                "Message must be at most 4000 characters long.",
            ));
        }
        if has_control_chars(trimmed, true) {
            return Err(ValidationError::new(
                "body",
                "invalid_body",
                "Message must not contain control characters other than newline and tab.",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// An id the client picks for a send, so that a retry of the same send is stored once:
/// 1–64 printable ASCII characters (a UUID fits).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let printable = input.bytes().all(|b| b.is_ascii_graphic());
        if input.is_empty() || input.len() > Self::MAX_LEN || !printable {
            return Err(ValidationError::new(
                "client_id",
                "invalid_client_id",
                "client_id must be 1 to 64 printable ASCII characters without spaces.",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(input: &str) -> Option<&'static str> {
        MessageBody::parse(input).err().map(|e| e.code)
    }

    #[test]
    fn body_rules() {
        assert_eq!(code(" \n\t "), Some("empty_body"));
        assert_eq!(code(&"a".repeat(4001)), Some("body_too_long"));
        assert_eq!(code(&"ü".repeat(4000)), None, "the limit counts characters, not bytes");
        assert_eq!(code("nul \0 inside"), Some("invalid_body"));
        assert_eq!(code("escape \u{1b}[31m"), Some("invalid_body"));
        assert_eq!(code("lines\nand\ttabs"), None);
    }

    #[test]
    fn body_is_trimmed_and_line_endings_folded() {
        let body = MessageBody::parse("  hi\r\nthere \n").expect("valid");
        assert_eq!(body.as_str(), "hi\nthere");
    }

    #[test]
    fn client_id_rules() {
        assert!(ClientId::parse("4f1c2a9e-0b7d-4c1e-9a51-2d8f3e6b7c10").is_ok());
        for bad in ["", "has space", &"x".repeat(65), "tab\t"] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
