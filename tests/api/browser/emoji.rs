//! Emoji in the web client: the picker (loaded on first use, searched, used by keyboard,
//! with skin tones and the recently used first), `:shortcode:` completion in the composer,
//! and reactions chosen from the picker.

use fantoccini::key::Key;
use serde_json::json;

use super::chat::{DESKTOP, two_in_a_dm};
use super::{Browser, Driver, driver};
use crate::support::{TestApp, spawn_app_as_shipped};

/// Whether the page has requested the picker's module or its data.
const LOADED: &str = "performance.getEntriesByType('resource').filter(e => \
                      e.name.includes('/js/views/emoji.js') || e.name.includes('/emoji/data.json')).length";

/// The composer's text.
const COMPOSER: &str = "document.querySelector('[data-testid=composer]').value";

impl Browser {
    /// Opens the emoji picker from the composer's button and waits for its first emoji.
    async fn open_picker(&self) {
        self.click("[data-testid=emoji-button]").await;
        self.find(".emoji-picker .emoji-cell").await;
    }

    /// Searches the open picker and clicks the emoji named `name` among the results.
    async fn pick(&self, query: &str, name: &str) {
        self.type_into("[data-testid=emoji-search]", query).await;
        self.click(&format!("[data-testid=emoji-results] .emoji-cell[aria-label={}]", json!(name)))
            .await;
        self.until("the picker closed", "!document.querySelector('.emoji-picker')").await;
    }

    async fn composer_is(&self, text: &str) {
        self.until(&format!("composer holds {text}"), &format!("{COMPOSER} === {}", json!(text)))
            .await;
    }
}

/// One person signed in, in a room of their own: for what needs no one else to see it.
async fn alone_in_a_room(app: &TestApp, driver: &mut Driver) -> Browser {
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(app, &alice).await;
    page.open_room(&room).await;
    page
}

#[tokio::test]
async fn the_picker_loads_on_first_use_and_a_searched_emoji_is_sent_and_comes_first_next_time() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    assert_eq!(alice.eval(LOADED).await, 0, "nothing of the picker comes with the page");

    alice.open_picker().await;
    assert_eq!(alice.eval(LOADED).await, 2, "the picker's module and its data, once each");
    // Only the categories in view are drawn.
    let drawn = alice.eval("document.querySelectorAll('.emoji-picker .emoji-cell').length").await;
    assert!(drawn.as_u64().is_some_and(|n| n > 0 && n < 600), "{drawn} emoji drawn");
    assert_eq!(alice.eval("document.activeElement.dataset.testid").await, "emoji-search");
    alice.screenshot("desktop-emoji-picker").await;
    // The tabs follow the list, and one jumps to its category, drawn then.
    let current =
        "document.querySelector('.emoji-tab[aria-current=true]')?.getAttribute('aria-label')";
    assert_eq!(alice.eval(current).await, "Smileys & Emotion");
    alice.click(".emoji-tab[aria-label=Flags]").await;
    alice.until("the flags drawn", &format!("{current} === 'Flags' && !!document.querySelector('.emoji-cell[aria-label=\"flag: Japan\"]')")).await;

    alice.pick("rock", "rocket").await;
    alice.composer_is("🚀").await;
    assert_eq!(alice.eval("document.activeElement.dataset.testid").await, "composer");
    alice.say(" to the moon").await;
    bob.shows_message("🚀 to the moon").await;

    // Next time the rocket comes first, under Recently used.
    alice.open_picker().await;
    assert_eq!(alice.text(".emoji-picker .emoji-section h3").await, "Recently used");
    assert_eq!(
        alice.eval("document.querySelector('.emoji-picker .emoji-cell').textContent").await,
        "🚀"
    );
    alice.screenshot("desktop-emoji-picker-recent").await;
    // A click elsewhere closes it.
    alice.click("[data-testid=composer]").await;
    alice.until("the picker closed", "!document.querySelector('.emoji-picker')").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_picker_is_used_by_keyboard_and_escape_gives_the_focus_back() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = alone_in_a_room(&app, &mut driver).await;
    alice.open_picker().await;
    let focused = "document.activeElement.getAttribute('aria-label')";
    alice.press(Key::Down).await;
    assert_eq!(alice.eval(focused).await, "grinning face");
    alice.press(Key::Right).await;
    assert_eq!(alice.eval(focused).await, "grinning face with big eyes");
    // Down keeps the column: eight to a row.
    alice.press(Key::Down).await;
    assert_eq!(alice.eval(focused).await, "upside-down face");
    alice.press(Key::Enter).await;
    alice.composer_is("🙃").await;

    // Enter in the search box takes the best match.
    alice.open_picker().await;
    alice.type_into("[data-testid=emoji-search]", "party popper").await;
    alice
        .until(
            "the party popper found",
            "document.querySelector('[data-testid=emoji-results] .emoji-cell')?.getAttribute('aria-label') === 'party popper'",
        )
        .await;
    alice.press(Key::Enter).await;
    alice.composer_is("🙃🎉").await;

    alice.open_picker().await;
    alice.press(Key::Escape).await;
    alice.until("the picker closed", "!document.querySelector('.emoji-picker')").await;
    assert_eq!(alice.eval("document.activeElement.dataset.testid").await, "emoji-button");
    alice.close().await;
}

#[tokio::test]
async fn a_skin_tone_applies_to_the_emoji_that_take_one_and_is_remembered() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let alice = alone_in_a_room(&app, &mut driver).await;
    alice.open_picker().await;
    alice.click("[data-testid=emoji-tone]").await;
    alice.click(".emoji-tones button[aria-label='Medium skin tone']").await;
    alice.type_into("[data-testid=emoji-search]", "thumbs").await;
    let cell = |name: &str| {
        format!(
            "document.querySelector('[data-testid=emoji-results] .emoji-cell[aria-label=\"{name}\"]')?.textContent"
        )
    };
    alice.until("the thumb takes the tone", &format!("{} === '👍🏽'", cell("thumbs up"))).await;
    alice.screenshot("desktop-emoji-picker-skin-tone").await;
    alice.click("[data-testid=emoji-results] .emoji-cell[aria-label='thumbs up']").await;
    alice.composer_is("👍🏽").await;

    // An emoji without skin tones stays as it is; the tone is remembered, and so is the
    // thumb, with its tone, as the most recently used.
    alice.open_picker().await;
    assert_eq!(
        alice
            .eval("document.querySelector('[data-testid=emoji-tone]').getAttribute('aria-label')")
            .await,
        "Skin tone: Medium skin tone"
    );
    assert_eq!(
        alice.eval("document.querySelector('.emoji-picker .emoji-cell').textContent").await,
        "👍🏽"
    );
    alice.pick("rocket", "rocket").await;
    alice.composer_is("👍🏽🚀").await;
    // People holding hands take the tone on both people.
    alice.open_picker().await;
    alice.pick("holding hands", "people holding hands").await;
    alice.composer_is("👍🏽🚀🧑🏽‍🤝‍🧑🏽").await;
    alice.close().await;
}

#[tokio::test]
async fn a_shortcode_is_completed_from_the_list_or_replaced_when_typed_whole() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    let composer = "[data-testid=composer]";
    let list = "#mention-suggestions";

    // `:` and two letters suggest; Tab takes the first, the arrow keys move.
    alice.type_into(composer, ":tad").await;
    alice
        .until("tada suggested", &format!("!document.querySelector('{list}').hidden && document.querySelector('{list} li').textContent.includes(':tada:')"))
        .await;
    alice.screenshot("desktop-emoji-completion").await;
    alice.press(Key::Tab).await;
    alice.composer_is("🎉").await;

    // A whole shortcode becomes its emoji as its closing colon is typed.
    alice.type_into(composer, " :rocket: ").await;
    alice.composer_is("🎉 🚀 ").await;

    // Escape dismisses the list and leaves the text; Down and Enter take the second.
    alice.type_into(composer, ":hear").await;
    alice.until("suggestions", &format!("!document.querySelector('{list}').hidden")).await;
    alice.press(Key::Escape).await;
    alice.until("no suggestions", &format!("document.querySelector('{list}').hidden")).await;
    alice.composer_is("🎉 🚀 :hear").await;
    alice.type_into(composer, "t").await;
    alice.until("suggestions again", &format!("!document.querySelector('{list}').hidden")).await;
    let second = alice.eval(&format!("document.querySelectorAll('{list} li')[1].querySelector('.suggestion-emoji').textContent")).await;
    let second = second.as_str().expect("a second suggestion").to_owned();
    alice.press(Key::Down).await;
    alice.press(Key::Enter).await;
    alice.composer_is(&format!("🎉 🚀 {second}")).await;

    // With the list closed, Enter sends as ever; a colon in plain text is left alone.
    alice.say(" at 10:30:00").await;
    bob.shows_message(&format!("🎉 🚀 {second} at 10:30:00")).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_reaction_chosen_in_the_picker_reaches_the_other_side_and_joins_the_quick_row() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    let message = app.send(&alice_user, &room, "Guacamole tonight?").await;
    let id = message["id"].as_str().expect("id").to_owned();
    alice.open_room(&room).await;
    bob.open_room(&room).await;
    bob.shows_message("Guacamole tonight?").await;

    let actions = format!(".message[data-id='{id}'] .actions");
    let quick = format!(
        "[...document.querySelectorAll(\"{actions} .picker button\")].map(b => b.getAttribute('aria-label'))"
    );
    // The focus shows a message's actions (built as it comes), as a pointer over it would.
    bob.eval(&format!("document.querySelector(\".message[data-id='{id}']\").focus(), document.querySelector(\"{actions} [aria-label='Add reaction']\").focus()"))
        .await;
    bob.click(&format!("{actions} [aria-label='Add reaction']")).await;
    assert_eq!(
        bob.eval(&quick).await,
        json!([
            "React 👍",
            "React ❤️",
            "React 😂",
            "React 🎉",
            "React 😮",
            "React 😢",
            "More reactions"
        ])
    );
    bob.click(&format!("{actions} [data-testid=more-reactions]")).await;
    bob.find(".emoji-picker .emoji-cell").await;
    bob.screenshot("desktop-emoji-reaction-picker").await;
    bob.pick("avocado", "avocado").await;

    let reaction =
        "[...document.querySelectorAll('.message .reaction')].some(r => r.textContent === '🥑 1')";
    alice.until("alice sees the avocado", reaction).await;
    bob.until("bob sees the avocado", reaction).await;
    alice.screenshot("desktop-emoji-reaction").await;

    // The avocado now leads the quick row, ahead of the six it started with.
    bob.eval(&format!("document.querySelector(\".message[data-id='{id}']\").focus(), document.querySelector(\"{actions} [aria-label='Add reaction']\").focus()"))
        .await;
    bob.click(&format!("{actions} [aria-label='Add reaction']")).await;
    bob.until("the avocado first", &format!("{quick}[0] === 'React 🥑'")).await;
    assert_eq!(bob.eval(&format!("{quick}.length")).await, 7);
    alice.close().await;
    bob.close().await;
}
