//! Several nodes behind a load balancer: servers on one PostgreSQL database joined by a
//! Redis of the test's own (`spawn_cluster`). Two people on two nodes chat as on one; what
//! Redis drops (it is stopped at the moment something is announced) is repaired from the
//! database: a room's events, a membership ended, a session ended; a node killed outright
//! takes its users' presence with it; two processes on one SQLite data directory are
//! refused.
//!
//! These run on PostgreSQL only (several nodes share one database); without PostgreSQL or
//! redis-server they say so loudly and pass without running, except under `CI`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Cluster, PATIENCE, ServerProcess, TestApp, TestUser, WsClient, eventually, spawn_app,
    spawn_cluster,
};

/// How long a repair may take: `realtime::repair` promises a lost room event within two
/// head checks (2 s) and a membership or session within one reconcile (5 s) of the bus
/// coming back, on an idle machine; a busy one is given more.
const REPAIR_PATIENCE: Duration = Duration::from_secs(30);

/// The next frame of type `kind`, waiting at most `wait`; fails the test otherwise.
async fn recv_within(ws: &mut WsClient, kind: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_frame(left).await {
            Ok(Some(frame)) if frame["type"] == kind => return frame,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no {kind} within {wait:?}"),
            Err(ended) => panic!("connection ended waiting for {kind}: {ended:?}"),
        }
    }
}

/// One frame of each of `kinds`, in whatever order they come.
async fn recv_each(ws: &mut WsClient, kinds: &[&str]) -> Vec<Value> {
    let mut found: Vec<Option<Value>> = vec![None; kinds.len()];
    while found.iter().any(Option::is_none) {
        let frame = ws.recv().await;
        if let Some(at) = kinds.iter().position(|kind| frame["type"] == *kind) {
            found[at].get_or_insert(frame);
        }
    }
    found.into_iter().flatten().collect()
}

/// Alice on the first node, Bob on the second, in a private room.
async fn two_people(cluster: &Cluster) -> (TestUser, TestUser, String) {
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = a.create_room(&alice, "across", "private", &[&bob]).await;
    (alice, bob, room)
}

#[tokio::test]
async fn two_people_on_two_nodes_chat_as_on_one() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (alice, bob, room) = two_people(&cluster).await;
    let mut alice_ws = a.connect(&alice).await.with_presence();
    let mut bob_ws = b.connect(&bob).await;
    // Bob's connection on the other node is seen online by Alice.
    let online = recv_within(&mut alice_ws, "presence", PATIENCE).await;
    assert_eq!(
        (online["user_id"].as_str(), online["status"].as_str()),
        (Some(bob.id.as_str()), Some("online"))
    );

    // A message sent on one node reaches the other, with its counts.
    alice_ws
        .send_json(
            json!({ "type": "send", "room_id": room, "body": "hello @bob", "client_id": "c1" }),
        )
        .await;
    let frames = recv_each(&mut bob_ws, &["message.created", "mention"]).await;
    let [created, mention] = &frames[..] else { unreachable!("two kinds") };
    assert_eq!(created["message"]["body"], "hello @bob");
    let message_id = created["message"]["id"].as_str().expect("id").to_owned();
    let seq = created["seq"].as_i64().expect("seq");
    assert_eq!(mention["message"]["id"], message_id.as_str());

    // Typing, a reply, a reaction, an edit and a delete, each way.
    bob_ws.send_json(json!({ "type": "typing", "room_id": room })).await;
    let typing = recv_within(&mut alice_ws, "typing", PATIENCE).await;
    assert_eq!(typing["user_id"], bob.id.as_str());
    let (status, reply) = b
        .post(
            &bob,
            &format!("/rooms/{room}/messages"),
            json!({ "body": "hi", "reply_to": message_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let got = recv_within(&mut alice_ws, "message.created", PATIENCE).await;
    assert_eq!(got["message"]["reply_to"]["message_id"], message_id.as_str(), "{got}");
    let path = format!("/rooms/{room}/messages/{message_id}/reactions/%F0%9F%91%8D");
    let (status, _) = b.call(reqwest::Method::PUT, &path, Some(&bob), None).await;
    assert!(status.is_success(), "react: {status}");
    let reaction = recv_within(&mut alice_ws, "reaction.added", PATIENCE).await;
    assert_eq!(reaction["user_id"], bob.id.as_str());
    let edit = format!("/rooms/{room}/messages/{message_id}");
    let (status, _) = a
        .call(reqwest::Method::PATCH, &edit, Some(&alice), Some(json!({ "body": "hello, edited" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let updated = recv_within(&mut bob_ws, "message.updated", PATIENCE).await;
    assert_eq!(updated["message"]["body"], "hello, edited");

    // Receipts and counts: Bob reads on his node, Alice sees the receipt on hers.
    let latest = updated["seq"].as_i64().expect("seq");
    assert!(latest > seq);
    let (status, _) = b.post(&bob, &format!("/rooms/{room}/read"), json!({ "seq": latest })).await;
    assert!(status.is_success());
    let unread = recv_within(&mut bob_ws, "unread", PATIENCE).await;
    assert_eq!(
        (unread["unread_count"].as_i64(), unread["mention_count"].as_i64()),
        (Some(0), Some(0)),
        "{unread}"
    );
    let receipts = recv_within(&mut alice_ws, "receipts", PATIENCE).await;
    assert!(receipts.to_string().contains(&bob.id), "{receipts}");

    // Profiles and membership: a change on one node is seen on the other.
    let (status, _) = b
        .call(reqwest::Method::PATCH, "/me", Some(&bob), Some(json!({ "display_name": "Bobby" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let profile = recv_within(&mut alice_ws, "user.updated", PATIENCE).await;
    assert_eq!(profile["user"]["display_name"], "Bobby");
    let carol = b.register("carol").await;
    let mut carol_ws = b.connect(&carol).await;
    let (status, body) =
        a.post(&alice, &format!("/rooms/{room}/members"), json!({ "user_id": carol.id })).await;
    assert!(status.is_success(), "{body}");
    let added = recv_within(&mut carol_ws, "room.added", PATIENCE).await;
    assert_eq!(added["room_id"], room.as_str());
    let (status, _) = a.delete(&alice, &format!("/rooms/{room}/members/{}", carol.id)).await;
    assert!(status.is_success());
    let removed = recv_within(&mut carol_ws, "room.removed", PATIENCE).await;
    assert_eq!(removed["room_id"], room.as_str());

    // Deleting on one node removes the message on the other.
    let (status, _) = a.delete(&alice, &edit).await;
    assert!(status.is_success());
    let deleted = recv_within(&mut bob_ws, "message.deleted", PATIENCE).await;
    assert_eq!(deleted["message"]["id"], message_id.as_str());

    // Bob leaves: Alice sees him go offline, from the other node.
    drop(bob_ws);
    loop {
        let presence = recv_within(&mut alice_ws, "presence", PATIENCE).await;
        if presence["user_id"] == bob.id.as_str() {
            assert_eq!(presence["status"], "offline", "{presence}");
            break;
        }
    }
}

/// Each of Bob's frames of `room`'s stream (created, updated, deleted, reactions) with its
/// seq, until `until` seq is reached.
async fn stream_until(ws: &mut WsClient, room: &str, until: i64, wait: Duration) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut seqs = Vec::new();
    while seqs.last().copied().unwrap_or(0) < until {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_frame(left).await {
            Ok(Some(frame)) if frame["room_id"] == room && frame["seq"].is_i64() => {
                seqs.push(frame["seq"].as_i64().expect("seq"));
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("seq {until} not reached within {wait:?}; got {seqs:?}"),
            Err(ended) => panic!("connection ended: {ended:?}; got {seqs:?}"),
        }
    }
    seqs
}

#[tokio::test]
async fn a_room_event_the_bus_lost_reaches_a_quiet_room_once_redis_is_back() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    let (alice, bob, room) = two_people(&cluster).await;
    let mut bob_ws = cluster.nodes[1].connect(&bob).await;
    let first = cluster.nodes[0].send(&alice, &room, "before").await;
    let first_seq = first["seq"].as_i64().expect("seq");
    assert_eq!(stream_until(&mut bob_ws, &room, first_seq, PATIENCE).await, vec![first_seq]);

    cluster.redis.stop();
    // Stored, and confirmed, while nothing carries it to Bob's node.
    let lost = cluster.nodes[0].send(&alice, &room, "during the outage").await;
    let lost_seq = lost["seq"].as_i64().expect("seq");
    let (status, body) = cluster.nodes[0].readiness().await;
    assert_eq!(
        (status, body["unreachable"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("redis"))
    );
    cluster.redis.start_again().await;

    // Nothing more is said in the room; the repair brings it anyway, once.
    let started = tokio::time::Instant::now();
    assert_eq!(stream_until(&mut bob_ws, &room, lost_seq, REPAIR_PATIENCE).await, vec![lost_seq]);
    eprintln!("a lost event reached a quiet room {:?} after Redis came back", started.elapsed());
    for node in &cluster.nodes {
        node.wait_until_ready().await;
    }
    // And the bus carries what follows.
    let after = cluster.nodes[0].send(&alice, &room, "after").await;
    let after_seq = after["seq"].as_i64().expect("seq");
    assert_eq!(stream_until(&mut bob_ws, &room, after_seq, PATIENCE).await, vec![after_seq]);
}

#[tokio::test]
async fn a_room_event_lost_on_a_healthy_subscription_reaches_a_quiet_room() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let (alice, bob, room) = two_people(&cluster).await;
    let mut bob_ws = cluster.nodes[1].connect(&bob).await;

    // The sending node's publishes fail; Bob's node publishes and hears as before, so
    // nothing looks amiss to it: only its check of the room's head finds the event.
    cluster.redis.refuse_publishing(0).await;
    let lost = cluster.nodes[0].send(&alice, &room, "published into the void").await;
    let lost_seq = lost["seq"].as_i64().expect("seq");
    let started = tokio::time::Instant::now();
    assert_eq!(stream_until(&mut bob_ws, &room, lost_seq, REPAIR_PATIENCE).await, vec![lost_seq]);
    eprintln!("a lost event reached a quiet room after {:?}", started.elapsed());
    cluster.redis.allow_publishing(0).await;
}

/// Removes Bob from the room while the announcement is lost (`lose` starts losing it,
/// `restore` ends that), and checks that Bob stops hearing the room all the same.
async fn removal_lost(cluster: &mut Cluster, outage: Outage) {
    let (alice, bob, room) = two_people(cluster).await;
    let mut bob_ws = cluster.nodes[1].connect(&bob).await;
    outage.begin(cluster).await;
    let (status, _) =
        cluster.nodes[0].delete(&alice, &format!("/rooms/{room}/members/{}", bob.id)).await;
    assert!(status.is_success());
    outage.end(cluster).await;

    let removed = recv_within(&mut bob_ws, "room.removed", REPAIR_PATIENCE).await;
    assert_eq!(removed["room_id"], room.as_str());
    // From now on the room's messages and typing pass Bob by; a DM with him does not.
    let mut alice_ws = cluster.nodes[0].connect(&alice).await;
    alice_ws.send_json(json!({ "type": "typing", "room_id": room })).await;
    cluster.nodes[0].send(&alice, &room, "not for bob").await;
    let dm = cluster.nodes[0].open_dm(&alice, &bob).await;
    cluster.nodes[0].send(&alice, &dm, "for bob").await;
    loop {
        let frame = bob_ws.recv().await;
        assert_ne!(frame["room_id"], room.as_str(), "an ex-member heard {frame}");
        if frame["type"] == "message.created" {
            assert_eq!(frame["message"]["body"], "for bob");
            break;
        }
    }
}

/// How a test loses what is published: Redis stopped (every node's subscription breaks
/// and is made again), or the first node's publishing refused (the other node's
/// subscription stays and nothing looks amiss to it).
#[derive(Clone, Copy)]
enum Outage {
    Stopped,
    Refused,
}

impl Outage {
    async fn begin(self, cluster: &mut Cluster) {
        match self {
            Outage::Stopped => cluster.redis.stop(),
            Outage::Refused => cluster.redis.refuse_publishing(0).await,
        }
    }

    async fn end(self, cluster: &mut Cluster) {
        match self {
            Outage::Stopped => cluster.redis.start_again().await,
            Outage::Refused => cluster.redis.allow_publishing(0).await,
        }
    }
}

#[tokio::test]
async fn an_ex_member_hears_nothing_more_when_the_removal_was_lost_to_an_outage() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    removal_lost(&mut cluster, Outage::Stopped).await;
}

#[tokio::test]
async fn an_ex_member_hears_nothing_more_when_the_removal_was_lost_on_the_way() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    removal_lost(&mut cluster, Outage::Refused).await;
}

/// Ends Bob's session on the first node while the announcement is lost, and checks that
/// his socket on the second closes all the same, as a session that ended.
async fn logout_lost(cluster: &mut Cluster, outage: Outage) {
    let bob = cluster.nodes[1].register("bob").await;
    let mut bob_ws = cluster.nodes[1].connect(&bob).await;

    outage.begin(cluster).await;
    let (status, _) =
        cluster.nodes[0].call(reqwest::Method::POST, "/auth/logout", Some(&bob), None).await;
    assert!(status.is_success(), "logout: {status}");
    outage.end(cluster).await;

    let deadline = tokio::time::Instant::now() + REPAIR_PATIENCE;
    let code = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob_ws.next_frame(left).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the ended session's socket is open after {REPAIR_PATIENCE:?}"),
            Err(crate::support::Ended::Closed(frame)) => break frame.map(|f| u16::from(f.code)),
            Err(other) => panic!("{other:?}"),
        }
    };
    assert_eq!(code, Some(4001), "closed as a session that ended");
}

#[tokio::test]
async fn a_logged_out_sessions_socket_closes_when_the_announcement_was_lost_to_an_outage() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    logout_lost(&mut cluster, Outage::Stopped).await;
}

#[tokio::test]
async fn a_logged_out_sessions_socket_closes_when_the_announcement_was_lost_on_the_way() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    logout_lost(&mut cluster, Outage::Refused).await;
}

#[tokio::test]
async fn a_killed_nodes_users_go_offline_for_everyone() {
    let Some(cluster) = spawn_cluster(1).await else { return };
    let a = &cluster.nodes[0];
    let (database, data_dir) = (a.database().clone(), a.data_path().to_path_buf());
    let confab::config::Database::Postgres(url) = database else {
        unreachable!("a cluster is on PostgreSQL")
    };
    let redis_url = cluster.redis.url();
    let mut killed = ServerProcess::start(|command| {
        command.arg("--database-url").arg(&url).arg("--redis-url").arg(&redis_url);
        command.arg("--data-dir").arg(&data_dir);
    })
    .await;
    let b = TestApp::external(killed.address);
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    a.create_room(&alice, "watch", "private", &[&bob]).await;
    let mut alice_ws = a.connect(&alice).await.with_presence();
    let _bob_ws = b.connect(&bob).await;
    let online = recv_within(&mut alice_ws, "presence", PATIENCE).await;
    assert_eq!(online["status"], "online", "{online}");

    killed.child.kill().expect("SIGKILL");
    let _ = killed.child.wait();
    // `NODE_SILENCE` (20 s) plus at most one sweep (5 s); a busy machine is given more.
    let took = goes_offline(&mut alice_ws, &bob).await;
    eprintln!("a killed node's user went offline after {took:?}");
}

/// Waits (up to 90 s, for a busy machine) for `user` to be shown offline on `ws`, the
/// next presence it hears; how long it took.
async fn goes_offline(ws: &mut WsClient, user: &TestUser) -> Duration {
    let started = tokio::time::Instant::now();
    let offline = recv_within(ws, "presence", Duration::from_secs(90)).await;
    assert_eq!(
        (offline["user_id"].as_str(), offline["status"].as_str()),
        (Some(user.id.as_str()), Some("offline"))
    );
    started.elapsed()
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_data_directory_refuses_to_start() {
    let first = spawn_app().await;
    first.register("first").await; // Serving: its store is open.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let settings = confab::config::Settings::with_defaults(
        first.data_path().to_path_buf(),
        "http://127.0.0.1:1",
    );
    let refused =
        confab::server::run(listener, settings, tokio_util::sync::CancellationToken::new()).await;
    let error = refused.expect_err("a second process on the directory is refused").to_string();
    assert!(error.contains("in use by another Confab") && error.contains("pid"), "{error}");
    // The first goes on serving.
    first.register("still-here").await;
}

#[tokio::test]
async fn guesses_spread_over_two_nodes_meet_one_budget() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    cluster.nodes[0].register("bob").await;
    // Five failures per username are free; then each waits. Twelve guesses alternating
    // between two nodes are six per node: a throttle per node would never refuse one.
    let mut refused = None;
    for attempt in 0..12 {
        let node = &cluster.nodes[attempt % 2];
        let request = node.http.post(node.url("/auth/login"));
        let response = request
            .json(&json!({ "username": "bob", "password": "guess" }))
            .send()
            .await
            .expect("request sent");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().get("retry-after").is_some());
            refused = Some(attempt + 1);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = refused.expect("the cluster throttles the username");
    assert!(refused >= 7, "five free failures and a sixth that starts the wait: {refused}");
}

#[tokio::test]
async fn a_user_who_left_while_redis_was_away_goes_offline_for_everyone() {
    let Some(mut cluster) = spawn_cluster(2).await else { return };
    let (alice, bob, _room) = two_people(&cluster).await;
    let mut alice_ws = cluster.nodes[0].connect(&alice).await.with_presence();
    let bob_ws = cluster.nodes[1].connect(&bob).await;
    let online = recv_within(&mut alice_ws, "presence", PATIENCE).await;
    assert_eq!(online["status"], "online", "{online}");

    // Bob leaves while nothing carries his going to Alice's node.
    cluster.redis.stop();
    drop(bob_ws);
    eventually("bob's node has let him go", || async {
        (cluster.nodes[1].connection_count().await == 0).then_some(())
    })
    .await;
    cluster.redis.start_again().await;

    // His node no longer repeats that he is around, so what it said lapses.
    let took = goes_offline(&mut alice_ws, &bob).await;
    eprintln!("a departure lost to an outage was seen after {took:?}");
}

#[tokio::test]
async fn a_redis_outage_is_logged_once_however_much_is_sent_meanwhile() {
    let Some(mut cluster) = spawn_cluster(1).await else { return };
    let a = &cluster.nodes[0];
    let confab::config::Database::Postgres(url) = a.database().clone() else {
        unreachable!("a cluster is on PostgreSQL")
    };
    let (data_dir, redis_url) = (a.data_path().to_path_buf(), cluster.redis.node_url(1).await);
    let node = ServerProcess::start(|command| {
        command.arg("--database-url").arg(&url).arg("--redis-url").arg(&redis_url);
        command.arg("--data-dir").arg(&data_dir);
    })
    .await;
    let b = TestApp::external(node.address);
    b.wait_until_ready().await;
    let alice = b.register("alice").await;
    let room = b.create_room(&alice, "outage", "public", &[]).await;

    cluster.redis.stop();
    for n in 0..50 {
        b.send(&alice, &room, &format!("during the outage {n}")).await;
    }
    eventually("readiness says redis is away", || async {
        let (status, body) = b.readiness().await;
        (status == reqwest::StatusCode::SERVICE_UNAVAILABLE && body["unreachable"] == "redis")
            .then_some(())
    })
    .await;
    cluster.redis.start_again().await;
    b.wait_until_ready().await;

    let lines: Vec<String> = node.stdout_lines().into_iter().chain(node.stderr_lines()).collect();
    let warnings: Vec<&String> =
        lines.iter().filter(|l| l.contains("WARN") && l.contains("redis")).collect();
    // Publishing and the subscription each say once that they lost Redis (and, at most,
    // once that they cannot reach it yet, and the subscription that its heartbeat stopped).
    assert!(!warnings.is_empty() && warnings.len() <= 5, "{warnings:#?}");
    let back = lines.iter().filter(|l| l.contains("redis") && l.contains("connected")).count();
    assert!(back >= 2, "the end of the outage is logged too: {lines:#?}");
}

#[tokio::test]
async fn a_block_made_on_one_node_holds_on_the_other_at_once() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let dm = b.open_dm(&bob, &alice).await;
    let mut alice_on_b = b.connect(&alice).await;
    let mut bob_on_b = b.connect(&bob).await;

    let (status, body) =
        a.call(reqwest::Method::PUT, &format!("/me/blocks/{}", bob.id), Some(&alice), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "block: {body}");
    // No waiting: the other node reads the block from the database.
    let sent = b.post(&bob, &format!("/rooms/{dm}/messages"), json!({ "body": "hi" })).await;
    assert_eq!((sent.0, &sent.1["error"]["code"]), (StatusCode::FORBIDDEN, &json!("blocked")));
    bob_on_b
        .send_json(json!({ "type": "send", "room_id": dm, "body": "hi", "client_id": "c1" }))
        .await;
    assert_eq!(recv_within(&mut bob_on_b, "error", PATIENCE).await["code"], "blocked");
    let created = b
        .post(&bob, "/rooms", json!({ "name": "g", "kind": "private", "member_ids": [alice.id] }))
        .await;
    assert_eq!(created.1["error"]["code"], "blocked", "{}", created.1);
    let (_, rooms) = b.get(&alice, "/rooms").await;
    assert_eq!(rooms["rooms"], json!([]), "the DM is out of Alice's list on node 2 too");
    // Alice's socket on the other node drops the DM through the bus.
    let removed = recv_within(&mut alice_on_b, "room.removed", PATIENCE).await;
    assert_eq!(removed["room_id"], dm.as_str());

    let unblocked = a.delete(&alice, &format!("/me/blocks/{}", bob.id)).await;
    assert_eq!(unblocked.0, StatusCode::NO_CONTENT);
    let added = recv_within(&mut alice_on_b, "room.added", PATIENCE).await;
    assert_eq!(added["room_id"], dm.as_str());
    b.send(&bob, &dm, "hello again").await;
}
