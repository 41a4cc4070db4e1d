//! What the clients count while a step runs: deliveries (with loss, duplicates and order),
//! confirmations, and latencies in HdrHistograms.
//!
//! Every connection task records into the same [`Tally`]; histograms are sharded by
//! connection so that thousands of tasks rarely meet on one lock.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub const SHARDS: usize = 16;
/// Latencies are recorded in microseconds, up to a minute, to three significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Counters and histograms of one step.
pub struct Tally {
    /// When the step's measured part begins; messages scheduled earlier are warm-up and
    /// count for loss but not for latency.
    pub measure_from_us: AtomicU64,
    pub sent: AtomicU64,
    pub confirmed: AtomicU64,
    pub delivered: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_order: AtomicU64,
    pub errors: AtomicU64,
    /// What a reconnect storm in this step did (empty without one).
    pub storm: crate::storm::StormTally,
    delivery_latency: Vec<Mutex<Histogram<u64>>>,
    confirm_latency: Vec<Mutex<Histogram<u64>>>,
    sender_lag: Vec<Mutex<Histogram<u64>>>,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            measure_from_us: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            storm: crate::storm::StormTally::new(),
            delivery_latency: sharded(),
            confirm_latency: sharded(),
            sender_lag: sharded(),
        }
    }

    pub fn record_delivery(&self, shard: usize, scheduled_us: u64, now_us: u64) {
        if scheduled_us >= self.measure_from_us.load(Ordering::Relaxed) {
            record(&self.delivery_latency[shard % SHARDS], now_us.saturating_sub(scheduled_us));
        }
    }

    pub fn record_confirmation(&self, shard: usize, scheduled_us: u64, now_us: u64) {
        self.confirmed.fetch_add(1, Ordering::Relaxed);
        if scheduled_us >= self.measure_from_us.load(Ordering::Relaxed) {
            record(&self.confirm_latency[shard % SHARDS], now_us.saturating_sub(scheduled_us));
        }
    }

    /// How late a sender woke for a scheduled send.
    pub fn record_lag(&self, shard: usize, lag_us: u64) {
        record(&self.sender_lag[shard % SHARDS], lag_us);
    }

    pub fn lag(&self) -> Histogram<u64> {
        merged(&self.sender_lag)
    }

    pub fn delivery_latency(&self) -> Histogram<u64> {
        merged(&self.delivery_latency)
    }

    pub fn confirm_latency(&self) -> Histogram<u64> {
        merged(&self.confirm_latency)
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Empty latency histograms, one per shard.
pub fn sharded() -> Vec<Mutex<Histogram<u64>>> {
    (0..SHARDS).map(|_| Mutex::new(histogram())).collect()
}

/// An empty latency histogram.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// Records into the shard of `shard`.
pub fn record_in(shards: &[Mutex<Histogram<u64>>], shard: usize, latency_us: u64) {
    record(&shards[shard % SHARDS], latency_us);
}

fn record(histogram: &Mutex<Histogram<u64>>, latency_us: u64) {
    let mut histogram = histogram.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    histogram.saturating_record(latency_us.max(1));
}

pub fn merged(shards: &[Mutex<Histogram<u64>>]) -> Histogram<u64> {
    let mut all = histogram();
    for shard in shards {
        let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Same bounds, so adding cannot fail.
        let _ = all.add(&*shard);
    }
    all
}

/// Microseconds on one clock shared by every task of the run.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn now_us(self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn at(self, us: u64) -> Instant {
        self.0 + Duration::from_micros(us)
    }
}

/// One receiver's view of one sender's numbered messages: which arrived in order, which
/// skipped ahead (leaving holes), which filled a hole late, and which came twice.
#[derive(Default)]
pub struct Order {
    highest: u64,
    holes: BTreeSet<u64>,
}

/// What one arrival was.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// Arrived after a later one.
    Late,
    Duplicate,
}

impl Order {
    /// An order whose numbers start after `last`, as seqs start after `ready`'s `last_seq`.
    pub fn starting_after(last: u64) -> Self {
        Self { highest: last, holes: BTreeSet::new() }
    }

    /// The highest number that arrived (or the one it started after).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Numbers below the highest that have not arrived.
    pub fn holes(&self) -> u64 {
        self.holes.len() as u64
    }

    /// Messages are numbered from 1.
    pub fn arrive(&mut self, n: u64) -> Arrival {
        if n > self.highest {
            // Holes stay bounded: a receiver missing more than this many is broken, and
            // every further one counts as lost anyway.
            if self.holes.len() < 100_000 {
                self.holes.extend(self.highest + 1..n);
            }
            self.highest = n;
            Arrival::InOrder
        } else if self.holes.remove(&n) {
            Arrival::Late
        } else {
            Arrival::Duplicate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_tells_in_order_late_and_duplicate_arrivals() {
        let mut order = Order::default();
        assert_eq!(order.arrive(1), Arrival::InOrder);
        assert_eq!(order.arrive(2), Arrival::InOrder);
        assert_eq!(order.arrive(2), Arrival::Duplicate);
        assert_eq!(order.arrive(5), Arrival::InOrder);
        assert_eq!(order.arrive(3), Arrival::Late);
        assert_eq!(order.arrive(3), Arrival::Duplicate);
        assert_eq!(order.arrive(4), Arrival::Late);
        assert_eq!(order.arrive(1), Arrival::Duplicate);
    }

    #[test]
    fn latencies_before_the_measured_part_are_left_out() {
        let tally = Tally::new();
        tally.measure_from_us.store(1_000, Ordering::Relaxed);
        tally.record_delivery(0, 500, 900);
        tally.record_delivery(3, 1_500, 1_750);
        let latency = tally.delivery_latency();
        assert_eq!(latency.len(), 1);
        assert_eq!(latency.max(), 250);
    }
}
