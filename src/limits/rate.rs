//! Rates with bursts, and the in-process bucket of every subject.
//!
//! Each subject (a user, a client address) of each action has a bucket of `burst` tokens
//! that refills at `burst` per `period`; an action takes `cost` tokens (one, or the bytes
//! of an upload) or is refused with the time until it would fit. The bucket is kept as one
//! instant, the generic cell rate algorithm's "theoretical arrival time": when the bucket
//! is next full, plus what it lacks. That is all a subject costs, and a subject whose
//! bucket is full again needs no record at all, so idle subjects are dropped.
//!
//! Time is passed in, so the logic is tested without clocks. The cluster's buckets in
//! Redis (`shared.rs`) follow the same rule in a Lua script.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `burst` at once, refilled at `burst` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u64,
    pub period: Duration,
}

impl Rate {
    pub const fn new(burst: u64, period: Duration) -> Self {
        Self { burst, period }
    }

    /// How long one token takes to come back, in nanoseconds (at least one).
    pub fn interval_nanos(&self) -> u128 {
        (self.period.as_nanos() / u128::from(self.burst.max(1))).max(1)
    }

    /// The cost an action is charged: never more than the bucket holds, so that a single
    /// action larger than the burst waits for a full bucket rather than for ever.
    pub fn clamp(&self, cost: u64) -> u64 {
        cost.min(self.burst)
    }

    /// Takes `cost` from the bucket whose theoretical arrival time is `tat`: the new one,
    /// or the wait until the cost would fit.
    pub fn take(&self, tat: Option<Instant>, cost: u64, now: Instant) -> Result<Instant, Duration> {
        let interval = self.interval_nanos();
        let start = tat.map_or(now, |tat| tat.max(now));
        let new_tat = start + nanos(interval * u128::from(self.clamp(cost)));
        // The bucket may run at most `burst` tokens ahead of now.
        let horizon = now + nanos(interval * u128::from(self.burst));
        if new_tat > horizon { Err(new_tat - horizon) } else { Ok(new_tat) }
    }
}

fn nanos(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.period.as_secs();
        let period = match seconds {
            s if s % 86_400 == 0 => format!("{}d", s / 86_400),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
        write!(f, "{}/{period}", self.burst)
    }
}

/// `BURST/PERIOD`: `30/10s`, `20/1h`, `1G/1d` (K, M and G are powers of 1024).
impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || format!("{text:?} is not BURST/PERIOD, such as 30/10s or 1G/1d");
        let (burst, period) = text.trim().split_once('/').ok_or_else(wrong)?;
        let burst = parse_count(burst.trim()).ok_or_else(wrong)?;
        let period = parse_period(period.trim()).ok_or_else(wrong)?;
        if burst == 0 || period.is_zero() {
            return Err(format!("{text:?}: the burst and the period must be above zero"));
        }
        Ok(Self { burst, period })
    }
}

fn parse_count(text: &str) -> Option<u64> {
    let (digits, unit) = split_unit(text);
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

fn parse_period(text: &str) -> Option<Duration> {
    let (digits, unit) = split_unit(text);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    let count = if digits.is_empty() { 1 } else { digits.parse::<u64>().ok()? };
    Some(Duration::from_secs(count.checked_mul(scale)?))
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(at)
}

/// The most subjects kept per action. Past it, subjects whose bucket is full again are
/// dropped; if that is not enough, all are (a flood from that many subjects at once is
/// beyond what a per-subject rate can stop anyway).
const MAX_SUBJECTS: usize = 100_000;

/// The in-process buckets of one action.
pub struct Buckets<K> {
    rate: Rate,
    tats: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rate: Rate) -> Self {
        Self { rate, tats: Mutex::new(HashMap::new()) }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes `cost` tokens from `subject`'s bucket, or says how long until they would fit.
    pub fn take(&self, subject: &K, cost: u64, now: Instant) -> Result<(), Duration> {
        // A few map operations that cannot leave the map half-changed: a poisoned lock
        // still guards a usable map.
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tat = self.rate.take(tats.get(subject).copied(), cost, now)?;
        if tats.len() >= MAX_SUBJECTS && !tats.contains_key(subject) {
            make_room(&mut tats, now);
        }
        tats.insert(subject.clone(), tat);
        Ok(())
    }

    /// Gives back what [`Buckets::take`] took, when the action was refused after all (by
    /// the cluster's count).
    pub fn give_back(&self, subject: &K, cost: u64) {
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = tats.get_mut(subject) {
            let taken = nanos(self.rate.interval_nanos() * u128::from(self.rate.clamp(cost)));
            *tat = tat.checked_sub(taken).unwrap_or(*tat);
        }
    }

    /// Drops the subjects whose bucket is full again: they are as if never seen.
    pub fn prune(&self, now: Instant) {
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tats.retain(|_, tat| *tat > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tats.lock().map_or(0, |tats| tats.len())
    }
}

/// Drops the subjects whose bucket is full again; if half the map is still taken, keeps
/// the half furthest from full (those a flood of new subjects must not set free).
fn make_room<K: Hash + Eq>(tats: &mut HashMap<K, Instant>, now: Instant) {
    tats.retain(|_, tat| *tat > now);
    let keep = MAX_SUBJECTS / 2;
    if tats.len() > keep {
        let mut all: Vec<(K, Instant)> = tats.drain().collect();
        // Furthest from full first; ties cut anywhere.
        all.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1));
        all.truncate(keep);
        tats.extend(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().expect("a valid rate")
    }

    #[test]
    fn rates_parse_with_units_and_show_as_written() {
        assert_eq!(rate("30/10s"), Rate::new(30, Duration::from_secs(10)));
        assert_eq!(rate("20/1h"), Rate::new(20, Duration::from_secs(3600)));
        assert_eq!(rate(" 1G / 1d "), Rate::new(1 << 30, Duration::from_secs(86_400)));
        assert_eq!(rate("5/m"), Rate::new(5, Duration::from_secs(60)));
        for bad in ["", "30", "30/", "/10s", "0/1s", "1/0s", "x/1s", "1/1w", "1/-1s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        for text in ["30/10s", "20/1h", "1073741824/1d", "7/2m"] {
            assert_eq!(rate(text).to_string(), text);
        }
    }

    #[test]
    fn a_burst_then_one_token_per_interval() {
        let buckets = Buckets::new(rate("3/3s"));
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(&"alice", 1, now), Ok(()));
        }
        assert_eq!(buckets.take(&"alice", 1, now), Err(Duration::from_secs(1)));
        assert_eq!(buckets.take(&"bob", 1, now), Ok(()), "others have their own bucket");
        let later = now + Duration::from_millis(400);
        assert_eq!(buckets.take(&"alice", 1, later), Err(Duration::from_millis(600)));
        let second = now + Duration::from_secs(1);
        assert_eq!(buckets.take(&"alice", 1, second), Ok(()));
        assert!(buckets.take(&"alice", 1, second).is_err(), "one token came back, not two");
    }

    #[test]
    fn a_steady_pace_under_the_rate_is_never_refused() {
        let buckets = Buckets::new(rate("30/10s"));
        let start = Instant::now();
        // Three a second for ten minutes: exactly the rate.
        for i in 0..1800u64 {
            let now = start + Duration::from_millis(i * 1000 / 3);
            assert_eq!(buckets.take(&"typist", 1, now), Ok(()), "at {i}");
        }
    }

    #[test]
    fn refused_actions_cost_nothing() {
        let buckets = Buckets::new(rate("2/2s"));
        let now = Instant::now();
        buckets.take(&"a", 2, now).expect("the burst");
        for _ in 0..100 {
            assert!(buckets.take(&"a", 1, now).is_err());
        }
        assert_eq!(buckets.take(&"a", 1, now + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn costs_weigh_and_a_cost_over_the_burst_waits_for_a_full_bucket() {
        let buckets = Buckets::new(rate("1000/1000s"));
        let now = Instant::now();
        assert_eq!(buckets.take(&"a", 600, now), Ok(()));
        assert_eq!(buckets.take(&"a", 600, now), Err(Duration::from_secs(200)));
        assert_eq!(buckets.take(&"a", 400, now), Ok(()));
        let full = now + Duration::from_secs(1000);
        assert_eq!(buckets.take(&"a", 5000, full), Ok(()), "clamped to the burst");
        assert_eq!(buckets.take(&"a", 1, full), Err(Duration::from_secs(1)));
    }

    #[test]
    fn full_buckets_are_forgotten_and_the_count_stays_bounded() {
        let buckets = Buckets::new(rate("2/1s"));
        let now = Instant::now();
        buckets.take(&1u32, 1, now).expect("first");
        buckets.prune(now + Duration::from_secs(1));
        assert_eq!(buckets.len(), 0);
        // One subject far from full, then a flood of fresh ones: it stays held.
        buckets.take(&u32::MAX, 2, now).expect("its burst");
        for subject in 0..(MAX_SUBJECTS as u32 + 10) {
            buckets.take(&subject, 1, now).expect("fresh subjects");
        }
        assert!(buckets.len() <= MAX_SUBJECTS);
        assert!(buckets.take(&u32::MAX, 1, now).is_err(), "the flood did not set it free");
        buckets.give_back(&u32::MAX, 1);
        assert_eq!(buckets.take(&u32::MAX, 1, now), Ok(()), "given back");
    }
}
