//! Accounts and sessions.

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use super::identities::insert_identity;
use super::refused;
use crate::domain::{Bio, RoomId, SessionId, Timestamp, User, UserId};
use crate::store::driver::violated_unique;
use crate::store::rows::UserRow;
use crate::store::{Change, Linked, NewSession, NewUser, ProfileChange, StoreError};

pub(in crate::store::postgres) struct CreateUser(pub NewUser);

#[async_trait]
impl Write for CreateUser {
    type Output = User;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<User>, Failed> {
        let user = &self.0;
        let inserted = sqlx::query(
            "INSERT INTO users
                 (id, username, username_skeleton, display_name, display_key, password_hash,
                  created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.as_i64())
        .bind(user.username.as_str())
        .bind(user.username.lookalike_key())
        .bind(user.display_name.as_str())
        .bind(user.display_name.as_str().to_lowercase())
        .bind(&user.password_hash)
        .bind(user.created_at.as_millis())
        .execute(tx.db())
        .await;
        if inserted.is_ok()
            && let Some(identity) = &user.identity
            && insert_identity(tx, user.id, identity).await? != Linked::Linked
        {
            return Err(refused(StoreError::Conflict("identity")));
        }
        match inserted {
            Ok(_) => Ok(Done::Commit(User {
                id: user.id,
                username: user.username.clone(),
                display_name: user.display_name.clone(),
                bio: Bio::default(),
                avatar: None,
                created_at: user.created_at,
            })),
            // The unique indexes decide: the name itself, and its look-alike key.
            Err(e)
                if matches!(
                    violated_unique(&e),
                    Some("users_username" | "users_username_skeleton")
                ) =>
            {
                Err(refused(StoreError::Conflict("username")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

pub(in crate::store::postgres) struct CreateSession(pub NewSession);

#[async_trait]
impl Write for CreateSession {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        let session = &self.0;
        sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash[..])
        .bind(session.id.as_i64())
        .bind(session.user_id.as_i64())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .execute(tx.db())
        .await?;
        Ok(Done::Commit(()))
    }
}

pub(in crate::store::postgres) struct DeleteSession(pub [u8; 32]);

#[async_trait]
impl Write for DeleteSession {
    type Output = bool;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<bool>, Failed> {
        let deleted: Option<(i64, i64)> =
            sqlx::query_as("DELETE FROM sessions WHERE token_hash = $1 RETURNING id, user_id")
                .bind(&self.0[..])
                .fetch_optional(tx.db())
                .await?;
        let Some((session, user)) = deleted else {
            return Ok(Done::Rollback(false));
        };
        changes.push(Change::SessionEnded {
            session_id: SessionId::from_i64(session),
            user_id: UserId::from_i64(user),
        });
        Ok(Done::Commit(true))
    }
}

pub(in crate::store::postgres) struct DeleteExpiredSessions(pub Timestamp);

#[async_trait]
impl Write for DeleteExpiredSessions {
    type Output = u64;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<u64>, Failed> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(self.0.as_millis())
            .execute(tx.db())
            .await?;
        sqlx::query("DELETE FROM sign_in_flows WHERE expires_at <= $1")
            .bind(self.0.as_millis())
            .execute(tx.db())
            .await?;
        Ok(Done::Commit(done.rows_affected()))
    }
}

pub(in crate::store::postgres) struct TouchLastSeen {
    pub user: UserId,
    pub at: Timestamp,
}

#[async_trait]
impl Write for TouchLastSeen {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        // Never back: two connections closing at once may write in either order.
        sqlx::query(
            "UPDATE users SET last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $1) WHERE id = $2",
        )
        .bind(self.at.as_millis())
        .bind(self.user.as_i64())
        .execute(tx.db())
        .await?;
        Ok(Done::Commit(()))
    }
}

/// Changes a user's profile and announces it to the rooms they are in.
pub(in crate::store::postgres) struct UpdateProfile {
    pub user: UserId,
    pub change: ProfileChange,
}

#[async_trait]
impl Write for UpdateProfile {
    /// The user as they now are, and the avatar key that was replaced.
    type Output = (User, Option<String>);

    /// Two changes to one profile announce in the order they commit.
    fn gate(&self) -> Gate {
        Gate::User(self.user)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<(User, Option<String>)>, Failed> {
        // Locked, so that two avatar swaps at once each get the key the other replaced (and
        // the replaced pictures are removed, none twice, none left behind).
        let previous: Option<Option<String>> =
            sqlx::query_scalar("SELECT avatar FROM users WHERE id = $1 FOR NO KEY UPDATE")
                .bind(self.user.as_i64())
                .fetch_optional(tx.db())
                .await?;
        let Some(previous_avatar) = previous else {
            return Err(refused(StoreError::Corrupt(format!("no user {}", self.user))));
        };
        let change = &self.change;
        let replacing = change.avatar.is_some();
        let row: UserRow = sqlx::query_as(
            "UPDATE users SET
                 display_name = COALESCE($2, display_name),
                 display_key = COALESCE($3, display_key),
                 bio = COALESCE($4, bio),
                 avatar = CASE WHEN $5 THEN $6 ELSE avatar END
             WHERE id = $1
             RETURNING id, username, display_name, bio, avatar, created_at",
        )
        .bind(self.user.as_i64())
        .bind(change.display_name.as_ref().map(|name| name.as_str()))
        .bind(change.display_name.as_ref().map(|name| name.as_str().to_lowercase()))
        .bind(change.bio.as_ref().map(|bio| bio.as_str()))
        .bind(replacing)
        .bind(change.avatar.clone().flatten())
        .fetch_one(tx.db())
        .await?;
        let user = row.into_user();
        let rooms: Vec<i64> =
            sqlx::query_scalar("SELECT room_id FROM memberships WHERE user_id = $1")
                .bind(self.user.as_i64())
                .fetch_all(tx.db())
                .await?;
        let rooms: Vec<RoomId> = rooms.into_iter().map(RoomId::from_i64).collect();
        changes.push(Change::ProfileChanged { user: user.clone(), rooms });
        Ok(Done::Commit((user, if replacing { previous_avatar } else { None })))
    }
}

/// The secret named `name`: `candidate` if there was none yet, kept from then on. Nodes
/// starting at once agree: the first insert wins and every node reads it back.
pub(in crate::store::postgres) struct KeepSecret {
    pub name: &'static str,
    pub candidate: Vec<u8>,
}

#[async_trait]
impl Write for KeepSecret {
    type Output = Vec<u8>;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<Vec<u8>>, Failed> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(self.name)
        .bind(&self.candidate)
        .execute(tx.db())
        .await?;
        let value = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(self.name)
            .fetch_one(tx.db())
            .await?;
        Ok(Done::Commit(value))
    }
}
