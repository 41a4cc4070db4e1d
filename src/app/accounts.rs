//! Registering, signing in and out, and finding users.

use std::net::IpAddr;
use std::time::Instant;

use super::{App, Session};
use crate::auth::{SessionToken, hash_token};
use crate::domain::{DisplayName, Password, SessionId, Timestamp, User, UserId, Username};
use crate::error::{Error, Result};
use crate::limits::{Action, Subject};
use crate::store::{NewSession, NewUser, StoreError};

/// A new session: the user and the token that now stands for them.
pub struct SignedIn {
    pub user: User,
    pub token: SessionToken,
    pub expires_at: Timestamp,
    /// The device cookie for the browser that signed in (`auth::device`).
    pub device_cookie: String,
}

/// What the login throttle's 429 says.
const FAILED_LOGINS: &str = "Too many failed attempts";

/// What signing in to a deactivated account answers (403).
pub(super) fn account_deactivated() -> Error {
    Error::forbidden("account_deactivated", "This account has been deactivated.")
}

/// The most users one search returns.
pub const MAX_USER_SEARCH: u32 = 50;

impl App {
    pub async fn register(
        &self,
        username: &str,
        password: String,
        display_name: Option<&str>,
        client: IpAddr,
    ) -> Result<SignedIn> {
        if !(self.settings().password_signup && self.settings().password_login) {
            return Err(Error::forbidden(
                "password_signup_disabled",
                "Accounts are made by signing in with an identity provider here.",
            ));
        }
        let username = Username::parse(username)?;
        let password = Password::parse(password, &username)?;
        let display_name = match display_name {
            Some(name) => DisplayName::parse(name)?,
            None => DisplayName::from_username(&username),
        };
        self.limiter().check(Action::Register, Subject::address(client), 1).await?;
        let user = self.create_password_user(username, display_name, &password).await?;
        tracing::info!(user_id = %user.id, username = %user.username, "user registered");
        self.start_session(user).await
    }

    /// Stores a new user who signs in with `password` (already checked against the
    /// rules); 409 `username_taken` when the name, or one it looks like, is taken.
    pub(super) async fn create_password_user(
        &self,
        username: Username,
        display_name: DisplayName,
        password: &Password,
    ) -> Result<User> {
        let password_hash = self.inner.passwords.hash(password.expose()).await?;
        let new_user = NewUser {
            id: UserId::generate(),
            username,
            display_name,
            password_hash,
            created_at: Timestamp::now(),
            identity: None,
        };
        match self.store().create_user(new_user).await {
            Err(StoreError::Conflict(_)) => Err(Error::conflict_on(
                "username",
                "username_taken",
                "That username is taken, or looks too much like one that is.",
            )),
            other => Ok(other?),
        }
    }

    /// Checks a username and password. Attempts are limited per client address, and
    /// failures throttled per username and per client address (see `auth::throttle`);
    /// from a device the account signed in with before (`device_cookie`, see
    /// `auth::device`), only that device's own failures count. A throttled attempt is
    /// refused before the password is looked at.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn> {
        if !self.settings().password_login {
            return Err(Error::forbidden(
                "password_login_disabled",
                "Sign in with an identity provider here: passwords are turned off.",
            ));
        }
        // A name that cannot exist counts against the address only, so that junk names
        // cannot fill the throttle's memory.
        let username = Username::parse(username).ok();
        let name = username.as_ref().map(Username::as_str);
        let address = client.to_string();
        let device = name
            .zip(device_cookie)
            .and_then(|(name, cookie)| self.inner.devices.verify(cookie, name).map(str::to_owned));
        if device.is_none() {
            self.limiter().check(Action::Login, Subject::address(client), 1).await?;
        }
        self.begin_attempt(name, &address, device.as_deref()).await?;

        let credentials = match &username {
            Some(username) => self.store().credentials(username).await?,
            None => None,
        };
        // An account made through an identity provider has no password ('').
        let stored_hash =
            credentials.as_ref().map(|c| c.password_hash.as_str()).filter(|hash| !hash.is_empty());
        let matches = self.inner.passwords.verify(password, stored_hash).await?;
        match credentials {
            Some(credentials) if matches => {
                let username = credentials.user.username.as_str();
                self.attempt_succeeded(username, &address, device.as_deref()).await;
                // Said only to whoever knows the password: a guesser learns nothing.
                if credentials.deactivated {
                    tracing::info!(username, %client, "login refused: deactivated");
                    return Err(account_deactivated());
                }
                self.start_session(credentials.user).await
            }
            _ => {
                tracing::info!(username = name.unwrap_or("(invalid)"), %client, "login failed");
                metrics::counter!(crate::metrics::LOGIN_FAILURES).increment(1);
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Counts a login attempt as a failure until it succeeds, or refuses it (429) while
    /// one of its keys must wait: on this node, and in the cluster's shared counts.
    async fn begin_attempt(
        &self,
        name: Option<&str>,
        address: &str,
        device: Option<&str>,
    ) -> Result<()> {
        let refused = |retry_after| {
            metrics::counter!(crate::metrics::THROTTLED, "action" => "login_failures").increment(1);
            Error::RateLimited { retry_after, what: FAILED_LOGINS }
        };
        let now = Instant::now();
        match device {
            Some(device) => self.throttle().begin_device(device, now),
            None => self.throttle().begin(name, address, now),
        }
        .map_err(refused)?;
        let Some(shared) = self.shared_throttle() else { return Ok(()) };
        let shared = match device {
            Some(device) => shared.begin_device(device).await,
            None => shared.begin(name, address).await,
        };
        match shared {
            Ok(Ok(())) => Ok(()),
            Ok(Err(retry_after)) => Err(refused(retry_after)),
            // This node's own throttle has counted the attempt already.
            Err(error) => {
                tracing::debug!(%error, "the shared login throttle is unreachable");
                Ok(())
            }
        }
    }

    /// Takes back the failure [`App::begin_attempt`] counted.
    async fn attempt_succeeded(&self, username: &str, address: &str, device: Option<&str>) {
        let shared = match device {
            Some(device) => {
                self.throttle().device_succeeded(device);
                match self.shared_throttle() {
                    Some(shared) => shared.device_succeeded(device).await,
                    None => Ok(()),
                }
            }
            None => {
                self.throttle().succeeded(username, address);
                match self.shared_throttle() {
                    Some(shared) => shared.succeeded(username, address).await,
                    None => Ok(()),
                }
            }
        };
        if let Err(error) = shared {
            tracing::debug!(%error, "the shared login throttle is unreachable");
        }
    }

    /// Ends the session of this token; the store announces it, which closes its WebSocket
    /// connections.
    pub async fn logout(&self, token: &str) -> Result<()> {
        self.store().delete_session(&hash_token(token)).await?;
        Ok(())
    }

    /// The session a token stands for, if it is valid now.
    pub async fn authenticate(&self, token: &str) -> Result<Session> {
        self.store()
            .session(&hash_token(token), Timestamp::now())
            .await?
            .ok_or(Error::Unauthenticated)
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        let id: UserId = id.parse().map_err(|_| Error::NotFound("User"))?;
        self.store().user(id).await?.ok_or(Error::NotFound("User"))
    }

    /// Users whose username or display name starts with `prefix`.
    pub async fn search_users(&self, prefix: &str, limit: Option<u32>) -> Result<Vec<User>> {
        let limit = super::page_limit(limit, 20, MAX_USER_SEARCH)?;
        Ok(self.store().search_users(super::search_prefix(prefix)?, limit).await?)
    }

    pub(super) async fn start_session(&self, user: User) -> Result<SignedIn> {
        let token = SessionToken::generate();
        let now = Timestamp::now();
        let ttl = i64::try_from(self.settings().session_ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.plus_seconds(ttl);
        self.store()
            .create_session(NewSession {
                id: SessionId::generate(),
                token_hash: token.hash(),
                user_id: user.id,
                created_at: now,
                expires_at,
            })
            .await?;
        let device_cookie = self.inner.devices.issue(user.username.as_str());
        Ok(SignedIn { user, token, expires_at, device_cookie })
    }
}
