//! A room with a long history: the page holds a bounded window of it, and scrolling
//! through all of it, up and then down, shows every message once, in order.
//!
//! `big_room_benchmark` (ignored; run it as BENCHMARKS.md says) loads 10,000 messages
//! into the page and reports what opening the room, a new message and a receipt cost.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::chat::DESKTOP;
use super::{Browser, driver};
use crate::support::{TestApp, TestUser, spawn_app};

/// The seqs of the messages shown, whether they run on without a gap or a repeat (the
/// room holds nothing but messages, so their seqs follow each other), how many there are,
/// and how many elements the page holds.
pub(super) const SHOWN: &str = "(() => {
  const numbers = [...document.querySelectorAll('.message[data-seq]')].map(m => Number(m.dataset.seq));
  const inOrder = numbers.every((n, i) => i === 0 || n === numbers[i - 1] + 1);
  return { first: numbers[0], last: numbers[numbers.length - 1], count: numbers.length, inOrder,
           nodes: document.getElementsByTagName('*').length };
})()";

/// How many messages and elements the page holds (for any version of the page).
const PAGE_SIZE: &str = "({ count: document.querySelectorAll('.message').length, nodes: document.getElementsByTagName('*').length })";

/// The most messages and elements the page may hold at once.
const MOST_MESSAGES: i64 = 150;
const MOST_NODES: i64 = 5_000;

/// Sends `count` messages, 50 at a time; returns their seqs and bodies in seq order.
pub(super) async fn seed(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    count: usize,
) -> Vec<(i64, String)> {
    let mut sent = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let bodies: Vec<String> = chunk.iter().map(|n| format!("m{n}")).collect();
        let stored = join_all(bodies.iter().map(|body| app.send(user, room, body))).await;
        sent.extend(stored.iter().map(|message| {
            (
                message["seq"].as_i64().expect("seq"),
                message["body"].as_str().expect("body").to_owned(),
            )
        }));
    }
    sent.sort();
    sent
}

impl Browser {
    /// Scrolls to one end of the list again and again until the message of seq `wanted` shows,
    /// checking at every step that what shows runs on in order and stays bounded.
    pub(super) async fn scroll_through(&self, to_top: bool, wanted: i64) -> Value {
        let scroll = if to_top { "0" } else { "1e9" };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let shown = self.eval(SHOWN).await;
            assert_eq!(shown["inOrder"], json!(true), "no gap, no repeat: {shown}");
            assert!(shown["count"].as_i64().expect("count") <= MOST_MESSAGES, "bounded: {shown}");
            assert!(shown["nodes"].as_i64().expect("nodes") < MOST_NODES, "bounded: {shown}");
            let end = if to_top { &shown["first"] } else { &shown["last"] };
            if end == &json!(wanted) {
                return shown;
            }
            assert!(tokio::time::Instant::now() < deadline, "never reached {wanted}: {shown}");
            self.eval(&format!("document.querySelector('.messages').scrollTop = {scroll}")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_long_history_scrolls_both_ways_through_a_bounded_page_with_no_gap() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "archive", "private", &[]).await;
    let sent = seed(&app, &alice, &room, 400).await;
    let (first, last) = (sent[0].0, sent[sent.len() - 1].0);
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.until("the newest", &format!("document.querySelector('.message[data-seq=\"{last}\"]')"))
        .await;

    page.scroll_through(true, first).await;
    page.until(
        "the beginning of the room",
        "document.querySelector('.messages .loading-older')?.textContent.startsWith('This is the beginning')",
    )
    .await;
    page.screenshot("desktop-long-history-top").await;
    let bottom = page.scroll_through(false, last).await;
    assert!(bottom["count"].as_i64().expect("count") >= 50, "a full page at the bottom: {bottom}");
    page.close().await;
}

/// Figures for BENCHMARKS.md: a room of `CONFAB_BENCH_MESSAGES` (10,000) messages, all
/// loaded into the page by scrolling up through them. Only what any version of the page
/// shows is used (so that it measures an older one too): the script time of the click that
/// opens the room, and of the animation frames that render a new message and a receipt.
#[tokio::test]
#[ignore = "a benchmark: run it as BENCHMARKS.md says"]
async fn big_room_benchmark() {
    let Some(mut driver) = driver().await else { return };
    let count: usize =
        std::env::var("CONFAB_BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&alice, "archive", "private", &[&bob]).await;
    let other = app.create_room(&alice, "elsewhere", "private", &[]).await;
    let sent = seed(&app, &alice, &room, count).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.open_room(&room).await;
    page.shows_message(&sent[count - 1].1).await;
    let loading = std::time::Instant::now();
    page.scroll_through_all(&sent[0].1).await;
    let loaded_in = loading.elapsed();

    // Each animation frame's work, as the page does it.
    page.eval("(() => { const raf = window.requestAnimationFrame.bind(window); window.frameTimes = []; window.requestAnimationFrame = (f) => raf((t) => { const s = performance.now(); f(t); window.frameTimes.push(performance.now() - s); }); return true; })()").await;
    page.open_timed(&other).await;
    let opened = page.open_timed(&room).await;
    page.shows_message(&sent[count - 1].1).await;

    // Bob reads up to Alice's last message: a receipt.
    page.eval("window.frameTimes = []").await;
    app.post(&bob, &format!("/rooms/{room}/read"), json!({"seq": sent[count - 1].0})).await;
    page.until(
        "read by bob",
        "[...document.querySelectorAll('[data-receipt]')].some(r => r.dataset.receipt === 'read')",
    )
    .await;
    let receipt = page.eval("Math.max(0, ...window.frameTimes)").await;
    page.eval("window.frameTimes = []").await;
    app.send(&bob, &room, "m-new").await;
    page.shows_message("m-new").await;
    let new_message = page.eval("Math.max(0, ...window.frameTimes)").await;
    let shown = page.eval(PAGE_SIZE).await;
    let heap = page.eval("performance.memory ? performance.memory.usedJSHeapSize : 0").await;
    println!(
        "big room, {count} messages loaded (in {:.1} s): open {:.1} ms script, {:.1} ms to the next frame; \
         new message {:.1} ms; receipt {:.1} ms; {} elements, {} messages in the page; JS heap {:.1} MB",
        loaded_in.as_secs_f64(),
        opened[0].as_f64().unwrap_or_default(),
        opened[1].as_f64().unwrap_or_default(),
        new_message.as_f64().unwrap_or_default(),
        receipt.as_f64().unwrap_or_default(),
        shown["nodes"],
        shown["count"],
        heap.as_f64().unwrap_or_default() / 1e6,
    );
    page.close().await;
}

impl Browser {
    /// Opens a room from the sidebar: the script time of the click, and the time to the
    /// next frame after it, in milliseconds.
    async fn open_timed(&self, room: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1]; \
             const item = document.querySelector(\".room-item[data-room='{room}']\"); \
             const start = performance.now(); item.click(); const script = performance.now() - start; \
             requestAnimationFrame(() => setTimeout(() => done([script, performance.now() - start]), 0));"
        );
        self.client.execute_async(&script, vec![]).await.expect("opens")
    }

    /// Scrolls up until the room's first message shows, so that the page holds it all.
    async fn scroll_through_all(&self, first: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1_200);
        let first = json!(first);
        loop {
            let top = self.eval("document.querySelector('.message .body')?.textContent").await;
            if top == first {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never reached the beginning: {top}");
            self.eval("document.querySelector('.messages').scrollTop = 0").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
