//! How much one person or one address may do: a rate with a burst for every action that
//! costs the server or bothers others (registering, signing in, sending, reacting, typing,
//! making rooms, adding people, uploading and the bytes uploaded), and a cap on one user's
//! WebSocket connections.
//!
//! Each node keeps its own buckets (`rate.rs`); with several nodes the cluster's buckets
//! and socket counts are kept in Redis (`shared.rs`) and checked too, so what one node
//! enforces the cluster enforces. While Redis cannot be reached a node still enforces
//! what it sees itself. A refused action costs nothing and is answered 429 with the time
//! to wait (`Retry-After`, or an `error` frame's `retry_after` on the WebSocket).
//!
//! The defaults let a person chatting as fast as people chat never meet a limit, and stop
//! a script long before it bothers anyone: every rate can be changed or turned off with
//! `--limit`.
//!
//! Architecture invariant: this module knows users and addresses, never HTTP, sockets or
//! the store.

mod link;
mod rate;
mod shared;
mod sockets;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use link::RedisLink;
pub use rate::Rate;
pub use sockets::SocketSlot;

use self::rate::Buckets;
use self::shared::SharedLimits;
use self::sockets::Sockets;
use crate::domain::UserId;
use crate::error::Error;

/// What a rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accounts created, per client address.
    Register,
    /// Sign-in attempts, failed or not, per client address (failures are slowed further
    /// by the login throttle).
    Login,
    /// Messages sent, edited or deleted, per user.
    Message,
    /// Reactions added or removed, per user.
    Reaction,
    /// Typing notices relayed, per user (over all their connections).
    Typing,
    /// Rooms and groups created, DMs opened and public rooms joined, per user.
    Room,
    /// People added to rooms, per user (a group created with ten members adds ten).
    Member,
    /// Files and avatars uploaded, per user.
    Upload,
    /// Bytes uploaded, per user.
    UploadBytes,
    /// Searches, per user.
    Search,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Register,
        Action::Login,
        Action::Message,
        Action::Reaction,
        Action::Typing,
        Action::Room,
        Action::Member,
        Action::Upload,
        Action::UploadBytes,
        Action::Search,
    ];

    /// The name `--limit` and the Redis keys use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Login => "login",
            Action::Message => "message",
            Action::Reaction => "reaction",
            Action::Typing => "typing",
            Action::Room => "room",
            Action::Member => "member",
            Action::Upload => "upload",
            Action::UploadBytes => "upload_bytes",
            Action::Search => "search",
        }
    }

    /// What was too much, as the 429's sentence says it.
    fn what(self) -> &'static str {
        match self {
            Action::Register => "Too many accounts created from your address",
            Action::Login => "Too many sign-in attempts from your address",
            Action::Message => "You are sending messages too fast",
            Action::Reaction => "You are reacting too fast",
            Action::Typing => "Too many typing notices",
            Action::Room => "You are opening rooms too fast",
            Action::Member => "You are adding people too fast",
            Action::Upload => "You are uploading too fast",
            Action::UploadBytes => "You have uploaded as much as you may for now",
            Action::Search => "You are searching too fast",
        }
    }

    /// The default: what people do by hand fits in the burst and the rate.
    pub fn default_rate(self) -> Rate {
        const SECOND: Duration = Duration::from_secs(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(86_400);
        match self {
            // A family or an office signing up together; not a script making hundreds.
            Action::Register => Rate::new(20, HOUR),
            Action::Login => Rate::new(30, MINUTE),
            // Three a second for as long as anyone types, thirty at once for a paste.
            Action::Message => Rate::new(30, 10 * SECOND),
            Action::Reaction => Rate::new(30, 10 * SECOND),
            // A client relays typing every few seconds per room.
            Action::Typing => Rate::new(20, 10 * SECOND),
            Action::Room => Rate::new(20, MINUTE),
            Action::Member => Rate::new(200, 10 * MINUTE),
            // A phone's gallery shared at once.
            Action::Upload => Rate::new(30, MINUTE),
            Action::UploadBytes => Rate::new(2 << 30, DAY),
            // Results as someone types (the web client waits for a pause), page after page.
            Action::Search => Rate::new(60, MINUTE),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }
}

/// Who an action is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(UserId),
    /// A client address; IPv6 by its /64, which one household or one attacker holds whole.
    Address(IpAddr),
}

impl Subject {
    pub fn address(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self::Address(IpAddr::V6(prefix.into()))
            }
            v4 => Self::Address(v4),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(id) => write!(f, "user:{id}"),
            Subject::Address(address) => write!(f, "address:{address}"),
        }
    }
}

/// The rate of every action (`None`: not limited) and the cap on one user's sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    rates: HashMap<Action, Option<Rate>>,
    /// The most WebSocket connections one user may hold at once, over every node.
    pub sockets_per_user: Option<usize>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            rates: Action::ALL.into_iter().map(|a| (a, Some(a.default_rate()))).collect(),
            sockets_per_user: Some(DEFAULT_SOCKETS_PER_USER),
        }
    }
}

/// Enough for every tab, phone and desktop client a person keeps open.
pub const DEFAULT_SOCKETS_PER_USER: usize = 32;

impl LimitSettings {
    /// Nothing limited: for load generators and tests of something else.
    pub fn off() -> Self {
        Self { rates: Action::ALL.into_iter().map(|a| (a, None)).collect(), sockets_per_user: None }
    }

    pub fn rate(&self, action: Action) -> Option<Rate> {
        self.rates.get(&action).copied().flatten()
    }

    pub fn set(&mut self, action: Action, rate: Option<Rate>) {
        self.rates.insert(action, rate);
    }

    /// Applies `NAME=BURST/PERIOD` or `NAME=off` (`all=off` turns every rate off).
    pub fn apply(&mut self, setting: &str) -> Result<(), String> {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("{setting:?} is not NAME=BURST/PERIOD or NAME=off"))?;
        let (name, value) = (name.trim(), value.trim());
        let rate = if value.eq_ignore_ascii_case("off") { None } else { Some(value.parse()?) };
        if name == "all" && rate.is_none() {
            self.rates.values_mut().for_each(|rate| *rate = None);
            return Ok(());
        }
        let action = Action::from_name(name).ok_or_else(|| {
            let names: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
            format!("no limit is named {name:?}; the names are {}", names.join(", "))
        })?;
        self.set(action, rate);
        Ok(())
    }
}

/// Every limit of one node, with the cluster's counts when there are several nodes.
pub struct Limiter {
    buckets: HashMap<Action, Buckets<Subject>>,
    shared: Option<Arc<SharedLimits>>,
    sockets: Sockets,
}

impl Limiter {
    /// The limits of `settings`; with `redis`, checked against the cluster's counts too.
    /// `node` names this node's share of the cluster's socket counts.
    pub fn new(settings: &LimitSettings, redis: Option<redis::Client>, node: String) -> Self {
        let buckets = Action::ALL
            .into_iter()
            .filter_map(|action| Some((action, Buckets::new(settings.rate(action)?))))
            .collect();
        let shared = redis.map(|client| Arc::new(SharedLimits::new(RedisLink::new(client), node)));
        let sockets = Sockets::new(settings.sockets_per_user, shared.clone());
        Self { buckets, shared, sockets }
    }

    /// Takes `cost` (one action, or the bytes of an upload) from `subject`'s budget for
    /// `action`, or refuses with 429 and the time to wait. A refused action costs nothing.
    pub async fn check(&self, action: Action, subject: Subject, cost: u64) -> Result<(), Error> {
        let Some(buckets) = self.buckets.get(&action) else {
            return Ok(());
        };
        let refused = |retry_after| {
            metrics::counter!(crate::metrics::THROTTLED, "action" => action.name()).increment(1);
            Error::RateLimited { retry_after, what: action.what() }
        };
        buckets.take(&subject, cost, Instant::now()).map_err(refused)?;
        if let Some(shared) = &self.shared {
            match shared.take(action, subject, buckets.rate(), cost).await {
                Ok(Ok(())) => {}
                Ok(Err(retry_after)) => {
                    buckets.give_back(&subject, cost);
                    return Err(refused(retry_after));
                }
                // This node's own bucket has counted it already.
                Err(error) => tracing::debug!(%error, "the cluster's limits are unreachable"),
            }
        }
        Ok(())
    }

    /// Counts a WebSocket connection of `user`, or refuses it (429) when they hold as many
    /// as they may. The slot is given back when dropped.
    pub async fn open_socket(&self, user: UserId) -> Result<SocketSlot, Error> {
        self.sockets.open(user).await
    }

    /// Forgets full buckets, and keeps this node's share of the cluster's socket counts
    /// alive. Called every few seconds.
    pub async fn tend(&self) {
        let now = Instant::now();
        for buckets in self.buckets.values() {
            buckets.prune(now);
        }
        self.sockets.tend().await;
    }

    /// This node stops: its share of the cluster's socket counts goes at once.
    pub async fn leave(&self) {
        self.sockets.leave().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_change_one_rate_or_turn_them_off() {
        let mut settings = LimitSettings::default();
        settings.apply("message=5/1s").expect("valid");
        assert_eq!(settings.rate(Action::Message), Some(Rate::new(5, Duration::from_secs(1))));
        settings.apply("typing=off").expect("valid");
        assert_eq!(settings.rate(Action::Typing), None);
        assert_eq!(settings.rate(Action::Register), Some(Action::Register.default_rate()));
        assert!(settings.apply("messages=5/1s").is_err(), "an unknown name");
        assert!(settings.apply("message").is_err());
        assert!(settings.apply("message=fast").is_err());
        settings.apply("all=off").expect("valid");
        assert!(Action::ALL.iter().all(|action| settings.rate(*action).is_none()));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a = Subject::address("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = Subject::address("2001:db8:1:2:bbbb::9".parse().expect("ip"));
        let c = Subject::address("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Subject::address("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(mapped, Subject::Address("192.0.2.1".parse().expect("ip")));
        assert_eq!(mapped.to_string(), "address:192.0.2.1");
    }
}
