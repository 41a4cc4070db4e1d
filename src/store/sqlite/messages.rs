//! Reading messages whole: the row, the preview of the message it replies to, its reactions
//! and its mentions. Used by history, catch-up, the room list and the writer (which
//! announces messages whole after changing them).

use std::collections::HashMap;

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use crate::domain::{
    Attachment, ClientId, Emoji, MediaId, MediaKind, Message, MessageBody, MessageId, Reaction,
    ReplyPreview, RoomId, Timestamp, UserId,
};

/// How many characters of the original a reply's preview shows.
pub(super) const REPLY_PREVIEW_CHARS: usize = 100;

/// The columns of a message and of the preview of the message it replies to; callers add
/// WHERE, ORDER BY and LIMIT. `m` is the message.
pub(super) fn message_select() -> String {
    format!(
        "SELECT m.id, m.room_id, m.seq, m.changed_seq, m.author_id, m.body, m.client_id,
                m.created_at, m.edited_at, m.deleted_at,
                p.id AS reply_id, p.author_id AS reply_author_id,
                substr(p.body, 1, {REPLY_PREVIEW_CHARS}) AS reply_preview,
                p.deleted_at AS reply_deleted_at
         FROM messages m LEFT JOIN messages p ON p.id = m.reply_to"
    )
}

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
    /// The message without its reactions and mentions; [`complete`] adds those.
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

/// Turns rows into whole messages (in the same order), loading their reactions and
/// mentions with one query each. Returns each message with its row's `changed_seq`.
pub(super) async fn complete(
    db: &mut SqliteConnection,
    rows: Vec<MessageRow>,
) -> sqlx::Result<Vec<(i64, Message)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();

    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN (",
    );
    push_ids(&mut query, &ids);
    query.push(") ORDER BY created_at, emoji, user_id");
    let reactions: Vec<(i64, String, i64)> = query.build_query_as().fetch_all(&mut *db).await?;

    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT message_id, user_id FROM mentions WHERE message_id IN (",
    );
    push_ids(&mut query, &ids);
    query.push(") ORDER BY seq, user_id");
    let mentions: Vec<(i64, i64)> = query.build_query_as().fetch_all(&mut *db).await?;

    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT id, kind, mime, name, size, width, height, duration_ms, has_thumbnail, message_id
         FROM media WHERE message_id IN (",
    );
    push_ids(&mut query, &ids);
    query.push(") ORDER BY message_id, position");
    let attachments: Vec<AttachmentRow> = query.build_query_as().fetch_all(&mut *db).await?;

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
        let message = row.message_id;
        files.entry(message).or_default().push(row.into_attachment());
    }

    Ok(rows
        .into_iter()
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
        .collect())
}

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
        let id = MediaId::from_trusted(self.id);
        let (url, thumbnail_url) = Attachment::urls(&id, self.has_thumbnail);
        Attachment {
            id,
            kind: MediaKind::from_stored(&self.kind).unwrap_or(MediaKind::File),
            mime: self.mime,
            name: self.name,
            size: u64::try_from(self.size).unwrap_or(0),
            width: self.width.and_then(|w| u32::try_from(w).ok()),
            height: self.height.and_then(|h| u32::try_from(h).ok()),
            duration_ms: self.duration_ms.and_then(|d| u64::try_from(d).ok()),
            url,
            thumbnail_url,
        }
    }
}

fn push_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[i64]) {
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
}

/// One message of a room, whole.
pub(super) async fn message_in_room(
    db: &mut SqliteConnection,
    room: RoomId,
    id: MessageId,
) -> sqlx::Result<Option<Message>> {
    let row: Option<MessageRow> =
        sqlx::query_as(&format!("{} WHERE m.id = ?1 AND m.room_id = ?2", message_select()))
            .bind(id.as_i64())
            .bind(room.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(complete(db, vec![row]).await?.pop().map(|(_, message)| message))
}

/// Messages by id (any room), whole, keyed by id.
pub(super) async fn messages_by_id(
    db: &mut SqliteConnection,
    ids: &[i64],
) -> sqlx::Result<HashMap<MessageId, Message>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = QueryBuilder::<Sqlite>::new(message_select());
    query.push(" WHERE m.id IN (");
    push_ids(&mut query, ids);
    query.push(")");
    let rows: Vec<MessageRow> = query.build_query_as().fetch_all(&mut *db).await?;
    Ok(complete(db, rows).await?.into_iter().map(|(_, m)| (m.id, m)).collect())
}
