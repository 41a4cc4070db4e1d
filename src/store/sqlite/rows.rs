//! Rows as SQLite returns them, and their conversion into domain records.

use sqlx::FromRow;

use crate::domain::{
    ClientId, DisplayName, Member, Message, MessageBody, MessageId, Room, RoomId, RoomKind,
    RoomRole, Timestamp, User, UserId, Username,
};
use crate::store::{StoreError, StoreResult};

#[derive(FromRow)]
pub(super) struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub created_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> User {
        User {
            id: UserId::from_i64(self.id),
            username: Username::from_trusted(self.username),
            display_name: DisplayName::from_trusted(self.display_name),
            created_at: Timestamp::from_millis(self.created_at),
        }
    }
}

#[derive(FromRow)]
pub(super) struct MessageRow {
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub author_id: i64,
    pub body: String,
    pub client_id: Option<String>,
    pub created_at: i64,
}

impl MessageRow {
    pub fn into_message(self) -> Message {
        Message {
            id: MessageId::from_i64(self.id),
            room_id: RoomId::from_i64(self.room_id),
            seq: self.seq,
            author_id: UserId::from_i64(self.author_id),
            body: MessageBody::from_trusted(self.body),
            client_id: self.client_id.map(ClientId::from_trusted),
            created_at: Timestamp::from_millis(self.created_at),
        }
    }
}

#[derive(FromRow)]
pub(super) struct MemberRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub role: String,
    pub joined_at: i64,
}

impl MemberRow {
    pub fn into_member(self) -> StoreResult<Member> {
        Ok(Member {
            user: self.user.into_user(),
            role: parse_role(&self.role)?,
            joined_at: Timestamp::from_millis(self.joined_at),
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
    pub peer_id: Option<i64>,
    pub peer_username: Option<String>,
    pub peer_display_name: Option<String>,
    pub peer_created_at: Option<i64>,
    pub lm_id: Option<i64>,
    pub lm_seq: Option<i64>,
    pub lm_author_id: Option<i64>,
    pub lm_body: Option<String>,
    pub lm_client_id: Option<String>,
    pub lm_created_at: Option<i64>,
}

impl RoomRow {
    pub fn into_room(self) -> StoreResult<Room> {
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
            (Some(id), Some(username), Some(display_name), Some(created_at)) => {
                Some(UserRow { id, username, display_name, created_at }.into_user())
            }
            _ => None,
        };
        let name = match (&peer, self.name) {
            (Some(peer), _) if kind == RoomKind::Dm => peer.display_name.as_str().to_owned(),
            (_, Some(name)) => name,
            (_, None) => String::new(),
        };
        // Only members, and anyone for a public room, may see the newest message.
        let readable = joined || kind == RoomKind::Public;
        let last_message =
            match (self.lm_id, self.lm_seq, self.lm_author_id, self.lm_body, self.lm_created_at) {
                (Some(id), Some(seq), Some(author_id), Some(body), Some(created_at))
                    if readable =>
                {
                    Some(
                        MessageRow {
                            id,
                            room_id: self.id,
                            seq,
                            author_id,
                            body,
                            client_id: self.lm_client_id,
                            created_at,
                        }
                        .into_message(),
                    )
                }
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
            last_message,
            peer,
        })
    }
}

pub(super) fn parse_role(text: &str) -> StoreResult<RoomRole> {
    RoomRole::from_stored(text).ok_or_else(|| StoreError::Corrupt(format!("role {text:?}")))
}
