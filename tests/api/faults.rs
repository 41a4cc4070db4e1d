//! Faults survived under a steady load: WebSocket clients spread over the nodes of a
//! cluster all send into one room while a node is killed (SIGKILL), Redis is stopped for a
//! few seconds, or PostgreSQL restarts. Each client behaves as the web client does: it
//! resends what was not confirmed with the same `client_id`, reconnects (to the next node,
//! as a load balancer would send it) and resumes with `sync` from the last seq it saw.
//!
//! Each test prints its figures (confirmed, delivered, lost, duplicated, out of order) and
//! asserts that the last three are 0 and that every message is stored once.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::{
    Cluster, PATIENCE, ServerProcess, TestApp, TestUser, postgres, redis, spawn_cluster,
    spawn_cluster_on,
};

/// Messages each client sends, one every [`PACE`]: about six seconds of load.
const MESSAGES: usize = 60;
const PACE: Duration = Duration::from_millis(100);
/// Sends a client has unconfirmed at once, at most.
const IN_FLIGHT: usize = 4;
/// How long the whole load may take, faults included, on a busy machine.
const LOAD_PATIENCE: Duration = Duration::from_secs(120);

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    /// Seqs of the room's messages this client received, over all its connections.
    seqs: HashSet<i64>,
    /// A seq received twice on one connection.
    duplicated: u64,
    /// A seq received below one already received on the same stream (live, or one sync).
    out_of_order: u64,
    /// The seqs of this client's own messages, as confirmed.
    confirmed: Vec<i64>,
    reconnects: u64,
    /// `error` frames, by code.
    errors: BTreeMap<String, u64>,
}

struct Client {
    user: TestUser,
    room: String,
    /// Where a load balancer would send it: the first that answers, in turn.
    nodes: Vec<SocketAddr>,
    first: usize,
}

async fn connect(address: SocketAddr, user: &TestUser) -> Option<crate::support::WsClient> {
    let mut request = format!("ws://{address}/api/v1/ws").into_client_request().ok()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", user.token)).ok()?;
    request.headers_mut().insert("authorization", bearer);
    let connecting = tokio_tungstenite::connect_async(request);
    let (mut stream, _) = tokio::time::timeout(PATIENCE, connecting).await.ok()?.ok()?;
    // `ready` first (the server may close at once instead, while its database is away).
    let frame = tokio::time::timeout(PATIENCE, stream.next()).await.ok()??.ok()?;
    let Message::Text(text) = frame else { return None };
    let ready: Value = serde_json::from_str(&text).ok()?;
    (ready["type"] == "ready").then(|| crate::support::WsClient::from_ready(stream, ready))
}

impl Client {
    /// Sends [`MESSAGES`] messages and keeps receiving until `done` says every client has
    /// had every confirmed message (or the test gives up).
    async fn run(
        self,
        mut done: watch::Receiver<bool>,
        report: tokio::sync::mpsc::UnboundedSender<i64>,
    ) -> Seen {
        let mut seen = Seen::default();
        let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
        let mut next = 0;
        // Resume from here: the highest seq seen once a sync is over; during one, the seq
        // it started from.
        let mut resume_from = 0;
        let mut attempt = 0usize;
        let mut connected_before = false;
        'connections: loop {
            if *done.borrow() {
                return seen;
            }
            let address = self.nodes[(self.first + attempt) % self.nodes.len()];
            let Some(mut ws) = connect(address, &self.user).await else {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if connected_before {
                seen.reconnects += 1;
            }
            connected_before = true;
            let ready_seq = ws.ready_seq(&self.room);
            let mut on_this = HashSet::new();
            let (mut live_last, mut sync_last) = (ready_seq, resume_from);
            let mut syncing = true;
            let sync = json!({ "type": "sync", "since": { self.room.as_str(): resume_from }, "id": "resume" });
            if ws.stream.send(Message::text(sync.to_string())).await.is_err() {
                continue;
            }
            // What was sent before and not confirmed goes again, with the same client id.
            for client_id in pending.keys().cloned().collect::<Vec<_>>() {
                if !self.send(&mut ws, &client_id).await {
                    continue 'connections;
                }
                pending.insert(client_id, Instant::now());
            }
            let mut tick = tokio::time::interval(PACE);
            loop {
                tokio::select! {
                    _ = done.changed() => return seen,
                    _ = tick.tick() => {
                        // Unconfirmed for a while (an error came back, or the node went
                        // away with it): again.
                        let stale: Vec<String> = pending
                            .iter()
                            .filter(|(_, at)| at.elapsed() > Duration::from_secs(2))
                            .map(|(id, _)| id.clone())
                            .collect();
                        for client_id in stale {
                            if !self.send(&mut ws, &client_id).await {
                                continue 'connections;
                            }
                            pending.insert(client_id, Instant::now());
                        }
                        if next < MESSAGES && pending.len() < IN_FLIGHT {
                            let client_id = format!("{}-{next}", self.user.username);
                            next += 1;
                            if !self.send(&mut ws, &client_id).await {
                                pending.insert(client_id, Instant::now());
                                continue 'connections;
                            }
                            pending.insert(client_id, Instant::now());
                        }
                    }
                    frame = ws.next_frame(Duration::from_secs(3600)) => {
                        let frame = match frame {
                            Ok(Some(frame)) => frame,
                            _ => { attempt += 1; continue 'connections; }
                        };
                        match frame["type"].as_str() {
                            Some("message.created") if frame["room_id"] == self.room.as_str() => {
                                let seq = frame["seq"].as_i64().expect("seq");
                                if !on_this.insert(seq) {
                                    seen.duplicated += 1;
                                }
                                let last = if seq > ready_seq { &mut live_last } else { &mut sync_last };
                                if seq <= *last {
                                    seen.out_of_order += 1;
                                }
                                *last = (*last).max(seq);
                                if seen.seqs.insert(seq) {
                                    let _ = report.send(seq);
                                }
                                if !syncing {
                                    resume_from = resume_from.max(seq);
                                }
                            }
                            Some("sync.done") => {
                                syncing = false;
                                resume_from = on_this.iter().copied().max().unwrap_or(resume_from).max(resume_from);
                            }
                            Some("message.ack") => {
                                let client_id = frame["client_id"].as_str().unwrap_or_default();
                                if pending.remove(client_id).is_some() {
                                    seen.confirmed.push(frame["message"]["seq"].as_i64().expect("seq"));
                                }
                            }
                            // The send stays pending and goes again.
                            Some("error") => {
                                let code = frame["code"].as_str().unwrap_or("(none)").to_owned();
                                *seen.errors.entry(code).or_default() += 1;
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    async fn send(&self, ws: &mut crate::support::WsClient, client_id: &str) -> bool {
        let frame = json!({ "type": "send", "room_id": self.room, "body": client_id, "client_id": client_id });
        ws.stream.send(Message::text(frame.to_string())).await.is_ok()
    }
}

/// The outcome of a load: what every client saw, against what was confirmed and stored.
struct Figures {
    confirmed: usize,
    delivered: usize,
    lost: usize,
    duplicated: u64,
    out_of_order: u64,
    reconnects: u64,
    errors: BTreeMap<String, u64>,
}

/// Runs the load with `users` (each with the node it starts on), calls `fault` once the
/// load is under way, and waits until every client has every confirmed message.
async fn load(
    users: Vec<(TestUser, usize)>,
    room: &str,
    nodes: Vec<SocketAddr>,
    fault: impl std::future::Future<Output = ()>,
) -> Figures {
    let (done_tx, done_rx) = watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let clients: Vec<_> = users
        .into_iter()
        .map(|(user, first)| {
            let client = Client { user, room: room.to_owned(), nodes: nodes.clone(), first };
            tokio::spawn(client.run(done_rx.clone(), report_tx.clone()))
        })
        .collect();
    let count = clients.len();
    fault.await;
    // Every client has sent and had confirmed all its messages, and every client has
    // received every one: count * MESSAGES messages, each seen by count clients.
    let expected = count * MESSAGES * count;
    let deadline = Instant::now() + LOAD_PATIENCE;
    let mut received = 0;
    while received < expected {
        match tokio::time::timeout_at(deadline, report_rx.recv()).await {
            Ok(Some(_)) => received += 1,
            _ => break,
        }
    }
    let _ = done_tx.send(true);
    let mut seens = Vec::new();
    for client in clients {
        seens.push(client.await.expect("a client task"));
    }
    let confirmed: Vec<i64> = seens.iter().flat_map(|s| s.confirmed.iter().copied()).collect();
    let mut figures = Figures {
        confirmed: confirmed.len(),
        delivered: 0,
        lost: 0,
        duplicated: seens.iter().map(|s| s.duplicated).sum(),
        out_of_order: seens.iter().map(|s| s.out_of_order).sum(),
        reconnects: seens.iter().map(|s| s.reconnects).sum(),
        errors: BTreeMap::new(),
    };
    for seen in &seens {
        for (code, count) in &seen.errors {
            *figures.errors.entry(code.clone()).or_default() += count;
        }
    }
    for seen in &seens {
        for seq in &confirmed {
            if seen.seqs.contains(seq) {
                figures.delivered += 1;
            } else {
                figures.lost += 1;
            }
        }
    }
    assert_eq!(figures.confirmed, count * MESSAGES, "every message sent was confirmed");
    figures
}

fn check(what: &str, figures: &Figures) {
    eprintln!(
        "{what}: confirmed {}, delivered {}, lost {}, duplicated {}, out of order {}, reconnects {}, errors {:?}",
        figures.confirmed,
        figures.delivered,
        figures.lost,
        figures.duplicated,
        figures.out_of_order,
        figures.reconnects,
        figures.errors
    );
    // A send that fails does so with the one retryable code, and is then stored once.
    assert!(
        figures.errors.keys().all(|code| code == "unavailable"),
        "{what}: {:?}",
        figures.errors
    );
    assert_eq!((figures.lost, figures.duplicated, figures.out_of_order), (0, 0, 0), "{what}");
}

/// Every message is stored once: as many as were sent, each client id once.
async fn stored_once(app: &TestApp, user: &TestUser, room: &str, sent: usize) {
    let history = app.whole_history(user, room).await;
    let ids: HashSet<&str> = history.iter().filter_map(|m| m["client_id"].as_str()).collect();
    assert_eq!((history.len(), ids.len()), (sent, sent), "each message stored once");
}

/// `count` users, registered on `app`, in one room; returns them and the room.
async fn members(app: &TestApp, count: usize) -> (Vec<TestUser>, String) {
    let mut users = Vec::new();
    for index in 0..count {
        users.push(app.register(&format!("user{index}")).await);
    }
    let others: Vec<&TestUser> = users[1..].iter().collect();
    let room = app.create_room(&users[0], "load", "private", &others).await;
    (users, room)
}

#[tokio::test]
async fn a_node_killed_under_load_loses_nothing() {
    let Some(cluster) = spawn_cluster(1).await else { return };
    let a = &cluster.nodes[0];
    let confab::config::Database::Postgres(url) = a.database().clone() else { unreachable!() };
    let data_dir = a.data_path().to_path_buf();
    let redis_url = cluster.redis.node_url(1).await;
    let mut doomed = ServerProcess::start(|command| {
        command.arg("--database-url").arg(&url).arg("--redis-url").arg(&redis_url);
        command.arg("--data-dir").arg(&data_dir);
    })
    .await;
    let (users, room) = members(a, 6).await;
    let spread = users.iter().cloned().enumerate().map(|(i, u)| (u, i % 2)).collect();
    let nodes = vec![a.address, doomed.address];
    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        doomed.child.kill().expect("SIGKILL");
        let _ = doomed.child.wait();
    };
    let figures = load(spread, &room, nodes, fault).await;
    check("a node killed", &figures);
    assert!(figures.reconnects >= 3, "the killed node's clients moved: {}", figures.reconnects);
    stored_once(a, &users[0], &room, 6 * MESSAGES).await;
}

#[tokio::test]
async fn redis_stopped_under_load_loses_nothing() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    let (users, room) = members(&cluster.nodes[0], 6).await;
    let spread = users.iter().cloned().enumerate().map(|(i, u)| (u, i % 2)).collect();
    let nodes: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.address).collect();
    let redis: &mut redis::Redis = &mut cluster.redis;
    let fault = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        redis.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.start_again().await;
    };
    let figures = load(spread, &room, nodes, fault).await;
    check("redis stopped for 3 s", &figures);
    stored_once(&cluster.nodes[0], &users[0], &room, 6 * MESSAGES).await;
    for node in &cluster.nodes {
        node.wait_until_ready().await;
    }
}

#[tokio::test]
async fn postgresql_restarted_under_load_loses_nothing() {
    if !redis::available() {
        return;
    }
    let Some(database) = postgres::private_cluster().await else { return };
    let url = database.create_database().await;
    let cluster: Cluster = spawn_cluster_on(2, confab::config::Database::Postgres(url), None).await;
    let (users, room) = members(&cluster.nodes[0], 6).await;
    let spread = users.iter().cloned().enumerate().map(|(i, u)| (u, i % 2)).collect();
    let nodes: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.address).collect();
    let fault = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        database.stop().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        database.start().await;
    };
    let figures = load(spread, &room, nodes, fault).await;
    check("postgresql restarted", &figures);
    stored_once(&cluster.nodes[0], &users[0], &room, 6 * MESSAGES).await;
}
