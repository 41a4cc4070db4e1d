//! The application: what a user can do, independent of how they asked.
//!
//! HTTP handlers and WebSocket connections both call the methods here. Each method
//! validates its input by parsing it into domain types, checks that the caller may act
//! (membership is checked here, at every entry, and again by the store where a race could
//! matter) and changes the store. What others must learn of a change reaches them through
//! the store's announcement of it (`events`), never from here directly, so it cannot be
//! lost to a cancelled request or published out of order. Only what is never stored
//! (presence, typing: `live`) is published from here.
//!
//! Architecture invariant: this layer never speaks SQL and never touches a socket.

mod accounts;
pub mod admin;
mod blocks;
pub mod events;
mod live;
mod media;
mod messages;
pub mod receipts;
mod rooms;
mod search;
mod sso;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accounts::SignedIn;
pub use media::{AVATAR_LIMIT, Download, MAX_AVATAR_BYTES};
pub use messages::{Draft, HistoryQuery};
pub use search::{SEARCH_CURSOR_SECRET, SearchPage, SearchParams};
pub use sso::{
    CallbackParams, IdentityView, ProviderView, SignInMethodsView, SignupProposal, SsoOutcome,
    SsoRefusal, SsoStart,
};

use crate::auth::{DeviceKeys, LoginThrottle, PasswordHasher, Policies, SharedThrottle};
use crate::bus::Bus;
use crate::config::Settings;
use crate::domain::{RoomId, RoomKind, UserId, ValidationError};
use crate::error::{Error, Result};
use crate::limits::{Action, Limiter, Subject};
use crate::media::blobs::BlobStore;
use crate::realtime::Hub;
use crate::store::{RoomAccess, SessionRecord, Store};

/// A `limit` query parameter: `default` when absent, otherwise between 1 and `max`.
fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(ValidationError::new(
            "limit",
            "invalid_limit",
            format!("limit must be between 1 and {max}."),
        )
        .into()),
    }
}

/// A search prefix as typed, trimmed. Names hold no control characters, so a prefix with
/// one is refused rather than searched for (PostgreSQL does not take a NUL in text at all).
fn search_prefix(prefix: &str) -> Result<&str> {
    if prefix.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "invalid_query",
            "A search cannot hold control characters.",
        ));
    }
    Ok(prefix.trim())
}

/// A member-only action on a public room by someone who has not joined it.
fn not_member() -> Error {
    Error::forbidden("not_member", "Join the room first.")
}

/// The server's keys, kept in the database (`Store::secret`) so that every node of a
/// cluster accepts what any other node signed.
pub struct ServerKeys {
    /// Signs device cookies (`auth::device`).
    pub device: Vec<u8>,
    /// Signs search cursors (`SEARCH_CURSOR_SECRET`).
    pub search_cursor: Vec<u8>,
}

/// A signed-in session: who is asking.
pub type Session = SessionRecord;

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Where uploaded files' bytes live.
    blobs: Arc<dyn BlobStore>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    settings: Settings,
    passwords: PasswordHasher,
    /// Signs and checks device cookies, with the server's key.
    devices: DeviceKeys,
    /// Signs and checks search cursors, with the server's key.
    search_cursors: search::CursorKeys,
    throttle: LoginThrottle,
    /// The cluster's counts, with several nodes.
    shared_throttle: Option<SharedThrottle>,
    /// How much one person or address may do.
    limiter: Limiter,
    /// The identity providers people may sign in with.
    oidc: crate::auth::oidc::Providers,
    /// Cancelled when the server shuts down; WebSocket connections watch it.
    shutdown: CancellationToken,
    /// WebSocket connection tasks, so that shutdown can wait for them to close.
    connections: TaskTracker,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        settings: Settings,
        keys: &ServerKeys,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let redis = settings.redis_url.as_deref().and_then(|url| redis::Client::open(url).ok());
        let shared_throttle =
            redis.clone().map(|client| SharedThrottle::new(client, Policies::DEFAULT));
        let limiter = Limiter::new(&settings.limits, redis, hub.node().to_string());
        let oidc =
            crate::auth::oidc::Providers::new(&settings.oidc_providers, &settings.public_origin)
                .map_err(Error::internal)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                blobs,
                bus,
                hub,
                settings,
                passwords: PasswordHasher::new()?,
                devices: DeviceKeys::new(&keys.device),
                search_cursors: search::CursorKeys::new(&keys.search_cursor),
                throttle: LoginThrottle::new(Policies::DEFAULT),
                shared_throttle,
                limiter,
                oidc,
                shutdown,
                connections: TaskTracker::new(),
            }),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn shutdown_signal(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn connections(&self) -> &TaskTracker {
        &self.inner.connections
    }

    pub(crate) fn shared_throttle(&self) -> Option<&SharedThrottle> {
        self.inner.shared_throttle.as_ref()
    }

    pub(crate) fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    pub fn oidc(&self) -> &crate::auth::oidc::Providers {
        &self.inner.oidc
    }

    /// Takes one `action` from `user`'s budget, or refuses with 429.
    async fn limit(&self, action: Action, user: UserId) -> Result<()> {
        self.limit_by(action, user, 1).await
    }

    /// Takes `cost` (people added, bytes uploaded) from `user`'s budget for `action`.
    async fn limit_by(&self, action: Action, user: UserId, cost: u64) -> Result<()> {
        self.limiter().check(action, Subject::User(user), cost).await
    }

    /// A room the viewer may see: one they are a member of, or any public room. Anything
    /// else, existing or not, is "not found": a private room you are not in does not exist
    /// for you.
    async fn visible(&self, viewer: UserId, room_id: &str) -> Result<(RoomId, RoomAccess)> {
        let room: RoomId = room_id.parse().map_err(|_| Error::NotFound("Room"))?;
        match self.store().room_access(room, viewer).await? {
            Some(access) if access.role.is_some() || access.kind == RoomKind::Public => {
                Ok((room, access))
            }
            _ => Err(Error::NotFound("Room")),
        }
    }

    /// A room the caller is a member of. A public room they have not joined exists for
    /// them, so that is a 403 rather than a 404.
    async fn joined(&self, viewer: UserId, room_id: &str) -> Result<(RoomId, RoomAccess)> {
        let (room, access) = self.visible(viewer, room_id).await?;
        if access.role.is_some() { Ok((room, access)) } else { Err(not_member()) }
    }
}
