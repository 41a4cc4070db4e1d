//! Reactions, by HTTP (the emoji percent-encoded in the path) and WebSocket: any member
//! toggles their own, everyone sees `reaction.added`/`reaction.removed` live, history shows
//! who reacted with what; a repeat changes nothing; at most 20 different emoji per message.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    NO_SUCH_MESSAGE, QUIET, error_code, expect_event, expect_no_event, find, history, message_path,
    put, reaction_path, seq_of, text,
};
use crate::support::{TestUser, WsClient, each_store, spawn_app};

/// A message's reactions as emoji → who, so that order within a millisecond does not matter.
fn reactions(message: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let list = message["reactions"].as_array().unwrap_or_else(|| panic!("reactions: {message}"));
    list.iter()
        .map(|r| {
            let users: BTreeSet<String> = r["user_ids"]
                .as_array()
                .expect("user_ids")
                .iter()
                .map(|u| text(u, "user id").to_owned())
                .collect();
            assert_eq!(r["count"], users.len(), "count matches user_ids: {r}");
            (text(&r["emoji"], "emoji").to_owned(), users)
        })
        .collect()
}

fn expected(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    entries
        .iter()
        .map(|(emoji, users)| {
            ((*emoji).to_owned(), users.iter().map(|u| (*u).to_owned()).collect())
        })
        .collect()
}

/// Asserts that every one of `clients` receives the reaction event described.
async fn expect_reaction(clients: [&mut WsClient; 2], kind: &str, seq: i64, reacted: Reacted<'_>) {
    let (room, message, emoji, user) = reacted;
    let want = json!({ "type": kind, "room_id": room, "seq": seq, "message_id": message, "emoji": emoji, "user_id": user.id });
    for ws in clients {
        assert_eq!(expect_event(ws, kind).await, want);
    }
}

/// Room, message, emoji and who reacted.
type Reacted<'a> = (&'a str, &'a str, &'a str, &'a TestUser);

#[each_store]
async fn members_toggle_reactions_by_http_and_websocket_and_everyone_sees_them_live() {
    const FAMILY: &str = "👩‍👩‍👧‍👦"; // several code points joined: 25 bytes
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let message = app.send(&alice, &room, "lunch?").await;
    let id = text(&message["id"], "id");
    let seq = seq_of(&message["seq"]);
    for ws in [&mut alice_ws, &mut bob_ws] {
        expect_event(ws, "message.created").await;
    }

    let (status, reacted) = put(&app, &bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::OK, "{reacted}");
    assert_eq!(reacted["reactions"], json!([{ "emoji": "👍", "count": 1, "user_ids": [bob.id] }]));
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.added",
        seq + 1,
        (&room, id, "👍", &bob),
    )
    .await;
    alice_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "👍" }))
        .await;
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.added",
        seq + 2,
        (&room, id, "👍", &alice),
    )
    .await;
    let (status, _) = put(&app, &alice, &reaction_path(&room, id, ":shipit:")).await;
    assert_eq!(status, StatusCode::OK);
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.added",
        seq + 3,
        (&room, id, ":shipit:", &alice),
    )
    .await;
    let (status, _) = put(&app, &bob, &reaction_path(&room, id, FAMILY)).await;
    assert_eq!(status, StatusCode::OK);
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.added",
        seq + 4,
        (&room, id, FAMILY, &bob),
    )
    .await;
    let stored = find(&history(&app, &alice, &room).await, id).clone();
    assert_eq!(
        reactions(&stored),
        expected(&[
            ("👍", &[&alice.id, &bob.id]),
            (":shipit:", &[&alice.id]),
            (FAMILY, &[&bob.id])
        ])
    );

    let (status, removed) = app.delete(&bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(reactions(&removed)["👍"], [alice.id.clone()].into());
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.removed",
        seq + 5,
        (&room, id, "👍", &bob),
    )
    .await;
    alice_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "👍", "remove": true }))
        .await;
    expect_reaction(
        [&mut alice_ws, &mut bob_ws],
        "reaction.removed",
        seq + 6,
        (&room, id, "👍", &alice),
    )
    .await;
    let stored = find(&history(&app, &bob, &room).await, id).clone();
    assert_eq!(reactions(&stored), expected(&[(":shipit:", &[&alice.id]), (FAMILY, &[&bob.id])]));
}

#[each_store]
async fn adding_a_reaction_twice_or_removing_one_never_made_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let message = app.send(&alice, &room, "vote here").await;
    let id = text(&message["id"], "id");
    let (status, _) = put(&app, &bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::OK);
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let last_seq = alice_ws.ready_seq(&room);

    let (status, again) = put(&app, &bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["reactions"], json!([{ "emoji": "👍", "count": 1, "user_ids": [bob.id] }]));
    bob_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "👍" }))
        .await;
    for (who, emoji) in [(&bob, "🎉"), (&alice, "👍")] {
        // Never made by `who`: Bob never used 🎉, and the 👍 is Bob's, not Alice's.
        let (status, unchanged) = app.delete(who, &reaction_path(&room, id, emoji)).await;
        assert_eq!(status, StatusCode::OK, "{unchanged}");
        assert_eq!(unchanged["reactions"], again["reactions"]);
    }

    expect_no_event(&mut alice_ws, QUIET).await;
    expect_no_event(&mut bob_ws, QUIET).await;
    let next = app.send(&alice, &room, "next").await;
    assert_eq!(next["seq"], last_seq + 1, "no seq was taken");
}

#[each_store]
async fn a_message_takes_at_most_20_different_emoji() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let message = app.send(&alice, &room, "react away").await;
    let id = text(&message["id"], "id");
    let code = |i: usize| format!(":r{i}:");
    for i in 1..=20 {
        let (status, body) = put(&app, &alice, &reaction_path(&room, id, &code(i))).await;
        assert_eq!(status, StatusCode::OK, "emoji {i}: {body}");
    }
    let mut bob_ws = app.connect(&bob).await;

    let (status, error) = put(&app, &bob, &reaction_path(&room, id, &code(21))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error_code(&error), "too_many_reactions");
    assert_eq!(error["error"]["field"], "emoji");
    bob_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "🆕", "client_id": "r-1" }))
        .await;
    let error = expect_event(&mut bob_ws, "error").await;
    assert_eq!(error["code"], "too_many_reactions");
    assert_eq!(error["client_id"], "r-1");
    expect_no_event(&mut bob_ws, QUIET).await;

    let (status, joined) = put(&app, &bob, &reaction_path(&room, id, &code(1))).await;
    assert_eq!(status, StatusCode::OK, "joining an existing emoji is fine: {joined}");
    assert_eq!(reactions(&joined)[&code(1)].len(), 2);
    expect_event(&mut bob_ws, "reaction.added").await;
    let (status, _) = app.delete(&alice, &reaction_path(&room, id, &code(20))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = put(&app, &bob, &reaction_path(&room, id, &code(21))).await;
    assert_eq!(status, StatusCode::OK, "room for one more once one is gone: {body}");
    let stored = find(&history(&app, &alice, &room).await, id).clone();
    let emoji: BTreeSet<String> = reactions(&stored).into_keys().collect();
    let want: BTreeSet<String> = (1..=19).chain([21]).map(code).collect();
    assert_eq!(emoji, want);
}

#[each_store]
async fn an_invalid_emoji_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let message = app.send(&alice, &room, "react to me").await;
    let id = text(&message["id"], "id");
    let too_long = "x".repeat(33);
    for emoji in ["two words", too_long.as_str(), "tab\t", "new\nline"] {
        let (status, error) = put(&app, &alice, &reaction_path(&room, id, emoji)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{emoji:?}: {error}");
        assert_eq!(error_code(&error), "invalid_emoji", "{emoji:?}");
        assert_eq!(error["error"]["field"], "emoji");
    }
    let mut alice_ws = app.connect(&alice).await;
    alice_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "", "client_id": "r-2" }))
        .await;
    let error = expect_event(&mut alice_ws, "error").await;
    assert_eq!(error["code"], "invalid_emoji");
    assert_eq!(error["client_id"], "r-2");
    expect_no_event(&mut alice_ws, QUIET).await;
    assert_eq!(find(&history(&app, &alice, &room).await, id)["reactions"], json!([]));
}

#[each_store]
async fn a_deleted_or_missing_message_takes_no_reactions() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let message = app.send(&alice, &room, "soon gone").await;
    let id = text(&message["id"], "id");
    let (status, _) = put(&app, &bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.delete(&alice, &message_path(&room, id)).await;
    assert_eq!(status, StatusCode::OK);
    let mut bob_ws = app.connect(&bob).await;

    let (status, error) = put(&app, &bob, &reaction_path(&room, id, "🎉")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "message_deleted");
    let (status, error) = app.delete(&bob, &reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "message_deleted");
    bob_ws
        .send_json(json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "🎉", "client_id": "r-3" }))
        .await;
    let error = expect_event(&mut bob_ws, "error").await;
    assert_eq!(error["code"], "message_deleted");
    assert_eq!(error["client_id"], "r-3");

    let (status, error) = put(&app, &bob, &reaction_path(&room, NO_SUCH_MESSAGE, "🎉")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error_code(&error), "not_found");
    expect_no_event(&mut bob_ws, QUIET).await;
    assert_eq!(find(&history(&app, &bob, &room).await, id)["reactions"], json!([]));
}
