//! Replies: a message may answer another of the same room, and carries a preview of it
//! (author, first 100 characters) live and in history; the preview empties when the
//! original is deleted. A reply to anything but a live message of the room is refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    NO_SUCH_MESSAGE, QUIET, error_code, expect_event, expect_no_event, find, history, message_path,
    next_events, only_of, text,
};
use crate::support::{TestApp, TestUser, each_store, spawn_app};

async fn reply(app: &TestApp, user: &TestUser, room: &str, body: &str, to: &str) -> Value {
    let (status, message) = app
        .post(user, &format!("/rooms/{room}/messages"), json!({ "body": body, "reply_to": to }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "reply: {message}");
    message
}

#[each_store]
async fn a_reply_carries_a_preview_of_the_original_live_and_in_history() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    // 150 characters, the first 60 of two bytes each: the preview counts characters.
    let long = format!("{}{}", "ü".repeat(60), "0123456789".repeat(9));
    let original = app.send(&alice, &room, &long).await;
    let original_id = text(&original["id"], "id");
    assert!(original["reply_to"].is_null(), "{original}");

    let answer = reply(&app, &bob, &room, "agreed", original_id).await;
    let preview: String = long.chars().take(100).collect();
    let want = json!({ "message_id": original_id, "author_id": alice.id, "preview": preview, "deleted": false });
    assert_eq!(answer["reply_to"], want);
    for ws in [&mut alice_ws, &mut bob_ws] {
        expect_event(ws, "message.created").await;
        let created = expect_event(ws, "message.created").await;
        assert_eq!(created["message"]["reply_to"], want);
    }

    let answer_id = text(&answer["id"], "id");
    alice_ws
        .send_json(json!({ "type": "send", "room_id": room, "body": "thanks", "client_id": "re-1", "reply_to": answer_id }))
        .await;
    let want_short = json!({ "message_id": answer_id, "author_id": bob.id, "preview": "agreed", "deleted": false });
    let events = next_events(&mut alice_ws, 2).await;
    assert_eq!(only_of(&events, "message.ack")["message"]["reply_to"], want_short);
    assert_eq!(only_of(&events, "message.created")["message"]["reply_to"], want_short);
    let created = expect_event(&mut bob_ws, "message.created").await;
    assert_eq!(created["message"]["reply_to"], want_short);

    let messages = history(&app, &bob, &room).await;
    assert!(find(&messages, original_id)["reply_to"].is_null());
    assert_eq!(find(&messages, answer_id)["reply_to"], want);
    assert_eq!(messages[2]["reply_to"], want_short);
}

#[each_store]
async fn once_the_original_is_deleted_a_reply_shows_it_deleted_without_a_preview() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let original = app.send(&alice, &room, "a hot take").await;
    let original_id = text(&original["id"], "id");
    let answer = reply(&app, &bob, &room, "strong disagree", original_id).await;
    let (status, _) = app.delete(&alice, &message_path(&room, original_id)).await;
    assert_eq!(status, StatusCode::OK);

    let messages = history(&app, &bob, &room).await;
    let stored = find(&messages, text(&answer["id"], "id"));
    assert_eq!(stored["body"], "strong disagree", "the reply itself stays");
    assert_eq!(
        stored["reply_to"],
        json!({ "message_id": original_id, "author_id": alice.id, "preview": "", "deleted": true })
    );
}

#[each_store]
async fn a_reply_to_a_message_of_another_room_or_to_no_message_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let elsewhere = app.create_room(&alice, "elsewhere", "private", &[&bob]).await;
    let foreign = app.send(&alice, &elsewhere, "over here").await;
    let foreign_id = text(&foreign["id"], "id");
    let mut alice_ws = app.connect(&alice).await;
    let path = format!("/rooms/{room}/messages");

    for to in [foreign_id, NO_SUCH_MESSAGE, "not-an-id"] {
        let (status, error) =
            app.post(&bob, &path, json!({ "body": "re: that", "reply_to": to })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "reply to {to}: {error}");
        assert_eq!(error_code(&error), "unknown_message", "reply to {to}");
    }
    alice_ws
        .send_json(json!({ "type": "send", "room_id": room, "body": "re: that", "client_id": "re-2", "reply_to": foreign_id }))
        .await;
    let error = expect_event(&mut alice_ws, "error").await;
    assert_eq!(error["code"], "unknown_message");
    assert_eq!(error["client_id"], "re-2");
    expect_no_event(&mut alice_ws, QUIET).await;
    assert!(history(&app, &alice, &room).await.is_empty(), "nothing was stored");
}

/// docs/api.md: `reply_to` is "a message of the same room that is not deleted (otherwise
/// 422 `unknown_message`)".
#[each_store]
async fn a_reply_to_a_deleted_message_is_refused_as_deleted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let original = app.send(&alice, &room, "gone soon").await;
    let original_id = text(&original["id"], "id");
    let (status, _) = app.delete(&alice, &message_path(&room, original_id)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, error) = app
        .post(
            &alice,
            &format!("/rooms/{room}/messages"),
            json!({ "body": "re: the deleted one", "reply_to": original_id }),
        )
        .await;
    assert_eq!(history(&app, &alice, &room).await.len(), 1, "nothing was stored");
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "message_deleted");
}
