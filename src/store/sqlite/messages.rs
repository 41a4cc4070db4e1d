//! Reading messages whole: the row, the preview of the message it replies to, its reactions,
//! mentions and files. Used by history, catch-up, and the room list. The writer reads
//! them on its own connection (`ops/reads.rs`).

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::domain::{Message, MessageId, RoomId};
pub(super) use crate::store::rows::message_select;
use crate::store::rows::{AttachmentRow, MentionRow, MessageRow, ReactionRow, assemble};

/// The files of messages, as an [`AttachmentRow`] each; callers append WHERE and ORDER BY.
pub(super) const ATTACHMENT_SELECT: &str =
    "SELECT id, kind, mime, name, size, width, height, duration_ms, has_thumbnail, message_id
     FROM media";

/// Turns rows into whole messages (in the same order), loading their reactions, mentions
/// and files with one query each. Returns each message with its row's `changed_seq`.
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
    let reactions: Vec<ReactionRow> = query.build_query_as().fetch_all(&mut *db).await?;

    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT message_id, user_id FROM mentions WHERE message_id IN (",
    );
    push_ids(&mut query, &ids);
    query.push(") ORDER BY seq, user_id");
    let mentions: Vec<MentionRow> = query.build_query_as().fetch_all(&mut *db).await?;

    let mut query =
        QueryBuilder::<Sqlite>::new(format!("{ATTACHMENT_SELECT} WHERE message_id IN ("));
    push_ids(&mut query, &ids);
    query.push(") ORDER BY message_id, position");
    let attachments: Vec<AttachmentRow> = query.build_query_as().fetch_all(&mut *db).await?;

    Ok(assemble(rows, reactions, mentions, attachments))
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
