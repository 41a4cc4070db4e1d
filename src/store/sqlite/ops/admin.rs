//! What administrators change: accounts (deactivation, the administrator flag, sessions,
//! passwords) and the record of what they did.

use rusqlite::{Connection, params};

use super::super::writer::{ApplyError, Operation};
use super::reads::user_row;
use super::{column, execute, optional};
use crate::domain::{SessionId, UserId};
use crate::store::admin::{ACCOUNT_COLUMNS, AccountRow};
use crate::store::{AccountChange, AccountChanged, AdminAction, Change};

/// Whether `user` administers the server and is not deactivated.
pub(super) fn is_admin(db: &Connection, user: UserId) -> Result<bool, ApplyError> {
    let admin: Option<bool> = optional(
        db,
        "SELECT is_admin FROM users WHERE id = ?1 AND deactivated_at IS NULL",
        [user.as_i64()],
    )?;
    Ok(admin.unwrap_or(false))
}

pub(in crate::store::sqlite) struct ChangeAccount {
    pub user: UserId,
    pub change: AccountChange,
}

impl Operation for ChangeAccount {
    type Output = Option<AccountChanged>;

    fn apply(
        &mut self,
        db: &Connection,
        changes: &mut Vec<Change>,
    ) -> Result<Option<AccountChanged>, ApplyError> {
        let user = self.user.as_i64();
        let exists: Option<i64> = optional(db, "SELECT id FROM users WHERE id = ?1", [user])?;
        if exists.is_none() {
            return Ok(None);
        }
        match &self.change {
            // Deactivating again keeps the first time.
            AccountChange::Deactivate { at } => execute(
                db,
                "UPDATE users SET deactivated_at = COALESCE(deactivated_at, ?2) WHERE id = ?1",
                [user, at.as_millis()],
            )?,
            AccountChange::Reactivate => {
                execute(db, "UPDATE users SET deactivated_at = NULL WHERE id = ?1", [user])?
            }
            AccountChange::Admin(admin) => {
                execute(db, "UPDATE users SET is_admin = ?2 WHERE id = ?1", params![user, admin])?
            }
            AccountChange::EndSessions => 0,
            AccountChange::Password(hash) => execute(
                db,
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user, hash.as_str()],
            )?,
        };
        let mut sessions_ended = 0;
        if self.change.ends_sessions() {
            let ended: Vec<i64> =
                column(db, "DELETE FROM sessions WHERE user_id = ?1 RETURNING id", [user])?;
            sessions_ended = ended.len() as u64;
            changes.extend(ended.into_iter().map(|session| Change::SessionEnded {
                session_id: SessionId::from_i64(session),
                user_id: self.user,
            }));
        }
        let account = db
            .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([user], |row| {
                Ok(AccountRow {
                    user: user_row(row, 0)?,
                    is_admin: row.get("is_admin")?,
                    deactivated_at: row.get("deactivated_at")?,
                })
            })?;
        Ok(Some(AccountChanged { account: account.into_account(), sessions_ended }))
    }
}

pub(in crate::store::sqlite) struct RecordAdminAction(pub AdminAction);

impl Operation for RecordAdminAction {
    type Output = ();

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<(), ApplyError> {
        let action = &self.0;
        execute(
            db,
            "INSERT INTO admin_actions (at, actor, action, target) VALUES (?1, ?2, ?3, ?4)",
            params![action.at.as_millis(), action.actor, action.action, action.target],
        )?;
        Ok(())
    }
}
