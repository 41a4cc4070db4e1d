//! What administration asks of the store, alike on both databases: an account as an
//! administrator sees it, the changes an administrator makes to one, and the record of
//! what administrators did.

use sqlx::FromRow;

use super::rows::UserRow;
use crate::domain::{Timestamp, User};

/// A user with what only administrators (and the user themself) see.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    /// May administer the server (the web client's administration, `/api/v1/admin/…`).
    pub admin: bool,
    /// When the account was deactivated; `None` while it is active. A deactivated user
    /// cannot sign in, and has no session.
    pub deactivated_at: Option<Timestamp>,
}

/// A change an administrator makes to an account.
#[derive(Debug, Clone)]
pub enum AccountChange {
    /// No more signing in, and every session ends (announced, so their sockets close).
    Deactivate { at: Timestamp },
    /// Signing in again; nothing else comes back (sessions ended stay ended).
    Reactivate,
    /// Make an administrator, or take it back.
    Admin(bool),
    /// Every session ends (announced), the account stays as it is.
    EndSessions,
    /// A new password hash; every session ends (announced), so whoever held the old
    /// password is signed out too.
    Password(String),
}

impl AccountChange {
    /// Whether the change ends the account's sessions.
    pub(super) fn ends_sessions(&self) -> bool {
        matches!(self, Self::Deactivate { .. } | Self::EndSessions | Self::Password(_))
    }
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct AccountChanged {
    /// The account as it is now.
    pub account: Account,
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// One thing an administrator did, for the `admin_actions` table.
#[derive(Debug, Clone)]
pub struct AdminAction {
    pub at: Timestamp,
    /// Who: `user:<username>` or `cli:<os user>`.
    pub actor: String,
    /// What, as a snake_case word: `deactivate`, `delete_message`, …
    pub action: &'static str,
    /// To whom or what: a username, or a room and message.
    pub target: String,
}

/// The columns of an account; both databases select them under these names.
pub(super) const ACCOUNT_COLUMNS: &str =
    "id, username, display_name, bio, avatar, created_at, is_admin, deactivated_at";

#[derive(FromRow)]
pub(super) struct AccountRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub is_admin: bool,
    pub deactivated_at: Option<i64>,
}

impl AccountRow {
    pub fn into_account(self) -> Account {
        Account {
            user: self.user.into_user(),
            admin: self.is_admin,
            deactivated_at: self.deactivated_at.map(Timestamp::from_millis),
        }
    }
}
