//! confab-bench: a load generator that drives a running Confab server (or the ceiling
//! server, `confab-ceiling`) over its public API, as real clients would, and reports what
//! it measured. See BENCHMARKS.md for the scenarios and the figures.
//!
//! It talks to loopback addresses only, and every run is bounded in time (`--max-secs`).

mod avatars;
mod clients;
mod corpus;
mod fanout;
mod idle;
mod process;
mod report;
mod resume;
mod search;
mod setup;
mod stats;
mod storm;
mod writes;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, TryStreamExt, stream};

use clients::{Connection, Shared, Target};
use report::{Readings, Watched};
use setup::{Layout, Plan};

/// Load generator for Confab.
#[derive(Debug, Parser)]
#[command(name = "confab-bench")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Args)]
struct Common {
    /// The server's base URL, on a loopback address. Given once per node, it spreads the
    /// connections over the nodes (each room's members alternate between them); users and
    /// rooms are made through the first.
    #[arg(long = "url", global = true, default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// The server is `confab-ceiling`: no accounts, rooms by number.
    #[arg(long, global = true)]
    ceiling: bool,
    /// The server's process id, to report its memory and CPU time; given once per node,
    /// the figures are their sums.
    #[arg(long = "server-pid", global = true)]
    server_pids: Vec<u32>,
    /// Another process to report the CPU time of beside the server's, with its children's:
    /// the database, Redis. May be given several times; the figure is their sum.
    #[arg(long = "other-pid", global = true)]
    other_pids: Vec<u32>,
    /// Loopback source addresses to spread connections over (127.0.0.1 and up); one
    /// address has about 28,000 ports. [default: one per 25,000 connections]
    #[arg(long, global = true)]
    sources: Option<usize>,
    /// Print one JSON line instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, global = true)]
    save: Option<std::path::PathBuf>,
    /// The whole run stops after this long, whatever it is doing.
    #[arg(long, global = true, default_value_t = 900)]
    max_secs: u64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Senders broadcast into rooms at stepped rates; loss, order and latency of every
    /// delivery are counted.
    Fanout(fanout::Options),
    /// Hold connections open and report the server's memory per connection.
    Idle(idle::Options),
    /// Durable writes: senders keep a window of messages in flight and count confirmations.
    Writes(writes::WriteOptions),
    /// Fill a room with messages, then fetch pages of its history.
    History(writes::HistoryOptions),
    /// Seed rooms with messages in mixed scripts, then time searches by one member of a
    /// few of them, by kind of query.
    Search(search::Options),
    /// Parallel avatar uploads of one huge picture: the server's peak memory.
    Avatars(avatars::Options),
    /// A user in many rooms comes back: the wait for `ready`, and the cost of a `sync`
    /// after missing a busy room's messages.
    Resume(resume::Options),
}

/// What every mode starts from.
pub struct Run {
    pub http: reqwest::Client,
    /// Each node's base URL; the first makes the users and rooms.
    pub bases: Vec<String>,
    pub target: Target,
    pub watched: Watched,
    pub json: bool,
    pub save: Option<std::path::PathBuf>,
}

impl Run {
    /// The first node's base URL.
    pub fn base(&self) -> &str {
        &self.bases[0]
    }

    /// What the watched processes have spent so far.
    pub fn readings(&self) -> Readings {
        Readings::now(&self.watched)
    }

    /// Prints `report` as one JSON line if asked to (the caller prints its table
    /// otherwise), and saves it if asked to.
    pub fn report(&self, report: &impl serde::Serialize) -> Result<()> {
        let mut report = serde_json::to_value(report)?;
        if let Some(fields) = report.as_object_mut() {
            fields.insert("nodes".to_owned(), self.bases.len().into());
            fields.insert("connections_per_node".to_owned(), self.target.opened().into());
        }
        let line = serde_json::to_string(&report)?;
        if self.json {
            println!("{line}");
        }
        if let Some(path) = &self.save {
            std::fs::write(path, format!("{line}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A generator holding tens of thousands of sockets needs the file limit raised.
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open-files limit: {error}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let limit = Duration::from_secs(cli.common.max_secs);
    runtime.block_on(async move {
        tokio::time::timeout(limit, run(cli))
            .await
            .with_context(|| format!("the run passed its limit of {limit:?}"))?
    })
}

async fn run(cli: Cli) -> Result<()> {
    let servers = cli.common.urls.iter().map(|url| loopback_address(url)).collect::<Result<_>>()?;
    if cli.common.ceiling && cli.common.urls.len() > 1 {
        bail!("the ceiling is one process: give it one --url");
    }
    let run = Run {
        http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
        bases: cli.common.urls.iter().map(|url| url.trim_end_matches('/').to_owned()).collect(),
        target: Target::new(servers, cli.common.ceiling),
        watched: Watched { servers: cli.common.server_pids, others: cli.common.other_pids },
        json: cli.common.json,
        save: cli.common.save,
    };
    let sources = |connections: usize| cli.common.sources.unwrap_or(connections.div_ceil(25_000));
    match cli.mode {
        Mode::Fanout(options) => {
            let run = Run {
                target: Target { sources: sources(options.connections), ..run.target.clone() },
                ..run
            };
            fanout::run(&run, options).await
        }
        Mode::Idle(options) => {
            let run = Run {
                target: Target { sources: sources(options.connections), ..run.target.clone() },
                ..run
            };
            idle::run(&run, options).await
        }
        Mode::Writes(options) => writes::run_writes(&run, options).await,
        Mode::History(options) => writes::run_history(&run, options).await,
        Mode::Search(options) => search::run(&run, options).await,
        Mode::Avatars(options) => avatars::run(&run, options).await,
        Mode::Resume(options) => resume::run(&run, options).await,
    }
}

/// The server's address, which must be on this machine's loopback.
fn loopback_address(url: &str) -> Result<SocketAddr> {
    let host_port = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?
        .split('/')
        .next()
        .unwrap_or_default();
    let address = host_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {host_port}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{host_port} has no IPv4 address"))?;
    if !address.ip().is_loopback() {
        bail!("confab-bench only talks to loopback addresses, not {address}");
    }
    Ok(address)
}

/// Users and rooms for `layout`, made on the server (or named, for the ceiling).
pub async fn plan(run: &Run, layout: Layout) -> Result<Plan> {
    if run.target.ceiling {
        Ok(setup::ceiling(layout))
    } else {
        setup::confab(&run.http, run.base(), layout).await
    }
}

/// Opens a connection for every seat, a few hundred handshakes at a time.
pub async fn open_all(
    run: &Run,
    plan: &Plan,
    shared: &Arc<Shared>,
    acks: &[Option<Arc<tokio::sync::Semaphore>>],
) -> Result<Vec<Connection>> {
    open_seats(run, plan, 0..plan.seats.len(), shared, acks).await
}

/// Opens a connection for each seat in `seats`.
pub async fn open_seats(
    run: &Run,
    plan: &Plan,
    seats: std::ops::Range<usize>,
    shared: &Arc<Shared>,
    acks: &[Option<Arc<tokio::sync::Semaphore>>],
) -> Result<Vec<Connection>> {
    stream::iter(seats.filter_map(|index| plan.seats.get(index).map(|seat| (index, seat))))
        .map(|(index, seat)| {
            let acks = acks.get(index).cloned().flatten();
            clients::open(&run.target, index, seat, shared.clone(), acks)
        })
        .buffered(256)
        .try_collect()
        .await
}
