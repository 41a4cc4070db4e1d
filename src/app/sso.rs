//! Signing in with an identity provider: a flow's start and its callback, the sign-up
//! of someone new, and linking and unlinking identities (`auth::oidc` speaks to the
//! provider).
//!
//! A flow under way is kept in the store, not in this process, so that any node can
//! finish it: by the hash of its `state`, with the nonce, the PKCE verifier and the hash
//! of the browser's `confab_sso` cookie, for 10 minutes, and taken (deleted) by the one
//! callback that finishes it. A callback whose state is unknown, taken already, or
//! started in another browser is refused before anything is asked of the provider.
//!
//! Who someone is at a provider is its issuer and `sub`, never an email: an identity is
//! attached to an account only at that account's sign-up, or by its owner, signed in.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{App, SignedIn};
use crate::auth::SessionToken;
use crate::auth::hash_token;
use crate::auth::oidc::{OidcError, VerifiedIdentity};
use crate::domain::{DisplayName, IdentityId, Timestamp, UserId, Username};
use crate::error::{Error, Result};
use crate::limits::{Action, Subject};
use crate::store::{Linked, NewIdentity, NewUser, PendingFlow, SignInWays, StoreError, Unlinked};

/// How long a flow may take at the provider.
const FLOW_SECS: i64 = 10 * 60;
/// How long a sign-up waits for its username.
const SIGNUP_SECS: i64 = 30 * 60;

/// Where a started flow sends the browser, and the browser's binding cookie (set it if
/// it is new).
pub struct SsoStart {
    pub authorization_url: String,
    pub browser: String,
}

/// How a callback ended well.
pub enum SsoOutcome {
    SignedIn(SignedIn),
    /// Someone new: the pending sign-up's ticket, for the browser's cookie.
    Signup {
        ticket: String,
    },
    Linked,
}

/// Why a callback ended badly: the code the sign-in screen shows a sentence for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoRefusal {
    Denied,
    State,
    Expired,
    Token,
    Unavailable,
    IdentityTaken,
    SignedOut,
    RateLimited,
    /// The account the identity is linked to is deactivated.
    Deactivated,
    /// Anything else (the database failing): logged.
    Failed,
}

impl SsoRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Denied => "sso_denied",
            Self::State => "sso_state",
            Self::Expired => "sso_expired",
            Self::Token => "sso_token",
            Self::Unavailable => "sso_unavailable",
            Self::IdentityTaken => "sso_identity_taken",
            Self::SignedOut => "sso_signed_out",
            Self::RateLimited => "sso_rate_limited",
            Self::Deactivated => "sso_deactivated",
            Self::Failed => "sso_failed",
        }
    }
}

/// What the provider's redirect brought back.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A pending sign-up, as the screen that finishes it shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignupProposal {
    pub provider: ProviderView,
    pub username: String,
    pub display_name: String,
    #[schema(required = true)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub label: String,
}

/// One of a user's identities, as their profile shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    pub id: IdentityId,
    /// The configured provider's id; None when it is no longer configured.
    #[schema(required = true)]
    pub provider: Option<String>,
    pub label: String,
    #[schema(required = true)]
    pub email: Option<String>,
    pub linked_at: Timestamp,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignInMethodsView {
    pub identities: Vec<IdentityView>,
    pub password: bool,
}

/// What the store keeps of a flow or a sign-up, as JSON.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Pending {
    Flow {
        provider: String,
        /// The hash of the browser's binding cookie, hex.
        browser: String,
        nonce: String,
        pkce_verifier: String,
        /// Linking to this signed-in user, rather than signing in.
        link: Option<UserId>,
    },
    Signup {
        provider: String,
        identity: PendingIdentity,
    },
}

#[derive(Serialize, Deserialize)]
struct PendingIdentity {
    issuer: String,
    subject: String,
    email: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
}

impl From<VerifiedIdentity> for PendingIdentity {
    fn from(v: VerifiedIdentity) -> Self {
        Self {
            issuer: v.issuer,
            subject: v.subject,
            email: v.email,
            name: v.name,
            preferred_username: v.preferred_username,
        }
    }
}

/// The store's key for a secret of one kind: a flow's state and a sign-up's ticket never
/// stand for each other.
fn key(kind: &str, secret: &str) -> [u8; 32] {
    hash_token(&format!("{kind}:{secret}"))
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cookie value we made: 43 characters of base64url.
fn well_formed(secret: &str) -> bool {
    secret.len() == 43
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl App {
    /// The configured providers, for the sign-in screen.
    pub fn sso_providers(&self) -> Vec<ProviderView> {
        self.inner
            .oidc
            .configured()
            .map(|p| ProviderView { id: p.id.clone(), label: p.label.clone() })
            .collect()
    }

    /// Starts a flow at `provider`: to sign in, or (`link`) to link an identity to the
    /// signed-in user. The browser gets a new binding cookie each time: one it brought
    /// might have been planted.
    pub async fn sso_start(
        &self,
        provider: &str,
        link: Option<UserId>,
        client: IpAddr,
    ) -> Result<SsoStart> {
        if self.inner.oidc.get(provider).is_none() {
            return Err(Error::NotFound("Identity provider"));
        }
        self.limiter().check(Action::Login, Subject::address(client), 1).await?;
        let browser = SessionToken::generate().as_str().to_owned();
        let state = SessionToken::generate();
        let authorization =
            self.inner.oidc.authorize(provider, state.as_str()).await.map_err(provider_error)?;
        let flow = Pending::Flow {
            provider: provider.to_owned(),
            browser: hex(key("browser", &browser)),
            nonce: authorization.nonce,
            pkce_verifier: authorization.pkce_verifier,
            link,
        };
        self.store()
            .put_flow(PendingFlow {
                key_hash: key("flow", state.as_str()),
                flow: serde_json::to_string(&flow).map_err(Error::internal)?,
                expires_at: Timestamp::now().plus_seconds(FLOW_SECS),
            })
            .await?;
        Ok(SsoStart { authorization_url: authorization.url, browser })
    }

    /// Finishes a flow where the provider sent the browser back. `signed_in` is the
    /// session's user the request carries, if any.
    pub async fn sso_callback(
        &self,
        provider: &str,
        params: CallbackParams,
        browser: Option<&str>,
        signed_in: Option<UserId>,
        client: IpAddr,
    ) -> Result<SsoOutcome, SsoRefusal> {
        let outcome = self.finish_flow(provider, params, browser, signed_in, client).await;
        if let Err(refusal) = &outcome {
            tracing::info!(provider, refusal = refusal.code(), %client, "sign-in with a provider refused");
        }
        outcome
    }

    async fn finish_flow(
        &self,
        provider: &str,
        params: CallbackParams,
        browser: Option<&str>,
        signed_in: Option<UserId>,
        client: IpAddr,
    ) -> Result<SsoOutcome, SsoRefusal> {
        let state = params.state.as_deref().filter(|s| well_formed(s)).ok_or(SsoRefusal::State)?;
        self.limiter()
            .check(Action::Login, Subject::address(client), 1)
            .await
            .map_err(|_| SsoRefusal::RateLimited)?;
        // Looked up first, so that made-up states cost a read, not a write.
        let flow_key = key("flow", state);
        self.store().flow(flow_key, false).await.map_err(failed)?.ok_or(SsoRefusal::State)?;
        // Taken whatever happens next: a flow is finished once.
        let taken = self.store().flow(flow_key, true).await.map_err(failed)?;
        let (flow, expires_at) = taken.ok_or(SsoRefusal::State)?;
        let Ok(Pending::Flow { provider: started_at, browser: bound, nonce, pkce_verifier, link }) =
            serde_json::from_str(&flow)
        else {
            return Err(SsoRefusal::State);
        };
        let same_browser = browser.is_some_and(|b| hex(key("browser", b)) == bound);
        if started_at != provider || !same_browser {
            return Err(SsoRefusal::State);
        }
        if expires_at <= Timestamp::now() {
            return Err(SsoRefusal::Expired);
        }
        if params.error.is_some() {
            return Err(SsoRefusal::Denied);
        }
        let code = params.code.ok_or(SsoRefusal::Denied)?;
        if link.is_some() && signed_in != link {
            return Err(SsoRefusal::SignedOut);
        }
        let identity =
            self.inner.oidc.finish(provider, &code, &pkce_verifier, &nonce).await.map_err(
                |error| {
                    tracing::warn!(provider, %error, "sign-in with a provider failed");
                    match error {
                        OidcError::Refused(_) => SsoRefusal::Token,
                        OidcError::Unavailable(_) | OidcError::UnknownProvider => {
                            SsoRefusal::Unavailable
                        }
                    }
                },
            )?;

        if let Some(user) = link {
            let linked = self
                .store()
                .link_identity(user, new_identity(provider, &identity))
                .await
                .map_err(failed)?;
            if linked == Linked::Elsewhere {
                return Err(SsoRefusal::IdentityTaken);
            }
            tracing::info!(user_id = %user, provider, "identity linked");
            return Ok(SsoOutcome::Linked);
        }

        let known = self
            .store()
            .identity_user(&identity.issuer, &identity.subject)
            .await
            .map_err(failed)?;
        if let Some(user) = known {
            let account = self.store().account(user.id).await.map_err(failed)?;
            if account.is_some_and(|account| account.deactivated_at.is_some()) {
                tracing::info!(user_id = %user.id, provider, %client, "sign-in refused: deactivated");
                return Err(SsoRefusal::Deactivated);
            }
            tracing::info!(user_id = %user.id, provider, %client, "signed in with a provider");
            return self.start_session(user).await.map(SsoOutcome::SignedIn).map_err(|error| {
                tracing::error!(%error, "a session could not be started");
                SsoRefusal::Failed
            });
        }
        let ticket = SessionToken::generate();
        let signup = Pending::Signup { provider: provider.to_owned(), identity: identity.into() };
        self.store()
            .put_flow(PendingFlow {
                key_hash: key("signup", ticket.as_str()),
                flow: serde_json::to_string(&signup).map_err(|_| SsoRefusal::Failed)?,
                expires_at: Timestamp::now().plus_seconds(SIGNUP_SECS),
            })
            .await
            .map_err(failed)?;
        Ok(SsoOutcome::Signup { ticket: ticket.as_str().to_owned() })
    }

    /// The pending sign-up of this ticket, with a username and display name proposed.
    pub async fn sso_signup_proposal(
        &self,
        ticket: Option<&str>,
        client: IpAddr,
    ) -> Result<SignupProposal> {
        let (provider, identity) = self.pending_signup(ticket).await?;
        self.limiter().check(Action::Login, Subject::address(client), 1).await?;
        let username = self.free_username(&identity).await?;
        let display_name = identity
            .name
            .as_deref()
            .or(identity.preferred_username.as_deref())
            .and_then(|name| DisplayName::parse(name).ok())
            .map_or_else(|| username.clone(), |name| name.as_str().to_owned());
        Ok(SignupProposal {
            provider: self.provider_view(&provider),
            username,
            display_name,
            email: identity.email,
        })
    }

    /// Makes the account of a pending sign-up, with the username and display name the
    /// person chose, and signs it in. The account has no password.
    pub async fn sso_signup(
        &self,
        ticket: Option<&str>,
        username: &str,
        display_name: Option<&str>,
        client: IpAddr,
    ) -> Result<SignedIn> {
        let (provider, identity) = self.pending_signup(ticket).await?;
        let username = Username::parse(username)?;
        let display_name = match display_name {
            Some(name) => DisplayName::parse(name)?,
            None => DisplayName::from_username(&username),
        };
        self.limiter().check(Action::Register, Subject::address(client), 1).await?;
        let verified = VerifiedIdentity {
            issuer: identity.issuer,
            subject: identity.subject,
            email: identity.email,
            name: None,
            preferred_username: None,
        };
        let new_user = NewUser {
            id: UserId::generate(),
            username,
            display_name,
            password_hash: String::new(),
            created_at: Timestamp::now(),
            identity: Some(new_identity(&provider, &verified)),
        };
        let user = match self.store().create_user(new_user).await {
            Err(StoreError::Conflict("identity")) => {
                return Err(Error::conflict(
                    "identity_taken",
                    "This identity already has an account: sign in with it.",
                ));
            }
            Err(StoreError::Conflict(_)) => {
                return Err(Error::conflict_on(
                    "username",
                    "username_taken",
                    "That username is taken, or looks too much like one that is.",
                ));
            }
            other => other?,
        };
        // The account is made: a ticket left behind only expires.
        if let Some(ticket) = ticket
            && let Err(error) = self.store().flow(key("signup", ticket), true).await
        {
            tracing::warn!(%error, "a finished sign-up's ticket was not deleted");
        }
        tracing::info!(user_id = %user.id, username = %user.username, provider,
            "user registered through an identity provider");
        self.start_session(user).await
    }

    async fn pending_signup(&self, ticket: Option<&str>) -> Result<(String, PendingIdentity)> {
        let gone = || Error::NotFound("Sign-up");
        let ticket = ticket.filter(|t| well_formed(t)).ok_or_else(gone)?;
        let (flow, expires_at) =
            self.store().flow(key("signup", ticket), false).await?.ok_or_else(gone)?;
        if expires_at <= Timestamp::now() {
            return Err(gone());
        }
        match serde_json::from_str(&flow) {
            Ok(Pending::Signup { provider, identity }) => Ok((provider, identity)),
            _ => Err(gone()),
        }
    }

    /// A username for someone new, from what the provider says of them, that no one has.
    async fn free_username(&self, identity: &PendingIdentity) -> Result<String> {
        let local_part = identity.email.as_deref().and_then(|e| e.split('@').next());
        let base = [identity.preferred_username.as_deref(), local_part, identity.name.as_deref()]
            .into_iter()
            .flatten()
            .map(username_like)
            .find(|name| name.len() >= Username::MIN_LEN)
            .unwrap_or_else(|| "user".to_owned());
        for n in 1..=50u32 {
            let candidate = if n == 1 {
                base.clone()
            } else {
                let suffix = n.to_string();
                let keep = base.len().min(Username::MAX_LEN - suffix.len());
                format!("{}{suffix}", &base[..keep])
            };
            let Ok(name) = Username::parse(&candidate) else { continue };
            if self.store().credentials(&name).await?.is_none() {
                return Ok(candidate);
            }
        }
        Ok(format!("user{}", rand::random::<u32>() % 1_000_000))
    }

    fn provider_view(&self, id: &str) -> ProviderView {
        let label = self.inner.oidc.get(id).map_or_else(|| id.to_owned(), |p| p.label.clone());
        ProviderView { id: id.to_owned(), label }
    }

    /// How `user` may sign in.
    pub async fn sign_in_methods(&self, user: UserId) -> Result<SignInMethodsView> {
        let methods = self.store().sign_in_methods(user).await?;
        let identities = methods
            .identities
            .into_iter()
            .map(|identity| {
                let configured = self.inner.oidc.get(&identity.provider);
                IdentityView {
                    id: identity.id,
                    provider: configured.map(|p| p.id.clone()),
                    label: configured.map_or(identity.issuer, |p| p.label.clone()),
                    email: identity.email,
                    linked_at: identity.created_at,
                }
            })
            .collect();
        Ok(SignInMethodsView { identities, password: methods.password })
    }

    /// Unlinks one of `user`'s identities, unless it is their last way to sign in: an
    /// identity of a provider no longer configured is no way in, nor is a password while
    /// password login is off.
    pub async fn unlink_identity(&self, user: UserId, identity: &str) -> Result<()> {
        let id: IdentityId = identity.parse().map_err(|_| Error::NotFound("Identity"))?;
        let ways = SignInWays {
            password: self.settings().password_login,
            providers: self.inner.oidc.configured().map(|p| p.id.clone()).collect(),
        };
        match self.store().unlink_identity(user, id, ways).await? {
            Unlinked::Unlinked => {
                tracing::info!(user_id = %user, identity = %id, "identity unlinked");
                Ok(())
            }
            Unlinked::NotFound => Err(Error::NotFound("Identity")),
            Unlinked::LastWay => Err(Error::conflict(
                "last_sign_in_method",
                "This is your only way to sign in: link another provider first.",
            )),
        }
    }
}

fn new_identity(provider: &str, identity: &VerifiedIdentity) -> NewIdentity {
    NewIdentity {
        id: IdentityId::generate(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        provider: provider.to_owned(),
        email: identity.email.clone(),
        created_at: Timestamp::now(),
    }
}

/// A claim made into a username's shape: lower case, a-z 0-9 `_ . -` (spaces become
/// dots, accents and other letters dropped), at most [`Username::MAX_LEN`].
fn username_like(text: &str) -> String {
    let mut name = String::new();
    for c in text.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) {
            name.push(c);
        } else if c == ' ' && !name.ends_with('.') {
            name.push('.');
        }
    }
    let name = name.trim_matches('.');
    name.chars().take(Username::MAX_LEN).collect()
}

fn provider_error(error: OidcError) -> Error {
    match error {
        OidcError::UnknownProvider => Error::NotFound("Identity provider"),
        error => {
            tracing::warn!(%error, "an identity provider could not be used");
            Error::BadGateway {
                code: "sso_unavailable",
                message: "The identity provider cannot be reached. Try again later.".to_owned(),
            }
        }
    }
}

fn failed(error: StoreError) -> SsoRefusal {
    tracing::error!(%error, "a sign-in with a provider failed in the store");
    SsoRefusal::Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_usernames() {
        assert_eq!(username_like("Ada Lovelace"), "ada.lovelace");
        assert_eq!(username_like("  José  María "), "jos.mara");
        assert_eq!(username_like("小明"), "");
        assert_eq!(username_like("a_b-c.d"), "a_b-c.d");
        assert_eq!(username_like(&"x".repeat(40)).len(), Username::MAX_LEN);
    }

    #[test]
    fn secrets_of_one_kind_are_not_keys_of_another() {
        let secret = SessionToken::generate();
        assert_ne!(key("flow", secret.as_str()), key("signup", secret.as_str()));
        assert!(well_formed(secret.as_str()));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(42).chars().chain(['/']).collect::<String>()));
    }
}
