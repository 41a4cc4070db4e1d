//! Every write the store makes, one [`Operation`] each, applied by the writer task inside
//! a batch's transaction.
//!
//! Each operation checks what it must (uniqueness, membership, ownership) inside the
//! transaction, so that a check and the write it guards cannot be separated by another
//! request; and it refuses before writing anything, so a refusal never leaves half a change.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::messages::{MESSAGE_SELECT, MessageRow, complete, message_in_room};
use super::rows::parse_role;
use super::writer::{ApplyError, Operation, is_unique_violation_of};
use crate::domain::{
    Emoji, Message, MessageBody, MessageId, Receipt, RoomId, RoomRole, Timestamp, User, UserId,
};
use crate::store::{
    AddedBy, Change, Inserted, MAX_REACTIONS_PER_MESSAGE, NewMessage, NewRoom, NewSession, NewUser,
    Reacted, StoreError, Unread,
};

pub(super) struct CreateUser(pub NewUser);

#[async_trait]
impl Operation for CreateUser {
    type Output = User;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<User, ApplyError> {
        let user = &self.0;
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, display_name, display_key, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(user.id.as_i64())
        .bind(user.username.as_str())
        .bind(user.display_name.as_str())
        .bind(user.display_name.as_str().to_lowercase())
        .bind(&user.password_hash)
        .bind(user.created_at.as_millis())
        .execute(&mut *db)
        .await;
        match inserted {
            Ok(_) => Ok(User {
                id: user.id,
                username: user.username.clone(),
                display_name: user.display_name.clone(),
                created_at: user.created_at,
            }),
            Err(e) if is_unique_violation_of(&e, "users.username") => {
                Err(ApplyError::Refused(StoreError::Conflict("username")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) struct CreateSession(pub NewSession);

#[async_trait]
impl Operation for CreateSession {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        let session = &self.0;
        sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&session.token_hash[..])
        .bind(session.id.as_i64())
        .bind(session.user_id.as_i64())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}

pub(super) struct DeleteSession(pub [u8; 32]);

#[async_trait]
impl Operation for DeleteSession {
    type Output = bool;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<bool, ApplyError> {
        let deleted: Option<(i64, i64)> =
            sqlx::query_as("DELETE FROM sessions WHERE token_hash = ?1 RETURNING id, user_id")
                .bind(&self.0[..])
                .fetch_optional(&mut *db)
                .await?;
        if let Some((session, user)) = deleted {
            changes.push(Change::SessionEnded {
                session_id: crate::domain::SessionId::from_i64(session),
                user_id: UserId::from_i64(user),
            });
        }
        Ok(deleted.is_some())
    }
}

pub(super) struct DeleteExpiredSessions(pub Timestamp);

#[async_trait]
impl Operation for DeleteExpiredSessions {
    type Output = u64;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<u64, ApplyError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(self.0.as_millis())
            .execute(&mut *db)
            .await?;
        Ok(done.rows_affected())
    }
}

pub(super) struct CreateRoom {
    pub room: NewRoom,
    pub members: Vec<UserId>,
}

#[async_trait]
impl Operation for CreateRoom {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        let room = &self.room;
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(room.id.as_i64())
        .bind(room.kind.as_str())
        .bind(room.name.as_str())
        .bind(room.name.as_str().to_lowercase())
        .bind(room.created_by.as_i64())
        .bind(room.created_at.as_millis())
        .execute(&mut *db)
        .await;
        match inserted {
            Err(e) if is_unique_violation_of(&e, "rooms.name_key") => {
                return Err(ApplyError::Refused(StoreError::Conflict("room_name")));
            }
            other => other?,
        };
        let creator = std::iter::once((room.created_by, RoomRole::Owner));
        let others = self.members.iter().map(|&m| (m, RoomRole::Member));
        for (user, role) in creator.chain(others) {
            if insert_membership(db, room.id, user, role, room.created_at).await? {
                changes.push(Change::MemberAdded { room_id: room.id, user_id: user });
            }
        }
        Ok(())
    }
}

pub(super) struct OpenDm {
    pub a: UserId,
    pub b: UserId,
    pub new_id: RoomId,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for OpenDm {
    type Output = (RoomId, bool);

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<(RoomId, bool), ApplyError> {
        let (low, high) = if self.a <= self.b { (self.a, self.b) } else { (self.b, self.a) };
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT room_id FROM dm_pairs WHERE user_low = ?1 AND user_high = ?2",
        )
        .bind(low.as_i64())
        .bind(high.as_i64())
        .fetch_optional(&mut *db)
        .await?;
        if let Some(room) = existing {
            return Ok((RoomId::from_i64(room), false));
        }
        let room = self.new_id;
        sqlx::query(
            "INSERT INTO rooms (id, kind, created_by, created_at) VALUES (?1, 'dm', ?2, ?3)",
        )
        .bind(room.as_i64())
        .bind(self.a.as_i64())
        .bind(self.now.as_millis())
        .execute(&mut *db)
        .await?;
        sqlx::query("INSERT INTO dm_pairs (user_low, user_high, room_id) VALUES (?1, ?2, ?3)")
            .bind(low.as_i64())
            .bind(high.as_i64())
            .bind(room.as_i64())
            .execute(&mut *db)
            .await?;
        for user in [low, high] {
            if insert_membership(db, room, user, RoomRole::Member, self.now).await? {
                changes.push(Change::MemberAdded { room_id: room, user_id: user });
            }
        }
        Ok((room, true))
    }
}

pub(super) struct AddMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: AddedBy,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for AddMember {
    type Output = bool;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<bool, ApplyError> {
        if let AddedBy::Member(by) = self.by {
            if role_of(db, self.room, by).await?.is_none() {
                return Err(ApplyError::Refused(StoreError::NotMember));
            }
        }
        if !insert_membership(db, self.room, self.user, RoomRole::Member, self.now).await? {
            return Ok(false);
        }
        changes.push(Change::MemberAdded { room_id: self.room, user_id: self.user });
        Ok(true)
    }
}

pub(super) struct RemoveMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: UserId,
}

#[async_trait]
impl Operation for RemoveMember {
    type Output = bool;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<bool, ApplyError> {
        match role_of(db, self.room, self.by).await? {
            None => return Err(ApplyError::Refused(StoreError::NotMember)),
            Some(RoomRole::Member) if self.by != self.user => {
                return Err(ApplyError::Refused(StoreError::NotOwner));
            }
            Some(_) => {}
        }
        let removed: Option<String> = sqlx::query_scalar(
            "DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2 RETURNING role",
        )
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .fetch_optional(&mut *db)
        .await?;
        let Some(role) = removed else {
            return Ok(false);
        };
        if parse_role(&role).map_err(ApplyError::Batch)? == RoomRole::Owner {
            sqlx::query(
                "UPDATE memberships SET role = 'owner'
                 WHERE room_id = ?1 AND user_id = (
                     SELECT user_id FROM memberships WHERE room_id = ?1
                     ORDER BY joined_at, user_id LIMIT 1)",
            )
            .bind(self.room.as_i64())
            .execute(&mut *db)
            .await?;
        }
        changes.push(Change::MemberRemoved { room_id: self.room, user_id: self.user });
        Ok(true)
    }
}

pub(super) struct InsertMessage(pub NewMessage);

#[async_trait]
impl Operation for InsertMessage {
    type Output = Inserted;

    /// Stores one message under the room's next seq. The INSERT is one statement that reads
    /// the seq, checks membership and writes the row, so a refused message leaves nothing
    /// behind and never burns a seq.
    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Inserted, ApplyError> {
        let message = &self.0;
        if let Some(client_id) = &message.client_id {
            let existing: Option<MessageRow> = sqlx::query_as(&format!(
                "{MESSAGE_SELECT} WHERE m.room_id = ?1 AND m.author_id = ?2 AND m.client_id = ?3"
            ))
            .bind(message.room_id.as_i64())
            .bind(message.author_id.as_i64())
            .bind(client_id.as_str())
            .fetch_optional(&mut *db)
            .await?;
            if let Some(row) = existing {
                let mut whole = complete(db, vec![row]).await?;
                if let Some((_, existing)) = whole.pop() {
                    return Ok(Inserted::Existing(existing));
                }
            }
        }
        if let Some(original) = message.reply_to {
            match live_message(db, message.room_id, original).await? {
                Some(_) => {}
                None => return Err(refused(StoreError::MessageNotFound)),
            }
        }

        // A random 63-bit id can collide with an existing one, very rarely; draw again.
        let mut id = message.id;
        let seq = loop {
            let inserted = sqlx::query_scalar::<_, i64>(
                "INSERT INTO messages
                     (room_id, seq, changed_seq, id, author_id, body, client_id, reply_to, created_at)
                 SELECT r.id, r.last_seq + 1, r.last_seq + 1, ?1, ?2, ?3, ?4, ?5, ?6 FROM rooms r
                 WHERE r.id = ?7
                   AND EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = ?2)
                 RETURNING seq",
            )
            .bind(id.as_i64())
            .bind(message.author_id.as_i64())
            .bind(message.body.as_str())
            .bind(message.client_id.as_ref().map(|c| c.as_str()))
            .bind(message.reply_to.map(MessageId::as_i64))
            .bind(message.created_at.as_millis())
            .bind(message.room_id.as_i64())
            .fetch_optional(&mut *db)
            .await;
            match inserted {
                Ok(Some(seq)) => break seq,
                Ok(None) => return Err(refused(StoreError::NotMember)),
                Err(error) if is_unique_violation_of(&error, "messages.id") => {
                    id = MessageId::generate()
                }
                Err(error) => return Err(error.into()),
            }
        };

        sqlx::query("UPDATE rooms SET last_seq = ?1 WHERE id = ?2")
            .bind(seq)
            .bind(message.room_id.as_i64())
            .execute(&mut *db)
            .await?;
        // Sending counts as reading everything up to one's own message.
        sqlx::query(
            "UPDATE memberships
             SET last_read_seq = MAX(last_read_seq, ?1), delivered_seq = MAX(delivered_seq, ?1)
             WHERE room_id = ?2 AND user_id = ?3",
        )
        .bind(seq)
        .bind(message.room_id.as_i64())
        .bind(message.author_id.as_i64())
        .execute(&mut *db)
        .await?;
        let mentioned = record_mentions(
            db,
            message.room_id,
            MessageId::from_i64(id.as_i64()),
            seq,
            message.author_id,
            &message.body,
            &[],
        )
        .await?;

        let stored = whole_message(db, message.room_id, id).await?;
        announce_mentions(changes, &mentioned, &stored);
        changes.push(Change::MessageCreated(stored.clone()));
        Ok(Inserted::New(stored))
    }
}

pub(super) struct EditMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub editor: UserId,
    pub body: MessageBody,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for EditMessage {
    type Output = Message;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Message, ApplyError> {
        let original = live_message(db, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if original.author_id != self.editor {
            return Err(refused(StoreError::NotAuthor));
        }
        let seq = next_seq(db, self.room).await?;
        sqlx::query(
            "UPDATE messages SET body = ?1, edited_at = ?2, changed_seq = ?3 WHERE id = ?4",
        )
        .bind(self.body.as_str())
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .execute(&mut *db)
        .await?;
        let mentioned = record_mentions(
            db,
            self.room,
            self.message,
            original.seq,
            original.author_id,
            &self.body,
            &original.mentions,
        )
        .await?;
        let edited = whole_message(db, self.room, self.message).await?;
        announce_mentions(changes, &mentioned, &edited);
        changes.push(Change::MessageEdited { seq, message: edited.clone() });
        Ok(edited)
    }
}

pub(super) struct DeleteMessage {
    pub room: RoomId,
    pub message: MessageId,
    pub by: UserId,
    pub now: Timestamp,
}

#[async_trait]
impl Operation for DeleteMessage {
    type Output = Message;

    fn erases(&self) -> bool {
        true
    }

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Message, ApplyError> {
        let original = message_in_room(db, self.room, self.message)
            .await?
            .ok_or(refused(StoreError::MessageNotFound))?;
        if original.author_id != self.by {
            // Someone else's message: only the owner of a room that is not a DM may.
            let (kind, role): (String, Option<String>) = sqlx::query_as(
                "SELECT r.kind, m.role FROM rooms r
                 LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2 WHERE r.id = ?1",
            )
            .bind(self.room.as_i64())
            .bind(self.by.as_i64())
            .fetch_one(&mut *db)
            .await?;
            if kind == "dm" || role.as_deref() != Some("owner") {
                return Err(refused(StoreError::NotAuthor));
            }
        }
        if original.deleted {
            return Ok(original);
        }
        let seq = next_seq(db, self.room).await?;
        // The body, reactions and mentions leave storage; SQLite's secure_delete overwrites
        // the freed space.
        sqlx::query(
            "UPDATE messages SET body = '', deleted_at = ?1, changed_seq = ?2 WHERE id = ?3",
        )
        .bind(self.now.as_millis())
        .bind(seq)
        .bind(self.message.as_i64())
        .execute(&mut *db)
        .await?;
        for table in ["reactions", "mentions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE message_id = ?1"))
                .bind(self.message.as_i64())
                .execute(&mut *db)
                .await?;
        }
        let tombstone = whole_message(db, self.room, self.message).await?;
        changes.push(Change::MessageDeleted { seq, message: tombstone.clone() });
        Ok(tombstone)
    }
}

pub(super) struct React {
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
            let distinct: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?1 AND emoji <> ?2",
            )
            .bind(id)
            .bind(emoji)
            .fetch_one(&mut *db)
            .await?;
            let already: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM reactions WHERE message_id = ?1 AND emoji = ?2",
            )
            .bind(id)
            .bind(emoji)
            .fetch_one(&mut *db)
            .await?;
            if already == 0 && distinct >= MAX_REACTIONS_PER_MESSAGE {
                return Err(refused(StoreError::TooManyReactions));
            }
            sqlx::query(
                "INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
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

pub(super) struct MarkRead {
    pub room: RoomId,
    pub user: UserId,
    pub read: Option<i64>,
    pub delivered: Option<i64>,
}

#[async_trait]
impl Operation for MarkRead {
    type Output = Unread;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Unread, ApplyError> {
        let before: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT m.last_read_seq, m.delivered_seq, r.last_seq FROM memberships m
             JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 AND m.user_id = ?2",
        )
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .fetch_optional(&mut *db)
        .await?;
        let Some((read_before, delivered_before, last_seq)) = before else {
            return Err(refused(StoreError::NotMember));
        };
        // Never back, never past the room's newest event; what is read was delivered.
        let read = self.read.map_or(read_before, |seq| seq.min(last_seq).max(read_before));
        let delivered = self
            .delivered
            .map_or(delivered_before, |seq| seq.min(last_seq))
            .max(delivered_before)
            .max(read);
        if read == read_before && delivered == delivered_before {
            return unread_after(db, self.room, self.user, read).await;
        }
        sqlx::query("UPDATE memberships SET last_read_seq = ?1, delivered_seq = ?2 WHERE room_id = ?3 AND user_id = ?4")
            .bind(read)
            .bind(delivered)
            .bind(self.room.as_i64())
            .bind(self.user.as_i64())
            .execute(&mut *db)
            .await?;
        let unread = unread_after(db, self.room, self.user, read).await?;
        let receipt = Receipt { user_id: self.user, read_seq: read, delivered_seq: delivered };
        changes.push(Change::MarkersMoved { room_id: self.room, receipt, unread });
        Ok(unread)
    }
}

pub(super) struct TouchLastSeen {
    pub user: UserId,
    pub at: Timestamp,
}

#[async_trait]
impl Operation for TouchLastSeen {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        sqlx::query(
            "UPDATE users SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?1) WHERE id = ?2",
        )
        .bind(self.at.as_millis())
        .bind(self.user.as_i64())
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}

fn refused(error: StoreError) -> ApplyError {
    ApplyError::Refused(error)
}

/// Takes the room's next seq for a change.
async fn next_seq(db: &mut SqliteConnection, room: RoomId) -> Result<i64, ApplyError> {
    Ok(sqlx::query_scalar(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
    )
    .bind(room.as_i64())
    .fetch_one(&mut *db)
    .await?)
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

/// Replaces a message's mentions with the members its body names (the author aside), and
/// returns those who were not mentioned before.
async fn record_mentions(
    db: &mut SqliteConnection,
    room: RoomId,
    message: MessageId,
    seq: i64,
    author: UserId,
    body: &MessageBody,
    before: &[UserId],
) -> Result<Vec<UserId>, ApplyError> {
    sqlx::query("DELETE FROM mentions WHERE message_id = ?1")
        .bind(message.as_i64())
        .execute(&mut *db)
        .await?;
    let names = body.mentioned_usernames();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id AND m.room_id = ",
    );
    query.push_bind(room.as_i64());
    query.push(" WHERE u.id <> ").push_bind(author.as_i64()).push(" AND u.username IN (");
    let mut list = query.separated(", ");
    for name in &names {
        list.push_bind(name.as_str());
    }
    query.push(")");
    let members: Vec<i64> = query.build_query_scalar().fetch_all(&mut *db).await?;
    let mut fresh = Vec::new();
    for member in members {
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq, message_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(member)
        .bind(room.as_i64())
        .bind(seq)
        .bind(message.as_i64())
        .execute(&mut *db)
        .await?;
        let member = UserId::from_i64(member);
        if !before.contains(&member) {
            fresh.push(member);
        }
    }
    Ok(fresh)
}

fn announce_mentions(changes: &mut Vec<Change>, mentioned: &[UserId], message: &Message) {
    for &user_id in mentioned {
        changes.push(Change::Mentioned { user_id, message: message.clone() });
    }
}

/// A member's unread messages and mentions after `read`.
pub(super) async fn unread_after(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    read: i64,
) -> Result<Unread, ApplyError> {
    let (unread_count, mention_count): (i64, i64) = sqlx::query_as(
        "SELECT
             (SELECT COUNT(*) FROM messages
              WHERE room_id = ?1 AND seq > ?3 AND author_id <> ?2 AND deleted_at IS NULL),
             (SELECT COUNT(*) FROM mentions WHERE user_id = ?2 AND room_id = ?1 AND seq > ?3)",
    )
    .bind(room.as_i64())
    .bind(user.as_i64())
    .bind(read)
    .fetch_one(&mut *db)
    .await?;
    Ok(Unread { last_read_seq: read, unread_count, mention_count })
}

/// A user's role in a room, if a member.
async fn role_of(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, ApplyError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE room_id = ?1 AND user_id = ?2")
            .bind(room.as_i64())
            .bind(user.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    role.as_deref().map(parse_role).transpose().map_err(ApplyError::Batch)
}

/// Adds a membership; false if it existed. A new member has read everything before they
/// joined: their read marker starts at the room's last seq.
async fn insert_membership(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> Result<bool, ApplyError> {
    let done = sqlx::query(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_seq, delivered_seq)
         SELECT ?1, ?2, ?3, ?4, last_seq, last_seq FROM rooms WHERE id = ?1
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room.as_i64())
    .bind(user.as_i64())
    .bind(role.as_str())
    .bind(now.as_millis())
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected() == 1)
}
