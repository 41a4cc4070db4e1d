//! Right-to-left names and messages keep to their place. A name cannot hold a direction
//! override (the server refuses it), but an Arabic or Hebrew name is ordinary, and without
//! isolation the text after it would be drawn as part of it: in `سارة 42: مرحبا` the digits
//! take the Arabic side, and the colon and the message after them land on the left. The
//! client puts every name in a <bdi> and every message body under `dir="auto"`.

use serde_json::json;

use super::chat::DESKTOP;
use super::driver;
use crate::support::spawn_app;

/// An Arabic display name that ends in digits, the case that reorders most.
const ARABIC_NAME: &str = "سارة 42";
/// A Hebrew room name, also ending in a digit.
const HEBREW_ROOM: &str = "חדשות 7";
const ARABIC_MESSAGE: &str = "مرحبا 123";

#[tokio::test]
async fn right_to_left_names_and_messages_are_isolated_in_the_list_and_the_sidebar() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let sara = app.register_displayed("sara", ARABIC_NAME).await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&sara, HEBREW_ROOM, "public", &[&bob]).await;
    app.send(&sara, &room, ARABIC_MESSAGE).await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &bob).await;
    page.open_room(&room).await;
    page.shows_message(ARABIC_MESSAGE).await;
    let item = format!(".room-item[data-room='{room}']");
    let preview_text = format!("{ARABIC_NAME}: {ARABIC_MESSAGE}");
    // The sidebar names the author once the page has learnt who wrote the last message.
    page.until(
        "the author in the preview",
        &format!(
            "document.querySelector(\"{item} .preview\").textContent === {}",
            json!(preview_text)
        ),
    )
    .await;

    // Where the preview draws the author's name and the colon after it, found by their
    // places in its text whatever elements hold them.
    let script = format!(
        "const item = document.querySelector(\"{item}\");
         const preview = item.querySelector('.preview');
         const span = (from, to) => {{
           const walker = document.createTreeWalker(preview, NodeFilter.SHOW_TEXT);
           const range = document.createRange();
           let seen = 0;
           for (let node = walker.nextNode(); node; node = walker.nextNode()) {{
             const length = node.textContent.length;
             if (from >= seen && from < seen + length) range.setStart(node, from - seen);
             if (to > seen && to <= seen + length) {{ range.setEnd(node, to - seen); break; }}
             seen += length;
           }}
           return range.getBoundingClientRect();
         }};
         const name = {name};
         const author = span(0, name.length);
         const colon = span(name.length, name.length + 1);
         const message = document.querySelector('.message');
         return {{
           list_author: [message.querySelector('.author').tagName, message.querySelector('.author').textContent],
           list_body_dir: message.querySelector('.body').getAttribute('dir'),
           sidebar_room: [item.querySelector('.name').tagName, item.querySelector('.name').textContent],
           sidebar_isolates: [...preview.querySelectorAll('bdi')].map((e) => e.textContent),
           title: document.querySelector('#room-title bdi').textContent,
           colon_after_author: author.right <= colon.left + 0.5,
         }};",
        name = json!(ARABIC_NAME),
    );
    let seen = page.client.execute(&script, vec![]).await.expect("script runs");
    page.screenshot("right-to-left-names").await;
    assert_eq!(
        seen,
        json!({
            "list_author": ["BDI", ARABIC_NAME],
            "list_body_dir": "auto",
            "sidebar_room": ["BDI", HEBREW_ROOM],
            "sidebar_isolates": [ARABIC_NAME, ARABIC_MESSAGE],
            "title": HEBREW_ROOM,
            "colon_after_author": true,
        })
    );
    page.close().await;
}
