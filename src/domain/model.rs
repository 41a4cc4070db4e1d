//! The records a chat server keeps: users, rooms, memberships and messages, as clients see
//! them. They serialize to the JSON shapes documented in docs/api.md; where a record links
//! to something the API serves (an avatar, a file), the link is made as it is serialized,
//! by `links`, so that whoever builds a record (a store, say) never deals in URLs.

use serde::{Deserialize, Serialize, Serializer};

use super::links;
use super::{
    Bio, ClientId, DisplayName, Emoji, MediaId, MediaKind, MessageBody, MessageId, RoomId,
    RoomKind, RoomRole, Timestamp, UserId, Username,
};

/// A user as anyone signed in may see them.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    /// A few words about themself; may be empty.
    pub bio: Bio,
    /// The blob key of their avatar (a square picture), if they set one. Clients see it as
    /// `avatar_url`, which changes with the picture.
    pub avatar: Option<String>,
    pub created_at: Timestamp,
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        UserShown {
            id: self.id,
            username: &self.username,
            display_name: &self.display_name,
            bio: &self.bio,
            avatar_url: self.avatar.as_deref().map(|key| links::avatar(self.id, key)),
            created_at: self.created_at,
        }
        .serialize(serializer)
    }
}

/// A user as clients see them: what [`User`] serializes to, and its schema.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
struct UserShown<'a> {
    id: UserId,
    username: &'a Username,
    display_name: &'a DisplayName,
    /// A few words about themself; may be empty.
    bio: &'a Bio,
    /// Where their picture is served; null without one. It changes with each new picture.
    #[schema(required = true)]
    avatar_url: Option<String>,
    created_at: Timestamp,
}

impl utoipa::PartialSchema for User {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <UserShown<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for User {
    fn name() -> std::borrow::Cow<'static, str> {
        <UserShown<'static> as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
    ) {
        <UserShown<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A room as one particular user (the viewer) sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    /// The room's name; for a DM, the other user's display name.
    pub name: String,
    #[schema(required = true)]
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    /// The seq of the room's newest event; 0 while it has none.
    pub last_seq: i64,
    pub member_count: i64,
    /// Whether the viewer is a member.
    pub joined: bool,
    /// The viewer's role, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub role: Option<RoomRole>,
    /// The highest seq the viewer has read (fetched or sent), when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_read_seq: Option<i64>,
    /// Messages by others after `last_read_seq`, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub unread_count: Option<i64>,
    /// Of those, the ones that mention the viewer, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub mention_count: Option<i64>,
    /// The newest message, if the viewer may read the room and it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_message: Option<Message>,
    /// For a DM, the other user (the viewer themself in a DM with oneself).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub peer: Option<User>,
    /// The member who added the viewer, when someone else did (not when the viewer joined
    /// or created the room, nor in a DM), so that people can see how they got there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub added_by: Option<UserId>,
}

/// A member of a room, for member lists.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub user: User,
    pub role: RoomRole,
    pub joined_at: Timestamp,
    pub presence: Presence,
    /// The highest seq this member has read.
    pub read_seq: i64,
}

/// Whether a user is around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one of their connections is open and active.
    Online,
    /// Connected, but every connection says its user is away.
    Away,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Presence {
    pub status: PresenceStatus,
    /// When they were last connected, if ever (absent while connected).
    #[schema(required = true)]
    pub last_seen_at: Option<Timestamp>,
}

/// A member's read marker and what lies after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Unread {
    pub last_read_seq: i64,
    /// Messages by others after `last_read_seq`, deleted ones aside.
    pub unread_count: i64,
    /// Of those, the ones that mention the member.
    pub mention_count: i64,
}

/// Where a member stands in one room: the room's newest seq, their marker and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoomCursor {
    pub room_id: RoomId,
    pub last_seq: i64,
    #[serde(flatten)]
    pub unread: Unread,
}

/// How far one member has got in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub user_id: UserId,
    /// Everything up to this seq is read.
    pub read_seq: i64,
    /// Everything up to this seq reached one of their clients.
    pub delivered_seq: i64,
}

/// A message as stored and as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Position in the room: strictly increasing, no gaps between messages and changes.
    pub seq: i64,
    pub author_id: UserId,
    /// Empty once deleted.
    pub body: MessageBody,
    /// The sender's idempotency key, if it gave one.
    #[schema(required = true)]
    pub client_id: Option<ClientId>,
    pub created_at: Timestamp,
    #[schema(required = true)]
    pub edited_at: Option<Timestamp>,
    /// A tombstone: the body is gone from storage.
    pub deleted: bool,
    /// The message this one replies to, as a short preview.
    #[schema(required = true)]
    pub reply_to: Option<ReplyPreview>,
    /// Reactions, by emoji in the order first used.
    pub reactions: Vec<Reaction>,
    /// Members this message mentions.
    pub mentions: Vec<UserId>,
    /// Files sent with the message, in order.
    pub attachments: Vec<Attachment>,
}

/// A file sent with a message, as members see it; clients see where it is served as `url`
/// (and `thumbnail_url`).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: MediaId,
    pub kind: MediaKind,
    /// The Content-Type it is served with, decided from its bytes.
    pub mime: String,
    pub name: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    /// It has a small version (pictures do).
    pub has_thumbnail: bool,
}

impl Serialize for Attachment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AttachmentShown {
            id: &self.id,
            kind: self.kind,
            mime: &self.mime,
            name: &self.name,
            size: self.size,
            width: self.width,
            height: self.height,
            duration_ms: self.duration_ms,
            url: links::media(&self.id),
            thumbnail_url: self.has_thumbnail.then(|| links::thumbnail(&self.id)),
        }
        .serialize(serializer)
    }
}

/// A file as clients see it: what [`Attachment`] serializes to, and its schema.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Attachment)]
struct AttachmentShown<'a> {
    id: &'a MediaId,
    kind: MediaKind,
    /// The Content-Type it is served with, decided from its bytes.
    mime: &'a str,
    name: &'a str,
    size: u64,
    /// Set for pictures: as shown, Exif orientation applied.
    #[schema(required = true)]
    width: Option<u32>,
    #[schema(required = true)]
    height: Option<u32>,
    /// Set for sound and video when the uploader gave it.
    #[schema(required = true)]
    duration_ms: Option<u64>,
    url: String,
    /// Set for pictures: at most 320 pixels a side.
    #[schema(required = true)]
    thumbnail_url: Option<String>,
}

impl utoipa::PartialSchema for Attachment {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <AttachmentShown<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Attachment {
    fn name() -> std::borrow::Cow<'static, str> {
        <AttachmentShown<'static> as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
    ) {
        <AttachmentShown<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplyPreview {
    pub message_id: MessageId,
    pub author_id: UserId,
    /// The first characters of the original; empty if it was deleted.
    pub preview: String,
    pub deleted: bool,
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reaction {
    pub emoji: Emoji,
    pub count: usize,
    pub user_ids: Vec<UserId>,
}
