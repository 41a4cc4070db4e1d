//! Editing one's own message, by HTTP and WebSocket: it keeps its seq, gains `edited_at`,
//! reaches every member live as `message.updated` and shows in history; refused to anyone
//! but the author, for a body a new message could not have, and once the message is deleted.

use reqwest::StatusCode;
use serde_json::json;

use super::{
    NO_SUCH_MESSAGE, QUIET, error_code, expect_event, expect_no_event, find, history, message_path,
    patch, seq_of, text,
};
use crate::support::{each_store, spawn_app};

#[each_store]
async fn an_edit_keeps_the_seq_gains_edited_at_and_reaches_every_member_live() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let original = app.send(&alice, &room, "helo everyone").await;
    let id = text(&original["id"], "id");
    let seq = seq_of(&original["seq"]);
    assert!(original["edited_at"].is_null(), "a new message is not edited: {original}");
    for ws in [&mut alice_ws, &mut bob_ws] {
        expect_event(ws, "message.created").await;
    }

    let (status, edited) =
        patch(&app, &alice, &message_path(&room, id), json!({ "body": "hello everyone" })).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["id"], id);
    assert_eq!(edited["seq"], seq, "the message keeps its place in the room");
    assert_eq!(edited["body"], "hello everyone");
    assert!(edited["edited_at"].is_string(), "an edited message has edited_at: {edited}");
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = expect_event(ws, "message.updated").await;
        assert_eq!(updated["room_id"], room.as_str());
        assert_eq!(updated["seq"], seq + 1, "the edit takes the room's next seq");
        assert_eq!(updated["message"], edited, "the event carries the message whole");
    }

    alice_ws
        .send_json(
            json!({ "type": "edit", "room_id": room, "message_id": id, "body": "hello, everyone" }),
        )
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = expect_event(ws, "message.updated").await;
        assert_eq!(updated["seq"], seq + 2);
        assert_eq!(updated["message"]["seq"], seq);
        assert_eq!(updated["message"]["body"], "hello, everyone");
        assert!(updated["message"]["edited_at"].is_string());
    }

    let messages = history(&app, &bob, &room).await;
    assert_eq!(messages.len(), 1, "an edit adds no message: {messages:?}");
    let stored = find(&messages, id);
    assert_eq!(stored["seq"], seq);
    assert_eq!(stored["body"], "hello, everyone");
    assert!(stored["edited_at"].is_string());
    let next = app.send(&bob, &room, "next").await;
    assert_eq!(next["seq"], seq + 3, "the next message comes after the edits' seqs");
}

#[each_store]
async fn only_the_author_may_edit_a_message_not_even_the_room_owner() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    let message = app.send(&bob, &room, "bob's own words").await;
    let id = text(&message["id"], "id");
    let mut bob_ws = app.connect(&bob).await;

    for someone_else in [&alice, &carol] {
        let (status, body) =
            patch(&app, someone_else, &message_path(&room, id), json!({ "body": "mine now" }))
                .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", someone_else.username);
        assert_eq!(error_code(&body), "not_author");
    }
    let mut carol_ws = app.connect(&carol).await;
    carol_ws
        .send_json(json!({ "type": "edit", "room_id": room, "message_id": id, "body": "mine now", "client_id": "e-1" }))
        .await;
    let error = expect_event(&mut carol_ws, "error").await;
    assert_eq!(error["code"], "not_author");
    assert_eq!(error["client_id"], "e-1", "the error names the frame it refuses");

    expect_no_event(&mut bob_ws, QUIET).await;
    let messages = history(&app, &bob, &room).await;
    assert_eq!(find(&messages, id)["body"], "bob's own words");
    assert!(find(&messages, id)["edited_at"].is_null());
}

#[each_store]
async fn an_edit_is_validated_and_normalized_like_a_new_message() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let message = app.send(&alice, &room, "draft").await;
    let id = text(&message["id"], "id");
    let path = message_path(&room, id);
    let mut alice_ws = app.connect(&alice).await;

    let too_long = "x".repeat(4001);
    for (body, code) in [
        (" \n\t ", "empty_body"),
        (too_long.as_str(), "body_too_long"),
        ("bell \u{7}", "invalid_body"),
    ] {
        let (status, error) = patch(&app, &alice, &path, json!({ "body": body })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {error}");
        assert_eq!(error_code(&error), code);
        assert_eq!(error["error"]["field"], "body");
    }
    alice_ws
        .send_json(json!({ "type": "edit", "room_id": room, "message_id": id, "body": "", "client_id": "e-2" }))
        .await;
    let error = expect_event(&mut alice_ws, "error").await;
    assert_eq!(error["code"], "empty_body");
    assert_eq!(error["client_id"], "e-2");
    expect_no_event(&mut alice_ws, QUIET).await;
    assert_eq!(find(&history(&app, &alice, &room).await, id)["body"], "draft");

    let (status, edited) =
        patch(&app, &alice, &path, json!({ "body": "  final\r\nversion \n" })).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "final\nversion", "trimmed, line endings folded");
}

#[each_store]
async fn a_deleted_message_cannot_be_edited() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let message = app.send(&alice, &room, "regrettable").await;
    let id = text(&message["id"], "id");
    let (status, _) = app.delete(&alice, &message_path(&room, id)).await;
    assert_eq!(status, StatusCode::OK);
    let mut alice_ws = app.connect(&alice).await;

    let (status, error) =
        patch(&app, &alice, &message_path(&room, id), json!({ "body": "un-regretted" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "message_deleted");
    alice_ws
        .send_json(json!({ "type": "edit", "room_id": room, "message_id": id, "body": "un-regretted", "client_id": "e-3" }))
        .await;
    let error = expect_event(&mut alice_ws, "error").await;
    assert_eq!(error["code"], "message_deleted");
    assert_eq!(error["client_id"], "e-3");
    expect_no_event(&mut alice_ws, QUIET).await;

    let stored = history(&app, &alice, &room).await;
    assert_eq!(find(&stored, id)["deleted"], true);
    assert_eq!(find(&stored, id)["body"], "");
}

#[each_store]
async fn editing_a_message_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    for id in [NO_SUCH_MESSAGE, "not-an-id"] {
        let (status, error) =
            patch(&app, &alice, &message_path(&room, id), json!({ "body": "hello?" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {error}");
        assert_eq!(error_code(&error), "not_found");
    }
}
