//! Rooms: the public directory, private groups and their membership rules, direct
//! messages, the caller's room list with unread counts, and the `room.added` and
//! `room.removed` frames that membership changes send.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, each_store, spawn_app};

/// A well-formed id that no user or room has (ids are random 63-bit values; 1 is never
/// drawn in practice).
const NO_SUCH_ID: &str = "0000000000001";

/// The rooms `user` sees in `GET /rooms`.
async fn my_rooms(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, body) = app.get(user, "/rooms").await;
    assert_eq!(status, StatusCode::OK, "my rooms: {body}");
    body["rooms"].as_array().expect("rooms").clone()
}

/// The rooms `user` sees in the public directory for the query string `query`.
async fn directory(app: &TestApp, user: &TestUser, query: &str) -> Vec<Value> {
    let (status, body) = app.get(user, &format!("/rooms/public{query}")).await;
    assert_eq!(status, StatusCode::OK, "directory: {body}");
    body["rooms"].as_array().expect("rooms").clone()
}

fn find<'a>(rooms: &'a [Value], room: &str) -> Option<&'a Value> {
    rooms.iter().find(|r| r["id"] == room)
}

fn names(rooms: &[Value]) -> Vec<&str> {
    rooms.iter().map(|r| r["name"].as_str().expect("name")).collect()
}

/// A room as `user` sees it in `GET /rooms/{id}`.
async fn room_as(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let (status, body) = app.get(user, &format!("/rooms/{room}")).await;
    assert_eq!(status, StatusCode::OK, "room: {body}");
    body
}

async fn member_ids(app: &TestApp, user: &TestUser, room: &str) -> Vec<String> {
    let (status, body) = app.get(user, &format!("/rooms/{room}/members")).await;
    assert_eq!(status, StatusCode::OK, "members: {body}");
    body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_str().expect("member id").to_owned())
        .collect()
}

/// Asserts a JSON error response: status and stable code.
#[track_caller]
fn assert_error(response: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_eq!(response.1["error"]["code"], code, "{}", response.1);
}

async fn unread_count(app: &TestApp, user: &TestUser, room: &str) -> i64 {
    room_as(app, user, room).await["unread_count"].as_i64().expect("unread_count")
}

// Public rooms.

#[each_store]
async fn public_rooms_are_listed_with_joined_flag_and_member_count() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;

    let listed = directory(&app, &bob, "").await;
    let entry = find(&listed, &room).expect("public room listed for a non-member");
    assert_eq!(entry["name"], "General");
    assert_eq!(entry["kind"], "public");
    assert_eq!(entry["joined"], false);
    assert_eq!(entry["member_count"], 1);

    let (status, joined) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "join: {joined}");
    assert_eq!(joined["joined"], true);

    let listed = directory(&app, &bob, "").await;
    let entry = find(&listed, &room).expect("still listed");
    assert_eq!(entry["joined"], true);
    assert_eq!(entry["member_count"], 2);
    assert_eq!(find(&directory(&app, &alice, "").await, &room).expect("listed")["joined"], true);
}

#[each_store]
async fn the_directory_filters_by_name_prefix_in_any_case() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for name in ["Rustaceans", "rust-lang", "python", "trust-and-safety"] {
        app.create_room(&alice, name, "public", &[]).await;
    }

    let mut matched = names(&directory(&app, &alice, "?q=rust").await).join(",");
    assert_eq!(matched, "rust-lang,Rustaceans", "a prefix, not a substring, in any case");
    matched = names(&directory(&app, &alice, "?q=RUST-").await).join(",");
    assert_eq!(matched, "rust-lang");
    assert!(directory(&app, &alice, "?q=go").await.is_empty());
    assert_eq!(directory(&app, &alice, "").await.len(), 4, "no query lists every public room");
}

#[each_store]
async fn joining_a_public_room_twice_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;

    for _ in 0..2 {
        let (status, body) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "join: {body}");
        assert_eq!(body["member_count"], 2, "{body}");
        assert_eq!(body["role"], "member", "joining never makes an owner: {body}");
    }
    assert_eq!(member_ids(&app, &alice, &room).await, [alice.id.clone(), bob.id.clone()]);
    let (status, body) = app.post(&alice, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "the owner joining again: {body}");
    assert_eq!(body["role"], "owner", "joining again keeps the owner's role: {body}");
}

#[each_store]
async fn a_member_can_leave_a_public_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;
    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;

    let (status, body) = app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "leave: {body}");

    assert!(find(&my_rooms(&app, &bob).await, &room).is_none(), "left rooms are not mine");
    let seen = room_as(&app, &bob, &room).await;
    assert_eq!(seen["joined"], false);
    assert_eq!(seen["member_count"], 1);
    let sent = app.post(&bob, &format!("/rooms/{room}/messages"), json!({"body": "hi"})).await;
    assert_error(&sent, StatusCode::FORBIDDEN, "not_member");
    let left_again = app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    assert_error(&left_again, StatusCode::FORBIDDEN, "not_member");
}

#[each_store]
async fn public_room_names_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_room(&alice, "Lobby", "public", &[]).await;

    for taken in ["Lobby", "LOBBY", "  lobby  "] {
        let response = app.post(&bob, "/rooms", json!({"name": taken, "kind": "public"})).await;
        assert_error(&response, StatusCode::CONFLICT, "room_name_taken");
        assert_eq!(response.1["error"]["field"], "name");
    }
    assert_eq!(directory(&app, &bob, "?q=lobby").await.len(), 1);
}

#[each_store]
async fn public_room_names_are_unique_regardless_of_case_beyond_ascii() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.create_room(&alice, "Café", "public", &[]).await;

    let response = app.post(&alice, "/rooms", json!({"name": "CAFÉ", "kind": "public"})).await;
    assert_error(&response, StatusCode::CONFLICT, "room_name_taken");
}

#[each_store]
async fn the_directory_prefix_ignores_case_beyond_ascii() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "Élan vital", "public", &[]).await;

    let matched = directory(&app, &alice, "?q=%C3%A9lan").await;
    assert_eq!(matched.len(), 1, "q=élan finds \"Élan vital\": {matched:?}");
    assert_eq!(matched[0]["id"], room.as_str());
}

#[each_store]
async fn private_groups_may_reuse_a_public_rooms_name() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.create_room(&alice, "Lobby", "public", &[]).await;

    app.create_room(&alice, "lobby", "private", &[]).await;
    app.create_room(&alice, "lobby", "private", &[]).await;
}

// Private groups.

#[each_store]
async fn private_groups_are_invisible_to_non_members() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mallory = app.register("mallory").await;
    let room = app.create_room(&alice, "Secret plans", "private", &[]).await;

    assert!(directory(&app, &mallory, "").await.is_empty());
    assert!(directory(&app, &mallory, "?q=secret").await.is_empty());
    assert!(directory(&app, &alice, "").await.is_empty(), "not listed even for members");
    assert!(find(&my_rooms(&app, &mallory).await, &room).is_none());

    // Every answer is the one a room that does not exist gets, so probing reveals nothing.
    for id in [room.as_str(), NO_SUCH_ID] {
        assert_error(
            &app.get(&mallory, &format!("/rooms/{id}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            &app.get(&mallory, &format!("/rooms/{id}/members")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            &app.post(&mallory, &format!("/rooms/{id}/join"), json!({})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            &app.get(&mallory, &format!("/rooms/{id}/messages")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    assert_eq!(member_ids(&app, &alice, &room).await, [alice.id.as_str()], "mallory got nowhere");
}

#[each_store]
async fn any_member_of_a_private_group_can_add_members() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "Team", "private", &[&bob]).await;

    let (status, body) =
        app.post(&bob, &format!("/rooms/{room}/members"), json!({"user_id": carol.id})).await;
    assert_eq!(status, StatusCode::OK, "a plain member adds: {body}");
    assert_eq!(body["member_count"], 3);

    let seen = room_as(&app, &carol, &room).await;
    assert_eq!(seen["joined"], true);
    assert_eq!(seen["role"], "member");
    assert!(find(&my_rooms(&app, &carol).await, &room).is_some());
    app.send(&carol, &room, "thanks for having me").await;
}

#[each_store]
async fn only_the_owner_can_remove_others_from_a_private_group() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "Team", "private", &[&bob, &carol]).await;

    let refused = app.delete(&bob, &format!("/rooms/{room}/members/{}", carol.id)).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "not_owner");
    assert_eq!(member_ids(&app, &alice, &room).await.len(), 3, "nobody was removed");

    let (status, body) = app.delete(&alice, &format!("/rooms/{room}/members/{}", carol.id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the owner removes: {body}");
    assert!(!member_ids(&app, &alice, &room).await.contains(&carol.id));
    assert_error(
        &app.get(&carol, &format!("/rooms/{room}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let sent = app.post(&carol, &format!("/rooms/{room}/messages"), json!({"body": "hi"})).await;
    assert_error(&sent, StatusCode::NOT_FOUND, "not_found");
}

#[each_store]
async fn a_member_can_remove_themself_from_a_private_group() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "Team", "private", &[&bob]).await;

    let (status, body) = app.delete(&bob, &format!("/rooms/{room}/members/{}", bob.id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "remove oneself: {body}");
    assert_eq!(member_ids(&app, &alice, &room).await, [alice.id.as_str()]);
    assert_error(
        &app.get(&bob, &format!("/rooms/{room}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[each_store]
async fn when_the_owner_leaves_the_longest_standing_member_becomes_owner() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let members = [
        app.register("bob").await,
        app.register("carol").await,
        app.register("dave").await,
        app.register("erin").await,
    ];
    let room = app.create_room(&alice, "Team", "private", &[]).await;
    for member in &members {
        let (status, body) = app
            .post(&alice, &format!("/rooms/{room}/members"), json!({"user_id": member.id}))
            .await;
        assert_eq!(status, StatusCode::OK, "add: {body}");
        // Join times are in milliseconds; keep them apart so seniority is unambiguous.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (status, body) = app.post(&alice, &format!("/rooms/{room}/leave"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "owner leaves: {body}");
    let [bob, carol, dave, erin] = &members;
    assert_eq!(room_as(&app, bob, &room).await["role"], "owner", "the first added inherits");
    for other in [carol, dave, erin] {
        assert_eq!(room_as(&app, other, &room).await["role"], "member");
    }
    let (status, body) = app.delete(bob, &format!("/rooms/{room}/members/{}", erin.id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the new owner may remove others: {body}");

    // The same rule again, with the owner removing themself.
    let (status, body) = app.delete(bob, &format!("/rooms/{room}/members/{}", bob.id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(room_as(&app, carol, &room).await["role"], "owner");
    assert_eq!(room_as(&app, dave, &room).await["role"], "member");
}

// Direct messages.

#[each_store]
async fn opening_a_dm_returns_the_same_room_from_either_side() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let (status, first) = app.post(&alice, &format!("/dm/{}", bob.id), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "first open creates: {first}");
    let room = first["id"].as_str().expect("room id");
    let (status, again) = app.post(&alice, &format!("/dm/{}", bob.id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "second open finds: {again}");
    assert_eq!(again["id"], room);
    let (status, other_side) = app.post(&bob, &format!("/dm/{}", alice.id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "the other side finds it too: {other_side}");
    assert_eq!(other_side["id"], room);

    let dms: Vec<Value> =
        my_rooms(&app, &alice).await.into_iter().filter(|r| r["kind"] == "dm").collect();
    assert_eq!(dms.len(), 1, "one DM per pair: {dms:?}");
}

#[each_store]
async fn a_dm_is_named_after_the_other_user_for_each_viewer() {
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice Liddell").await;
    let bob = app.register_displayed("bob", "Bob Builder").await;
    let room = app.open_dm(&alice, &bob).await;

    for (viewer, peer, peer_name) in
        [(&alice, &bob, "Bob Builder"), (&bob, &alice, "Alice Liddell")]
    {
        let seen = room_as(&app, viewer, &room).await;
        assert_eq!(seen["kind"], "dm", "{seen}");
        assert_eq!(seen["name"], peer_name, "{seen}");
        assert_eq!(seen["peer"]["id"], peer.id.as_str(), "{seen}");
        assert_eq!(seen["peer"]["username"], peer.username.as_str(), "{seen}");
        assert_eq!(seen["peer"]["display_name"], peer_name, "{seen}");
        assert_eq!(seen["member_count"], 2);
        let listed = my_rooms(&app, viewer).await;
        let entry = find(&listed, &room).expect("the DM is in my rooms");
        assert_eq!(entry["name"], peer_name);
        assert_eq!(entry["peer"]["id"], peer.id.as_str());
    }
}

#[each_store]
async fn a_dms_members_cannot_change() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.open_dm(&alice, &bob).await;

    let attempts = [
        app.post(&alice, &format!("/rooms/{room}/leave"), json!({})).await,
        app.post(&alice, &format!("/rooms/{room}/members"), json!({"user_id": carol.id})).await,
        app.delete(&alice, &format!("/rooms/{room}/members/{}", bob.id)).await,
        app.delete(&bob, &format!("/rooms/{room}/members/{}", bob.id)).await,
    ];
    for attempt in &attempts {
        assert_error(attempt, StatusCode::CONFLICT, "dm_members_fixed");
    }
    let mut members = member_ids(&app, &bob, &room).await;
    members.sort();
    let mut pair = vec![alice.id.clone(), bob.id.clone()];
    pair.sort();
    assert_eq!(members, pair);
    assert_error(
        &app.get(&carol, &format!("/rooms/{room}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[each_store]
async fn joining_a_dm_is_refused_because_its_members_are_fixed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.open_dm(&alice, &bob).await;

    let by_member = app.post(&alice, &format!("/rooms/{room}/join"), json!({})).await;
    assert_error(&by_member, StatusCode::CONFLICT, "dm_members_fixed");
    // To anyone else the DM does not exist.
    let by_outsider = app.post(&carol, &format!("/rooms/{room}/join"), json!({})).await;
    assert_error(&by_outsider, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(member_ids(&app, &alice, &room).await.len(), 2);
}

#[each_store]
async fn a_dm_with_an_unknown_user_is_not_found() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;

    for unknown in [NO_SUCH_ID, "not-an-id"] {
        let response = app.post(&alice, &format!("/dm/{unknown}"), json!({})).await;
        assert_error(&response, StatusCode::NOT_FOUND, "not_found");
    }
    assert!(my_rooms(&app, &alice).await.is_empty(), "no half-made DM is left behind");
}

// The caller's rooms and unread counts.

#[each_store]
async fn my_rooms_list_kind_name_last_message_and_unread_count() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register_displayed("bob", "Bob Builder").await;
    let public = app.create_room(&alice, "General", "public", &[&bob]).await;
    let private = app.create_room(&bob, "Team", "private", &[&alice]).await;
    let dm = app.open_dm(&bob, &alice).await;
    let elsewhere = app.create_room(&bob, "Elsewhere", "public", &[]).await;
    app.send(&bob, &public, "one").await;
    app.send(&bob, &public, "two").await;
    app.send(&alice, &private, "mine").await;
    let last = app.send(&bob, &dm, "psst").await;

    let rooms = my_rooms(&app, &alice).await;
    assert_eq!(rooms.len(), 3, "only rooms alice is in: {rooms:?}");
    assert!(find(&rooms, &elsewhere).is_none());
    let expect = [
        (&public, "public", "General", "two", 2),
        (&private, "private", "Team", "mine", 0),
        (&dm, "dm", "Bob Builder", "psst", 1),
    ];
    for (id, kind, name, last_body, unread) in expect {
        let room = find(&rooms, id).unwrap_or_else(|| panic!("{name} listed: {rooms:?}"));
        assert_eq!(room["kind"], kind, "{room}");
        assert_eq!(room["name"], name, "{room}");
        assert_eq!(room["joined"], true, "{room}");
        assert_eq!(room["last_message"]["body"], last_body, "{room}");
        assert_eq!(room["unread_count"], unread, "{room}");
    }
    assert_eq!(find(&rooms, &dm).expect("dm")["last_message"]["id"], last["id"]);
}

#[each_store]
async fn sending_a_message_marks_everything_before_it_read() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "Team", "private", &[&bob]).await;

    for body in ["a", "b", "c"] {
        app.send(&bob, &room, body).await;
    }
    assert_eq!(unread_count(&app, &alice, &room).await, 3);
    assert_eq!(unread_count(&app, &bob, &room).await, 0, "own messages are not unread");

    app.send(&alice, &room, "caught up").await;
    assert_eq!(unread_count(&app, &alice, &room).await, 0);
    assert_eq!(room_as(&app, &alice, &room).await["last_read_seq"], 4);
    assert_eq!(unread_count(&app, &bob, &room).await, 1, "alice's reply is bob's only unread");

    app.send(&bob, &room, "d").await;
    app.send(&bob, &room, "e").await;
    assert_eq!(unread_count(&app, &alice, &room).await, 2);
    assert_eq!(unread_count(&app, &bob, &room).await, 0, "bob's reply read alice's");
}

/// Only the reader's client knows whether a page was seen (it may be a prefetch), so
/// reading history moves no marker: a DM partner is never told "read" for it.
#[each_store]
async fn fetching_history_leaves_the_read_marker_where_it_is() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dm = app.open_dm(&bob, &alice).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    for n in 1..=3 {
        app.send(&bob, &dm, &format!("message {n}")).await;
    }
    for ws in [&mut alice_ws, &mut bob_ws] {
        for _ in 1..=3 {
            assert_eq!(ws.recv().await["type"], "message.created");
        }
    }

    for query in ["", "?after=0&limit=2", "?before=4"] {
        let (status, page) = app.get(&alice, &format!("/rooms/{dm}/messages{query}")).await;
        assert_eq!(status, StatusCode::OK, "history: {page}");
    }
    // Receipts are gathered for half a second before they leave.
    bob_ws.expect_silence(Duration::from_millis(1200)).await;
    alice_ws.expect_silence(Duration::from_millis(100)).await;
    let room = room_as(&app, &alice, &dm).await;
    assert_eq!((room["last_read_seq"].as_i64(), room["unread_count"].as_i64()), (Some(0), Some(3)));
    let (status, receipts) = app.get(&bob, &format!("/rooms/{dm}/receipts")).await;
    assert_eq!(status, StatusCode::OK, "receipts: {receipts}");
    let alices = receipts["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["user_id"] == alice.id.as_str())
        .cloned()
        .expect("alice's receipt");
    assert_eq!(alices["read_seq"], 0, "{receipts}");
    assert_eq!(alices["delivered_seq"], 0, "{receipts}");

    // Saying so is what marks it read.
    let (status, counts) =
        app.post(&alice, &format!("/rooms/{dm}/read"), json!({ "seq": 2 })).await;
    assert_eq!(status, StatusCode::OK, "read: {counts}");
    assert_eq!(counts["unread_count"], 1);
    let unread = alice_ws.recv().await;
    assert_eq!(
        (unread["type"].as_str(), unread["last_read_seq"].as_i64()),
        (Some("unread"), Some(2))
    );
    let seen = bob_ws.recv().await;
    assert_eq!(seen["type"], "receipts", "{seen}");
    assert_eq!(seen["receipts"][0]["user_id"], alice.id.as_str());
    assert_eq!(seen["receipts"][0]["read_seq"], 2);
}

#[each_store]
async fn own_messages_never_count_as_unread() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;
    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    app.send(&bob, &room, "mine 1").await;
    assert_eq!(unread_count(&app, &bob, &room).await, 0);
    app.send(&alice, &room, "theirs 1").await;
    app.send(&alice, &room, "theirs 2").await;
    assert_eq!(unread_count(&app, &bob, &room).await, 2, "only alice's count");
    let listed = my_rooms(&app, &bob).await;
    assert_eq!(find(&listed, &room).expect("listed")["unread_count"], 2);
    // Sending reads everything before one's own message.
    app.send(&bob, &room, "mine 2").await;
    assert_eq!(unread_count(&app, &bob, &room).await, 0);
}

#[each_store]
async fn history_from_before_joining_is_not_unread() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;
    for i in 0..3 {
        app.send(&alice, &room, &format!("before bob {i}")).await;
    }
    let (status, body) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "join: {body}");
    assert_eq!(body["last_read_seq"], 3);
    assert_eq!(body["unread_count"], 0);
    app.send(&alice, &room, "after bob").await;
    assert_eq!(unread_count(&app, &bob, &room).await, 1);
}

// Validation.

#[each_store]
async fn an_invalid_room_kind_is_rejected() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;

    for kind in ["dm", "secret", "Public", ""] {
        let response = app.post(&alice, "/rooms", json!({"name": "Room", "kind": kind})).await;
        assert_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_room_kind");
        assert_eq!(response.1["error"]["field"], "kind");
    }
    assert!(my_rooms(&app, &alice).await.is_empty());
}

#[each_store]
async fn an_unknown_member_id_is_rejected() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    for unknown in [NO_SUCH_ID, "not-an-id"] {
        let response = app
            .post(
                &alice,
                "/rooms",
                json!({"name": "Team", "kind": "private", "member_ids": [bob.id, unknown]}),
            )
            .await;
        assert_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "unknown_user");
        assert_eq!(response.1["error"]["field"], "member_ids");
    }
    assert!(my_rooms(&app, &alice).await.is_empty(), "no room was created");
    assert!(my_rooms(&app, &bob).await.is_empty(), "bob was added nowhere");

    let room = app.create_room(&alice, "Team", "private", &[]).await;
    for unknown in [NO_SUCH_ID, "not-an-id"] {
        let response =
            app.post(&alice, &format!("/rooms/{room}/members"), json!({"user_id": unknown})).await;
        assert_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "unknown_user");
        assert_eq!(response.1["error"]["field"], "user_id");
    }
    assert_eq!(member_ids(&app, &alice, &room).await, [alice.id.as_str()]);
}

// Membership changes over the WebSocket.

#[each_store]
async fn creating_a_room_with_members_sends_room_added_to_their_connections() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut bob_phone = app.connect(&bob).await;
    let mut bob_laptop = app.connect(&bob).await;

    let room = app.create_room(&alice, "Team", "private", &[&bob]).await;

    for connection in [&mut bob_phone, &mut bob_laptop] {
        let added = connection.recv().await;
        assert_eq!(added["type"], "room.added", "{added}");
        assert_eq!(added["room_id"], room.as_str());
        assert_eq!(added["last_seq"], 0);
        assert_eq!(added["room"]["id"], room.as_str());
        assert_eq!(added["room"]["name"], "Team");
        assert_eq!(added["room"]["kind"], "private");
        assert_eq!(added["room"]["joined"], true);
        assert_eq!(added["room"]["role"], "member", "the room as bob sees it: {added}");
    }
    let sent = app.send(&alice, &room, "welcome").await;
    for connection in [&mut bob_phone, &mut bob_laptop] {
        let event = connection.recv().await;
        assert_eq!(event["type"], "message.created", "{event}");
        assert_eq!(event["message"]["id"], sent["id"]);
    }
}

#[each_store]
async fn adding_a_member_sends_room_added_with_the_rooms_last_seq() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "Team", "private", &[]).await;
    app.send(&alice, &room, "before bob").await;
    app.send(&alice, &room, "still before bob").await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;

    let (status, body) =
        app.post(&alice, &format!("/rooms/{room}/members"), json!({"user_id": bob.id})).await;
    assert_eq!(status, StatusCode::OK, "add: {body}");

    let added = bob_ws.recv().await;
    assert_eq!(added["type"], "room.added", "{added}");
    assert_eq!(added["room_id"], room.as_str());
    assert_eq!(added["last_seq"], 2, "live events start after the existing history");
    assert_eq!(added["room"]["unread_count"], 0, "history from before joining is not unread");
    app.send(&alice, &room, "hello bob").await;
    let event = bob_ws.recv().await;
    assert_eq!(event["type"], "message.created", "{event}");
    assert_eq!(event["seq"], 3);

    // Carol was not added: the first thing she hears of is a DM opened afterwards.
    let dm = app.open_dm(&alice, &carol).await;
    let first = carol_ws.recv().await;
    assert_eq!(first["type"], "room.added", "{first}");
    assert_eq!(first["room_id"], dm.as_str(), "carol heard nothing of the group: {first}");
}

#[each_store]
async fn removing_a_member_sends_room_removed_and_stops_the_rooms_events() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "Team", "private", &[&bob]).await;
    let dm = app.open_dm(&alice, &bob).await;
    let mut bob_ws = app.connect(&bob).await;

    let (status, body) = app.delete(&alice, &format!("/rooms/{room}/members/{}", bob.id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "remove: {body}");
    let removed = bob_ws.recv().await;
    assert_eq!(removed["type"], "room.removed", "{removed}");
    assert_eq!(removed["room_id"], room.as_str());

    // Events are delivered in the order they happen, so if the group's message reached bob
    // it would come before the DM's.
    app.send(&alice, &room, "after bob left").await;
    let in_dm = app.send(&alice, &dm, "are you there?").await;
    let next = bob_ws.recv().await;
    assert_eq!(next["type"], "message.created", "{next}");
    assert_eq!(next["message"]["id"], in_dm["id"], "nothing from the group: {next}");
}

#[each_store]
async fn leaving_a_room_sends_room_removed_to_the_leavers_connections() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;
    let dm = app.open_dm(&alice, &bob).await;
    let mut bob_ws = app.connect(&bob).await;

    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    let added = bob_ws.recv().await;
    assert_eq!(added["type"], "room.added", "joining starts the room's events: {added}");
    assert_eq!(added["room_id"], room.as_str());

    let (status, body) = app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "leave: {body}");
    let removed = bob_ws.recv().await;
    assert_eq!(removed["type"], "room.removed", "{removed}");
    assert_eq!(removed["room_id"], room.as_str());
    app.send(&alice, &room, "after bob left").await;
    let in_dm = app.send(&alice, &dm, "are you there?").await;
    let next = bob_ws.recv().await;
    assert_eq!(next["message"]["id"], in_dm["id"], "nothing from the room bob left: {next}");
}

/// The others in a room hear who comes and goes (for their member lists and counts); the
/// one who comes or goes hears `room.added` or `room.removed` instead, and the other
/// member of a DM hears nothing of a block.
#[each_store]
async fn members_hear_who_joins_and_leaves_and_nothing_of_a_block() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "General", "public", &[]).await;
    let group = app.create_room(&alice, "crew", "private", &[]).await;
    let dm = app.open_dm(&alice, &bob).await;
    let mut alice_ws = app.connect(&alice).await.with_member_news();
    let mut bob_ws = app.connect(&bob).await.with_member_news();

    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    let joined = alice_ws.recv().await;
    assert_eq!(joined["type"], "member.joined", "{joined}");
    assert_eq!(
        (joined["room_id"].as_str(), joined["user_id"].as_str()),
        (Some(room.as_str()), Some(bob.id.as_str()))
    );
    assert_eq!(bob_ws.recv().await["type"], "room.added", "the joiner hears room.added only");

    let (status, body) =
        app.post(&alice, &format!("/rooms/{group}/members"), json!({"user_id": carol.id})).await;
    assert!(status.is_success(), "add carol: {body}");
    let added = alice_ws.recv().await;
    assert_eq!(
        (added["type"].as_str(), added["user_id"].as_str()),
        (Some("member.joined"), Some(carol.id.as_str())),
        "{added}"
    );

    app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    let left = alice_ws.recv().await;
    assert_eq!(
        (left["type"].as_str(), left["user_id"].as_str()),
        (Some("member.left"), Some(bob.id.as_str())),
        "{left}"
    );
    assert_eq!(bob_ws.recv().await["type"], "room.removed", "the leaver hears room.removed only");

    let (status, _) =
        app.call(reqwest::Method::PUT, &format!("/me/blocks/{}", alice.id), Some(&bob), None).await;
    assert!(status.is_success(), "bob blocks alice");
    assert_eq!(bob_ws.recv().await["type"], "room.removed", "the DM leaves bob's view");
    let (status, _) = app.delete(&bob, &format!("/me/blocks/{}", alice.id)).await;
    assert!(status.is_success(), "bob unblocks alice");
    let back = bob_ws.recv().await;
    assert_eq!(
        (back["type"].as_str(), back["room_id"].as_str()),
        (Some("room.added"), Some(dm.as_str())),
        "{back}"
    );
    alice_ws.expect_silence(Duration::from_millis(300)).await;
}
