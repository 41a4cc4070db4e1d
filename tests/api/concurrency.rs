//! The checks that guard a write, with requests that arrive at once: many senders in one
//! room, the owner and the next in line leaving together, reactions racing the limit, both
//! people opening their DM, read markers arriving out of order, a deletion racing
//! reactions and edits, a block racing the opening of the DM it hides. On PostgreSQL the requests are spread over two servers on one
//! database, as over two nodes behind a balancer; on SQLite they all go to its one server.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, each_store, spawn_nodes};

/// The node the `i`th request goes to.
fn node(nodes: &[TestApp], i: usize) -> &TestApp {
    &nodes[i % nodes.len()]
}

fn seq_of(message: &Value) -> i64 {
    message["seq"].as_i64().unwrap_or_else(|| panic!("a seq: {message}"))
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id: {value}")).to_owned()
}

async fn add_member(app: &TestApp, by: &TestUser, room: &str, user: &TestUser) {
    let (status, body) =
        app.post(by, &format!("/rooms/{room}/members"), json!({ "user_id": user.id })).await;
    assert_eq!(status, StatusCode::OK, "add {}: {body}", user.username);
}

#[each_store]
async fn many_senders_in_one_room_take_every_seq_once_and_refused_sends_take_none() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let owner = app.register("owner").await;
    let outsider = app.register("outsider").await;
    let mut senders = Vec::new();
    for i in 0..8 {
        senders.push(app.register(&format!("sender{i}")).await);
    }
    let members: Vec<&TestUser> = senders.iter().collect();
    let room = app.create_room(&owner, "busy", "private", &members).await;
    let gone = app.send(&owner, &room, "soon deleted").await;
    let (status, _) = app.delete(&owner, &format!("/rooms/{room}/messages/{}", id_of(&gone))).await;
    assert_eq!(status, StatusCode::OK);
    // Seq 1 is that message, seq 2 its deletion.
    let taken_before = 2;

    // 8 senders × 25 messages at once, and among them sends that must be refused: from
    // someone who is not a member, and replies to the deleted message.
    let per_sender = 25;
    let path = format!("/rooms/{room}/messages");
    let sends = senders
        .iter()
        .enumerate()
        .flat_map(|(s, sender)| (0..per_sender).map(move |i| (s * per_sender + i, sender)));
    let accepted = join_all(sends.map(|(n, sender)| {
        let path = &path;
        async move {
            let body = json!({ "body": format!("message {n}"), "client_id": format!("c-{n}") });
            let (status, message) = node(nodes, n).post(sender, path, body).await;
            assert_eq!(status, StatusCode::CREATED, "{message}");
            seq_of(&message)
        }
    }));
    let refused = join_all((0..40).map(|n| {
        let (path, gone) = (&path, id_of(&gone));
        let (outsider, sender) = (&outsider, &senders[n % senders.len()]);
        async move {
            let app = node(nodes, n);
            if n % 2 == 0 {
                let (status, body) = app.post(outsider, path, json!({ "body": "let me in" })).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            } else {
                let reply = json!({ "body": "re", "reply_to": gone });
                let (status, body) = app.post(sender, path, reply).await;
                assert_eq!(status, StatusCode::CONFLICT, "{body}");
            }
        }
    }));
    let (accepted, _) = tokio::join!(accepted, refused);

    let total = (senders.len() * per_sender) as i64;
    let confirmed: BTreeSet<i64> = accepted.into_iter().collect();
    assert_eq!(confirmed.len() as i64, total, "every confirmation has a seq of its own");
    let history = app.whole_history(&owner, &room).await;
    let stored: Vec<i64> = history.iter().map(seq_of).collect();
    let expected: Vec<i64> =
        std::iter::once(1).chain(taken_before + 1..=taken_before + total).collect();
    assert_eq!(stored, expected, "seqs run on with no gap and no repeat");
    assert_eq!(confirmed, stored[1..].iter().copied().collect(), "each as confirmed");
    let (_, room_now) = app.get(&owner, &format!("/rooms/{room}")).await;
    assert_eq!(room_now["last_seq"], taken_before + total, "no refused send kept a seq");
}

#[each_store]
async fn the_owner_and_the_next_in_line_leaving_at_once_leave_exactly_one_owner() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    // Each round is one chance for the two to meet; on one server they take turns anyway.
    for round in 0..12 {
        let room = app.create_room(&alice, &format!("group {round}"), "private", &[]).await;
        // Joined in this order: bob is next in line after alice, then carol.
        for member in [&bob, &carol, &dave] {
            add_member(app, &alice, &room, member).await;
        }
        let path = format!("/rooms/{room}/leave");
        let (alice_left, bob_left) = tokio::join!(
            node(nodes, round).post(&alice, &path, json!({})),
            node(nodes, round + 1).post(&bob, &path, json!({})),
        );
        assert_eq!(alice_left.0, StatusCode::NO_CONTENT, "{}", alice_left.1);
        assert_eq!(bob_left.0, StatusCode::NO_CONTENT, "{}", bob_left.1);

        let (status, members) = app.get(&carol, &format!("/rooms/{room}/members")).await;
        assert_eq!(status, StatusCode::OK, "{members}");
        let roles: BTreeMap<&str, &str> = members["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| (m["username"].as_str().expect("name"), m["role"].as_str().expect("role")))
            .collect();
        let expected = BTreeMap::from([("carol", "owner"), ("dave", "member")]);
        assert_eq!(roles, expected, "round {round}: one owner, the longest-standing");
    }
}

#[each_store]
async fn new_emoji_arriving_at_once_stop_at_the_limit_of_different_reactions() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let owner = app.register("owner").await;
    let mut fans = Vec::new();
    for i in 0..30 {
        fans.push(app.register(&format!("fan{i:02}")).await);
    }
    let members: Vec<&TestUser> = fans.iter().collect();
    let room = app.create_room(&owner, "popular", "public", &members).await;
    let message = app.send(&owner, &room, "react to me").await;
    let message_id = id_of(&message);

    // 30 different emoji, one per fan, at once: only 20 different ones may stay.
    let emoji: Vec<String> =
        (0..30).map(|i| char::from_u32(0x1F600 + i).expect("emoji").to_string()).collect();
    let answers = join_all(fans.iter().zip(&emoji).enumerate().map(|(n, (fan, emoji))| {
        let path = format!(
            "/rooms/{room}/messages/{message_id}/reactions/{}",
            emoji.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        );
        async move { node(nodes, n).call(Method::PUT, &path, Some(fan), None).await }
    }))
    .await;
    let accepted = answers.iter().filter(|(status, _)| status.is_success()).count();
    for (status, body) in &answers {
        assert!(
            status.is_success() || body["error"]["code"] == "too_many_reactions",
            "{status} {body}"
        );
    }
    assert_eq!(accepted, 20, "exactly as many as the limit got through");

    let history = app.whole_history(&owner, &room).await;
    let reactions = history[0]["reactions"].as_array().expect("reactions");
    assert_eq!(reactions.len(), 20, "{reactions:?}");
    assert_eq!(seq_of(history.last().expect("a message")), 1);
    let (_, room_now) = app.get(&owner, &format!("/rooms/{room}")).await;
    assert_eq!(room_now["last_seq"], 1 + 20, "a seq for each reaction that stayed, no more");
}

#[each_store]
async fn both_people_opening_their_dm_at_once_get_one_room() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let opened = join_all((0..16).map(|n| {
        let (me, them) = if n % 2 == 0 { (&alice, &bob) } else { (&bob, &alice) };
        async move {
            let (status, room) =
                node(nodes, n / 2).post(me, &format!("/dm/{}", them.id), json!({})).await;
            assert!(status.is_success(), "{status} {room}");
            id_of(&room)
        }
    }))
    .await;
    let rooms: BTreeSet<String> = opened.into_iter().collect();
    assert_eq!(rooms.len(), 1, "one DM for the pair: {rooms:?}");
    for user in [&alice, &bob] {
        let (_, mine) = app.get(user, "/rooms").await;
        let dms =
            mine["rooms"].as_array().expect("rooms").iter().filter(|r| r["kind"] == "dm").count();
        assert_eq!(dms, 1, "{} sees one DM", user.username);
    }
}

#[each_store]
async fn read_markers_arriving_out_of_order_only_move_forward() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "reading", "private", &[&bob]).await;
    for i in 0..40 {
        app.send(&alice, &room, &format!("line {i}")).await;
    }
    // Bob's reads of every seq, at once, in no particular order.
    let path = format!("/rooms/{room}/read");
    join_all((1..=40).rev().map(|seq| {
        let path = &path;
        let bob = &bob;
        async move {
            let (status, body) =
                node(nodes, seq as usize).post(bob, path, json!({ "seq": seq })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }))
    .await;
    let (status, receipts) = app.get(&alice, &format!("/rooms/{room}/receipts")).await;
    assert_eq!(status, StatusCode::OK, "{receipts}");
    let bobs = receipts["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["user_id"] == bob.id.as_str())
        .cloned()
        .expect("bob's receipt");
    assert_eq!(bobs["read_seq"], 40, "the highest read stands: {bobs}");
    let (_, seen) = app.get(&bob, &format!("/rooms/{room}")).await;
    assert_eq!((&seen["last_read_seq"], &seen["unread_count"]), (&json!(40), &json!(0)));
}

#[each_store]
async fn a_deletion_racing_reactions_and_edits_leaves_a_tombstone_with_nothing_on_it() {
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let alice = app.register("alice").await;
    let mut others = Vec::new();
    for i in 0..12 {
        others.push(app.register(&format!("friend{i:02}")).await);
    }
    let members: Vec<&TestUser> = others.iter().collect();
    let room = app.create_room(&alice, "racing", "private", &members).await;
    for round in 0..4 {
        let message = app.send(&alice, &room, &format!("round {round}: hello @friend00")).await;
        let path = format!("/rooms/{room}/messages/{}", id_of(&message));
        let reactions = join_all(others.iter().enumerate().map(|(n, friend)| {
            let path = format!("{path}/reactions/%F0%9F%91%8D");
            async move { node(nodes, n).call(Method::PUT, &path, Some(friend), None).await }
        }));
        let edits =
            join_all(
                (0..4).map(|n| {
                    let body = json!({ "body": format!("edited {n}: @friend01 @friend02") });
                    let path = &path;
                    let alice = &alice;
                    async move {
                        node(nodes, n).call(Method::PATCH, path, Some(alice), Some(body)).await
                    }
                }),
            );
        let deletion = node(nodes, round).delete(&alice, &path);
        let (reactions, edits, deletion) = tokio::join!(reactions, edits, deletion);
        assert_eq!(deletion.0, StatusCode::OK, "{}", deletion.1);
        for (status, body) in reactions.iter().chain(&edits) {
            // Before the deletion it took; after it, the message is gone.
            assert!(
                status.is_success() || body["error"]["code"] == "message_deleted",
                "{status} {body}"
            );
        }

        let history = app.whole_history(&alice, &room).await;
        let tombstone = history.iter().find(|m| m["id"] == message["id"]).expect("the tombstone");
        assert_eq!(tombstone["deleted"], true);
        assert_eq!(tombstone["body"], "");
        assert_eq!(tombstone["reactions"], json!([]), "round {round}: {tombstone}");
        assert_eq!(tombstone["mentions"], json!([]), "round {round}: {tombstone}");
        let (_, mentioned) = app.get(&others[1], &format!("/rooms/{room}")).await;
        assert_eq!(mentioned["mention_count"], 0, "round {round}: no mention outlives it");
    }
}

#[each_store]
async fn a_dm_opened_while_its_member_is_blocked_ends_hidden_from_the_blocker() {
    let nodes = &spawn_nodes().await;
    // One node: its hub hears both writes' announcements (two nodes without Redis would
    // not hear each other's); the race is between the two transactions.
    let app = &nodes[0];
    for round in 0..8 {
        let alice = app.register(&format!("alice{round}")).await;
        let bob = app.register(&format!("bob{round}")).await;
        let mut alice_ws = app.connect(&alice).await;
        let block_path = format!("/me/blocks/{}", bob.id);
        let dm_path = format!("/dm/{}", alice.id);
        let (blocked, opened) = tokio::join!(
            app.call(Method::PUT, &block_path, Some(&alice), None),
            app.post(&bob, &dm_path, json!({})),
        );
        assert_eq!(blocked.0, StatusCode::NO_CONTENT, "{}", blocked.1);
        // Either the block came first and the DM was refused, or the DM came first and
        // the block hid it: never a DM the blocker still follows.
        match opened.0 {
            StatusCode::CREATED => {}
            StatusCode::FORBIDDEN => assert_eq!(opened.1["error"]["code"], "blocked"),
            other => panic!("open dm: {other} {}", opened.1),
        }
        let mut following = 0;
        while let Ok(Some(frame)) = alice_ws.next_frame(std::time::Duration::from_millis(300)).await
        {
            match frame["type"].as_str() {
                Some("room.added") => following += 1,
                Some("room.removed") => following -= 1,
                _ => {}
            }
        }
        assert_eq!(following, 0, "round {round}: alice's socket follows the hidden DM");
        let (_, rooms) = app.get(&alice, "/rooms").await;
        assert_eq!(rooms["rooms"], json!([]), "round {round}");
    }
}
