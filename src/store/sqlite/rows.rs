//! Rows as SQLite returns them, and their conversion into domain records.

use std::collections::HashMap;

use sqlx::FromRow;

use crate::domain::{
    Bio, DisplayName, Message, MessageId, Room, RoomId, RoomKind, RoomRole, Timestamp, User,
    UserId, Username,
};
use crate::store::{MemberRecord, StoreError, StoreResult};

#[derive(FromRow)]
pub(super) struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub avatar: Option<String>,
    pub created_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> User {
        let id = UserId::from_i64(self.id);
        User {
            id,
            username: Username::from_trusted(self.username),
            display_name: DisplayName::from_trusted(self.display_name),
            bio: Bio::from_trusted(self.bio),
            avatar_url: self.avatar.map(|key| avatar_url(id, &key)),
            created_at: Timestamp::from_millis(self.created_at),
        }
    }
}

/// Where a user's avatar is served; the blob key in the query makes a new picture a new URL.
pub(super) fn avatar_url(user: UserId, key: &str) -> String {
    format!("/api/v1/users/{user}/avatar?v={key}")
}

#[derive(FromRow)]
pub(super) struct MemberRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub role: String,
    pub joined_at: i64,
    pub last_read_seq: i64,
    pub last_seen_at: Option<i64>,
}

impl MemberRow {
    pub fn into_member(self) -> StoreResult<MemberRecord> {
        Ok(MemberRecord {
            user: self.user.into_user(),
            role: parse_role(&self.role)?,
            joined_at: Timestamp::from_millis(self.joined_at),
            read_seq: self.last_read_seq,
            last_seen_at: self.last_seen_at.map(Timestamp::from_millis),
        })
    }
}

/// A room with the viewer's membership, the DM peer and the newest message, as selected by
/// `ROOM_VIEW_SELECT`.
#[derive(FromRow)]
pub(super) struct RoomRow {
    pub id: i64,
    pub kind: String,
    pub name: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub last_seq: i64,
    pub member_count: i64,
    pub role: Option<String>,
    pub last_read_seq: Option<i64>,
    pub unread_count: Option<i64>,
    pub mention_count: Option<i64>,
    pub peer_id: Option<i64>,
    pub peer_username: Option<String>,
    pub peer_display_name: Option<String>,
    pub peer_bio: Option<String>,
    pub peer_avatar: Option<String>,
    pub peer_created_at: Option<i64>,
    /// The newest message's id.
    pub lm_id: Option<i64>,
}

impl RoomRow {
    /// The room, with its newest message taken from `messages` (loaded whole beforehand).
    pub fn into_room(self, messages: &mut HashMap<MessageId, Message>) -> StoreResult<Room> {
        let kind = RoomKind::from_stored(&self.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("room kind {:?}", self.kind)))?;
        let role = self.role.as_deref().map(parse_role).transpose()?;
        let joined = role.is_some();
        let peer = match (
            self.peer_id,
            self.peer_username,
            self.peer_display_name,
            self.peer_created_at,
        ) {
            (Some(id), Some(username), Some(display_name), Some(created_at)) => Some(
                UserRow {
                    id,
                    username,
                    display_name,
                    bio: self.peer_bio.unwrap_or_default(),
                    avatar: self.peer_avatar,
                    created_at,
                }
                .into_user(),
            ),
            _ => None,
        };
        let name = match (&peer, self.name) {
            (Some(peer), _) if kind == RoomKind::Dm => peer.display_name.as_str().to_owned(),
            (_, Some(name)) => name,
            (_, None) => String::new(),
        };
        // Only members, and anyone for a public room, may see the newest message.
        let readable = joined || kind == RoomKind::Public;
        let last_message = match self.lm_id {
            Some(id) if readable => messages.remove(&MessageId::from_i64(id)),
            _ => None,
        };
        Ok(Room {
            id: RoomId::from_i64(self.id),
            kind,
            name,
            created_by: self.created_by.map(UserId::from_i64),
            created_at: Timestamp::from_millis(self.created_at),
            last_seq: self.last_seq,
            member_count: self.member_count,
            joined,
            role,
            last_read_seq: self.last_read_seq.filter(|_| joined),
            unread_count: self.unread_count.filter(|_| joined),
            mention_count: self.mention_count.filter(|_| joined),
            last_message,
            peer,
        })
    }
}

pub(super) fn parse_role(text: &str) -> StoreResult<RoomRole> {
    RoomRole::from_stored(text).ok_or_else(|| StoreError::Corrupt(format!("role {text:?}")))
}
