//! The records a chat server keeps: users, rooms, memberships and messages, as clients see
//! them. They serialize to the JSON shapes documented in docs/api.md.

use serde::Serialize;

use super::{
    ClientId, DisplayName, MessageBody, MessageId, RoomId, RoomKind, RoomRole, Timestamp, UserId,
    Username,
};

/// A user as anyone signed in may see them.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub created_at: Timestamp,
}

/// A room as one particular user (the viewer) sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    /// The room's name; for a DM, the other user's display name.
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    /// The seq of the room's newest event; 0 while it has none.
    pub last_seq: i64,
    pub member_count: i64,
    /// Whether the viewer is a member.
    pub joined: bool,
    /// The viewer's role, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<RoomRole>,
    /// The highest seq the viewer has read (fetched or sent), when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<i64>,
    /// Messages by others after `last_read_seq`, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i64>,
    /// The newest message, if the viewer may read the room and it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Message>,
    /// For a DM, the other user (the viewer themself in a DM with oneself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<User>,
}

/// A member of a room, for member lists.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    #[serde(flatten)]
    pub user: User,
    pub role: RoomRole,
    pub joined_at: Timestamp,
}

/// A message as stored and as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Position in the room's event stream: strictly increasing, no gaps.
    pub seq: i64,
    pub author_id: UserId,
    pub body: MessageBody,
    /// The sender's idempotency key, if it gave one.
    pub client_id: Option<ClientId>,
    pub created_at: Timestamp,
}
