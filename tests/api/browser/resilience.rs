//! What the page does when things go wrong or come late: sends refused by the server,
//! delivery confirmed after a page load, authors no member list holds, files too large.

use std::time::Duration;

use serde_json::json;

use super::chat::{DESKTOP, PHONE, two_in_a_dm};
use super::{Browser, driver};
use crate::support::{eventually, spawn_app, spawn_app_as_shipped, spawn_app_with};

/// Makes the page's next `send` frames be refused, one per code in `codes`, as the server
/// would refuse them (an `error` frame echoing the client_id), without them reaching it.
const REFUSE_SENDS: &str = "
  window.refusals = arguments[0];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const frame = JSON.parse(data);
    if (frame.type === 'send' && window.refusals.length) {
      const code = window.refusals.shift();
      const error = { type: 'error', code, message: 'Refused by the test.', client_id: frame.client_id };
      setTimeout(() => this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(error) })));
      return;
    }
    return send.call(this, data);
  };";

impl Browser {
    /// Texts of the open conversation's message bodies, in order, joined with `|`.
    async fn bodies(&self) -> String {
        let script =
            "[...document.querySelectorAll('.message .body')].map(b => b.textContent).join('|')";
        self.eval(script).await.as_str().unwrap_or_default().to_owned()
    }
}

#[tokio::test]
async fn a_send_refused_for_now_goes_again_by_itself_and_one_refused_for_good_can_be_retried() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    alice.client.execute(REFUSE_SENDS, vec![json!(["internal"])]).await.expect("patched");

    // An internal error says nothing about the message: it goes again, once.
    alice.say("through in the end").await;
    bob.shows_message("through in the end").await;
    alice.until("confirmed", "!document.querySelector('.message.pending')").await;

    // Refused for good: shown as not sent, with Retry beside Discard.
    alice.client.execute("window.refusals = ['not_found'];", vec![]).await.expect("script");
    alice.say("second try").await;
    alice.until("shown as failed", "document.querySelector('.message.failed .status')?.textContent === 'Not sent: Refused by the test.'").await;
    alice.screenshot("desktop-send-failed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob.bodies().await, "through in the end", "nothing more reached bob");
    alice.click_button("Retry").await;
    bob.shows_message("second try").await;
    alice
        .until("no longer failed", "!document.querySelector('.message.failed, .message.pending')")
        .await;
    assert_eq!(alice.bodies().await, "through in the end|second try");
    assert_eq!(bob.bodies().await, "through in the end|second try");
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_conversation_says_when_the_connection_is_down() {
    let Some(mut driver) = driver().await else { return };
    let mut app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    bob.open_room(&room).await;
    let bar = "document.querySelector('[data-testid=connection-bar]')";
    assert_eq!(
        bob.text("[data-testid=connection-bar]").await,
        "",
        "nothing to say while connected"
    );
    app.stop().await;
    bob.until("the bar says so", &format!("{bar}.textContent.startsWith('Reconnecting…')")).await;
    bob.screenshot("desktop-reconnecting").await;
    let app = app.restart().await;
    bob.until("the bar is gone", &format!("{bar}.textContent === '' && {bar}.offsetHeight === 0"))
        .await;
    drop(app);
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn dm_messages_that_came_while_away_are_marked_delivered_when_the_page_loads() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.open_dm(&alice, &bob).await;
    let message = app.send(&alice, &room, "are you there?").await;
    let seq = message["seq"].as_i64().expect("seq");
    // A phone opens on the room list: the message reaches the page but is not seen.
    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.sign_in(&app, &bob).await;
    let receipt = eventually("bob's page confirms delivery", || async {
        let (_, body) = app.get(&alice, &format!("/rooms/{room}/receipts")).await;
        let receipts = body["receipts"].as_array().cloned().unwrap_or_default();
        let bobs = receipts.into_iter().find(|r| r["user_id"] == bob.id.as_str())?;
        (bobs["delivered_seq"].as_i64() == Some(seq)).then_some(bobs)
    })
    .await;
    assert!(receipt["read_seq"].as_i64() < Some(seq), "delivered, not read: {receipt}");
    phone.close().await;
}

#[tokio::test]
async fn an_author_who_left_the_room_is_named_not_unknown() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let carol = app.register_displayed("carol", "Carol").await;
    let room = app.create_room(&alice, "general", "public", &[&bob]).await;
    app.post(&carol, &format!("/rooms/{room}/join"), json!({})).await;
    app.send(&carol, &room, "hello and goodbye").await;
    app.post(&carol, &format!("/rooms/{room}/leave"), json!({})).await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    page.open_room(&room).await;
    page.shows_message("hello and goodbye").await;
    page.until(
        "carol named",
        "document.querySelector('.message .author')?.textContent === 'Carol'",
    )
    .await;
    page.close().await;
}

#[tokio::test]
async fn a_file_over_the_upload_limit_is_refused_with_the_limit_and_the_next_one_at_once() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_with(|settings| settings.max_upload_bytes = 1024 * 1024).await;
    let files = tempfile::tempdir().expect("dir");
    let big = files.path().join("big.bin");
    let bigger = files.path().join("bigger.bin");
    std::fs::write(&big, vec![7u8; 3 * 1024 * 1024 / 2]).expect("file written");
    std::fs::write(&bigger, vec![7u8; 2 * 1024 * 1024]).expect("file written");
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;

    let chip = "document.querySelector('.file-chip.failed .sub')?.textContent";
    let picker = alice.find("[data-testid=file-input]").await;
    picker.send_keys(&big.display().to_string()).await.expect("file picked");
    alice
        .until("refused with the limit", &format!("{chip} === 'Files may be at most 1 MB.'"))
        .await;
    alice.screenshot("desktop-file-too-large").await;
    alice.click(".file-chip button").await;

    // The next file as large is refused before any of it is sent.
    let count_uploads = "window.uploads = 0; const send = XMLHttpRequest.prototype.send;
        XMLHttpRequest.prototype.send = function (body) { window.uploads += 1; return send.call(this, body); };";
    alice.client.execute(count_uploads, vec![]).await.expect("patched");
    let picker = alice.find("[data-testid=file-input]").await;
    picker.send_keys(&bigger.display().to_string()).await.expect("file picked");
    alice.until("refused again", &format!("{chip} === 'Files may be at most 1 MB.'")).await;
    assert_eq!(alice.eval("window.uploads").await, 0, "refused without an upload");
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_room_first_opened_after_a_reconnect_has_no_gap_in_its_history() {
    let Some(mut driver) = driver().await else { return };
    let mut app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&alice, "busy", "private", &[&bob]).await;
    app.send(&alice, &room, "old").await;
    // A phone opens no room: the page knows only the room list's last message.
    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.sign_in(&app, &bob).await;
    phone.find(&format!(".room-item[data-room='{room}']")).await;

    // While the page is away, more than a page of messages comes.
    app.stop().await;
    let app = app.restart().await;
    for n in 1..=60 {
        app.send(&alice, &room, &format!("m{n}")).await;
    }
    phone.find(".sidebar .connection[data-state=connected]").await;
    phone.open_room(&room).await;
    // The room opens at Bob's first unread message ("old"), with the newest page and what
    // it fetched back to it: whatever shows runs on to "m60" without a gap.
    let all: Vec<String> =
        std::iter::once("old".to_owned()).chain((1..=60).map(|n| format!("m{n}"))).collect();
    phone.until("the newest page, and no gap", &ends_history(&all, 50)).await;

    // Scrolling up fills in whatever is before it, in order.
    phone.eval("document.querySelector('.messages').scrollTop = 0").await;
    phone
        .until(
            "all of the history",
            &format!(
                "[...document.querySelectorAll('.message .body')].map(b => b.textContent).join('|') === {}",
                json!(all.join("|"))
            ),
        )
        .await;
    phone.close().await;
}

/// Holds the page's request for a room's newest page until `window.releaseNewest()`, and
/// notes whether an older page is asked for meanwhile.
const HOLD_NEWEST_PAGE: &str = "
  window.newestHeld = false; window.olderAsked = false;
  const fetch = window.fetch;
  window.fetch = function (url, init) {
    const path = String(url);
    if (path.includes('/messages?limit=')) {
      window.newestHeld = true;
      return new Promise((resolve, reject) => {
        window.releaseNewest = () => fetch(url, init).then(resolve, reject);
      });
    }
    if (path.includes('/messages?before=')) window.olderAsked = true;
    return fetch(url, init);
  };";

/// Scrolling to the top of a room whose first page has not come yet (a slow network, a busy
/// machine) must not page back from what the room list held: that page would skip
/// everything between, and the newest page would then be taken as joining it.
#[tokio::test]
async fn scrolling_up_before_a_rooms_first_page_comes_leaves_no_gap() {
    let Some(mut driver) = driver().await else { return };
    // The history is seeded faster than anyone types: without rate limits.
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&alice, "busy", "private", &[&bob]).await;
    app.send(&alice, &room, "old").await;
    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.sign_in(&app, &bob).await;
    phone.find(&format!(".room-item[data-room='{room}']")).await;
    for n in 1..=60 {
        app.send(&alice, &room, &format!("m{n}")).await;
    }
    phone.until("the room list has the newest", &format!(
        "document.querySelector(\".room-item[data-room='{room}']\")?.textContent.includes('m60')"
    )).await;

    phone.client.execute(HOLD_NEWEST_PAGE, vec![]).await.expect("patched");
    phone.open_room(&room).await;
    phone.until("the newest page asked for", "window.newestHeld === true").await;
    phone
        .eval("(() => { const list = document.querySelector('.messages'); list.scrollTop = 0; return list.dispatchEvent(new Event('scroll')); })()")
        .await;
    assert_eq!(phone.eval("window.olderAsked").await, false, "no older page before the newest");
    phone.eval("(() => { window.releaseNewest(); return true; })()").await;

    let all: Vec<String> =
        std::iter::once("old".to_owned()).chain((1..=60).map(|n| format!("m{n}"))).collect();
    phone.until("the newest page, and no gap", &ends_history(&all, 50)).await;
    phone.close().await;
}

/// A script that is true when the messages shown are the last ones of `all`, at least
/// `least` of them, in order and with nothing missing between.
fn ends_history(all: &[String], least: usize) -> String {
    format!(
        "(() => {{ const all = {}; const shown = [...document.querySelectorAll('.message .body')].map(b => b.textContent); \
           return shown.length >= {least} && shown.join('|') === all.slice(all.length - shown.length).join('|'); }})()",
        json!(all)
    )
}
