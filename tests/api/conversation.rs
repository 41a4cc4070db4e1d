//! Live conversation beyond sending: edits, deletes (tombstones), reactions, replies and
//! mentions, each by HTTP and WebSocket, live to every member and in history; who may do
//! what; and catching up on all of it after a reconnect.
//!
//! The helpers here are shared by the submodules, one per kind of change.

mod catch_up;
mod deletes;
mod edits;
mod mentions;
mod outsiders;
mod reactions;
mod replies;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{TestApp, TestUser, WsClient};

/// How long a test listens to be sure that something does not arrive.
const QUIET: Duration = Duration::from_millis(300);

/// A message id that is well formed but names no message.
const NO_SUCH_MESSAGE: &str = "0000000000001";

fn message_path(room: &str, message: &str) -> String {
    format!("/rooms/{room}/messages/{message}")
}

/// The path of one emoji's reactions to a message, the emoji percent-encoded as clients must.
fn reaction_path(room: &str, message: &str, emoji: &str) -> String {
    format!("/rooms/{room}/messages/{message}/reactions/{}", percent_encode(emoji))
}

/// Every byte but RFC 3986's unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn patch(app: &TestApp, user: &TestUser, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PATCH, path, Some(user), Some(body)).await
}

async fn put(app: &TestApp, user: &TestUser, path: &str) -> (StatusCode, Value) {
    app.call(Method::PUT, path, Some(user), None).await
}

/// The `error.code` of an HTTP error body.
fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("an error body: {body}"))
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("{what} is a string: {value}"))
}

fn seq_of(value: &Value) -> i64 {
    value.as_i64().unwrap_or_else(|| panic!("a seq: {value}"))
}

/// A room's whole history (up to 200 messages), oldest first. Reading moves no read marker.
async fn history(app: &TestApp, user: &TestUser, room: &str) -> Vec<Value> {
    let (status, page) = app.get(user, &format!("/rooms/{room}/messages?limit=200")).await;
    assert_eq!(status, StatusCode::OK, "history: {page}");
    page["messages"].as_array().expect("messages").clone()
}

/// The message with `id` in a list of messages.
fn find<'a>(messages: &'a [Value], id: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} in {messages:?}"))
}

/// How a room looks to `user` in their room list.
async fn listed_room(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let (status, list) = app.get(user, "/rooms").await;
    assert_eq!(status, StatusCode::OK, "room list: {list}");
    list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("room {room} in {list}"))
        .clone()
}

/// Frames that follow someone's read marker (`receipts`, `unread`): beside the point of
/// these tests.
fn is_marker(frame: &Value) -> bool {
    matches!(frame["type"].as_str(), Some("receipts" | "unread"))
}

/// The next frame that is not about read markers; fails the test if none comes in time.
async fn next_event(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.recv().await;
        if !is_marker(&frame) {
            return frame;
        }
    }
}

/// The next event, which must be of type `kind`.
async fn expect_event(ws: &mut WsClient, kind: &str) -> Value {
    let frame = next_event(ws).await;
    assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
    frame
}

/// The next `count` events, in the order they came.
async fn next_events(ws: &mut WsClient, count: usize) -> Vec<Value> {
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(next_event(ws).await);
    }
    events
}

/// The one event of type `kind` among `events`.
fn only_of<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let mut matching = events.iter().filter(|e| e["type"] == kind);
    let found = matching.next().unwrap_or_else(|| panic!("a {kind} among {events:?}"));
    assert!(matching.next().is_none(), "one {kind} among {events:?}");
    found
}

/// Asserts that nothing but read-marker frames arrives for `wait`.
async fn expect_no_event(ws: &mut WsClient, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_frame(left).await {
            Ok(None) => return,
            Ok(Some(frame)) if is_marker(&frame) => continue,
            Ok(Some(frame)) => panic!("expected no event, got {frame}"),
            Err(ended) => panic!("connection ended: {ended:?}"),
        }
    }
}
