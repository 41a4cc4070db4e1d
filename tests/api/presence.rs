//! Presence and typing: who is online, away or gone, as the users they share a room with see
//! it live and as the member list shows it; and typing relayed to a room's other members.
//!
//! Clients here read presence frames (`with_presence`) and expect each frame in turn, so
//! an unexpected announcement fails the test. Where a test proves that something was *not*
//! sent, it sends a later event the same connection must receive (a message, a presence of
//! someone else) and checks that it comes first: with the one-process bus, the server
//! queues frames for a connection in the order it announces them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    TestApp, TestUser, WsClient, each_store, eventually, spawn_app, spawn_app_with,
};

/// The next frame, which must announce `user`'s `status`; returns it.
async fn expect_presence(ws: &mut WsClient, user: &TestUser, status: &str) -> Value {
    let frame = ws.recv().await;
    assert_eq!(
        frame["type"], "presence",
        "expected {}'s presence {status}: {frame}",
        user.username
    );
    assert_eq!(frame["user_id"], user.id.as_str(), "{frame}");
    assert_eq!(frame["status"], status, "{frame}");
    frame
}

/// Has `sender` post `body` over HTTP and checks that it is the next frame `ws` receives,
/// so that nothing was queued for `ws` before it.
async fn expect_message_next(
    app: &TestApp,
    ws: &mut WsClient,
    sender: &TestUser,
    room: &str,
    body: &str,
) {
    app.send(sender, room, body).await;
    let frame = ws.recv().await;
    assert_eq!(frame["type"], "message.created", "expected {body:?} next, got {frame}");
    assert_eq!(frame["message"]["body"], body, "{frame}");
}

/// Waits until the server has handled every frame `ws` sent before: it answers frames in
/// order, so the pong comes after they took effect.
async fn settle(ws: &mut WsClient) {
    ws.send_json(json!({ "type": "ping", "id": "settle" })).await;
    assert_eq!(ws.recv().await, json!({ "type": "pong", "id": "settle" }));
}

/// Closes a connection the way a browser tab does, with a close frame, and waits for the
/// server's answer.
async fn close_tab(mut ws: WsClient) {
    ws.send_raw(Message::Close(None)).await;
    ws.expect_close().await;
}

async fn set_status(ws: &mut WsClient, status: &str) {
    ws.send_json(json!({ "type": "presence", "status": status })).await;
}

/// `GET /rooms/{room}/members` as `viewer`: the member list and its `online_count`.
async fn members(app: &TestApp, viewer: &TestUser, room: &str) -> (Vec<Value>, u64) {
    let (status, body) = app.get(viewer, &format!("/rooms/{room}/members")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let online = body["online_count"].as_u64().expect("online_count");
    (body["members"].as_array().expect("members").clone(), online)
}

/// One member's entry in a member list.
fn member<'a>(members: &'a [Value], user: &TestUser) -> &'a Value {
    members
        .iter()
        .find(|m| m["id"] == user.id.as_str())
        .unwrap_or_else(|| panic!("{} not among the members: {members:?}", user.username))
}

/// One member's presence and the room's `online_count`, as `viewer` sees them.
async fn presence_in_members(
    app: &TestApp,
    viewer: &TestUser,
    room: &str,
    user: &TestUser,
) -> (Value, u64) {
    let (list, online) = members(app, viewer, room).await;
    (member(&list, user)["presence"].clone(), online)
}

fn parse_time(value: &Value) -> OffsetDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("a timestamp, got {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text} is RFC 3339: {e}"))
}

/// Alice and Bob in a private group, with Alice watching presence.
async fn alice_watching_bob(app: &TestApp) -> (TestUser, TestUser, String, WsClient) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let watcher = app.connect(&alice).await.with_presence();
    (alice, bob, room, watcher)
}

#[each_store]
async fn a_user_stays_online_until_their_last_tab_closes_then_goes_offline_with_last_seen() {
    let app = spawn_app().await;
    let (alice, bob, room, mut watcher) = alice_watching_bob(&app).await;

    let first_tab = app.connect(&bob).await;
    let online = expect_presence(&mut watcher, &bob, "online").await;
    assert_eq!(online["last_seen_at"], Value::Null, "no last_seen_at while connected");
    let second_tab = app.connect(&bob).await;

    close_tab(first_tab).await;
    eventually("the first tab is gone", || async {
        (app.connection_count().await == 2).then_some(())
    })
    .await;
    let (presence, online_count) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence, json!({ "status": "online", "last_seen_at": null }));
    assert_eq!(online_count, 2);
    // Neither the second tab opening nor the first closing was announced.
    expect_message_next(&app, &mut watcher, &bob, &room, "still here").await;

    let before_close = OffsetDateTime::now_utc();
    close_tab(second_tab).await;
    let offline = expect_presence(&mut watcher, &bob, "offline").await;
    let after_offline = OffsetDateTime::now_utc();
    let last_seen = parse_time(&offline["last_seen_at"]);
    assert!(
        before_close - time::Duration::milliseconds(1) <= last_seen && last_seen <= after_offline,
        "last seen {last_seen} while the tab closed, between {before_close} and {after_offline}"
    );

    // The member list agrees once the time is recorded.
    let (presence, online_count) = eventually("bob's last_seen_at is recorded", || async {
        let (presence, online) = presence_in_members(&app, &alice, &room, &bob).await;
        (!presence["last_seen_at"].is_null()).then_some((presence, online))
    })
    .await;
    assert_eq!(presence["status"], "offline");
    assert_eq!(presence["last_seen_at"], offline["last_seen_at"]);
    assert_eq!(online_count, 1, "only alice is online");
}

#[each_store]
async fn a_single_tab_going_away_and_coming_back_is_announced_and_listed() {
    let app = spawn_app().await;
    let (alice, bob, room, mut watcher) = alice_watching_bob(&app).await;
    let mut tab = app.connect(&bob).await;
    expect_presence(&mut watcher, &bob, "online").await;

    set_status(&mut tab, "away").await;
    let away = expect_presence(&mut watcher, &bob, "away").await;
    assert_eq!(away["last_seen_at"], Value::Null, "an away user is still connected");
    let (presence, online_count) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence, json!({ "status": "away", "last_seen_at": null }));
    assert_eq!(online_count, 2, "away counts as online");

    set_status(&mut tab, "online").await;
    expect_presence(&mut watcher, &bob, "online").await;
    let (presence, online_count) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence["status"], "online");
    assert_eq!(online_count, 2);
}

#[each_store]
async fn with_two_tabs_a_user_is_away_only_while_every_tab_says_so() {
    let app = spawn_app().await;
    let (alice, bob, room, mut watcher) = alice_watching_bob(&app).await;
    let mut first = app.connect(&bob).await;
    let mut second = app.connect(&bob).await;
    expect_presence(&mut watcher, &bob, "online").await;

    set_status(&mut first, "away").await;
    settle(&mut first).await;
    let (presence, _) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence["status"], "online", "the second tab is still active");
    expect_message_next(&app, &mut watcher, &bob, &room, "one tab away").await;

    set_status(&mut second, "away").await;
    expect_presence(&mut watcher, &bob, "away").await;
    let (presence, _) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence["status"], "away");

    set_status(&mut first, "online").await;
    expect_presence(&mut watcher, &bob, "online").await;

    // Closing the only active tab leaves a user who is away, not gone.
    close_tab(first).await;
    expect_presence(&mut watcher, &bob, "away").await;
    let (presence, online_count) = presence_in_members(&app, &alice, &room, &bob).await;
    assert_eq!(presence, json!({ "status": "away", "last_seen_at": null }));
    assert_eq!(online_count, 2);

    close_tab(second).await;
    expect_presence(&mut watcher, &bob, "offline").await;
}

#[each_store]
async fn presence_reaches_users_sharing_rooms_once_and_never_strangers_or_the_users_own_tabs() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    // Alice shares two rooms with Bob, and hears of each change of his once.
    let team = app.create_room(&alice, "team", "private", &[&bob]).await;
    app.create_room(&bob, "side", "private", &[&alice]).await;
    // Carol shares a room with Dave only; Bob's presence is none of her business.
    app.create_room(&carol, "elsewhere", "private", &[&dave]).await;
    let mut alice_ws = app.connect(&alice).await.with_presence();
    let mut stranger = app.connect(&carol).await.with_presence();

    let mut bob_watching = app.connect(&bob).await.with_presence();
    expect_presence(&mut alice_ws, &bob, "online").await;
    let mut bob_second = app.connect(&bob).await.with_presence();
    set_status(&mut bob_watching, "away").await;
    set_status(&mut bob_second, "away").await;
    expect_presence(&mut alice_ws, &bob, "away").await;

    // Bob's own tabs heard nothing of Bob: the next thing each receives is this message.
    app.send(&alice, &team, "are you there?").await;
    for tab in [&mut bob_watching, &mut bob_second] {
        let frame = tab.recv().await;
        assert_eq!(frame["type"], "message.created", "not a presence of bob's own: {frame}");
    }
    assert_eq!(alice_ws.recv().await["type"], "message.created");

    close_tab(bob_second).await;
    close_tab(bob_watching).await;
    expect_presence(&mut alice_ws, &bob, "offline").await;

    // Carol hears of Dave, whom she shares a room with, and of Bob nothing at all before.
    let _dave_ws = app.connect(&dave).await;
    expect_presence(&mut stranger, &dave, "online").await;
}

#[each_store]
async fn a_connection_that_stops_answering_turns_its_user_offline_after_the_heartbeat_timeout() {
    let app = spawn_app_with(|settings| {
        settings.heartbeat_interval = Duration::from_millis(100);
        settings.heartbeat_timeout = Duration::from_millis(400);
    })
    .await;
    let (_alice, bob, _room, mut watcher) = alice_watching_bob(&app).await;

    // Bob's client reads nothing from now on, so it never answers a ping: a vanished peer.
    let _silent = app.connect(&bob).await;
    let silent_since = tokio::time::Instant::now();
    expect_presence(&mut watcher, &bob, "online").await;

    // The watcher keeps reading, which answers its own pings.
    let bound = Duration::from_secs(3);
    let frame = match watcher.next_frame(bound).await {
        Ok(Some(frame)) => frame,
        Ok(None) => panic!("bob still not offline {bound:?} after he fell silent"),
        Err(ended) => panic!("the watcher's connection ended: {ended:?}"),
    };
    assert_eq!(frame["type"], "presence", "{frame}");
    assert_eq!(frame["user_id"], bob.id.as_str());
    assert_eq!(frame["status"], "offline");
    assert!(frame["last_seen_at"].is_string(), "{frame}");
    assert!(
        silent_since.elapsed() < bound,
        "offline {:?} after the silence began",
        silent_since.elapsed()
    );
    assert_eq!(app.connection_count().await, 1, "only the watcher is left");
}

#[each_store]
async fn a_connection_dropped_without_a_close_frame_turns_its_user_offline_at_once() {
    // The default heartbeat (30 s, closed after 75 s) is far beyond the bound below, so
    // only noticing the dropped socket can pass this test.
    let app = spawn_app().await;
    let (_alice, bob, _room, mut watcher) = alice_watching_bob(&app).await;
    let tab = app.connect(&bob).await;
    expect_presence(&mut watcher, &bob, "online").await;

    // Dropping the stream closes the TCP connection with no WebSocket close frame.
    drop(tab);
    let bound = Duration::from_secs(5);
    match watcher.next_frame(bound).await {
        Ok(Some(frame)) => {
            assert_eq!(frame["type"], "presence", "{frame}");
            assert_eq!(frame["user_id"], bob.id.as_str());
            assert_eq!(frame["status"], "offline");
        }
        Ok(None) => panic!("bob still not offline {bound:?} after his socket was dropped"),
        Err(ended) => panic!("the watcher's connection ended: {ended:?}"),
    }
}

#[each_store]
async fn members_list_each_members_presence_and_read_seq_and_count_online_and_away() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    app.send(&alice, &room, "one").await;
    app.send(&alice, &room, "two").await;
    let (status, _) = app.post(&bob, &format!("/rooms/{room}/read"), json!({ "seq": 1 })).await;
    assert_eq!(status, StatusCode::OK);

    let _alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    set_status(&mut bob_ws, "away").await;
    settle(&mut bob_ws).await;

    // Carol never connected: offline, never seen.
    let (list, online_count) = members(&app, &carol, &room).await;
    assert_eq!(list.len(), 3);
    let expected = [
        (&alice, json!({ "status": "online", "last_seen_at": null }), 2),
        (&bob, json!({ "status": "away", "last_seen_at": null }), 1),
        (&carol, json!({ "status": "offline", "last_seen_at": null }), 0),
    ];
    for (user, presence, read_seq) in expected {
        let entry = member(&list, user);
        assert_eq!(entry["presence"], presence, "{}: {entry}", user.username);
        assert_eq!(entry["read_seq"], read_seq, "{}: {entry}", user.username);
    }
    assert_eq!(online_count, 2, "alice online and bob away");
}

/// The `typing` frame others receive when `user` types in `room`.
fn typing_of(user: &TestUser, room: &str) -> Value {
    json!({ "type": "typing", "room_id": room, "user_id": user.id })
}

#[each_store]
async fn typing_reaches_the_rooms_other_members_but_not_the_typists_tabs_or_outsiders() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let team = app.create_room(&alice, "team", "private", &[&bob]).await;
    // Carol shares another room with Alice, not this one.
    let lobby = app.create_room(&alice, "lobby", "private", &[&carol]).await;
    let mut typing_tab = app.connect(&alice).await;
    let mut other_tab = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;

    typing_tab.send_json(json!({ "type": "typing", "room_id": team })).await;
    assert_eq!(bob_ws.recv().await, typing_of(&alice, &team));

    // The typing was dispatched to everyone it was for when Bob got it; what each other
    // connection receives next is a later event.
    app.send(&alice, &team, "done typing").await;
    for ws in [&mut typing_tab, &mut other_tab, &mut bob_ws] {
        let frame = ws.recv().await;
        assert_eq!(frame["type"], "message.created", "{frame}");
    }
    expect_message_next(&app, &mut carol_ws, &alice, &lobby, "hi carol").await;
}

#[each_store]
async fn typing_is_relayed_at_most_once_per_two_seconds_per_connection() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;

    let typing = json!({ "type": "typing", "room_id": room });
    alice_ws.send_json(typing.clone()).await;
    assert_eq!(bob_ws.recv().await, typing_of(&alice, &room));
    // The server took the first typing before Bob got it: the pace runs from before now.
    let first_relayed = tokio::time::Instant::now();

    // Time is what this test is about: typing again at once and 1.5 s later, both within
    // the pace, then after it.
    alice_ws.send_json(typing.clone()).await;
    tokio::time::sleep_until(first_relayed + Duration::from_millis(1500)).await;
    alice_ws.send_json(typing.clone()).await;
    settle(&mut alice_ws).await;
    assert!(first_relayed.elapsed() < Duration::from_secs(2), "the test itself was too slow");
    expect_message_next(&app, &mut bob_ws, &alice, &room, "typed").await;

    tokio::time::sleep_until(first_relayed + Duration::from_millis(2100)).await;
    alice_ws.send_json(typing).await;
    assert_eq!(bob_ws.recv().await, typing_of(&alice, &room), "relayed again after 2 s");
}

#[each_store]
async fn typing_in_a_room_one_is_not_in_is_refused_as_not_found() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let private = app.create_room(&alice, "team", "private", &[&bob]).await;
    let public = app.create_room(&alice, "general", "public", &[&bob]).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;

    for (room, client_id) in
        [(&private, "t-1"), (&public, "t-2"), (&"nosuchroom".to_owned(), "t-3")]
    {
        carol_ws
            .send_json(json!({ "type": "typing", "room_id": room, "client_id": client_id }))
            .await;
        let error = carol_ws.recv().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], "not_found", "{error}");
        assert_eq!(error["client_id"], client_id, "{error}");
    }
    // Nothing of Carol's typing reached the members.
    expect_message_next(&app, &mut bob_ws, &alice, &private, "anyone?").await;
    expect_message_next(&app, &mut bob_ws, &alice, &public, "anyone here?").await;
}

#[each_store]
async fn a_new_connection_learns_in_one_snapshot_who_is_around_among_those_it_shares_rooms_with() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let stranger = app.register("stranger").await;
    app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    app.create_room(&stranger, "elsewhere", "private", &[]).await;
    let _alice_ws = app.connect(&alice).await;
    let mut carol_ws = app.connect(&carol).await;
    set_status(&mut carol_ws, "away").await;
    settle(&mut carol_ws).await;
    let _stranger_ws = app.connect(&stranger).await;

    let mut bob_ws = app.connect(&bob).await.with_presence_snapshots();
    let snapshot = bob_ws.recv().await;
    assert_eq!(snapshot["type"], "presence.snapshot", "{snapshot}");
    let mut users: Vec<(String, String)> = snapshot["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().expect("id").to_owned(),
                u["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    users.sort();
    let mut expected =
        vec![(alice.id.clone(), "online".to_owned()), (carol.id.clone(), "away".to_owned())];
    expected.sort();
    assert_eq!(users, expected, "the stranger and bob himself are not listed");
}

#[each_store]
async fn joining_a_room_tells_its_members_the_joiner_is_around_and_the_joiner_who_is() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "lobby", "public", &[]).await;
    let mut alice_ws = app.connect(&alice).await.with_presence();
    let mut bob_ws = app.connect(&bob).await.with_presence_snapshots();
    let first = bob_ws.recv().await;
    assert_eq!(first["users"], json!([]), "bob shares no room yet: {first}");

    let (status, _) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let told = alice_ws.recv().await;
    assert_eq!(told["type"], "presence", "{told}");
    assert_eq!(told["user_id"], bob.id.as_str());
    assert_eq!(told["status"], "online");
    assert_eq!(bob_ws.recv().await["type"], "room.added");
    let snapshot = bob_ws.recv().await;
    assert_eq!(snapshot["type"], "presence.snapshot");
    assert_eq!(snapshot["room_id"], room.as_str());
    assert_eq!(snapshot["users"], json!([{ "user_id": alice.id, "status": "online" }]));
}
