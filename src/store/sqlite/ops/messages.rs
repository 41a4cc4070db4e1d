//! Messages and everything that changes them: sending, editing, deleting, reacting.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::messages::{complete, message_in_room, message_select};
use super::super::search::{self, SearchEntry};
use super::super::writer::{ApplyError, Operation};
use super::{next_seq, refused, role_of};
use crate::domain::{
    Emoji, MediaId, Message, MessageBody, MessageId, RoomId, RoomKind, Timestamp, UserId,
};
use crate::store::driver::is_unique_violation;
use crate::store::rows::MessageRow;
use crate::store::rules;
use crate::store::{Change, Deleted, Inserted, NewMessage, Reacted, StoreError};

/// Stores a plain message if its author is a member (and the room is not a DM closed by a
/// block), taking the room's next seq and its place in the search's order. The insert's
/// trigger moves the room's last seq to the new message's. Its terms enter the search index
/// with the rest of the batch's (`writer.rs`).
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO messages
             (room_id, seq, changed_seq, id, author_id, body, client_id, reply_to, created_at,
              search_pos)
         SELECT r.id, r.last_seq + 1, r.last_seq + 1, ?3, ?4, ?5, ?6, ?7, ?2, {}
         FROM rooms r JOIN memberships m ON m.room_id = r.id AND m.user_id = ?4
         WHERE r.id = ?1 AND {}
         ON CONFLICT (room_id, author_id, client_id) WHERE client_id IS NOT NULL
             DO NOTHING
         RETURNING seq, search_pos",
        search::next_position("?2"),
        rules::DM_UNBLOCKED,
    )
});

pub(in crate::store::sqlite) struct InsertMessage {
    pub message: NewMessage,
    /// The body's terms for the search index (`store/search.rs`), made before the message
    /// reaches the writer.
    pub terms: String,
    /// The terms and the position they go under, once stored.
    pub entry: Option<SearchEntry>,
}

#[async_trait]
impl Operation for InsertMessage {
    type Output = Inserted;

    fn search_entry(&mut self) -> Option<SearchEntry> {
        self.entry.take()
    }

    /// Stores one message under the room's next seq; a refused message writes nothing and
    /// never burns a seq. Nothing tells a non-member anything (not a retry's stored message,
    /// not whether a replied-to message exists): membership is checked before anything is
    /// looked up.
    ///
    /// A plain message, the common case, is one statement: the insert checks membership
    /// and takes the seq, its conflict on the client id tells a retry, and a trigger
    /// (migration 0004) moves the room's last seq and the author's read marker. Every
    /// round trip to SQLite is a hand-off between threads, and these add up to the
    /// writer's whole cost. A message with a reply or files checks and looks first, since
    /// the checks below would refuse its retry (its files are attached already, its
    /// original may be gone).
    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Inserted, ApplyError> {
        let message = &self.message;
        let looks_first = message.reply_to.is_some() || !message.attachments.is_empty();
        if looks_first && let Some(existing) = members_retry(db, message).await? {
            return Ok(Inserted::Existing(existing));
        }
        let reply_to = match message.reply_to {
            Some(original) => {
                let original = live_message(db, message.room_id, original)
                    .await?
                    .ok_or(refused(StoreError::MessageNotFound))?;
                Some(rules::reply_preview(&original))
            }
            None => None,
        };
        if !message.attachments.is_empty() {
            check_attachable(db, message).await?;
        }

        // A random 63-bit id can collide with an existing one, very rarely; draw again.
        let mut id = message.id;
        let seq = loop {
            let inserted = sqlx::query_as::<_, (i64, i64)>(&INSERT)
                .bind(message.room_id.as_i64())
                .bind(message.created_at.as_millis())
                .bind(id.as_i64())
                .bind(message.author_id.as_i64())
                .bind(message.body.as_str())
                .bind(message.client_id.as_ref().map(|c| c.as_str()))
                .bind(message.reply_to.map(MessageId::as_i64))
                .fetch_optional(&mut *db)
                .await;
            match inserted {
                Ok(Some((seq, position))) => {
                    let terms = std::mem::take(&mut self.terms);
                    self.entry = Some(SearchEntry { position, terms });
                    break seq;
                }
                // No row: not a member, a DM closed by a block, or the client id is taken by
                // a retry. Which one is asked only now, membership first, so a non-member
                // learns nothing.
                Ok(None) => {
                    if let Some(existing) = members_retry(db, message).await? {
                        return Ok(Inserted::Existing(existing));
                    }
                    return Err(refused(refusal(db, message).await?));
                }
                // SQLite names no constraint; the client id conflict is handled above, so a
                // uniqueness error here is the id's, if the id is taken.
                Err(error) if is_unique_violation(&error) && id_taken(db, id).await? => {
                    id = MessageId::generate()
                }
                Err(error) => return Err(error.into()),
            }
        };
        let mentions =
            record_mentions(db, message.room_id, id, seq, message.author_id, &message.body).await?;
        for (position, media) in message.attachments.iter().enumerate() {
            sqlx::query(
                "UPDATE media SET room_id = ?1, message_id = ?2, position = ?3 WHERE id = ?4",
            )
            .bind(message.room_id.as_i64())
            .bind(id.as_i64())
            .bind(position as i64)
            .bind(media.as_str())
            .execute(&mut *db)
            .await?;
        }
        let attachments = if message.attachments.is_empty() {
            Vec::new()
        } else {
            whole_message(db, message.room_id, id).await?.attachments
        };

        let stored = Message {
            id,
            room_id: message.room_id,
            seq,
            author_id: message.author_id,
            body: message.body.clone(),
            client_id: message.client_id.clone(),
            created_at: message.created_at,
            edited_at: None,
            deleted: false,
            reply_to,
            reactions: Vec::new(),
            mentions,
            attachments,
        };
        announce_mentions(changes, &stored.mentions, &stored);
        changes.push(Change::MessageCreated(stored.clone()));
        Ok(Inserted::New(stored))
    }
}

pub(in crate::store::sqlite) struct EditMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub editor: UserId,
    pub body: MessageBody,
    /// The new body's terms for the search index.
    pub terms: String,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for EditMessage {
    type Output = Message;

    fn changes_search_entries(&self) -> bool {
        true
    }

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Message, ApplyError> {
        if role_of(db, self.room, self.editor).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        let original = live_message(db, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if original.author_id != self.editor {
            return Err(refused(StoreError::NotAuthor));
        }
        let seq = next_seq(db, self.room).await?;
        let old_terms =
            search::message_terms(self.room, original.author_id, original.body.as_str());
        search::remove(db, self.room, original.seq, &old_terms).await?;
        sqlx::query(
            "UPDATE messages SET body = ?1, edited_at = ?2, changed_seq = ?3 WHERE id = ?4",
        )
        .bind(self.body.as_str())
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .execute(&mut *db)
        .await?;
        search::reenter(db, self.room, original.seq, &self.terms).await?;
        sqlx::query("DELETE FROM mentions WHERE message_id = ?1")
            .bind(self.message.as_i64())
            .execute(&mut *db)
            .await?;
        let mentions = record_mentions(
            db,
            self.room,
            self.message,
            original.seq,
            original.author_id,
            &self.body,
        )
        .await?;
        let fresh: Vec<UserId> =
            mentions.into_iter().filter(|user| !original.mentions.contains(user)).collect();
        let edited = whole_message(db, self.room, self.message).await?;
        announce_mentions(changes, &fresh, &edited);
        changes.push(Change::MessageEdited { seq, message: edited.clone() });
        Ok(edited)
    }
}

pub(in crate::store::sqlite) struct DeleteMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub by: UserId,
    pub now: Timestamp,
    /// `by` deletes as an administrator: in a public room, member or not.
    pub as_admin: bool,
}

#[async_trait]
impl Operation for DeleteMessage {
    type Output = Deleted;

    fn changes_search_entries(&self) -> bool {
        true
    }

    fn erases(&self) -> bool {
        true
    }

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Deleted, ApplyError> {
        let role = role_of(db, self.room, self.by).await?;
        if self.as_admin {
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM rooms WHERE id = ?1")
                .bind(self.room.as_i64())
                .fetch_optional(&mut *db)
                .await?;
            if kind.as_deref() != Some(RoomKind::Public.as_str()) {
                return Err(refused(StoreError::NotMember));
            }
            if !super::admin::is_admin(db, self.by).await? {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        let original = message_in_room(db, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if !self.as_admin {
            let Some(role) = role else {
                return Err(refused(StoreError::NotMember));
            };
            let kind = room_kind(db, self.room).await?;
            if !rules::may_delete(self.by, role, kind, original.author_id) {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        if original.deleted {
            return Ok(Deleted { message: original, media: Vec::new() });
        }
        let seq = next_seq(db, self.room).await?;
        // The body, its terms in the search index, reactions and mentions leave storage;
        // SQLite's secure_delete overwrites the freed space.
        let terms = search::message_terms(self.room, original.author_id, original.body.as_str());
        search::remove(db, self.room, original.seq, &terms).await?;
        sqlx::query(
            "UPDATE messages SET body = '', deleted_at = ?1, changed_seq = ?2, search_pos = NULL
             WHERE id = ?3",
        )
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .execute(&mut *db)
        .await?;
        // Its files go too; their bytes are the caller's to remove once this commits.
        let media: Vec<String> =
            sqlx::query_scalar("DELETE FROM media WHERE message_id = ?1 RETURNING id")
                .bind(self.message.as_i64())
                .fetch_all(&mut *db)
                .await?;
        for table in ["reactions", "mentions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE message_id = ?1"))
                .bind(self.message.as_i64())
                .execute(&mut *db)
                .await?;
        }
        let tombstone = whole_message(db, self.room, self.message).await?;
        changes.push(Change::MessageDeleted { seq, message: tombstone.clone() });
        Ok(Deleted {
            message: tombstone,
            media: media.into_iter().map(MediaId::from_trusted).collect(),
        })
    }
}

pub(in crate::store::sqlite) struct React {
    pub room: RoomId,
    pub message: MessageId,
    pub user: UserId,
    pub emoji: Emoji,
    pub add: bool,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for React {
    type Output = Reacted;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Reacted, ApplyError> {
        if role_of(db, self.room, self.user).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        live_message(db, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        let (id, emoji, user) = (self.message.as_i64(), self.emoji.as_str(), self.user.as_i64());
        let changed = if self.add {
            let emoji_known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2)",
            )
            .bind(id)
            .bind(emoji)
            .fetch_one(&mut *db)
            .await?;
            // Only a new emoji can break the limit; counting is needed only then.
            if !emoji_known {
                let distinct: i64 = sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?1",
                )
                .bind(id)
                .fetch_one(&mut *db)
                .await?;
                if !rules::may_react(false, distinct) {
                    return Err(refused(StoreError::TooManyReactions));
                }
            }
            sqlx::query(
                "INSERT INTO reactions (message_id, emoji, user_id, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(emoji)
            .bind(user)
            .bind(self.now.as_millis())
            .execute(&mut *db)
            .await?
            .rows_affected()
                == 1
        } else {
            sqlx::query(
                "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
            )
            .bind(id)
            .bind(emoji)
            .bind(user)
            .execute(&mut *db)
            .await?
            .rows_affected()
                == 1
        };
        if !changed {
            return Ok(Reacted::Unchanged);
        }
        let seq = next_seq(db, self.room).await?;
        sqlx::query("UPDATE messages SET changed_seq = ?1 WHERE id = ?2")
            .bind(seq)
            .bind(id)
            .execute(&mut *db)
            .await?;
        changes.push(Change::ReactionChanged {
            room_id: self.room,
            seq,
            message_id: self.message,
            emoji: self.emoji.clone(),
            user_id: self.user,
            added: self.add,
        });
        Ok(Reacted::Changed { seq })
    }
}

/// A message of the room, whole, that is not deleted; a tombstone is refused.
async fn live_message(
    db: &mut SqliteConnection,
    room: RoomId,
    id: MessageId,
) -> Result<Option<Message>, ApplyError> {
    match message_in_room(db, room, id).await? {
        Some(message) if message.deleted => Err(refused(StoreError::MessageDeleted)),
        other => Ok(other),
    }
}

/// A message just written, whole, as it is announced.
async fn whole_message(
    db: &mut SqliteConnection,
    room: RoomId,
    id: MessageId,
) -> Result<Message, ApplyError> {
    message_in_room(db, room, id).await?.ok_or_else(|| {
        ApplyError::Batch(StoreError::Corrupt(format!("message {id} vanished while written")))
    })
}

/// The message stored earlier by the same author in the same room under this message's
/// client id, if any; refused first if the author is not a member, so that a non-member
/// learns nothing of what is stored.
async fn members_retry(
    db: &mut SqliteConnection,
    message: &NewMessage,
) -> Result<Option<Message>, ApplyError> {
    if role_of(db, message.room_id, message.author_id).await?.is_none() {
        return Err(refused(StoreError::NotMember));
    }
    let Some(client_id) = &message.client_id else { return Ok(None) };
    let existing: Option<MessageRow> = sqlx::query_as(&format!(
        "{} WHERE m.room_id = ?1 AND m.author_id = ?2 AND m.client_id = ?3",
        message_select()
    ))
    .bind(message.room_id.as_i64())
    .bind(message.author_id.as_i64())
    .bind(client_id.as_str())
    .fetch_optional(&mut *db)
    .await?;
    match existing {
        Some(row) => Ok(complete(db, vec![row]).await?.pop().map(|(_, message)| message)),
        None => Ok(None),
    }
}

/// Why a member's message was refused without a retry to return: `Blocked` if it is a DM
/// whose other member blocks the author, otherwise `NotMember` (a DM whose author blocks
/// the other member is hidden from the author, as if they were not in it).
async fn refusal(
    db: &mut SqliteConnection,
    message: &NewMessage,
) -> Result<StoreError, ApplyError> {
    let blocked: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM dm_pairs d
         JOIN blocks b ON b.blocked = ?2 AND b.blocker IN (d.user_low, d.user_high)
         WHERE d.room_id = ?1",
    )
    .bind(message.room_id.as_i64())
    .bind(message.author_id.as_i64())
    .fetch_optional(&mut *db)
    .await?;
    Ok(if blocked.is_some() { StoreError::Blocked } else { StoreError::NotMember })
}

/// Records the members a message's body names (the author aside), and returns them. An
/// edited message's old mentions must be removed first.
async fn record_mentions(
    db: &mut SqliteConnection,
    room: RoomId,
    message: MessageId,
    seq: i64,
    author: UserId,
    body: &MessageBody,
) -> Result<Vec<UserId>, ApplyError> {
    let mentions = body.mentions();
    if mentions.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT u.username, u.id FROM users u JOIN memberships m ON m.user_id = u.id AND m.room_id = ",
    );
    // Someone who blocks the author hears nothing from them, mentions included.
    query
        .push_bind(room.as_i64())
        .push(" WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = u.id AND b.blocked = ")
        .push_bind(author.as_i64())
        .push(") AND u.username IN (");
    let mut list = query.separated(", ");
    for name in rules::mention_candidates(&mentions) {
        list.push_bind(name);
    }
    query.push(")");
    let named: HashMap<String, i64> =
        query.build_query_as().fetch_all(&mut *db).await?.into_iter().collect();
    let members = rules::mentioned_members(&mentions, &named, author);
    for member in &members {
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq, message_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(member.as_i64())
        .bind(room.as_i64())
        .bind(seq)
        .bind(message.as_i64())
        .execute(&mut *db)
        .await?;
    }
    Ok(members)
}

/// Whether a message already has this id.
async fn id_taken(db: &mut SqliteConnection, id: MessageId) -> Result<bool, ApplyError> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)")
        .bind(id.as_i64())
        .fetch_one(&mut *db)
        .await?)
}

/// Refuses a message whose files are not all the author's own, unattached uploads.
async fn check_attachable(
    db: &mut SqliteConnection,
    message: &NewMessage,
) -> Result<(), ApplyError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT COUNT(*) FROM media WHERE message_id IS NULL AND uploader_id = ",
    );
    query.push_bind(message.author_id.as_i64()).push(" AND id IN (");
    let mut list = query.separated(", ");
    for media in &message.attachments {
        list.push_bind(media.as_str());
    }
    query.push(")");
    let found: i64 = query.build_query_scalar().fetch_one(&mut *db).await?;
    if found as usize == message.attachments.len() {
        Ok(())
    } else {
        Err(refused(StoreError::AttachmentNotFound))
    }
}

/// A room's kind.
async fn room_kind(db: &mut SqliteConnection, room: RoomId) -> Result<RoomKind, ApplyError> {
    let kind: String = sqlx::query_scalar("SELECT kind FROM rooms WHERE id = ?1")
        .bind(room.as_i64())
        .fetch_one(&mut *db)
        .await?;
    RoomKind::from_stored(&kind)
        .ok_or_else(|| ApplyError::Batch(StoreError::Corrupt(format!("room kind {kind:?}"))))
}

fn announce_mentions(changes: &mut Vec<Change>, mentioned: &[UserId], message: &Message) {
    for &user_id in mentioned {
        changes.push(Change::Mentioned { user_id, message: message.clone() });
    }
}
