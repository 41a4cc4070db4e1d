//! The throttle on failed logins, per username at one address, per client address, and
//! per username from everywhere.
//!
//! Someone guessing at an account from one address slows only that address's attempts at
//! that account (the pair): the owner, signing in from elsewhere, is not held up by a
//! stranger's failures. The address's own count stops one address guessing across many
//! accounts, and the account's count (far more generous) stops guesses spread over many
//! addresses. A few failures are free (people mistype). After that each further failure doubles the
//! wait before the next attempt is even checked, up to a ceiling: guessing slows to a crawl,
//! while the owner of the account is delayed minutes at worst, never locked out for good.
//! While a key waits, attempts are answered 429 with Retry-After without looking at the
//! password, so waiting cannot be skipped by guessing right.
//!
//! An attempt counts as a failure from the moment it begins, under one lock with the check,
//! so that many guesses sent at once are throttled like guesses sent one after another; a
//! success then takes its count back (and clears the username). Records are forgotten after
//! a quiet period, and the number kept is capped, so the memory this takes is bounded.
//!
//! Time is passed in, so the logic is tested without clocks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one kind of key is throttled.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed before any wait.
    pub free_failures: u32,
    /// The first wait; each further failure doubles it.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
}

impl ThrottlePolicy {
    /// One username at one address: the guesser's own budget.
    pub const PER_PAIR: Self = Self {
        free_failures: 5,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(300),
        forget_after: Duration::from_secs(3600),
    };
    /// One username from every address together: only guesses from a hundred places in an
    /// hour reach it.
    pub const PER_USERNAME: Self = Self {
        free_failures: 100,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(300),
        forget_after: Duration::from_secs(3600),
    };
    pub const PER_ADDRESS: Self = Self {
        free_failures: 20,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(300),
        forget_after: Duration::from_secs(3600),
    };

    fn delay_after(&self, failures: u32) -> Duration {
        let excess = failures.saturating_sub(self.free_failures);
        if excess == 0 {
            return Duration::ZERO;
        }
        let doublings = (excess - 1).min(20);
        self.first_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }
}

/// The most records kept per kind of key. Past it, records that no longer impose a wait
/// are dropped; if that is not enough, all are (an attacker with that many addresses is
/// beyond what a per-address count can stop anyway).
const MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
}

struct Records {
    policy: ThrottlePolicy,
    map: HashMap<String, Record>,
}

impl Records {
    fn new(policy: ThrottlePolicy) -> Self {
        Self { policy, map: HashMap::new() }
    }

    fn live(&self, key: &str, now: Instant) -> Option<Record> {
        self.map.get(key).copied().filter(|record| !self.is_forgotten(record, now))
    }

    fn wait(&self, key: &str, now: Instant) -> Duration {
        self.live(key, now).map_or(Duration::ZERO, |record| {
            let until = record.last_failure + self.policy.delay_after(record.failures);
            until.saturating_duration_since(now)
        })
    }

    fn record_failure(&mut self, key: &str, now: Instant) {
        if self.map.len() >= MAX_RECORDS && !self.map.contains_key(key) {
            self.make_room(now);
        }
        let failures = self.live(key, now).map_or(0, |record| record.failures);
        self.map.insert(key.to_owned(), Record { failures: failures + 1, last_failure: now });
    }

    fn take_back_failure(&mut self, key: &str) {
        if let Some(record) = self.map.get_mut(key) {
            record.failures = record.failures.saturating_sub(1);
        }
    }

    fn make_room(&mut self, now: Instant) {
        let policy = self.policy;
        self.map
            .retain(|_, record| record.last_failure + policy.delay_after(record.failures) > now);
        if self.map.len() > MAX_RECORDS / 2 {
            self.map.clear();
        }
    }

    fn prune(&mut self, now: Instant) {
        let policy = self.policy;
        self.map.retain(|_, record| {
            now.saturating_duration_since(record.last_failure) < policy.forget_after
        });
    }

    fn is_forgotten(&self, record: &Record, now: Instant) -> bool {
        now.saturating_duration_since(record.last_failure) >= self.policy.forget_after
    }
}

struct State {
    pairs: Records,
    usernames: Records,
    addresses: Records,
}

/// The key of a username at an address.
pub fn pair_key(username: &str, address: &str) -> String {
    format!("{username}@{address}")
}

/// The key of a trusted device, among the pairs (a device is one account at one place).
pub fn device_key(device: &str) -> String {
    format!("device:{device}")
}

/// The three policies, in the order the throttle applies them.
#[derive(Debug, Clone, Copy)]
pub struct Policies {
    pub pair: ThrottlePolicy,
    pub username: ThrottlePolicy,
    pub address: ThrottlePolicy,
}

impl Policies {
    pub const DEFAULT: Self = Self {
        pair: ThrottlePolicy::PER_PAIR,
        username: ThrottlePolicy::PER_USERNAME,
        address: ThrottlePolicy::PER_ADDRESS,
    };
}

pub struct LoginThrottle {
    state: Mutex<State>,
}

impl LoginThrottle {
    pub fn new(policies: Policies) -> Self {
        let state = State {
            pairs: Records::new(policies.pair),
            usernames: Records::new(policies.username),
            addresses: Records::new(policies.address),
        };
        Self { state: Mutex::new(state) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a few map operations that cannot panic halfway in a way that
        // matters: a poisoned throttle is still a usable throttle.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Begins a login attempt: `Err(wait)` if any of its keys must still wait; otherwise
    /// the attempt is counted as a failure until [`LoginThrottle::succeeded`] takes it
    /// back. `username` is the canonical name, or `None` for a name that cannot exist (it
    /// then counts against the address only).
    pub fn begin(
        &self,
        username: Option<&str>,
        address: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut state = self.state();
        let pair = username.map(|username| pair_key(username, address));
        let wait = [
            pair.as_deref().map_or(Duration::ZERO, |pair| state.pairs.wait(pair, now)),
            username.map_or(Duration::ZERO, |username| state.usernames.wait(username, now)),
            state.addresses.wait(address, now),
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        if let (Some(pair), Some(username)) = (pair, username) {
            state.pairs.record_failure(&pair, now);
            state.usernames.record_failure(username, now);
        }
        state.addresses.record_failure(address, now);
        Ok(())
    }

    /// The attempt begun for these keys succeeded: the username at this address starts
    /// afresh, and the username's and the address's counts are taken back.
    pub fn succeeded(&self, username: &str, address: &str) {
        let mut state = self.state();
        state.pairs.map.remove(&pair_key(username, address));
        state.usernames.take_back_failure(username);
        state.addresses.take_back_failure(address);
    }

    /// Begins a login attempt from a device the account's owner signed in with before
    /// (`auth::device`): only that device's own failures count, as a username's at one
    /// address do, so that nobody else's guesses hold it up.
    pub fn begin_device(&self, device: &str, now: Instant) -> Result<(), Duration> {
        let mut state = self.state();
        let key = device_key(device);
        let wait = state.pairs.wait(&key, now);
        if !wait.is_zero() {
            return Err(wait);
        }
        state.pairs.record_failure(&key, now);
        Ok(())
    }

    /// The attempt begun by [`LoginThrottle::begin_device`] succeeded.
    pub fn device_succeeded(&self, device: &str) {
        self.state().pairs.map.remove(&device_key(device));
    }

    /// Drops records that have been quiet long enough to be forgotten.
    pub fn prune(&self, now: Instant) {
        let mut state = self.state();
        state.pairs.prune(now);
        state.usernames.prune(now);
        state.addresses.prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(Policies::DEFAULT)
    }

    #[test]
    fn free_failures_then_doubling_waits() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..6 {
            assert_eq!(t.begin(Some("alice"), "ip", start), Ok(()));
        }
        // Five failures were free; the sixth started a wait of one second.
        assert_eq!(t.begin(Some("alice"), "ip", start), Err(Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert_eq!(t.begin(Some("alice"), "ip", later), Ok(()));
        assert_eq!(t.begin(Some("alice"), "ip", later), Err(Duration::from_secs(2)));
        assert_eq!(t.begin(Some("bob"), "other-ip", later), Ok(()), "other keys go on");
    }

    #[test]
    fn concurrent_attempts_count_as_they_begin() {
        // Attempts that begin before any of them finishes are counted all the same.
        let t = throttle();
        let now = Instant::now();
        let admitted = (0..40).filter(|_| t.begin(Some("alice"), "ip", now).is_ok()).count();
        assert_eq!(admitted, 6);
    }

    #[test]
    fn waits_are_capped() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..60 {
            t.state().pairs.record_failure(&pair_key("alice", "ip"), now);
        }
        let wait = t.begin(Some("alice"), "ip", now).err();
        assert_eq!(wait, Some(Duration::from_secs(300)));
    }

    #[test]
    fn a_guesser_at_one_address_does_not_hold_up_the_owner_at_another() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..6 {
            assert_eq!(t.begin(Some("alice"), "attacker", now), Ok(()));
        }
        assert!(t.begin(Some("alice"), "attacker", now).is_err(), "the guesser waits");
        assert_eq!(t.begin(Some("alice"), "home", now), Ok(()), "the owner does not");
    }

    #[test]
    fn guesses_from_a_hundred_addresses_make_the_account_wait_everywhere() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..101 {
            assert_eq!(t.begin(Some("alice"), &format!("10.0.0.{i}"), now), Ok(()), "{i}");
        }
        assert!(t.begin(Some("alice"), "home", now).is_err());
        assert_eq!(t.begin(Some("bob"), "home", now), Ok(()), "other accounts go on");
    }

    #[test]
    fn the_address_is_throttled_across_usernames_and_names_that_cannot_exist() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..21 {
            let name = format!("user{i}");
            assert!(t.begin(Some(&name), "ip", now).is_ok());
        }
        assert!(t.begin(Some("someone-new"), "ip", now).is_err());
        assert!(t.begin(None, "ip", now).is_err());
        assert_eq!(t.begin(Some("someone-new"), "another-ip", now), Ok(()));
    }

    #[test]
    fn success_clears_the_username_and_gives_back_the_address_count() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..20 {
            t.begin(None, "ip", now).ok();
        }
        assert_eq!(t.begin(Some("alice"), "ip", now), Ok(()));
        t.succeeded("alice", "ip");
        assert_eq!(t.begin(Some("alice"), "ip", now), Ok(()), "the success did not count");
    }

    #[test]
    fn a_trusted_device_passes_a_locked_account_and_address_but_not_its_own_failures() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..101 {
            t.begin(Some("alice"), &format!("10.0.0.{i}"), now).ok();
        }
        for _ in 0..30 {
            t.begin(None, "home", now).ok();
        }
        assert!(t.begin(Some("alice"), "home", now).is_err(), "account and address locked");
        for _ in 0..6 {
            assert_eq!(t.begin_device("laptop", now), Ok(()));
        }
        assert!(t.begin_device("laptop", now).is_err(), "its own failures count");
        assert_eq!(t.begin_device("phone", now), Ok(()));
        t.device_succeeded("phone");
        assert_eq!(t.begin_device("phone", now), Ok(()));
    }

    #[test]
    fn quiet_time_forgets_and_the_records_stay_bounded() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..8 {
            t.begin(Some("bob"), "ip3", now).ok();
        }
        let much_later = now + Duration::from_secs(3600);
        assert_eq!(t.begin(Some("bob"), "ip3", much_later), Ok(()));
        t.prune(much_later + Duration::from_secs(3600));
        assert!(t.state().usernames.map.is_empty());
        assert!(t.state().pairs.map.is_empty());

        for i in 0..(MAX_RECORDS + 10) {
            t.begin(None, &format!("10.0.{}.{}", i / 256, i % 256), now).ok();
        }
        assert!(t.state().addresses.map.len() <= MAX_RECORDS);
    }
}
