//! Live chat in every kind of room, privacy of private rooms and DMs, idempotent sends,
//! history paging, and the order of events.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, WsClient, each_store, spawn_app};

/// Alice sends over the WebSocket and Bob over HTTP; each sees the other's message live,
/// with consecutive seqs, and Alice's send is acknowledged with its client_id.
async fn chat_both_ways(app: &TestApp, room: &str, alice: &TestUser, bob: &TestUser) {
    let mut alice_ws = app.connect(alice).await;
    let mut bob_ws = app.connect(bob).await;
    let start = alice_ws.ready_seq(room);
    assert_eq!(bob_ws.ready_seq(room), start);

    alice_ws
        .send_json(json!({ "type": "send", "room_id": room, "body": "hi Bob", "client_id": "a-1" }))
        .await;
    let created = bob_ws.recv_type("message.created").await;
    assert_eq!(created["room_id"], room);
    assert_eq!(created["seq"], start + 1);
    assert_eq!(created["message"]["body"], "hi Bob");
    assert_eq!(created["message"]["author_id"], alice.id.as_str());
    // Alice gets her ack and her own message's event, in either order.
    let (first, second) = (alice_ws.recv().await, alice_ws.recv().await);
    let (ack, own) = if first["type"] == "message.ack" { (first, second) } else { (second, first) };
    assert_eq!(ack["type"], "message.ack");
    assert_eq!(ack["client_id"], "a-1");
    assert_eq!(ack["message"]["id"], created["message"]["id"]);
    assert_eq!(own["type"], "message.created");
    assert_eq!(own["seq"], start + 1);

    app.send(bob, room, "hello Alice").await;
    let reply = alice_ws.recv().await;
    assert_eq!(reply["type"], "message.created");
    assert_eq!(reply["message"]["body"], "hello Alice");
    assert_eq!(reply["seq"], start + 2);
    let own = bob_ws.recv_type("message.created").await;
    assert_eq!(own["seq"], start + 2, "the sender's own connections get the event too");
}

#[each_store]
async fn two_users_chat_live_in_a_public_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let (status, _) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    chat_both_ways(&app, &room, &alice, &bob).await;
}

#[each_store]
async fn two_users_chat_live_in_a_private_group() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "secret plans", "private", &[&bob]).await;
    chat_both_ways(&app, &room, &alice, &bob).await;
}

#[each_store]
async fn two_users_chat_live_in_a_direct_conversation() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.open_dm(&alice, &bob).await;
    chat_both_ways(&app, &room, &alice, &bob).await;
}

/// Carol, who is in neither room, cannot read, send, look up or receive anything of a
/// private group or of Alice and Bob's DM, by HTTP or WebSocket.
#[each_store]
async fn outsiders_are_refused_everywhere_for_private_groups_and_dms() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_room(&alice, "secret plans", "private", &[&bob]).await;
    let dm = app.open_dm(&alice, &bob).await;
    app.send(&alice, &group, "before carol looks").await;
    app.send(&alice, &dm, "psst").await;
    let mut carol_ws = app.connect(&carol).await;
    assert_eq!(carol_ws.ready["rooms"], json!([]), "carol's ready lists no rooms");

    for room in [&group, &dm] {
        for (status, body) in [
            app.get(&carol, &format!("/rooms/{room}")).await,
            app.get(&carol, &format!("/rooms/{room}/messages")).await,
            app.get(&carol, &format!("/rooms/{room}/members")).await,
            app.post(&carol, &format!("/rooms/{room}/messages"), json!({ "body": "let me in" }))
                .await,
            app.post(&carol, &format!("/rooms/{room}/join"), json!({})).await,
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(body["error"]["code"], "not_found");
        }
        carol_ws
            .send_json(
                json!({ "type": "send", "room_id": room, "body": "let me in", "client_id": "c-1" }),
            )
            .await;
        let error = carol_ws.recv().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["code"], "not_found");
        assert_eq!(error["client_id"], "c-1");
        carol_ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 0 } })).await;
        let error = carol_ws.recv().await;
        assert_eq!(error["code"], "not_found", "{error}");
        assert_eq!(carol_ws.recv().await["type"], "sync.done");
    }

    let (_, directory) = app.get(&carol, "/rooms/public").await;
    assert_eq!(directory["rooms"], json!([]));
    let (_, mine) = app.get(&carol, "/rooms").await;
    assert_eq!(mine["rooms"], json!([]));

    // Live traffic in both rooms never reaches Carol; history confirms nothing was lost.
    app.send(&bob, &group, "still secret").await;
    app.send(&bob, &dm, "still private").await;
    carol_ws.expect_silence(Duration::from_millis(300)).await;
    let (_, history) = app.get(&alice, &format!("/rooms/{group}/messages")).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));
}

#[each_store]
async fn a_retried_http_send_with_the_same_client_id_is_stored_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let path = format!("/rooms/{room}/messages");
    let send = json!({ "body": "only once", "client_id": "retry-me" });

    let (first_status, first) = app.post(&alice, &path, send.clone()).await;
    let (second_status, second) = app.post(&alice, &path, send).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(second_status, StatusCode::OK, "a retry answers 200 with the stored message");
    assert_eq!(first, second);

    let (_, history) = app.get(&alice, &path).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
    // The same client_id from someone else, or in another room, is a different message.
    let other_room = app.create_room(&alice, "random", "public", &[]).await;
    let (status, _) = app
        .post(
            &alice,
            &format!("/rooms/{other_room}/messages"),
            json!({ "body": "x", "client_id": "retry-me" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[each_store]
async fn a_retried_websocket_send_is_stored_and_broadcast_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;

    let send =
        json!({ "type": "send", "room_id": room, "body": "are you there?", "client_id": "dup" });
    alice_ws.send_json(send.clone()).await;
    alice_ws.send_json(send.clone()).await;
    // A retry from a second connection (say, after a reconnect) is still the same message.
    let mut alice_again = app.connect(&alice).await;
    alice_again.send_json(send).await;

    let first = alice_ws.recv_type("message.ack").await;
    let second = alice_ws.recv_type("message.ack").await;
    let third = alice_again.recv_type("message.ack").await;
    assert_eq!(first["message"]["id"], second["message"]["id"]);
    assert_eq!(first["message"]["id"], third["message"]["id"]);

    let created = bob_ws.recv_type("message.created").await;
    assert_eq!(created["message"]["id"], first["message"]["id"]);
    bob_ws.expect_silence(Duration::from_millis(300)).await;
    let (_, history) = app.get(&bob, &format!("/rooms/{room}/messages")).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
}

/// A client that sends without waiting for each ack (a burst of short messages, say) sees
/// them stored, and told to everyone, in the order it sent them. The server runs on several
/// threads here, as it does in production, where its tasks may run in any order.
#[each_store(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sends_on_one_connection_is_stored_in_the_order_sent() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "quick", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let burst = 120;
    for n in 0..burst {
        let frame = json!({ "type": "send", "room_id": room, "body": format!("{n}"), "client_id": format!("b-{n}") });
        alice_ws.send_json(frame).await;
    }
    for _ in 0..burst {
        alice_ws.recv_type("message.ack").await;
    }
    let history = app.whole_history(&alice, &room).await;
    let bodies: Vec<String> =
        history.iter().map(|m| m["body"].as_str().expect("body").to_owned()).collect();
    let sent: Vec<String> = (0..burst).map(|n| n.to_string()).collect();
    assert_eq!(bodies, sent, "stored in the order sent");
    let mut told = Vec::new();
    while told.len() < burst {
        let created = bob_ws.recv_type("message.created").await;
        told.push(created["message"]["body"].as_str().expect("body").to_owned());
    }
    assert_eq!(told, sent, "told in the order sent");
}

fn seqs(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

#[each_store]
async fn history_pages_by_seq_oldest_first() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    for i in 1..=25 {
        app.send(&alice, &room, &format!("message {i}")).await;
    }
    let path = |query: &str| format!("/rooms/{room}/messages?{query}");

    let (_, latest) = app.get(&alice, &path("limit=10")).await;
    assert_eq!(seqs(&latest), (16..=25).collect::<Vec<_>>());
    assert_eq!(latest["has_more"], true);
    assert_eq!(latest["messages"][0]["body"], "message 16");

    let (_, older) = app.get(&alice, &path("before=16&limit=10")).await;
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    let (_, oldest) = app.get(&alice, &path("before=6&limit=10")).await;
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["has_more"], false);

    let (_, newer) = app.get(&alice, &path("after=20")).await;
    assert_eq!(seqs(&newer), (21..=25).collect::<Vec<_>>());
    assert_eq!(newer["has_more"], false);
    let (_, first_five) = app.get(&alice, &path("after=0&limit=5")).await;
    assert_eq!(seqs(&first_five), (1..=5).collect::<Vec<_>>());
    assert_eq!(first_five["has_more"], true);
    let (_, window) = app.get(&alice, &path("after=10&before=14")).await;
    assert_eq!(seqs(&window), vec![11, 12, 13]);

    let (_, everything) = app.get(&alice, &path("limit=200")).await;
    assert_eq!(seqs(&everything), (1..=25).collect::<Vec<_>>());
}

#[each_store]
async fn joining_starts_and_leaving_stops_events_on_open_connections() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    app.send(&alice, &room, "before bob").await;
    let mut bob_ws = app.connect(&bob).await;
    let mut bob_tab2 = app.connect(&bob).await;

    let (status, _) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    for ws in [&mut bob_ws, &mut bob_tab2] {
        let added = ws.recv().await;
        assert_eq!(added["type"], "room.added");
        assert_eq!(added["room_id"], room.as_str());
        assert_eq!(added["last_seq"], 1);
        assert_eq!(added["room"]["name"], "general");
    }

    app.send(&alice, &room, "welcome").await;
    for ws in [&mut bob_ws, &mut bob_tab2] {
        let created = ws.recv().await;
        assert_eq!(created["type"], "message.created");
        assert_eq!(created["seq"], 2);
    }

    let (status, _) = app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for ws in [&mut bob_ws, &mut bob_tab2] {
        let removed = ws.recv().await;
        assert_eq!(removed["type"], "room.removed");
        assert_eq!(removed["room_id"], room.as_str());
    }
    app.send(&alice, &room, "bob is gone").await;
    bob_ws.expect_silence(Duration::from_millis(300)).await;
    bob_tab2.expect_silence(Duration::from_millis(10)).await;
}

/// Several users send at once over their own connections; every member's connection sees
/// every message exactly once, in strictly increasing seq order with no gaps.
#[each_store]
async fn concurrent_senders_produce_one_gap_free_ordered_stream() {
    const SENDERS: usize = 4;
    const EACH: usize = 50;
    let app = spawn_app().await;
    let owner = app.register("owner").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(app.register(&format!("sender{i}")).await);
    }
    let member_refs: Vec<&TestUser> = senders.iter().collect();
    let room = app.create_room(&owner, "busy", "private", &member_refs).await;
    let mut watcher = app.connect(&owner).await;

    let mut tasks = Vec::new();
    for sender in &senders {
        let mut ws: WsClient = app.connect(sender).await;
        let room = room.clone();
        let name = sender.username.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                ws.send_json(json!({ "type": "send", "room_id": room, "body": format!("{name} {i}"), "client_id": format!("{name}-{i}") }))
                    .await;
            }
            for _ in 0..EACH {
                ws.recv_type("message.ack").await;
            }
        }));
    }

    let total = SENDERS * EACH;
    let mut bodies = HashSet::new();
    for expected_seq in 1..=total as i64 {
        let frame = watcher.recv().await;
        assert_eq!(frame["type"], "message.created");
        assert_eq!(frame["seq"], expected_seq, "strictly increasing, no gaps");
        assert!(
            bodies.insert(frame["message"]["body"].as_str().expect("body").to_owned()),
            "no duplicates"
        );
    }
    for task in tasks {
        task.await.expect("sender finished");
    }
    watcher.expect_silence(Duration::from_millis(200)).await;
}
