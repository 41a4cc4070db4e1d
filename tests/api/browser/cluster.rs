//! Two people in two browsers on two nodes behind nginx, as a deployment of several nodes
//! runs (docs/deploy.md): everything they do reaches the other across the nodes.

use super::chat::DESKTOP;
use super::driver;
use crate::nginx::counts;
use crate::support::eventually;
use crate::support::nginx::{self, Nginx};
use crate::support::{TestApp, free_loopback_address, spawn_cluster_behind};

#[tokio::test]
async fn two_browsers_on_two_nodes_behind_nginx_chat_live() {
    let Some(mut driver) = driver().await else { return };
    if !nginx::available() {
        return;
    }
    let address = free_loopback_address();
    let Some(cluster) = spawn_cluster_behind(2, &format!("http://{address}")).await else {
        return;
    };
    let nodes: Vec<&TestApp> = cluster.nodes.iter().collect();
    let _nginx = Nginx::start_on(address, &nodes).await;
    let front = TestApp::external(address);
    let alice = front.register_displayed("alice", "Alice").await;
    let bob = front.register_displayed("bob", "Bob").await;
    let room = front.open_dm(&alice, &bob).await;

    let alice_page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    alice_page.sign_in(&front, &alice).await;
    // Round robin, no stickiness: Bob's page reloads until its socket is on the other node.
    let bob_page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    bob_page.sign_in(&front, &bob).await;
    for _ in 0..10 {
        if settled(&cluster.nodes).await == [1, 1] {
            break;
        }
        // A page load makes the same number of requests each time: with an even number,
        // round robin would put its socket on the same node every time. One request of
        // our own in between shifts which node the next load's socket lands on.
        let health = format!("http://{address}/healthz");
        front.http.get(health).send().await.expect("nginx answers");
        bob_page.open(&front).await;
        bob_page.find(".sidebar .connection[data-state=connected]").await;
    }
    let spread = settled(&cluster.nodes).await;
    assert_eq!(spread, vec![1, 1], "one browser on each node");

    alice_page.open_room(&room).await;
    alice_page.say("Hello from the first node").await;
    bob_page.open_room(&room).await;
    bob_page.shows_message("Hello from the first node").await;
    bob_page.say("And back from the second").await;
    alice_page.shows_message("And back from the second").await;
    bob_page.screenshot("two-nodes-behind-nginx").await;
}

/// Each node's connections, once the two pages hold two between them (a page that
/// reloaded closes its old socket a moment after opening its new one).
async fn settled(nodes: &[TestApp]) -> Vec<u64> {
    eventually("two connections in all", || async {
        let now = counts(nodes).await;
        (now.iter().sum::<u64>() == 2).then_some(now)
    })
    .await
}
