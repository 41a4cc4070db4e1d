//! What administrators change: accounts (deactivation, the administrator flag, sessions,
//! passwords) and the record of what they did.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use crate::domain::{SessionId, UserId};
use crate::store::admin::{ACCOUNT_COLUMNS, AccountRow};
use crate::store::{AccountChange, AccountChanged, AdminAction, Change};

/// Whether `user` administers the server and is not deactivated.
pub(super) async fn is_admin(db: &mut SqliteConnection, user: UserId) -> Result<bool, ApplyError> {
    let admin: Option<bool> =
        sqlx::query_scalar("SELECT is_admin FROM users WHERE id = ?1 AND deactivated_at IS NULL")
            .bind(user.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    Ok(admin.unwrap_or(false))
}

pub(in crate::store::sqlite) struct ChangeAccount {
    pub user: UserId,
    pub change: AccountChange,
}

#[async_trait]
impl Operation for ChangeAccount {
    type Output = Option<AccountChanged>;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Option<AccountChanged>, ApplyError> {
        let user = self.user.as_i64();
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?1")
            .bind(user)
            .fetch_optional(&mut *db)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let update = match &self.change {
            // Deactivating again keeps the first time.
            AccountChange::Deactivate { at } => Some(
                sqlx::query(
                    "UPDATE users SET deactivated_at = COALESCE(deactivated_at, ?2) WHERE id = ?1",
                )
                .bind(user)
                .bind(at.as_millis()),
            ),
            AccountChange::Reactivate => {
                Some(sqlx::query("UPDATE users SET deactivated_at = NULL WHERE id = ?1").bind(user))
            }
            AccountChange::Admin(admin) => Some(
                sqlx::query("UPDATE users SET is_admin = ?2 WHERE id = ?1").bind(user).bind(*admin),
            ),
            AccountChange::EndSessions => None,
            AccountChange::Password(hash) => Some(
                sqlx::query("UPDATE users SET password_hash = ?2 WHERE id = ?1")
                    .bind(user)
                    .bind(hash.as_str()),
            ),
        };
        if let Some(update) = update {
            update.execute(&mut *db).await?;
        }
        let mut sessions_ended = 0;
        if self.change.ends_sessions() {
            let ended: Vec<i64> =
                sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ?1 RETURNING id")
                    .bind(user)
                    .fetch_all(&mut *db)
                    .await?;
            sessions_ended = ended.len() as u64;
            changes.extend(ended.into_iter().map(|session| Change::SessionEnded {
                session_id: SessionId::from_i64(session),
                user_id: self.user,
            }));
        }
        let row: AccountRow =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"))
                .bind(user)
                .fetch_one(&mut *db)
                .await?;
        Ok(Some(AccountChanged { account: row.into_account(), sessions_ended }))
    }
}

pub(in crate::store::sqlite) struct RecordAdminAction(pub AdminAction);

#[async_trait]
impl Operation for RecordAdminAction {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        let action = &self.0;
        sqlx::query(
            "INSERT INTO admin_actions (at, actor, action, target) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(action.at.as_millis())
        .bind(&action.actor)
        .bind(action.action)
        .bind(&action.target)
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}
