//! Search: seeds rooms with messages in mixed scripts through the WebSocket API (one
//! writer per room, a window of messages in flight each, as fast as the server confirms),
//! then has one user who is a member of a few of the rooms search, one query at a time,
//! and times each query by category (see `corpus`).
//!
//! The other rooms hold messages the searcher must never see: every result is checked to
//! come from one of the searcher's rooms, and any that does not is counted as a violation.
//! A state file keeps what the queries need (the searcher's token, its rooms, the corpus),
//! so that they can be run again against a server already seeded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Run;
use crate::corpus::{Category, Corpus};
use crate::report::{Costs, Latency};
use crate::setup::{self, Layout};
use crate::writes::{self, Pace, Written};

#[derive(Debug, Args)]
pub struct Options {
    /// Messages to seed, spread evenly over the rooms.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Rooms, each with its own writer.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Rooms the searcher is a member of; the others' messages must never come back.
    #[arg(long, default_value_t = 10)]
    member_rooms: usize,
    /// Queries to time per category, one after another.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Results asked for per query (the first page).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Messages each writer keeps in flight while seeding.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Messages each rare word is put into, over all the rooms.
    #[arg(long, default_value_t = 50)]
    rare_hits: u64,
    /// The seed of the text: the same seed, the same messages and queries.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keeps what the queries need here after seeding; if the file exists, seeding is
    /// skipped and the queries run against the server it was written for.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Seed (and write the state file), but run no queries.
    #[arg(long)]
    seed_only: bool,
}

/// What the queries need of a seeded server.
#[derive(Debug, Serialize, Deserialize)]
struct Seeded {
    messages: u64,
    rooms: usize,
    seed: u64,
    rare_hits: u64,
    searcher_token: String,
    /// The searcher's rooms; results from any other are violations.
    member_room_ids: Vec<String>,
}

/// How one category's queries went.
#[derive(Debug, Serialize)]
struct Timed {
    category: &'static str,
    queries: usize,
    /// Results returned over all the queries (first pages only).
    results: u64,
    /// Queries that found nothing, and queries whose first page was full.
    empty: u64,
    full_pages: u64,
    /// Results from rooms the searcher is not a member of.
    violations: u64,
    latency: Latency,
    slowest_query: String,
    costs: Costs,
}

pub async fn run(run: &Run, options: Options) -> Result<()> {
    if run.target.ceiling {
        bail!("the ceiling keeps nothing to search");
    }
    if options.member_rooms == 0 || options.member_rooms > options.rooms {
        bail!("the searcher needs at least one room, and no more than there are");
    }
    let (seeded, seeding) = match &options.state {
        Some(path) if path.exists() => (reuse(path, &options)?, None),
        _ => {
            let (seeded, seeding) = seed(run, &options).await?;
            if let Some(path) = &options.state {
                std::fs::write(path, serde_json::to_string(&seeded)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            (seeded, Some(seeding))
        }
    };
    let corpus = Corpus::new(seeded.seed, seeded.messages, seeded.rare_hits);
    let mut timed = Vec::new();
    if !options.seed_only {
        for category in Category::ALL {
            let queries = corpus.queries(category, options.queries);
            timed.push(time_queries(run, &seeded, category, &queries, options.limit).await?);
        }
    }
    let violations: u64 = timed.iter().map(|t| t.violations).sum();
    run.report(&json!({
        "mode": "search",
        "messages": seeded.messages,
        "rooms": seeded.rooms,
        "member_rooms": seeded.member_room_ids.len(),
        "limit": options.limit,
        "seeding": seeding,
        "categories": timed,
        "violations": violations,
    }))?;
    if !run.json {
        print(&seeded, seeding.as_ref(), &timed, options.limit);
    }
    if violations > 0 {
        bail!("{violations} results came from rooms the searcher is not a member of");
    }
    Ok(())
}

/// The seeding, and how long it took (`setup_seconds` is the users and rooms).
#[derive(Debug, Serialize)]
struct Seeding {
    setup_seconds: f64,
    #[serde(flatten)]
    written: Written,
}

/// Reads a state file written by an earlier run with the same corpus.
fn reuse(path: &Path, options: &Options) -> Result<Seeded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let seeded: Seeded = serde_json::from_str(&text).context("the state file")?;
    let asked = (options.messages, options.rooms, options.seed, options.rare_hits);
    if (seeded.messages, seeded.rooms, seeded.seed, seeded.rare_hits) != asked
        || seeded.member_room_ids.len() != options.member_rooms
    {
        bail!(
            "{} was seeded with {} messages in {} rooms (seed {}, rare hits {}, {} member rooms): ask for the same",
            path.display(),
            seeded.messages,
            seeded.rooms,
            seeded.seed,
            seeded.rare_hits,
            seeded.member_room_ids.len()
        );
    }
    eprintln!("seeding skipped: {} holds a seeded server", path.display());
    Ok(seeded)
}

/// Makes the rooms, their writers and the searcher, and writes every room's messages.
async fn seed(run: &Run, options: &Options) -> Result<(Seeded, Seeding)> {
    let started = Instant::now();
    let layout = Layout::checked(options.rooms, options.rooms, 1)?;
    let (plan, shared, connections, acks) = writes::writers(run, layout, options.window).await?;
    let searcher = setup::register(
        &run.http,
        run.base(),
        format!("bsearch{}", rand::random_range(0..u32::MAX)),
    )
    .await?;
    let member_room_ids = plan.room_ids[..options.member_rooms].to_vec();
    for room_id in &member_room_ids {
        let path = format!("/api/v1/rooms/{room_id}/join");
        setup::post(&run.http, run.base(), &searcher, &path, json!({})).await?;
    }
    let setup_seconds = started.elapsed().as_secs_f64();

    let corpus = Corpus::new(options.seed, options.messages, options.rare_hits);
    let (rooms, messages) = (options.rooms as u64, options.messages);
    // Room r gets messages / rooms, and one more if r is among the first messages % rooms.
    let share = move |room: usize| messages / rooms + u64::from((room as u64) < messages % rooms);
    let text: writes::Text =
        Arc::new(move |room, n| (n <= share(room)).then(|| corpus.message(room, n)));
    let pace = Pace {
        window: options.window,
        secs: 24.0 * 3600.0,
        limit: messages,
        body_bytes: 0,
        text: Some(text),
        progress: true,
    };
    eprintln!("seeding {messages} messages in {rooms} rooms");
    let written = writes::write(run, &plan, &shared, &connections, &acks, &pace).await;
    shared.stop.cancel();
    if written.confirmed < messages {
        bail!("only {} of {messages} messages were confirmed", written.confirmed);
    }
    let seeded = Seeded {
        messages,
        rooms: options.rooms,
        seed: options.seed,
        rare_hits: options.rare_hits,
        searcher_token: searcher,
        member_room_ids,
    };
    Ok((seeded, Seeding { setup_seconds, written }))
}

/// Runs `queries` one after another (asking each node in turn) and times each.
async fn time_queries(
    run: &Run,
    seeded: &Seeded,
    category: Category,
    queries: &[String],
    limit: usize,
) -> Result<Timed> {
    let members: HashSet<&str> = seeded.member_room_ids.iter().map(String::as_str).collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut results, mut empty, mut full_pages, mut violations) = (0, 0, 0, 0);
    let mut slowest = (0, String::new());
    let before = run.readings();
    for (query, base) in queries.iter().zip(run.bases.iter().cycle()) {
        let request = run
            .http
            .get(format!("{base}/api/v1/search"))
            .query(&[("q", query.as_str()), ("limit", &limit.to_string())])
            .bearer_auth(&seeded.searcher_token);
        let started = Instant::now();
        let reply = request.send().await?;
        let status = reply.status();
        let page: Value = reply.json().await.unwrap_or(Value::Null);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        if !status.is_success() {
            bail!("searching for {query:?}: {status}: {page}");
        }
        let found = page["results"].as_array().with_context(|| format!("no results: {page}"))?;
        for result in found {
            let room_id = result["message"]["room_id"].as_str().unwrap_or_default();
            if !members.contains(room_id) {
                violations += 1;
            }
        }
        results += found.len() as u64;
        empty += u64::from(found.is_empty());
        full_pages += u64::from(found.len() >= limit);
        latency.saturating_record(took);
        if took > slowest.0 {
            slowest = (took, query.clone());
        }
    }
    Ok(Timed {
        category: category.name(),
        queries: queries.len(),
        results,
        empty,
        full_pages,
        violations,
        latency: Latency::of(&latency),
        slowest_query: slowest.1,
        costs: before.costs_until(&run.readings()),
    })
}

fn print(seeded: &Seeded, seeding: Option<&Seeding>, timed: &[Timed], limit: usize) {
    if let Some(seeding) = seeding {
        println!("users and rooms made in {:.1} s; seeding:", seeding.setup_seconds);
        writes::print_written(&seeding.written);
    }
    if timed.is_empty() {
        return;
    }
    println!(
        "{} messages in {} rooms; the searcher is in {}; first pages of {limit}:",
        seeded.messages,
        seeded.rooms,
        seeded.member_room_ids.len()
    );
    println!(
        "{:<18} {:>7} {:>8} {:>6} {:>5} {:>10} {}   slowest query",
        "category",
        "queries",
        "results",
        "empty",
        "full",
        "violations",
        Latency::HEADER
    );
    for t in timed {
        println!(
            "{:<18} {:>7} {:>8} {:>6} {:>5} {:>10} {}   {}",
            t.category,
            t.queries,
            t.results,
            t.empty,
            t.full_pages,
            t.violations,
            t.latency.columns(),
            t.slowest_query
        );
    }
    println!("{:<18} {}", "while querying", Costs::HEADER);
    for t in timed {
        println!("{:<18} {}", t.category, t.costs.columns());
    }
}
