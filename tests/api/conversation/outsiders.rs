//! Changes stay inside their room: someone outside a private group or a DM can neither
//! change its messages (edit, delete, react: 404, as if the room did not exist) nor receive
//! the events of those changes, and a message is changed only through its own room.

use reqwest::StatusCode;
use serde_json::json;

use super::{
    QUIET, error_code, expect_event, expect_no_event, find, history, message_path, patch, put,
    reaction_path, text,
};
use crate::support::{each_store, spawn_app};

#[each_store]
async fn an_outsider_can_neither_edit_delete_nor_react_in_a_private_room_nor_see_those_changes() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_room(&alice, "secret plans", "private", &[&bob]).await;
    let dm = app.open_dm(&alice, &bob).await;
    let mut carol_ws = app.connect(&carol).await;

    for room in [&group, &dm] {
        let message = app.send(&alice, room, "members only").await;
        let id = text(&message["id"], "id");
        let reaction = reaction_path(room, id, "👍");
        for (what, (status, body)) in [
            ("edit", patch(&app, &carol, &message_path(room, id), json!({ "body": "mine" })).await),
            ("delete", app.delete(&carol, &message_path(room, id)).await),
            ("react", put(&app, &carol, &reaction).await),
            ("unreact", app.delete(&carol, &reaction).await),
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert_eq!(error_code(&body), "not_found", "{what}");
        }
        for (client_id, frame) in [
            (
                "c-edit",
                json!({ "type": "edit", "room_id": room, "message_id": id, "body": "mine" }),
            ),
            ("c-delete", json!({ "type": "delete", "room_id": room, "message_id": id })),
            (
                "c-react",
                json!({ "type": "react", "room_id": room, "message_id": id, "emoji": "👍" }),
            ),
        ] {
            let mut frame = frame;
            frame["client_id"] = json!(client_id);
            carol_ws.send_json(frame).await;
            let error = expect_event(&mut carol_ws, "error").await;
            assert_eq!(error["code"], "not_found", "{client_id}: {error}");
            assert_eq!(error["client_id"], client_id);
        }
        let stored = history(&app, &alice, room).await;
        assert_eq!(find(&stored, id)["body"], "members only", "nothing changed");
        assert_eq!(find(&stored, id)["reactions"], json!([]));

        // The members' own changes do not reach her either.
        let mut bob_ws = app.connect(&bob).await;
        let (status, _) =
            patch(&app, &alice, &message_path(room, id), json!({ "body": "members only!" })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(put(&app, &bob, &reaction).await.0, StatusCode::OK);
        assert_eq!(app.delete(&alice, &message_path(room, id)).await.0, StatusCode::OK);
        for kind in ["message.updated", "reaction.added", "message.deleted"] {
            expect_event(&mut bob_ws, kind).await;
        }
        expect_no_event(&mut carol_ws, QUIET).await;
    }
}

/// Alice owns one room and is a plain member of Bob's: her ownership must not reach Bob's
/// room by naming his message under her room's path.
#[each_store]
async fn a_message_is_changed_only_through_its_own_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let hers = app.create_room(&alice, "alice's", "private", &[&bob]).await;
    let his = app.create_room(&bob, "bob's", "private", &[&alice]).await;
    let mine = app.send(&alice, &his, "alice in bob's room").await;
    let theirs = app.send(&bob, &his, "bob in his room").await;

    for message in [&mine, &theirs] {
        let id = text(&message["id"], "id");
        let wrong = message_path(&hers, id);
        let reaction = reaction_path(&hers, id, "👍");
        for (what, (status, body)) in [
            ("edit", patch(&app, &alice, &wrong, json!({ "body": "moved" })).await),
            ("delete", app.delete(&alice, &wrong).await),
            ("react", put(&app, &alice, &reaction).await),
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{what} {}: {body}", message["body"]);
            assert_eq!(error_code(&body), "not_found");
        }
    }
    let stored = history(&app, &bob, &his).await;
    for message in [&mine, &theirs] {
        let kept = find(&stored, text(&message["id"], "id"));
        assert_eq!(kept["body"], message["body"]);
        assert_eq!(kept["deleted"], false);
        assert_eq!(kept["reactions"], json!([]));
    }
}

#[each_store]
async fn a_send_by_a_non_member_learns_nothing_from_reply_to_or_client_id() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "secret", "private", &[]).await;
    let live = app.send(&alice, &room, "still here").await;
    let gone = app.send(&alice, &room, "soon gone").await;
    let (status, _) = app
        .delete(&alice, &format!("/rooms/{room}/messages/{}", gone["id"].as_str().expect("id")))
        .await;
    assert_eq!(status, StatusCode::OK);
    for reply_to in [live["id"].clone(), gone["id"].clone(), json!("0000000000001")] {
        let (status, body) = app
            .post(
                &carol,
                &format!("/rooms/{room}/messages"),
                json!({ "body": "hi", "reply_to": reply_to, "client_id": "c1" }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "reply_to {reply_to}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}
