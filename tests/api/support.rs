//! The test harness: a real server on a random loopback port with a fresh data directory
//! (and, on PostgreSQL, a fresh database), and typed helpers for its HTTP API and WebSocket.
//! `#[each_store]` runs a test once per store (`store.rs`); `postgres.rs` starts the
//! PostgreSQL clusters; `oidc.rs` is an OpenID Connect identity provider.

pub mod described;
pub mod nginx;
pub mod oidc;
pub mod postgres;
pub mod redis;
pub mod store;

pub use confab_test_macros::each_store;
pub use store::{Store, fresh_database, on_store};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use confab::config::{Database, Settings};
use confab::limits::LimitSettings;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Logs of the servers under test, when `CONFAB_TEST_LOG` is set (e.g. to `debug`).
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("CONFAB_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

pub struct TestApp {
    pub address: SocketAddr,
    pub origin: String,
    pub http: reqwest::Client,
    data_dir: Option<TempDir>,
    /// The database the server runs on; `None` for a server the harness did not start.
    database: Option<Database>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

/// A server with default settings, but no rate limits.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server as shipped: default settings and limits.
pub async fn spawn_app_as_shipped() -> TestApp {
    spawn_app_with(|settings| settings.limits = LimitSettings::default()).await
}

/// A server whose settings `configure` may change first. Its database is the test's store
/// (a fresh one on PostgreSQL), already in `settings.database`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = store::fresh_database().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    start(listener, data_dir, database, configure).await
}

async fn start(
    listener: TcpListener,
    data_dir: TempDir,
    database: Database,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logging();
    let address = listener.local_addr().expect("local addr");
    let origin = format!("http://{address}");
    let mut settings = Settings::with_defaults(data_dir.path().to_path_buf(), &origin);
    settings.database = database;
    // Tests of other things send faster than people do; the limits' own tests, and the
    // browser's, which use the client as people do, run with the limits as shipped.
    settings.limits = LimitSettings::off();
    configure(&mut settings);
    let database = Some(settings.database.clone());
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    let server = tokio::spawn(async move {
        confab::server::run(listener, settings, signal).await.expect("server runs");
    });
    let http = reqwest::Client::builder().build().expect("client");
    TestApp {
        address,
        origin,
        http,
        data_dir: Some(data_dir),
        database,
        shutdown,
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{path}", self.address)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/ws", self.address)
    }

    /// Stops the server (as Ctrl-C would) and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server).await.expect("server stops").expect("no panic");
        }
    }

    /// Stops the server and starts a new one on the same port, data directory and
    /// database.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let listener = TcpListener::bind(self.address).await.expect("rebind the same port");
        let data_dir = self.data_dir.take().expect("a running app has its data dir");
        let database = self.database.take().expect("a running app has its database");
        start(listener, data_dir, database, |_| {}).await
    }

    /// How many WebSocket connections the server holds, as `/healthz` reports.
    pub async fn connection_count(&self) -> u64 {
        let url = format!("http://{}/healthz", self.address);
        let health: Value =
            self.http.get(url).send().await.expect("healthz").json().await.expect("json");
        health["connections"].as_u64().expect("connections")
    }

    /// Registers a user whose password is `password-<username>`.
    pub async fn register(&self, username: &str) -> TestUser {
        self.register_with(json!({ "username": username })).await
    }

    /// Registers a user from a body holding at least the username; the password is added.
    async fn register_with(&self, mut body: Value) -> TestUser {
        let username = body["username"].as_str().expect("a username").to_owned();
        body["password"] = json!(format!("password-{username}"));
        let (status, body) =
            self.call(reqwest::Method::POST, "/auth/register", None, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "register {username}: {body}");
        TestUser {
            id: body["user"]["id"].as_str().expect("user id").to_owned(),
            username,
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    /// Any API call: method, path under /api/v1, optional bearer user, optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = described::send(request).await;
        (answer.status, answer.json())
    }

    pub async fn get(&self, user: &TestUser, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, user: &TestUser, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(user), Some(body)).await
    }

    pub async fn delete(&self, user: &TestUser, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, Some(user), None).await
    }

    /// Creates a room owned by `owner` with `members`, and returns its id.
    pub async fn create_room(
        &self,
        owner: &TestUser,
        name: &str,
        kind: &str,
        members: &[&TestUser],
    ) -> String {
        let member_ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let (status, body) = self
            .post(owner, "/rooms", json!({ "name": name, "kind": kind, "member_ids": member_ids }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create room: {body}");
        body["id"].as_str().expect("room id").to_owned()
    }

    /// Opens (or finds) the DM between two users and returns its id.
    pub async fn open_dm(&self, user: &TestUser, other: &TestUser) -> String {
        let (status, body) = self.post(user, &format!("/dm/{}", other.id), json!({})).await;
        assert!(status.is_success(), "open dm: {status} {body}");
        body["id"].as_str().expect("room id").to_owned()
    }

    /// Sends a message over HTTP and returns it.
    pub async fn send(&self, user: &TestUser, room: &str, body: &str) -> Value {
        let (status, message) =
            self.post(user, &format!("/rooms/{room}/messages"), json!({ "body": body })).await;
        assert_eq!(status, StatusCode::CREATED, "send: {message}");
        message
    }

    /// Opens a WebSocket as `user` (bearer token, no Origin, like a native client) and
    /// reads its `ready` frame.
    pub async fn connect(&self, user: &TestUser) -> WsClient {
        let mut request = self.ws_url().into_client_request().expect("ws request");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", user.token)).expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("ws connect");
        WsClient::start(stream).await
    }

    /// [`TestApp::connect`], or `None` if the server refuses the handshake.
    pub async fn try_connect(&self, user: &TestUser) -> Option<WsClient> {
        let mut request = self.ws_url().into_client_request().expect("ws request");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", user.token)).expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(WsClient::start(stream).await)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub token: String,
}

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ready` frame this connection started with.
    pub ready: Value,
    /// Frame types this client skips: presence and membership news come and go around
    /// every test, so only the tests about them see them (after
    /// [`WsClient::with_presence`], [`WsClient::with_presence_snapshots`] and
    /// [`WsClient::with_member_news`]).
    ignored: Vec<&'static str>,
}

/// The frame types a client skips unless a test asks for them.
const SKIPPED: [&str; 4] = ["presence", "presence.snapshot", "member.joined", "member.left"];

/// What came instead of a text frame.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<CloseFrame>),
    Eof,
    // Read through `Debug` when a test fails on it.
    #[allow(dead_code)]
    Error(String),
}

impl WsClient {
    /// A client on an upgraded stream, once it has read its `ready` frame.
    pub async fn start(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let mut client = WsClient { stream, ready: Value::Null, ignored: SKIPPED.to_vec() };
        let ready = client.recv().await;
        assert_eq!(ready["type"], "ready", "first frame is ready: {ready}");
        client.ready = ready;
        client
    }

    /// A client on a stream whose `ready` frame was read already.
    pub fn from_ready(stream: WebSocketStream<MaybeTlsStream<TcpStream>>, ready: Value) -> Self {
        WsClient { stream, ready, ignored: SKIPPED.to_vec() }
    }

    /// This client also returns `member.joined` and `member.left` frames.
    pub fn with_member_news(mut self) -> Self {
        self.ignored.retain(|kind| !kind.starts_with("member."));
        self
    }

    /// This client also returns `presence` frames (but not snapshots).
    pub fn with_presence(mut self) -> Self {
        self.ignored.retain(|kind| *kind != "presence");
        self
    }

    /// This client also returns `presence.snapshot` frames.
    pub fn with_presence_snapshots(mut self) -> Self {
        self.ignored.retain(|kind| *kind != "presence.snapshot");
        self
    }

    /// The `last_seq` that `ready` reported for a room.
    pub fn ready_seq(&self, room: &str) -> i64 {
        self.ready["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .find(|r| r["room_id"] == room)
            .map(|r| r["last_seq"].as_i64().expect("seq"))
            .unwrap_or_else(|| panic!("room {room} not in ready: {}", self.ready))
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("ws send");
    }

    /// The next text frame as JSON; fails the test if none comes in time.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(PATIENCE).await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("no frame within {PATIENCE:?}"),
            Err(ended) => panic!("connection ended: {ended:?}"),
        }
    }

    /// The next text frame of the given type, skipping others (heartbeat-free tests only
    /// use this where other frame types are irrelevant).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next text frame within `wait`, `Ok(None)` if none, `Err` if the connection ended.
    pub async fn next_frame(&mut self, wait: Duration) -> Result<Option<Value>, Ended> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(next) => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    described::check_frame(&frame);
                    let kind = frame["type"].as_str().unwrap_or_default();
                    if !self.ignored.contains(&kind) {
                        return Ok(Some(frame));
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(Ended::Closed(frame)),
                Some(Ok(_)) => continue, // pings and pongs
                Some(Err(error)) => return Err(Ended::Error(error.to_string())),
                None => return Err(Ended::Eof),
            }
        }
    }

    /// Asserts that no text frame arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(frame)) = self.next_frame(wait).await {
            panic!("expected no frame, got {frame}");
        }
    }

    /// Waits for the server to close the connection and returns its close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_frame(PATIENCE).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("connection not closed within {PATIENCE:?}"),
                Err(Ended::Closed(frame)) => return frame.map(|f| u16::from(f.code)),
                Err(_) => return None,
            }
        }
    }
}

/// Registers users with a display name of their own, and talks to servers this harness
/// did not start.
impl TestApp {
    /// Registers a user whose display name differs from their username; the password is
    /// `password-<username>`, as with [`TestApp::register`].
    pub async fn register_displayed(&self, username: &str, display_name: &str) -> TestUser {
        self.register_with(json!({ "username": username, "display_name": display_name })).await
    }

    /// Request helpers for a server at `address` that something else runs, such as a
    /// [`ServerProcess`]. `stop`, `restart` and `data_dir` have nothing to act on.
    pub fn external(address: SocketAddr) -> TestApp {
        TestApp {
            address,
            origin: format!("http://{address}"),
            http: reqwest::Client::builder().build().expect("client"),
            data_dir: None,
            database: None,
            shutdown: CancellationToken::new(),
            server: None,
        }
    }
}

/// Asks `probe` every few milliseconds until it answers `Some`, and returns that answer;
/// fails the test, naming `what`, if that takes longer than [`PATIENCE`]. For effects the
/// server applies in the background, where there is no event to wait for.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `confab` binary in a subprocess on a free loopback port, for what only the real
/// process shows: flags, logs, signals, memory. Killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: SocketAddr,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `confab --addr 127.0.0.1:<free port>` with no `CONFAB_*` variable inherited,
    /// after `configure` has added its flags, environment or working directory, and waits
    /// until `/healthz` answers 200. On PostgreSQL it adds `--database-url`, unless
    /// `configure` named a database: a fresh database, or the one of an earlier process
    /// over the same data directory (so that a restart finds its data, as on SQLite).
    pub async fn start(configure: impl FnOnce(&mut std::process::Command)) -> ServerProcess {
        let mut server = ServerProcess::spawn(configure).await;
        server.wait_until_healthy().await;
        server
    }

    /// Starts confab as [`ServerProcess::start`] does, without waiting for it to serve.
    pub async fn spawn(configure: impl FnOnce(&mut std::process::Command)) -> ServerProcess {
        let address = free_loopback_address();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_confab"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CONFAB_") {
                command.env_remove(name);
            }
        }
        // Without rate limits, as `spawn_app`; a flag from `configure` overrides these.
        command.env("CONFAB_LIMITS", "all=off").env("CONFAB_MAX_SOCKETS_PER_USER", "0");
        command
            .arg("--addr")
            .arg(address.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        configure(&mut command);
        if store::current() == Store::Postgres && !names_a_database(&command) {
            let url = store::postgres_for(&data_dir_of(&command)).await;
            command.arg("--database-url").arg(url);
        }
        let mut child = command.spawn().expect("spawn confab");
        let stdout = collect_lines(child.stdout.take().expect("piped stdout"));
        let stderr = collect_lines(child.stderr.take().expect("piped stderr"));
        ServerProcess { child, address, stdout, stderr }
    }

    /// Waits until `/healthz` answers 200; fails if the process exits first.
    pub async fn wait_until_healthy(&mut self) {
        let http = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.address);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!(
                    "confab exited with {status} before serving\nstdout: {:?}\nstderr: {:?}",
                    self.stdout_lines(),
                    self.stderr_lines()
                );
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "confab not healthy within {PATIENCE:?}\nstderr: {:?}",
                self.stderr_lines()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the process has written a line holding `text`, to stdout or stderr.
    pub async fn until_logged(&mut self, text: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let lines = [self.stdout_lines(), self.stderr_lines()].concat();
            if lines.iter().any(|line| line.contains(text)) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!("confab exited with {status} before logging {text:?}\n{lines:?}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "confab did not log {text:?} within {PATIENCE:?}\n{lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines the process has written to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The lines the process has written to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Sends SIGTERM (with `kill`, as the test has no libc) and waits, at most
    /// [`PATIENCE`], for the process to exit. Returns its exit status and how long it took.
    pub async fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed: {sent}", self.pid());
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "confab still running {PATIENCE:?} after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Already exited if a test terminated it; then these fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a `confab` command already says which database to use.
fn names_a_database(command: &std::process::Command) -> bool {
    command.get_args().any(|arg| arg.to_string_lossy().starts_with("--database-url"))
        || command.get_envs().any(|(name, value)| name == "CONFAB_DATABASE_URL" && value.is_some())
}

/// The absolute data directory a `confab` command will use: `--data-dir`, else
/// `CONFAB_DATA_DIR`, else `confab-data`, under its working directory if relative.
fn data_dir_of(command: &std::process::Command) -> std::path::PathBuf {
    let args: Vec<String> =
        command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect();
    let flag = args.iter().enumerate().find_map(|(at, arg)| match arg.strip_prefix("--data-dir") {
        Some("") => args.get(at + 1).cloned(),
        Some(value) => value.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    let variable = || {
        command.get_envs().find_map(|(name, value)| {
            (name == "CONFAB_DATA_DIR").then(|| value.map(|v| v.to_string_lossy().into_owned()))?
        })
    };
    let data_dir = flag.or_else(variable).unwrap_or_else(|| "confab-data".to_owned());
    let working_dir = command
        .get_current_dir()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().expect("a working directory"));
    working_dir.join(data_dir)
}

/// A loopback address with a port nobody listens on right now. Another process could take
/// the port before the server binds it; on loopback in a test run that is rare enough.
pub fn free_loopback_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// Reads a child's output line by line on a thread of its own, so the pipe never fills.
fn collect_lines(
    output: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(line);
        }
    });
    lines
}

/// The files of a server this harness started, for the few tests that must look past the
/// API (that a deleted message's body has left the database file, say).
impl TestApp {
    /// The server's data directory; the database is `confab.db` in it. Still there after
    /// [`TestApp::stop`], so a test can read the files the server left.
    pub fn data_path(&self) -> &std::path::Path {
        self.data_dir.as_ref().expect("a server this harness started has a data dir").path()
    }

    /// The database the server runs on: [`Database::Embedded`] (`confab.db` in
    /// [`TestApp::data_path`]) or [`Database::Postgres`] with its URL, for a connection of
    /// the test's own.
    pub fn database(&self) -> &Database {
        self.database.as_ref().expect("a server this harness started has a database")
    }
}

impl TestApp {
    /// Every message of a room, oldest first, read page by page.
    pub async fn whole_history(&self, user: &TestUser, room: &str) -> Vec<Value> {
        let mut messages: Vec<Value> = Vec::new();
        loop {
            let after = messages.last().map_or(0, |m| m["seq"].as_i64().expect("a seq"));
            let path = format!("/rooms/{room}/messages?after={after}&limit=200");
            let (status, page) = self.get(user, &path).await;
            assert_eq!(status, StatusCode::OK, "history: {page}");
            messages.extend(page["messages"].as_array().expect("messages").iter().cloned());
            if page["has_more"] != true {
                return messages;
            }
        }
    }
}

/// Servers that share one database, as the nodes behind a load balancer do.
impl TestApp {
    /// Another server on this one's database and data directory. Only PostgreSQL serves
    /// several servers at once.
    pub async fn sibling(&self) -> TestApp {
        assert!(
            matches!(self.database(), Database::Postgres(_)),
            "only PostgreSQL is shared by several servers"
        );
        let database = self.database().clone();
        let data_dir = self.data_path().to_path_buf();
        spawn_app_with(move |settings| {
            settings.database = database;
            settings.data_dir = data_dir;
        })
        .await
    }
}

/// The servers a test spreads its requests over: on PostgreSQL two on one database, as two
/// nodes; on SQLite the one server the database allows.
pub async fn spawn_nodes() -> Vec<TestApp> {
    let first = spawn_app().await;
    if matches!(first.database(), Database::Postgres(_)) {
        let second = first.sibling().await;
        vec![first, second]
    } else {
        vec![first]
    }
}

/// Nodes behind a load balancer: servers on one PostgreSQL database and one data
/// directory, joined by a Redis of the test's own. `None` where PostgreSQL or Redis is
/// missing (after a loud notice), except under `CI`, which must run them.
pub struct Cluster {
    pub nodes: Vec<TestApp>,
    pub redis: redis::Redis,
}

pub async fn spawn_cluster(count: usize) -> Option<Cluster> {
    if !postgres::available() || !redis::available() {
        return None;
    }
    let database = Database::Postgres(postgres::shared().await.create_database().await);
    Some(spawn_cluster_on(count, database, None).await)
}

/// [`spawn_cluster`] whose nodes browsers reach at `origin` (a proxy in front of them).
pub async fn spawn_cluster_behind(count: usize, origin: &str) -> Option<Cluster> {
    if !postgres::available() || !redis::available() {
        return None;
    }
    let database = Database::Postgres(postgres::shared().await.create_database().await);
    Some(spawn_cluster_on(count, database, Some(origin.to_owned())).await)
}

/// [`spawn_cluster`] on a database the test chose (on a private PostgreSQL cluster, to
/// restart it, say), reached at `origin` if given. The caller has checked that PostgreSQL
/// and Redis are available.
pub async fn spawn_cluster_on(count: usize, database: Database, origin: Option<String>) -> Cluster {
    spawn_cluster_configured(count, database, origin, |_| {}).await
}

/// [`spawn_cluster`] whose nodes' settings `configure` changes first.
pub async fn spawn_cluster_with(
    count: usize,
    configure: impl Fn(&mut Settings) + Clone + Send + 'static,
) -> Option<Cluster> {
    if !postgres::available() || !redis::available() {
        return None;
    }
    let database = Database::Postgres(postgres::shared().await.create_database().await);
    Some(spawn_cluster_configured(count, database, None, configure).await)
}

async fn spawn_cluster_configured(
    count: usize,
    database: Database,
    origin: Option<String>,
    configure: impl Fn(&mut Settings) + Clone + Send + 'static,
) -> Cluster {
    let redis = redis::Redis::start().await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let shared_dir = data_dir.path().to_path_buf();
    let mut nodes = Vec::new();
    let mut data_dir = Some(data_dir);
    for index in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        // The first node owns the temporary directory; the others use the same path.
        let dir = data_dir.take().unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let (url, shared) = (redis.node_url(index).await, shared_dir.clone());
        let (origin, configure) = (origin.clone(), configure.clone());
        let node = start(listener, dir, database.clone(), move |settings| {
            configure(settings);
            settings.redis_url = Some(url);
            settings.data_dir = shared;
            if let Some(origin) = origin {
                settings.public_origin = origin;
                settings.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a network")];
            }
        })
        .await;
        nodes.push(node);
    }
    for node in &nodes {
        node.wait_until_ready().await;
    }
    Cluster { nodes, redis }
}

impl TestApp {
    /// Waits until `/readyz` says 200 (the database answers; Redis carries events).
    pub async fn wait_until_ready(&self) {
        let url = format!("http://{}/readyz", self.address);
        eventually("the node is ready", || async {
            let response = self.http.get(&url).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        })
        .await
    }

    /// `/readyz`'s status and body.
    pub async fn readiness(&self) -> (StatusCode, Value) {
        let url = format!("http://{}/readyz", self.address);
        let response = self.http.get(url).send().await.expect("readyz");
        let status = response.status();
        (status, response.json().await.expect("json"))
    }
}

/// The database file and its write-ahead log, whichever exist, as bytes.
pub fn database_files(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["confab.db", "confab.db-wal"]
        .into_iter()
        .filter_map(|name| {
            let bytes = std::fs::read(data_dir.join(name)).ok()?;
            Some((name.to_owned(), bytes))
        })
        .collect()
}

/// The names of the files that hold `needle`.
pub fn files_holding(files: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    let needle = needle.as_bytes();
    files
        .iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(name, _)| name.clone())
        .collect()
}
