//! Bad input of every kind, over HTTP and the WebSocket: each gets its documented error
//! (or close code), and the server goes on serving afterwards.

use std::collections::HashMap;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::{TestApp, TestUser, WsClient, described, each_store, spawn_app};

const FOREIGN_ORIGIN: &str = "http://evil.example";

/// The `error.code` of an error body.
fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// A request read in full: status, content type and body (JSON if it parses).
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
    let answer = described::send(request).await;
    let content_type = answer
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii content type").to_owned())
        .unwrap_or_default();
    (answer.status, content_type, answer.json())
}

/// A POST as `user` of a raw body declared as JSON.
fn raw_post(
    app: &TestApp,
    user: &TestUser,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    app.http
        .post(app.url(path))
        .bearer_auth(&user.token)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
}

/// Asserts an error status and code in our JSON shape.
fn assert_error(reply: &(StatusCode, String, Value), status: StatusCode, code: &str, what: &str) {
    let (actual, content_type, body) = reply;
    assert_eq!(*actual, status, "{what}: {body}");
    assert!(content_type.starts_with("application/json"), "{what}: {content_type:?} {body}");
    assert_eq!(error_code(body), code, "{what}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

/// The server still answers: the health check and a signed-in request both succeed.
async fn assert_still_serving(app: &TestApp, user: &TestUser) {
    let (status, _, health) = send(app.http.get(format!("http://{}/healthz", app.address))).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
    let (status, me) = app.get(user, "/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
}

#[each_store]
async fn a_body_that_is_not_json_is_400_invalid_json() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let messages = format!("/rooms/{room}/messages");
    for path in ["/auth/register", "/auth/login", "/rooms", messages.as_str()] {
        let bodies: [&[u8]; 4] = [b"{not json", b"{\"body\": \"unterminated", b"", b"}"];
        for body in bodies {
            let what = format!("{path} {}", String::from_utf8_lossy(body));
            let reply = send(raw_post(&app, &alice, path, body)).await;
            assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_json", &what);
        }
    }
    // Faults a parser only meets in a field the route reads.
    let bodies: [&[u8]; 2] = [b"{\"body\": \"hi\"} and more", b"{\"body\": \"\xff\"}"];
    for body in bodies {
        let what = String::from_utf8_lossy(body);
        let reply = send(raw_post(&app, &alice, &messages, body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_json", &what);
    }
    assert!(stored_bodies(&app, &alice, &room).await.is_empty(), "nothing was stored");
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn missing_fields_and_wrong_types_are_400_invalid_request() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let messages = format!("/rooms/{room}/messages");
    let cases = [
        ("/auth/register", json!({ "username": "bob" })),
        ("/auth/register", json!({ "username": 5, "password": "password1" })),
        (
            "/auth/register",
            json!({ "username": "bob", "password": "password1", "display_name": [] }),
        ),
        ("/auth/login", json!({})),
        ("/auth/login", json!({ "username": "alice", "password": null })),
        ("/rooms", json!({ "name": "no kind" })),
        ("/rooms", json!({ "name": "x", "kind": "public", "member_ids": "everyone" })),
        (messages.as_str(), json!({ "body": 42 })),
        (messages.as_str(), json!("just a string")),
        (messages.as_str(), json!(null)),
    ];
    for (path, body) in cases {
        let reply = send(raw_post(&app, &alice, path, body.to_string())).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", &format!("{path} {body}"));
    }
    let (status, history) = app.get(&alice, &messages).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["messages"], json!([]), "nothing was stored");
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_body_without_a_json_content_type_is_400_invalid_content_type() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let body = json!({ "name": "general", "kind": "public" }).to_string();
    let without = app.http.post(app.url("/rooms")).bearer_auth(&alice.token).body(body.clone());
    let as_text = app
        .http
        .post(app.url("/rooms"))
        .bearer_auth(&alice.token)
        .header(CONTENT_TYPE, "text/plain")
        .body(body);
    for (what, request) in [("no content type", without), ("text/plain", as_text)] {
        let reply = send(request).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_content_type", what);
    }
    let (_, rooms) = app.get(&alice, "/rooms").await;
    assert_eq!(rooms["rooms"], json!([]), "no room was created");
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_body_over_64_kib_is_413_payload_too_large_and_one_under_reaches_validation() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let messages = format!("/rooms/{room}/messages");

    let huge = "x".repeat(64 * 1024);
    let register = json!({ "username": "bob", "password": "password1", "display_name": huge });
    for (path, body) in [("/auth/register", register), (messages.as_str(), json!({ "body": huge }))]
    {
        let reply = send(raw_post(&app, &alice, path, body.to_string())).await;
        assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", path);
    }

    let large = "x".repeat(60 * 1024);
    let (status, body) = app.post(&alice, &messages, json!({ "body": large })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "body_too_long");
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn unknown_routes_are_404_not_found_in_json() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let root = format!("http://{}", app.address);
    for url in [
        app.url("/nope"),
        app.url("/rooms/public/extra/parts"),
        format!("{root}/api/v2/me"),
        format!("{root}/nope"),
        format!("{root}/assets/0/no-such-file.js"),
    ] {
        let reply = send(app.http.get(&url).bearer_auth(&alice.token)).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found", &url);
    }
    let reply = send(raw_post(&app, &alice, "/no/such/thing", "{}")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", "POST /no/such/thing");
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_known_route_with_the_wrong_method_is_405_method_not_allowed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (method, path) in [
        (Method::DELETE, "/me"),
        (Method::GET, "/auth/register"),
        (Method::PUT, "/auth/login"),
        (Method::GET, "/auth/logout"),
        (Method::PATCH, "/rooms"),
        (Method::POST, "/users"),
        (Method::POST, "/ws"),
    ] {
        let reply =
            send(app.http.request(method.clone(), app.url(path)).bearer_auth(&alice.token)).await;
        let what = format!("{method} {path}");
        assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &what);
    }
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_wrong_method_outside_the_api_is_405_method_not_allowed_in_json() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let healthz = format!("http://{}/healthz", app.address);
    for method in [Method::POST, Method::DELETE] {
        let reply = send(app.http.request(method.clone(), &healthz)).await;
        let what = format!("{method} /healthz");
        assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &what);
    }
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_plain_get_of_the_websocket_endpoint_is_400_websocket_required() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let reply = send(app.http.get(app.url("/ws")).bearer_auth(&alice.token)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "websocket_required", "GET /ws");
    assert_still_serving(&app, &alice).await;
}

/// Every route with an id in its path, for `bad` in place of each id.
fn id_paths(room: &str, bad: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, format!("/rooms/{bad}")),
        (Method::GET, format!("/rooms/{bad}/messages")),
        (Method::POST, format!("/rooms/{bad}/messages")),
        (Method::POST, format!("/rooms/{bad}/join")),
        (Method::POST, format!("/rooms/{bad}/leave")),
        (Method::GET, format!("/rooms/{bad}/members")),
        (Method::POST, format!("/rooms/{bad}/members")),
        (Method::DELETE, format!("/rooms/{bad}/members/{bad}")),
        (Method::DELETE, format!("/rooms/{room}/members/{bad}")),
        (Method::POST, format!("/dm/{bad}")),
        (Method::GET, format!("/users/{bad}")),
    ]
}

/// The answer to `method path` as `user`, with a body that would do for any of them.
async fn call_with_any_body(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
) -> (StatusCode, String, Value) {
    let body = json!({ "body": "hi", "user_id": user.id });
    send(app.http.request(method, app.url(path)).bearer_auth(&user.token).json(&body)).await
}

#[each_store]
async fn malformed_ids_in_paths_are_404_not_found() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    // Not base32, too long, too short, zero, above 2^63, and an escaped NUL.
    let bad_ids = ["not-an-id", "00000000000001", "abc", "0000000000000", "zzzzzzzzzzzzz", "%00"];
    for bad in bad_ids {
        for (method, path) in id_paths(&room, bad) {
            let reply = call_with_any_body(&app, &alice, method.clone(), &path).await;
            assert_error(&reply, StatusCode::NOT_FOUND, "not_found", &format!("{method} {path}"));
        }
    }
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_path_id_that_is_not_utf8_is_404_not_found_in_json() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let mut wrong = Vec::new();
    for (method, path) in id_paths(&room, "%FF") {
        let (status, content_type, body) =
            call_with_any_body(&app, &alice, method.clone(), &path).await;
        let code = body["error"]["code"].as_str();
        if status != StatusCode::NOT_FOUND || code != Some("not_found") {
            wrong.push(format!("{method} {path}: {status} {content_type:?} {body}"));
        }
    }
    assert!(wrong.is_empty(), "not 404 not_found in JSON:\n{}", wrong.join("\n"));
    assert_still_serving(&app, &alice).await;
}

/// A user and a public room of theirs, for the message rules.
async fn room_of_alice(app: &TestApp) -> (TestUser, String) {
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    (alice, room)
}

/// The bodies stored in a room, oldest first.
async fn stored_bodies(app: &TestApp, user: &TestUser, room: &str) -> Vec<String> {
    let (status, page) = app.get(user, &format!("/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().expect("body").to_owned())
        .collect()
}

async fn assert_body_refused(app: &TestApp, user: &TestUser, room: &str, body: &str, code: &str) {
    let (status, reply) =
        app.post(user, &format!("/rooms/{room}/messages"), json!({ "body": body })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}: {reply}");
    assert_eq!(error_code(&reply), code, "{body:?}");
    assert_eq!(reply["error"]["field"], "body", "{body:?}");
}

#[each_store]
async fn an_empty_or_whitespace_only_message_is_422_empty_body() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    for body in ["", " ", "\n", " \t \r\n \n "] {
        assert_body_refused(&app, &alice, &room, body, "empty_body").await;
    }
    assert!(stored_bodies(&app, &alice, &room).await.is_empty());
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_message_over_4000_characters_is_422_body_too_long_while_4000_multibyte_ones_fit() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    assert_body_refused(&app, &alice, &room, &"a".repeat(4001), "body_too_long").await;
    assert_body_refused(&app, &alice, &room, &"ü".repeat(4001), "body_too_long").await;

    let umlauts = "ü".repeat(4000);
    let emoji = "😀".repeat(4000);
    let padded = format!("  {}  ", "a".repeat(4000));
    for body in [&umlauts, &emoji, &padded] {
        let message = app.send(&alice, &room, body).await;
        assert_eq!(message["body"], body.trim());
    }
    assert_eq!(stored_bodies(&app, &alice, &room).await, [umlauts, emoji, "a".repeat(4000)]);
}

#[each_store]
async fn control_characters_in_a_message_are_422_invalid_body() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    for body in ["nul \0 inside", "escape \u{1b}[31m red", "bell\u{7}", "lone\rreturn", "del\u{7f}"]
    {
        assert_body_refused(&app, &alice, &room, body, "invalid_body").await;
    }
    assert!(stored_bodies(&app, &alice, &room).await.is_empty());
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_message_may_hold_newlines_and_tabs_and_is_trimmed_with_crlf_folded_to_lf() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    let message = app.send(&alice, &room, " \r\n line one\r\n\tindented\n\nlast \t\r\n").await;
    let expected = "line one\n\tindented\n\nlast";
    assert_eq!(message["body"], expected);
    assert_eq!(stored_bodies(&app, &alice, &room).await, [expected]);
}

#[each_store]
async fn a_history_limit_outside_1_to_200_is_422_invalid_limit() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    app.send(&alice, &room, "one").await;
    let history = format!("/rooms/{room}/messages");
    for limit in ["0", "201", "4294967295"] {
        let (status, body) = app.get(&alice, &format!("{history}?limit={limit}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "limit={limit}: {body}");
        assert_eq!(error_code(&body), "invalid_limit", "limit={limit}");
        assert_eq!(body["error"]["field"], "limit");
    }
    for limit in ["-1", "ten", "1.5"] {
        let (status, body) = app.get(&alice, &format!("{history}?limit={limit}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}: {body}");
        assert_eq!(error_code(&body), "invalid_query", "limit={limit}");
    }
    for limit in ["1", "200"] {
        let (status, body) = app.get(&alice, &format!("{history}?limit={limit}")).await;
        assert_eq!(status, StatusCode::OK, "limit={limit}: {body}");
        assert_eq!(body["messages"].as_array().expect("messages").len(), 1);
    }
}

#[each_store]
async fn a_negative_before_or_after_is_422_invalid_seq() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    app.send(&alice, &room, "one").await;
    let history = format!("/rooms/{room}/messages");
    for field in ["before", "after"] {
        let (status, body) = app.get(&alice, &format!("{history}?{field}=-1")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert_eq!(error_code(&body), "invalid_seq", "{field}");
        assert_eq!(body["error"]["field"], field);
    }
    let (status, body) = app.get(&alice, &format!("{history}?after=0")).await;
    assert_eq!(status, StatusCode::OK, "0 is a seq: {body}");
    assert_eq!(body["messages"].as_array().expect("messages").len(), 1);
}

/// The next frame, which must be an error with this code; returns it.
async fn expect_error_frame(ws: &mut WsClient, code: &str, what: &str) -> Value {
    let frame = ws.recv().await;
    assert_eq!(frame["type"], "error", "{what}: {frame}");
    assert_eq!(frame["code"], code, "{what}: {frame}");
    assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {frame}");
    frame
}

/// The connection still answers: a ping gets its pong, nothing before it.
async fn assert_connection_open(ws: &mut WsClient) {
    ws.send_json(json!({ "type": "ping", "id": "still-open" })).await;
    let pong = ws.recv().await;
    assert_eq!(pong, json!({ "type": "pong", "id": "still-open" }));
}

#[each_store]
async fn a_text_frame_that_is_not_json_gets_invalid_json_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    for text in ["hello", "{", "", "{\"type\": \"ping\""] {
        ws.send_raw(Message::text(text)).await;
        let frame = expect_error_frame(&mut ws, "invalid_json", text).await;
        assert!(frame.get("client_id").is_none(), "{frame}");
    }
    assert_connection_open(&mut ws).await;
}

#[each_store]
async fn a_frame_of_unknown_type_gets_unknown_type_with_its_client_id_echoed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;

    ws.send_json(json!({ "type": "shout", "client_id": "c-1", "body": "HEY" })).await;
    let frame = expect_error_frame(&mut ws, "unknown_type", "with a client_id").await;
    assert_eq!(frame["client_id"], "c-1");

    ws.send_json(json!({ "client_id": "c-2" })).await;
    let frame = expect_error_frame(&mut ws, "unknown_type", "no type at all").await;
    assert_eq!(frame["client_id"], "c-2");

    for untyped in [json!({ "type": "shout" }), json!({ "type": "SEND" }), json!({ "type": 7 })] {
        ws.send_json(untyped.clone()).await;
        let frame = expect_error_frame(&mut ws, "unknown_type", &untyped.to_string()).await;
        assert!(frame.get("client_id").is_none(), "no client_id to echo: {frame}");
    }
    assert_connection_open(&mut ws).await;
}

#[each_store]
async fn a_frame_missing_fields_or_with_wrong_types_gets_invalid_frame() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    let mut ws = app.connect(&alice).await;
    let cases = [
        (json!({ "type": "send", "body": "hi", "client_id": "c-2" }), Some("c-2")),
        (json!({ "type": "send", "room_id": room, "body": 5, "client_id": "c-3" }), Some("c-3")),
        (json!({ "type": "send", "room_id": room, "body": "hi" }), None),
        (json!({ "type": "sync" }), None),
        (json!({ "type": "sync", "since": [1, 2] }), None),
    ];
    for (frame, client_id) in cases {
        ws.send_json(frame.clone()).await;
        let error = expect_error_frame(&mut ws, "invalid_frame", &frame.to_string()).await;
        match client_id {
            Some(id) => assert_eq!(error["client_id"], id, "{frame}"),
            None => assert!(error.get("client_id").is_none(), "{error}"),
        }
    }
    assert_connection_open(&mut ws).await;
    assert!(stored_bodies(&app, &alice, &room).await.is_empty(), "no send went through");
}

#[each_store]
async fn a_binary_frame_gets_unsupported_frame_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    let ping = json!({ "type": "ping", "id": 1 }).to_string();
    ws.send_raw(Message::binary(ping.into_bytes())).await;
    expect_error_frame(&mut ws, "unsupported_frame", "binary").await;
    assert_connection_open(&mut ws).await;
}

#[each_store]
async fn a_websocket_send_with_an_invalid_body_gets_the_body_error_with_its_client_id() {
    let app = spawn_app().await;
    let (alice, room) = room_of_alice(&app).await;
    let mut ws = app.connect(&alice).await;
    let cases = [
        ("empty", " \n ".to_owned(), "empty_body"),
        ("long", "a".repeat(4001), "body_too_long"),
        ("control", "bell\u{7}".to_owned(), "invalid_body"),
    ];
    for (client_id, body, _) in &cases {
        ws.send_json(
            json!({ "type": "send", "room_id": room, "body": body, "client_id": client_id }),
        )
        .await;
    }
    // Sends are handled concurrently, so their answers may come in any order.
    let mut errors = HashMap::new();
    for _ in &cases {
        let frame = ws.recv().await;
        assert_eq!(frame["type"], "error", "{frame}");
        let client_id = frame["client_id"].as_str().expect("client_id").to_owned();
        errors.insert(client_id, frame["code"].as_str().expect("code").to_owned());
    }
    for (client_id, _, code) in &cases {
        assert_eq!(errors.get(*client_id).map(String::as_str), Some(*code), "{client_id}");
    }

    ws.send_json(json!({ "type": "send", "room_id": room, "body": "fine", "client_id": "ok" }))
        .await;
    let ack = ws.recv_type("message.ack").await;
    assert_eq!(ack["client_id"], "ok");
    assert_eq!(ack["message"]["seq"], 1, "the refused sends were not stored");
}

/// A ping frame of exactly `size` bytes.
fn ping_of_size(size: usize) -> String {
    let empty = json!({ "type": "ping", "id": "" }).to_string();
    let frame = json!({ "type": "ping", "id": "x".repeat(size - empty.len()) }).to_string();
    assert_eq!(frame.len(), size);
    frame
}

#[each_store]
async fn a_frame_of_exactly_64_kib_is_accepted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    let ping = ping_of_size(64 * 1024);
    ws.send_raw(Message::text(ping.clone())).await;
    let pong = ws.recv().await;
    assert_eq!(pong["type"], "pong");
    let sent: Value = serde_json::from_str(&ping).expect("json");
    assert!(pong["id"] == sent["id"], "the pong echoes the 64 KiB ping's id");
}

#[each_store]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    ws.send_raw(Message::text(ping_of_size(64 * 1024 + 1))).await;
    assert_eq!(ws.expect_close().await, Some(1009));

    let mut again = app.connect(&alice).await;
    assert_connection_open(&mut again).await;
    assert_still_serving(&app, &alice).await;
}

/// A WebSocket upgrade with exactly these headers: the connection after `ready`, or the
/// status and JSON body of the refusal.
async fn try_upgrade(
    app: &TestApp,
    headers: &[(&'static str, String)],
) -> Result<WsClient, (StatusCode, Value)> {
    let mut request = app.ws_url().into_client_request().expect("ws request");
    for (name, value) in headers {
        request.headers_mut().insert(*name, HeaderValue::from_str(value).expect("header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(WsClient::start(stream).await),
        Err(tungstenite::Error::Http(response)) => {
            let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            Err((status, body))
        }
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

fn refused(outcome: Result<WsClient, (StatusCode, Value)>) -> (StatusCode, Value) {
    match outcome {
        Ok(client) => panic!("upgrade accepted: {}", client.ready),
        Err(refusal) => refusal,
    }
}

fn bearer(user: &TestUser) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", user.token))
}

fn cookie(user: &TestUser) -> (&'static str, String) {
    ("cookie", format!("confab_session={}", user.token))
}

fn origin(value: &str) -> (&'static str, String) {
    ("origin", value.to_owned())
}

#[each_store]
async fn a_websocket_upgrade_from_a_foreign_origin_is_403_bad_origin() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for credentials in [bearer(&alice), cookie(&alice)] {
        let headers = [credentials.clone(), origin(FOREIGN_ORIGIN)];
        let (status, body) = refused(try_upgrade(&app, &headers).await);
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", credentials.0);
        assert_eq!(error_code(&body), "bad_origin");
    }
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_websocket_upgrade_from_our_origin_with_the_session_cookie_is_accepted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let headers = [cookie(&alice), origin(&app.origin)];
    let mut ws = try_upgrade(&app, &headers).await.map_err(|e| e.0).expect("accepted");
    assert_eq!(ws.ready["user"]["id"], alice.id.as_str());
    assert_connection_open(&mut ws).await;
}

#[each_store]
async fn a_websocket_upgrade_with_only_a_cookie_and_no_origin_is_401() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (status, body) = refused(try_upgrade(&app, &[cookie(&alice)]).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "unauthenticated");
}

#[each_store]
async fn a_websocket_upgrade_without_a_valid_bearer_token_is_401() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let forged = TestUser { token: "not-a-token".to_owned(), ..alice.clone() };
    for headers in [vec![bearer(&forged)], vec![], vec![bearer(&forged), origin(&app.origin)]] {
        let (status, body) = refused(try_upgrade(&app, &headers).await);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(error_code(&body), "unauthenticated");
    }
    assert_still_serving(&app, &alice).await;
}

#[each_store]
async fn a_cookie_authenticated_post_from_a_foreign_origin_is_403_bad_origin() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let by_cookie = |origin: &str| {
        app.http
            .post(app.url("/rooms"))
            .header("cookie", format!("confab_session={}", alice.token))
            .header("origin", origin)
            .json(&json!({ "name": "general", "kind": "public" }))
    };

    let reply = send(by_cookie(FOREIGN_ORIGIN)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "bad_origin", "foreign origin");
    let (_, rooms) = app.get(&alice, "/rooms").await;
    assert_eq!(rooms["rooms"], json!([]), "no room was created");

    let logout = app
        .http
        .post(app.url("/auth/logout"))
        .header("cookie", format!("confab_session={}", alice.token))
        .header("origin", FOREIGN_ORIGIN);
    let reply = send(logout).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "bad_origin", "foreign logout");
    assert_still_serving(&app, &alice).await;

    let (status, _, room) = send(by_cookie(&app.origin)).await;
    assert_eq!(status, StatusCode::CREATED, "our own origin may: {room}");
}

#[each_store]
async fn a_search_holding_a_control_character_is_refused_not_searched() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for path in ["/users?q=al%00ice", "/rooms/public?q=%01", "/users?q=%0A"] {
        let (status, body) = app.get(&alice, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(error_code(&body), "invalid_query", "{path}");
    }
    let (status, found) = app.get(&alice, "/users?q=%20al%20").await;
    assert_eq!(status, StatusCode::OK, "spaces around a prefix are trimmed: {found}");
    assert_eq!(found["users"][0]["username"], "alice");
}

/// Names that hide characters or show nothing are refused, as are reactions that do; a
/// file name keeps only what shows (U+202E before "gnp.exe" would show it as "exe.png").
#[each_store]
async fn invisible_and_blank_names_and_reactions_are_refused_and_file_names_cleaned() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for name in ["\u{3164}", "\u{2800}", "ad\u{00AD}min", "ad\u{2060}min", "x\u{E0001}"] {
        let (status, body) = app
            .call(Method::PATCH, "/me", Some(&alice), Some(json!({ "display_name": name })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_display_name", "{name:?}");
    }
    for name in ["\u{202E}lareneg", "team\u{2066}", "gen\u{200B}eral", "\u{2800}\u{2800}"] {
        let body = json!({ "name": name, "kind": "public" });
        let (status, body) = app.post(&alice, "/rooms", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_room_name", "{name:?}");
    }
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let message = app.send(&alice, &room, "hello").await;
    let id = message["id"].as_str().expect("an id");
    for emoji in ["%E2%80%AE", "%F0%9F%91%8D%E2%80%8B"] {
        let path = format!("/rooms/{room}/messages/{id}/reactions/{emoji}");
        let (status, body) = app.call(Method::PUT, &path, Some(&alice), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{emoji}: {body}");
        assert_eq!(body["error"]["code"], "invalid_emoji", "{emoji}");
    }
    // A heart with its variation selector is an emoji like any other.
    let path = format!("/rooms/{room}/messages/{id}/reactions/%E2%9D%A4%EF%B8%8F");
    let (status, body) = app.call(Method::PUT, &path, Some(&alice), None).await;
    assert!(status.is_success(), "❤️: {status} {body}");

    let reply =
        crate::media::upload_claimed(&app, &alice, "\u{202E}gnp.exe", "text/plain", b"MZ").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let file = reply.json();
    assert_eq!(file["name"], "gnp.exe", "{file}");
}
