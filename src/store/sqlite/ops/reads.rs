//! What the writer reads inside its transaction, on its own connection: a message whole
//! (as it is announced after a change), and the rows behind it. The readers' versions, on
//! the pool, are in `messages.rs`; both select the same columns and build messages with
//! the same `rows::assemble`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::super::messages::ATTACHMENT_SELECT;
use crate::domain::{Message, MessageId, RoomId, UserId};
use crate::store::StoreError;
use crate::store::rows::{AttachmentRow, MessageRow, UserRow, assemble, message_select};

use super::super::writer::ApplyError;

/// One message of a room, whole.
pub(super) fn message_in_room(
    db: &Connection,
    room: RoomId,
    id: MessageId,
) -> Result<Option<Message>, ApplyError> {
    let sql = format!("{} WHERE m.id = ?1 AND m.room_id = ?2", message_select());
    let row =
        db.prepare_cached(&sql)?.query_row([id.as_i64(), room.as_i64()], message_row).optional()?;
    row.map(|row| whole(db, row)).transpose()
}

/// The message stored by `author` in `room` under `client_id`, whole, if any.
pub(super) fn message_by_client_id(
    db: &Connection,
    room: RoomId,
    author: UserId,
    client_id: &str,
) -> Result<Option<Message>, ApplyError> {
    let sql = format!(
        "{} WHERE m.room_id = ?1 AND m.author_id = ?2 AND m.client_id = ?3",
        message_select()
    );
    let row = db
        .prepare_cached(&sql)?
        .query_row(params![room.as_i64(), author.as_i64(), client_id], message_row)
        .optional()?;
    row.map(|row| whole(db, row)).transpose()
}

/// A message's row made whole: its reactions, mentions and files.
fn whole(db: &Connection, row: MessageRow) -> Result<Message, ApplyError> {
    let id = row.id;
    let mut statement = db.prepare_cached(
        "SELECT message_id, emoji, user_id FROM reactions WHERE message_id = ?1
         ORDER BY created_at, emoji, user_id",
    )?;
    let reactions = statement
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut statement = db.prepare_cached(
        "SELECT message_id, user_id FROM mentions WHERE message_id = ?1 ORDER BY seq, user_id",
    )?;
    let mentions =
        statement.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let mut statement =
        db.prepare_cached(&format!("{ATTACHMENT_SELECT} WHERE message_id = ?1 ORDER BY position"))?;
    let attachments = statement.query_map([id], attachment_row)?.collect::<Result<_, _>>()?;
    let mut messages = assemble(vec![row], reactions, mentions, attachments);
    messages.pop().map(|(_, message)| message).ok_or_else(|| {
        ApplyError::Batch(StoreError::Corrupt(format!("message {id} could not be assembled")))
    })
}

/// A [`MessageRow`] from the columns of `rows::message_columns`.
fn message_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get("id")?,
        room_id: row.get("room_id")?,
        seq: row.get("seq")?,
        changed_seq: row.get("changed_seq")?,
        author_id: row.get("author_id")?,
        body: row.get("body")?,
        client_id: row.get("client_id")?,
        created_at: row.get("created_at")?,
        edited_at: row.get("edited_at")?,
        deleted_at: row.get("deleted_at")?,
        reply_id: row.get("reply_id")?,
        reply_author_id: row.get("reply_author_id")?,
        reply_preview: row.get("reply_preview")?,
        reply_deleted_at: row.get("reply_deleted_at")?,
    })
}

fn attachment_row(row: &Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok(AttachmentRow {
        id: row.get("id")?,
        kind: row.get("kind")?,
        mime: row.get("mime")?,
        name: row.get("name")?,
        size: row.get("size")?,
        width: row.get("width")?,
        height: row.get("height")?,
        duration_ms: row.get("duration_ms")?,
        has_thumbnail: row.get("has_thumbnail")?,
        message_id: row.get("message_id")?,
    })
}

/// A [`UserRow`] from `id, username, display_name, bio, avatar, created_at`, in that order
/// from column `first` on.
pub(super) fn user_row(row: &Row<'_>, first: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(first)?,
        username: row.get(first + 1)?,
        display_name: row.get(first + 2)?,
        bio: row.get(first + 3)?,
        avatar: row.get(first + 4)?,
        created_at: row.get(first + 5)?,
    })
}
