//! Coming back: how long a user who is in many rooms waits for `ready` on a new connection,
//! and what a `sync` costs after a while away from a busy room (its time, the frames and
//! bytes it sends, the server's CPU).
//!
//! The connections are opened one after another, so each figure is one client's wait on
//! an otherwise quiet server, not a queue of many.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Run;
use crate::report::{Costs, Latency};
use crate::setup::{post, register};

#[derive(Debug, Args)]
pub struct Options {
    /// Rooms the returning user is a member of.
    #[arg(long, default_value_t = 200)]
    rooms: usize,
    /// Messages in each room before the user comes back, so that `ready` has counts.
    #[arg(long, default_value_t = 5)]
    messages_per_room: usize,
    /// Connections opened one after another, each timed until its `ready`.
    #[arg(long, default_value_t = 200)]
    connects: usize,
    /// Messages missed in one busy room: ten minutes at five a second.
    #[arg(long, default_value_t = 3_000)]
    missed: usize,
    /// Syncs timed one after another, each from the same seq.
    #[arg(long, default_value_t = 50)]
    syncs: usize,
    /// Characters in each message.
    #[arg(long, default_value_t = 100)]
    size: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    rooms: usize,
    /// From opening the TCP connection to the whole `ready` frame.
    ready: Latency,
    ready_bytes: usize,
    ready_costs: Costs,
    missed: usize,
    /// From sending `sync` to `sync.done`.
    sync: Latency,
    sync_frames: usize,
    sync_bytes: usize,
    sync_costs: Costs,
    /// The server's CPU time per sync (the connection and its `ready` included).
    server_cpu_ms_per_sync: Option<f64>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(run: &Run, options: Options) -> Result<()> {
    if run.target.ceiling {
        bail!("the ceiling has no accounts, rooms to be ready in, or sync");
    }
    let base = run.base();
    let tag: String = (0..5).map(|_| char::from(b'a' + rand::random_range(0..26u8))).collect();
    let reader = register(&run.http, base, format!("b{tag}reader")).await?;
    let writer = register(&run.http, base, format!("b{tag}writer")).await?;
    let rooms: Vec<String> = stream::iter(0..options.rooms)
        .map(|room| {
            let body = json!({ "name": format!("resume {tag} {room}"), "kind": "public" });
            let writer = &writer;
            async move {
                let created = post(&run.http, base, writer, "/api/v1/rooms", body).await?;
                created["id"].as_str().map(str::to_owned).context("a room id")
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    stream::iter(&rooms)
        .map(|room| {
            let path = format!("/api/v1/rooms/{room}/join");
            let reader = &reader;
            async move { post(&run.http, base, reader, &path, json!({})).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let sends =
        rooms.iter().flat_map(|room| (0..options.messages_per_room).map(move |n| (room, n)));
    send_all(run, &writer, sends, options.size).await?;

    // Time to `ready`.
    let mut ready = Histogram::<u64>::new(3)?;
    let mut ready_bytes = 0;
    let mut busy_seq = 0;
    let before = run.readings();
    let started = Instant::now();
    for _ in 0..options.connects {
        let opened = Instant::now();
        let (_socket, frame, bytes) = connect_until_ready(run, &reader).await?;
        ready.record(opened.elapsed().as_micros() as u64)?;
        ready_bytes = bytes;
        busy_seq = last_seq_of(&frame, &rooms[0])?;
    }
    let ready_costs = before.costs_until(&run.readings());
    eprintln!("ready: {} connections in {:?}", options.connects, started.elapsed());

    // What a sync after `missed` messages in one room costs.
    let busy = &rooms[0];
    send_all(run, &writer, (0..options.missed).map(|n| (busy, n)), options.size).await?;
    let mut sync = Histogram::<u64>::new(3)?;
    let (mut sync_frames, mut sync_bytes) = (0, 0);
    let before = run.readings();
    let started = Instant::now();
    for n in 0..options.syncs {
        let (mut socket, _, _) = connect_until_ready(run, &reader).await?;
        let request = json!({ "type": "sync", "since": { busy: busy_seq }, "id": format!("s{n}") });
        let sent = Instant::now();
        socket.send(Message::text(request.to_string())).await?;
        let (frames, bytes, messages) = read_until_sync_done(&mut socket, busy).await?;
        sync.record(sent.elapsed().as_micros() as u64)?;
        if messages < options.missed {
            bail!("the sync sent {messages} of the room's {} missed messages", options.missed);
        }
        (sync_frames, sync_bytes) = (frames, bytes);
    }
    let elapsed = started.elapsed();
    let sync_costs = before.costs_until(&run.readings());
    let report = Report {
        mode: "resume",
        rooms: options.rooms,
        ready: Latency::of(&ready),
        ready_bytes,
        ready_costs,
        missed: options.missed,
        sync: Latency::of(&sync),
        sync_frames,
        sync_bytes,
        server_cpu_ms_per_sync: sync_costs
            .server_cpu
            .map(|share| share * elapsed.as_secs_f64() * 1000.0 / options.syncs.max(1) as f64),
        sync_costs,
    };
    run.report(&report)?;
    if !run.json {
        println!("{report:#?}");
    }
    Ok(())
}

/// Sends a message for each `(room, n)`, sixteen requests at a time.
async fn send_all<'a>(
    run: &Run,
    token: &str,
    sends: impl Iterator<Item = (&'a String, usize)>,
    size: usize,
) -> Result<()> {
    stream::iter(sends)
        .map(|(room, n)| {
            let mut body = format!("message {n} ");
            body.extend(std::iter::repeat_n('x', size.saturating_sub(body.len())));
            let path = format!("/api/v1/rooms/{room}/messages");
            async move { post(&run.http, run.base(), token, &path, json!({ "body": body })).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Opens a WebSocket as the holder of `token` and reads until `ready`; returns the socket,
/// the frame and its size.
async fn connect_until_ready(run: &Run, token: &str) -> Result<(Socket, Value, usize)> {
    let url = format!("{}/api/v1/ws", run.base().replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.context("connecting")?;
    loop {
        let text = next_text(&mut socket).await?;
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] == "ready" {
            return Ok((socket, frame, text.len()));
        }
    }
}

/// Reads until `sync.done`: the frames and bytes that came, and how many were messages of
/// `room`.
async fn read_until_sync_done(socket: &mut Socket, room: &str) -> Result<(usize, usize, usize)> {
    let (mut frames, mut bytes, mut messages) = (0, 0, 0);
    loop {
        let text = next_text(socket).await?;
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] == "sync.done" {
            return Ok((frames, bytes, messages));
        }
        frames += 1;
        bytes += text.len();
        if frame["type"] == "message.created" && frame["room_id"] == room {
            messages += 1;
        }
    }
}

/// The next text frame, within a minute.
async fn next_text(socket: &mut Socket) -> Result<String> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .context("no frame within a minute")?
            .context("the connection closed")??;
        match message {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Close(frame) => bail!("the server closed the connection: {frame:?}"),
            _ => {}
        }
    }
}

fn last_seq_of(ready: &Value, room: &str) -> Result<i64> {
    ready["rooms"]
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["room_id"] == room))
        .and_then(|r| r["last_seq"].as_i64())
        .with_context(|| format!("room {room} in ready"))
}
