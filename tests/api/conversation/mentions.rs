//! Mentions: `@username` of a member (the author aside) lands in `message.mentions`, sends
//! that member a `mention` frame and counts in their `mention_count`; anyone else named is
//! not mentioned; an edit mentions only whom it newly names.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    QUIET, expect_event, expect_no_event, listed_room, message_path, next_events, only_of, patch,
    text,
};
use crate::support::{each_store, spawn_app};

fn mentioned(message: &Value) -> BTreeSet<String> {
    message["mentions"]
        .as_array()
        .unwrap_or_else(|| panic!("mentions: {message}"))
        .iter()
        .map(|id| text(id, "user id").to_owned())
        .collect()
}

#[each_store]
async fn mentioning_a_member_notifies_them_and_counts_as_their_mention() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await; // not in the room
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;

    let message = app.send(&alice, &room, "@Bob, @carol and @nobody: look (cc @alice)").await;
    assert_eq!(message["mentions"], json!([bob.id]), "only the member who is not the author");
    let events = next_events(&mut bob_ws, 2).await;
    let mention = only_of(&events, "mention");
    assert_eq!(mention, &json!({ "type": "mention", "room_id": room, "message": message }));
    assert_eq!(only_of(&events, "message.created")["message"], message);
    assert_eq!(expect_event(&mut alice_ws, "message.created").await["message"], message);
    expect_no_event(&mut alice_ws, QUIET).await;
    expect_no_event(&mut carol_ws, QUIET).await;

    let listed = listed_room(&app, &bob, &room).await;
    assert_eq!(listed["mention_count"], 1, "{listed}");
    assert_eq!(listed["unread_count"], 1, "{listed}");
    assert_eq!(listed_room(&app, &alice, &room).await["mention_count"], 0);
    drop(bob_ws);
    let bob_again = app.connect(&bob).await;
    let cursor = bob_again.ready["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["room_id"] == room.as_str())
        .unwrap_or_else(|| panic!("room in ready: {}", bob_again.ready))
        .clone();
    assert_eq!(cursor["mention_count"], 1, "{cursor}");
    assert_eq!(cursor["unread_count"], 1, "{cursor}");
}

#[each_store]
async fn an_edit_sends_a_mention_only_to_those_it_newly_names_and_drops_those_it_no_longer_does() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;
    let message = app.send(&alice, &room, "hi @bob").await;
    let id = text(&message["id"], "id");
    next_events(&mut bob_ws, 2).await; // mention, message.created
    expect_event(&mut carol_ws, "message.created").await;

    let (status, edited) =
        patch(&app, &alice, &message_path(&room, id), json!({ "body": "hi @bob and @carol" }))
            .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(mentioned(&edited), [bob.id.clone(), carol.id.clone()].into());
    let events = next_events(&mut carol_ws, 2).await;
    assert_eq!(
        only_of(&events, "mention"),
        &json!({ "type": "mention", "room_id": room, "message": edited })
    );
    assert_eq!(only_of(&events, "message.updated")["message"], edited);
    assert_eq!(expect_event(&mut bob_ws, "message.updated").await["message"], edited);
    expect_no_event(&mut bob_ws, QUIET).await; // Bob was mentioned already
    assert_eq!(listed_room(&app, &carol, &room).await["mention_count"], 1);

    let (status, edited) =
        patch(&app, &alice, &message_path(&room, id), json!({ "body": "hi all" })).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["mentions"], json!([]));
    for ws in [&mut bob_ws, &mut carol_ws] {
        expect_event(ws, "message.updated").await;
        expect_no_event(ws, QUIET).await;
    }
    for user in [&bob, &carol] {
        let listed = listed_room(&app, user, &room).await;
        assert_eq!(listed["mention_count"], 0, "{}: {listed}", user.username);
    }
}

#[each_store]
async fn a_name_ending_in_a_dot_is_mentioned_as_written_and_a_sentence_may_end_after_a_name() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let dotted = app.register("dave.").await;
    let dave = app.register("dave").await;
    let both = app.create_room(&alice, "both", "private", &[&dotted, &dave]).await;
    let plain = app.create_room(&alice, "plain", "private", &[&dave]).await;

    let message = app.send(&alice, &both, "thanks @Dave.").await;
    assert_eq!(message["mentions"], json!([dotted.id]), "the name as written");
    let message = app.send(&alice, &both, "@dave and @dave.. both").await;
    assert_eq!(mentioned(&message), [dave.id.clone(), dotted.id.clone()].into());
    let message = app.send(&alice, &plain, "thanks @dave.").await;
    assert_eq!(message["mentions"], json!([dave.id]), "'dave.' is not in this room");
}
