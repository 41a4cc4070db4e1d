//! Files: uploading and downloading every kind the server recognises, byte ranges, the size
//! limit, pictures (dimensions, thumbnails, location data removed), files attached to
//! messages and who may fetch them, files removed with their message or when never sent,
//! and profiles (bio, square avatars, announced live).
//!
//! Multipart bodies are built here by hand, so that a test controls exactly the file name
//! and the Content-Type a client claims. The helpers here are shared by the submodules.

mod access;
mod attachments;
mod cleanup;
mod fixtures;
mod limits;
mod pictures;
mod profiles;
mod types;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, described};

/// How long a test listens to be sure that something does not arrive.
const QUIET: Duration = Duration::from_millis(300);

/// A response read in full: status, headers and the raw body.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    /// Sends `request` (its answer checked against the description) and reads the answer.
    async fn send(request: reqwest::RequestBuilder) -> Self {
        let answer = described::send(request).await;
        Self { status: answer.status, headers: answer.headers, bytes: answer.bytes }
    }

    /// The body as JSON; a string holding the text when it is not JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.bytes).into_owned()))
    }

    /// A header as text, or "" when absent.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header")).unwrap_or("")
    }
}

/// The `error.code` of an error body.
fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// A string field of a JSON object.
fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("no string {field} in {value}"))
}

const BOUNDARY: &str = "confab-test-boundary-7d1f";

/// A multipart/form-data body with one part, `field`, holding a file: its Content-Type
/// header and its bytes.
pub(crate) fn multipart(
    field: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Sends a file in a multipart field named `file` to `path` (under /api/v1).
async fn send_file(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Reply {
    let (header, body) = multipart("file", file_name, content_type, bytes);
    let request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(&user.token)
        .header("content-type", header)
        .body(body);
    Reply::send(request).await
}

/// `POST /media` with the file as a client claims it: a name and a Content-Type.
pub(crate) async fn upload_claimed(
    app: &TestApp,
    user: &TestUser,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Reply {
    send_file(app, user, Method::POST, "/media", file_name, content_type, bytes).await
}

/// Uploads a file (as application/octet-stream) and returns the 201 body.
async fn upload(app: &TestApp, user: &TestUser, file_name: &str, bytes: &[u8]) -> Value {
    let reply = upload_claimed(app, user, file_name, "application/octet-stream", bytes).await;
    assert_eq!(reply.status, StatusCode::CREATED, "upload {file_name}: {}", reply.json());
    reply.json()
}

/// GET on a URL the server handed out (`/api/v1/...`), as `user`, with extra headers.
async fn fetch_with(app: &TestApp, user: &TestUser, url: &str, headers: &[(&str, &str)]) -> Reply {
    assert!(url.starts_with("/api/v1/"), "a server URL: {url}");
    let mut request = app.http.get(format!("http://{}{url}", app.address)).bearer_auth(&user.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::send(request).await
}

async fn fetch(app: &TestApp, user: &TestUser, url: &str) -> Reply {
    fetch_with(app, user, url, &[]).await
}

/// The status of fetching a URL the server handed out.
async fn fetch_status(app: &TestApp, user: &TestUser, url: &str) -> StatusCode {
    fetch(app, user, url).await.status
}

/// Sends a message with files over HTTP; returns the status and body.
async fn send_with_files(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    body: &str,
    attachments: &[&str],
) -> (StatusCode, Value) {
    app.post(
        user,
        &format!("/rooms/{room}/messages"),
        json!({ "body": body, "attachments": attachments }),
    )
    .await
}

/// A room's history as `user` reads it.
async fn history(app: &TestApp, user: &TestUser, room: &str) -> Vec<Value> {
    let (status, body) = app.get(user, &format!("/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "history: {body}");
    body["messages"].as_array().expect("messages").clone()
}

/// Every file under the server's media directory (staging included) whose name starts with
/// `prefix`; all of them for "".
fn stored_files(app: &TestApp, prefix: &str) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, prefix: &str, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, prefix, found);
            } else if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&app.data_path().join("media"), prefix, &mut found);
    found
}

/// Uploads a recording with the length its client measured (`?duration_ms=`) and returns
/// the 201 body.
async fn upload_recording(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    bytes: &[u8],
    duration_ms: u64,
) -> Value {
    let path = format!("/media?duration_ms={duration_ms}");
    let reply =
        send_file(app, user, Method::POST, &path, name, "application/octet-stream", bytes).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.json());
    reply.json()
}
