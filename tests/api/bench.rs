//! The benchmark tools, in runs of seconds, so that they never rot: confab-bench against
//! a real confab process and against confab-ceiling, in every mode. These check that the
//! tools count correctly (nothing lost on a lightly loaded server, every figure present),
//! never how fast anything is.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{ServerProcess, each_store, spawn_cluster};

/// Runs confab-bench with `args` and returns its JSON report.
pub(crate) fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_confab-bench"))
        .args(["--json", "--max-secs", "120"])
        .args(args)
        .output()
        .expect("confab-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "confab-bench {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}"))
}

/// Small and slow enough that nothing should be lost even while the rest of the suite
/// keeps the machine busy; the drain leaves time for deliveries still on their way.
/// Confab started in a working directory of its own, so that tests running at once never
/// share an embedded database (and nothing is left in the checkout); the directory lives as
/// long as the returned guard.
async fn server() -> (ServerProcess, tempfile::TempDir) {
    let working_dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::start(|command| {
        command.current_dir(working_dir.path());
    })
    .await;
    (server, working_dir)
}

fn fanout_args<'a>(url: &'a str, pid: &'a str) -> Vec<&'a str> {
    vec![
        "--url",
        url,
        "--server-pid",
        pid,
        "fanout",
        "--connections",
        "30",
        "--rooms",
        "3",
        "--per-user",
        "5",
        "--rates",
        "20,40",
        "--step-secs",
        "1",
        "--warmup-secs",
        "0.5",
        "--drain-secs",
        "3",
        "--max-p99-ms",
        "10000",
    ]
}

/// Every step of a fan-out report delivered each message once to every member.
fn assert_clean_fanout(report: &Value, server: &str) {
    assert_eq!(report["server"], server, "{report}");
    assert_eq!(report["connections"], 30, "{report}");
    assert_eq!(report["closed_early"], 0, "{report}");
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "both rates ran: {report}");
    for step in steps {
        let sent = step["sent"].as_u64().expect("sent");
        assert!(sent > 0, "{step}");
        assert_eq!(step["expected_deliveries"], sent * 10, "three rooms of ten: {step}");
        assert_eq!(step["delivered"], step["expected_deliveries"], "{step}");
        assert_eq!((step["lost"].as_u64(), step["duplicates"].as_u64()), (Some(0), Some(0)));
        assert!(step["latency"]["count"].as_u64() > Some(0), "latencies recorded: {step}");
        assert!(step["costs"]["server_rss_mb"].as_f64() > Some(0.0), "server memory read: {step}");
    }
}

#[each_store]
async fn the_load_generator_counts_every_delivery_from_confab() {
    let (server, _data) = server().await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let report = tokio::task::spawn_blocking(move || bench(&fanout_args(&url, &pid)))
        .await
        .expect("bench ran");
    assert_clean_fanout(&report, "confab");
    for step in report["steps"].as_array().into_iter().flatten() {
        assert_eq!(step["confirmed"], step["sent"], "Confab confirms every message: {step}");
    }
}

#[tokio::test]
async fn the_load_generator_counts_every_delivery_from_the_ceiling() {
    let mut ceiling = Command::new(env!("CARGO_BIN_EXE_confab-ceiling"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("confab-ceiling starts");
    let mut line = String::new();
    BufReader::new(ceiling.stdout.take().expect("piped")).read_line(&mut line).expect("a line");
    let address = line.trim().rsplit(' ').next().expect("an address").to_owned();
    let (url, pid) = (format!("http://{address}"), ceiling.id().to_string());
    let report = tokio::task::spawn_blocking(move || {
        let mut args = fanout_args(&url, &pid);
        args.insert(0, "--ceiling");
        bench(&args)
    })
    .await
    .expect("bench ran");
    let _ = ceiling.kill();
    let _ = ceiling.wait();
    assert_clean_fanout(&report, "ceiling");
}

#[each_store]
async fn the_load_generator_measures_writes_history_and_idle_connections() {
    let (server, _data) = server().await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let reports = tokio::task::spawn_blocking(move || {
        let common = ["--url", url.as_str(), "--server-pid", pid.as_str()];
        let writes = bench(
            &[&common[..], &["writes", "--writers", "4", "--rooms", "2", "--secs", "1"]].concat(),
        );
        let history = bench(
            &[
                &common[..],
                &[
                    "history",
                    "--messages",
                    "500",
                    "--writers",
                    "2",
                    "--requests",
                    "20",
                    "--page",
                    "50",
                ],
            ]
            .concat(),
        );
        let idle = bench(
            &[&common[..], &["idle", "--connections", "40", "--rooms", "4", "--hold-secs", "0.5"]]
                .concat(),
        );
        (writes, history, idle)
    })
    .await
    .expect("bench ran");
    let (writes, history, idle) = reports;

    let written = &writes["written"];
    assert!(written["confirmed"].as_u64() > Some(0), "{writes}");
    assert_eq!(written["confirmed"], written["sent"], "{writes}");
    assert_eq!(history["filled"]["confirmed"], 500, "{history}");
    assert_eq!(history["pages"]["count"], 20, "{history}");
    assert_eq!(idle["connections"], 40, "{idle}");
    assert!(idle["server_bytes_per_connection"].is_number(), "{idle}");
}

/// The resume mode times `ready` for a user in several rooms and a sync of what it missed
/// in one of them, every missed message included.
#[each_store]
async fn the_load_generator_times_ready_and_a_sync_after_missed_messages() {
    let (server, _data) = server().await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let report = tokio::task::spawn_blocking(move || {
        let args = ["--url", url.as_str(), "--server-pid", pid.as_str(), "resume", "--rooms", "5"];
        let rest =
            ["--messages-per-room", "2", "--connects", "3", "--missed", "30", "--syncs", "2"];
        bench(&[&args[..], &rest[..]].concat())
    })
    .await
    .expect("bench ran");
    assert_eq!(report["ready"]["count"], 3, "{report}");
    assert!(report["ready_bytes"].as_u64() > Some(0), "{report}");
    assert_eq!(report["sync"]["count"], 2, "{report}");
    assert!(report["sync_frames"].as_u64() >= Some(30), "{report}");
    assert!(report["server_cpu_ms_per_sync"].is_number(), "{report}");
}

/// A reconnect storm inside the fan-out: in each step, twelve of the thirty connections
/// drop their sockets at once and come back after 300 ms (six messages a room later at
/// 20 a second), resume with a sync, and end up with every message of their room once, in
/// order; the step reports their times back and the others' latency around the storm.
#[each_store]
async fn the_load_generator_times_a_reconnect_storm_that_loses_nothing() {
    let (server, _data) = server().await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let report = tokio::task::spawn_blocking(move || {
        let mut args = fanout_args(&url, &pid);
        args.extend(["--storm", "12", "--storm-away-ms", "300"]);
        bench(&args)
    })
    .await
    .expect("bench ran");
    assert_clean_fanout(&report, "confab");
    for step in report["steps"].as_array().into_iter().flatten() {
        let storm = &step["storm"];
        assert_eq!(storm["connections"], 12, "{step}");
        for count in ["reconnected", "synced"] {
            assert_eq!(storm[count], 12, "{count}: {step}");
        }
        for count in ["failed", "lost", "out_of_order", "sent_twice"] {
            assert_eq!(storm[count], 0, "{count}: {step}");
        }
        assert_eq!(storm["to_ready"]["count"], 12, "{step}");
        assert_eq!(storm["to_sync_done"]["count"], 12, "{step}");
        assert!(storm["recovered"].as_u64() >= Some(12), "each missed messages: {step}");
        assert!(storm["others_before"]["count"].as_u64() > Some(0), "{step}");
        assert!(storm["others_during"]["count"].as_u64() > Some(0), "{step}");
        assert!(storm["others_after"]["p99_ms"].is_number(), "{step}");
        assert!(storm["duration_ms"].as_f64() >= Some(300.0), "{step}");
        assert!(storm["costs"]["server_cpu"].is_number(), "{step}");
    }
}

/// The search mode seeds rooms with mixed-script text and times every kind of query; no
/// result comes from a room the searcher is not in, and its state file lets the queries
/// run again without seeding, finding the same.
#[each_store]
async fn the_load_generator_seeds_rooms_and_times_searches() {
    let (server, _data) = server().await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let state = tempfile::tempdir().expect("a temporary directory");
    let state = state.path().join("search.json").to_string_lossy().into_owned();
    let (first, again) = tokio::task::spawn_blocking(move || {
        let args = [
            "--url",
            url.as_str(),
            "--server-pid",
            pid.as_str(),
            "search",
            "--messages",
            "600",
            "--rooms",
            "6",
            "--member-rooms",
            "2",
            "--queries",
            "5",
            "--rare-hits",
            "3",
            "--state",
            state.as_str(),
        ];
        (bench(&args), bench(&args))
    })
    .await
    .expect("bench ran");

    assert_eq!(first["seeding"]["confirmed"], 600, "{first}");
    assert!(again["seeding"].is_null(), "the second run reuses the seeded server: {again}");
    let categories = first["categories"].as_array().expect("categories");
    assert_eq!(categories.len(), 4, "{first}");
    for category in categories {
        assert_eq!(category["queries"], 5, "{category}");
        assert_eq!(category["latency"]["count"], 5, "{category}");
        assert_eq!(category["violations"], 0, "{category}");
    }
    assert!(categories[0]["results"].as_u64() > Some(0), "common words are found: {first}");
    let results = |report: &Value| -> Vec<Value> {
        report["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["results"].clone())
            .collect()
    };
    assert_eq!(results(&first), results(&again), "the same queries find the same");
}

#[test]
fn the_load_generator_talks_to_loopback_only() {
    let output = Command::new(env!("CARGO_BIN_EXE_confab-bench"))
        .args(["--url", "http://10.1.2.3:8080", "idle", "--connections", "1", "--rooms", "1"])
        .output()
        .expect("confab-bench runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"), "{output:?}");
}

/// Given two nodes' URLs, the generator spreads each room's members over both, and counts
/// every delivery across them as on one node.
#[tokio::test]
async fn the_load_generator_spreads_its_connections_over_several_nodes() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let urls: Vec<String> =
        cluster.nodes.iter().map(|node| format!("http://{}", node.address)).collect();
    // The nodes run in this test's process.
    let pid = std::process::id().to_string();
    let report = tokio::task::spawn_blocking(move || {
        let mut args = fanout_args(&urls[0], &pid);
        args.splice(0..0, ["--url", urls[1].as_str()]);
        bench(&args)
    })
    .await
    .expect("bench ran");
    assert_clean_fanout(&report, "confab");
    assert_eq!(report["nodes"], 2, "{report}");
    assert_eq!(report["connections_per_node"], serde_json::json!([15, 15]), "{report}");
}
