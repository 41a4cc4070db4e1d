//! Catching up on everything: a client back from an absence that syncs ends with the same
//! messages (bodies, tombstones, reactions, mentions), receipts and unread counts as a
//! client that never left, and as history and the room say.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{history, message_path, patch, put, reaction_path, seq_of, text};
use crate::support::{PATIENCE, TestApp, TestUser, WsClient, each_store, spawn_app};

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
    mentions: BTreeSet<String>,
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
        let mentions = message["mentions"].as_array().unwrap_or_else(|| panic!("{message}"));
        Shown {
            seq: seq_of(&message["seq"]),
            author: text(&message["author_id"], "author").to_owned(),
            body: text(&message["body"], "body").to_owned(),
            deleted: message["deleted"].as_bool().expect("deleted"),
            edited: !message["edited_at"].is_null(),
            reactions,
            mentions: mentions.iter().map(|u| text(u, "user id").to_owned()).collect(),
        }
    }
}

/// A member's read marker and counts in a room, as `ready`, `unread` and the room give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    last_read_seq: i64,
    unread: i64,
    mentions: i64,
}

impl Counts {
    fn of(value: &Value) -> Counts {
        Counts {
            last_read_seq: seq_of(&value["last_read_seq"]),
            unread: seq_of(&value["unread_count"]),
            mentions: seq_of(&value["mention_count"]),
        }
    }
}

/// Each member's `(read_seq, delivered_seq)`, by user id.
type Markers = BTreeMap<String, (i64, i64)>;

/// One room as a client that applies what it receives holds it: messages by id, and the
/// read markers and counts of docs/api.md's rules.
#[derive(Debug, Default)]
struct Conversation {
    messages: BTreeMap<String, Shown>,
    /// The highest seq of the room's stream seen, where a reconnecting client syncs from.
    last_seq: i64,
    /// The user whose client this is, for the unread rule.
    me: String,
    /// The `last_seq` of this connection's `ready`: counts follow only later events.
    live_from: i64,
    counts: Counts,
    /// The highest markers the `receipts` frames gave.
    receipts: Markers,
}

impl Conversation {
    /// The room as history shows it.
    fn from_history(messages: &[Value]) -> Conversation {
        let messages =
            messages.iter().map(|m| (text(&m["id"], "id").to_owned(), Shown::of(m))).collect();
        Conversation { messages, ..Conversation::default() }
    }

    /// The client of `me` on a connection that just read `ready`.
    fn of(me: &TestUser, ws: &WsClient, room: &str) -> Conversation {
        let mut conversation = Conversation { me: me.id.clone(), ..Conversation::default() };
        conversation.start(ws, room);
        conversation
    }

    /// Takes the counts of a (new) connection's `ready`; what the client holds stays.
    fn start(&mut self, ws: &WsClient, room: &str) {
        let rooms = ws.ready["rooms"].as_array().expect("rooms");
        let entry = rooms.iter().find(|r| r["room_id"] == room).expect("room in ready");
        self.live_from = seq_of(&entry["last_seq"]);
        self.counts = Counts::of(entry);
    }

    fn mentions_me(&self, shown: &Shown) -> bool {
        shown.mentions.contains(&self.me)
    }

    /// Whether a live event about `shown` counts: by someone else, after the read marker.
    fn counts_towards_unread(&self, seq: i64, shown: &Shown) -> bool {
        seq > self.live_from && shown.author != self.me && shown.seq > self.counts.last_read_seq
    }

    /// Applies a frame: the room's stream (reactions idempotently, as a client must),
    /// receipts and counts. Returns false, changing nothing, for any other frame.
    fn apply(&mut self, frame: &Value) -> bool {
        let kind = frame["type"].as_str().unwrap_or_default();
        match kind {
            "message.created" | "message.updated" | "message.deleted" => {
                let seq = seq_of(&frame["seq"]);
                let now = Shown::of(&frame["message"]);
                let id = text(&frame["message"]["id"], "id").to_owned();
                let before = self.messages.insert(id, now.clone());
                self.count(kind, seq, before.as_ref(), &now);
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
            "receipts" => {
                for (user, (read, delivered)) in markers(&frame["receipts"]) {
                    let known = self.receipts.entry(user).or_default();
                    *known = (known.0.max(read), known.1.max(delivered));
                }
                return true;
            }
            "unread" => {
                self.counts = Counts::of(frame);
                return true;
            }
            // A notification; the message it names counts by its own frame.
            "mention" => return true,
            _ => return false,
        }
        self.last_seq = self.last_seq.max(seq_of(&frame["seq"]));
        true
    }

    /// The unread rule of docs/api.md for one event of the stream.
    fn count(&mut self, kind: &str, seq: i64, before: Option<&Shown>, now: &Shown) {
        if seq <= self.live_from {
            return; // Catching up: `ready`'s counts hold it already.
        }
        if kind == "message.created" && before.is_none() {
            if now.author == self.me {
                self.counts = Counts { last_read_seq: now.seq, unread: 0, mentions: 0 };
            } else if self.counts_towards_unread(seq, now) {
                self.counts.unread += 1;
                self.counts.mentions += i64::from(self.mentions_me(now));
            }
            return;
        }
        let Some(before) = before.filter(|b| !b.deleted && self.counts_towards_unread(seq, b))
        else {
            return;
        };
        if now.deleted {
            self.counts.unread -= 1;
            self.counts.mentions -= i64::from(self.mentions_me(before));
        } else {
            self.counts.mentions += i64::from(self.mentions_me(now));
            self.counts.mentions -= i64::from(self.mentions_me(before));
        }
    }

    /// The markers as the client shows them: what `receipts` said, and for each author at
    /// least the seq of their latest message (they have read their own).
    fn markers(&self) -> Markers {
        let mut markers = self.receipts.clone();
        for shown in self.messages.values() {
            let known = markers.entry(shown.author.clone()).or_default();
            *known = (known.0.max(shown.seq), known.1.max(shown.seq));
        }
        markers
    }

    /// Applies frames until the stream reaches `seq`.
    async fn follow_until(&mut self, ws: &mut WsClient, seq: i64) {
        while self.last_seq < seq {
            let frame = ws.recv().await;
            assert!(self.apply(&frame), "unexpected frame: {frame}");
        }
    }

    /// Applies frames until the client's read marker is at `seq`.
    async fn follow_until_read(&mut self, ws: &mut WsClient, seq: i64) {
        while self.counts.last_read_seq < seq {
            let frame = ws.recv().await;
            assert!(self.apply(&frame), "unexpected frame: {frame}");
        }
    }

    /// Applies frames until the markers the client shows are `want` (receipts leave
    /// gathered, every half second).
    async fn follow_until_markers(&mut self, ws: &mut WsClient, want: &Markers) {
        while &self.markers() != want {
            match ws.next_frame(PATIENCE).await {
                Ok(Some(frame)) => assert!(self.apply(&frame), "unexpected frame: {frame}"),
                Ok(None) => panic!("markers {:?}, never {want:?}", self.markers()),
                Err(ended) => panic!("connection ended: {ended:?}"),
            }
        }
    }

    /// What the reconnecting client compares: the messages, not where it synced from.
    fn messages(&self) -> &BTreeMap<String, Shown> {
        &self.messages
    }
}

/// Each member's markers in a list of receipts.
fn markers(receipts: &Value) -> Markers {
    let receipts = receipts.as_array().unwrap_or_else(|| panic!("receipts: {receipts}"));
    receipts
        .iter()
        .map(|r| {
            let user = text(&r["user_id"], "user id").to_owned();
            (user, (seq_of(&r["read_seq"]), seq_of(&r["delivered_seq"])))
        })
        .collect()
}

/// The frames of a one-room sync, up to (not including) `sync.done`, after checking the
/// promises every sync frame keeps: the room's stream frames, after `since`, never past
/// `up_to`, in non-decreasing seq order, each message once; then the room's receipts,
/// returned apart.
async fn read_sync(ws: &mut WsClient, room: &str, since: i64, up_to: i64) -> (Vec<Value>, Value) {
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
                let receipts = receipts.expect("the room's receipts were sent");
                return (frames, receipts);
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

/// Every member's markers, as `GET /rooms/{room}/receipts` gives them.
async fn room_markers(app: &TestApp, user: &TestUser, room: &str) -> Markers {
    let (status, body) = app.get(user, &format!("/rooms/{room}/receipts")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    markers(&body["receipts"])
}

fn id(message: &Value) -> String {
    text(&message["id"], "id").to_owned()
}

/// Bob keeps one client connected (his phone, say) while another is away; back, the other
/// syncs. Meanwhile messages are sent, edited, deleted and reacted to, some mention him,
/// his phone reads part of them and Carol reads everything.
#[each_store]
async fn a_client_that_syncs_after_an_absence_ends_where_one_that_stayed_connected_is() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob, &carol]).await;
    let mut phone_ws = app.connect(&bob).await;
    let mut phone = Conversation::of(&bob, &phone_ws, &room);
    let mut bob_ws = app.connect(&bob).await;
    let mut bob_view = Conversation::of(&bob, &bob_ws, &room);

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
    let new_deleted = id(&app.send(&alice, &room, "new, then deleted, @bob").await);
    let new_reacted = id(&app.send(&alice, &room, "new, reacted to").await);
    let read_on_phone = last_seq(&app, &alice, &room).await - 1;
    let read = json!({ "type": "read", "room_id": room, "seq": read_on_phone });
    phone_ws.send_json(read).await;
    phone.follow_until_read(&mut phone_ws, read_on_phone).await;
    let later_mention = id(&app.send(&alice, &room, "later, then edited").await);
    for (message, body) in [
        (&new_edited, "new, edited"),
        (&seen_edited, "seen, edited while bob was away"),
        (&later_mention, "later, edited for @bob"),
    ] {
        ok(patch(&app, &alice, &message_path(&room, message), json!({ "body": body }))).await;
    }
    ok(app.delete(&alice, &message_path(&room, &new_deleted))).await;
    ok(app.delete(&alice, &message_path(&room, &seen_deleted))).await;
    ok(put(&app, &alice, &reaction_path(&room, &new_reacted, "👍"))).await;
    ok(put(&app, &alice, &reaction_path(&room, &bobs_own, "🎉"))).await;
    ok(put(&app, &carol, &reaction_path(&room, &bobs_own, "👀"))).await;
    ok(app.delete(&carol, &reaction_path(&room, &bobs_own, "👀"))).await;
    ok(put(&app, &carol, &reaction_path(&room, &seen_edited, "❤️"))).await;
    let oops = id(&app.send(&alice, &room, "@bob oops").await);
    ok(app.delete(&alice, &message_path(&room, &oops))).await;
    let still_there = id(&app.send(&alice, &room, "@bob still there?").await);
    let after = last_seq(&app, &alice, &room).await;
    ok(app.post(&carol, &format!("/rooms/{room}/read"), json!({ "seq": after }))).await;
    let stored_markers = room_markers(&app, &alice, &room).await;
    phone.follow_until(&mut phone_ws, after).await;
    phone.follow_until_markers(&mut phone_ws, &stored_markers).await;

    let mut bob_ws = app.connect(&bob).await;
    assert_eq!(bob_ws.ready_seq(&room), after);
    bob_view.start(&bob_ws, &room);
    let since = bob_view.last_seq;
    assert_eq!(since, before, "Bob saw everything before he left");
    bob_ws
        .send_json(json!({ "type": "sync", "since": { room.as_str(): since }, "id": "back" }))
        .await;
    let (frames, receipts) = read_sync(&mut bob_ws, &room, since, after).await;
    let kinds: HashMap<String, &str> =
        frames.iter().map(|f| (id(&f["message"]), f["type"].as_str().expect("type"))).collect();
    let want: HashMap<String, &str> = [
        (new_edited.clone(), "message.created"),
        (new_deleted.clone(), "message.deleted"),
        (new_reacted.clone(), "message.created"),
        (later_mention.clone(), "message.created"),
        (oops.clone(), "message.deleted"),
        (still_there.clone(), "message.created"),
        (seen_edited.clone(), "message.updated"),
        (seen_deleted.clone(), "message.deleted"),
        (bobs_own.clone(), "message.updated"),
    ]
    .into();
    assert_eq!(kinds, want, "each changed message once, as it is now; {seen_unchanged} unchanged");
    for frame in frames.iter().chain([&receipts]) {
        assert!(bob_view.apply(frame));
    }

    let stored = Conversation::from_history(&history(&app, &alice, &room).await);
    assert_eq!(bob_view.messages(), phone.messages(), "the one who left and the one who stayed");
    assert_eq!(bob_view.messages(), stored.messages(), "the one who left and history");
    assert_eq!(bob_view.markers(), phone.markers(), "receipts: the one who left and who stayed");
    assert_eq!(bob_view.markers(), stored_markers, "receipts: the one who left and the room's");
    assert_eq!(bob_view.counts, phone.counts, "counts: the one who left and the one who stayed");
    let (status, listed) = app.get(&bob, &format!("/rooms/{room}")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(bob_view.counts, Counts::of(&listed), "counts: the one who left and the room's");

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
    // Unread after the phone's read: "new, reacted to", "later…" and "still there?"; of
    // those, the last two mention Bob ("oops" did until it was deleted).
    assert_eq!(bob_view.counts, Counts { last_read_seq: read_on_phone, unread: 3, mentions: 2 });
    let want_markers: Markers = [
        (alice.id.clone(), (after, after)),
        (bob.id.clone(), (read_on_phone, read_on_phone)),
        (carol.id.clone(), (after, after)),
    ]
    .into();
    assert_eq!(stored_markers, want_markers);
}

/// A client reads `ready`, and live events start right after it; its `sync` may go out
/// after some have arrived. Messages Bob had seen, changed while he was away (one edited,
/// one reacted to) and reacted to again after his `ready`: a live `reaction.added` carries
/// only its own reaction, so the sync must still bring what changed before.
#[each_store]
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
    for frame in read_sync(&mut bob_ws, &room, since, ready_seq).await.0 {
        assert!(bob_view.apply(&frame));
    }

    let stored = Conversation::from_history(&history(&app, &alice, &room).await);
    assert_eq!(stored.messages()[&message].body, "edited while away");
    assert_eq!(stored.messages()[&reacted_before].reactions.len(), 2);
    assert_eq!(bob_view.messages(), stored.messages(), "Bob's view after his sync and history");
}
