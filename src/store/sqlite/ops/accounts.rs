//! Accounts and sessions.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use super::identities::{identity_taken, insert_identity};
use super::refused;
use crate::domain::{Bio, RoomId, SessionId, Timestamp, User, UserId};
use crate::store::rows::UserRow;
use crate::store::{Change, NewSession, NewUser, ProfileChange, StoreError};

pub(in crate::store::sqlite) struct CreateUser(pub NewUser);

#[async_trait]
impl Operation for CreateUser {
    type Output = User;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<User, ApplyError> {
        let user = &self.0;
        if let Some(identity) = &user.identity
            && identity_taken(db, identity).await?
        {
            return Err(refused(StoreError::Conflict("identity")));
        }
        // The unique indexes decide: the name itself, and its look-alike key.
        let inserted = sqlx::query(
            "INSERT INTO users
                 (id, username, username_skeleton, display_name, display_key, password_hash,
                  created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (username) DO NOTHING
             ON CONFLICT (username_skeleton) DO NOTHING",
        )
        .bind(user.id.as_i64())
        .bind(user.username.as_str())
        .bind(user.username.lookalike_key())
        .bind(user.display_name.as_str())
        .bind(user.display_name.as_str().to_lowercase())
        .bind(&user.password_hash)
        .bind(user.created_at.as_millis())
        .execute(&mut *db)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(refused(StoreError::Conflict("username")));
        }
        if let Some(identity) = &user.identity {
            insert_identity(db, user.id, identity).await?;
        }
        Ok(User {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            bio: Bio::default(),
            avatar: None,
            created_at: user.created_at,
        })
    }
}

pub(in crate::store::sqlite) struct CreateSession(pub NewSession);

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

pub(in crate::store::sqlite) struct DeleteSession(pub [u8; 32]);

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
                session_id: SessionId::from_i64(session),
                user_id: UserId::from_i64(user),
            });
        }
        Ok(deleted.is_some())
    }
}

pub(in crate::store::sqlite) struct DeleteExpiredSessions(pub Timestamp);

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
        sqlx::query("DELETE FROM sign_in_flows WHERE expires_at <= ?1")
            .bind(self.0.as_millis())
            .execute(&mut *db)
            .await?;
        Ok(done.rows_affected())
    }
}

pub(in crate::store::sqlite) struct TouchLastSeen {
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

/// Changes a user's profile and announces it to the rooms they are in.
pub(in crate::store::sqlite) struct UpdateProfile {
    pub user: UserId,
    pub change: ProfileChange,
}

#[async_trait]
impl Operation for UpdateProfile {
    /// The user as they now are, and the avatar key that was replaced.
    type Output = (User, Option<String>);

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<(User, Option<String>), ApplyError> {
        let previous: Option<Option<String>> =
            sqlx::query_scalar("SELECT avatar FROM users WHERE id = ?1")
                .bind(self.user.as_i64())
                .fetch_optional(&mut *db)
                .await?;
        let Some(previous_avatar) = previous else {
            return Err(refused(StoreError::Corrupt(format!("no user {}", self.user))));
        };
        let change = &self.change;
        if let Some(name) = &change.display_name {
            sqlx::query("UPDATE users SET display_name = ?1, display_key = ?2 WHERE id = ?3")
                .bind(name.as_str())
                .bind(name.as_str().to_lowercase())
                .bind(self.user.as_i64())
                .execute(&mut *db)
                .await?;
        }
        if let Some(bio) = &change.bio {
            sqlx::query("UPDATE users SET bio = ?1 WHERE id = ?2")
                .bind(bio.as_str())
                .bind(self.user.as_i64())
                .execute(&mut *db)
                .await?;
        }
        let mut replaced = None;
        if let Some(avatar) = &change.avatar {
            sqlx::query("UPDATE users SET avatar = ?1 WHERE id = ?2")
                .bind(avatar.as_deref())
                .bind(self.user.as_i64())
                .execute(&mut *db)
                .await?;
            replaced = previous_avatar;
        }
        let row: UserRow = sqlx::query_as(
            "SELECT id, username, display_name, bio, avatar, created_at FROM users WHERE id = ?1",
        )
        .bind(self.user.as_i64())
        .fetch_one(&mut *db)
        .await?;
        let user = row.into_user();
        let rooms: Vec<i64> =
            sqlx::query_scalar("SELECT room_id FROM memberships WHERE user_id = ?1")
                .bind(self.user.as_i64())
                .fetch_all(&mut *db)
                .await?;
        let rooms = rooms.into_iter().map(RoomId::from_i64).collect();
        changes.push(Change::ProfileChanged { user: user.clone(), rooms });
        Ok((user, replaced))
    }
}

/// The secret named `name`: `candidate` if there was none yet, kept from then on.
pub(in crate::store::sqlite) struct KeepSecret {
    pub name: &'static str,
    pub candidate: Vec<u8>,
}

#[async_trait]
impl Operation for KeepSecret {
    type Output = Vec<u8>;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<Vec<u8>, ApplyError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(self.name)
        .bind(&self.candidate)
        .execute(&mut *db)
        .await?;
        Ok(sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?1")
            .bind(self.name)
            .fetch_one(&mut *db)
            .await?)
    }
}
