//! The throttle on failed logins, per username and per client address.
//!
//! A few failures are free (people mistype). After that each further failure doubles the
//! wait before the next attempt is even checked, up to a ceiling: guessing slows to a crawl,
//! while the owner of the account is delayed minutes at worst, never locked out for good.
//! While a key waits, attempts are answered 429 with Retry-After without looking at the
//! password, so waiting cannot be skipped by guessing right. A success clears the
//! username's record; the address keeps its count. Records are forgotten after a quiet
//! period, which also bounds the memory this takes.
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
    pub const PER_USERNAME: Self = Self {
        free_failures: 5,
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

#[derive(Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

/// Records are pruned when the map grows past this, so an attacker cycling through
/// addresses cannot grow it without bound.
const PRUNE_ABOVE: usize = 100_000;

pub struct LoginThrottle {
    usernames: Throttle,
    addresses: Throttle,
}

impl LoginThrottle {
    pub fn new(per_username: ThrottlePolicy, per_address: ThrottlePolicy) -> Self {
        Self { usernames: Throttle::new(per_username), addresses: Throttle::new(per_address) }
    }

    /// `Err(wait)` when either key must still wait.
    pub fn check(&self, username: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let wait = self.usernames.wait(username, now).max(self.addresses.wait(address, now));
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn failed(&self, username: &str, address: &str, now: Instant) {
        self.usernames.failed(username, now);
        self.addresses.failed(address, now);
    }

    pub fn succeeded(&self, username: &str) {
        self.usernames.forget(username);
    }

    /// Drops records that have been quiet long enough to be forgotten.
    pub fn prune(&self, now: Instant) {
        self.usernames.prune(now);
        self.addresses.prune(now);
    }
}

struct Throttle {
    policy: ThrottlePolicy,
    records: Mutex<HashMap<String, Record>>,
}

impl Throttle {
    fn new(policy: ThrottlePolicy) -> Self {
        Self { policy, records: Mutex::new(HashMap::new()) }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // Every update is a single map operation, so a poisoned map is still consistent.
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait(&self, key: &str, now: Instant) -> Duration {
        match self.records().get(key) {
            Some(record) if !self.is_forgotten(record, now) => {
                record.blocked_until.saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    fn failed(&self, key: &str, now: Instant) {
        let mut records = self.records();
        if records.len() > PRUNE_ABOVE {
            records.retain(|_, record| !self.is_forgotten(record, now));
        }
        let record = records.entry(key.to_owned()).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if self.is_forgotten(record, now) {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        record.blocked_until = now + self.policy.delay_after(record.failures);
    }

    fn forget(&self, key: &str) {
        self.records().remove(key);
    }

    fn prune(&self, now: Instant) {
        self.records().retain(|_, record| !self.is_forgotten(record, now));
    }

    fn is_forgotten(&self, record: &Record, now: Instant) -> bool {
        now.saturating_duration_since(record.last_failure) >= self.policy.forget_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottlePolicy::PER_USERNAME, ThrottlePolicy::PER_ADDRESS)
    }

    #[test]
    fn free_failures_then_doubling_waits() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(t.check("alice", "ip", start), Ok(()));
            t.failed("alice", "ip", start);
        }
        assert_eq!(t.check("alice", "ip", start), Ok(()), "five failures are free");
        t.failed("alice", "ip", start);
        assert_eq!(t.check("alice", "ip", start), Err(Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert_eq!(t.check("alice", "ip", later), Ok(()));
        t.failed("alice", "ip", later);
        assert_eq!(t.check("alice", "ip", later), Err(Duration::from_secs(2)));
        assert_eq!(t.check("bob", "other-ip", later), Ok(()), "other keys are not affected");
    }

    #[test]
    fn waits_are_capped() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..60 {
            t.failed("alice", "ip", now);
        }
        assert_eq!(t.check("alice", "elsewhere", now), Err(Duration::from_secs(300)));
    }

    #[test]
    fn the_address_is_throttled_across_usernames() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..21 {
            t.failed(&format!("user{i}"), "ip", now);
        }
        assert!(t.check("someone-new", "ip", now).is_err());
        assert_eq!(t.check("someone-new", "another-ip", now), Ok(()));
    }

    #[test]
    fn success_clears_the_username_and_quiet_time_forgets() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..8 {
            t.failed("alice", "ip", now);
        }
        t.succeeded("alice");
        assert_eq!(t.check("alice", "ip2", now), Ok(()));
        for _ in 0..8 {
            t.failed("bob", "ip3", now);
        }
        let much_later = now + Duration::from_secs(3600);
        assert_eq!(t.check("bob", "ip3", much_later), Ok(()));
        t.prune(much_later);
        assert!(t.usernames.records().is_empty());
    }
}
