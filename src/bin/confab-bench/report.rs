//! Turning what was counted into a table for people or one JSON line for scripts.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::process::Usage;

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }

    pub fn columns(&self) -> String {
        format!(
            "{:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }

    pub const HEADER: &'static str = "  p50 ms   p90 ms   p99 ms p99.9 ms   max ms";
}

/// Memory and CPU of the server (all its nodes), of the other processes watched (the
/// database, Redis) and of the generator over a span of wall time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Costs {
    pub server_rss_mb: Option<f64>,
    /// CPU time as a share of one core: 1.0 is one core busy all the time.
    pub server_cpu: Option<f64>,
    pub others_cpu: Option<f64>,
    pub bench_cpu: Option<f64>,
}

/// The processes whose costs a run reports.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// The server's nodes.
    pub servers: Vec<u32>,
    /// Other processes, each with its children (PostgreSQL's backends).
    pub others: Vec<u32>,
}

/// Readings of the processes watched and of the generator, to be compared with later ones.
#[derive(Clone, Copy)]
pub struct Readings {
    server: Option<Usage>,
    others: Option<Usage>,
    bench: Option<Usage>,
    at: std::time::Instant,
}

impl Readings {
    pub fn now(watched: &Watched) -> Self {
        Self {
            server: Usage::sum(watched.servers.iter().map(|&pid| Usage::of(Some(pid)))),
            others: Usage::sum(watched.others.iter().map(|&pid| Usage::of_tree(pid))),
            bench: Usage::of(None),
            at: std::time::Instant::now(),
        }
    }

    pub fn server_rss(&self) -> Option<u64> {
        self.server.map(|usage| usage.rss_bytes)
    }

    /// What was spent from `self` to `later`.
    pub fn costs_until(&self, later: &Readings) -> Costs {
        let wall = later.at - self.at;
        Costs {
            server_rss_mb: later.server_rss().map(|b| b as f64 / 1024.0 / 1024.0),
            server_cpu: crate::process::cpu_share(self.server, later.server, wall),
            others_cpu: crate::process::cpu_share(self.others, later.others, wall),
            bench_cpu: crate::process::cpu_share(self.bench, later.bench, wall),
        }
    }
}

impl Costs {
    pub fn columns(&self) -> String {
        let share = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0));
        let rss = self.server_rss_mb.map_or("-".to_owned(), |v| format!("{v:.0}"));
        format!(
            "{:>6} {:>6} {:>6} {:>7}",
            share(self.server_cpu),
            share(self.others_cpu),
            share(self.bench_cpu),
            rss
        )
    }

    pub const HEADER: &'static str = "server others  bench  rss MB";
}
