//! Every write the store makes, one [`Operation`] each, applied by the writer task inside
//! a batch's transaction.
//!
//! Each operation checks what it must (uniqueness, membership, ownership) inside the
//! transaction, so that a check and the write it guards cannot be separated by another
//! request; and it refuses before writing anything, so a refusal never leaves half a change.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::rows::{MessageRow, parse_role};
use super::writer::{ApplyError, Operation, is_unique_violation_of};
use crate::domain::{Message, MessageId, RoomId, RoomRole, Timestamp, User, UserId};
use crate::store::{
    AddedBy, Change, Inserted, NewMessage, NewRoom, NewSession, NewUser, StoreError,
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
            let existing: Option<MessageRow> = sqlx::query_as(
                "SELECT id, room_id, seq, author_id, body, client_id, created_at FROM messages
                 WHERE room_id = ?1 AND author_id = ?2 AND client_id = ?3",
            )
            .bind(message.room_id.as_i64())
            .bind(message.author_id.as_i64())
            .bind(client_id.as_str())
            .fetch_optional(&mut *db)
            .await?;
            if let Some(row) = existing {
                return Ok(Inserted::Existing(row.into_message()));
            }
        }

        // A random 63-bit id can collide with an existing one, very rarely; draw again.
        let mut id = message.id;
        let seq = loop {
            let inserted = sqlx::query_scalar::<_, i64>(
                "INSERT INTO messages (room_id, seq, id, author_id, body, client_id, created_at)
                 SELECT r.id, r.last_seq + 1, ?1, ?2, ?3, ?4, ?5 FROM rooms r
                 WHERE r.id = ?6
                   AND EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = ?2)
                 RETURNING seq",
            )
            .bind(id.as_i64())
            .bind(message.author_id.as_i64())
            .bind(message.body.as_str())
            .bind(message.client_id.as_ref().map(|c| c.as_str()))
            .bind(message.created_at.as_millis())
            .bind(message.room_id.as_i64())
            .fetch_optional(&mut *db)
            .await;
            match inserted {
                Ok(Some(seq)) => break seq,
                Ok(None) => return Err(ApplyError::Refused(StoreError::NotMember)),
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
        raise_read_marker(db, message.room_id, message.author_id, seq).await?;

        let stored = Message {
            id,
            room_id: message.room_id,
            seq,
            author_id: message.author_id,
            body: message.body.clone(),
            client_id: message.client_id.clone(),
            created_at: message.created_at,
        };
        changes.push(Change::MessageCreated(stored.clone()));
        Ok(Inserted::New(stored))
    }
}

pub(super) struct MarkRead {
    pub room: RoomId,
    pub user: UserId,
    pub seq: i64,
}

#[async_trait]
impl Operation for MarkRead {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        raise_read_marker(db, self.room, self.user, self.seq).await
    }
}

/// Raises a read marker to `seq`; never lowers it.
async fn raise_read_marker(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    seq: i64,
) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE memberships SET last_read_seq = ?1
         WHERE room_id = ?2 AND user_id = ?3 AND last_read_seq < ?1",
    )
    .bind(seq)
    .bind(room.as_i64())
    .bind(user.as_i64())
    .execute(&mut *db)
    .await?;
    Ok(())
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
        "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_seq)
         SELECT ?1, ?2, ?3, ?4, last_seq FROM rooms WHERE id = ?1
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
