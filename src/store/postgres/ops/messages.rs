//! Messages and everything that changes them: sending, editing, deleting, reacting. Each
//! locks its room's row before it checks anything (taking a seq locks it), so the room's
//! membership, its messages' state and its reactions cannot change under the checks.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::messages::{complete, message_in_room, message_select};
use super::super::search;
use super::super::writes::{Done, Failed, Tx, Write};
use super::{lock_room, refused, role_of};
use crate::domain::{
    Emoji, MediaId, Message, MessageBody, MessageId, RoomId, RoomKind, RoomRole, Timestamp, UserId,
};
use crate::store::driver::violated_unique;
use crate::store::rows::MessageRow;
use crate::store::rules;
use crate::store::{Change, Deleted, Inserted, NewMessage, Reacted, StoreError};

/// Stores a plain message if its author is a member (and the room is not a DM closed by a
/// block), under the seq taken just before, with its search terms and its position in the
/// search's order (by when it was sent, `postgres/search.rs`).
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO messages
             (room_id, seq, changed_seq, id, author_id, body, client_id, reply_to, created_at,
              search_terms, search_ord)
         SELECT $1, $2, $2, $3, $4, $5, $6, $7, $8, $9, {}
         FROM memberships m WHERE m.room_id = $1 AND m.user_id = $4 AND {}
         ON CONFLICT (room_id, author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
         RETURNING seq",
        search::position("$8::bigint"),
        rules::DM_UNBLOCKED
    )
});

pub(in crate::store::postgres) struct InsertMessage {
    pub message: NewMessage,
    /// The body's, the room's and the author's terms for the search index
    /// (`postgres/search.rs`).
    pub terms: Vec<i64>,
}

#[async_trait]
impl Write for InsertMessage {
    type Output = Inserted;

    fn gate(&self) -> Gate {
        Gate::Room(self.message.room_id)
    }

    /// Takes the room's next seq (locking the room), then inserts the message if the
    /// author is a member, in one statement that a retry's client id conflict turns into
    /// nothing. A plain message costs that: two statements and the commit. A refused
    /// message, or a retry, rolls back and takes no seq. Membership is checked before
    /// anything is looked up, so a non-member learns nothing (not a retry's stored
    /// message, not whether a replied-to message exists).
    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Inserted>, Failed> {
        let message = &self.message;
        let Some(seq) = tx.next_seq(message.room_id).await? else {
            return Err(refused(StoreError::NotMember));
        };
        // A message with a reply or files checks and looks first, since the checks below
        // would refuse its retry (its files are attached already, its original may be gone).
        let looks_first = message.reply_to.is_some() || !message.attachments.is_empty();
        if looks_first && let Some(existing) = members_retry(tx, message).await? {
            return Ok(Done::Rollback(Inserted::Existing(existing)));
        }
        let reply_to = match message.reply_to {
            Some(original) => {
                let original = live_message(tx, message.room_id, original)
                    .await?
                    .ok_or(refused(StoreError::MessageNotFound))?;
                Some(rules::reply_preview(&original))
            }
            None => None,
        };

        let inserted = sqlx::query_scalar::<_, i64>(&INSERT)
            .bind(message.room_id.as_i64())
            .bind(seq)
            .bind(message.id.as_i64())
            .bind(message.author_id.as_i64())
            .bind(message.body.as_str())
            .bind(message.client_id.as_ref().map(|c| c.as_str()))
            .bind(message.reply_to.map(MessageId::as_i64))
            .bind(message.created_at.as_millis())
            .bind(&self.terms)
            .fetch_optional(tx.db())
            .await;
        match inserted {
            Ok(Some(_)) => {}
            // No row: not a member, a DM closed by a block, or the client id is taken by a
            // retry. Which one is asked only now, membership first.
            Ok(None) => {
                return match members_retry(tx, message).await? {
                    Some(existing) => Ok(Done::Rollback(Inserted::Existing(existing))),
                    None => Err(refused(refusal(tx, message).await?)),
                };
            }
            // A random 63-bit id can collide with an existing one, very rarely; draw again.
            Err(error) if violated_unique(&error) == Some("messages_id") => {
                self.message.id = MessageId::generate();
                return Err(Failed::Retry);
            }
            Err(error) => return Err(error.into()),
        }
        let id = message.id;
        let mentions =
            record_mentions(tx, message.room_id, id, seq, message.author_id, &message.body).await?;
        let attachments = if message.attachments.is_empty() {
            Vec::new()
        } else {
            attach(tx, message).await?;
            whole_message(tx, message.room_id, id).await?.attachments
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
        Ok(Done::Commit(Inserted::New(stored)))
    }
}

pub(in crate::store::postgres) struct EditMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub editor: UserId,
    pub body: MessageBody,
    /// The new body's terms for the search index, with the room's and the author's.
    pub terms: Vec<i64>,
    pub now: Timestamp,
}

#[async_trait]
impl Write for EditMessage {
    type Output = Message;

    fn gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Message>, Failed> {
        lock_room(tx.db(), self.room).await?;
        if role_of(tx.db(), self.room, self.editor).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        let original = live_message(tx, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if original.author_id != self.editor {
            return Err(refused(StoreError::NotAuthor));
        }
        let seq = take_seq(tx, self.room).await?;
        sqlx::query(
            "UPDATE messages SET body = $1, edited_at = $2, changed_seq = $3, search_terms = $5
             WHERE id = $4",
        )
        .bind(self.body.as_str())
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .bind(&self.terms)
        .execute(tx.db())
        .await?;
        sqlx::query("DELETE FROM mentions WHERE message_id = $1")
            .bind(self.message.as_i64())
            .execute(tx.db())
            .await?;
        let mentions = record_mentions(
            tx,
            self.room,
            self.message,
            original.seq,
            original.author_id,
            &self.body,
        )
        .await?;
        let fresh: Vec<UserId> =
            mentions.into_iter().filter(|user| !original.mentions.contains(user)).collect();
        let edited = whole_message(tx, self.room, self.message).await?;
        announce_mentions(changes, &fresh, &edited);
        changes.push(Change::MessageEdited { seq, message: edited.clone() });
        Ok(Done::Commit(edited))
    }
}

pub(in crate::store::postgres) struct DeleteMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub by: UserId,
    pub now: Timestamp,
    /// `by` deletes as an administrator: in a public room, member or not.
    pub as_admin: bool,
    /// The transaction that removed the body (its full id), once it did.
    pub erased_by: Option<i64>,
}

#[async_trait]
impl Write for DeleteMessage {
    type Output = Deleted;

    fn gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    fn erased_by(&self) -> Option<i64> {
        self.erased_by
    }

    /// Under the room's lock, so no reaction, mention or edit can slip in beside the
    /// deletion: what it removes stays removed.
    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Deleted>, Failed> {
        let kind = lock_room(tx.db(), self.room).await?;
        let role = role_of(tx.db(), self.room, self.by).await?;
        if self.as_admin {
            if kind != Some(RoomKind::Public) {
                return Err(refused(StoreError::NotMember));
            }
            if !super::admin::is_admin(tx.db(), self.by).await? {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        let Some(role) = role.or(self.as_admin.then_some(RoomRole::Member)) else {
            return Err(refused(StoreError::NotMember));
        };
        let original = message_in_room(tx.db(), self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        let kind = kind.ok_or(refused(StoreError::NotMember))?;
        if !self.as_admin && !rules::may_delete(self.by, role, kind, original.author_id) {
            return Err(refused(StoreError::NotAuthor));
        }
        if original.deleted {
            return Ok(Done::Rollback(Deleted { message: original, media: Vec::new() }));
        }
        let seq = take_seq(tx, self.room).await?;
        let erased_by: i64 = sqlx::query_scalar(
            "UPDATE messages SET body = '', deleted_at = $1, changed_seq = $2, search_terms = NULL
             WHERE id = $3
             RETURNING pg_current_xact_id()::text::bigint",
        )
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .fetch_one(tx.db())
        .await?;
        self.erased_by = Some(erased_by);
        // Its files go too; their bytes are the caller's to remove once this commits.
        let media: Vec<String> =
            sqlx::query_scalar("DELETE FROM media WHERE message_id = $1 RETURNING id")
                .bind(self.message.as_i64())
                .fetch_all(tx.db())
                .await?;
        for table in ["reactions", "mentions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE message_id = $1"))
                .bind(self.message.as_i64())
                .execute(tx.db())
                .await?;
        }
        let tombstone = whole_message(tx, self.room, self.message).await?;
        changes.push(Change::MessageDeleted { seq, message: tombstone.clone() });
        Ok(Done::Commit(Deleted {
            message: tombstone,
            media: media.into_iter().map(MediaId::from_trusted).collect(),
        }))
    }
}

pub(in crate::store::postgres) struct React {
    pub room: RoomId,
    pub message: MessageId,
    pub user: UserId,
    pub emoji: Emoji,
    pub add: bool,
    pub now: Timestamp,
}

#[async_trait]
impl Write for React {
    type Output = Reacted;

    fn gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    /// Under the room's lock, so that two new emoji at once cannot both pass the limit.
    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Reacted>, Failed> {
        lock_room(tx.db(), self.room).await?;
        if role_of(tx.db(), self.room, self.user).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        live_message(tx, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        let (id, emoji, user) = (self.message.as_i64(), self.emoji.as_str(), self.user.as_i64());
        let changed = if self.add {
            let (known, distinct): (bool, i64) = sqlx::query_as(
                "SELECT COALESCE(bool_or(emoji = $2), FALSE), COUNT(DISTINCT emoji)
                 FROM reactions WHERE message_id = $1",
            )
            .bind(id)
            .bind(emoji)
            .fetch_one(tx.db())
            .await?;
            if !rules::may_react(known, distinct) {
                return Err(refused(StoreError::TooManyReactions));
            }
            sqlx::query(
                "INSERT INTO reactions (message_id, emoji, user_id, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(emoji)
            .bind(user)
            .bind(self.now.as_millis())
            .execute(tx.db())
            .await?
            .rows_affected()
                == 1
        } else {
            sqlx::query(
                "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
            )
            .bind(id)
            .bind(emoji)
            .bind(user)
            .execute(tx.db())
            .await?
            .rows_affected()
                == 1
        };
        if !changed {
            return Ok(Done::Rollback(Reacted::Unchanged));
        }
        let seq = take_seq(tx, self.room).await?;
        sqlx::query("UPDATE messages SET changed_seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(id)
            .execute(tx.db())
            .await?;
        changes.push(Change::ReactionChanged {
            room_id: self.room,
            seq,
            message_id: self.message,
            emoji: self.emoji.clone(),
            user_id: self.user,
            added: self.add,
        });
        Ok(Done::Commit(Reacted::Changed { seq }))
    }
}

/// The room's next seq, for a room this transaction has locked already.
async fn take_seq(tx: &mut Tx, room: RoomId) -> Result<i64, Failed> {
    tx.next_seq(room).await?.ok_or(refused(StoreError::NotMember))
}

/// A message of the room, whole, that is not deleted; a tombstone is refused.
async fn live_message(tx: &mut Tx, room: RoomId, id: MessageId) -> Result<Option<Message>, Failed> {
    match message_in_room(tx.db(), room, id).await? {
        Some(message) if message.deleted => Err(refused(StoreError::MessageDeleted)),
        other => Ok(other),
    }
}

/// A message just written, whole, as it is announced.
async fn whole_message(tx: &mut Tx, room: RoomId, id: MessageId) -> Result<Message, Failed> {
    message_in_room(tx.db(), room, id)
        .await?
        .ok_or_else(|| refused(StoreError::Corrupt(format!("message {id} vanished while written"))))
}

/// Why a member's message was refused without a retry to return: `Blocked` if it is a DM
/// whose other member blocks the author, otherwise `NotMember` (a DM whose author blocks
/// the other member is hidden from the author, as if they were not in it).
async fn refusal(tx: &mut Tx, message: &NewMessage) -> Result<StoreError, Failed> {
    let blocked: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM dm_pairs d
         JOIN blocks b ON b.blocked = $2 AND b.blocker IN (d.user_low, d.user_high)
         WHERE d.room_id = $1",
    )
    .bind(message.room_id.as_i64())
    .bind(message.author_id.as_i64())
    .fetch_optional(tx.db())
    .await?;
    Ok(if blocked.is_some() { StoreError::Blocked } else { StoreError::NotMember })
}

/// The message stored earlier by the same author in the same room under this message's
/// client id, if any; refused first if the author is not a member, so that a non-member
/// learns nothing of what is stored.
async fn members_retry(tx: &mut Tx, message: &NewMessage) -> Result<Option<Message>, Failed> {
    if role_of(tx.db(), message.room_id, message.author_id).await?.is_none() {
        return Err(refused(StoreError::NotMember));
    }
    let Some(client_id) = &message.client_id else { return Ok(None) };
    let existing: Option<MessageRow> = sqlx::query_as(&format!(
        "{} WHERE m.room_id = $1 AND m.author_id = $2 AND m.client_id = $3",
        message_select()
    ))
    .bind(message.room_id.as_i64())
    .bind(message.author_id.as_i64())
    .bind(client_id.as_str())
    .fetch_optional(tx.db())
    .await?;
    match existing {
        Some(row) => Ok(complete(tx.db(), vec![row]).await?.pop().map(|(_, message)| message)),
        None => Ok(None),
    }
}

/// Records the members a message's body names (the author aside), and returns them. An
/// edited message's old mentions must be removed first.
async fn record_mentions(
    tx: &mut Tx,
    room: RoomId,
    message: MessageId,
    seq: i64,
    author: UserId,
    body: &MessageBody,
) -> Result<Vec<UserId>, Failed> {
    let mentions = body.mentions();
    if mentions.is_empty() {
        return Ok(Vec::new());
    }
    // Someone who blocks the author hears nothing from them, mentions included.
    let named: Vec<(String, i64)> = sqlx::query_as(
        "SELECT u.username, u.id FROM users u
         JOIN memberships m ON m.user_id = u.id AND m.room_id = $1
         WHERE u.username = ANY($2)
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = u.id AND b.blocked = $3)",
    )
    .bind(room.as_i64())
    .bind(rules::mention_candidates(&mentions))
    .bind(author.as_i64())
    .fetch_all(tx.db())
    .await?;
    let named: HashMap<String, i64> = named.into_iter().collect();
    let members = rules::mentioned_members(&mentions, &named, author);
    if !members.is_empty() {
        let ids: Vec<i64> = members.iter().map(|user| user.as_i64()).collect();
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq, message_id)
             SELECT user_id, $2, $3, $4 FROM unnest($1::bigint[]) AS user_id",
        )
        .bind(&ids)
        .bind(room.as_i64())
        .bind(seq)
        .bind(message.as_i64())
        .execute(tx.db())
        .await?;
    }
    Ok(members)
}

/// Attaches the message's files, in order: only the author's own uploads that no message
/// carries yet. Refused if any is not (the whole message is then rolled back). The update
/// checks and takes each file in one step, so two messages cannot both take the same one.
async fn attach(tx: &mut Tx, message: &NewMessage) -> Result<(), Failed> {
    let ids: Vec<&str> = message.attachments.iter().map(MediaId::as_str).collect();
    let attached = sqlx::query(
        "UPDATE media SET room_id = $1, message_id = $2, position = f.position - 1
         FROM unnest($3::text[]) WITH ORDINALITY AS f(id, position)
         WHERE media.id = f.id AND media.message_id IS NULL AND media.uploader_id = $4",
    )
    .bind(message.room_id.as_i64())
    .bind(message.id.as_i64())
    .bind(&ids)
    .bind(message.author_id.as_i64())
    .execute(tx.db())
    .await?;
    if attached.rows_affected() as usize == ids.len() {
        Ok(())
    } else {
        Err(refused(StoreError::AttachmentNotFound))
    }
}

fn announce_mentions(changes: &mut Vec<Change>, mentioned: &[UserId], message: &Message) {
    for &user_id in mentioned {
        changes.push(Change::Mentioned { user_id, message: message.clone() });
    }
}
