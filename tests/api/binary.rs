//! The `confab` binary as an operator meets it: its help, its defaults, its logs, how it
//! stops, and that its data outlives it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{PATIENCE, ServerProcess, TestApp, each_store, eventually};

/// How long a clean shutdown may take after SIGTERM.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn help_lists_every_environment_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("--help")
        .output()
        .expect("run confab --help");
    assert!(output.status.success(), "--help exits 0: {}", output.status);
    let help = String::from_utf8(output.stdout).expect("help is UTF-8");
    for variable in [
        "CONFAB_ADDR",
        "CONFAB_DATA_DIR",
        "CONFAB_PUBLIC_URL",
        "CONFAB_LOG",
        "CONFAB_LOG_FORMAT",
        "CONFAB_METRICS_ADDR",
    ] {
        assert!(help.contains(&format!("{variable}=")), "--help names {variable}:\n{help}");
    }
}

// SQLite only, like the next test: where `confab.db` lands is the embedded database's
// concern; on PostgreSQL the data directory holds only uploads.
#[tokio::test]
async fn without_a_data_dir_it_keeps_its_database_in_confab_data_under_the_working_directory() {
    let working_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(|command| {
        command.current_dir(working_dir.path());
    })
    .await;

    let health = get_json(&format!("http://{}/healthz", server.address)).await;
    assert_eq!(health["status"], "ok", "{health}");
    let database = working_dir.path().join("confab-data").join("confab.db");
    assert!(database.is_file(), "{} exists", database.display());
}

// SQLite only: `confab.db` in CONFAB_DATA_DIR. The JSON log format is also covered on both
// stores by the next test.
#[tokio::test]
async fn environment_variables_configure_the_data_dir_and_log_format() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let working_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(|command| {
        command
            .current_dir(working_dir.path())
            .env("CONFAB_DATA_DIR", data_dir.path())
            .env("CONFAB_LOG_FORMAT", "json");
    })
    .await;

    assert!(data_dir.path().join("confab.db").is_file(), "the database is in CONFAB_DATA_DIR");
    assert!(!working_dir.path().join("confab-data").exists(), "not in the default place");
    let listening = eventually("a JSON log line", || async {
        server.stdout_lines().first().map(|line| serde_json::from_str::<Value>(line))
    })
    .await;
    assert!(listening.is_ok(), "log lines are JSON: {:?}", server.stdout_lines());
}

#[each_store]
async fn json_logs_have_one_line_per_request_with_method_path_status_and_duration() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(|command| {
        command.arg("--data-dir").arg(data_dir.path()).args(["--log-format", "json"]);
    })
    .await;
    let app = TestApp::external(server.address);

    let requests = [
        (
            reqwest::Method::POST,
            "/auth/register",
            Some(json!({"username": "alice", "password": "password-alice"})),
            201,
        ),
        (reqwest::Method::GET, "/me", None, 401),
        (reqwest::Method::GET, "/no/such/route", None, 404),
    ];
    for (method, path, body, status) in requests.clone() {
        let (got, response) = app.call(method, path, None, body).await;
        assert_eq!(got.as_u16(), status, "{path}: {response}");
    }

    for (method, path, _, status) in requests {
        let path = format!("/api/v1{path}");
        let lines = eventually(&format!("a request log line for {path}"), || async {
            let lines: Vec<Value> =
                request_lines(&server).into_iter().filter(|l| field(l, "path") == path).collect();
            (!lines.is_empty()).then_some(lines)
        })
        .await;
        assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
        let line = &lines[0];
        assert_eq!(field(line, "method"), method.as_str(), "{line}");
        assert_eq!(field(line, "status"), status, "{line}");
        assert!(field(line, "duration_ms").is_number(), "a duration: {line}");
    }
    for line in server.stdout_lines() {
        let parsed: Result<Value, _> = serde_json::from_str(&line);
        assert!(parsed.is_ok_and(|v| v.is_object()), "every line is a JSON object: {line}");
    }
}

#[each_store]
async fn sigterm_closes_websockets_and_exits_cleanly_within_seconds() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start(|command| {
        command.arg("--data-dir").arg(data_dir.path());
    })
    .await;
    let app = TestApp::external(server.address);
    let alice = app.register("alice").await;
    let mut connection = app.connect(&alice).await;

    let (status, took) = server.terminate().await;

    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(took < SHUTDOWN_LIMIT, "exited {took:?} after SIGTERM");
    assert_eq!(connection.expect_close().await, Some(1012), "websockets are told: reconnect now");
}

#[each_store]
async fn data_survives_a_restart() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let start = || {
        ServerProcess::start(|command| {
            command.arg("--data-dir").arg(data_dir.path());
        })
    };
    let mut first = start().await;
    let app = TestApp::external(first.address);
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "Archive", "private", &[]).await;
    let message = app.send(&alice, &room, "still here after a restart").await;
    let (status, _) = first.terminate().await;
    assert!(status.success(), "first run exits cleanly: {status}");

    let second = start().await;
    let app = TestApp::external(second.address);
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "alice", "password": "password-alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "log in after restart: {body}");
    assert_eq!(body["user"]["id"], alice.id.as_str());
    let (status, history) = app.get(&alice, &format!("/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "the old session still works: {history}");
    assert_eq!(history["messages"][0]["id"], message["id"], "{history}");
    assert_eq!(history["messages"][0]["body"], "still here after a restart");
}

/// The request lines the server has logged so far, parsed.
fn request_lines(server: &ServerProcess) -> Vec<Value> {
    server
        .stdout_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect()
}

/// A field of a JSON log line, from the event or, failing that, from its span.
fn field(line: &Value, name: &str) -> Value {
    match &line[name] {
        Value::Null => line["span"][name].clone(),
        value => value.clone(),
    }
}

async fn get_json(url: &str) -> Value {
    let response = tokio::time::timeout(PATIENCE, reqwest::get(url))
        .await
        .expect("answered in time")
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.expect("JSON body")
}
