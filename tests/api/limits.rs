//! Rate limits and the cap on a user's sockets: every limited action answers 429 with
//! `Retry-After` (and `retry_after` in the body) once its burst is spent, costs nothing
//! while refused, and succeeds again after the wait it named; on the WebSocket a refusal
//! is an `error` frame with `retry_after`, and the connection goes on. A person using the
//! server as people do never meets a limit as shipped. With several nodes, the limits are
//! the cluster's, not each node's.

use std::future::Future;
use std::time::Duration;

use confab::limits::{Action, LimitSettings, Rate};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::media::upload_claimed;
use crate::support::{
    PATIENCE, TestApp, TestUser, WsClient, described, each_store, spawn_app_as_shipped,
    spawn_app_with, spawn_cluster_with,
};

/// An answer as the limits tests look at it: status, body, and `Retry-After` if sent.
struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl TestApp {
    async fn answer(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<Value>,
        forwarded_for: Option<&str>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let answer = described::send(request).await;
        let retry_after = answer
            .headers
            .get("retry-after")
            .map(|value| value.to_str().expect("ascii").parse().expect("whole seconds"));
        let body = serde_json::from_slice(&answer.bytes).unwrap_or(Value::Null);
        Answer { status: answer.status, body, retry_after }
    }
}

/// A server with every limit off but `limits`, trusting loopback as a proxy so that tests
/// can speak for several addresses.
async fn limited(limits: &[(Action, &str)]) -> TestApp {
    let limits: Vec<(Action, Rate)> =
        limits.iter().map(|(action, rate)| (*action, rate.parse().expect("a rate"))).collect();
    spawn_app_with(move |settings| {
        for (action, rate) in limits {
            settings.limits.set(action, Some(rate));
        }
        settings.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a network")];
    })
    .await
}

/// Runs `attempt` `burst` times, each succeeding; the next is refused with 429, a
/// Retry-After and the same `retry_after` in the body, and refused again at once (a
/// refusal costs nothing but does not help either); after waiting as told, it succeeds.
async fn spends_then_recovers<F, Fut>(what: &str, burst: usize, mut attempt: F)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Answer>,
{
    for i in 0..burst {
        let answer = attempt(i).await;
        assert!(answer.status.is_success(), "{what} {i} within the burst: {}", answer.body);
    }
    let refused = attempt(burst).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{what} past the burst");
    assert_eq!(refused.body["error"]["code"], "rate_limited", "{what}: {}", refused.body);
    let wait = refused.retry_after.expect("Retry-After");
    assert!(wait >= 1, "{what}: a wait of whole seconds");
    assert_eq!(refused.body["error"]["retry_after"], json!(wait), "{what}: the body says it too");
    assert_eq!(attempt(burst + 1).await.status, StatusCode::TOO_MANY_REQUESTS, "{what}");
    // The wait the server named is the wait: sleeping it is what a client is asked to do.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = attempt(burst + 2).await;
    assert!(again.status.is_success(), "{what} after the wait: {}", again.body);
}

#[each_store]
async fn registrations_are_limited_per_address() {
    let app = limited(&[(Action::Register, "3/3s")]).await;
    let register = |i: usize, address: &'static str| {
        let app = &app;
        async move {
            let body = json!({ "username": format!("user{i}x{}", address.len()), "password": "a long password" });
            app.answer(Method::POST, "/auth/register", None, Some(body), Some(address)).await
        }
    };
    spends_then_recovers("registering", 3, |i| register(i, "203.0.113.5")).await;
    // Another address has its own budget.
    assert_eq!(register(0, "198.51.100.77").await.status, StatusCode::CREATED);
}

#[each_store]
async fn sign_in_attempts_are_limited_per_address() {
    let app = limited(&[(Action::Login, "3/3s")]).await;
    app.register("alice").await;
    let body = json!({ "username": "alice", "password": "password-alice" });
    let login = |address: &'static str| {
        let (app, body) = (&app, body.clone());
        async move { app.answer(Method::POST, "/auth/login", None, Some(body), Some(address)).await }
    };
    spends_then_recovers("signing in", 3, |_| login("203.0.113.5")).await;
    assert_eq!(login("198.51.100.77").await.status, StatusCode::OK);
}

#[each_store]
async fn messages_edits_and_deletes_share_a_rate_per_user() {
    let app = limited(&[(Action::Message, "4/4s")]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = app.create_room(&alice, "chat", "private", &[&bob]).await;
    let first = app.send(&alice, &room, "one").await;
    let id = first["id"].as_str().expect("id").to_owned();
    app.send(&alice, &room, "two").await;
    let path = format!("/rooms/{room}/messages/{id}");
    let edit = app.answer(Method::PATCH, &path, Some(&alice), Some(json!({"body": "1"})), None);
    assert_eq!(edit.await.status, StatusCode::OK);
    let send = |_| {
        let (app, alice, path) = (&app, &alice, format!("/rooms/{room}/messages"));
        async move {
            app.answer(Method::POST, &path, Some(alice), Some(json!({"body": "x"})), None).await
        }
    };
    spends_then_recovers("sending", 1, send).await;
    // Bob's budget is his own.
    app.send(&bob, &room, "meanwhile").await;
}

#[each_store]
async fn a_refused_send_on_the_socket_says_when_and_the_socket_goes_on() {
    let app = limited(&[(Action::Message, "2/2s")]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = app.create_room(&alice, "chat", "private", &[&bob]).await;
    let mut ws = app.connect(&alice).await;
    for n in 0..2 {
        let client_id = format!("c{n}");
        ws.send_json(
            json!({ "type": "send", "room_id": room, "body": "hi", "client_id": client_id }),
        )
        .await;
        let ack = ws.recv_type("message.ack").await;
        assert_eq!(ack["client_id"], client_id.as_str());
    }
    ws.send_json(json!({ "type": "send", "room_id": room, "body": "hi", "client_id": "c2" })).await;
    let error = ws.recv_type("error").await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    assert_eq!(error["client_id"], "c2");
    let wait = error["retry_after"].as_u64().expect("retry_after in seconds");
    assert!(wait >= 1);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    ws.send_json(json!({ "type": "send", "room_id": room, "body": "hi", "client_id": "c2" })).await;
    let ack = ws.recv_type("message.ack").await;
    assert_eq!(ack["client_id"], "c2", "the same socket sends again");
}

#[each_store]
async fn typing_is_limited_per_user_over_all_their_sockets() {
    let app = limited(&[(Action::Typing, "2/20s")]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = app.create_room(&alice, "chat", "private", &[&bob]).await;
    // Each socket relays at most one typing notice per room every two seconds; three
    // sockets together would relay three at once.
    let mut sockets: Vec<WsClient> = Vec::new();
    for _ in 0..3 {
        sockets.push(app.connect(&alice).await);
    }
    let mut bob_ws = app.connect(&bob).await;
    for ws in &mut sockets[..2] {
        ws.send_json(json!({ "type": "typing", "room_id": room })).await;
        let typing = bob_ws.recv_type("typing").await;
        assert_eq!(typing["user_id"], alice.id.as_str());
    }
    let frame = json!({ "type": "typing", "room_id": room, "client_id": "t2" });
    sockets[2].send_json(frame).await;
    let error = sockets[2].recv_type("error").await;
    assert_eq!(
        (error["code"].as_str(), error["client_id"].as_str()),
        (Some("rate_limited"), Some("t2"))
    );
    assert!(error["retry_after"].as_u64().is_some_and(|wait| wait >= 1), "{error}");
    bob_ws.expect_silence(Duration::from_millis(300)).await;
}

#[each_store]
async fn reactions_are_limited_per_user() {
    let app = limited(&[(Action::Reaction, "2/2s")]).await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "chat", "private", &[]).await;
    let message = app.send(&alice, &room, "react to me").await;
    let id = message["id"].as_str().expect("id").to_owned();
    let emoji = ["👍", "🎉", "😀", "🙂", "❤"];
    spends_then_recovers("reacting", 2, |i| {
        let (app, alice) = (&app, &alice);
        let path = format!("/rooms/{room}/messages/{id}/reactions/{}", emoji[i]);
        async move { app.answer(Method::PUT, &path, Some(alice), None, None).await }
    })
    .await;
}

#[each_store]
async fn new_rooms_and_dms_are_limited_per_user() {
    let app = limited(&[(Action::Room, "3/3s")]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    app.create_room(&alice, "one", "private", &[]).await;
    app.open_dm(&alice, &bob).await;
    spends_then_recovers("making rooms", 1, |i| {
        let (app, alice) = (&app, &alice);
        let body = json!({ "name": format!("group {i}"), "kind": "private" });
        async move { app.answer(Method::POST, "/rooms", Some(alice), Some(body), None).await }
    })
    .await;
}

#[each_store]
async fn people_added_are_counted_one_by_one_at_creation_and_after() {
    let app = limited(&[(Action::Member, "3/3s")]).await;
    let alice = app.register("alice").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave", "erin", "frank", "grace"] {
        others.push(app.register(name).await);
    }
    let room = app.create_room(&alice, "team", "private", &[&others[0], &others[1]]).await;
    spends_then_recovers("adding people", 1, |i| {
        let (app, alice, path) = (&app, &alice, format!("/rooms/{room}/members"));
        let body = json!({ "user_id": others[2 + i].id });
        async move { app.answer(Method::POST, &path, Some(alice), Some(body), None).await }
    })
    .await;
    // A group made with more people than are left in the budget is not made.
    let members = json!([others[0].id, others[1].id, others[2].id]);
    let body = json!({ "name": "too many", "kind": "private", "member_ids": members });
    let refused = app.answer(Method::POST, "/rooms", Some(&alice), Some(body), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
}

#[each_store]
async fn uploads_are_limited_by_count_and_by_bytes() {
    let app = limited(&[(Action::Upload, "2/2s")]).await;
    let alice = app.register("alice").await;
    spends_then_recovers("uploading", 2, |_| upload(&app, &alice, 100)).await;

    let app = limited(&[(Action::UploadBytes, "3K/3s")]).await;
    let alice = app.register("alice").await;
    // 2 KiB fits in 3; 2 KiB more does not, until a second's worth (1 KiB) comes back.
    spends_then_recovers("uploading bytes", 1, |_| upload(&app, &alice, 2048)).await;
}

async fn upload(app: &TestApp, user: &TestUser, bytes: usize) -> Answer {
    let reply = upload_claimed(app, user, "notes.txt", "text/plain", &vec![b'x'; bytes]).await;
    let retry_after = Some(reply.header("retry-after"))
        .filter(|value| !value.is_empty())
        .map(|value| value.parse().expect("whole seconds"));
    Answer { status: reply.status, body: reply.json(), retry_after }
}

#[each_store]
async fn a_user_holds_at_most_so_many_sockets() {
    let app = spawn_app_with(|settings| settings.limits.sockets_per_user = Some(3)).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(app.connect(&alice).await);
    }
    let (status, retry_after) = refused_handshake(&app, &alice).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after >= 1);
    let _bob = app.connect(&bob).await;
    // A place frees when one of hers closes.
    drop(sockets.pop());
    wait_for_socket(&app, &alice).await;
}

/// The status and Retry-After of a WebSocket handshake the server refuses.
async fn refused_handshake(app: &TestApp, user: &TestUser) -> (StatusCode, u64) {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let mut request = app.ws_url().into_client_request().expect("ws request");
    let bearer = format!("Bearer {}", user.token).parse().expect("header");
    request.headers_mut().insert("authorization", bearer);
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            let retry = response.headers().get("retry-after").expect("Retry-After");
            let retry = retry.to_str().expect("ascii").parse().expect("seconds");
            (StatusCode::from_u16(response.status().as_u16()).expect("status"), retry)
        }
        Ok(_) => panic!("the handshake was accepted"),
        Err(other) => panic!("the handshake failed otherwise: {other}"),
    }
}

/// Waits until `user` may open a socket (one of theirs has closed), and opens it.
async fn wait_for_socket(app: &TestApp, user: &TestUser) -> WsClient {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(ws) = app.try_connect(user).await {
            return ws;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place freed within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// As people chat: a burst of short messages typed fast, typing notices all along, some
/// reactions, a few tabs open, a file or two. Nothing is refused with the limits as
/// shipped.
#[tokio::test]
async fn a_fast_typist_never_meets_a_limit() {
    let app = spawn_app_as_shipped().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = app.create_room(&alice, "chat", "private", &[&bob]).await;
    let mut tabs = Vec::new();
    for _ in 0..4 {
        tabs.push(app.connect(&alice).await);
    }
    let ws = &mut tabs[0];
    // Eighty messages at four a second (a sprint no one keeps up for twenty seconds),
    // each after a few keystrokes' typing notices, reacting to every tenth.
    for n in 0..80 {
        for _ in 0..3 {
            ws.send_json(json!({ "type": "typing", "room_id": room })).await;
        }
        let client_id = format!("m{n}");
        ws.send_json(
            json!({ "type": "send", "room_id": room, "body": "ok", "client_id": client_id }),
        )
        .await;
        let ack = next_ack_or_error(ws).await;
        assert_eq!(ack["type"], "message.ack", "message {n}: {ack}");
        if n % 10 == 0 {
            let id = ack["message"]["id"].as_str().expect("id");
            let react = format!("/rooms/{room}/messages/{id}/reactions/👍");
            let answer = app.answer(Method::PUT, &react, Some(&alice), None, None).await;
            assert!(answer.status.is_success(), "reacting: {}", answer.body);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for n in 0..3 {
        let reply = upload_claimed(&app, &alice, "photo.txt", "text/plain", b"a picture").await;
        assert_eq!(reply.status, StatusCode::CREATED, "file {n}");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({
                "username": "alice", "password": "password-alice"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The next `message.ack` or `error` frame.
async fn next_ack_or_error(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.recv().await;
        if frame["type"] == "message.ack" || frame["type"] == "error" {
            return frame;
        }
    }
}

/// Two nodes, one budget: messages spread over both meet one rate, and sockets spread
/// over both meet one cap.
#[tokio::test]
async fn the_limits_are_the_clusters_not_each_nodes() {
    let Some(cluster) = spawn_cluster_with(2, |settings| {
        let mut limits = LimitSettings::off();
        limits.set(Action::Message, Some("4/1h".parse().expect("a rate")));
        limits.sockets_per_user = Some(2);
        settings.limits = limits;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (alice, bob) = (a.register("alice").await, a.register("bob").await);
    let room = a.create_room(&alice, "across", "private", &[&bob]).await;
    for node in [a, b, a, b] {
        node.send(&alice, &room, "spread").await;
    }
    for node in [a, b] {
        let path = format!("/rooms/{room}/messages");
        let refused =
            node.answer(Method::POST, &path, Some(&alice), Some(json!({"body": "x"})), None);
        assert_eq!(refused.await.status, StatusCode::TOO_MANY_REQUESTS);
    }

    let on_a = a.connect(&alice).await;
    let _on_b = b.connect(&alice).await;
    for node in [a, b] {
        assert_eq!(refused_handshake(node, &alice).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
    drop(on_a);
    wait_for_socket(b, &alice).await;
}
