//! Files, voice messages, pictures and profiles in the browser.

use super::chat::two_in_a_dm;
use super::driver;
use crate::support::spawn_app_as_shipped;

/// A picture file on disk for the browser to pick: a 600×300 gradient PNG.
pub(super) fn picture_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let image =
        image::RgbImage::from_fn(600, 300, |x, y| image::Rgb([(x / 3) as u8, (y / 2) as u8, 160]));
    let path = dir.join(name);
    image.save(&path).expect("picture saved");
    path
}

#[tokio::test]
async fn a_voice_message_is_recorded_sent_and_played_by_the_other_side() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;

    alice.click("[data-testid=record]").await;
    alice.until("recording shown", "!document.querySelector('.recorder').hidden").await;
    // Record for two seconds or so, by the recorder's own clock.
    alice
        .until(
            "time counts up to two seconds",
            "document.querySelector('.recorder .elapsed').textContent === '0:02'",
        )
        .await;
    alice.screenshot("desktop-recording").await;
    alice.click_button("Send voice message").await;

    bob.until(
        "a voice message arrives",
        "document.querySelector('.message .attachment.sound audio')",
    )
    .await;
    let shown = bob.text(".message .attachment.sound .duration").await;
    assert!(["0:02", "0:03", "0:04"].contains(&shown.as_str()), "its length is shown: {shown:?}");
    // Keep the player that starts, and how far it got, to tell whether it is the one on
    // screen later and whether it played on.
    bob.client
        .execute(
            "const a = document.querySelector('.message .attachment.sound audio');
             window.player = a; window.heard = 0;
             a.addEventListener('timeupdate', () => { window.heard = Math.max(window.heard, a.currentTime); });
             a.play();",
            vec![],
        )
        .await
        .expect("play");
    bob.until("it plays", "window.heard > 0.2 && !window.player.error").await;
    let heard_before = bob.client.execute("return window.heard;", vec![]).await.expect("heard");

    // A message arriving while it plays re-renders the conversation; the sound plays on.
    alice.say("did you hear it?").await;
    bob.shows_message("did you hear it?").await;
    bob.until(
        "the same player plays on",
        &format!(
            "window.player === document.querySelector('.message .attachment.sound audio') && window.player.isConnected && (window.player.ended || window.heard > {heard_before} + 0.2)"
        ),
    )
    .await;
    bob.screenshot("desktop-voice-message").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_picture_sent_from_the_file_picker_shows_inline_for_both() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let files = tempfile::tempdir().expect("dir");
    let picture = picture_file(files.path(), "sunset.png");
    let (alice, bob, _, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;

    alice
        .find("[data-testid=file-input]")
        .await
        .send_keys(&picture.display().to_string())
        .await
        .expect("file picked");
    alice.until("uploaded", "document.querySelector('.file-chip') && !document.querySelector('.composer button.primary').disabled").await;
    alice.say("look at this").await;
    // Its box is reserved before it loads (600×300 fitted to 320×240), so that the list
    // does not jump when it does.
    bob.until(
        "the picture's box",
        "(() => { const i = document.querySelector('.message .attachment.picture img'); return i && i.getAttribute('width') === '320' && i.getAttribute('height') === '160' && i.getBoundingClientRect().height === 160; })()",
    )
    .await;
    for page in [&alice, &bob] {
        page.until(
            "the picture shows",
            "(() => { const i = document.querySelector('.message .attachment.picture img'); return i && i.complete && i.naturalWidth === 320; })()",
        )
        .await;
    }
    bob.click(".message .attachment.picture").await;
    bob.until("the larger view", "(() => { const i = document.querySelector('dialog.viewer img'); return i && i.complete && i.naturalWidth === 600; })()").await;
    bob.screenshot("desktop-picture").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn an_avatar_change_is_seen_live_by_the_other_side() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let files = tempfile::tempdir().expect("dir");
    let picture = picture_file(files.path(), "me.png");
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    app.send(&alice_user, &room, "hello").await;
    bob.open_room(&room).await;
    bob.shows_message("hello").await;
    assert!(!bob.text(".message .avatar").await.is_empty(), "initials before a picture");

    alice.click(".me-name").await;
    alice
        .find("[data-testid=avatar-input]")
        .await
        .send_keys(&picture.display().to_string())
        .await
        .expect("file picked");
    alice.until("the picture is previewed", "document.querySelector('.avatar-preview img')").await;
    alice.screenshot("desktop-profile").await;
    // It applies once saved.
    alice.click_button("Save").await;
    let expected = format!("/api/v1/users/{}/avatar", alice_user.id);
    bob.until(
        "bob sees alice's picture",
        &format!("(() => {{ const i = document.querySelector('.message img.avatar'); return i && i.getAttribute('src').startsWith('{expected}') && i.complete && i.naturalWidth === 256; }})()"),
    )
    .await;
    bob.until(
        "and in the sidebar",
        &format!("document.querySelector(\".room-item .glyph img[src^='{expected}']\")"),
    )
    .await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn the_member_list_shows_pictures_and_bios_and_follows_changes_while_open() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    bob.open_room(&room).await;
    bob.click_button("Members").await;
    bob.until(
        "both members, each with an avatar",
        "document.querySelectorAll('dialog .members li .avatar').length === 2",
    )
    .await;

    let change =
        serde_json::json!({ "display_name": "Alice Liddell", "bio": "Down the rabbit hole." });
    let (status, _) =
        app.call(reqwest::Method::PATCH, "/me", Some(&alice_user), Some(change)).await;
    assert!(status.is_success());
    bob.until(
        "the open list follows",
        &format!(
            "(() => {{ const li = document.querySelector(\"dialog .members li[data-user='{}']\"); return li && li.textContent.includes('Alice Liddell') && li.querySelector('.bio')?.textContent === 'Down the rabbit hole.'; }})()",
            alice_user.id
        ),
    )
    .await;
    bob.screenshot("desktop-members").await;
    alice.close().await;
    bob.close().await;
}
