//! A client that stops reading: the server must drop it rather than buffer for it, so the
//! other clients keep receiving promptly and the server's memory does not grow with what
//! the stalled client failed to take.
//!
//! This runs the real binary in a subprocess, because memory is only measurable per
//! process (its resident set, from /proc).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::{Ended, PATIENCE, ServerProcess, TestApp, TestUser, WsClient, each_store};

/// Events a connection may have queued before it counts as too slow.
const WS_QUEUE: &str = "64";
/// Messages sent before the memory baseline is taken, by as many senders at once as the
/// flood, so that caches and pools (the database's connections) are as warm as they get.
const WARM_UP: usize = 400;
/// Messages sent while memory is watched: more than ten times what reaches the stalled
/// client before it is cut off (its receive window is small), and 15 MB in all.
const MESSAGES: usize = 4_000;
/// Characters in each message body (the limit is 4,000).
const BODY_CHARS: usize = 3_900;
/// Concurrent HTTP senders. Each group commit holds at most this many messages, well under
/// the queue length, so a client that does read is never too slow.
const SENDERS: usize = 8;
/// How long the whole flood may take, so the test is bounded however slow the machine.
const FLOOD_LIMIT: Duration = Duration::from_secs(180);

#[each_store(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_without_delaying_others_or_growing_memory() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(|command| {
        command.arg("--data-dir").arg(data_dir.path()).args(["--ws-queue", WS_QUEUE]);
        command.args(["--log", "warn"]);
    })
    .await;
    let app = TestApp::external(server.address);
    let alice = app.register("alice").await;
    let reader = app.register("rita").await;
    let stalled = app.register("sam").await;
    let room = app.create_room(&alice, "firehose", "private", &[&reader, &stalled]).await;

    let reading = tokio::spawn(read_messages(app.connect(&reader).await, room.clone()));
    // After `ready` this connection is never polled again: whatever the server writes
    // piles up in the socket buffers until the server gives up on it.
    let mut never_reads = connect_with_a_small_window(&app, &stalled).await;
    assert_eq!(connections(&app).await, 2);

    let sender = Sender {
        http: app.http.clone(),
        url: app.url(&format!("/rooms/{room}/messages")),
        token: alice.token.clone(),
    };
    tokio::time::timeout(FLOOD_LIMIT, sender.send_in_lanes(0, WARM_UP))
        .await
        .expect("warm-up in time");

    let rss = RssWatch::start(server.pid());
    let baseline = rss.current();
    let started = Instant::now();
    tokio::time::timeout(FLOOD_LIMIT, sender.send_in_lanes(WARM_UP, WARM_UP + MESSAGES))
        .await
        .expect("flood sent in time");
    let sent_in = started.elapsed();

    let total = WARM_UP + MESSAGES;
    let (seqs, received_at, _reader) = tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("the reading client got every message within PATIENCE of the last send")
        .expect("reader task");
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "every message, in seq order");
    let peak = rss.stop();

    // The stalled client is gone from the server, the reader still connected...
    crate::support::eventually("the stalled connection is closed", || async {
        (connections(&app).await == 1).then_some(())
    })
    .await;
    // ...and, once it reads what is buffered for it, it sees the server close (4000) or
    // end the connection, after a gap-free prefix of the room's messages.
    let (ending, got) = tokio::time::timeout(PATIENCE * 3, drain(&mut never_reads, &room))
        .await
        .expect("the stalled client's buffered frames end in time");
    match &ending {
        Ended::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 4000, "{frame:?}"),
        Ended::Closed(None) => panic!("close without a code"),
        Ended::Eof | Ended::Error(_) => {}
    }
    assert!(got < total, "the stalled client was cut off before the end, got {got} of {total}");

    let sent_bytes = (MESSAGES * BODY_CHARS) as u64;
    // What the stalled client never took: a server that kept it for the client would grow by
    // all of it. Half leaves room for what a busy server's memory does anyway.
    let missed_bytes = ((total - got) * BODY_CHARS) as u64;
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "slow client: {MESSAGES} messages ({} MB) sent in {sent_in:?}, reader done after \
         {received_at:?}; stalled client got {got} then {ending:?}; RSS {} -> peak {} MB",
        sent_bytes >> 20,
        baseline >> 20,
        peak >> 20
    );
    assert!(
        growth < missed_bytes / 2 && growth < 100 << 20,
        "server memory grew by {} MB while the stalled client missed {} MB",
        growth >> 20,
        missed_bytes >> 20
    );
}

/// Connects as `user` with a receive buffer of a few kilobytes, as a phone on a poor network
/// might have: what the server writes backs up after a little, rather than after the
/// megabytes loopback's buffers grow to, so the flood need not fill those first.
async fn connect_with_a_small_window(app: &TestApp, user: &TestUser) -> WsClient {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    // Set before connecting, so that the window offered in the handshake is this small.
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(app.address).await.expect("connect");
    let mut request = app.ws_url().into_client_request().expect("ws request");
    let bearer = HeaderValue::from_str(&format!("Bearer {}", user.token)).expect("header");
    request.headers_mut().insert("authorization", bearer);
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .expect("ws handshake");
    WsClient::start(stream).await
}

/// Sends messages over HTTP as one user.
#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Sender {
    /// Sends messages numbered `from` to `to` (exclusive) over `SENDERS` lanes at once.
    async fn send_in_lanes(&self, from: usize, to: usize) {
        let mut senders = Vec::new();
        for lane in 0..SENDERS {
            let sender = self.clone();
            let range =
                (from + lane * (to - from) / SENDERS, from + (lane + 1) * (to - from) / SENDERS);
            senders.push(tokio::spawn(async move { sender.send_range(range.0, range.1).await }));
        }
        for sender in senders {
            sender.await.expect("sender finished");
        }
    }

    /// Sends messages numbered `from` to `to` (exclusive), one at a time.
    async fn send_range(&self, from: usize, to: usize) {
        for n in from..to {
            let mut body = format!("message {n} ");
            body.extend(std::iter::repeat_n('x', BODY_CHARS - body.len()));
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&json!({ "body": body }))
                .send()
                .await
                .expect("send request");
            assert_eq!(response.status(), StatusCode::CREATED, "send message {n}");
        }
    }
}

/// Reads `message.created` frames of `room` until `WARM_UP + MESSAGES` have come; returns
/// their seqs, how long after the start that took, and the still open connection. Fails if
/// the connection ends or stalls for longer than PATIENCE.
async fn read_messages(mut client: WsClient, room: String) -> (Vec<i64>, Duration, WsClient) {
    let started = Instant::now();
    let mut seqs = Vec::with_capacity(WARM_UP + MESSAGES);
    while seqs.len() < WARM_UP + MESSAGES {
        match client.next_frame(PATIENCE).await {
            Ok(Some(frame)) if frame["type"] == "message.created" && frame["room_id"] == room => {
                seqs.push(frame["seq"].as_i64().expect("seq"));
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("reader stalled after {} messages", seqs.len()),
            Err(ended) => {
                panic!("reader's connection ended after {} messages: {ended:?}", seqs.len())
            }
        }
    }
    (seqs, started.elapsed(), client)
}

/// Reads everything the server buffered for a client until the connection ends; returns
/// how it ended and how many of the room's messages came first, checking they were in
/// order with no gaps.
async fn drain(client: &mut WsClient, room: &str) -> (Ended, usize) {
    let mut got: i64 = 0;
    loop {
        let ending = match client.stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).expect("server frames are JSON");
                if frame["type"] == "message.created" && frame["room_id"] == room {
                    got += 1;
                    assert_eq!(frame["seq"], got, "the stalled client's frames are gap-free");
                }
                continue;
            }
            Some(Ok(Message::Close(frame))) => Ended::Closed(frame),
            Some(Ok(_)) => continue,
            Some(Err(error)) => Ended::Error(error.to_string()),
            None => Ended::Eof,
        };
        return (ending, got as usize);
    }
}

/// The WebSocket connections the server holds, as `/healthz` reports them.
async fn connections(app: &TestApp) -> u64 {
    let health: Value = app
        .http
        .get(format!("http://{}/healthz", app.address))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("healthz body");
    health["connections"].as_u64().expect("connections")
}

/// Samples a process's resident set size on a thread of its own, keeping the peak.
struct RssWatch {
    pid: u32,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        RssWatch { pid, peak, stop, thread }
    }

    fn current(&self) -> u64 {
        rss_bytes(self.pid)
    }

    /// Stops sampling and returns the peak seen.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler thread");
        self.peak.load(Ordering::Relaxed).max(rss_bytes(self.pid))
    }
}

/// VmRSS of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kib: u64 =
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}
