//! Fan-out: one sender per room sends at a fixed rate (open loop: the schedule never waits
//! for the server), step after step at higher rates, and every connection counts what
//! reaches it. A step is clean when nothing was lost, doubled or reordered.
//!
//! With `--storm N`, N receiving connections drop their sockets at once part way through
//! each step and reconnect at once, resuming with `sync` (see `storm`); the step then
//! reports their time back and what they recovered, and the others' latency before, during
//! and after the storm.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::clients::{Connection, Marker, Shared, send_frame};
use crate::report::{Costs, Latency};
use crate::setup::Layout;
use crate::stats::Tally;
use crate::storm::{Blip, Storm, StormStep, Window};
use crate::{Run, open_all, plan};

#[derive(Debug, Args)]
pub struct Options {
    /// WebSocket connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Rooms; connection i joins room i mod rooms, and each room's first connection sends.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Connections that share one user (as one person's tabs do).
    #[arg(long, default_value_t = 10)]
    per_user: usize,
    /// Messages per second per sender, one step per rate, e.g. 5,10,20.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,40")]
    rates: Vec<f64>,
    /// Seconds each step sends for, after its warm-up.
    #[arg(long, default_value_t = 10.0)]
    step_secs: f64,
    /// Seconds at the start of each step whose latencies are not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Seconds to wait after a step's last send for deliveries still on their way.
    #[arg(long, default_value_t = 3.0)]
    drain_secs: f64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Stop stepping up after a step with loss or a p99 above this.
    #[arg(long, default_value_t = 50.0)]
    max_p99_ms: f64,
    /// Receiving connections (never senders) that, in each step, drop their sockets at
    /// once and reconnect at once, each resuming with `sync` from the last seq it saw: a
    /// reconnect storm. They are spread over the rooms evenly. 0 for none.
    #[arg(long, default_value_t = 0)]
    storm: usize,
    /// When the storm comes, as a share of the step's counted time (after its warm-up).
    #[arg(long, default_value_t = 0.333)]
    storm_at: f64,
    /// How long the storm's connections stay away before reconnecting.
    #[arg(long, default_value_t = 0.0)]
    storm_away_ms: f64,
    /// How long a step waits, from the drop, for every storm connection to have its
    /// `sync.done`.
    #[arg(long, default_value_t = 60.0)]
    storm_wait_secs: f64,
}

/// One step's outcome.
#[derive(Debug, Serialize)]
struct Step {
    rate_per_sender: f64,
    offered_messages_per_sec: f64,
    sent: u64,
    confirmed: u64,
    expected_deliveries: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
    deliveries_per_sec: f64,
    latency: Latency,
    /// From a sender's send to its `message.ack`: what confirming costs while the message
    /// goes out to its room.
    confirmation: Latency,
    /// How late the senders woke for their schedule: if this grows, the generator, not
    /// the server, is the bottleneck.
    sender_lag: Latency,
    costs: Costs,
    #[serde(skip_serializing_if = "Option::is_none")]
    storm: Option<StormStep>,
}

impl Step {
    fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.storm.as_ref().is_none_or(|storm| storm.lost == 0 && storm.out_of_order == 0)
    }
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    server: &'static str,
    connections: usize,
    rooms: usize,
    senders: usize,
    body_bytes: usize,
    closed_early: u64,
    error_frames: u64,
    steps: Vec<Step>,
    /// The highest deliveries per second of a clean step within the p99 limit.
    best_clean_deliveries_per_sec: f64,
}

pub async fn run(run: &Run, options: Options) -> Result<()> {
    let layout = Layout::checked(options.connections, options.rooms, options.per_user)?;
    // Connections 0..rooms are the senders; the storm takes the next ones, which go round
    // the rooms.
    let storm = match options.storm {
        0 => None,
        n if run.target.ceiling => bail!("the ceiling has no sync, so no storm ({n})"),
        n if n > options.connections - options.rooms => {
            bail!("a storm of {n} needs {n} connections besides the senders")
        }
        n => Some(Storm::new(options.rooms..options.rooms + n)),
    };
    let plan = plan(run, layout).await?;
    let shared = Shared::with_storm(options.rates.len(), storm);
    // A connection that cannot open ends the run, saying why: figures over fewer
    // connections than asked for would compare with nothing.
    let connections = match open_all(run, &plan, &shared, &[]).await {
        Ok(connections) => connections,
        Err(error) => bail!("opening connections: {error:#}"),
    };
    let senders: Vec<(usize, &Connection)> = connections
        .iter()
        .enumerate()
        .filter(|(i, _)| layout.is_sender(*i))
        .map(|(i, c)| (plan.seats[i].room, c))
        .collect();
    if !run.json {
        println!(
            "{} connections in {} rooms, {} senders, {}-byte bodies",
            connections.len(),
            options.rooms,
            senders.len(),
            options.body_bytes
        );
        println!(
            "{:>8} {:>9} {:>10} {:>10} {:>6} {:>5} {:>5} {:>10} {} {}",
            "rate/s",
            "sent",
            "expected",
            "delivered",
            "lost",
            "dup",
            "ooo",
            "deliv/s",
            Latency::HEADER,
            Costs::HEADER
        );
    }

    let fanout = Fanout {
        run,
        options: &options,
        shared: &shared,
        room_ids: &plan.room_ids,
        layout,
        numbers: senders.iter().map(|_| Arc::new(AtomicU64::new(0))).collect(),
        senders,
        storm_missing: AtomicU64::new(0),
    };
    let mut steps = Vec::new();
    for (index, &rate) in options.rates.iter().enumerate() {
        let step = fanout.step(index, rate).await;
        if !run.json {
            println!(
                "{:>8} {:>9} {:>10} {:>10} {:>6} {:>5} {:>5} {:>10.0} {} {:>7.2} {}",
                rate,
                step.sent,
                step.expected_deliveries,
                step.delivered,
                step.lost,
                step.duplicates,
                step.out_of_order,
                step.deliveries_per_sec,
                step.latency.columns(),
                step.sender_lag.p99_ms,
                step.costs.columns()
            );
            if let Some(storm) = &step.storm {
                print_storm(storm);
            }
        }
        let stop = !step.clean() || step.latency.p99_ms > options.max_p99_ms;
        steps.push(step);
        if stop {
            break;
        }
    }
    shared.stop.cancel();

    let best = steps
        .iter()
        .filter(|s| s.clean() && s.latency.p99_ms <= options.max_p99_ms)
        .map(|s| s.deliveries_per_sec)
        .fold(0.0, f64::max);
    let report = Report {
        mode: "fanout",
        server: if run.target.ceiling { "ceiling" } else { "confab" },
        connections: connections.len(),
        rooms: options.rooms,
        senders: fanout.senders.len(),
        body_bytes: options.body_bytes,
        closed_early: shared.closed_early(),
        error_frames: shared.error_frames.load(Ordering::Relaxed),
        steps,
        best_clean_deliveries_per_sec: best,
    };
    run.report(&report)?;
    if !run.json {
        println!(
            "best clean rate: {:.0} deliveries/s; closed early: {} {:?}; error frames: {}",
            report.best_clean_deliveries_per_sec,
            report.closed_early,
            shared.closed.lock().map(|c| c.clone()).unwrap_or_default(),
            report.error_frames
        );
    }
    // Let the close frames go out before the process ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// A fan-out run between its steps: the connections and what each sender has numbered.
struct Fanout<'a> {
    run: &'a Run,
    options: &'a Options,
    shared: &'a Arc<Shared>,
    room_ids: &'a [String],
    layout: Layout,
    /// Each room's sending connection, with its room.
    senders: Vec<(usize, &'a Connection)>,
    /// The last number each sender gave a message; numbers go on from step to step, so
    /// that receivers can tell order across them.
    numbers: Vec<Arc<AtomicU64>>,
    /// What the storm connections had not seen at the end of the last step.
    storm_missing: AtomicU64,
}

impl Fanout<'_> {
    /// Runs step `index`: every sender at `rate` messages a second for the step's time.
    async fn step(&self, index: usize, rate: f64) -> Step {
        let Self { run, options, shared, room_ids, layout, .. } = *self;
        let (senders, numbers) = (&self.senders, &self.numbers);
        let tally = &shared.steps[index];
        let clock = shared.clock;
        let start_us = clock.now_us() + 10_000;
        let warmup_us = (options.warmup_secs * 1e6) as u64;
        let end_us = start_us + warmup_us + (options.step_secs * 1e6) as u64;
        tally.measure_from_us.store(start_us + warmup_us, Ordering::Relaxed);
        let interval_us = (1e6 / rate.max(0.001)) as u64;
        let before = run.readings();

        let schedules: Vec<_> = senders
            .iter()
            .zip(numbers)
            .enumerate()
            .map(|(k, ((room, connection), number))| {
                let outbox = connection.outbox.clone();
                let room_id = room_ids[*room].clone();
                let number = number.clone();
                let shared = shared.clone();
                let body_bytes = options.body_bytes;
                // Senders start spread over one interval, not all at once.
                let offset = interval_us * k as u64 / senders.len().max(1) as u64;
                let room = *room;
                tokio::spawn(async move {
                    let tally = &shared.steps[index];
                    let mut due = start_us + offset;
                    let mut sent = 0u64;
                    while due < end_us {
                        tokio::time::sleep_until(clock.at(due).into()).await;
                        // Stamped when the sender wakes: tokio's timer fires up to a
                        // millisecond late, which is the generator's doing, not the server's.
                        // How late it runs is reported beside the latencies.
                        let woke = clock.now_us();
                        tally.record_lag(k, woke.saturating_sub(due));
                        let n = number.fetch_add(1, Ordering::Relaxed) + 1;
                        let body = Marker { step: index, n, scheduled_us: woke }.body(body_bytes);
                        let frame = send_frame(&room_id, &body, &format!("b{n}"));
                        if outbox.send(frame).is_err() {
                            break;
                        }
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        sent += 1;
                        due += interval_us;
                    }
                    (room, sent)
                })
            })
            .collect();
        let sending = async {
            let mut sent_per_room = vec![0u64; room_ids.len()];
            for schedule in schedules {
                if let Ok((room, sent)) = schedule.await {
                    sent_per_room[room] += sent;
                }
            }
            (sent_per_room, run.readings())
        };
        let storm_at_us =
            start_us + warmup_us + (options.storm_at * options.step_secs * 1e6) as u64;
        let ((sent_per_room, after), window) =
            tokio::join!(sending, self.storm(index, storm_at_us));
        tokio::time::sleep(Duration::from_secs_f64(options.drain_secs)).await;

        let expected: u64 = sent_per_room
            .iter()
            .enumerate()
            .map(|(room, sent)| sent * layout.members_of(room) as u64)
            .sum();
        let delivered = Tally::get(&tally.delivered);
        let wall = (end_us - start_us) as f64 / 1e6;
        Step {
            rate_per_sender: rate,
            offered_messages_per_sec: rate * senders.len() as f64,
            sent: Tally::get(&tally.sent),
            confirmed: Tally::get(&tally.confirmed),
            expected_deliveries: expected,
            delivered,
            lost: expected.saturating_sub(delivered),
            duplicates: Tally::get(&tally.duplicates),
            out_of_order: Tally::get(&tally.out_of_order),
            deliveries_per_sec: delivered as f64 / wall,
            latency: Latency::of(&tally.delivery_latency()),
            confirmation: Latency::of(&tally.confirm_latency()),
            sender_lag: Latency::of(&tally.lag()),
            costs: before.costs_until(&after),
            storm: window.map(|window| self.storm_step(index, &window, start_us + warmup_us)),
        }
    }

    /// Drops the storm's connections at `at_us`, if there is a storm, and waits until every
    /// one has its `sync.done` again (or the wait runs out).
    async fn storm(&self, index: usize, at_us: u64) -> Option<Window> {
        let storm = self.shared.storm.as_ref()?;
        let (clock, options) = (self.shared.clock, self.options);
        tokio::time::sleep_until(clock.at(at_us).into()).await;
        let before = self.run.readings();
        let blip = Blip { step: index, at_us, away_us: (options.storm_away_ms * 1e3) as u64 };
        storm.blip(blip);
        let tally = &self.shared.steps[index].storm;
        let give_up_us = at_us + (options.storm_wait_secs * 1e6) as u64;
        while tally.done() < storm.len() as u64 && clock.now_us() < give_up_us {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let synced = Tally::get(&tally.synced) == storm.len() as u64;
        let end_us = if synced { Tally::get(&tally.last_synced_us) } else { clock.now_us() };
        Some(Window { blip, end_us, costs: before.costs_until(&self.run.readings()) })
    }

    /// The report of step `index`'s storm, once its deliveries have drained.
    fn storm_step(&self, index: usize, window: &Window, measured_from_us: u64) -> StormStep {
        let storm = self.shared.storm.as_ref().expect("a window comes only from a storm");
        let sent: Vec<u64> = {
            let mut sent = vec![0; self.room_ids.len()];
            for ((room, _), number) in self.senders.iter().zip(&self.numbers) {
                sent[*room] = number.load(Ordering::Relaxed);
            }
            sent
        };
        let missing = storm.missing(|room| sent[room]);
        let lost = missing.saturating_sub(self.storm_missing.swap(missing, Ordering::Relaxed));
        StormStep::of(&self.shared.steps[index].storm, window, measured_from_us, storm.len(), lost)
    }
}

/// A step's storm, under its row of the table.
fn print_storm(storm: &StormStep) {
    let three = |l: &Latency| format!("{:.1} / {:.1} / {:.1} ms", l.p50_ms, l.p99_ms, l.max_ms);
    println!(
        "  storm of {} at {:.1} s: over in {:.0} ms; back {}, synced {}, failed {}; to ready {}, \
         to sync.done {}; recovered {} (of {} sent by sync), sent twice {}, lost {}, out of order {}; \
         server {}",
        storm.connections,
        storm.drop_at_secs,
        storm.duration_ms,
        storm.reconnected,
        storm.synced,
        storm.failed,
        three(&storm.to_ready),
        three(&storm.to_sync_done),
        storm.recovered,
        storm.sync_messages,
        storm.sent_twice,
        storm.lost,
        storm.out_of_order,
        storm.costs.columns()
    );
    println!(
        "  the others' latency p50 / p99 / max: before {} ({}), during {} ({}), after {} ({})",
        three(&storm.others_before),
        storm.others_before.count,
        three(&storm.others_during),
        storm.others_during.count,
        three(&storm.others_after),
        storm.others_after.count
    );
}
