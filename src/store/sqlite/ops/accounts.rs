//! Accounts and sessions.

use rusqlite::{Connection, OptionalExtension, params};

use super::super::writer::{ApplyError, Operation};
use super::identities::{identity_taken, insert_identity};
use super::reads::user_row;
use super::{column, execute, one, optional, refused};
use crate::domain::{Bio, RoomId, SessionId, Timestamp, User, UserId};
use crate::store::{Change, NewSession, NewUser, ProfileChange, StoreError};

pub(in crate::store::sqlite) struct CreateUser(pub NewUser);

impl Operation for CreateUser {
    type Output = User;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<User, ApplyError> {
        let user = &self.0;
        if let Some(identity) = &user.identity
            && identity_taken(db, identity)?
        {
            return Err(refused(StoreError::Conflict("identity")));
        }
        // The unique indexes decide: the name itself, and its look-alike key.
        let inserted = execute(
            db,
            "INSERT INTO users
                 (id, username, username_skeleton, display_name, display_key, password_hash,
                  created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (username) DO NOTHING
             ON CONFLICT (username_skeleton) DO NOTHING",
            params![
                user.id.as_i64(),
                user.username.as_str(),
                user.username.lookalike_key(),
                user.display_name.as_str(),
                user.display_name.as_str().to_lowercase(),
                user.password_hash,
                user.created_at.as_millis(),
            ],
        )?;
        if inserted == 0 {
            return Err(refused(StoreError::Conflict("username")));
        }
        if let Some(identity) = &user.identity {
            insert_identity(db, user.id, identity)?;
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

impl Operation for CreateSession {
    type Output = ();

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<(), ApplyError> {
        let session = &self.0;
        execute(
            db,
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &session.token_hash[..],
                session.id.as_i64(),
                session.user_id.as_i64(),
                session.created_at.as_millis(),
                session.expires_at.as_millis(),
            ],
        )?;
        Ok(())
    }
}

pub(in crate::store::sqlite) struct DeleteSession(pub [u8; 32]);

impl Operation for DeleteSession {
    type Output = bool;

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<bool, ApplyError> {
        let deleted: Option<(i64, i64)> = db
            .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING id, user_id")?
            .query_row([&self.0[..]], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
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

impl Operation for DeleteExpiredSessions {
    type Output = u64;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<u64, ApplyError> {
        let now = self.0.as_millis();
        let deleted = execute(db, "DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        execute(db, "DELETE FROM sign_in_flows WHERE expires_at <= ?1", [now])?;
        Ok(deleted as u64)
    }
}

pub(in crate::store::sqlite) struct TouchLastSeen {
    pub user: UserId,
    pub at: Timestamp,
}

impl Operation for TouchLastSeen {
    type Output = ();

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<(), ApplyError> {
        execute(
            db,
            "UPDATE users SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?1) WHERE id = ?2",
            [self.at.as_millis(), self.user.as_i64()],
        )?;
        Ok(())
    }
}

/// Changes a user's profile and announces it to the rooms they are in.
pub(in crate::store::sqlite) struct UpdateProfile {
    pub user: UserId,
    pub change: ProfileChange,
}

impl Operation for UpdateProfile {
    /// The user as they now are, and the avatar key that was replaced.
    type Output = (User, Option<String>);

    fn apply(
        &mut self,
        db: &Connection,
        changes: &mut Vec<Change>,
    ) -> Result<(User, Option<String>), ApplyError> {
        let user = self.user.as_i64();
        let previous: Option<Option<String>> =
            optional(db, "SELECT avatar FROM users WHERE id = ?1", [user])?;
        let Some(previous_avatar) = previous else {
            return Err(refused(StoreError::Corrupt(format!("no user {}", self.user))));
        };
        let change = &self.change;
        if let Some(name) = &change.display_name {
            execute(
                db,
                "UPDATE users SET display_name = ?1, display_key = ?2 WHERE id = ?3",
                params![name.as_str(), name.as_str().to_lowercase(), user],
            )?;
        }
        if let Some(bio) = &change.bio {
            execute(db, "UPDATE users SET bio = ?1 WHERE id = ?2", params![bio.as_str(), user])?;
        }
        let mut replaced = None;
        if let Some(avatar) = &change.avatar {
            execute(
                db,
                "UPDATE users SET avatar = ?1 WHERE id = ?2",
                params![avatar.as_deref(), user],
            )?;
            replaced = previous_avatar;
        }
        let row = db
            .prepare_cached(
                "SELECT id, username, display_name, bio, avatar, created_at FROM users
                 WHERE id = ?1",
            )?
            .query_row([user], |row| user_row(row, 0))?;
        let user = row.into_user();
        let rooms: Vec<i64> =
            column(db, "SELECT room_id FROM memberships WHERE user_id = ?1", [user.id.as_i64()])?;
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

impl Operation for KeepSecret {
    type Output = Vec<u8>;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<Vec<u8>, ApplyError> {
        execute(
            db,
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![self.name, self.candidate],
        )?;
        one(db, "SELECT value FROM server_secrets WHERE name = ?1", [self.name])
    }
}
