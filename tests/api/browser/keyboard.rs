//! The conversation without a mouse: messages take the focus, their actions are reached with
//! Tab, and a re-render leaves the focus where it was.

use fantoccini::key::Key;

use super::chat::two_in_a_dm;
use super::{Browser, driver};
use crate::support::spawn_app_as_shipped;

impl Browser {
    /// Presses a key in whatever has the focus. The list re-renders as receipts come, and
    /// puts the focus on the new copy of the element: then it is found again. A press that
    /// meets the re-render midway can also be refused as "not interactable" though the
    /// element is fine a moment later (seen with two browser tests at once on 2 cores).
    pub(super) async fn press(&self, key: Key) {
        let key: char = key.into();
        for attempt in 0.. {
            let focused = self.client.active_element().await.expect("something has the focus");
            match focused.send_keys(&key.to_string()).await {
                Ok(()) => return,
                Err(error) if attempt < 20 && is_transient(&error.to_string()) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(error) => panic!("press {key:?}: {error}"),
            }
        }
    }

    /// A JavaScript expression's value in the page, as JSON.
    pub(super) async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(&format!("return ({script});"), vec![]).await.expect("script runs")
    }
}

/// Whether a refused key press is worth another try, as the page settles.
fn is_transient(error: &str) -> bool {
    error.contains("stale element") || error.contains("not interactable")
}

/// The focused element's aria-label and the id of the message it is in.
const FOCUS: &str = "[document.activeElement.getAttribute('aria-label'), document.activeElement.closest('.message')?.dataset.id ?? null]";

#[tokio::test]
async fn a_message_s_actions_are_reached_by_keyboard_and_keep_the_focus_as_messages_arrive() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    app.send(&alice_user, &room, "first").await;
    let second = app.send(&alice_user, &room, "second").await;
    let second_id = second["id"].as_str().expect("id");
    bob.open_room(&room).await;
    bob.shows_message("second").await;

    // From the list, Tab reaches the first message and the arrow keys the next one; its
    // hidden actions are in the tab order and show once one of them has the focus.
    bob.eval("document.querySelector('.messages').focus()").await;
    bob.press(Key::Tab).await;
    assert_eq!(bob.eval("document.activeElement.matches('.message')").await, true);
    bob.press(Key::Down).await;
    assert_eq!(bob.eval(FOCUS).await[1], second_id);
    let actions = format!(".message[data-id='{second_id}'] .actions");
    assert_eq!(
        bob.eval(&format!("getComputedStyle(document.querySelector(\"{actions}\")).opacity")).await,
        "1"
    );
    bob.press(Key::Tab).await;
    assert_eq!(bob.eval(FOCUS).await, serde_json::json!(["Reply", second_id]));
    bob.screenshot("desktop-message-actions-by-keyboard").await;

    // A new message re-renders the list; the focus stays on the same button.
    alice.open_room(&room).await;
    alice.say("third").await;
    bob.shows_message("third").await;
    assert_eq!(bob.eval(FOCUS).await, serde_json::json!(["Reply", second_id]));

    bob.press(Key::Enter).await;
    bob.until(
        "replying",
        "document.querySelector('.composer-context .what')?.textContent === 'Replying to Alice: second'",
    )
    .await;
    alice.close().await;
    bob.close().await;
}
