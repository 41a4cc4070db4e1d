//! Blocking (issue 11, "unwanted company"): while Alice blocks Bob, Bob cannot open a DM
//! with her, write in their DM (over HTTP or the WebSocket) nor add her to a room, and
//! Alice no longer sees their DM (her room list, her `ready`, her live events); groups
//! they share stay as they were. Unblocking undoes each of these. And memberships remember
//! who added the member (`added_by`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, each_store, spawn_app};

async fn block(app: &TestApp, blocker: &TestUser, blocked: &TestUser) -> (StatusCode, Value) {
    let path = format!("/me/blocks/{}", blocked.id);
    app.call(Method::PUT, &path, Some(blocker), None).await
}

async fn unblock(app: &TestApp, blocker: &TestUser, blocked: &TestUser) -> (StatusCode, Value) {
    app.delete(blocker, &format!("/me/blocks/{}", blocked.id)).await
}

/// Blocks and checks the answer.
async fn blocks(app: &TestApp, blocker: &TestUser, blocked: &TestUser) {
    let (status, body) = block(app, blocker, blocked).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "block: {body}");
}

/// Unblocks and checks the answer.
async fn unblocks(app: &TestApp, blocker: &TestUser, blocked: &TestUser) {
    let (status, body) = unblock(app, blocker, blocked).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "unblock: {body}");
}

/// The ids of the rooms in `GET /rooms`.
async fn room_ids(app: &TestApp, user: &TestUser) -> Vec<String> {
    let (status, body) = app.get(user, "/rooms").await;
    assert_eq!(status, StatusCode::OK, "rooms: {body}");
    body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[track_caller]
fn assert_error(response: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_eq!(response.1["error"]["code"], code, "{}", response.1);
}

#[each_store]
async fn blocks_are_listed_and_blocking_or_unblocking_twice_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;

    blocks(&app, &alice, &bob).await;
    blocks(&app, &alice, &bob).await;
    blocks(&app, &alice, &carol).await;
    let (status, listed) = app.get(&alice, "/me/blocks").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let users = listed["users"].as_array().expect("users");
    let ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [carol.id.as_str(), bob.id.as_str()], "most recent first, once each");
    assert_eq!(users[1]["username"], "bob", "whole users: {listed}");
    let (_, bobs) = app.get(&bob, "/me/blocks").await;
    assert_eq!(bobs["users"], json!([]), "a block is the blocker's alone");

    unblocks(&app, &alice, &bob).await;
    unblocks(&app, &alice, &bob).await;
    let (_, listed) = app.get(&alice, "/me/blocks").await;
    assert_eq!(listed["users"].as_array().expect("users").len(), 1, "{listed}");

    let myself = block(&app, &alice, &alice).await;
    assert_error(&myself, StatusCode::UNPROCESSABLE_ENTITY, "cannot_block_self");
    assert_eq!(myself.1["error"]["field"], "user_id");
    let path = "/me/blocks/0000000000001";
    assert_error(
        &app.call(Method::PUT, path, Some(&alice), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.delete(&alice, "/me/blocks/nonsense").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[each_store]
async fn a_blocked_user_cannot_open_a_dm_with_the_blocker_until_unblocked() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    blocks(&app, &alice, &bob).await;

    let asked = app.post(&bob, &format!("/dm/{}", alice.id), json!({})).await;
    assert_error(&asked, StatusCode::FORBIDDEN, "blocked");
    // Alice hides whatever she has with Bob; she unblocks him first to talk.
    let asked = app.post(&alice, &format!("/dm/{}", bob.id), json!({})).await;
    assert_error(&asked, StatusCode::FORBIDDEN, "blocking");
    assert!(room_ids(&app, &alice).await.is_empty());
    assert!(room_ids(&app, &bob).await.is_empty(), "nothing was created");

    unblocks(&app, &alice, &bob).await;
    let (status, room) = app.post(&bob, &format!("/dm/{}", alice.id), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
}

#[each_store]
async fn a_blocked_user_cannot_send_in_the_dm_over_http_or_the_websocket() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dm = app.open_dm(&bob, &alice).await;
    app.send(&bob, &dm, "hi").await;
    let mut bob_ws = app.connect(&bob).await;
    blocks(&app, &alice, &bob).await;

    let path = format!("/rooms/{dm}/messages");
    let sent = app.post(&bob, &path, json!({ "body": "why?" })).await;
    assert_error(&sent, StatusCode::FORBIDDEN, "blocked");
    bob_ws
        .send_json(json!({ "type": "send", "room_id": dm, "body": "why?", "client_id": "c-1" }))
        .await;
    let error = bob_ws.recv().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "blocked", "{error}");
    assert_eq!(error["client_id"], "c-1");
    // The connection stays open and usable; Bob still has the DM and its history.
    bob_ws.send_json(json!({ "type": "ping", "id": 7 })).await;
    assert_eq!(bob_ws.recv().await, json!({ "type": "pong", "id": 7 }));
    assert_eq!(room_ids(&app, &bob).await, [dm.as_str()]);
    assert_eq!(app.whole_history(&bob, &dm).await.len(), 1, "nothing stored");

    unblocks(&app, &alice, &bob).await;
    bob_ws
        .send_json(json!({ "type": "send", "room_id": dm, "body": "friends?", "client_id": "c-2" }))
        .await;
    let acked = bob_ws.recv_type("message.ack").await;
    assert_eq!(acked["message"]["body"], "friends?");
    app.send(&bob, &dm, "again over http").await;
    assert_eq!(app.whole_history(&alice, &dm).await.len(), 3);
}

#[each_store]
async fn the_blocker_no_longer_sees_the_dm_until_unblocking_brings_it_back() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dm = app.open_dm(&bob, &alice).await;
    let first = app.send(&bob, &dm, "hello").await;
    let group = app.create_room(&alice, "Book club", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;

    blocks(&app, &alice, &bob).await;
    let removed = alice_ws.recv().await;
    assert_eq!(removed, json!({ "type": "room.removed", "room_id": dm }));
    assert_eq!(room_ids(&app, &alice).await, [group.as_str()], "the DM left her list");
    assert_eq!(room_ids(&app, &bob).await.len(), 2, "Bob's list is as it was");
    for (status, body) in [
        app.get(&alice, &format!("/rooms/{dm}")).await,
        app.get(&alice, &format!("/rooms/{dm}/messages")).await,
        app.post(&alice, &format!("/rooms/{dm}/messages"), json!({ "body": "x" })).await,
    ] {
        assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
    }
    let fresh = app.connect(&alice).await;
    let ready: Vec<&Value> = fresh.ready["rooms"].as_array().expect("rooms").iter().collect();
    assert_eq!(ready.len(), 1, "ready leaves the DM out: {}", fresh.ready);

    // What Bob still may do in the DM (edit his message, react, type) reaches Alice no
    // more; the group, where she still hears him, shows the order.
    let path = format!("/rooms/{dm}/messages/{}", first["id"].as_str().expect("id"));
    let (status, _) =
        app.call(Method::PATCH, &path, Some(&bob), Some(json!({ "body": "hello!" }))).await;
    assert_eq!(status, StatusCode::OK);
    bob_ws.send_json(json!({ "type": "typing", "room_id": dm })).await;
    let in_group = app.send(&bob, &group, "see you thursday").await;
    let next = alice_ws.recv().await;
    assert_eq!(next["type"], "message.created", "{next}");
    assert_eq!(next["message"]["id"], in_group["id"], "nothing from the DM: {next}");
    alice_ws.expect_silence(Duration::from_millis(300)).await;

    unblocks(&app, &alice, &bob).await;
    let added = alice_ws.recv().await;
    assert_eq!(added["type"], "room.added", "{added}");
    assert_eq!(added["room_id"], dm.as_str());
    assert_eq!(added["room"]["peer"]["id"], bob.id.as_str());
    assert_eq!(added["room"]["last_message"]["body"], "hello!", "{added}");
    assert!(room_ids(&app, &alice).await.contains(&dm));
    app.send(&bob, &dm, "welcome back").await;
    let live = alice_ws.recv_type("message.created").await;
    assert_eq!(live["room_id"], dm.as_str(), "live events resume: {live}");
}

#[each_store]
async fn a_blocked_user_cannot_add_the_blocker_to_a_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    blocks(&app, &alice, &bob).await;

    let ids = [alice.id.as_str(), carol.id.as_str()];
    let body = json!({ "name": "Surprise", "kind": "private", "member_ids": ids });
    assert_error(&app.post(&bob, "/rooms", body).await, StatusCode::FORBIDDEN, "blocked");
    assert!(room_ids(&app, &bob).await.is_empty(), "nothing was created");
    assert!(room_ids(&app, &carol).await.is_empty(), "nobody was added");

    let group = app.create_room(&bob, "Surprise", "private", &[&carol]).await;
    let adding = json!({ "user_id": alice.id });
    let path = format!("/rooms/{group}/members");
    assert_error(&app.post(&bob, &path, adding.clone()).await, StatusCode::FORBIDDEN, "blocked");
    assert!(room_ids(&app, &alice).await.is_empty());
    // Someone Alice does not block may add her, even to a group Bob is in.
    let (status, body) = app.post(&carol, &path, adding.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post(&alice, &format!("/rooms/{group}/leave"), json!({})).await;

    unblocks(&app, &alice, &bob).await;
    let (status, body) = app.post(&bob, &path, adding).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let room = app.create_room(&bob, "Again", "private", &[&alice]).await;
    assert!(room_ids(&app, &alice).await.contains(&room));
}

#[each_store]
async fn groups_stay_shared_when_one_member_blocks_another() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_room(&bob, "Team", "private", &[&alice]).await;
    blocks(&app, &alice, &bob).await;

    app.send(&bob, &group, "from bob").await;
    app.send(&alice, &group, "from alice").await;
    let bodies: Vec<Value> =
        app.whole_history(&alice, &group).await.iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, [json!("from bob"), json!("from alice")]);
    let (status, members) = app.get(&alice, &format!("/rooms/{group}/members")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["members"].as_array().expect("members").len(), 2);
}

#[each_store]
async fn a_membership_remembers_who_added_the_member() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let group = app.create_room(&alice, "Team", "private", &[&bob]).await;
    let mut carol_ws = app.connect(&carol).await;

    let view = async |user: &TestUser| app.get(user, &format!("/rooms/{group}")).await.1;
    assert_eq!(view(&bob).await["added_by"], alice.id.as_str(), "added at creation");
    assert!(view(&alice).await.get("added_by").is_none(), "the creator added herself");

    let (status, _) =
        app.post(&bob, &format!("/rooms/{group}/members"), json!({ "user_id": carol.id })).await;
    assert_eq!(status, StatusCode::OK);
    let event = carol_ws.recv_type("room.added").await;
    assert_eq!(event["room"]["added_by"], bob.id.as_str(), "{event}");
    assert_eq!(view(&carol).await["added_by"], bob.id.as_str());
    let (_, listed) = app.get(&carol, "/rooms").await;
    assert_eq!(listed["rooms"][0]["added_by"], bob.id.as_str(), "{listed}");

    let public = app.create_room(&alice, "Lobby", "public", &[]).await;
    let (_, joined) = app.post(&dave, &format!("/rooms/{public}/join"), json!({})).await;
    assert!(joined.get("added_by").is_none(), "joined by himself: {joined}");
    let (_, outside) = app.get(&carol, &format!("/rooms/{public}")).await;
    assert!(outside.get("added_by").is_none(), "not a member: {outside}");
    let dm = app.open_dm(&dave, &carol).await;
    let (_, dm_room) = app.get(&carol, &format!("/rooms/{dm}")).await;
    assert!(dm_room.get("added_by").is_none(), "a DM's members are not added: {dm_room}");
}

#[each_store]
async fn someone_who_blocks_the_author_is_not_mentioned_by_them() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_room(&bob, "Team", "private", &[&alice, &carol]).await;
    let dm = app.open_dm(&bob, &alice).await;
    let old = app.send(&bob, &dm, "before").await;
    blocks(&app, &alice, &bob).await;
    let mut alice_ws = app.connect(&alice).await;

    app.send(&bob, &group, "@alice @carol look").await;
    // Bob may still edit his own words in the DM; naming Alice there reaches her no more.
    let edit = format!("/rooms/{dm}/messages/{}", old["id"].as_str().expect("id"));
    let (status, body) =
        app.call(Method::PATCH, &edit, Some(&bob), Some(json!({ "body": "@alice hey" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mention_count = |user| {
        let (app, group) = (&app, &group);
        async move { app.get(user, &format!("/rooms/{group}")).await.1["mention_count"].clone() }
    };
    assert_eq!(mention_count(&carol).await, 1, "others are mentioned as ever");
    assert_eq!(mention_count(&alice).await, 0);
    // Her socket hears the group's message, and no mention before or after it.
    loop {
        let frame = alice_ws.recv().await;
        assert_ne!(frame["type"], "mention", "{frame}");
        if frame["type"] == "message.created" {
            break;
        }
    }
    app.send(&carol, &group, "@alice from carol").await;
    let mention = alice_ws.recv_type("mention").await;
    assert_eq!(mention["message"]["author_id"], carol.id.as_str(), "{mention}");
}
