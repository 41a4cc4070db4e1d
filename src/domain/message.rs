//! Message bodies and the client-chosen ids that make sends idempotent.

use std::fmt;

use serde::Serialize;

use super::{ValidationError, has_control_chars};

/// The text of a message: not empty after trimming, at most 4,000 characters, no control
/// characters but newline and tab. Windows line endings are folded to `\n` first, and
/// surrounding whitespace is removed.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

    /// A body that may be empty (a message that carries files), otherwise parsed like any.
    pub fn parse_or_empty(input: &str) -> Result<Self, ValidationError> {
        if input.trim().is_empty() { Ok(Self(String::new())) } else { Self::parse(input) }
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names this body mentions as `@username`, lower case, each once, in order.
    /// An `@` counts only at the start or after a character that cannot be part of a
    /// username (so `a@b.c` mentions nobody).
    pub fn mentions(&self) -> Vec<Mention> {
        let in_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        let mut mentions: Vec<Mention> = Vec::new();
        let mut previous: Option<char> = None;
        for (at, c) in self.0.char_indices() {
            let starts = c == '@' && !previous.is_some_and(in_name);
            previous = Some(c);
            if !starts {
                continue;
            }
            let rest = &self.0[at + 1..];
            let len = rest.find(|c: char| !in_name(c)).unwrap_or(rest.len());
            let mention = Mention::of(&rest[..len].to_ascii_lowercase());
            if !mention.candidates.is_empty() && !mentions.contains(&mention) {
                mentions.push(mention);
            }
        }
        mentions
    }
}

/// One `@name` of a message. A sentence may end right after a name ("thanks @bob."), but a
/// username may end in dots too, so the name as written is tried first, then with its
/// trailing dots dropped one at a time: the first that names someone is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// Longest first, each of a username's length (3 to 32).
    candidates: Vec<String>,
}

impl Mention {
    fn of(written: &str) -> Self {
        let mut candidates = Vec::new();
        let mut name = written;
        loop {
            if (3..=32).contains(&name.len()) {
                candidates.push(name.to_owned());
            }
            match name.strip_suffix('.') {
                Some(shorter) => name = shorter,
                None => break,
            }
        }
        Self { candidates }
    }

    /// The usernames this may mean, the likeliest first.
    pub fn candidates(&self) -> &[String] {
        &self.candidates
    }

    /// Who is meant: the first candidate that `lookup` finds.
    pub fn resolve<T>(&self, lookup: impl Fn(&str) -> Option<T>) -> Option<T> {
        self.candidates.iter().find_map(|name| lookup(name))
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// An id the client picks for a send, so that a retry of the same send is stored once:
/// 1–64 printable ASCII characters (a UUID fits).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
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

/// A reaction: an emoji (or a short code such as `:shipit:`), 1–32 bytes without spaces,
/// control characters or invisible ones (the joiners and variation selectors of emoji
/// sequences aside).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_BYTES: usize = 32;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let fine = !input.is_empty()
            && input.len() <= Self::MAX_BYTES
            && !input
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || super::is_invisible(c));
        if fine {
            Ok(Self(input.to_owned()))
        } else {
            Err(ValidationError::new(
                "emoji",
                "invalid_emoji",
                "A reaction is an emoji or short code of 1 to 32 bytes, without spaces.",
            ))
        }
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Emoji {
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

    /// The names mentioned, each as its likeliest candidate.
    fn likeliest(body: &str) -> Vec<String> {
        let body = MessageBody::parse(body).expect("valid");
        body.mentions().iter().map(|m| m.candidates()[0].clone()).collect()
    }

    #[test]
    fn mentions_are_found_where_a_name_can_start() {
        assert_eq!(
            likeliest("@Alice and @bob, not mail@carol.org; thanks @dave @al @alice"),
            ["alice", "bob", "dave"]
        );
        assert!(likeliest("@ or @@ or email@x.com").is_empty());
    }

    #[test]
    fn a_name_ending_in_dots_is_tried_as_written_first() {
        let body = MessageBody::parse("thanks @Dave. and @eve.. and @al.").expect("valid");
        let mentions = body.mentions();
        let candidates: Vec<&[String]> = mentions.iter().map(Mention::candidates).collect();
        assert_eq!(
            candidates,
            [&["dave.", "dave"][..], &["eve..", "eve.", "eve"], &["al."]],
            "'@al' alone is too short to be a name"
        );
        let among = |users: &'static [&'static str]| {
            move |name: &str| users.iter().copied().find(|user| *user == name)
        };
        let dave = &mentions[0];
        assert_eq!(dave.resolve(among(&["dave", "dave."])), Some("dave."));
        assert_eq!(dave.resolve(among(&["dave"])), Some("dave"), "a sentence ended");
        assert_eq!(dave.resolve(among(&[])), None);
        assert_eq!(mentions[1].resolve(among(&["eve.", "eve"])), Some("eve."));
    }

    #[test]
    fn emoji_rules() {
        assert!(Emoji::parse("👍").is_ok());
        assert!(Emoji::parse("👩‍👩‍👧‍👦").is_ok());
        assert!(Emoji::parse(":shipit:").is_ok());
        for bad in ["", "two words", &"x".repeat(33), "tab\t"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_id_rules() {
        assert!(ClientId::parse("4f1c2a9e-0b7d-4c1e-9a51-2d8f3e6b7c10").is_ok());
        for bad in ["", "has space", &"x".repeat(65), "tab\t"] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
