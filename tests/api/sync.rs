//! Catching up after a reconnect: exactly what was missed, in order, nothing twice, also
//! while new messages keep arriving and after a long absence.

use std::collections::BTreeSet;

use confab::config::Database;
use serde_json::json;
use sqlx::Connection;

use crate::support::{TestApp, TestUser, WsClient, each_store, spawn_app};

/// Sends `count` messages from `user` over one WebSocket, waiting for every ack.
async fn send_many(app: &TestApp, user: &TestUser, room: &str, count: usize, tag: &str) {
    let mut ws = app.connect(user).await;
    // Keep a bounded window in flight: fast, and within the server's per-connection limit.
    let window = 16;
    let mut acked = 0;
    for i in 0..count {
        ws.send_json(json!({ "type": "send", "room_id": room, "body": format!("{tag} {i}"), "client_id": format!("{tag}-{i}") }))
            .await;
        if i + 1 - acked >= window {
            wait_for_ack(&mut ws).await;
            acked += 1;
        }
    }
    while acked < count {
        wait_for_ack(&mut ws).await;
        acked += 1;
    }
}

/// Skips the sender's own `message.created` events; any error fails the test.
async fn wait_for_ack(ws: &mut WsClient) {
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("message.ack") => return,
            Some("message.created") => continue,
            _ => panic!("expected an ack, got {frame}"),
        }
    }
}

/// Reads a one-room sync until `sync.done`, returning the seqs of its `message.created`
/// frames; the room's `receipts` must close its part.
async fn read_sync(ws: &mut WsClient, room: &str) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut receipts = false;
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("message.created") => {
                assert!(!receipts, "messages come before the room's receipts");
                assert_eq!(frame["room_id"], room);
                seqs.push(frame["seq"].as_i64().expect("seq"));
            }
            Some("receipts") => {
                assert_eq!(frame["room_id"], room);
                receipts = true;
            }
            Some("sync.done") => {
                assert!(receipts, "the room's receipts were sent");
                return seqs;
            }
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
}

#[each_store]
async fn a_client_that_reconnects_receives_exactly_the_500_it_missed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    for i in 0..3 {
        app.send(&alice, &room, &format!("seen {i}")).await;
    }
    let bob_ws = app.connect(&bob).await;
    let last_seen = bob_ws.ready_seq(&room);
    assert_eq!(last_seen, 3);
    drop(bob_ws);

    send_many(&app, &alice, &room, 500, "missed").await;

    let mut bob_ws = app.connect(&bob).await;
    assert_eq!(bob_ws.ready_seq(&room), 503);
    bob_ws
        .send_json(json!({ "type": "sync", "since": { room.as_str(): last_seen }, "id": "s1" }))
        .await;
    let seqs = read_sync(&mut bob_ws, &room).await;
    assert_eq!(seqs, (4..=503).collect::<Vec<_>>(), "exactly the missed ones, in order");
}

#[each_store]
async fn catching_up_while_messages_keep_arriving_delivers_each_exactly_once() {
    const MISSED: usize = 500;
    const DURING: usize = 300;
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    send_many(&app, &alice, &room, MISSED, "missed").await;

    let mut bob_ws = app.connect(&bob).await;
    let boundary = bob_ws.ready_seq(&room);
    assert_eq!(boundary, MISSED as i64);

    // Carol keeps talking while Bob catches up.
    let sender = send_many(&app, &carol, &room, DURING, "during");
    let receiver = async {
        bob_ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 0 } })).await;
        let mut synced = Vec::new();
        let mut live = Vec::new();
        let mut done = false;
        while !done || synced.len() + live.len() < MISSED + DURING {
            let frame = bob_ws.recv().await;
            match frame["type"].as_str() {
                Some("message.created") => {
                    let seq = frame["seq"].as_i64().expect("seq");
                    if seq <= boundary { synced.push(seq) } else { live.push(seq) }
                }
                Some("sync.done") => done = true,
                Some("receipts") => {}
                other => panic!("unexpected frame {other:?}: {frame}"),
            }
        }
        (synced, live)
    };
    let ((), (synced, live)) = tokio::join!(sender, receiver);

    assert_eq!(synced, (1..=boundary).collect::<Vec<_>>(), "the missed part, in order");
    let total = (MISSED + DURING) as i64;
    assert_eq!(live, (boundary + 1..=total).collect::<Vec<_>>(), "the live part, in order");
    let all: BTreeSet<i64> = synced.iter().chain(&live).copied().collect();
    assert_eq!(all.len(), synced.len() + live.len(), "nothing twice");
    bob_ws.expect_silence(std::time::Duration::from_millis(200)).await;
}

#[each_store]
async fn a_long_absence_of_thousands_of_messages_is_caught_up_in_order() {
    const MISSED: usize = 3000;
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.open_dm(&alice, &bob).await;
    send_many(&app, &alice, &room, MISSED, "away").await;

    let mut bob_ws = app.connect(&bob).await;
    bob_ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 0 } })).await;
    let seqs = read_sync(&mut bob_ws, &room).await;
    assert_eq!(seqs.len(), MISSED);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "consecutive seqs");
}

#[each_store]
async fn one_sync_covers_several_rooms_each_in_order() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let first = app.create_room(&alice, "first", "private", &[&bob]).await;
    let second = app.create_room(&alice, "second", "public", &[&bob]).await;
    let untouched = app.create_room(&alice, "third", "private", &[&bob]).await;
    for i in 0..30 {
        app.send(&alice, &first, &format!("first {i}")).await;
        app.send(&alice, &second, &format!("second {i}")).await;
    }
    app.send(&alice, &untouched, "seen already").await;

    let mut bob_ws = app.connect(&bob).await;
    bob_ws
        .send_json(json!({ "type": "sync", "id": "both", "since": { first.as_str(): 10, second.as_str(): 25, untouched.as_str(): 1 } }))
        .await;
    let mut per_room: std::collections::HashMap<String, Vec<i64>> = Default::default();
    let mut receipted = std::collections::HashSet::new();
    loop {
        let frame = bob_ws.recv().await;
        match frame["type"].as_str() {
            Some("message.created") => per_room
                .entry(frame["room_id"].as_str().expect("room").to_owned())
                .or_default()
                .push(frame["seq"].as_i64().expect("seq")),
            Some("sync.done") => {
                assert_eq!(frame["id"], "both");
                break;
            }
            Some("receipts") => {
                receipted.insert(frame["room_id"].as_str().expect("room").to_owned());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(per_room.remove(&first), Some((11..=30).collect()));
    assert_eq!(per_room.remove(&second), Some((26..=30).collect()));
    assert!(per_room.is_empty(), "nothing for a room already up to date: {per_room:?}");
    assert_eq!(receipted, [first, second, untouched].into_iter().collect(), "receipts for each");
}

#[each_store]
async fn a_sync_beyond_what_ready_reported_sends_nothing_twice() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "solo", "private", &[]).await;
    for i in 0..5 {
        app.send(&alice, &room, &format!("m{i}")).await;
    }
    let mut ws = app.connect(&alice).await;
    app.send(&alice, &room, "live one").await;
    let live = ws.recv().await;
    assert_eq!(live["seq"], 6);
    // The client asks from before the boundary: only 1..=5 come, 6 is not repeated.
    ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 0 } })).await;
    assert_eq!(read_sync(&mut ws, &room).await, vec![1, 2, 3, 4, 5]);
    // And a sync from the boundary or later is answered with nothing.
    ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 99 } })).await;
    assert_eq!(read_sync(&mut ws, &room).await, Vec::<i64>::new());
}

#[each_store]
async fn a_room_named_twice_in_one_sync_is_sent_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "solo", "private", &[]).await;
    for i in 0..4 {
        app.send(&alice, &room, &format!("m{i}")).await;
    }
    let mut ws = app.connect(&alice).await;
    let shouted = room.to_uppercase();
    ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 2, shouted.as_str(): 1 } }))
        .await;
    assert_eq!(read_sync(&mut ws, &room).await, vec![2, 3, 4], "from the earliest seq asked, once");
}

/// Every error about a `sync` echoes the frame's `client_id`, as every error does.
#[each_store]
async fn errors_about_a_sync_echo_its_client_id() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[]).await;
    for i in 0..10 {
        app.send(&alice, &room, &format!("m{i}")).await;
    }
    let mut ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;

    // A room one does not follow: refused, and the rest of the sync goes on.
    bob_ws
        .send_json(json!({ "type": "sync", "since": { room.as_str(): 0 }, "id": "s", "client_id": "c-lost" }))
        .await;
    assert_eq!(
        bob_ws.recv().await,
        json!({ "type": "error", "code": "not_found", "message": "Room not found.", "client_id": "c-lost", "room_id": room })
    );
    assert_eq!(bob_ws.recv().await, json!({ "type": "sync.done", "id": "s" }));

    // More syncs than may wait (one answered, four waiting): each one refused is named.
    let syncs = 30;
    for i in 0..syncs {
        let frame = json!({ "type": "sync", "since": { room.as_str(): 0 }, "id": i.to_string(), "client_id": format!("c{i}") });
        ws.send_json(frame).await;
    }
    let (mut answered, mut refused) = (BTreeSet::new(), BTreeSet::new());
    while answered.len() + refused.len() < syncs {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("sync.done") => {
                answered.insert(frame["id"].as_str().expect("id").to_owned());
            }
            Some("error") => {
                assert_eq!(frame["code"], "too_many_syncs", "{frame}");
                let client_id = frame["client_id"].as_str().expect("client_id echoed");
                refused.insert(client_id.trim_start_matches('c').to_owned());
            }
            Some("message.created" | "receipts") => {}
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert!(!refused.is_empty(), "at most 1 + 4 syncs at once; all {syncs} answered");
    let all: BTreeSet<String> = (0..syncs).map(|i| i.to_string()).collect();
    assert_eq!(&answered | &refused, all, "each sync answered or refused, by its ids");
    assert!(answered.is_disjoint(&refused));

    // A sync the server cannot finish: its messages are gone from under it.
    hide_the_messages(&app).await;
    ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 0 }, "client_id": "c-failed" }))
        .await;
    let error = ws.recv_type("error").await;
    assert_eq!((&error["code"], &error["client_id"]), (&json!("sync_failed"), &json!("c-failed")));
}

/// Renames the messages table behind the server's back, through a connection of the
/// test's own to the server's database.
async fn hide_the_messages(app: &TestApp) {
    let rename = "ALTER TABLE messages RENAME TO messages_away";
    match app.database() {
        Database::Embedded => {
            let db = app.data_path().join("confab.db");
            let url = format!("sqlite://{}", db.display());
            let mut outside = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite");
            sqlx::query(rename).execute(&mut outside).await.expect("hide the messages");
        }
        Database::Postgres(url) => {
            let mut outside = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query(rename).execute(&mut outside).await.expect("hide the messages");
            let _ = outside.close().await;
        }
    }
}
