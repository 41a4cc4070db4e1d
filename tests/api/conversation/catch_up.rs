//! Catching up on everything: a client back from an absence that syncs ends with the same
//! messages (bodies, tombstones, reactions) as a client that never left, and as history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{history, message_path, patch, put, reaction_path, seq_of, text};
use crate::support::{TestApp, TestUser, WsClient, spawn_app};

/// A message as a client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    seq: i64,
    author: String,
    body: String,
    deleted: bool,
    edited: bool,
    /// Emoji → who reacted with it.
    reactions: BTreeMap<String, BTreeSet<String>>,
}

impl Shown {
    fn of(message: &Value) -> Shown {
        let reactions = message["reactions"]
            .as_array()
            .unwrap_or_else(|| panic!("reactions: {message}"))
            .iter()
            .map(|r| {
                let users = r["user_ids"].as_array().expect("user_ids");
                let users = users.iter().map(|u| text(u, "user id").to_owned()).collect();
                (text(&r["emoji"], "emoji").to_owned(), users)
            })
            .collect();
        Shown {
            seq: seq_of(&message["seq"]),
            author: text(&message["author_id"], "author").to_owned(),
            body: text(&message["body"], "body").to_owned(),
            deleted: message["deleted"].as_bool().expect("deleted"),
            edited: !message["edited_at"].is_null(),
            reactions,
        }
    }
}

/// One room's messages as a client that applies what it receives holds them, by id.
#[derive(Debug, Default, PartialEq, Eq)]
struct Conversation {
    messages: BTreeMap<String, Shown>,
    /// The highest seq of the room's stream seen, where a reconnecting client syncs from.
    last_seq: i64,
}

impl Conversation {
    /// The room as history shows it.
    fn from_history(messages: &[Value]) -> Conversation {
        let messages =
            messages.iter().map(|m| (text(&m["id"], "id").to_owned(), Shown::of(m))).collect();
        Conversation { messages, last_seq: 0 }
    }

    /// Applies a frame of the room's stream; reactions idempotently, as a client must.
    /// Returns false, changing nothing, for a frame that is not one.
    fn apply(&mut self, frame: &Value) -> bool {
        let kind = frame["type"].as_str().unwrap_or_default();
        match kind {
            "message.created" | "message.updated" | "message.deleted" => {
                let message = &frame["message"];
                self.messages.insert(text(&message["id"], "id").to_owned(), Shown::of(message));
            }
            "reaction.added" | "reaction.removed" => {
                let id = text(&frame["message_id"], "message_id");
                let shown = self
                    .messages
                    .get_mut(id)
                    .unwrap_or_else(|| panic!("a reaction to a message never received: {frame}"));
                let emoji = text(&frame["emoji"], "emoji").to_owned();
                let user = text(&frame["user_id"], "user_id").to_owned();
                if kind == "reaction.added" {
                    shown.reactions.entry(emoji).or_default().insert(user);
                } else if let Some(users) = shown.reactions.get_mut(&emoji) {
                    users.remove(&user);
                    if users.is_empty() {
                        shown.reactions.remove(&emoji);
                    }
                }
            }
            _ => return false,
        }
        self.last_seq = self.last_seq.max(seq_of(&frame["seq"]));
        true
    }

    /// Applies live frames until the stream reaches `seq`; other frames (receipts, counts)
    /// are passed over.
    async fn follow_until(&mut self, ws: &mut WsClient, seq: i64) {
        while self.last_seq < seq {
            let frame = ws.recv().await;
            if !self.apply(&frame) {
                assert!(
                    matches!(frame["type"].as_str(), Some("receipt" | "unread")),
                    "unexpected frame: {frame}"
                );
            }
        }
    }

    /// What the reconnecting client compares: the messages, not where it synced from.
    fn messages(&self) -> &BTreeMap<String, Shown> {
        &self.messages
    }
}

/// The frames of a one-room sync, up to (not including) `sync.done`, after checking the
/// promises every sync frame keeps: the room's stream frames, after `since`, never past
/// `up_to`, in non-decreasing seq order, each message once; then the room's receipts.
async fn read_sync(ws: &mut WsClient, room: &str, since: i64, up_to: i64) -> Vec<Value> {
    let mut frames: Vec<Value> = Vec::new();
    let mut receipts = None;
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("message.created" | "message.updated" | "message.deleted") => {
                assert!(receipts.is_none(), "the room's receipts close its part: {frame}");
                assert_eq!(frame["room_id"], room);
                let seq = seq_of(&frame["seq"]);
                assert!(seq > since && seq <= up_to, "seq in ({since}, {up_to}]: {frame}");
                if let Some(previous) = frames.last() {
                    assert!(seq >= seq_of(&previous["seq"]), "non-decreasing seqs: {frame}");
                }
                let id = &frame["message"]["id"];
                assert!(
                    frames.iter().all(|f| &f["message"]["id"] != id),
                    "each message once: {frame}"
                );
                frames.push(frame);
            }
            Some("receipts") => {
                assert_eq!(frame["room_id"], room);
                receipts = Some(frame);
            }
            Some("sync.done") => {
                assert!(receipts.is_some(), "the room's receipts were sent");
                return frames;
            }
            other => panic!("unexpected frame {other:?} while syncing: {frame}"),
        }
    }
}

async fn last_seq(app: &TestApp, user: &TestUser, room: &str) -> i64 {
    let (status, body) = app.get(user, &format!("/rooms/{room}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    seq_of(&body["last_seq"])
}

async fn ok(call: impl Future<Output = (StatusCode, Value)>) -> Value {
    let (status, body) = call.await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id(message: &Value) -> String {
    text(&message["id"], "id").to_owned()
}

#[tokio::test]
async fn a_client_that_syncs_after_an_absence_ends_where_one_that_stayed_connected_is() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    let mut carol_ws = app.connect(&carol).await;
    let mut carol_view = Conversation::default();
    let mut bob_ws = app.connect(&bob).await;
    let mut bob_view = Conversation::default();

    // What Bob sees before he leaves.
    let seen_edited = id(&app.send(&alice, &room, "seen, then edited").await);
    let seen_deleted = id(&app.send(&alice, &room, "seen, then deleted").await);
    let seen_unchanged = id(&app.send(&alice, &room, "seen, unchanged").await);
    let bobs_own = id(&app.send(&bob, &room, "bob's own, then reacted to").await);
    let before = last_seq(&app, &alice, &room).await;
    bob_view.follow_until(&mut bob_ws, before).await;
    drop(bob_ws);

    // What happens while he is away.
    let new_edited = id(&app.send(&alice, &room, "new, then edited").await);
    let new_deleted = id(&app.send(&alice, &room, "new, then deleted").await);
    let new_reacted = id(&app.send(&alice, &room, "new, reacted to").await);
    for (message, body) in
        [(&new_edited, "new, edited"), (&seen_edited, "seen, edited while bob was away")]
    {
        ok(patch(&app, &alice, &message_path(&room, message), json!({ "body": body }))).await;
    }
    ok(app.delete(&alice, &message_path(&room, &new_deleted))).await;
    ok(app.delete(&alice, &message_path(&room, &seen_deleted))).await;
    ok(put(&app, &alice, &reaction_path(&room, &new_reacted, "👍"))).await;
    ok(put(&app, &alice, &reaction_path(&room, &bobs_own, "🎉"))).await;
    ok(put(&app, &carol, &reaction_path(&room, &bobs_own, "👀"))).await;
    ok(app.delete(&carol, &reaction_path(&room, &bobs_own, "👀"))).await;
    ok(put(&app, &carol, &reaction_path(&room, &seen_edited, "❤️"))).await;
    let after = last_seq(&app, &alice, &room).await;
    carol_view.follow_until(&mut carol_ws, after).await;

    let mut bob_ws = app.connect(&bob).await;
    assert_eq!(bob_ws.ready_seq(&room), after);
    let since = bob_view.last_seq;
    assert_eq!(since, before, "Bob saw everything before he left");
    bob_ws
        .send_json(json!({ "type": "sync", "since": { room.as_str(): since }, "id": "back" }))
        .await;
    let frames = read_sync(&mut bob_ws, &room, since, after).await;
    let kinds: HashMap<String, &str> =
        frames.iter().map(|f| (id(&f["message"]), f["type"].as_str().expect("type"))).collect();
    let want: HashMap<String, &str> = [
        (new_edited.clone(), "message.created"),
        (new_deleted.clone(), "message.deleted"),
        (new_reacted.clone(), "message.created"),
        (seen_edited.clone(), "message.updated"),
        (seen_deleted.clone(), "message.deleted"),
        (bobs_own.clone(), "message.updated"),
    ]
    .into();
    assert_eq!(kinds, want, "each changed message once, as it is now; {seen_unchanged} unchanged");
    for frame in &frames {
        assert!(bob_view.apply(frame));
    }

    let stored = Conversation::from_history(&history(&app, &alice, &room).await);
    assert_eq!(
        bob_view.messages(),
        carol_view.messages(),
        "the one who left and the one who stayed"
    );
    assert_eq!(bob_view.messages(), stored.messages(), "the one who left and history");
    // And that state is what happened, not a shared mistake.
    let shown = stored.messages();
    assert_eq!(shown[&seen_edited].body, "seen, edited while bob was away");
    assert_eq!(
        shown[&seen_edited].reactions,
        [("❤️".to_owned(), [carol.id.clone()].into())].into()
    );
    assert_eq!(shown[&new_edited].body, "new, edited");
    assert!(shown[&new_deleted].deleted && shown[&new_deleted].body.is_empty());
    assert!(shown[&seen_deleted].deleted && shown[&seen_deleted].body.is_empty());
    assert_eq!(shown[&bobs_own].reactions, [("🎉".to_owned(), [alice.id.clone()].into())].into());
    assert_eq!(shown[&new_reacted].reactions.len(), 1);
    assert_eq!(shown[&seen_unchanged].body, "seen, unchanged");
}

/// A client reads `ready`, and live events start right after it; its `sync` may go out
/// after some have arrived. Messages Bob had seen, changed while he was away (one edited,
/// one reacted to) and reacted to again after his `ready`: a live `reaction.added` carries
/// only its own reaction, so the sync must still bring what changed before.
#[tokio::test]
async fn a_change_after_ready_does_not_hide_from_the_sync_an_edit_made_while_away() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut bob_view = Conversation::default();
    let message = id(&app.send(&alice, &room, "before the absence").await);
    let reacted_before = id(&app.send(&alice, &room, "reacted to while away").await);
    bob_view.follow_until(&mut bob_ws, 2).await;
    drop(bob_ws);

    let path = message_path(&room, &message);
    ok(patch(&app, &alice, &path, json!({ "body": "edited while away" }))).await;
    ok(put(&app, &alice, &reaction_path(&room, &reacted_before, "🎉"))).await;
    let mut bob_ws = app.connect(&bob).await;
    let ready_seq = bob_ws.ready_seq(&room);
    assert_eq!(ready_seq, 4);
    ok(put(&app, &alice, &reaction_path(&room, &message, "👍"))).await;
    ok(put(&app, &alice, &reaction_path(&room, &reacted_before, "❤️"))).await;
    bob_view.follow_until(&mut bob_ws, 6).await;

    let since = 2; // what Bob had seen before he left
    bob_ws.send_json(json!({ "type": "sync", "since": { room.as_str(): since } })).await;
    for frame in read_sync(&mut bob_ws, &room, since, ready_seq).await {
        assert!(bob_view.apply(&frame));
    }

    let stored = Conversation::from_history(&history(&app, &alice, &room).await);
    assert_eq!(stored.messages()[&message].body, "edited while away");
    assert_eq!(stored.messages()[&reacted_before].reactions.len(), 2);
    assert_eq!(bob_view.messages(), stored.messages(), "Bob's view after his sync and history");
}
