//! Two people chatting in two browser windows.

use super::{Browser, Driver, driver};
use crate::support::{TestApp, TestUser, spawn_app_as_shipped};

pub(super) const DESKTOP: (u32, u32) = (1280, 860);
pub(super) const PHONE: (u32, u32) = (390, 844);

impl Browser {
    /// Signs in through the sign-in screen and waits for the live connection.
    pub(super) async fn sign_in(&self, app: &TestApp, user: &TestUser) {
        self.open(app).await;
        self.type_into("#auth-username", &user.username).await;
        self.type_into("#auth-password", &format!("password-{}", user.username)).await;
        self.click("form button[type=submit]").await;
        self.find(".sidebar .connection[data-state=connected]").await;
    }

    pub(super) async fn open_room(&self, room: &str) {
        self.click(&format!(".room-item[data-room='{room}']")).await;
        self.find(".composer textarea").await;
    }

    /// Waits until the open conversation shows a message with exactly this text.
    pub(super) async fn shows_message(&self, text: &str) {
        let text = serde_json::json!(text);
        self.until(
            &format!("message {text}"),
            &format!("[...document.querySelectorAll('.message .body')].some(b => b.textContent === {text})"),
        )
        .await;
    }
}

/// Alice and Bob (registered through the API), a DM between them, and each signed in in a
/// desktop browser window.
pub(super) async fn two_in_a_dm(
    app: &TestApp,
    driver: &mut Driver,
) -> (Browser, Browser, TestUser, TestUser, String) {
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.open_dm(&alice, &bob).await;
    let alice_page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    let bob_page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    alice_page.sign_in(app, &alice).await;
    bob_page.sign_in(app, &bob).await;
    (alice_page, bob_page, alice, bob, room)
}

#[tokio::test]
async fn two_people_register_start_a_dm_and_chat_both_ways_live() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = driver.browser(DESKTOP.0, DESKTOP.1).await;
    let bob = driver.browser(DESKTOP.0, DESKTOP.1).await;
    alice.open(&app).await;
    alice.find("#auth-username").await;
    alice.screenshot("desktop-sign-in").await;
    alice.register(&app, "alice").await;
    bob.register(&app, "bob").await;

    // Alice finds Bob in the user directory and starts a conversation.
    alice.click_button("+ Message").await;
    alice.type_into("dialog input[type=search]", "bo").await;
    // The list shown before typing (everyone but Alice) is replaced once the search
    // answers; a click while rows move could land where another row was.
    alice
        .until(
            "bob alone in the list",
            "(() => { const rows = document.querySelectorAll('dialog .pick-list li'); \
             return rows.length === 1 && !!rows[0].querySelector(\"button[aria-label='Choose bob']\"); })()",
        )
        .await;
    alice.click("dialog button[aria-label='Choose bob']").await;
    alice.find(".composer textarea").await;
    alice.say("Hi Bob, how are you?").await;
    alice.shows_message("Hi Bob, how are you?").await;

    // The conversation appears in Bob's sidebar, live, with its unread badge.
    bob.until(
        "the DM in bob's sidebar",
        "document.querySelector('.room-item [data-testid=unread]')?.textContent === '1'",
    )
    .await;
    bob.click(".room-item").await;
    bob.shows_message("Hi Bob, how are you?").await;
    bob.say("Fine, thanks! And you?").await;
    alice.shows_message("Fine, thanks! And you?").await;
    alice.screenshot("desktop-conversation").await;
    bob.screenshot("desktop-conversation-other-side").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn typing_and_presence_appear_and_disappear() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;

    bob.until(
        "alice shown online",
        "document.querySelector('[data-testid=room-meta]').textContent === 'Online'",
    )
    .await;
    alice.type_into("[data-testid=composer]", "I am writ").await;
    bob.until(
        "typing shown",
        "document.querySelector('[data-testid=typing]').textContent === 'Alice is typing…'",
    )
    .await;
    bob.screenshot("desktop-typing").await;
    // Without another keystroke the indicator lapses after 6 s.
    bob.until("typing gone", "document.querySelector('[data-testid=typing]').textContent === ''")
        .await;

    // Sending stops the indicator at once.
    alice.type_into("[data-testid=composer]", "ing").await;
    bob.until(
        "typing shown again",
        "document.querySelector('[data-testid=typing]').textContent !== ''",
    )
    .await;
    alice.say("").await;
    bob.shows_message("I am writing").await;
    assert_eq!(bob.text("[data-testid=typing]").await, "");

    alice.close().await;
    bob.until(
        "alice shown offline",
        "document.querySelector('[data-testid=room-meta]').textContent === 'Last seen just now'",
    )
    .await;
    bob.close().await;
}

#[tokio::test]
async fn a_read_receipt_turns_blue_when_the_other_side_reads() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, bob_user, room) = two_in_a_dm(&app, &mut driver).await;
    // Bob looks at another room while Alice writes.
    let elsewhere = app.create_room(&alice_user, "elsewhere", "private", &[&bob_user]).await;
    bob.open_room(&elsewhere).await;
    alice.open_room(&room).await;
    alice.say("Did you read this?").await;
    let receipt = "document.querySelector('.message.own [data-receipt]')";
    // Bob's page is open but not on this room: delivered, not read.
    alice.until("delivered", &format!("{receipt}?.dataset.receipt === 'delivered'")).await;
    assert!(
        !alice
            .find(".message.own .status")
            .await
            .attr("class")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .contains("read")
    );
    bob.open_room(&room).await;
    alice.until("read", &format!("{receipt}?.dataset.receipt === 'read'")).await;
    let colour =
        alice.find(".message.own .status.read").await.css_value("color").await.expect("colour");
    assert!(colour.contains("26, 115, 232") || colour.contains("100, 168, 255"), "blue: {colour}");
    alice.screenshot("desktop-read-receipt").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_unread_badge_and_the_tab_title_count_up_and_clear() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, bob_user, room) = two_in_a_dm(&app, &mut driver).await;
    // Bob looks at another room while Alice writes.
    let elsewhere = app.create_room(&alice_user, "elsewhere", "private", &[&bob_user]).await;
    bob.open_room(&elsewhere).await;
    alice.open_room(&room).await;
    alice.say("one").await;
    alice.say("two").await;
    alice.shows_message("two").await;
    bob.until("badge says 2", &format!("document.querySelector(\".room-item[data-room='{room}'] [data-testid=unread]\")?.textContent === '2'")).await;
    bob.until("title says 2", "document.title === '(2) Confab'").await;
    bob.screenshot("desktop-unread").await;
    bob.open_room(&room).await;
    bob.until(
        "badge cleared",
        &format!(
            "!document.querySelector(\".room-item[data-room='{room}'] [data-testid=unread]\")"
        ),
    )
    .await;
    bob.until("title cleared", "document.title === 'Confab'").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_page_reconnects_after_a_server_restart_and_shows_what_it_missed() {
    let Some(mut driver) = driver().await else { return };
    let mut app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    bob.open_room(&room).await;
    app.send(&alice_user, &room, "before the restart").await;
    bob.shows_message("before the restart").await;

    // Count the page's failed connection attempts from here on.
    bob.client
        .execute(
            "window.failed = 0; const Socket = window.WebSocket; \
             window.WebSocket = class extends Socket { \
               constructor(...args) { super(...args); \
                 this.addEventListener('close', () => { window.failed += 1; }); } };",
            vec![],
        )
        .await
        .expect("patched");
    app.stop().await;
    bob.until(
        "reconnecting shown",
        "document.querySelector('[data-testid=connection]').dataset.state !== 'connected'",
    )
    .await;
    // Let a reconnect attempt or two fail, so that what follows is missed, not live.
    bob.until("a reconnect attempt failed", "window.failed >= 1").await;
    let app = app.restart().await;
    for body in ["missed one", "missed two", "missed three"] {
        app.send(&alice_user, &room, body).await;
    }
    bob.until(
        "connected again",
        "document.querySelector('[data-testid=connection]').dataset.state === 'connected'",
    )
    .await;
    bob.shows_message("missed three").await;
    let bodies =
        "[...document.querySelectorAll('.message .body')].map(b => b.textContent).join('|')";
    bob.until(
        "every message once, in order",
        &format!("{bodies} === 'before the restart|missed one|missed two|missed three'"),
    )
    .await;
    bob.screenshot("desktop-after-reconnect").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn html_in_a_message_is_shown_as_text_and_links_are_safe() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    let hostile =
        "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script><b>bold</b>";
    alice.say(hostile).await;
    alice.say("see https://example.com/page and javascript:alert(1)").await;
    bob.shows_message(hostile).await;
    bob.until("the link", "document.querySelector('.message .body a')").await;
    assert_eq!(bob.text(".message .body a").await, "https://example.com/page");
    let checks = bob
        .client
        .execute(
            "return [window.pwned === undefined, document.querySelectorAll('.message .body img, .message .body b, .message .body script').length, document.querySelector('.message .body a').rel, document.querySelectorAll('.message .body a').length];",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(checks, serde_json::json!([true, 0, "noopener noreferrer", 1]));
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_page_fits_a_phone_with_a_collapsing_sidebar() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.open_dm(&alice, &bob).await;
    app.send(&alice, &room, "Hello from the desktop").await;
    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.open(&app).await;
    phone.find("#auth-username").await;
    phone.screenshot("phone-sign-in").await;
    phone.sign_in(&app, &bob).await;
    // On a phone the room list comes first, over the conversation, and slides away once a
    // room is chosen; a button brings it back.
    phone
        .until(
            "sidebar shown",
            "document.querySelector('.layout').classList.contains('sidebar-open')",
        )
        .await;
    phone.until_still().await;
    phone.screenshot("phone-sidebar").await;
    phone.open_room(&room).await;
    phone
        .until(
            "sidebar hidden",
            "!document.querySelector('.layout').classList.contains('sidebar-open')",
        )
        .await;
    phone.shows_message("Hello from the desktop").await;
    // Slid away, the room list is hidden outright: Tab cannot wander into it.
    phone
        .until(
            "closed sidebar hidden",
            "getComputedStyle(document.querySelector('.sidebar')).visibility === 'hidden' && !document.querySelector('.main').inert",
        )
        .await;
    phone.say("Hello from the phone").await;
    phone.shows_message("Hello from the phone").await;
    phone.until_still().await;
    phone.screenshot("phone-conversation").await;
    phone.click("button.menu-toggle").await;
    phone
        .until(
            "sidebar back",
            "document.querySelector('.layout').classList.contains('sidebar-open')",
        )
        .await;
    // Open, it covers the conversation, which is out of reach meanwhile; the focus is on
    // the open room.
    phone
        .until(
            "conversation inert",
            &format!("document.querySelector('.main').inert && document.activeElement.dataset.room === '{room}'"),
        )
        .await;
    let overflow = phone
        .client
        .execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![])
        .await
        .expect("script");
    assert_eq!(overflow, serde_json::json!(true), "nothing wider than the screen");
    phone.close().await;
}

/// Past the sending rate, the client holds messages back for as long as the server says
/// and then sends them: none is shown as failed, and all arrive, in order.
#[tokio::test]
async fn messages_sent_faster_than_the_rate_wait_and_then_go() {
    let Some(mut driver) = driver().await else { return };
    let app = crate::support::spawn_app_with(|settings| {
        settings.limits = confab::limits::LimitSettings::default();
        settings.limits.set(confab::limits::Action::Message, Some("2/2s".parse().expect("a rate")));
    })
    .await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    for n in 1..=5 {
        alice.say(&format!("quick {n}")).await;
    }
    for n in 1..=5 {
        bob.shows_message(&format!("quick {n}")).await;
    }
    let order = "[...document.querySelectorAll('.message .body')].map(b => b.textContent)\
                 .filter(t => t.startsWith('quick ')).join(',') === 'quick 1,quick 2,quick 3,quick 4,quick 5'";
    bob.until("the five in order", order).await;
    alice.until("none failed", "document.querySelectorAll('.message.failed').length === 0").await;
    alice.close().await;
    bob.close().await;
}
