//! A reconnect storm inside a fan-out step: at a chosen moment a share of the receiving
//! connections (never the senders) drop their sockets at once and reconnect at once, each
//! resuming with `sync` from the last seq it saw in its room, as a client does after a
//! network blip, and then go on receiving live.
//!
//! Each storm connection keeps a ledger of its room by seq, as docs/api.md tells a client
//! to resume: what it saw before the drop, what the sync sent and what came live after
//! are one timeline, de-duplicated by seq. Loss and order are judged on that timeline; a
//! seq the server sent twice is counted as a figure, not judged. The connections that stay
//! record when each delivery they get was sent, so that once the step knows when the storm
//! ended their latency can be split into before, during and after it.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::clients::{Marker, Shared, Socket, Target};
use crate::report::{Costs, Latency};
use crate::setup::Seat;
use crate::stats::{self, Arrival, Order};

/// One drop: which step's storm it is, when the sockets go, and how long they stay away.
#[derive(Debug, Clone, Copy)]
pub struct Blip {
    pub step: usize,
    pub at_us: u64,
    pub away_us: u64,
}

/// The storm of a run: who takes part, and the signal that drops them.
pub struct Storm {
    /// The connections that take part, by index.
    pub seats: Range<usize>,
    blips: watch::Sender<Option<Blip>>,
    /// Each storm connection's room and ledger, read between steps.
    ledgers: Mutex<Vec<(usize, Arc<Mutex<Ledger>>)>>,
}

impl Storm {
    pub fn new(seats: Range<usize>) -> Self {
        Self { seats, blips: watch::Sender::new(None), ledgers: Mutex::default() }
    }

    pub fn includes(&self, index: usize) -> bool {
        self.seats.contains(&index)
    }

    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Drops every storm connection's socket now.
    pub fn blip(&self, blip: Blip) {
        self.blips.send_replace(Some(blip));
    }

    /// The state of a new storm connection for `seat`, and the signal it waits on.
    pub fn client(&self, target: &Target, seat: &Seat) -> (Client, watch::Receiver<Option<Blip>>) {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        lock(&self.ledgers).push((seat.room, ledger.clone()));
        let client = Client {
            target: target.clone(),
            seat: seat.clone(),
            ledger,
            current: None,
            waiting_for_ready: false,
        };
        (client, self.blips.subscribe())
    }

    /// The messages of their rooms the storm connections have not seen, given how many
    /// each room's sender has numbered.
    pub fn missing(&self, sent_in_room: impl Fn(usize) -> u64) -> u64 {
        lock(&self.ledgers)
            .iter()
            .map(|(room, ledger)| lock(ledger).missing(sent_in_room(*room)))
            .sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one step's storm did, counted by its connections as they go.
pub struct StormTally {
    to_ready: Vec<Mutex<Histogram<u64>>>,
    to_synced: Vec<Mutex<Histogram<u64>>>,
    pub reconnected: AtomicU64,
    pub synced: AtomicU64,
    pub failed: AtomicU64,
    pub recovered: AtomicU64,
    pub sync_messages: AtomicU64,
    pub sent_twice: AtomicU64,
    pub out_of_order: AtomicU64,
    /// When the last storm connection had its `sync.done`.
    pub last_synced_us: AtomicU64,
    /// The deliveries to connections outside the storm: (scheduled µs, latency µs), to be
    /// split once the storm's end is known.
    others: Vec<Mutex<Vec<(u64, u64)>>>,
}

impl StormTally {
    pub fn new() -> Self {
        Self {
            to_ready: stats::sharded(),
            to_synced: stats::sharded(),
            reconnected: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            sync_messages: AtomicU64::new(0),
            sent_twice: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            last_synced_us: AtomicU64::new(0),
            others: (0..stats::SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// A delivery to a connection outside the storm.
    pub fn record_other(&self, shard: usize, scheduled_us: u64, now_us: u64) {
        lock(&self.others[shard % stats::SHARDS])
            .push((scheduled_us, now_us.saturating_sub(scheduled_us)));
    }

    /// The storm connections that are done: synced, or failed to come back.
    pub fn done(&self) -> u64 {
        self.synced.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    /// The outside connections' latencies of messages sent from `from_us`, split at
    /// `bounds` (the drop and the storm's end): before, during, after. The samples are
    /// consumed.
    fn others_split(&self, from_us: u64, bounds: (u64, u64)) -> [Histogram<u64>; 3] {
        let mut split = [stats::histogram(), stats::histogram(), stats::histogram()];
        for shard in &self.others {
            for (scheduled, latency) in std::mem::take(&mut *lock(shard)) {
                if scheduled < from_us {
                    continue;
                }
                let phase = usize::from(scheduled >= bounds.0) + usize::from(scheduled >= bounds.1);
                split[phase].saturating_record(latency.max(1));
            }
        }
        split
    }
}

/// The storm's window in a step, as the step saw it.
pub struct Window {
    pub blip: Blip,
    /// When the last storm connection was synced, or when the step stopped waiting.
    pub end_us: u64,
    /// The server's and the generator's costs from the drop to the end.
    pub costs: Costs,
}

/// One step's storm, for the report.
#[derive(Debug, Serialize)]
pub struct StormStep {
    pub connections: usize,
    /// Seconds into the step's counted time when the sockets dropped.
    pub drop_at_secs: f64,
    /// How long they stayed away before reconnecting.
    pub away_ms: f64,
    /// From the drop until the last of them had `sync.done` (or the step stopped waiting).
    pub duration_ms: f64,
    /// Storm connections that had `ready` again, that had `sync.done`, and that could not
    /// reconnect.
    pub reconnected: u64,
    pub synced: u64,
    pub failed: u64,
    /// From the drop to `ready`, and to `sync.done`.
    pub to_ready: Latency,
    pub to_sync_done: Latency,
    /// Messages the syncs brought that their connections had not seen, and every message
    /// the syncs sent.
    pub recovered: u64,
    pub sync_messages: u64,
    /// Messages the server sent a storm connection twice (by seq); a client drops the
    /// second.
    pub sent_twice: u64,
    /// Messages of their rooms that storm connections never saw (counted once the step's
    /// deliveries have drained), and messages that came out of order: a sync's or the live
    /// stream's seqs going back, or a seq out of step with the sender's numbering.
    pub lost: u64,
    pub out_of_order: u64,
    /// Live delivery latency of the connections outside the storm, by when the message was
    /// sent: before the drop, from the drop to the storm's end, after.
    pub others_before: Latency,
    pub others_during: Latency,
    pub others_after: Latency,
    /// From the drop to the storm's end.
    pub costs: Costs,
}

impl StormStep {
    /// The report of `tally`'s storm in `window`; `measured_from_us` starts the step's
    /// counted time, and `lost` is what the ledgers found missing in this step.
    pub fn of(
        tally: &StormTally,
        window: &Window,
        measured_from_us: u64,
        connections: usize,
        lost: u64,
    ) -> Self {
        let blip = window.blip;
        let [before, during, after] =
            tally.others_split(measured_from_us, (blip.at_us, window.end_us));
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Self {
            connections,
            drop_at_secs: blip.at_us.saturating_sub(measured_from_us) as f64 / 1e6,
            away_ms: blip.away_us as f64 / 1e3,
            duration_ms: window.end_us.saturating_sub(blip.at_us) as f64 / 1e3,
            reconnected: get(&tally.reconnected),
            synced: get(&tally.synced),
            failed: get(&tally.failed),
            to_ready: Latency::of(&stats::merged(&tally.to_ready)),
            to_sync_done: Latency::of(&stats::merged(&tally.to_synced)),
            recovered: get(&tally.recovered),
            sync_messages: get(&tally.sync_messages),
            sent_twice: get(&tally.sent_twice),
            lost,
            out_of_order: get(&tally.out_of_order),
            others_before: Latency::of(&before),
            others_during: Latency::of(&during),
            others_after: Latency::of(&after),
            costs: window.costs,
        }
    }
}

/// A storm connection's state beside its socket, kept across reconnects.
pub struct Client {
    target: Target,
    seat: Seat,
    ledger: Arc<Mutex<Ledger>>,
    /// The latest drop, once there has been one.
    current: Option<Blip>,
    /// Reconnected, and `ready` has not come yet.
    waiting_for_ready: bool,
}

impl Client {
    /// Waits out the time away after `blip` and opens a new socket. The old one must be
    /// gone already: dropped, with no close frame, as a dropped network leaves it.
    pub async fn reconnect(&mut self, blip: Blip, index: usize, shared: &Shared) -> Result<Socket> {
        self.current = Some(blip);
        self.waiting_for_ready = true;
        tokio::time::sleep_until(shared.clock.at(blip.at_us + blip.away_us).into()).await;
        let socket = crate::clients::connect(&self.target, index, &self.seat).await;
        if socket.is_err() {
            shared.steps[blip.step].storm.failed.fetch_add(1, Ordering::Relaxed);
        }
        socket
    }

    /// Counts one frame from the server; returns a frame to send back (the `sync` after a
    /// reconnect's `ready`).
    pub fn arrived(&mut self, text: &str, index: usize, shared: &Shared) -> Option<String> {
        let now = shared.clock.now_us();
        if text.starts_with(r#"{"type":"ready""#) {
            return self.ready(text, index, now, shared);
        }
        if text.starts_with(r#"{"type":"sync.done""#) {
            let ended = lock(&self.ledger).end_sync();
            if let (true, Some(blip)) = (ended, self.current) {
                let tally = &shared.steps[blip.step].storm;
                stats::record_in(&tally.to_synced, index, now.saturating_sub(blip.at_us));
                tally.last_synced_us.fetch_max(now, Ordering::Relaxed);
                tally.synced.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        }
        if text.starts_with(r#"{"type":"error""#) {
            shared.error_frames.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if !text.starts_with(r#"{"type":"message.created""#) {
            return None;
        }
        let (Some(seq), Some(marker)) = (seq_of(text), Marker::find(text)) else { return None };
        let tally = shared.steps.get(marker.step)?;
        let applied = lock(&self.ledger).apply(seq, marker.n);
        let storm = &shared.steps[self.current.map_or(marker.step, |blip| blip.step)].storm;
        if applied.part == Part::Sync {
            storm.sync_messages.fetch_add(1, Ordering::Relaxed);
        }
        if !applied.new {
            storm.sent_twice.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if applied.out_of_order {
            storm.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        tally.delivered.fetch_add(1, Ordering::Relaxed);
        match applied.part {
            Part::Live => tally.record_delivery(index, marker.scheduled_us, now),
            Part::Sync => {
                storm.recovered.fetch_add(1, Ordering::Relaxed);
            }
        }
        None
    }

    /// `ready`: the first starts the ledger at the room's `last_seq`; one after a reconnect
    /// is timed and answered with a `sync` from the last seq seen.
    fn ready(&mut self, text: &str, index: usize, now: u64, shared: &Shared) -> Option<String> {
        let last_seq = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|ready| {
                ready["rooms"]
                    .as_array()?
                    .iter()
                    .find(|room| room["room_id"] == self.seat.room_id.as_str())?["last_seq"]
                    .as_u64()
            })
            .unwrap_or(0);
        let mut ledger = lock(&self.ledger);
        let Some(blip) = self.current.filter(|_| self.waiting_for_ready) else {
            ledger.start(last_seq);
            return None;
        };
        self.waiting_for_ready = false;
        let tally = &shared.steps[blip.step].storm;
        tally.reconnected.fetch_add(1, Ordering::Relaxed);
        stats::record_in(&tally.to_ready, index, now.saturating_sub(blip.at_us));
        let from = ledger.resume_from();
        ledger.begin_sync(from, last_seq);
        let sync = serde_json::json!({
            "type": "sync",
            "since": { self.seat.room_id.as_str(): from },
            "id": format!("storm-{}", blip.step),
        });
        Some(sync.to_string())
    }
}

/// The seq of an event frame: its first `"seq":` is the event's own.
fn seq_of(text: &str) -> Option<u64> {
    let at = text.find(r#""seq":"#)? + r#""seq":"#.len();
    let digits = text[at..].find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len() - at);
    text[at..at + digits].parse().ok()
}

/// Which part of a reconnect an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Live,
    /// Within a sync's range: after the seq it started from, up to `ready`'s `last_seq`.
    Sync,
}

/// What one event did to a ledger.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    pub part: Part,
    /// False if its seq was seen already.
    pub new: bool,
    pub out_of_order: bool,
}

/// A sync under way: it started from `from` and covers up to `up_to`.
#[derive(Debug, Clone, Copy)]
struct SyncRange {
    from: u64,
    up_to: u64,
    last: u64,
}

/// One connection's view of its room, by seq, across reconnects.
#[derive(Default)]
pub struct Ledger {
    /// The seqs seen, once each, whatever part they came in.
    seen: Order,
    started: bool,
    /// The highest sender's number seen, for messages never seen at the end of the room.
    highest_n: u64,
    /// seq minus the sender's number: constant, since only the sender writes in the room
    /// and its messages are stored in the order sent.
    offset: Option<i64>,
    last_live: u64,
    sync: Option<SyncRange>,
}

impl Ledger {
    /// The first `ready`: the room's events start after `last_seq`.
    fn start(&mut self, last_seq: u64) {
        if !self.started {
            self.seen = Order::starting_after(last_seq);
            self.last_live = last_seq;
            self.started = true;
        }
    }

    /// Where to resume: the highest seq seen, or while a sync is under way the seq it
    /// started from (docs/api.md: live events after `ready` mix with a sync, and resuming
    /// from them would skip the rest of it).
    fn resume_from(&self) -> u64 {
        self.sync.map_or(self.seen.highest(), |sync| sync.from)
    }

    fn begin_sync(&mut self, from: u64, up_to: u64) {
        self.sync = Some(SyncRange { from, up_to, last: from });
    }

    /// True if a sync was under way.
    fn end_sync(&mut self) -> bool {
        self.sync.take().is_some()
    }

    fn apply(&mut self, seq: u64, n: u64) -> Applied {
        let (part, went_back) = match &mut self.sync {
            Some(sync) if seq <= sync.up_to => {
                let back = seq <= sync.last;
                sync.last = sync.last.max(seq);
                (Part::Sync, back)
            }
            _ => {
                let back = seq <= self.last_live;
                self.last_live = self.last_live.max(seq);
                (Part::Live, back)
            }
        };
        let new = self.seen.arrive(seq) != Arrival::Duplicate;
        if new {
            self.highest_n = self.highest_n.max(n);
        }
        let offset = seq as i64 - n as i64;
        let out_of_step = *self.offset.get_or_insert(offset) != offset;
        Applied { part, new, out_of_order: new && (went_back || out_of_step) }
    }

    /// Messages not seen, of the `sent` the room's sender numbered.
    fn missing(&self, sent: u64) -> u64 {
        self.seen.holes() + sent.saturating_sub(self.highest_n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_is_read_from_an_event_frame() {
        let frame = r#"{"type":"message.created","room_id":"r","seq":42,"message":{"seq":42}}"#;
        assert_eq!(seq_of(frame), Some(42));
        assert_eq!(seq_of(r#"{"type":"ready"}"#), None);
    }

    #[test]
    fn a_ledger_joins_live_and_sync_by_seq() {
        let mut ledger = Ledger::default();
        // The room had 2 events before; messages 1 to 3 are seqs 3 to 5.
        ledger.start(2);
        for (seq, n) in [(3, 1), (4, 2)] {
            assert_eq!(
                ledger.apply(seq, n),
                Applied { part: Part::Live, new: true, out_of_order: false }
            );
        }
        // Dropped after 4; back with ready at 7: the sync sends 5 to 7, live goes on at 8.
        assert_eq!(ledger.resume_from(), 4);
        ledger.begin_sync(4, 7);
        assert_eq!(ledger.apply(8, 6).part, Part::Live);
        assert_eq!(
            ledger.apply(5, 3),
            Applied { part: Part::Sync, new: true, out_of_order: false }
        );
        assert_eq!(ledger.resume_from(), 4, "a sync under way resumes from where it started");
        assert_eq!(ledger.apply(6, 4).part, Part::Sync);
        assert!(!ledger.apply(6, 4).new, "a seq sent twice is dropped");
        assert_eq!(ledger.missing(6), 1, "seq 7 has not come yet");
        assert!(!ledger.apply(7, 5).out_of_order);
        assert!(ledger.end_sync());
        assert_eq!(ledger.missing(6), 0);
        assert_eq!(ledger.missing(7), 1, "the sender's seventh never came");
        assert_eq!(ledger.resume_from(), 8);
        assert!(!ledger.apply(7, 5).new, "after the sync, an old seq is a duplicate");
        assert!(ledger.apply(10, 9).out_of_order, "a seq out of step with the numbering");
    }
}
