//! What administrators change: accounts (deactivation, the administrator flag, sessions,
//! passwords) and the record of what they did.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use crate::domain::{SessionId, UserId};
use crate::store::admin::{ACCOUNT_COLUMNS, AccountRow};
use crate::store::{AccountChange, AccountChanged, AdminAction, Change};

/// Whether `user` administers the server and is not deactivated; their row stays locked
/// (`FOR SHARE`) until the transaction ends, so the flag cannot be taken meanwhile.
pub(super) async fn is_admin(db: &mut PgConnection, user: UserId) -> Result<bool, Failed> {
    let admin: Option<bool> = sqlx::query_scalar(
        "SELECT is_admin FROM users WHERE id = $1 AND deactivated_at IS NULL FOR SHARE",
    )
    .bind(user.as_i64())
    .fetch_optional(&mut *db)
    .await?;
    Ok(admin.unwrap_or(false))
}

pub(in crate::store::postgres) struct ChangeAccount {
    pub user: UserId,
    pub change: AccountChange,
}

#[async_trait]
impl Write for ChangeAccount {
    type Output = Option<AccountChanged>;

    /// The user's turn: the sessions it ends are announced in the order of the changes.
    fn gate(&self) -> Gate {
        Gate::User(self.user)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Option<AccountChanged>>, Failed> {
        let user = self.user.as_i64();
        let (admin, deactivated_at, hash) = match &self.change {
            AccountChange::Deactivate { at } => (None, Some(Some(at.as_millis())), None),
            AccountChange::Reactivate => (None, Some(None), None),
            AccountChange::Admin(admin) => (Some(*admin), None, None),
            AccountChange::EndSessions => (None, None, None),
            AccountChange::Password(hash) => (None, None, Some(hash.as_str())),
        };
        // Deactivating again keeps the first time.
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "UPDATE users SET
                 is_admin = COALESCE($2, is_admin),
                 deactivated_at = CASE WHEN NOT $3 THEN deactivated_at
                                       WHEN $4::BIGINT IS NULL THEN NULL
                                       ELSE COALESCE(deactivated_at, $4) END,
                 password_hash = COALESCE($5, password_hash)
             WHERE id = $1
             RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(user)
        .bind(admin)
        .bind(deactivated_at.is_some())
        .bind(deactivated_at.flatten())
        .bind(hash)
        .fetch_optional(tx.db())
        .await?;
        let Some(row) = row else { return Ok(Done::Rollback(None)) };
        let mut sessions_ended = 0;
        if self.change.ends_sessions() {
            let ended: Vec<i64> =
                sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id")
                    .bind(user)
                    .fetch_all(tx.db())
                    .await?;
            sessions_ended = ended.len() as u64;
            changes.extend(ended.into_iter().map(|session| Change::SessionEnded {
                session_id: SessionId::from_i64(session),
                user_id: self.user,
            }));
        }
        Ok(Done::Commit(Some(AccountChanged { account: row.into_account(), sessions_ended })))
    }
}

pub(in crate::store::postgres) struct RecordAdminAction(pub AdminAction);

#[async_trait]
impl Write for RecordAdminAction {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        let action = &self.0;
        sqlx::query(
            "INSERT INTO admin_actions (at, actor, action, target) VALUES ($1, $2, $3, $4)",
        )
        .bind(action.at.as_millis())
        .bind(&action.actor)
        .bind(action.action)
        .bind(&action.target)
        .execute(tx.db())
        .await?;
        Ok(Done::Commit(()))
    }
}
