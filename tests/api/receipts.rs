//! Read and delivered markers: moving them (by frame and over HTTP), the receipts everyone
//! in a room sees, the unread counts a user sees on every connection and after a
//! reconnect, the receipts that close each room of a sync, and privacy.

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, WsClient, each_store, spawn_app};

/// Each member's `(read_seq, delivered_seq)` in a list of receipts, by user id.
fn markers(receipts: &Value) -> BTreeMap<String, (i64, i64)> {
    receipts
        .as_array()
        .unwrap_or_else(|| panic!("a list of receipts, got {receipts}"))
        .iter()
        .map(|r| {
            let user = r["user_id"].as_str().expect("user_id").to_owned();
            let read = r["read_seq"].as_i64().expect("read_seq");
            let delivered = r["delivered_seq"].as_i64().expect("delivered_seq");
            (user, (read, delivered))
        })
        .collect()
}

/// The markers that `(user, read_seq, delivered_seq)` describe.
fn expected_markers(entries: &[(&TestUser, i64, i64)]) -> BTreeMap<String, (i64, i64)> {
    entries.iter().map(|(user, read, delivered)| (user.id.clone(), (*read, *delivered))).collect()
}

/// `GET /rooms/{room}/receipts` as `viewer`, as markers.
async fn receipts(app: &TestApp, viewer: &TestUser, room: &str) -> BTreeMap<String, (i64, i64)> {
    let (status, body) = app.get(viewer, &format!("/rooms/{room}/receipts")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    markers(&body["receipts"])
}

/// The live `receipts` frame that says `user`'s markers in `room` moved (and nobody
/// else's moved in the same half second).
fn receipt(room: &str, user: &TestUser, read_seq: i64, delivered_seq: i64) -> Value {
    json!({
        "type": "receipts",
        "room_id": room,
        "receipts": [{ "user_id": user.id, "read_seq": read_seq, "delivered_seq": delivered_seq }],
    })
}

/// The `unread` frame for a user's counts in `room`.
fn unread(room: &str, last_read_seq: i64, unread_count: i64, mention_count: i64) -> Value {
    json!({
        "type": "unread",
        "room_id": room,
        "last_read_seq": last_read_seq,
        "unread_count": unread_count,
        "mention_count": mention_count,
    })
}

/// The counts as `POST /rooms/{id}/read` answers them.
fn counts(last_read_seq: i64, unread_count: i64, mention_count: i64) -> Value {
    json!({
        "last_read_seq": last_read_seq,
        "unread_count": unread_count,
        "mention_count": mention_count,
    })
}

/// The next `count` frames, which must be of different types, by type: for frames that
/// one change produces together, in whatever order.
async fn recv_by_type(ws: &mut WsClient, count: usize) -> HashMap<String, Value> {
    let mut frames = HashMap::new();
    for _ in 0..count {
        let frame = ws.recv().await;
        let kind = frame["type"].as_str().expect("type").to_owned();
        if let Some(earlier) = frames.insert(kind, frame.clone()) {
            panic!("two frames of one type: {earlier} and {frame}");
        }
    }
    frames
}

/// Reads what a reader's own connection receives after their read marker moves: their
/// counts and their receipt, and checks both.
async fn expect_own_read(ws: &mut WsClient, unread_frame: Value, receipt_frame: Value) {
    let frames = recv_by_type(ws, 2).await;
    assert_eq!(frames.get("unread"), Some(&unread_frame), "{frames:?}");
    assert_eq!(frames.get("receipts"), Some(&receipt_frame), "{frames:?}");
}

/// Reads `count` `message.created` frames.
async fn expect_messages(ws: &mut WsClient, count: usize) {
    for _ in 0..count {
        let frame = ws.recv().await;
        assert_eq!(frame["type"], "message.created", "{frame}");
    }
}

/// `room`'s entry in a `ready` frame, or in `GET /rooms`: its seq and the reader's counts.
fn room_entry<'a>(rooms: &'a Value, room: &str, id_field: &str) -> &'a Value {
    rooms
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r[id_field] == room)
        .unwrap_or_else(|| panic!("room {room} not in {rooms}"))
}

/// `room` as `GET /rooms` lists it for `user`.
async fn listed_room(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let (status, body) = app.get(user, "/rooms").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    room_entry(&body["rooms"], room, "id").clone()
}

/// The last seq and the counts of a room, as `ready` and `GET /rooms` both carry them.
fn seq_and_counts(entry: &Value) -> Value {
    json!({
        "last_seq": entry["last_seq"],
        "last_read_seq": entry["last_read_seq"],
        "unread_count": entry["unread_count"],
        "mention_count": entry["mention_count"],
    })
}

fn seq_and_counts_of(last_seq: i64, last_read_seq: i64, unread: i64, mentions: i64) -> Value {
    json!({
        "last_seq": last_seq,
        "last_read_seq": last_read_seq,
        "unread_count": unread,
        "mention_count": mentions,
    })
}

async fn read_over_http(app: &TestApp, user: &TestUser, room: &str, seq: i64) -> Value {
    let (status, body) =
        app.post(user, &format!("/rooms/{room}/read"), json!({ "seq": seq })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Alice and Bob in a private group where Alice has posted `bodies`.
async fn group_with_messages(app: &TestApp, bodies: &[&str]) -> (TestUser, TestUser, String) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    for body in bodies {
        app.send(&alice, &room, body).await;
    }
    (alice, bob, room)
}

#[each_store]
async fn a_read_frame_moves_the_marker_forward_only_up_to_the_rooms_last_seq() {
    let app = spawn_app().await;
    let (_alice, bob, room) = group_with_messages(&app, &["one", "two", "three"]).await;
    let mut bob_ws = app.connect(&bob).await;

    bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 2 })).await;
    expect_own_read(&mut bob_ws, unread(&room, 2, 1, 0), receipt(&room, &bob, 2, 2)).await;

    // A lower seq changes nothing and announces nothing: the next frames are those of the
    // read after it, clamped to the room's last seq.
    bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 1 })).await;
    bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 99 })).await;
    expect_own_read(&mut bob_ws, unread(&room, 3, 0, 0), receipt(&room, &bob, 3, 3)).await;
    assert_eq!(receipts(&app, &bob, &room).await[&bob.id], (3, 3));
}

#[each_store]
async fn reading_over_http_answers_the_counts_and_is_monotonic_clamped_and_cumulative() {
    let app = spawn_app().await;
    let (_alice, bob, room) = group_with_messages(&app, &["one", "hey @bob", "three"]).await;
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &room).await),
        seq_and_counts_of(3, 0, 3, 1)
    );

    // Reading seq 2 covers seq 1 and the mention in seq 2 as well.
    assert_eq!(read_over_http(&app, &bob, &room, 2).await, counts(2, 1, 0));
    assert_eq!(read_over_http(&app, &bob, &room, 1).await, counts(2, 1, 0), "never back");
    assert_eq!(read_over_http(&app, &bob, &room, 0).await, counts(2, 1, 0), "never back");
    assert_eq!(read_over_http(&app, &bob, &room, 99).await, counts(3, 0, 0), "clamped");
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &room).await),
        seq_and_counts_of(3, 3, 0, 0)
    );

    let (status, body) = app.post(&bob, &format!("/rooms/{room}/read"), json!({ "seq": -1 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(read_over_http(&app, &bob, &room, 3).await, counts(3, 0, 0));
}

#[each_store]
async fn everyone_in_a_group_sees_who_read_up_to_which_seq() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;
    app.send(&alice, &room, "one").await;
    app.send(&alice, &room, "two").await;
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        expect_messages(ws, 2).await;
    }

    bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 2 })).await;
    expect_own_read(&mut bob_ws, unread(&room, 2, 0, 0), receipt(&room, &bob, 2, 2)).await;
    assert_eq!(alice_ws.recv().await, receipt(&room, &bob, 2, 2));
    assert_eq!(carol_ws.recv().await, receipt(&room, &bob, 2, 2));

    read_over_http(&app, &carol, &room, 1).await;
    expect_own_read(&mut carol_ws, unread(&room, 1, 1, 0), receipt(&room, &carol, 1, 1)).await;
    assert_eq!(alice_ws.recv().await, receipt(&room, &carol, 1, 1));
    assert_eq!(bob_ws.recv().await, receipt(&room, &carol, 1, 1));

    // Alice read her own messages by sending them.
    let expected = expected_markers(&[(&alice, 2, 2), (&bob, 2, 2), (&carol, 1, 1)]);
    for viewer in [&alice, &bob, &carol] {
        assert_eq!(receipts(&app, viewer, &room).await, expected, "as {}", viewer.username);
    }
}

#[each_store]
async fn in_a_dm_the_sender_sees_the_message_delivered_then_read() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dm = app.open_dm(&alice, &bob).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    app.send(&alice, &dm, "hi bob").await;
    expect_messages(&mut alice_ws, 1).await;
    expect_messages(&mut bob_ws, 1).await;

    bob_ws.send_json(json!({ "type": "delivered", "room_id": dm, "seq": 1 })).await;
    assert_eq!(alice_ws.recv().await, receipt(&dm, &bob, 0, 1), "delivered, not read");
    // Only delivery moved: Bob's counts did not change, so he gets no `unread`.
    assert_eq!(bob_ws.recv().await, receipt(&dm, &bob, 0, 1));
    assert_eq!(receipts(&app, &alice, &dm).await[&bob.id], (0, 1));

    // Delivered never goes back, nor past the room's last seq; reading implies delivery.
    bob_ws.send_json(json!({ "type": "delivered", "room_id": dm, "seq": 0 })).await;
    bob_ws.send_json(json!({ "type": "delivered", "room_id": dm, "seq": 7 })).await;
    bob_ws.send_json(json!({ "type": "read", "room_id": dm, "seq": 1 })).await;
    assert_eq!(alice_ws.recv().await, receipt(&dm, &bob, 1, 1), "read");
    expect_own_read(&mut bob_ws, unread(&dm, 1, 0, 0), receipt(&dm, &bob, 1, 1)).await;
    assert_eq!(
        receipts(&app, &alice, &dm).await,
        expected_markers(&[(&alice, 1, 1), (&bob, 1, 1)])
    );
}

#[each_store]
async fn unread_counts_are_exact_per_room_and_a_read_on_one_tab_updates_every_tab() {
    let app = spawn_app().await;
    let (alice, bob, first) = group_with_messages(&app, &["one", "two", "three"]).await;
    let second = app.create_room(&alice, "other", "private", &[&bob]).await;
    app.send(&alice, &second, "ping @bob").await;
    let mut reading_tab = app.connect(&bob).await;
    let mut other_tab = app.connect(&bob).await;
    for tab in [&reading_tab, &other_tab] {
        let rooms = &tab.ready["rooms"];
        assert_eq!(
            seq_and_counts(room_entry(rooms, &first, "room_id")),
            seq_and_counts_of(3, 0, 3, 0)
        );
        assert_eq!(
            seq_and_counts(room_entry(rooms, &second, "room_id")),
            seq_and_counts_of(1, 0, 1, 1)
        );
    }

    reading_tab.send_json(json!({ "type": "read", "room_id": first, "seq": 2 })).await;
    for tab in [&mut reading_tab, &mut other_tab] {
        expect_own_read(tab, unread(&first, 2, 1, 0), receipt(&first, &bob, 2, 2)).await;
    }
    reading_tab.send_json(json!({ "type": "read", "room_id": first, "seq": 3 })).await;
    for tab in [&mut reading_tab, &mut other_tab] {
        expect_own_read(tab, unread(&first, 3, 0, 0), receipt(&first, &bob, 3, 3)).await;
    }
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &first).await),
        seq_and_counts_of(3, 3, 0, 0)
    );
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &second).await),
        seq_and_counts_of(1, 0, 1, 1),
        "the other room is untouched"
    );

    // A read over HTTP reaches the connections too.
    read_over_http(&app, &bob, &second, 1).await;
    for tab in [&mut reading_tab, &mut other_tab] {
        expect_own_read(tab, unread(&second, 1, 0, 0), receipt(&second, &bob, 1, 1)).await;
    }
}

#[each_store]
async fn unread_counts_are_right_after_a_reconnect_in_ready_and_in_the_room_list() {
    let app = spawn_app().await;
    let (alice, bob, room) = group_with_messages(&app, &["one", "two"]).await;
    let mut bob_ws = app.connect(&bob).await;
    bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 1 })).await;
    expect_own_read(&mut bob_ws, unread(&room, 1, 1, 0), receipt(&room, &bob, 1, 1)).await;
    drop(bob_ws);

    app.send(&alice, &room, "three").await;
    app.send(&alice, &room, "four for @bob").await;
    let expected = seq_and_counts_of(4, 1, 3, 1);
    let bob_ws = app.connect(&bob).await;
    assert_eq!(seq_and_counts(room_entry(&bob_ws.ready["rooms"], &room, "room_id")), expected);
    assert_eq!(seq_and_counts(&listed_room(&app, &bob, &room).await), expected);
}

/// `ready`'s totals over every room, as the room list's counts add up.
fn totals(ready: &Value) -> (i64, i64) {
    (
        ready["total_unread"].as_i64().expect("total_unread"),
        ready["total_mentions"].as_i64().expect("total_mentions"),
    )
}

#[each_store]
async fn ready_adds_up_unread_messages_and_mentions_over_every_room() {
    let app = spawn_app().await;
    let (alice, bob, group) = group_with_messages(&app, &["one", "two for @bob", "three"]).await;
    let dm = app.open_dm(&alice, &bob).await;
    app.send(&alice, &dm, "psst @bob").await;
    let public = app.create_room(&alice, "lobby", "public", &[]).await;
    app.post(&bob, &format!("/rooms/{public}/join"), json!({})).await;
    app.send(&alice, &public, "welcome").await;
    app.send(&bob, &public, "thanks").await; // reads the welcome
    let quiet = app.create_room(&bob, "quiet", "private", &[]).await;

    let bob_ws = app.connect(&bob).await;
    assert_eq!(totals(&bob_ws.ready), (3 + 1, 1 + 1), "{}", bob_ws.ready);
    let listed: Vec<Value> = [&group, &dm, &public, &quiet]
        .into_iter()
        .map(|room| room_entry(&bob_ws.ready["rooms"], room, "room_id").clone())
        .collect();
    let sum = |field: &str| listed.iter().map(|r| r[field].as_i64().expect("count")).sum::<i64>();
    assert_eq!(totals(&bob_ws.ready), (sum("unread_count"), sum("mention_count")));
    drop(bob_ws);

    read_over_http(&app, &bob, &group, 2).await;
    assert_eq!(totals(&app.connect(&bob).await.ready), (1 + 1, 1), "only the DM's mention is left");
    assert_eq!(totals(&app.connect(&alice).await.ready), (1, 0), "Bob's thanks");
}

#[each_store]
async fn ones_own_messages_never_count_as_unread_in_ready_or_the_room_list() {
    let app = spawn_app().await;
    let (alice, bob, room) = group_with_messages(&app, &["one", "two"]).await;
    app.send(&bob, &room, "my reply").await;
    app.send(&bob, &room, "and another").await;

    // Sending reads what came before; Bob's own messages are not unread to him.
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &room).await),
        seq_and_counts_of(4, 4, 0, 0)
    );
    // To Alice, only Bob's two count.
    assert_eq!(
        seq_and_counts(&listed_room(&app, &alice, &room).await),
        seq_and_counts_of(4, 2, 2, 0)
    );
    let bob_ws = app.connect(&bob).await;
    assert_eq!(
        seq_and_counts(room_entry(&bob_ws.ready["rooms"], &room, "room_id")),
        seq_and_counts_of(4, 4, 0, 0)
    );
}

#[each_store]
async fn deleted_messages_stop_counting_as_unread_and_as_mentions() {
    let app = spawn_app().await;
    let (alice, bob, room) = group_with_messages(&app, &["one", "hey @bob", "three"]).await;
    assert_eq!(
        seq_and_counts(&listed_room(&app, &bob, &room).await),
        seq_and_counts_of(3, 0, 3, 1)
    );

    let (_, history) = app.get(&alice, &format!("/rooms/{room}/messages")).await;
    let mention_id = history["messages"][1]["id"].as_str().expect("message id").to_owned();
    let (status, body) = app.delete(&alice, &format!("/rooms/{room}/messages/{mention_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The deletion takes seq 4 but is no message to read.
    let expected = seq_and_counts_of(4, 0, 2, 0);
    assert_eq!(seq_and_counts(&listed_room(&app, &bob, &room).await), expected);
    let bob_ws = app.connect(&bob).await;
    assert_eq!(seq_and_counts(room_entry(&bob_ws.ready["rooms"], &room, "room_id")), expected);
    assert_eq!(read_over_http(&app, &bob, &room, 1).await, counts(1, 1, 0));
}

/// Reads a sync until `sync.done`: per room, the seqs of its messages, and the receipts
/// that must close it.
async fn read_sync(ws: &mut WsClient) -> BTreeMap<String, (Vec<i64>, Value)> {
    let mut messages: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut closed: BTreeMap<String, (Vec<i64>, Value)> = BTreeMap::new();
    loop {
        let frame = ws.recv().await;
        let room = frame["room_id"].as_str().unwrap_or_default().to_owned();
        match frame["type"].as_str() {
            Some("message.created") => {
                assert!(!closed.contains_key(&room), "a message after its room's receipts");
                let seq = frame["seq"].as_i64().expect("seq");
                messages.entry(room).or_default().push(seq);
            }
            Some("receipts") => {
                let seqs = messages.remove(&room).unwrap_or_default();
                let earlier = closed.insert(room, (seqs, frame["receipts"].clone()));
                assert!(earlier.is_none(), "a room's receipts twice: {frame}");
            }
            Some("sync.done") => {
                assert_eq!(frame["id"], "s1");
                assert!(messages.is_empty(), "rooms without receipts: {messages:?}");
                return closed;
            }
            _ => panic!("unexpected frame in a sync: {frame}"),
        }
    }
}

#[each_store]
async fn a_sync_ends_each_room_with_its_receipts_before_sync_done() {
    let app = spawn_app().await;
    let (alice, bob, first) = group_with_messages(&app, &["one", "two"]).await;
    let second = app.create_room(&alice, "other", "private", &[&bob]).await;
    app.send(&alice, &second, "elsewhere").await;
    read_over_http(&app, &bob, &first, 1).await;

    let mut bob_ws = app.connect(&bob).await;
    bob_ws
        .send_json(json!({ "type": "sync", "id": "s1", "since": { first.as_str(): 0, second.as_str(): 1 } }))
        .await;
    let synced = read_sync(&mut bob_ws).await;
    assert_eq!(synced.len(), 2, "both rooms: {synced:?}");

    let (seqs, first_receipts) = &synced[&first];
    assert_eq!(seqs, &[1, 2]);
    assert_eq!(markers(first_receipts), expected_markers(&[(&alice, 2, 2), (&bob, 1, 1)]));
    assert_eq!(markers(first_receipts), receipts(&app, &bob, &first).await);
    // Nothing missed in the second room, but its receipts still come.
    let (seqs, second_receipts) = &synced[&second];
    assert!(seqs.is_empty(), "{seqs:?}");
    assert_eq!(markers(second_receipts), expected_markers(&[(&alice, 1, 1), (&bob, 0, 0)]));
}

#[each_store]
async fn outsiders_cannot_read_mark_or_see_receipts_of_private_groups_and_dms() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_room(&alice, "team", "private", &[&bob]).await;
    let dm = app.open_dm(&alice, &bob).await;
    let lobby = app.create_room(&alice, "lobby", "private", &[&carol]).await;
    app.send(&alice, &group, "secret").await;
    app.send(&alice, &dm, "psst").await;
    let mut carol_ws = app.connect(&carol).await;
    let mut bob_ws = app.connect(&bob).await;

    for room in [&group, &dm] {
        for (status, body) in [
            app.get(&carol, &format!("/rooms/{room}/messages")).await,
            app.post(&carol, &format!("/rooms/{room}/read"), json!({ "seq": 1 })).await,
            app.get(&carol, &format!("/rooms/{room}/receipts")).await,
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(body["error"]["code"], "not_found", "{body}");
        }
        for kind in ["read", "delivered"] {
            carol_ws
                .send_json(json!({ "type": kind, "room_id": room, "seq": 1, "client_id": kind }))
                .await;
            let error = carol_ws.recv().await;
            assert_eq!(error["type"], "error", "{error}");
            assert_eq!(error["code"], "not_found", "{error}");
            assert_eq!(error["client_id"], kind, "{error}");
        }
        assert!(!receipts(&app, &alice, room).await.contains_key(&carol.id), "no marker for carol");

        // Bob's read is announced in the room, and not to Carol: the next thing she
        // receives is a message in her own room.
        bob_ws.send_json(json!({ "type": "read", "room_id": room, "seq": 1 })).await;
        expect_own_read(&mut bob_ws, unread(room, 1, 0, 0), receipt(room, &bob, 1, 1)).await;
        app.send(&alice, &lobby, "meanwhile").await;
        let frame = carol_ws.recv().await;
        assert_eq!(frame["type"], "message.created", "{frame}");
        assert_eq!(frame["room_id"], lobby.as_str(), "{frame}");
    }
}

#[each_store]
async fn delivery_is_kept_in_direct_conversations_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_room(&alice, "team", "private", &[&bob]).await;
    app.send(&alice, &group, "hello team").await;
    let mut bob_ws = app.connect(&bob).await;
    bob_ws.send_json(json!({ "type": "delivered", "room_id": group, "seq": 1 })).await;
    bob_ws.send_json(json!({ "type": "ping", "id": "after" })).await;
    assert_eq!(bob_ws.recv().await["type"], "pong", "no receipt for a group delivery");
    let (_, body) = app.get(&alice, &format!("/rooms/{group}/receipts")).await;
    let bob_marker = body["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["user_id"] == bob.id.as_str())
        .cloned();
    assert_eq!(
        bob_marker.map(|r| (r["read_seq"].clone(), r["delivered_seq"].clone())),
        Some((json!(0), json!(0)))
    );
}

#[each_store]
async fn the_members_and_receipts_of_a_public_room_are_for_its_members() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "lobby", "public", &[]).await;
    for path in [format!("/rooms/{room}/members"), format!("/rooms/{room}/receipts")] {
        let (status, body) = app.get(&carol, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_member");
    }
    // The room itself and its history stay open to anyone signed in.
    assert_eq!(app.get(&carol, &format!("/rooms/{room}")).await.0, StatusCode::OK);
    assert_eq!(app.get(&carol, &format!("/rooms/{room}/messages")).await.0, StatusCode::OK);
}
