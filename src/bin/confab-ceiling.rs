//! confab-ceiling: the least a broadcast server on Confab's WebSocket stack can do, kept
//! as the benchmark's baseline. No accounts, no persistence, no ordering: a client joins
//! the room named in its URL (`/ws?room=r7`), every text frame it sends goes, as the same
//! shared bytes, to every connection in that room (the sender too). What Confab reaches
//! is reported as a fraction of what this reaches on the same machine in the same run.
//!
//! It keeps the habits that make Confab fast and safe, so that the comparison measures
//! what Confab adds and not what it does better: the same small socket buffers, a bounded
//! queue per connection (a client that falls behind is dropped), several frames per flush,
//! TCP_NODELAY.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

/// A minimal WebSocket broadcast server: the ceiling Confab is measured against.
#[derive(Debug, Parser)]
#[command(name = "confab-ceiling")]
struct Cli {
    /// Address to listen on; port 0 picks a free one. The address is printed on start.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Frames a connection may have queued before it is dropped (Confab's default).
    #[arg(long, default_value_t = 1024)]
    queue: usize,
}

/// The rooms: who is in each, as the senders of their queues.
#[derive(Default)]
struct Rooms {
    members: RwLock<HashMap<String, HashMap<u64, mpsc::Sender<Utf8Bytes>>>>,
    next_id: AtomicU64,
}

#[derive(Clone)]
struct Ceiling {
    rooms: Arc<Rooms>,
    queue: usize,
}

#[derive(Deserialize)]
struct Join {
    room: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.addr)
            .await
            .with_context(|| format!("listening on {}", cli.addr))?;
        println!("confab-ceiling listening on {}", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let ceiling = Ceiling { rooms: Arc::default(), queue: cli.queue };
        let app = Router::new().route("/ws", get(upgrade)).with_state(ceiling);
        axum::serve(listener, app).await.context("serving")
    })
}

async fn upgrade(
    State(ceiling): State<Ceiling>,
    Query(join): Query<Join>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(512 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(ceiling, join.room, socket))
}

async fn serve(ceiling: Ceiling, room: String, socket: WebSocket) {
    let id = ceiling.rooms.next_id.fetch_add(1, Ordering::Relaxed);
    let (queue, mut queued) = mpsc::channel::<Utf8Bytes>(ceiling.queue);
    ceiling.rooms.write().entry(room.clone()).or_default().insert(id, queue);
    let (mut sink, mut stream) = socket.split();
    let writer = async {
        if sink.send(Message::Text(r#"{"type":"ready"}"#.into())).await.is_err() {
            return;
        }
        while let Some(frame) = queued.recv().await {
            let mut written = sink.feed(Message::Text(frame)).await;
            while let (Ok(()), Ok(more)) = (&written, queued.try_recv()) {
                written = sink.feed(Message::Text(more)).await;
            }
            if written.and(sink.flush().await).is_err() {
                return;
            }
        }
    };
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Text(frame) => ceiling.broadcast(&room, &frame),
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    if let Some(members) = ceiling.rooms.write().get_mut(&room) {
        members.remove(&id);
    }
}

impl Rooms {
    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, HashMap<u64, mpsc::Sender<Utf8Bytes>>>>
    {
        self.members.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Ceiling {
    /// Offers the same bytes to every member's queue. A member whose queue is full is
    /// dropped from the room: its writer ends once its queue is drained and gone.
    fn broadcast(&self, room: &str, frame: &Utf8Bytes) {
        let mut too_slow = Vec::new();
        {
            let members =
                self.rooms.members.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (id, queue) in members.get(room).into_iter().flatten() {
                if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(frame.clone()) {
                    too_slow.push(*id);
                }
            }
        }
        if !too_slow.is_empty()
            && let Some(members) = self.rooms.write().get_mut(room)
        {
            for id in too_slow {
                members.remove(&id);
            }
        }
    }
}
