//! Deleting a message, by HTTP and WebSocket: everyone receives the tombstone live, history
//! keeps it in place, and the body leaves the database files. The author may delete, and
//! the owner of a group may delete anyone's message; nobody else, and nobody in a DM.

use reqwest::StatusCode;
use serde_json::json;

use super::{
    QUIET, error_code, expect_event, expect_no_event, find, history, listed_room, message_path,
    next_events, put, reaction_path, seq_of, text,
};
use crate::support::{TestApp, TestUser, database_files, each_store, files_holding, spawn_app};

#[each_store]
async fn the_author_deletes_by_http_and_by_websocket_and_everyone_gets_the_tombstone_live() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let first = app.send(&alice, &room, "first, for @bob").await;
    let second = app.send(&alice, &room, "second").await;
    let (first_id, second_id) = (text(&first["id"], "id"), text(&second["id"], "id"));
    let (status, _) = put(&app, &bob, &reaction_path(&room, first_id, "👍")).await;
    assert_eq!(status, StatusCode::OK);
    // Bob: mention, two messages, the reaction; Alice: the same but the mention.
    next_events(&mut bob_ws, 4).await;
    next_events(&mut alice_ws, 3).await;
    let bob_counts = listed_room(&app, &bob, &room).await;
    assert_eq!(
        (bob_counts["unread_count"].as_i64(), bob_counts["mention_count"].as_i64()),
        (Some(2), Some(1))
    );

    let (status, tombstone) = app.delete(&alice, &message_path(&room, first_id)).await;
    assert_eq!(status, StatusCode::OK, "{tombstone}");
    assert_eq!(tombstone["id"], first_id);
    assert_eq!(tombstone["seq"], first["seq"], "a tombstone keeps its place");
    assert_eq!(tombstone["deleted"], true);
    assert_eq!(tombstone["body"], "");
    assert_eq!(tombstone["reactions"], json!([]), "reactions go with the body");
    assert_eq!(tombstone["mentions"], json!([]), "mentions go with the body");
    let deletion_seq = seq_of(&second["seq"]) + 2; // after the reaction's seq
    for ws in [&mut alice_ws, &mut bob_ws] {
        let deleted = expect_event(ws, "message.deleted").await;
        assert_eq!(deleted["room_id"], room.as_str());
        assert_eq!(deleted["seq"], deletion_seq, "a deletion takes the room's next seq");
        assert_eq!(deleted["message"], tombstone);
    }

    alice_ws.send_json(json!({ "type": "delete", "room_id": room, "message_id": second_id })).await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let deleted = expect_event(ws, "message.deleted").await;
        assert_eq!(deleted["seq"], deletion_seq + 1);
        assert_eq!(deleted["message"]["id"], second_id);
        assert_eq!(deleted["message"]["deleted"], true);
        assert_eq!(deleted["message"]["body"], "");
    }

    let bob_counts = listed_room(&app, &bob, &room).await;
    assert_eq!(bob_counts["unread_count"], 0, "deleted messages are not unread: {bob_counts}");
    assert_eq!(bob_counts["mention_count"], 0, "nor a mention: {bob_counts}");
    let messages = history(&app, &bob, &room).await;
    assert_eq!(messages.len(), 2, "tombstones stay in history: {messages:?}");
    for (id, seq) in [(first_id, &first["seq"]), (second_id, &second["seq"])] {
        let stored = find(&messages, id);
        assert_eq!(&stored["seq"], seq);
        assert_eq!(stored["deleted"], true);
        assert_eq!(stored["body"], "");
        assert_eq!(stored["reactions"], json!([]));
    }
}

#[each_store]
async fn deleting_a_tombstone_again_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let message = app.send(&alice, &room, "twice gone").await;
    let path = message_path(&room, text(&message["id"], "id"));
    let (status, tombstone) = app.delete(&alice, &path).await;
    assert_eq!(status, StatusCode::OK);
    let mut alice_ws = app.connect(&alice).await;
    let last_seq = alice_ws.ready_seq(&room);

    let (status, again) = app.delete(&alice, &path).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, tombstone);
    expect_no_event(&mut alice_ws, QUIET).await;
    let next = app.send(&alice, &room, "next").await;
    assert_eq!(next["seq"], last_seq + 1, "the second delete took no seq");
}

/// Stretches of `text` long enough to be recognised if left on disk: 16 bytes every 8.
fn fragments(text: &str) -> Vec<&str> {
    (0..text.len().saturating_sub(16)).step_by(8).map(|at| &text[at..at + 16]).collect()
}

// SQLite only: it reads SQLite's own files (`confab.db` and its log) in the data directory.
// On PostgreSQL the erasure is proved by a test of its own.
#[tokio::test]
async fn a_deleted_message_body_leaves_the_database_files() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    // Long enough that a partial overwrite would leave some of it; ASCII, so that every
    // fragment is a whole string.
    let secret: String = (0..40).map(|i| format!("vault-line-{i:02}-ZQX ")).collect();
    let kept = "this one stays: KESTREL-41b2-MARBLE";
    let doomed = app.send(&alice, &room, &secret).await;
    app.send(&alice, &room, kept).await;
    let (status, _) = app.delete(&alice, &message_path(&room, text(&doomed["id"], "id"))).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;

    let files = database_files(app.data_path());
    assert!(
        !files_holding(&files, kept).is_empty(),
        "the scan finds a message that was not deleted"
    );
    let all = fragments(secret.trim_end());
    let left: Vec<(&str, Vec<String>)> = all
        .iter()
        .map(|fragment| (*fragment, files_holding(&files, fragment)))
        .filter(|(_, holding)| !holding.is_empty())
        .collect();
    assert!(
        left.is_empty(),
        "{} of {} fragments of the deleted body remain on disk, such as {:?}",
        left.len(),
        all.len(),
        &left[..left.len().min(3)]
    );
}

/// Sends a message as `author` and has `deleter` delete it; returns the deletion's answer.
async fn send_and_delete(
    app: &TestApp,
    author: &TestUser,
    deleter: &TestUser,
    room: &str,
) -> (StatusCode, serde_json::Value) {
    let message = app.send(author, room, "was here").await;
    app.delete(deleter, &message_path(room, text(&message["id"], "id"))).await
}

#[each_store]
async fn a_group_owner_may_delete_anyones_message_but_a_plain_member_may_not() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    for (name, kind) in [("private group", "private"), ("public room", "public")] {
        let room = app.create_room(&alice, name, kind, &[&bob, &carol]).await;

        let (status, error) = send_and_delete(&app, &bob, &carol, &room).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{kind}: {error}");
        assert_eq!(error_code(&error), "not_author");
        let mut carol_ws = app.connect(&carol).await;
        let message = app.send(&bob, &room, "still here").await;
        expect_event(&mut carol_ws, "message.created").await;
        carol_ws
            .send_json(json!({ "type": "delete", "room_id": room, "message_id": message["id"], "client_id": "d-1" }))
            .await;
        let error = expect_event(&mut carol_ws, "error").await;
        assert_eq!(error["code"], "not_author", "{kind}");
        assert_eq!(error["client_id"], "d-1");

        let (status, tombstone) = send_and_delete(&app, &bob, &alice, &room).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {tombstone}");
        assert_eq!(tombstone["deleted"], true);
        assert_eq!(tombstone["author_id"], bob.id.as_str(), "still Bob's, as a tombstone");

        let messages = history(&app, &alice, &room).await;
        let deleted: Vec<bool> = messages.iter().map(|m| m["deleted"] == true).collect();
        assert_eq!(deleted, [false, false, true], "{kind}: only the owner's deletion took");
    }
}

#[each_store]
async fn nobody_may_delete_the_other_persons_messages_in_a_dm() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // Alice opens the DM, so she is the one a careless check would take for its owner.
    let dm = app.open_dm(&alice, &bob).await;
    for (author, other) in [(&bob, &alice), (&alice, &bob)] {
        let (status, error) = send_and_delete(&app, author, other, &dm).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {error}", other.username);
        assert_eq!(error_code(&error), "not_author");
    }
    let own = app.send(&bob, &dm, "mine to take back").await;
    let (status, tombstone) = app.delete(&bob, &message_path(&dm, text(&own["id"], "id"))).await;
    assert_eq!(status, StatusCode::OK, "{tombstone}");
    let deleted: Vec<bool> =
        history(&app, &alice, &dm).await.iter().map(|m| m["deleted"] == true).collect();
    assert_eq!(deleted, [false, false, true]);
}

// SQLite only: another process holding a read snapshot of `confab.db` (and the writer's
// truncation of the log around it) is SQLite's file-level behaviour; PostgreSQL's readers
// never hold up its writers, and its erasure has a test of its own.
#[tokio::test]
async fn a_reader_holding_the_database_neither_stalls_writes_nor_keeps_a_deleted_body_for_good() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let secret = "a secret that must leave the disk 6f1b0c";
    let message = app.send(&alice, &room, secret).await;

    // Another process reads the database and holds its snapshot open.
    let url = format!("sqlite://{}", app.data_path().join("confab.db").display());
    let mut reader = sqlx::SqliteConnection::connect(&url).await.expect("reader connects");
    sqlx::query("BEGIN").execute(&mut reader).await.expect("begin");
    sqlx::query("SELECT COUNT(*) FROM messages").execute(&mut reader).await.expect("read");

    let started = std::time::Instant::now();
    let path = format!("/rooms/{room}/messages/{}", message["id"].as_str().expect("id"));
    assert_eq!(app.delete(&alice, &path).await.0, StatusCode::OK);
    app.send(&alice, &room, "the next write").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "writes waited {:?}",
        started.elapsed()
    );

    sqlx::query("COMMIT").execute(&mut reader).await.expect("commit");
    reader.close().await.expect("close");
    // With the reader gone, the erasure completes by itself, without another write.
    crate::support::eventually("the body leaves the database files", || async {
        files_holding(&database_files(app.data_path()), secret).is_empty().then_some(())
    })
    .await;
}
