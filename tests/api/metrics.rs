//! Prometheus metrics at `/metrics`: the figures move as the traffic says, requests are
//! labelled by route template, and `--metrics-addr` moves the page off the public address.
//!
//! These run the real binary in a subprocess: the recorder is per process, so a server of
//! its own counts only this test's traffic, and the deltas between two scrapes are exact.

use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{
    ServerProcess, TestApp, TestUser, described, each_store, eventually, free_loopback_address,
    spawn_cluster,
};

/// Characters in each message of the flood that makes a client too slow.
const BODY_CHARS: usize = 3_900;
/// Messages sent at a time while waiting for the stalled client to be cut off.
const FLOOD_STEP: usize = 100;
/// The most messages sent to make a client too slow: far more than its queue and the
/// sockets' buffers hold.
const FLOOD_MAX: usize = 20_000;

#[each_store(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_messages_connections_routes_and_slow_clients_exactly() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(|command| {
        command.arg("--data-dir").arg(data_dir.path()).args(["--ws-queue", "16"]);
        command.args(["--log", "warn"]);
    })
    .await;
    let app = TestApp::external(server.address);
    let scrape_url = format!("http://{}/metrics", server.address);
    let scrape = || scrape(&app, &scrape_url);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "metered", "private", &[&bob]).await;

    // One message counts once.
    let before = scrape().await;
    app.send(&alice, &room, "counted once").await;
    let after = eventually("the message is counted", || async {
        let now = scrape().await;
        let moved = value(&now, "confab_messages_stored_total{kind=\"text\"}")
            > value(&before, "confab_messages_stored_total{kind=\"text\"}");
        moved.then_some(now)
    })
    .await;
    let stored = |text: &str| value(text, "confab_messages_stored_total{kind=\"text\"}");
    assert_eq!(stored(&after) - stored(&before), 1.0, "{after}");

    // A WebSocket opened and closed moves each counter by one. A scrape reads one metric
    // after another, so one may show a change that another does not show yet: wait until
    // every figure looked at has moved, then check by how much.
    let before = scrape().await;
    let opened = |text: &str| value(text, "confab_websocket_connections_opened_total");
    let mut socket = app.connect(&alice).await;
    let open = eventually("the connection and its user are counted", || async {
        let now = scrape().await;
        let open = value(&now, "confab_websocket_connections") == 1.0;
        let counted = opened(&now) > opened(&before);
        (open && counted && value(&now, "confab_users_online") == 1.0).then_some(now)
    })
    .await;
    assert_eq!(opened(&open) - opened(&before), 1.0, "{open}");
    let close = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
    socket.stream.send(Message::Close(Some(close))).await.expect("send close");
    let closed_total = |text: &str| sum(text, "confab_websocket_connections_closed_total");
    let closed = eventually("the connection is counted closed and its user gone", || async {
        let now = scrape().await;
        let closed = value(&now, "confab_websocket_connections") == 0.0;
        let counted = closed_total(&now) > closed_total(&before);
        (closed && counted && value(&now, "confab_users_online") == 0.0).then_some(now)
    })
    .await;
    assert_eq!(closed_total(&closed) - closed_total(&before), 1.0, "{closed}");
    assert_eq!(
        value(&closed, "confab_websocket_connections_closed_total{code=\"1000\"}")
            - value(&before, "confab_websocket_connections_closed_total{code=\"1000\"}"),
        1.0,
        "closed by the client with 1000: {closed}"
    );
    assert_eq!(opened(&closed) - opened(&before), 1.0, "{closed}");

    // Requests are labelled by their route's template; the id in the path appears nowhere.
    let (status, _) = app.get(&alice, &format!("/users/{}", bob.id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&alice, "/no-such-route-anywhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = scrape().await;
    let series = "confab_http_requests_total{route=\"/api/v1/users/{user_id}\",method=\"GET\",\
                  status=\"200\"}";
    assert_eq!(value(&text, series), 1.0, "{text}");
    assert!(
        value(
            &text,
            "confab_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains(
            "confab_http_request_duration_seconds_bucket{route=\"/api/v1/users/{user_id}\""
        ),
        "{text}"
    );
    for raw in [bob.id.as_str(), room.as_str(), "no-such-route-anywhere"] {
        assert!(!text.contains(raw), "{raw} appears in the metrics:\n{text}");
    }

    // A wrong password counts once as a login failure.
    let before = scrape().await;
    let wrong = json!({ "username": "alice", "password": "not-alice's-password" });
    let (status, _) = app.call(reqwest::Method::POST, "/auth/login", None, Some(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let failures = |text: &str| value(text, "confab_login_failures_total");
    assert_eq!(failures(&scrape().await) - failures(&before), 1.0);

    // A client that stops reading is cut off once, and counted once.
    let before = scrape().await;
    let stalled = app.connect(&bob).await;
    let sent = flood_until_cut_off(&app, &scrape_url, &alice, &room, &before).await;
    // The connection is counted slow as it closes, and closed once its task has ended.
    let closed_slow =
        |text: &str| value(text, "confab_websocket_connections_closed_total{code=\"4000\"}");
    let after = eventually("the cut-off connection counted closed", || async {
        let now = scrape().await;
        (closed_slow(&now) > closed_slow(&before)).then_some(now)
    })
    .await;
    let slow = |text: &str| value(text, "confab_slow_connections_closed_total");
    assert_eq!(slow(&after) - slow(&before), 1.0, "{after}");
    assert_eq!(closed_slow(&after) - closed_slow(&before), 1.0, "{after}");
    assert_eq!(stored(&after) - stored(&before), sent as f64, "every message of the flood");
    assert!(value(&after, "confab_deliveries_total") > value(&before, "confab_deliveries_total"));
    assert!(sum(&after, "confab_store_commit_seconds_count") > 0.0, "{after}");
    assert!(value(&after, "confab_store_write_batches_total") > 0.0, "{after}");
    drop(stalled);
}

#[each_store]
async fn with_metrics_addr_the_metrics_leave_the_public_address() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let metrics_addr = free_loopback_address();
    let server = ServerProcess::start(|command| {
        command.arg("--data-dir").arg(data_dir.path());
        command.arg("--metrics-addr").arg(metrics_addr.to_string());
    })
    .await;
    let http = reqwest::Client::new();
    let public = described::send(http.get(format!("http://{}/metrics", server.address))).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    let private =
        http.get(format!("http://{metrics_addr}/metrics")).send().await.expect("private /metrics");
    assert_eq!(private.status(), StatusCode::OK);
    let text = private.text().await.expect("metrics text");
    assert!(text.contains("confab_websocket_connections_opened_total 0"), "{text}");
    // The refused request on the public address was counted, under no route.
    assert!(
        value(
            &text,
            "confab_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ) >= 1.0,
        "{text}"
    );
}

/// The bus's counters, with two nodes. These nodes run in the test process, whose other
/// tests' servers count into the same recorder: the counters must rise by at least this
/// test's traffic, and nothing else can be asserted exactly.
#[tokio::test]
async fn with_several_nodes_the_bus_counts_what_it_publishes_and_receives() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let (one, two) = (&cluster.nodes[0], &cluster.nodes[1]);
    let scrape_url = format!("http://{}/metrics", one.address);
    let alice = one.register("alice").await;
    let bob = two.register("bob").await;
    let room = one.create_room(&alice, "across", "private", &[&bob]).await;
    let mut listening = two.connect(&bob).await;
    let before = scrape(one, &scrape_url).await;
    one.send(&alice, &room, "over the bus").await;
    let created = listening.recv_type("message.created").await;
    assert_eq!(created["message"]["body"], "over the bus");
    // Received is counted before the event reaches bob; published once Redis has
    // answered the publishing node, which may come after.
    for counter in ["confab_bus_published_total", "confab_bus_received_total"] {
        eventually(&format!("{counter} rises"), || async {
            let now = scrape(one, &scrape_url).await;
            (value(&now, counter) > value(&before, counter)).then_some(())
        })
        .await;
    }
    // The lag of what came back: this node's own messages, and the other node's.
    for origin in ["own", "other"] {
        let count = format!("confab_bus_lag_seconds_count{{origin=\"{origin}\"}}");
        eventually(&format!("{count} rises"), || async {
            let now = scrape(one, &scrape_url).await;
            (value(&now, &count) > value(&before, &count)).then_some(())
        })
        .await;
    }
}

/// Sends messages of nearly the largest size, a hundred at a time from eight senders,
/// until the server has cut a connection off as too slow; returns how many it sent.
async fn flood_until_cut_off(
    app: &TestApp,
    scrape_url: &str,
    sender: &TestUser,
    room: &str,
    before: &str,
) -> usize {
    let slow_before = value(before, "confab_slow_connections_closed_total");
    let url = app.url(&format!("/rooms/{room}/messages"));
    let mut sent = 0;
    while sent < FLOOD_MAX {
        let mut lanes = Vec::new();
        for lane in 0..8 {
            let (http, url, token) = (app.http.clone(), url.clone(), sender.token.clone());
            let from = sent + lane * FLOOD_STEP / 8;
            let to = sent + (lane + 1) * FLOOD_STEP / 8;
            lanes.push(tokio::spawn(async move {
                for n in from..to {
                    let mut body = format!("flood {n} ");
                    body.extend(std::iter::repeat_n('x', BODY_CHARS - body.len()));
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "body": body }))
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(response.status(), StatusCode::CREATED);
                }
            }));
        }
        for lane in lanes {
            lane.await.expect("sender");
        }
        sent += FLOOD_STEP;
        let text = scrape(app, scrape_url).await;
        if value(&text, "confab_slow_connections_closed_total") > slow_before {
            return sent;
        }
    }
    panic!("no connection was cut off after {sent} messages");
}

async fn scrape(app: &TestApp, url: &str) -> String {
    let answer = described::send(app.http.get(url)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let content_type = answer.headers[reqwest::header::CONTENT_TYPE].to_str().expect("ascii");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    String::from_utf8(answer.bytes).expect("metrics text")
}

/// The value of one series (its name and labels exactly as rendered), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// The sum of every series of a metric, whatever its labels.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
