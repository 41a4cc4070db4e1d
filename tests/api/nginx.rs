//! Two nodes behind a real nginx running the configuration docs/deploy.md documents
//! (`deploy/nginx/`, started by `support/nginx.rs`), chatting over HTTP and WebSocket
//! across both nodes. (Two browsers doing the same: `browser/cluster.rs`.)

use serde_json::json;

use crate::support::nginx::{self, Nginx};
use crate::support::{TestApp, spawn_cluster};

#[tokio::test]
async fn two_nodes_behind_nginx_chat_over_http_and_websocket() {
    if !nginx::available() {
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
pub async fn counts(nodes: &[TestApp]) -> Vec<u64> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(node.connection_count().await);
    }
    counts
}

pub async fn wait_for_counts(nodes: &[TestApp], expected: &[u64]) {
    crate::support::eventually("a closed connection is gone", || async {
        (counts(nodes).await == expected).then_some(())
    })
    .await;
}
