//! The API against its own description: what `/api/v1/openapi.json` serves, and
//! Schemathesis exploring every endpoint from it against a real server. (Every answer the
//! other tests see is checked against the description by `support::described`.)
//!
//! Schemathesis is a Python program (`.ci/run` installs the version below into
//! `/opt/schemathesis`); without it the test says so loudly and skips, except under `CI`.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{each_store, spawn_app};

/// The version `.ci/run` installs; the run's options below are this version's.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// How many examples Schemathesis tries per endpoint and phase: enough to reach each
/// endpoint's answers, few enough that a run takes a minute or so on two cores.
const MAX_EXAMPLES: &str = "12";

/// What each answer is checked for: no 5xx, and status, Content-Type, body and headers
/// as the description says; methods the description does not list are refused.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,unsupported_method";

fn schemathesis() -> Option<PathBuf> {
    let installed = std::env::var_os("CONFAB_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/schemathesis/bin/st"));
    if installed.is_file() {
        return Some(installed);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run Schemathesis, but {} is missing: `python3 -m venv /opt/schemathesis && \
         /opt/schemathesis/bin/pip install schemathesis=={SCHEMATHESIS_VERSION}` (.ci/run does)",
        installed.display()
    );
    let _ = std::io::stderr().write_all(
        format!(
            "\n!!!!!!!!!!\n!!! SCHEMATHESIS TEST SKIPPED: {} is missing. Install it with\n!!! \
             python3 -m venv /opt/schemathesis && /opt/schemathesis/bin/pip install \
             schemathesis=={SCHEMATHESIS_VERSION}\n!!!!!!!!!!\n",
            installed.display()
        )
        .as_bytes(),
    );
    None
}

#[each_store]
async fn the_description_is_served_as_openapi_3_1_with_every_route() {
    let app = spawn_app().await;
    let url = format!("http://{}/api/v1/openapi.json", app.address);
    let response = app.http.get(url).send().await.expect("openapi.json");
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, confab::http::description(), "served as the code makes it");
    assert!(
        served["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        served["openapi"]
    );
    for (path, methods) in [
        ("/api/v1/auth/register", &["post"][..]),
        ("/api/v1/rooms/{room_id}/messages", &["get", "post"]),
        ("/api/v1/media", &["post"]),
        ("/api/v1/ws", &["get"]),
        ("/healthz", &["get"]),
    ] {
        for method in methods {
            assert!(served["paths"][path][method].is_object(), "{method} {path} is described");
        }
    }
    let url = format!("http://{}/api/v1/ws-schema.json", app.address);
    let frames: Value = app.http.get(url).send().await.expect("ws").json().await.expect("JSON");
    assert!(frames["$defs"]["ServerFrame"]["oneOf"].is_array(), "{frames}");
    assert!(frames["$defs"]["ClientFrame"]["oneOf"].is_array(), "{frames}");
}

#[each_store]
async fn schemathesis_finds_no_answer_the_description_does_not_allow() {
    let Some(schemathesis) = schemathesis() else { return };
    let app = spawn_app().await;
    let user = app.register("fuzzer").await;
    // Something for the endpoints that take ids to find.
    let other = app.register("fuzzed").await;
    let room = app.create_room(&user, "fuzzing", "public", &[&other]).await;
    app.send(&user, &room, "hello").await;
    let reports = tempfile::tempdir().expect("a report directory");
    let har = reports.path().join("requests.har");
    let schema = format!("http://{}/api/v1/openapi.json", app.address);
    let base = format!("http://{}", app.address);
    let mut command = tokio::process::Command::new(&schemathesis);
    command
        .args(["run", &schema, "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {}", user.token)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--workers", "2", "--seed", "15", "--no-color"])
        // Logging out would end the session every other request uses.
        .args(["--exclude-path", "/api/v1/auth/logout"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(reports.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = command.output().await.expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let requests = std::fs::read_to_string(&har)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|har| har["log"]["entries"].as_array().map(Vec::len))
        .unwrap_or(0);
    println!("Schemathesis {SCHEMATHESIS_VERSION} sent {requests} requests.");
    assert!(
        output.status.success(),
        "Schemathesis found answers the description does not allow ({requests} requests):\n\
         {stdout}\n{stderr}"
    );
    assert!(requests > 100, "Schemathesis tried only {requests} requests:\n{stdout}\n{stderr}");
}
