//! Two nodes behind a real nginx running the configuration docs/deploy.md documents
//! (`deploy/nginx/`), chatting over HTTP and WebSocket across both nodes.
//!
//! nginx is Debian's (`nginx-light` or `nginx`), started by the test on a free loopback
//! port in a temporary directory; without it the test says so loudly and passes without
//! running, except under `CI`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{PATIENCE, TestApp, free_loopback_address, spawn_cluster};

fn nginx_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter().map(|dir| dir.join("nginx")).find(|path| path.is_file())
}

fn available() -> bool {
    if nginx_binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the nginx test, but nginx is not installed: install Debian's nginx-light \
         package (.ci/run does)"
    );
    let _ = std::io::stderr().write_all(
        b"\n!!!!!!!!!!\n!!! NGINX TEST SKIPPED: nginx is not installed (Debian's nginx-light).\n!!!!!!!!!!\n",
    );
    false
}

/// nginx in front of `nodes`, until dropped (or the test process dies: it runs under a
/// `sh` that kills it when its stdin closes).
struct Nginx {
    _dir: tempfile::TempDir,
    guardian: Child,
    address: std::net::SocketAddr,
}

impl Nginx {
    async fn start(nodes: &[&TestApp]) -> Nginx {
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx");
        let address = free_loopback_address();
        let servers: String =
            nodes.iter().map(|node| format!("        server {};\n", node.address)).collect();
        let root = dir.path().display();
        let config = format!(
            "pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    include {deploy}/confab-http.conf;
    upstream confab {{
{servers}        keepalive 32;
    }}
    server {{
        listen {address};
        include {deploy}/confab-proxy.conf;
    }}
}}
"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let nginx = nginx_binary().expect("nginx is installed");
        let script = "\"$1\" -p \"$2\" -c \"$3\" -g 'daemon off;' & pid=$!; cat >/dev/null; kill $pid; wait $pid";
        let guardian = Command::new("sh")
            .args(["-c", script, "confab-nginx-guardian"])
            .arg(&nginx)
            .arg(dir.path())
            .arg(&config_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { _dir: dir, guardian, address };
        let http = reqwest::Client::new();
        let url = format!("http://{address}/healthz");
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status() == StatusCode::OK
            {
                return nginx;
            }
            assert!(tokio::time::Instant::now() < deadline, "nginx did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        drop(self.guardian.stdin.take());
        let _ = self.guardian.wait();
    }
}

#[tokio::test]
async fn two_nodes_behind_nginx_chat_over_http_and_websocket() {
    if !available() {
        return;
    }
    let Some(cluster) = spawn_cluster(2).await else { return };
    let nodes: Vec<&TestApp> = cluster.nodes.iter().collect();
    let nginx = Nginx::start(&nodes).await;
    let front = TestApp::external(nginx.address);

    let alice = front.register("alice").await;
    let bob = front.register("bob").await;
    let room = front.create_room(&alice, "front", "private", &[&bob]).await;
    // No stickiness: round robin puts connections on both nodes. Open Bob's until one is
    // on a node Alice's is not on.
    let mut alice_ws = front.connect(&alice).await;
    let alice_node = counts(&cluster.nodes).await;
    let mut bob_ws = None;
    for _ in 0..10 {
        let ws = front.connect(&bob).await;
        let now = counts(&cluster.nodes).await;
        if now.iter().zip(&alice_node).any(|(now, before)| *now > 0 && *before == 0) {
            bob_ws = Some(ws);
            break;
        }
        drop(ws);
        wait_for_counts(&cluster.nodes, &alice_node).await;
    }
    let mut bob_ws = bob_ws.expect("nginx spreads connections over both nodes");

    // Each sends through nginx; each hears the other, across the nodes.
    let from_alice = front.send(&alice, &room, "hello through nginx").await;
    let got = bob_ws.recv_type("message.created").await;
    assert_eq!(got["message"]["id"], from_alice["id"]);
    bob_ws
        .send_json(
            json!({ "type": "send", "room_id": room, "body": "and back", "client_id": "b1" }),
        )
        .await;
    let own = alice_ws.recv_type("message.created").await;
    assert_eq!(own["message"]["body"], "hello through nginx", "her own, first");
    let got = alice_ws.recv_type("message.created").await;
    assert_eq!(got["message"]["body"], "and back");
    let history = front.whole_history(&alice, &room).await;
    assert_eq!(history.len(), 2);
}

/// Each node's WebSocket connections.
async fn counts(nodes: &[TestApp]) -> Vec<u64> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(node.connection_count().await);
    }
    counts
}

async fn wait_for_counts(nodes: &[TestApp], expected: &[u64]) {
    crate::support::eventually("a closed connection is gone", || async {
        (counts(nodes).await == expected).then_some(())
    })
    .await;
}
