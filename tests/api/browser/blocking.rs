//! Blocking someone from the page, and what a group says about who added you.

use super::chat::{DESKTOP, two_in_a_dm};
use super::driver;
use crate::support::spawn_app;

#[tokio::test]
async fn blocking_from_the_dm_header_hides_the_dm_until_unblocked_in_the_profile() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let (alice_page, bob_page, _, bob, dm) = two_in_a_dm(&app, &mut driver).await;
    app.send(&bob, &dm, "are you there?").await;
    alice_page.open_room(&dm).await;
    alice_page.shows_message("are you there?").await;

    alice_page.click("button[aria-label='Block Bob']").await;
    alice_page.find("dialog bdi").await;
    alice_page.screenshot("desktop-block-confirm").await;
    alice_page.click("dialog .dialog-actions .btn.danger").await;
    let dm_item = format!("document.querySelector(\".room-item[data-room='{dm}']\")");
    alice_page.until("the DM gone from the sidebar", &format!("!{dm_item}")).await;
    alice_page
        .until("the conversation closed", "!document.querySelector('.composer textarea')")
        .await;

    // Bob still has the DM; what he writes there is refused, and says so.
    bob_page.open_room(&dm).await;
    bob_page.say("hello?").await;
    bob_page
        .until(
            "the refusal shown",
            "[...document.querySelectorAll('.message .status')].some(s => s.textContent.includes('does not accept'))",
        )
        .await;
    bob_page.screenshot("desktop-blocked-send").await;

    alice_page.click(".me-name").await;
    alice_page
        .until(
            "Bob among the blocked people",
            "document.querySelector('[data-testid=blocked-users] bdi')?.textContent === 'Bob'",
        )
        .await;
    alice_page.screenshot("desktop-profile-blocked").await;
    alice_page.click("[data-testid=blocked-users] button[aria-label='Unblock Bob']").await;
    alice_page.until("the DM back in the sidebar", &format!("!!{dm_item}")).await;
    alice_page
        .until(
            "nobody blocked",
            "document.querySelector('[data-testid=blocked-users]').textContent === 'You block nobody.'",
        )
        .await;
    alice_page.close().await;
    bob_page.close().await;
}

#[tokio::test]
async fn a_group_says_who_added_you_beside_leave() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob \u{05d1}\u{05d5}\u{05d1}").await;
    let group = app.create_room(&bob, "Book club", "private", &[&alice]).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.open_room(&group).await;

    page.until(
        "who added her",
        "document.querySelector('[data-testid=added-by] bdi')?.textContent === 'Bob \u{05d1}\u{05d5}\u{05d1}'",
    )
    .await;
    assert!(page.text("[data-testid=added-by]").await.starts_with("Added by Bob"));
    page.screenshot("desktop-added-by").await;
    page.click("[data-testid=added-by] button").await;
    page.until(
        "the group gone",
        &format!("!document.querySelector(\".room-item[data-room='{group}']\")"),
    )
    .await;
    let (_, rooms) = app.get(&alice, "/rooms").await;
    assert_eq!(rooms["rooms"], serde_json::json!([]), "she left: {rooms}");
    page.close().await;
}
