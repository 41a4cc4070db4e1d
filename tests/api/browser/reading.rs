//! What "read" means: a message is read once it has been on screen. A room opens where its
//! reader left off, at a "New" divider, and marks read only what shows; messages that come
//! while the reader is scrolled up stay unread until they are scrolled into view.

use serde_json::{Value, json};

use super::chat::DESKTOP;
use super::{Browser, driver};
use crate::support::{TestApp, TestUser, spawn_app};

/// `reader`'s read marker in `room`, as the room's other members see it.
pub(super) async fn read_seq(
    app: &TestApp,
    asker: &TestUser,
    room: &str,
    reader: &TestUser,
) -> i64 {
    let (_, body) = app.get(asker, &format!("/rooms/{room}/receipts")).await;
    body["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["user_id"] == reader.id.as_str())
        .map_or(0, |r| r["read_seq"].as_i64().expect("read_seq"))
}

/// Waits until `reader`'s read marker reaches at least `seq`, and returns it.
async fn read_reaches(
    app: &TestApp,
    asker: &TestUser,
    room: &str,
    reader: &TestUser,
    seq: i64,
) -> i64 {
    crate::support::eventually(&format!("read up to {seq}"), || async {
        let now = read_seq(app, asker, room, reader).await;
        (now >= seq).then_some(now)
    })
    .await
}

impl Browser {
    /// The room's unread badge in the sidebar, 0 when there is none.
    async fn badge(&self, room: &str) -> i64 {
        let text = self.text(&format!(".room-item[data-room='{room}'] [data-testid=unread]")).await;
        text.parse().unwrap_or(0)
    }

    /// Scrolls the message list by `pixels` (to the bottom for `None`).
    async fn scroll_list(&self, pixels: Option<i64>) {
        let script = match pixels {
            Some(pixels) => format!("document.querySelector('.messages').scrollTop += {pixels}"),
            None => "document.querySelector('.messages').scrollTop = 1e9".to_owned(),
        };
        self.eval(&script).await;
    }
}

/// Opening the app opens the latest conversation by itself: it lands on the first unread
/// message, under a "New" divider, and marks read only what is on screen. Scrolling on
/// reads the rest; the jump control brings the divider back.
#[tokio::test]
async fn a_conversation_opened_by_itself_marks_read_only_what_is_on_screen() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let dm = app.open_dm(&alice, &bob).await;
    let said = app.send(&alice, &dm, "before the flood").await;
    app.post(&alice, &format!("/rooms/{dm}/read"), json!({"seq": said["seq"]})).await;
    let mut sent: Vec<Value> = Vec::new();
    for n in 0..60 {
        sent.push(app.send(&bob, &dm, &format!("flood {n}")).await);
    }
    let seq = |n: usize| sent[n]["seq"].as_i64().expect("seq");

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.find("[data-testid=unread-divider]").await;
    page.shows_message("flood 0").await;
    let read = read_reaches(&app, &bob, &dm, &alice, seq(0)).await;
    page.until(
        "the divider stands right above the first unread",
        "document.querySelector('[data-testid=unread-divider]').nextElementSibling?.querySelector('.body')?.textContent === 'flood 0'",
    )
    .await;
    page.until("the first unread near the top", "(() => { const list = document.querySelector('.messages').getBoundingClientRect(); const d = document.querySelector('[data-testid=unread-divider]').getBoundingClientRect(); return d.top >= list.top && d.top < list.top + 60; })()").await;
    page.screenshot("desktop-unread-divider").await;
    // The last message on screen is read; the rest is not.
    page.until(
        "the badge counts what is below",
        "document.querySelector('[data-testid=unread]') !== null",
    )
    .await;
    assert!(read < seq(59), "only what is on screen is read: {read} of {}", seq(59));
    let left = page.badge(&dm).await;
    assert!(left > 0 && left < 60, "the badge counts what is not seen yet: {left}");

    // Down a little: the divider goes above the view, and the control to go back shows.
    page.scroll_list(Some(500)).await;
    page.find("[data-testid=jump-unread]:not([hidden])").await;
    page.click("[data-testid=jump-unread]").await;
    page.until("the divider in view again", "(() => { const list = document.querySelector('.messages').getBoundingClientRect(); const d = document.querySelector('[data-testid=unread-divider]').getBoundingClientRect(); return d.top >= list.top && d.bottom <= list.bottom; })()").await;

    // To the bottom: everything is read.
    let deadline = tokio::time::Instant::now() + crate::browser::PATIENCE;
    while read_seq(&app, &bob, &dm, &alice).await < seq(59) {
        assert!(tokio::time::Instant::now() < deadline, "scrolling down never read the last");
        page.scroll_list(None).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    page.until(
        "the badge is gone",
        &format!("!document.querySelector(\".room-item[data-room='{dm}'] [data-testid=unread]\")"),
    )
    .await;
    page.until(
        "the jump control is gone",
        "document.querySelector('[data-testid=jump-unread]').hidden",
    )
    .await;
    page.close().await;
}

/// Someone scrolled far up in a room is not reading what arrives at the bottom: it stays
/// unread (the badge counts it, the marker stays) until they go down to it.
#[tokio::test]
async fn messages_arriving_while_scrolled_up_stay_unread_until_scrolled_to() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&alice, "lounge", "public", &[]).await;
    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    for n in 0..80 {
        app.send(&alice, &room, &format!("history {n}")).await;
    }
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message("history 79").await;
    page.eval("document.querySelector('.messages').scrollTop = 0").await;
    page.until("scrolled up", "document.querySelector('.messages').scrollTop < 100").await;

    let first = app.send(&bob, &room, "while you were up there").await;
    page.find(".new-messages:not([hidden])").await;
    // A second one after it: by the time it counts, the first had every chance to be
    // (wrongly) marked read.
    app.send(&bob, &room, "and another").await;
    page.until("both count as unread", &format!("document.querySelector(\".room-item[data-room='{room}'] [data-testid=unread]\")?.textContent === '2'")).await;
    let first_seq = first["seq"].as_i64().expect("seq");
    assert!(read_seq(&app, &bob, &room, &alice).await < first_seq, "not read while scrolled up");

    page.click(".new-messages").await;
    page.shows_message("and another").await;
    read_reaches(&app, &bob, &room, &alice, first_seq + 1).await;
    page.until(
        "the badge is gone",
        &format!(
            "!document.querySelector(\".room-item[data-room='{room}'] [data-testid=unread]\")"
        ),
    )
    .await;

    // One's own message, written while scrolled up, brings the view down to it.
    page.eval("document.querySelector('.messages').scrollTop = 0").await;
    page.until("scrolled up again", "document.querySelector('.messages').scrollTop < 100").await;
    page.say("my own answer").await;
    page.shows_message("my own answer").await;
    page.until(
        "at the bottom",
        "(() => { const l = document.querySelector('.messages'); return l.scrollHeight - l.scrollTop - l.clientHeight < 40; })()",
    )
    .await;
    page.close().await;
}
