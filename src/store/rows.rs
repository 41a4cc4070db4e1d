//! Rows as both databases return them, and their conversion into domain records: each
//! backend selects the same columns under the same names, and this is the one place that
//! decides what a stored value means.
//!
//! Integers are 64-bit in both (SQLite's INTEGER, PostgreSQL's BIGINT), times are Unix
//! milliseconds, and kinds and roles are stored as the words the domain parses.

use std::collections::HashMap;

use sqlx::FromRow;

use crate::domain::{
    Attachment, Bio, ClientId, DisplayName, Emoji, IdentityId, MediaId, MediaKind, Message,
    MessageBody, MessageId, Reaction, ReplyPreview, Room, RoomId, RoomKind, RoomRole, Timestamp,
    User, UserId, Username,
};
use crate::store::{IdentityRecord, MemberRecord, StoreError, StoreResult};

/// How many characters of the original a reply's preview shows (the select cuts it, the
/// rule for a new reply too).
pub(super) const REPLY_PREVIEW_CHARS: usize = 100;

#[derive(FromRow)]
pub(super) struct IdentityRow {
    pub id: i64,
    pub issuer: String,
    pub provider: String,
    pub email: Option<String>,
    pub created_at: i64,
}

impl IdentityRow {
    pub fn into_record(self) -> IdentityRecord {
        IdentityRecord {
            id: IdentityId::from_i64(self.id),
            issuer: self.issuer,
            provider: self.provider,
            email: self.email,
            created_at: Timestamp::from_millis(self.created_at),
        }
    }
}

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
        User {
            id: UserId::from_i64(self.id),
            username: Username::from_trusted(self.username),
            display_name: DisplayName::from_trusted(self.display_name),
            bio: Bio::from_trusted(self.bio),
            avatar: self.avatar,
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

/// A room with the viewer's membership, the DM peer and the newest message's id, as each
/// backend's room view selects them.
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
    /// Who added the viewer, if a member someone else added.
    pub added_by: Option<i64>,
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
            added_by: self.added_by.filter(|_| joined).map(UserId::from_i64),
        })
    }
}

pub(super) fn parse_role(text: &str) -> StoreResult<RoomRole> {
    RoomRole::from_stored(text).ok_or_else(|| StoreError::Corrupt(format!("role {text:?}")))
}

/// The columns of a message and of the preview of the message it replies to, in the SQL
/// both databases speak alike; callers add WHERE, ORDER BY and LIMIT. `m` is the message.
pub(super) fn message_select() -> String {
    format!(
        "SELECT {} FROM messages m LEFT JOIN messages p ON p.id = m.reply_to",
        message_columns()
    )
}

/// The columns of a [`MessageRow`], from the message `m` and the one it replies to, `p`.
pub(super) fn message_columns() -> String {
    format!(
        "m.id, m.room_id, m.seq, m.changed_seq, m.author_id, m.body, m.client_id,
         m.created_at, m.edited_at, m.deleted_at,
         p.id AS reply_id, p.author_id AS reply_author_id,
         substr(p.body, 1, {REPLY_PREVIEW_CHARS}) AS reply_preview,
         p.deleted_at AS reply_deleted_at"
    )
}

/// A message a search may find, with its place in the search's order.
#[derive(FromRow)]
pub(super) struct CandidateRow {
    pub position: i64,
    #[sqlx(flatten)]
    pub row: MessageRow,
}

/// Candidates from their rows, once `complete` has made whole messages of the rows (in the
/// same order).
pub(super) fn candidates_from<E, F>(
    rows: Vec<CandidateRow>,
    complete: impl FnOnce(Vec<MessageRow>) -> F,
) -> impl Future<Output = Result<Vec<crate::store::Candidate>, E>>
where
    F: Future<Output = Result<Vec<(i64, Message)>, E>>,
{
    let (positions, rows): (Vec<i64>, Vec<MessageRow>) =
        rows.into_iter().map(|r| (r.position, r.row)).unzip();
    let messages = complete(rows);
    async move {
        Ok(positions
            .into_iter()
            .zip(messages.await?)
            .map(|(position, (_, message))| crate::store::Candidate { position, message })
            .collect())
    }
}

/// A message as stored, with the preview of the message it replies to; reactions, mentions
/// and files come separately ([`assemble`]).
#[derive(FromRow)]
pub(super) struct MessageRow {
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub changed_seq: i64,
    pub author_id: i64,
    pub body: String,
    pub client_id: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub reply_id: Option<i64>,
    pub reply_author_id: Option<i64>,
    pub reply_preview: Option<String>,
    pub reply_deleted_at: Option<i64>,
}

impl MessageRow {
    /// The message without its reactions, mentions and files.
    fn into_message(self) -> Message {
        let reply_to = match (self.reply_id, self.reply_author_id) {
            (Some(id), Some(author)) => Some(ReplyPreview {
                message_id: MessageId::from_i64(id),
                author_id: UserId::from_i64(author),
                preview: self.reply_preview.unwrap_or_default(),
                deleted: self.reply_deleted_at.is_some(),
            }),
            _ => None,
        };
        Message {
            id: MessageId::from_i64(self.id),
            room_id: RoomId::from_i64(self.room_id),
            seq: self.seq,
            author_id: UserId::from_i64(self.author_id),
            body: MessageBody::from_trusted(self.body),
            client_id: self.client_id.map(ClientId::from_trusted),
            created_at: Timestamp::from_millis(self.created_at),
            edited_at: self.edited_at.map(Timestamp::from_millis),
            deleted: self.deleted_at.is_some(),
            reply_to,
            reactions: Vec::new(),
            mentions: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// One member's reaction: message id, emoji, user id.
pub(super) type ReactionRow = (i64, String, i64);

/// One mention: message id, user id.
pub(super) type MentionRow = (i64, i64);

/// An attached file as stored.
#[derive(FromRow)]
pub(super) struct AttachmentRow {
    pub id: String,
    pub kind: String,
    pub mime: String,
    pub name: String,
    pub size: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration_ms: Option<i64>,
    pub has_thumbnail: bool,
    pub message_id: i64,
}

impl AttachmentRow {
    fn into_attachment(self) -> Attachment {
        Attachment {
            id: MediaId::from_trusted(self.id),
            kind: MediaKind::from_stored(&self.kind).unwrap_or(MediaKind::File),
            mime: self.mime,
            name: self.name,
            size: u64::try_from(self.size).unwrap_or(0),
            width: self.width.and_then(|w| u32::try_from(w).ok()),
            height: self.height.and_then(|h| u32::try_from(h).ok()),
            duration_ms: self.duration_ms.and_then(|d| u64::try_from(d).ok()),
            has_thumbnail: self.has_thumbnail,
        }
    }
}

/// Whole messages from their rows (in the same order) and what belongs to them: reactions
/// in the order they were made, mentions, files in their order. Returns each message with
/// its row's `changed_seq`.
pub(super) fn assemble(
    rows: Vec<MessageRow>,
    reactions: Vec<ReactionRow>,
    mentions: Vec<MentionRow>,
    attachments: Vec<AttachmentRow>,
) -> Vec<(i64, Message)> {
    let mut by_message: HashMap<i64, (Vec<Reaction>, Vec<UserId>)> = HashMap::new();
    for (message, emoji, user) in reactions {
        let reactions = &mut by_message.entry(message).or_default().0;
        let user = UserId::from_i64(user);
        match reactions.iter_mut().find(|r| r.emoji.as_str() == emoji) {
            Some(reaction) => {
                reaction.count += 1;
                reaction.user_ids.push(user);
            }
            None => reactions.push(Reaction {
                emoji: Emoji::from_trusted(emoji),
                count: 1,
                user_ids: vec![user],
            }),
        }
    }
    for (message, user) in mentions {
        by_message.entry(message).or_default().1.push(UserId::from_i64(user));
    }
    let mut files: HashMap<i64, Vec<Attachment>> = HashMap::new();
    for row in attachments {
        files.entry(row.message_id).or_default().push(row.into_attachment());
    }
    rows.into_iter()
        .map(|row| {
            let changed_seq = row.changed_seq;
            let id = row.id;
            let mut message = row.into_message();
            if let Some((reactions, mentions)) = by_message.remove(&id) {
                message.reactions = reactions;
                message.mentions = mentions;
            }
            message.attachments = files.remove(&id).unwrap_or_default();
            (changed_seq, message)
        })
        .collect()
}

/// A recorded file, as `Store::media` reads it.
#[derive(FromRow)]
pub(super) struct MediaRow {
    pub uploader_id: i64,
    pub kind: String,
    pub mime: String,
    pub name: String,
    pub size: i64,
    pub has_thumbnail: bool,
    pub room_id: Option<i64>,
}

impl MediaRow {
    pub fn into_record(self, id: &MediaId) -> crate::store::MediaRecord {
        crate::store::MediaRecord {
            id: id.clone(),
            uploader: UserId::from_i64(self.uploader_id),
            kind: MediaKind::from_stored(&self.kind).unwrap_or(MediaKind::File),
            mime: self.mime,
            name: self.name,
            size: u64::try_from(self.size).unwrap_or(0),
            has_thumbnail: self.has_thumbnail,
            room: self.room_id.map(RoomId::from_i64),
        }
    }
}
