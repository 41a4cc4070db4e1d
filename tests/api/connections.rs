//! Nobody holds the server's connections: a client that never finishes its headers, or
//! leaves a keep-alive connection idle, is cut off after the header timeout; one address
//! holds at most its share of connections (WebSockets counted), the node at most its
//! total, and a process out of file descriptors refuses politely and recovers.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{PATIENCE, ServerProcess, each_store, eventually, spawn_app_with};

/// An answer read off a raw connection.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

/// Reads one HTTP response from `stream`: up to the end of its body, or until the server
/// closes. `None` if the server closed without answering.
async fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_string();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            if bytes.len() >= end + 4 + length {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                let body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).to_string();
                return Some(Answer { status, headers: head.to_ascii_lowercase(), body });
            }
        }
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await;
        match read.expect("the server answers or closes in time") {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A new connection that has asked for /healthz; it stays open if the server keeps it.
async fn ask_health(address: SocketAddr) -> (TcpStream, Option<Answer>) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let answer = read_answer(&mut stream).await;
    (stream, answer)
}

/// Waits until the server closes `stream` (reads return nothing), at most `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[each_store]
async fn a_client_that_never_finishes_its_headers_is_cut_off_while_others_are_served() {
    let app = spawn_app_with(|settings| settings.header_timeout = Duration::from_secs(1)).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
        slow.push(stream);
    }
    let (_, answer) = ask_health(app.address).await;
    assert_eq!(answer.expect("an answer").status, 200, "others are served meanwhile");
    for stream in &mut slow {
        assert!(
            closed_within(stream, PATIENCE).await,
            "a connection that never finished its headers was closed"
        );
    }
}

#[each_store]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(|settings| settings.header_timeout = Duration::from_secs(1)).await;
    let (mut stream, answer) = ask_health(app.address).await;
    assert_eq!(answer.expect("an answer").status, 200);
    // Another request at once still goes through on the same connection.
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    assert_eq!(read_answer(&mut stream).await.expect("a second answer").status, 200);
    assert!(closed_within(&mut stream, PATIENCE).await, "the idle connection was closed");
}

#[each_store]
async fn one_address_holds_its_share_of_connections_websockets_counted() {
    let app = spawn_app_with(|settings| settings.connection_limits.per_address = 6).await;
    let user = app.register("alice").await;
    // The test's own HTTP client may hold a connection or two: open until refused.
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() <= 6, "more than 6 connections from one address were let in");
        let (stream, answer) = ask_health(app.address).await;
        let answer = answer.expect("an answer");
        if answer.status != 200 {
            break answer;
        }
        held.push(stream);
    };
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains("retry-after: "), "{}", refused.headers);
    let body: Value = serde_json::from_str(&refused.body).expect("a JSON error");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    // WebSockets hold places too: with two freed, two sockets take them.
    held.truncate(held.len() - 2);
    let _first = eventually("a WebSocket gets a freed place", || app.try_connect(&user)).await;
    let _second =
        eventually("another WebSocket gets a freed place", || app.try_connect(&user)).await;
    let (_, answer) = ask_health(app.address).await;
    assert_eq!(answer.expect("an answer").status, 429, "the sockets hold the places");

    held.clear();
    eventually("closed connections give their places back", || async {
        let (_, answer) = ask_health(app.address).await;
        (answer?.status == 200).then_some(())
    })
    .await;
}

#[each_store]
async fn a_full_node_says_so_to_the_balancer_and_refuses_more() {
    let app = spawn_app_with(|settings| {
        settings.connection_limits.total = Some(20);
        settings.connection_limits.per_address = 1000;
    })
    .await;
    let readyz = |address| async move {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
        read_answer(&mut stream).await
    };
    let mut held = Vec::new();
    let answer = loop {
        assert!(held.len() <= 20, "more than 20 connections were let in");
        let answer = readyz(app.address).await.expect("an answer");
        if answer.status != 200 {
            break answer;
        }
        held.push(ask_health(app.address).await.0);
    };
    // Readiness turns before the door closes, so the balancer can still ask.
    assert_eq!(answer.status, 503, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["full"], "connections", "{body}");
    let mut refused = None;
    for _ in 0..25 {
        let (stream, answer) = ask_health(app.address).await;
        match answer {
            Some(answer) if answer.status == 200 => held.push(stream),
            other => {
                refused = other;
                break;
            }
        }
    }
    let refused = refused.expect("a connection beyond the total is answered");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains("retry-after: "), "{}", refused.headers);

    held.clear();
    eventually("the node is ready again", || async {
        (readyz(app.address).await?.status == 200).then_some(())
    })
    .await;
}

/// A process that runs out of file descriptors (its limit lowered under it) refuses the
/// connections it cannot hold with 503 instead of leaving them to hang, logs it once, and
/// serves again as soon as descriptors are free.
#[each_store]
async fn running_out_of_file_descriptors_refuses_politely_and_recovers() {
    if std::process::Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("\n*** prlimit (util-linux) is missing: skipping the descriptor test ***\n");
        assert!(std::env::var_os("CI").is_none(), "CI must run every test");
        return;
    }
    let server = ServerProcess::start(|command| {
        command.args(["--max-connections", "100000", "--max-connections-per-address", "100000"]);
    })
    .await;
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit runs");
    assert!(lowered.success(), "prlimit lowered the limit");

    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..120 {
        let (stream, answer) = ask_health(server.address).await;
        match answer.map(|answer| answer.status) {
            Some(200) => held.push(stream),
            Some(503) => refused += 1,
            other => panic!("a connection beyond the descriptors got {other:?}"),
        }
    }
    assert!(refused > 0, "the process ran out and refused ({} held)", held.len());
    held.clear();
    let http = reqwest::Client::new();
    eventually("the node serves again", || async {
        let response = http.get(format!("http://{}/healthz", server.address)).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    let warnings = server
        .stdout_lines()
        .into_iter()
        .chain(server.stderr_lines())
        .filter(|line| line.contains("out of file descriptors"))
        .count();
    assert_eq!(warnings, 1, "the exhaustion is logged once");
}
