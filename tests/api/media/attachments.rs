//! Files sent with messages, by HTTP and WebSocket: carried whole in the live event, in
//! history and in a retry's answer; at most ten; only one's own unsent uploads; and a
//! message with files may have no text.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::fixtures;
use super::{error_code, history, send_with_files, text, upload, upload_recording};
use crate::support::{TestApp, TestUser, each_store, spawn_app};

/// A room of Alice's with Bob in it.
async fn alice_and_bob(app: &TestApp) -> (TestUser, TestUser, String) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    (alice, bob, room)
}

fn ids(files: &[Value]) -> Vec<&str> {
    files.iter().map(|file| text(file, "id")).collect()
}

#[each_store]
async fn files_sent_over_http_reach_members_live_and_stay_in_history() {
    let app = spawn_app().await;
    let (alice, bob, room) = alice_and_bob(&app).await;
    let mut bob_ws = app.connect(&bob).await;
    let voice = fixtures::webm("A_OPUS", &fixtures::silence(300));
    let files = vec![
        upload(&app, &alice, "photo.jpg", &fixtures::jpeg(300, 200)).await,
        upload(&app, &alice, "report.bin", &fixtures::binary(1000)).await,
        upload_recording(&app, &alice, "voice.webm", &voice, 4200).await,
    ];

    let (status, message) = send_with_files(&app, &alice, &room, "look", &ids(&files)).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["body"], "look");
    assert_eq!(
        message["attachments"],
        json!(files),
        "each file as its upload described it, in order"
    );
    let attached = &message["attachments"][0];
    for field in [
        "id",
        "kind",
        "mime",
        "name",
        "size",
        "width",
        "height",
        "duration_ms",
        "url",
        "thumbnail_url",
    ] {
        assert!(attached.get(field).is_some(), "{field} in {attached}");
    }
    assert_eq!(message["attachments"][2]["duration_ms"], 4200);

    let created = bob_ws.recv_type("message.created").await;
    assert_eq!(created["message"]["id"], message["id"]);
    assert_eq!(created["message"]["attachments"], message["attachments"]);

    for reader in [&alice, &bob] {
        let messages = history(&app, reader, &room).await;
        let stored = messages.iter().find(|m| m["id"] == message["id"]).expect("in history");
        assert_eq!(stored["attachments"], message["attachments"], "{}", reader.username);
    }
}

#[each_store]
async fn files_sent_over_the_websocket_with_no_text_are_acknowledged_and_broadcast() {
    let app = spawn_app().await;
    let (alice, bob, room) = alice_and_bob(&app).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let files = vec![
        upload(&app, &alice, "a.png", &fixtures::png(20, 20)).await,
        upload(&app, &alice, "b.gif", &fixtures::gif(20, 20)).await,
    ];

    alice_ws
        .send_json(json!({
            "type": "send", "room_id": room, "body": "", "client_id": "files-1",
            "attachments": ids(&files),
        }))
        .await;
    let ack = alice_ws.recv_type("message.ack").await;
    assert_eq!(ack["client_id"], "files-1");
    assert_eq!(ack["message"]["body"], "");
    assert_eq!(ack["message"]["attachments"], json!(files));
    let created = bob_ws.recv_type("message.created").await;
    assert_eq!(created["message"], ack["message"]);
    let messages = history(&app, &bob, &room).await;
    assert_eq!(messages.last().expect("a message")["attachments"], json!(files));
}

/// A retry of a send that carried files returns the stored message, files and all, rather
/// than refusing files that are now attached.
#[each_store]
async fn a_retried_send_with_files_returns_the_stored_message() {
    let app = spawn_app().await;
    let (alice, _bob, room) = alice_and_bob(&app).await;
    let file = upload(&app, &alice, "a.png", &fixtures::png(20, 20)).await;
    let send = json!({ "body": "", "client_id": "retry-1", "attachments": [text(&file, "id")] });
    let path = format!("/rooms/{room}/messages");
    let (status, first) = app.post(&alice, &path, send.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = app.post(&alice, &path, send).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(history(&app, &alice, &room).await.len(), 1);
}

#[each_store]
async fn a_message_carries_at_most_ten_files() {
    let app = spawn_app().await;
    let (alice, _bob, room) = alice_and_bob(&app).await;
    let mut files = Vec::new();
    for n in 0..11 {
        files.push(upload(&app, &alice, &format!("{n}.bin"), &fixtures::binary(100 + n)).await);
    }
    let all = ids(&files);

    let (status, body) = send_with_files(&app, &alice, &room, "eleven", &all).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "too_many_attachments");
    assert_eq!(body["error"]["field"], "attachments");
    assert!(history(&app, &alice, &room).await.is_empty(), "nothing was sent");

    let (status, message) = send_with_files(&app, &alice, &room, "ten", &all[..10]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["attachments"], json!(files[..10]));
}

#[each_store]
async fn only_ones_own_unsent_uploads_can_be_attached() {
    let app = spawn_app().await;
    let (alice, bob, room) = alice_and_bob(&app).await;
    let mine = upload(&app, &alice, "mine.png", &fixtures::png(20, 20)).await;
    let bobs = upload(&app, &bob, "bobs.png", &fixtures::png(20, 20)).await;
    let mine = text(&mine, "id");
    let bobs = text(&bobs, "id");

    let no_such_file = "0".repeat(26);
    let refusals: [(&str, Vec<&str>); 3] = [
        ("someone else's upload", vec![bobs]),
        ("mine with someone else's", vec![mine, bobs]),
        ("an id naming nothing", vec![&no_such_file]),
    ];
    for (what, attachments) in refusals {
        let (status, body) = send_with_files(&app, &alice, &room, "hi", &attachments).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(error_code(&body), "unknown_attachment", "{what}");
    }
    let (status, body) = send_with_files(&app, &alice, &room, "hi", &["not an id"]).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_attachment")
    );
    assert!(history(&app, &alice, &room).await.is_empty(), "nothing was sent");

    // The refused sends attached nothing: Alice's file is still hers to send, once.
    let (status, message) = send_with_files(&app, &alice, &room, "hi", &[mine]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let (status, body) = send_with_files(&app, &alice, &room, "again", &[mine]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "unknown_attachment", "a file is sent once");
    assert_eq!(history(&app, &alice, &room).await.len(), 1);
}

#[each_store]
async fn a_refused_attachment_over_the_websocket_is_an_error_for_that_send() {
    let app = spawn_app().await;
    let (alice, bob, room) = alice_and_bob(&app).await;
    let bobs = upload(&app, &bob, "bobs.png", &fixtures::png(20, 20)).await;
    let mut alice_ws = app.connect(&alice).await;
    alice_ws
        .send_json(json!({
            "type": "send", "room_id": room, "body": "", "client_id": "c-9",
            "attachments": [text(&bobs, "id")],
        }))
        .await;
    let error = alice_ws.recv_type("error").await;
    assert_eq!(error["code"], "unknown_attachment");
    assert_eq!(error["client_id"], "c-9");
}

#[each_store]
async fn only_a_message_with_files_may_have_an_empty_body() {
    let app = spawn_app().await;
    let (alice, _bob, room) = alice_and_bob(&app).await;
    for body in ["", "  \n "] {
        let (status, reply) = send_with_files(&app, &alice, &room, body, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}: {reply}");
        assert_eq!(error_code(&reply), "empty_body");
    }
    let file = upload(&app, &alice, "a.png", &fixtures::png(20, 20)).await;
    let (status, message) = send_with_files(&app, &alice, &room, "  ", &[text(&file, "id")]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["body"], "");
}
