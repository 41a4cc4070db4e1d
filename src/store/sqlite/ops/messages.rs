//! Messages and everything that changes them: sending, editing, deleting, reacting.

use std::collections::HashMap;
use std::sync::LazyLock;

use rusqlite::{Connection, params};

use super::super::search::{self, SearchEntry};
use super::super::writer::{ApplyError, Operation, is_unique_violation};
use super::reads::{message_by_client_id, message_in_room};
use super::{column, execute, next_seq, one, optional, refused, role_of};
use crate::domain::{
    Emoji, MediaId, Message, MessageBody, MessageId, RoomId, RoomKind, Timestamp, UserId,
};
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
    /// statement is a round of SQLite's work, and these add up to the writer's whole
    /// cost. A message with a reply or files checks and looks first, since
    /// the checks below would refuse its retry (its files are attached already, its
    /// original may be gone).
    fn apply(
        &mut self,
        db: &Connection,
        changes: &mut Vec<Change>,
    ) -> Result<Inserted, ApplyError> {
        let message = &self.message;
        let looks_first = message.reply_to.is_some() || !message.attachments.is_empty();
        if looks_first && let Some(existing) = members_retry(db, message)? {
            return Ok(Inserted::Existing(existing));
        }
        let reply_to = match message.reply_to {
            Some(original) => {
                let original = live_message(db, message.room_id, original)?
                    .ok_or(refused(StoreError::MessageNotFound))?;
                Some(rules::reply_preview(&original))
            }
            None => None,
        };
        if !message.attachments.is_empty() {
            check_attachable(db, message)?;
        }

        // A random 63-bit id can collide with an existing one, very rarely; draw again.
        let mut id = message.id;
        let seq = loop {
            let inserted = db.prepare_cached(&INSERT)?.query_row(
                params![
                    message.room_id.as_i64(),
                    message.created_at.as_millis(),
                    id.as_i64(),
                    message.author_id.as_i64(),
                    message.body.as_str(),
                    message.client_id.as_ref().map(|c| c.as_str()),
                    message.reply_to.map(MessageId::as_i64),
                ],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            );
            match inserted {
                Ok((seq, position)) => {
                    let terms = std::mem::take(&mut self.terms);
                    self.entry = Some(SearchEntry { position, terms });
                    break seq;
                }
                // No row: not a member, a DM closed by a block, or the client id is taken by
                // a retry. Which one is asked only now, membership first, so a non-member
                // learns nothing.
                Err(rusqlite::Error::QueryReturnedNoRows) => {
                    if let Some(existing) = members_retry(db, message)? {
                        return Ok(Inserted::Existing(existing));
                    }
                    return Err(refused(refusal(db, message)?));
                }
                // SQLite names no constraint; the client id conflict is handled above, so a
                // uniqueness error here is the id's, if the id is taken.
                Err(error) if is_unique_violation(&error) && id_taken(db, id)? => {
                    id = MessageId::generate()
                }
                Err(error) => return Err(error.into()),
            }
        };
        let mentions =
            record_mentions(db, message.room_id, id, seq, message.author_id, &message.body)?;
        for (position, media) in message.attachments.iter().enumerate() {
            execute(
                db,
                "UPDATE media SET room_id = ?1, message_id = ?2, position = ?3 WHERE id = ?4",
                params![message.room_id.as_i64(), id.as_i64(), position as i64, media.as_str()],
            )?;
        }
        let attachments = if message.attachments.is_empty() {
            Vec::new()
        } else {
            whole_message(db, message.room_id, id)?.attachments
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

impl Operation for EditMessage {
    type Output = Message;

    fn changes_search_entries(&self) -> bool {
        true
    }

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<Message, ApplyError> {
        if role_of(db, self.room, self.editor)?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        let original = live_message(db, self.room, self.message)?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if original.author_id != self.editor {
            return Err(refused(StoreError::NotAuthor));
        }
        let seq = next_seq(db, self.room)?;
        let old_terms =
            search::message_terms(self.room, original.author_id, original.body.as_str());
        search::remove(db, self.room, original.seq, &old_terms)?;
        execute(
            db,
            "UPDATE messages SET body = ?1, edited_at = ?2, changed_seq = ?3 WHERE id = ?4",
            params![self.body.as_str(), self.now.as_millis(), seq, self.message.as_i64()],
        )?;
        search::reenter(db, self.room, original.seq, &self.terms)?;
        execute(db, "DELETE FROM mentions WHERE message_id = ?1", [self.message.as_i64()])?;
        let mentions = record_mentions(
            db,
            self.room,
            self.message,
            original.seq,
            original.author_id,
            &self.body,
        )?;
        let fresh: Vec<UserId> =
            mentions.into_iter().filter(|user| !original.mentions.contains(user)).collect();
        let edited = whole_message(db, self.room, self.message)?;
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

impl Operation for DeleteMessage {
    type Output = Deleted;

    fn changes_search_entries(&self) -> bool {
        true
    }

    fn erases(&self) -> bool {
        true
    }

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<Deleted, ApplyError> {
        let role = role_of(db, self.room, self.by)?;
        if self.as_admin {
            let kind: Option<String> =
                optional(db, "SELECT kind FROM rooms WHERE id = ?1", [self.room.as_i64()])?;
            if kind.as_deref() != Some(RoomKind::Public.as_str()) {
                return Err(refused(StoreError::NotMember));
            }
            if !super::admin::is_admin(db, self.by)? {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        let original = message_in_room(db, self.room, self.message)?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if !self.as_admin {
            let Some(role) = role else {
                return Err(refused(StoreError::NotMember));
            };
            let kind = room_kind(db, self.room)?;
            if !rules::may_delete(self.by, role, kind, original.author_id) {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        if original.deleted {
            return Ok(Deleted { message: original, media: Vec::new() });
        }
        let seq = next_seq(db, self.room)?;
        // The body, its terms in the search index, reactions and mentions leave storage;
        // SQLite's secure_delete overwrites the freed space.
        let terms = search::message_terms(self.room, original.author_id, original.body.as_str());
        search::remove(db, self.room, original.seq, &terms)?;
        let id = self.message.as_i64();
        execute(
            db,
            "UPDATE messages SET body = '', deleted_at = ?1, changed_seq = ?2, search_pos = NULL
             WHERE id = ?3",
            params![self.now.as_millis(), seq, id],
        )?;
        // Its files go too; their bytes are the caller's to remove once this commits.
        let media: Vec<String> =
            column(db, "DELETE FROM media WHERE message_id = ?1 RETURNING id", [id])?;
        execute(db, "DELETE FROM reactions WHERE message_id = ?1", [id])?;
        execute(db, "DELETE FROM mentions WHERE message_id = ?1", [id])?;
        let tombstone = whole_message(db, self.room, self.message)?;
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

impl Operation for React {
    type Output = Reacted;

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<Reacted, ApplyError> {
        if role_of(db, self.room, self.user)?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        live_message(db, self.room, self.message)?.ok_or(refused(StoreError::MessageNotFound))?;
        let (id, emoji, user) = (self.message.as_i64(), self.emoji.as_str(), self.user.as_i64());
        let changed = if self.add {
            let emoji_known: bool = one(
                db,
                "SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2)",
                params![id, emoji],
            )?;
            // Only a new emoji can break the limit; counting is needed only then.
            if !emoji_known {
                let distinct: i64 = one(
                    db,
                    "SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?1",
                    [id],
                )?;
                if !rules::may_react(false, distinct) {
                    return Err(refused(StoreError::TooManyReactions));
                }
            }
            execute(
                db,
                "INSERT INTO reactions (message_id, emoji, user_id, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![id, emoji, user, self.now.as_millis()],
            )? == 1
        } else {
            execute(
                db,
                "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
                params![id, emoji, user],
            )? == 1
        };
        if !changed {
            return Ok(Reacted::Unchanged);
        }
        let seq = next_seq(db, self.room)?;
        execute(db, "UPDATE messages SET changed_seq = ?1 WHERE id = ?2", [seq, id])?;
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
fn live_message(
    db: &Connection,
    room: RoomId,
    id: MessageId,
) -> Result<Option<Message>, ApplyError> {
    match message_in_room(db, room, id)? {
        Some(message) if message.deleted => Err(refused(StoreError::MessageDeleted)),
        other => Ok(other),
    }
}

/// A message just written, whole, as it is announced.
fn whole_message(db: &Connection, room: RoomId, id: MessageId) -> Result<Message, ApplyError> {
    message_in_room(db, room, id)?.ok_or_else(|| {
        ApplyError::Batch(StoreError::Corrupt(format!("message {id} vanished while written")))
    })
}

/// The message stored earlier by the same author in the same room under this message's
/// client id, if any; refused first if the author is not a member, so that a non-member
/// learns nothing of what is stored.
fn members_retry(db: &Connection, message: &NewMessage) -> Result<Option<Message>, ApplyError> {
    if role_of(db, message.room_id, message.author_id)?.is_none() {
        return Err(refused(StoreError::NotMember));
    }
    let Some(client_id) = &message.client_id else { return Ok(None) };
    message_by_client_id(db, message.room_id, message.author_id, client_id.as_str())
}

/// Why a member's message was refused without a retry to return: `Blocked` if it is a DM
/// whose other member blocks the author, otherwise `NotMember` (a DM whose author blocks
/// the other member is hidden from the author, as if they were not in it).
fn refusal(db: &Connection, message: &NewMessage) -> Result<StoreError, ApplyError> {
    let blocked: Option<i64> = optional(
        db,
        "SELECT 1 FROM dm_pairs d
         JOIN blocks b ON b.blocked = ?2 AND b.blocker IN (d.user_low, d.user_high)
         WHERE d.room_id = ?1",
        [message.room_id.as_i64(), message.author_id.as_i64()],
    )?;
    Ok(if blocked.is_some() { StoreError::Blocked } else { StoreError::NotMember })
}

/// Records the members a message's body names (the author aside), and returns them. An
/// edited message's old mentions must be removed first.
fn record_mentions(
    db: &Connection,
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
    let candidates = rules::mention_candidates(&mentions);
    // Someone who blocks the author hears nothing from them, mentions included.
    let mut statement = db.prepare_cached(
        "SELECT u.username, u.id FROM users u
         JOIN memberships m ON m.user_id = u.id AND m.room_id = ?1
         WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = u.id AND b.blocked = ?2)
           AND u.username IN (SELECT value FROM json_each(?3))",
    )?;
    let named: HashMap<String, i64> = statement
        .query_map(params![room.as_i64(), author.as_i64(), json_list(&candidates)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let members = rules::mentioned_members(&mentions, &named, author);
    for member in &members {
        execute(
            db,
            "INSERT INTO mentions (user_id, room_id, seq, message_id) VALUES (?1, ?2, ?3, ?4)",
            [member.as_i64(), room.as_i64(), seq, message.as_i64()],
        )?;
    }
    Ok(members)
}

/// Whether a message already has this id.
fn id_taken(db: &Connection, id: MessageId) -> Result<bool, ApplyError> {
    one(db, "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)", [id.as_i64()])
}

/// Refuses a message whose files are not all the author's own, unattached uploads.
fn check_attachable(db: &Connection, message: &NewMessage) -> Result<(), ApplyError> {
    let ids: Vec<&str> = message.attachments.iter().map(|media| media.as_str()).collect();
    let found: i64 = one(
        db,
        "SELECT COUNT(*) FROM media WHERE message_id IS NULL AND uploader_id = ?1
           AND id IN (SELECT value FROM json_each(?2))",
        params![message.author_id.as_i64(), json_list(&ids)],
    )?;
    if found as usize == message.attachments.len() {
        Ok(())
    } else {
        Err(refused(StoreError::AttachmentNotFound))
    }
}

/// A list of names as a JSON array, for `json_each`: one statement, prepared once, for
/// lists of any length.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("a list of strings is JSON")
}

/// A room's kind.
fn room_kind(db: &Connection, room: RoomId) -> Result<RoomKind, ApplyError> {
    let kind: String = one(db, "SELECT kind FROM rooms WHERE id = ?1", [room.as_i64()])?;
    RoomKind::from_stored(&kind)
        .ok_or_else(|| ApplyError::Batch(StoreError::Corrupt(format!("room kind {kind:?}"))))
}

fn announce_mentions(changes: &mut Vec<Change>, mentioned: &[UserId], message: &Message) {
    for &user_id in mentioned {
        changes.push(Change::Mentioned { user_id, message: message.clone() });
    }
}
