//! People in the browser: last seen, the sidebar's live presence, typing and authors, the
//! profile card, a new picture previewed until saved, pictures previewed before sending, and
//! notifications the browser blocks.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::chat::{DESKTOP, PHONE, two_in_a_dm};
use super::media::picture_file;
use super::{Browser, driver};
use crate::support::{TestApp, TestUser, WsClient, spawn_app_as_shipped};

/// Closes a WebSocket the way a closing tab does, and waits for the server's answer.
async fn close_tab(mut ws: WsClient) {
    ws.send_raw(Message::Close(None)).await;
    ws.expect_close().await;
}

/// The presence label of `user_id` in the open members dialog.
fn member_label(user_id: &str) -> String {
    format!(
        "document.querySelector(\"dialog .members li[data-user='{user_id}'] [data-testid=presence-label]\")?.textContent"
    )
}

impl Browser {
    /// Opens the page again, signed in already (a reload, as far as the page goes).
    async fn reload_signed_in(&self, app: &TestApp) {
        self.open(app).await;
        self.find(".sidebar .connection[data-state=connected]").await;
    }

    /// Picks `picture` in the profile dialog and waits for its preview.
    async fn pick_avatar(&self, picture: &std::path::Path) {
        self.click(".me-name").await;
        self.find("[data-testid=avatar-input]")
            .await
            .send_keys(&picture.display().to_string())
            .await
            .expect("file picked");
        self.until(
            "the picture previewed",
            "document.querySelector('.avatar-preview.pending img')?.src.startsWith('blob:')",
        )
        .await;
    }

    /// Picks `picture` for the next message, waits for its thumbnail and keeps the
    /// thumbnail's URL as `window.thumbnail`.
    async fn pick_for_message(&self, picture: &std::path::Path) {
        self.find("[data-testid=file-input]")
            .await
            .send_keys(&picture.display().to_string())
            .await
            .expect("file picked");
        self.until(
            "the thumbnail shows",
            &format!("{THUMBNAIL}?.complete && {THUMBNAIL}.naturalWidth === 600 && {THUMBNAIL}.src.startsWith('blob:')"),
        )
        .await;
        self.client
            .execute(&format!("window.thumbnail = {THUMBNAIL}.src;"), vec![])
            .await
            .expect("kept");
    }

    /// Moves the page's clock `ms` ahead (every `new Date()` and `Date.now()` from here on),
    /// then brings time-dependent labels up to date at once, as the 30-second ticker would.
    async fn advance_clock(&self, ms: i64) {
        let script = "const [shift, done] = arguments;
            const Real = window.RealDate || Date;
            window.RealDate = Real;
            window.Date = class extends Real {
              constructor(...args) { if (args.length) super(...args); else super(Real.now() + shift); }
              static now() { return Real.now() + shift; }
            };
            const main = document.querySelector('script[type=module]').src;
            import(new URL('views/presence.js', main)).then((m) => { m.tickPresence(); done(true); });";
        self.client.execute_async(script, vec![json!(ms)]).await.expect("clock moved");
    }
}

/// A user's `avatar_url`, as the server has it.
async fn avatar_of(app: &TestApp, user: &TestUser) -> serde_json::Value {
    let (_, body) = app.get(user, &format!("/users/{}", user.id)).await;
    body["avatar_url"].clone()
}

/// The thumbnail of a picture picked for the next message.
const THUMBNAIL: &str = "document.querySelector('[data-testid=picked-picture] img')";

/// Last seen shows the moment someone leaves, and grows older as time passes without a
/// reload, in the member list and the profile card alike.
#[tokio::test]
async fn last_seen_shows_when_someone_leaves_and_ages_as_time_passes() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&bob, "Book club", "private", &[&alice]).await;
    let alice_tab = app.connect(&alice).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    page.open_room(&room).await;
    page.click_button("Members").await;
    let label = member_label(&alice.id);
    page.until("alice online", &format!("{label} === 'Online'")).await;

    close_tab(alice_tab).await;
    page.until("alice just left", &format!("{label} === 'Last seen just now'")).await;
    page.screenshot("desktop-last-seen").await;

    // Five minutes on (by the page's clock), the open list says so without a reload.
    page.advance_clock(5 * 60_000 + 5_000).await;
    page.until("five minutes later", &format!("{label} === 'Last seen 5 minutes ago'")).await;

    // The profile card says the same, and follows the clock too.
    page.click(&format!("dialog .members li[data-user='{}'] .person-name", alice.id)).await;
    let card = "document.querySelector('[data-testid=profile-card] [data-testid=presence-label]')?.textContent";
    page.until("the card's last seen", &format!("{card} === 'Last seen 5 minutes ago'")).await;
    page.advance_clock(30 * 60_000).await;
    page.until("the card's last seen ages", &format!("{card} === 'Last seen 30 minutes ago'"))
        .await;
    page.close().await;
}

/// The labels for longer ago, computed in the page with a given "now".
#[tokio::test]
async fn last_seen_says_yesterday_and_older_days() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let bob = app.register_displayed("bob", "Bob").await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    let script = "const done = arguments[0];
        const main = document.querySelector('script[type=module]').src;
        import(new URL('views/presence.js', main)).then(({ lastSeenLabel }) => {
          const now = new Date(2026, 4, 20, 9, 30);
          const at = (d, h, m) => new Date(2026, 4, d, h, m);
          done([
            lastSeenLabel(new Date(now - 20_000), now),
            lastSeenLabel(new Date(now - 60_000), now),
            lastSeenLabel(new Date(now - 59 * 60_000), now),
            lastSeenLabel(at(20, 7, 5), now).startsWith('today at '),
            lastSeenLabel(at(19, 14, 5), now).startsWith('yesterday at '),
            lastSeenLabel(at(16, 14, 5), now).startsWith('on '),
            lastSeenLabel(new Date(2025, 0, 3), now).includes('2025'),
          ]);
        });";
    let labels = page.client.execute_async(script, vec![]).await.expect("labels");
    assert_eq!(
        labels,
        json!(["just now", "a minute ago", "59 minutes ago", true, true, true, true])
    );
    page.close().await;
}

/// The sidebar follows a DM peer's presence live, and shows who is typing in place of the
/// last message until they stop.
#[tokio::test]
async fn the_sidebar_shows_presence_and_typing_live() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let dm = app.open_dm(&alice, &bob).await;
    let group = app.create_room(&alice, "Book club", "private", &[&bob]).await;
    app.send(&alice, &dm, "see you").await;
    // Alice is around before Bob's page loads: its first picture of presence says so. (The
    // live changes come after it, below, so that none can race with it.)
    let mut alice_tab = app.connect(&alice).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    let dot = format!(
        "document.querySelector(\".room-item[data-room='{dm}'] .presence-dot\").dataset.status"
    );
    page.until("alice online", &format!("{dot} === 'online'")).await;

    let preview = |room: &str| {
        format!(
            "document.querySelector(\".room-item[data-room='{room}'] [data-testid=preview]\").textContent"
        )
    };
    alice_tab.send_json(json!({ "type": "typing", "room_id": dm })).await;
    page.until("typing in the DM", &format!("{} === 'typing…'", preview(&dm))).await;
    page.screenshot("desktop-sidebar-typing").await;
    // Without another typing frame it lapses (after 6 s), and the last message is back.
    page.until("typing lapsed", &format!("{} === 'Alice: see you'", preview(&dm))).await;
    alice_tab.send_json(json!({ "type": "typing", "room_id": group })).await;
    page.until("typing in the group", &format!("{} === 'Alice is typing…'", preview(&group))).await;

    close_tab(alice_tab).await;
    page.until("alice gone offline", &format!("{dot} === 'offline'")).await;
    let _alice_back = app.connect(&alice).await;
    page.until("alice back online", &format!("{dot} === 'online'")).await;
    page.close().await;
}

/// A room's last message names its author even when the page knew nothing of them: they
/// are looked up.
#[tokio::test]
async fn a_preview_names_an_author_the_page_did_not_know() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let carol = app.register_displayed("carol", "Carol").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let lobby = app.create_room(&carol, "Lobby", "private", &[&bob]).await;
    app.send(&carol, &lobby, "hello from carol").await;
    // On a phone no room opens by itself, so no member list is loaded: the page knows
    // Carol only as the author's id in the room list.
    let page = driver.browser(PHONE.0, PHONE.1).await;
    page.sign_in(&app, &bob).await;
    page.until(
        "the author named",
        &format!("document.querySelector(\".room-item[data-room='{lobby}'] [data-testid=preview]\")?.textContent === 'Carol: hello from carol'"),
    )
    .await;
    page.close().await;
}

/// A name in the member list opens the person's card; its Message button opens your DM
/// with them. Your own card offers only Edit profile.
#[tokio::test]
async fn the_profile_card_shows_a_person_and_messages_them() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let (status, _) = app
        .call(reqwest::Method::PATCH, "/me", Some(&alice), Some(json!({ "bio": "Likes tea." })))
        .await;
    assert!(status.is_success());
    let room = app.create_room(&bob, "Book club", "private", &[&alice]).await;
    let _alice_tab = app.connect(&alice).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    page.open_room(&room).await;
    page.click_button("Members").await;
    page.click(&format!("dialog .members li[data-user='{}'] .person-name", alice.id)).await;
    let card = "[data-testid=profile-card]";
    page.until(
        "alice's card",
        &format!(
            "(() => {{ const c = document.querySelector('{card}'); return c && c.open \
             && c.querySelector('h2').textContent === 'Alice' && c.textContent.includes('@alice') \
             && c.querySelector('.bio')?.textContent === 'Likes tea.' \
             && c.querySelector('[data-testid=presence-label]')?.textContent === 'Online' \
             && !!c.querySelector('.avatar'); }})()"
        ),
    )
    .await;
    page.screenshot("desktop-profile-card").await;
    page.click_button("Message").await;
    page.until(
        "the DM with alice is open, the dialogs closed",
        "document.querySelector('#room-title')?.textContent === 'Alice' && !document.querySelector('dialog[open]')",
    )
    .await;

    // The picture in the DM's row in the sidebar opens the card too.
    page.click(".room-row .peer-card").await;
    page.until(
        "alice's card from the sidebar",
        &format!("document.querySelector('{card}')?.querySelector('h2')?.textContent === 'Alice'"),
    )
    .await;
    page.client
        .execute("document.querySelector('[data-testid=profile-card]').close();", vec![])
        .await
        .expect("closed");

    // Bob's own card: no Message, only Edit profile, which opens the profile dialog.
    page.click_button("Members").await;
    page.click(&format!("dialog .members li[data-user='{}'] .person", bob.id)).await;
    page.until(
        "bob's own card",
        &format!(
            "(() => {{ const c = document.querySelector('{card}'); return c && c.querySelector('h2')?.textContent === 'Bob' \
             && [...c.querySelectorAll('button')].map(b => b.textContent).join() === 'Edit profile'; }})()"
        ),
    )
    .await;
    page.click_button("Edit profile").await;
    page.until("the profile dialog", "document.querySelector('dialog [data-testid=avatar-input]')")
        .await;
    page.close().await;
}

/// A picture picked in the profile dialog is a preview until Save: Cancel forgets it, and
/// the other side sees it only once saved.
#[tokio::test]
async fn a_new_picture_applies_only_when_saved() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let files = tempfile::tempdir().expect("dir");
    let picture = picture_file(files.path(), "me.png");
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    app.send(&alice_user, &room, "hello").await;
    bob.open_room(&room).await;
    bob.shows_message("hello").await;

    alice.pick_avatar(&picture).await;
    alice.screenshot("desktop-avatar-preview").await;
    alice.click_button("Cancel").await;
    alice.until("the dialog closed", "!document.querySelector('dialog[open]')").await;
    assert_eq!(avatar_of(&app, &alice_user).await, serde_json::Value::Null, "nothing was uploaded");
    assert!(!bob.text(".message .avatar").await.is_empty(), "bob still sees initials");

    alice.pick_avatar(&picture).await;
    alice.click_button("Save").await;
    alice.until("the dialog closed", "!document.querySelector('dialog[open]')").await;
    let expected = format!("/api/v1/users/{}/avatar", alice_user.id);
    bob.until(
        "bob sees alice's picture once saved",
        &format!("document.querySelector('.message img.avatar')?.getAttribute('src').startsWith('{expected}')"),
    )
    .await;
    assert!(avatar_of(&app, &alice_user).await.is_string());
    alice.close().await;
    bob.close().await;
}

/// A picture picked for a message shows as a thumbnail before it is sent; removing it, or
/// sending it, frees the thumbnail.
#[tokio::test]
async fn a_picked_picture_is_previewed_before_sending() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let files = tempfile::tempdir().expect("dir");
    let picture = picture_file(files.path(), "sunset.png");
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    let thumbnail = THUMBNAIL;
    let freed = "fetch(window.thumbnail).then(() => false, () => true)";

    alice.pick_for_message(&picture).await;
    alice.screenshot("desktop-picture-preview").await;
    alice.click("[data-testid=picked-picture] button[aria-label='Remove sunset.png']").await;
    alice.until("the thumbnail gone", &format!("!{thumbnail}")).await;
    let removed = alice.client.execute(&format!("return {freed};"), vec![]).await.expect("fetch");
    assert_eq!(removed, json!(true), "a removed picture's thumbnail is freed");

    alice.pick_for_message(&picture).await;
    alice.until("uploaded", "!document.querySelector('.composer button.primary').disabled").await;
    alice.say("look").await;
    alice.until("the thumbnail gone once sent", &format!("!{thumbnail}")).await;
    bob.until("bob sees the picture", "document.querySelector('.message .attachment.picture img')")
        .await;
    let sent = alice.client.execute(&format!("return {freed};"), vec![]).await.expect("fetch");
    assert_eq!(sent, json!(true), "a sent picture's thumbnail is freed");
    alice.close().await;
    bob.close().await;
}

/// When the browser blocks notifications, the button says so and explains how to allow
/// them; when they are allowed, it says they are on.
#[tokio::test]
async fn the_notifications_button_follows_the_permission_and_explains_a_block() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let bob = app.register_displayed("bob", "Bob").await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    let button = "document.querySelector('[data-testid=notifications]')";
    page.until(
        "not asked yet",
        &format!("{button}.textContent === 'Enable notifications' && {button}.dataset.permission === 'default'"),
    )
    .await;

    page.set_permission("notifications", "denied").await;
    page.reload_signed_in(&app).await;
    page.until(
        "blocked",
        &format!("{button}.textContent === 'Notifications blocked' && {button}.dataset.permission === 'denied'"),
    )
    .await;
    page.click("[data-testid=notifications]").await;
    page.until(
        "how to allow them",
        "document.querySelector('[data-testid=notifications-note]')?.textContent.includes(\"allow them in the browser's site settings\")",
    )
    .await;
    page.screenshot("desktop-notifications-blocked").await;

    page.set_permission("notifications", "granted").await;
    page.reload_signed_in(&app).await;
    page.until("on", &format!("{button}.textContent === 'Notifications on'")).await;
    page.close().await;
}
