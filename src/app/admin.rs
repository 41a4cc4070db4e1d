//! Administration: what an administrator may do to accounts and to public rooms, whether
//! they asked from the web client (`/api/v1/admin/…`) or with `confab admin` on the server's
//! machine (`cli`, through the server's control socket or the store itself).
//!
//! Every action is logged once, as a structured line with its actor, action and target,
//! and recorded in the store's `admin_actions`. What others must learn of an action (an
//! ended session, a deleted message) reaches them like any change: through the store's
//! announcement of it.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{App, Session};
use crate::domain::{DisplayName, MessageId, Password, Timestamp, UserId, Username};
use crate::error::{Error, Result};
use crate::store::{Account, AccountChange, AdminAction, StoreError};

/// The most accounts one page of the list holds.
pub const MAX_ACCOUNT_PAGE: u32 = 200;

/// Who acts as an administrator, as the log and `admin_actions` name them.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An administrator signed in (checked from their session).
    User { id: UserId, username: Username },
    /// `confab admin`, run by an operating-system user on the server's machine.
    Cli { os_user: String },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { username, .. } => write!(f, "user:{username}"),
            Self::Cli { os_user } => write!(f, "cli:{os_user}"),
        }
    }
}

/// What `confab admin` asks, by username; it travels as one JSON line to a running
/// server's control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AdminCommand {
    /// A new account; without a password, one is generated and shown once.
    CreateUser {
        username: String,
        display_name: Option<String>,
        password: Option<String>,
    },
    /// A new password (ending every session); without one, one is generated and shown once.
    ResetPassword {
        username: String,
        password: Option<String>,
    },
    EndSessions {
        username: String,
    },
    Deactivate {
        username: String,
    },
    Reactivate {
        username: String,
    },
    SetAdmin {
        username: String,
        admin: bool,
    },
    /// Accounts by username, those after `after` only.
    ListUsers {
        query: String,
        after: Option<String>,
        limit: Option<u32>,
    },
}

/// What an administrative command did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AdminOutcome {
    Account {
        account: AccountView,
        /// A password generated for the account, shown this once and kept nowhere.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        sessions_ended: u64,
    },
    Accounts {
        users: Vec<AccountView>,
        /// The `after` of the next page; `None` on the last.
        next: Option<String>,
    },
}

/// An account as administrators see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Account)]
pub struct AccountView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub admin: bool,
    pub deactivated: bool,
    pub deactivated_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> Self {
        Self {
            id: account.user.id,
            username: account.user.username.as_str().to_owned(),
            display_name: account.user.display_name.as_str().to_owned(),
            admin: account.admin,
            deactivated: account.deactivated_at.is_some(),
            deactivated_at: account.deactivated_at,
            created_at: account.user.created_at,
        }
    }
}

/// The symbols of generated passwords: lower-case letters and digits that cannot be
/// mistaken for one another when read aloud or copied by hand (no 0/o, 1/l/i).
const PASSWORD_SYMBOLS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A strong random password to hand to someone once: four groups of five symbols
/// (`k3mzq-…`), about 99 bits.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(PASSWORD_SYMBOLS[rng.random_range(0..PASSWORD_SYMBOLS.len())]))
                .collect()
        })
        .collect();
    groups.join("-")
}

fn not_admin() -> Error {
    Error::forbidden("not_admin", "Only administrators may do this.")
}

/// A deactivated user cannot be added to a room or a DM.
pub(super) fn user_deactivated(field: &'static str) -> Error {
    Error::conflict_on(field, "user_deactivated", "That account is deactivated.")
}

impl App {
    /// The caller as an administrator, or 403 `not_admin`.
    pub fn administrator(&self, session: &Session) -> Result<Actor> {
        if session.admin {
            Ok(Actor::User { id: session.user.id, username: session.user.username.clone() })
        } else {
            Err(not_admin())
        }
    }

    /// Runs a command of `confab admin`.
    pub async fn admin_command(
        &self,
        actor: &Actor,
        command: AdminCommand,
    ) -> Result<AdminOutcome> {
        match command {
            AdminCommand::CreateUser { username, display_name, password } => {
                self.admin_create_user(actor, &username, display_name.as_deref(), password).await
            }
            AdminCommand::ResetPassword { username, password } => {
                let username = Username::parse(&username)?;
                let user = self.named(&username).await?;
                let generated = password.is_none();
                let password =
                    Password::parse(password.unwrap_or_else(generate_password), &username)?;
                let hash = self.inner.passwords.hash(password.expose()).await?;
                let mut outcome =
                    self.change_account(actor, user, AccountChange::Password(hash)).await?;
                // Only a generated password is shown: the operator knows one they gave.
                if let AdminOutcome::Account { password: shown, .. } = &mut outcome {
                    *shown = generated.then(|| password.expose().to_owned());
                }
                Ok(outcome)
            }
            AdminCommand::EndSessions { username } => {
                let user = self.named(&Username::parse(&username)?).await?;
                self.change_account(actor, user, AccountChange::EndSessions).await
            }
            AdminCommand::Deactivate { username } => {
                let user = self.named(&Username::parse(&username)?).await?;
                self.change_account(actor, user, AccountChange::Deactivate { at: Timestamp::now() })
                    .await
            }
            AdminCommand::Reactivate { username } => {
                let user = self.named(&Username::parse(&username)?).await?;
                self.change_account(actor, user, AccountChange::Reactivate).await
            }
            AdminCommand::SetAdmin { username, admin } => {
                let user = self.named(&Username::parse(&username)?).await?;
                self.change_account(actor, user, AccountChange::Admin(admin)).await
            }
            AdminCommand::ListUsers { query, after, limit } => {
                self.accounts(&query, after.as_deref(), limit).await
            }
        }
    }

    /// A page of accounts whose username or display name starts with `query`.
    pub async fn accounts(
        &self,
        query: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<AdminOutcome> {
        let limit = super::page_limit(limit, 50, MAX_ACCOUNT_PAGE)?;
        let prefix = super::search_prefix(query)?;
        // One more than asked says whether there is a next page.
        let mut accounts = self.store().accounts(prefix, after, limit + 1).await?;
        let more = accounts.len() > limit as usize;
        accounts.truncate(limit as usize);
        let next = more.then(|| accounts.last().map(|a| a.user.username.as_str().to_owned()));
        Ok(AdminOutcome::Accounts {
            users: accounts.into_iter().map(AccountView::from).collect(),
            next: next.flatten(),
        })
    }

    /// Changes an account by id, for the web client's administration. An administrator
    /// cannot deactivate themself (someone must be left to undo it).
    pub async fn admin_change(
        &self,
        actor: &Actor,
        user_id: &str,
        change: AccountChange,
    ) -> Result<AdminOutcome> {
        let user: UserId = user_id.parse().map_err(|_| Error::NotFound("User"))?;
        if let (Actor::User { id, .. }, AccountChange::Deactivate { .. }) = (actor, &change)
            && *id == user
        {
            return Err(Error::conflict(
                "cannot_deactivate_self",
                "You cannot deactivate your own account.",
            ));
        }
        self.change_account(actor, user, change).await
    }

    /// Deletes any message of a public room, as an administrator. A room that is not
    /// public and that the administrator is not in does not exist for them (404), as for
    /// anyone; in a private room or DM they are in, they delete as its member would.
    pub async fn admin_delete_message(
        &self,
        actor: &Actor,
        session: &Session,
        room_id: &str,
        message_id: &str,
    ) -> Result<crate::domain::Message> {
        let admin = session.user.id;
        let (room, access) = self.visible(admin, room_id).await?;
        if access.kind != crate::domain::RoomKind::Public {
            return self.delete_message(admin, room_id, message_id).await;
        }
        let message: MessageId = message_id.parse().map_err(|_| Error::NotFound("Message"))?;
        let deleted = match self
            .store()
            .delete_message_as_admin(room, message, admin, Timestamp::now())
            .await
        {
            Err(StoreError::NotAuthor) => return Err(not_admin()),
            other => other?,
        };
        self.erase_files(&deleted.media).await;
        self.audit(actor, "delete_message", format!("room:{room} message:{message}")).await;
        Ok(deleted.message)
    }

    /// Refuses a deactivated user as a new member of a room or DM.
    pub(super) async fn refuse_deactivated(&self, user: UserId, field: &'static str) -> Result<()> {
        match self.store().account(user).await? {
            Some(account) if account.deactivated_at.is_some() => Err(user_deactivated(field)),
            _ => Ok(()),
        }
    }

    async fn admin_create_user(
        &self,
        actor: &Actor,
        username: &str,
        display_name: Option<&str>,
        password: Option<String>,
    ) -> Result<AdminOutcome> {
        let username = Username::parse(username)?;
        let display_name = match display_name {
            Some(name) => DisplayName::parse(name)?,
            None => DisplayName::from_username(&username),
        };
        let generated = password.is_none();
        let password = Password::parse(password.unwrap_or_else(generate_password), &username)?;
        let user = self.create_password_user(username, display_name, &password).await?;
        self.audit(actor, "create_user", user.username.as_str().to_owned()).await;
        let account = self.store().account(user.id).await?.ok_or(Error::NotFound("User"))?;
        Ok(AdminOutcome::Account {
            account: account.into(),
            password: generated.then(|| password.expose().to_owned()),
            sessions_ended: 0,
        })
    }

    async fn named(&self, username: &Username) -> Result<UserId> {
        let account = self.store().account_named(username).await?;
        Ok(account.ok_or(Error::NotFound("User"))?.user.id)
    }

    async fn change_account(
        &self,
        actor: &Actor,
        user: UserId,
        change: AccountChange,
    ) -> Result<AdminOutcome> {
        let action = match &change {
            AccountChange::Deactivate { .. } => "deactivate",
            AccountChange::Reactivate => "reactivate",
            AccountChange::Admin(true) => "make_admin",
            AccountChange::Admin(false) => "revoke_admin",
            AccountChange::EndSessions => "end_sessions",
            AccountChange::Password(_) => "reset_password",
        };
        let changed =
            self.store().change_account(user, change).await?.ok_or(Error::NotFound("User"))?;
        let target = changed.account.user.username.as_str().to_owned();
        self.audit(actor, action, target).await;
        Ok(AdminOutcome::Account {
            account: changed.account.into(),
            password: None,
            sessions_ended: changed.sessions_ended,
        })
    }

    /// Logs an administrative action and records it in the store. It has happened: a
    /// record that cannot be written is logged, not reported as the action's failure.
    async fn audit(&self, actor: &Actor, action: &'static str, target: String) {
        tracing::info!(actor = %actor, action, target = %target, "admin action");
        let record = AdminAction { at: Timestamp::now(), actor: actor.to_string(), action, target };
        if let Err(error) = self.store().record_admin_action(record).await {
            tracing::warn!(%error, action, "could not record an admin action");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_unambiguous_and_different() {
        let first = generate_password();
        assert_eq!(first.len(), 23);
        assert!(first.split('-').all(|group| group.len() == 5));
        assert!(first.bytes().all(|b| b == b'-' || PASSWORD_SYMBOLS.contains(&b)));
        assert_ne!(first, generate_password());
    }
}
