//! Idle connections: open many, hold them, and see what each costs the server in memory.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::clients::Shared;
use crate::report::Readings;
use crate::setup::Layout;
use crate::{Run, open_seats, plan};

#[derive(Debug, Args)]
pub struct Options {
    /// WebSocket connections to hold.
    #[arg(long, default_value_t = 50_000)]
    pub connections: usize,
    /// Rooms the connections are spread over (each user is a member of one).
    #[arg(long, default_value_t = 500)]
    rooms: usize,
    /// Connections that share one user.
    #[arg(long, default_value_t = 10)]
    per_user: usize,
    /// Seconds to hold the connections open before measuring again.
    #[arg(long, default_value_t = 20.0)]
    hold_secs: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    server: &'static str,
    connections: usize,
    seconds_to_open: f64,
    server_rss_before_mb: Option<f64>,
    server_rss_held_mb: Option<f64>,
    /// Server memory per connection, held for `hold_secs`, over what it used before.
    server_bytes_per_connection: Option<f64>,
    /// What each connection of the second half added: the cost of one more connection.
    server_bytes_per_added_connection: Option<f64>,
    bench_rss_mb: Option<f64>,
    closed_early: u64,
}

pub async fn run(run: &Run, options: Options) -> Result<()> {
    let layout = Layout::checked(options.connections, options.rooms, options.per_user)?;
    let plan = plan(run, layout).await?;
    let shared = Shared::new(0);
    // Let the server settle after the setup's bursts before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = run.readings();
    let opening = std::time::Instant::now();
    // Half first, then the other half: what the second half adds is what a connection
    // costs, free of what the allocator held back from the setup (password hashing frees
    // tens of MiB that the first connections then reuse).
    let half = options.connections / 2;
    let mut connections = open_seats(run, &plan, 0..half, &shared, &[]).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let middle = run.readings();
    connections.extend(open_seats(run, &plan, half..options.connections, &shared, &[]).await?);
    let seconds_to_open = opening.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(options.hold_secs)).await;
    let held = run.readings();
    let mb = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    let per_connection = |from: &Readings, count: usize| {
        from.server_rss()
            .zip(held.server_rss())
            .map(|(from, held)| (held as f64 - from as f64) / count.max(1) as f64)
    };
    let report = Report {
        mode: "idle",
        server: if run.target.ceiling { "ceiling" } else { "confab" },
        connections: connections.len(),
        seconds_to_open,
        server_rss_before_mb: before.server_rss().map(mb),
        server_rss_held_mb: held.server_rss().map(mb),
        server_bytes_per_connection: per_connection(&before, connections.len()),
        server_bytes_per_added_connection: per_connection(&middle, connections.len() - half),
        bench_rss_mb: crate::process::Usage::of(None).map(|u| mb(u.rss_bytes)),
        closed_early: shared.closed_early(),
    };
    shared.stop.cancel();
    run.report(&report)?;
    if !run.json {
        println!("{report:#?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}
