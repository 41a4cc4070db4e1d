//! The conversation on a phone (390×844): a header whose room name has room, a message
//! toolbar that goes away when you tap elsewhere, and a room list that a tap beside it
//! closes.

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, PointerAction, TouchActions};

use super::chat::PHONE;
use super::{Browser, driver};
use crate::support::spawn_app_as_shipped;

impl Browser {
    /// Taps the first element matching `css` with a finger (a touch pointer, not a mouse);
    /// if the page replaced it between finding and tapping (lists re-render as receipts and
    /// members arrive), finds it again.
    async fn tap(&self, css: &str) {
        for attempt in 0.. {
            let element = self.find(css).await;
            let at = PointerAction::MoveToElement { element, duration: None, x: 0.0, y: 0.0 };
            match self.try_tap_at(at).await {
                Ok(()) => return,
                Err(error) if attempt < 20 && error.to_string().contains("stale element") => {}
                Err(error) => panic!("tap {css:?}: {error}"),
            }
        }
    }

    /// Touches the screen where `at` (a pointer move) says, and lifts the finger.
    async fn tap_at(&self, at: PointerAction) {
        self.try_tap_at(at).await.expect("tap");
    }

    /// A tap where `at` says, or the error that kept it from happening.
    async fn try_tap_at(&self, at: PointerAction) -> Result<(), fantoccini::error::CmdError> {
        let finger = TouchActions::new("finger".to_owned())
            .then(at)
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        self.client.perform_actions(finger).await
    }
}

#[tokio::test]
async fn on_a_phone_the_header_fits_the_toolbar_goes_and_a_tap_beside_the_room_list_closes_it() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let carol = app.register_displayed("carol", "Carol").await;
    let room = app.create_room(&alice, "Weekend hiking plans", "private", &[&bob, &carol]).await;
    app.send(&alice, &room, "Saturday at nine?").await;
    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.sign_in(&app, &bob).await;
    let size =
        phone.client.execute("return [window.innerWidth, window.innerHeight];", vec![]).await;
    assert_eq!(size.expect("size"), serde_json::json!([390, 844]), "a phone's screen");
    phone.open_room(&room).await;
    phone.shows_message("Saturday at nine?").await;

    // The room's name shows whole, the member count on one line of its own below it.
    phone
        .until(
            "the header fits",
            "(() => { const t = document.querySelector('#room-title'), m = document.querySelector('[data-testid=room-meta]'); \
             return t.textContent === 'Weekend hiking plans' && t.scrollWidth <= t.clientWidth \
             && m.textContent.startsWith('3 members') && m.getBoundingClientRect().height < 22 \
             && m.getBoundingClientRect().top >= t.getBoundingClientRect().bottom - 2; })()",
        )
        .await;
    phone.until_still().await;
    phone.screenshot("phone-room-header").await;

    // A tapped message shows its toolbar; a tap elsewhere puts it away.
    let toolbar = "getComputedStyle(document.querySelector('.message .actions')).opacity";
    phone.tap(".message .body").await;
    phone.until("the toolbar shows", &format!("{toolbar} === '1'")).await;
    phone.screenshot("phone-message-toolbar").await;
    phone.tap("#room-title").await;
    phone.until("the toolbar goes", &format!("{toolbar} === '0'")).await;
    // Safari moves no focus on a tap on something that takes none: the page itself must
    // let go of the message then. Such a tap is played here as its bare pointer event.
    phone.tap(".message .body").await;
    phone.until("the toolbar shows again", &format!("{toolbar} === '1'")).await;
    phone
        .client
        .execute(
            "document.querySelector('#room-title').dispatchEvent(new PointerEvent('pointerdown', { bubbles: true, pointerType: 'touch' }));",
            vec![],
        )
        .await
        .expect("pointerdown");
    phone
        .until("the toolbar goes after a tap that moves no focus", &format!("{toolbar} === '0'"))
        .await;

    // The open room list covers most of the screen; a tap on what shows beside it closes it.
    phone.click("button.menu-toggle").await;
    phone
        .until(
            "room list open",
            "document.querySelector('.layout').classList.contains('sidebar-open')",
        )
        .await;
    phone.until_still().await;
    let beside = phone
        .client
        .execute(
            "const s = document.querySelector('.sidebar').getBoundingClientRect(); return [s.right, window.innerWidth];",
            vec![],
        )
        .await
        .expect("sizes");
    let (right, width) = (beside[0].as_f64().expect("right"), beside[1].as_f64().expect("width"));
    assert!(right + 20.0 < width, "the conversation shows beside the list: {right} of {width}");
    let x = ((right + width) / 2.0).round();
    phone.tap_at(PointerAction::MoveTo { duration: None, x, y: 400.0 }).await;
    phone
        .until(
            "room list closed",
            "!document.querySelector('.layout').classList.contains('sidebar-open') && !document.querySelector('.main').inert",
        )
        .await;
    phone.close().await;
}
