//! Room kinds, names and member roles.

use std::fmt;

use serde::Serialize;

use super::{ValidationError, has_control_chars};

/// What kind of room: who can see it and who can join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Listed in the directory; anyone signed in may join and leave.
    Public,
    /// Invisible to non-members; members add members, the owner removes them.
    Private,
    /// A conversation between exactly one pair of users (or a user with themself).
    Dm,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Dm => "dm",
        }
    }

    /// The kind as stored; `None` for anything we never write.
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            "dm" => Some(Self::Dm),
            _ => None,
        }
    }
}

/// A room name: 1–64 printable characters, surrounding whitespace removed.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = |message: &str| ValidationError::new("name", "invalid_room_name", message);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("Room name must not be empty."));
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(invalid("Room name must be at most 64 characters long."));
        }
        if has_control_chars(trimmed, false) {
            return Err(invalid("Room name must not contain control characters."));
        }
        if let Some(problem) = super::unshown_name(trimmed, "Room name") {
            return Err(invalid(&problem));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What public rooms' names are unique under, besides case: no two look alike
    /// (`general` and `gеneral` with a Cyrillic `е`). See [`super::lookalike_key`].
    pub fn lookalike_key(&self) -> String {
        super::lookalike_key(&self.0)
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    /// Created the room (or inherited it when the owner left); may remove members.
    Owner,
    Member,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_name_rules() {
        assert_eq!(RoomName::parse("  general ").map(|n| n.0), Ok("general".to_owned()));
        for bad in ["", "  ", "new\nline", &"n".repeat(65)] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
