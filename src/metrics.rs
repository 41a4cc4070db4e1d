//! Prometheus metrics: the process's one recorder, and the name of every figure Confab
//! keeps (docs/operations.md says what each means).
//!
//! The code that sees something happen counts it there, with the `metrics` crate's macros
//! and these names; `http/metrics.rs` serves what the recorder holds at `GET /metrics`.
//! The recorder is the process's (the `metrics` facade has one global recorder): it is
//! installed once, by the first server to start, and every server in the process then
//! counts into it (tests that start many servers in one process see their sum).
//!
//! Architecture invariant: on the delivery path nothing formats a label or takes a lock
//! for a metric. A connection counts what it writes once per flush, with a counter handle
//! it took when it started, and a peer counts a dropped frame with a handle the hub gave
//! it; handles are taken after [`install`], so they reach the recorder.

use std::sync::OnceLock;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// WebSocket connections open now (gauge).
pub const WS_OPEN: &str = "confab_websocket_connections";
/// WebSocket connections opened.
pub const WS_OPENED: &str = "confab_websocket_connections_opened_total";
/// WebSocket connections closed, by close `code`.
pub const WS_CLOSED: &str = "confab_websocket_connections_closed_total";
/// Users with a connection on this node (gauge).
pub const USERS_ONLINE: &str = "confab_users_online";
/// Messages committed, by `kind` (`text`, or `attachments` when it carries files).
pub const MESSAGES_STORED: &str = "confab_messages_stored_total";
/// Frames written to WebSockets.
pub const DELIVERIES: &str = "confab_deliveries_total";
/// Frames of the moment dropped because a connection's queue was full.
pub const EVENTS_DROPPED: &str = "confab_events_dropped_total";
/// Connections closed for being too slow.
pub const SLOW_CLOSED: &str = "confab_slow_connections_closed_total";
/// Gaps in a room's live stream filled from the store.
pub const GAPS_FILLED: &str = "confab_gaps_filled_total";
/// `sync` requests taken.
pub const SYNCS: &str = "confab_syncs_total";
/// Frames sent by `sync` (catching up).
pub const EVENTS_REPLAYED: &str = "confab_events_replayed_total";
/// Write transactions committed or tried.
pub const STORE_BATCHES: &str = "confab_store_write_batches_total";
/// Writes per transaction (histogram).
pub const STORE_BATCH_SIZE: &str = "confab_store_batch_size";
/// How long a transaction's commit takes (histogram).
pub const STORE_COMMIT_SECONDS: &str = "confab_store_commit_seconds";
/// HTTP requests answered, by `route` template, `method` and `status`.
pub const HTTP_REQUESTS: &str = "confab_http_requests_total";
/// How long HTTP requests take, by `route` and `method` (histogram).
pub const HTTP_DURATION: &str = "confab_http_request_duration_seconds";
/// Password logins refused for wrong credentials.
pub const LOGIN_FAILURES: &str = "confab_login_failures_total";
/// Requests refused by a rate limit (429), by `action`.
pub const THROTTLED: &str = "confab_throttled_requests_total";
/// Files uploaded and kept.
pub const UPLOADS: &str = "confab_uploads_total";
/// Bytes of the files uploaded and kept.
pub const UPLOAD_BYTES: &str = "confab_upload_bytes_total";
/// Events this node published on Redis.
pub const BUS_PUBLISHED: &str = "confab_bus_published_total";
/// Events this node received from other nodes through Redis.
pub const BUS_RECEIVED: &str = "confab_bus_received_total";
/// How long bus messages take from the sender's encoding to this node's decoding, by
/// `origin`: `own` (this node's messages coming back: exact) or `other` (another node's, by
/// two clocks) (histogram).
pub const BUS_LAG_SECONDS: &str = "confab_bus_lag_seconds";

/// Latency buckets in seconds: from a quick fsync to a request at its timeout.
const SECONDS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Batch sizes: SQLite's writer takes up to 1,024 writes at once; PostgreSQL's are 1.
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder the first time (later calls return the same handle),
/// and returns the handle `/metrics` renders.
pub fn install() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(STORE_BATCH_SIZE.to_owned()),
                        SIZE_BUCKETS,
                    )
                })
                // Only an empty list of buckets is refused, and these are constant and full.
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                // Another recorder came first (a library's, in some embedding): /metrics then
                // shows nothing, which is better than not starting.
                tracing::warn!(%error, "metrics are not recorded: another recorder is installed");
            }
            describe();
            handle.clone()
        })
        .clone()
}

/// Help lines, and every unlabelled counter at zero, so that a scrape shows each figure
/// before it first moves (a rate over a counter that appears late misses its first rise).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(WS_OPEN, "WebSocket connections open now.");
    describe_counter!(WS_OPENED, "WebSocket connections opened.");
    describe_counter!(WS_CLOSED, "WebSocket connections closed, by close code.");
    describe_gauge!(USERS_ONLINE, "Users with at least one WebSocket connection on this node.");
    describe_counter!(MESSAGES_STORED, "Messages committed to the store, by kind.");
    describe_counter!(DELIVERIES, "Frames written to WebSocket connections.");
    describe_counter!(EVENTS_DROPPED, "Frames of the moment dropped for a full queue.");
    describe_counter!(SLOW_CLOSED, "WebSocket connections closed for being too slow.");
    describe_counter!(GAPS_FILLED, "Gaps in a room's live stream filled from the store.");
    describe_counter!(SYNCS, "Sync requests taken.");
    describe_counter!(EVENTS_REPLAYED, "Frames sent by sync requests.");
    describe_counter!(STORE_BATCHES, "Write transactions tried by the store.");
    describe_histogram!(STORE_BATCH_SIZE, "Writes per write transaction.");
    describe_histogram!(STORE_COMMIT_SECONDS, Unit::Seconds, "Time to commit a transaction.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request durations, by route.");
    describe_counter!(LOGIN_FAILURES, "Password logins refused for wrong credentials.");
    describe_counter!(THROTTLED, "Requests refused by a rate limit (429), by action.");
    describe_counter!(UPLOADS, "Files uploaded.");
    describe_counter!(UPLOAD_BYTES, Unit::Bytes, "Bytes of files uploaded.");
    describe_counter!(BUS_PUBLISHED, "Events published to other nodes through Redis.");
    describe_counter!(BUS_RECEIVED, "Events received from other nodes through Redis.");
    describe_histogram!(
        BUS_LAG_SECONDS,
        Unit::Seconds,
        "Time from a node publishing a bus message to this node receiving it, by origin."
    );
    for name in [
        WS_OPENED,
        DELIVERIES,
        EVENTS_DROPPED,
        SLOW_CLOSED,
        GAPS_FILLED,
        SYNCS,
        EVENTS_REPLAYED,
        STORE_BATCHES,
        LOGIN_FAILURES,
        UPLOADS,
        UPLOAD_BYTES,
        BUS_PUBLISHED,
        BUS_RECEIVED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for kind in [message_kind(0), message_kind(1)] {
        metrics::counter!(MESSAGES_STORED, "kind" => kind).increment(0);
    }
    metrics::gauge!(WS_OPEN).increment(0.0);
    metrics::gauge!(USERS_ONLINE).increment(0.0);
}

/// The label of a message's kind in [`MESSAGES_STORED`].
pub fn message_kind(attachments: usize) -> &'static str {
    if attachments == 0 { "text" } else { "attachments" }
}

/// The label of a WebSocket close code in [`WS_CLOSED`]: every code Confab closes with
/// has a static string, so closing formats nothing.
pub fn close_code_label(code: u16) -> &'static str {
    match code {
        1000 => "1000",
        1001 => "1001",
        1005 => "1005",
        1006 => "1006",
        1008 => "1008",
        1009 => "1009",
        1011 => "1011",
        1012 => "1012",
        1013 => "1013",
        4000 => "4000",
        4001 => "4001",
        4002 => "4002",
        4003 => "4003",
        _ => "other",
    }
}
