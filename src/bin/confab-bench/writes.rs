//! Durable writes and history. Writers keep a window of messages in flight (closed loop:
//! a new one goes when one is confirmed), so the figure is how many confirmations the
//! server can give per second, and what each waits; every confirmation means the message
//! is on disk. History fills one room that way, then fetches pages of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::clients::{Connection, Marker, Shared, send_frame};
use crate::report::{Costs, Latency};
use crate::setup::{Layout, Plan};
use crate::stats::Tally;
use crate::{Run, open_all, plan};

#[derive(Debug, Args)]
pub struct WriteOptions {
    /// Writers, each its own connection.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Rooms the writers are spread over.
    #[arg(long, default_value_t = 64)]
    rooms: usize,
    /// Messages each writer keeps in flight.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Seconds to write for.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
}

#[derive(Debug, Args)]
pub struct HistoryOptions {
    /// Messages to fill the room with first.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Writers filling it, and messages each keeps in flight.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Page requests to time, one after another, and the page size.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    #[arg(long, default_value_t = 100)]
    page: usize,
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Time pages of this room instead of filling a new one (it must hold `messages`
    /// messages); `token` is a member's session token.
    #[arg(long, requires = "token")]
    room_id: Option<String>,
    #[arg(long)]
    token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Written {
    writers: usize,
    window: usize,
    pub seconds: f64,
    sent: u64,
    pub confirmed: u64,
    confirmed_per_sec: f64,
    error_frames: u64,
    closed_early: u64,
    confirmation_latency: Latency,
    costs: Costs,
}

pub async fn run_writes(run: &Run, options: WriteOptions) -> Result<()> {
    if run.target.ceiling {
        bail!("the ceiling keeps nothing: durable writes are Confab's alone");
    }
    let layout = Layout { connections: options.writers, rooms: options.rooms.max(1), per_user: 1 };
    let (plan, shared, connections, acks) = writers(run, layout, options.window).await?;
    let written = write(run, &plan, &shared, &connections, &acks, &options_of(&options)).await;
    shared.stop.cancel();
    run.report(&json!({ "mode": "writes", "written": written }))?;
    if !run.json {
        print_written(&written);
    }
    Ok(())
}

/// What the writers write, and for how long.
pub struct Pace {
    pub window: usize,
    pub secs: f64,
    /// Messages in all, over every writer.
    pub limit: u64,
    pub body_bytes: usize,
    /// Each writer's messages as real text instead of marked filler: the body of the `n`th
    /// message (from 1) of the writer in room `room`, or None once it has written its share.
    /// The marker then travels in the client id.
    pub text: Option<Text>,
    /// Print how far the writing got every ten seconds (on stderr).
    pub progress: bool,
}

/// The body of a room's `n`th message, if it has one.
pub type Text = Arc<dyn Fn(usize, u64) -> Option<String> + Send + Sync>;

fn options_of(options: &WriteOptions) -> Pace {
    Pace {
        window: options.window,
        secs: options.secs,
        limit: u64::MAX,
        body_bytes: options.body_bytes,
        text: None,
        progress: false,
    }
}

pub type Writers = (Plan, Arc<Shared>, Vec<Connection>, Vec<Option<Arc<Semaphore>>>);

pub async fn writers(run: &Run, layout: Layout, window: usize) -> Result<Writers> {
    let plan = plan(run, layout).await?;
    let shared = Shared::new(1);
    let acks: Vec<Option<Arc<Semaphore>>> =
        (0..layout.connections).map(|_| Some(Arc::new(Semaphore::new(window)))).collect();
    let connections = open_all(run, &plan, &shared, &acks).await?;
    Ok((plan, shared, connections, acks))
}

/// Every writer sends whenever it has a free slot in its window, until the time or the
/// message limit (or its text) is up; then waits (a little) for the last confirmations.
pub async fn write(
    run: &Run,
    plan: &Plan,
    shared: &Arc<Shared>,
    connections: &[Connection],
    acks: &[Option<Arc<Semaphore>>],
    pace: &Pace,
) -> Written {
    let tally = &shared.steps[0];
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(pace.secs);
    tally.measure_from_us.store(shared.clock.now_us() + 500_000, Ordering::Relaxed);
    let before = run.readings();
    let budget = Arc::new(AtomicU64::new(pace.limit));
    let progress = pace.progress.then(|| tokio::spawn(report_progress(shared.clone(), pace.limit)));
    let tasks: Vec<_> = connections
        .iter()
        .zip(acks)
        .zip(&plan.seats)
        .map(|((connection, acks), seat)| {
            let (outbox, room_id) = (connection.outbox.clone(), seat.room_id.clone());
            let acks = acks.clone().unwrap_or_else(|| Arc::new(Semaphore::new(1)));
            let (shared, budget, body_bytes) = (shared.clone(), budget.clone(), pace.body_bytes);
            let (text, room) = (pace.text.clone(), seat.room);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let Ok(Ok(permit)) =
                        tokio::time::timeout_at(deadline.into(), acks.acquire()).await
                    else {
                        break;
                    };
                    permit.forget();
                    let body = match &text {
                        Some(text) => match text(room, n + 1) {
                            Some(body) => Some(body),
                            None => break,
                        },
                        None => None,
                    };
                    if budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                        .is_err()
                    {
                        break;
                    }
                    n += 1;
                    let scheduled_us = shared.clock.now_us();
                    let marker = Marker { step: 0, n, scheduled_us };
                    let frame = match body {
                        Some(body) => send_frame(&room_id, &body, &marker.client_id()),
                        None => send_frame(&room_id, &marker.body(body_bytes), &format!("w{n}")),
                    };
                    if outbox.send(frame).is_err() {
                        break;
                    }
                    shared.steps[0].sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let sending_ended = Instant::now();
    // The last confirmations are on their way.
    let settle = sending_ended + Duration::from_secs(10);
    while Tally::get(&tally.confirmed) < Tally::get(&tally.sent) && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
    }
    let after = run.readings();
    let confirmed = Tally::get(&tally.confirmed);
    Written {
        writers: connections.len(),
        window: pace.window,
        seconds,
        sent: Tally::get(&tally.sent),
        confirmed,
        confirmed_per_sec: confirmed as f64 / seconds,
        error_frames: shared.error_frames.load(Ordering::Relaxed),
        closed_early: shared.closed_early(),
        confirmation_latency: Latency::of(&tally.confirm_latency()),
        costs: before.costs_until(&after),
    }
}

/// Every ten seconds, how many of `limit` messages are confirmed, and at what rate.
async fn report_progress(shared: Arc<Shared>, limit: u64) {
    let tally = &shared.steps[0];
    let started = Instant::now();
    let mut last = (0, started);
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (confirmed, now) = (Tally::get(&tally.confirmed), Instant::now());
        let rate = (confirmed - last.0) as f64 / (now - last.1).as_secs_f64();
        let of = if limit == u64::MAX { String::new() } else { format!(" of {limit}") };
        eprintln!(
            "{:>5.0} s: {confirmed}{of} confirmed, {rate:.0}/s in the last ten seconds",
            (now - started).as_secs_f64()
        );
        last = (confirmed, now);
    }
}

pub fn print_written(written: &Written) {
    println!(
        "{} writers × {} in flight: {} sent, {} confirmed in {:.1} s = {:.0} confirmed/s; {} error frames, {} closed early",
        written.writers,
        written.window,
        written.sent,
        written.confirmed,
        written.seconds,
        written.confirmed_per_sec,
        written.error_frames,
        written.closed_early
    );
    println!(
        "confirmation {}\n             {}",
        Latency::HEADER,
        written.confirmation_latency.columns()
    );
    println!("{}\n{}", Costs::HEADER, written.costs.columns());
}

pub async fn run_history(run: &Run, options: HistoryOptions) -> Result<()> {
    if run.target.ceiling {
        bail!("the ceiling keeps no history");
    }
    let (room_id, token, written) = match (&options.room_id, &options.token) {
        (Some(room_id), Some(token)) => (room_id.clone(), token.clone(), None),
        _ => {
            let (room_id, token, written) = fill(run, &options).await?;
            (room_id, token, Some(written))
        }
    };
    let last_seq = i64::try_from(options.messages).unwrap_or(i64::MAX);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let before = run.readings();
    // The pages are asked of each node in turn.
    for base in run.bases.iter().cycle().take(options.requests) {
        let before_seq = rand::random_range(options.page as i64 + 1..=last_seq + 1);
        let url = format!(
            "{}/api/v1/rooms/{room_id}/messages?before={before_seq}&limit={}",
            base, options.page
        );
        let started = Instant::now();
        let reply = run.http.get(&url).bearer_auth(&token).send().await?;
        let status = reply.status();
        let page: serde_json::Value = reply.json().await?;
        let took = started.elapsed();
        let count = page["messages"].as_array().map_or(0, Vec::len);
        if !status.is_success() || count != options.page {
            bail!("{url}: {status}, {count} messages");
        }
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
    }
    let costs = before.costs_until(&run.readings());
    let pages = Latency::of(&latency);
    run.report(&json!({ "mode": "history", "room_id": room_id, "filled": written, "page": options.page, "pages": pages, "costs": costs }))?;
    if !run.json {
        if let Some(written) = &written {
            print_written(written);
        }
        println!(
            "{} pages of {} from a room of {}:",
            options.requests, options.page, options.messages
        );
        println!("page {}\n     {}", Latency::HEADER, pages.columns());
    }
    Ok(())
}

/// Fills a new room with `options.messages` messages; returns it, a member's token, and how
/// the writing went.
async fn fill(run: &Run, options: &HistoryOptions) -> Result<(String, String, Written)> {
    let layout = Layout { connections: options.writers, rooms: 1, per_user: 1 };
    let (plan, shared, connections, acks) = writers(run, layout, options.window).await?;
    let pace = Pace {
        window: options.window,
        secs: 3600.0,
        limit: options.messages,
        body_bytes: options.body_bytes,
        text: None,
        progress: true,
    };
    let written = write(run, &plan, &shared, &connections, &acks, &pace).await;
    shared.stop.cancel();
    if written.confirmed < options.messages {
        bail!("only {} of {} messages were confirmed", written.confirmed, options.messages);
    }
    let token = plan.room_tokens[0].clone().context("a member's token")?;
    Ok((plan.room_ids[0].clone(), token, written))
}
