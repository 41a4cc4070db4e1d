//! The open conversation keeps up with what changes around it: quotes follow what they
//! quote, the header's counts follow who comes, goes and is around, and one's own messages
//! carry one receipt per run.

use reqwest::Method;
use serde_json::json;

use super::chat::DESKTOP;
use super::driver;
use crate::support::spawn_app;

/// A quote shows what it quotes as it stands: an edit or a deletion shows at once, and
/// one made while the page was away shows after it reconnects.
#[tokio::test]
async fn quotes_follow_what_they_quote_live_and_after_a_reconnect() {
    let Some(mut driver) = driver().await else { return };
    let mut app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let dm = app.open_dm(&alice, &bob).await;
    let original = app.send(&alice, &dm, "the original words").await;
    let id = original["id"].as_str().expect("id").to_owned();
    let (status, reply) = app
        .post(&bob, &format!("/rooms/{dm}/messages"), json!({"body": "a reply", "reply_to": id}))
        .await;
    assert!(status.is_success(), "reply: {reply}");

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message("a reply").await;
    let quote = "document.querySelector('.message .quote')?.textContent";
    page.until("the quote", &format!("{quote}?.includes('the original words')")).await;

    let path = format!("/rooms/{dm}/messages/{id}");
    let edit = json!({"body": "the new words"});
    let (status, _) = app.call(Method::PATCH, &path, Some(&alice), Some(edit)).await;
    assert!(status.is_success());
    page.until("the quote follows the edit", &format!("{quote}?.includes('the new words')")).await;

    // The deletion comes while the page is away.
    app.stop().await;
    page.find(".sidebar .connection:not([data-state=connected])").await;
    let app = app.restart().await;
    let (status, _) = app.delete(&alice, &path).await;
    assert!(status.is_success());
    page.find(".sidebar .connection[data-state=connected]").await;
    page.until("the quote follows the deletion", &format!("{quote}?.includes('Message deleted')"))
        .await;
    page.close().await;
}

/// The header says how many are in the room and how many of them are around, as people
/// come and go, in words that fit the number.
#[tokio::test]
async fn the_header_counts_follow_who_comes_and_goes_with_plurals() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&alice, "lounge", "public", &[]).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.open_room(&room).await;
    let meta = "document.querySelector('[data-testid=room-meta]').textContent";
    page.until("one member", &format!("{meta} === '1 member · 1 online'")).await;

    app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    page.until("two members", &format!("{meta} === '2 members · 1 online'")).await;
    let bob_online = app.connect(&bob).await;
    page.until("both online", &format!("{meta} === '2 members · 2 online'")).await;
    drop(bob_online);
    app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    page.until("one member again", &format!("{meta} === '1 member · 1 online'")).await;
    page.close().await;
}

/// A run of one's own messages carries one receipt, on its last message; the messages of
/// a run after its first show their time on hover.
#[tokio::test]
async fn a_run_of_ones_own_messages_carries_one_receipt_and_each_a_time() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let dm = app.open_dm(&alice, &bob).await;
    for body in ["one", "two", "three"] {
        app.send(&alice, &dm, body).await;
    }
    app.send(&bob, &dm, "an answer").await;
    for body in ["four", "five"] {
        app.send(&alice, &dm, body).await;
    }
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message("five").await;
    let receipts = page
        .eval("[...document.querySelectorAll('.message')].filter(m => m.querySelector('[data-receipt]')).map(m => m.querySelector('.body').textContent)")
        .await;
    assert_eq!(receipts, json!(["three", "five"]), "one receipt per run");
    let timed = page
        .eval("[...document.querySelectorAll('.message')].filter(m => m.querySelector('time')).length")
        .await;
    assert_eq!(timed, json!(6), "every message has its time");
    page.eval("document.querySelectorAll('.message')[1].focus()").await;
    page.until(
        "the time of a grouped message shows",
        "getComputedStyle(document.querySelectorAll('.message')[1].querySelector('.hover-time')).opacity === '1'",
    )
    .await;
    page.screenshot("desktop-receipt-per-run").await;
    page.close().await;
}
