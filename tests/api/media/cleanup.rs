//! Files go when nothing needs them: with their message when it is deleted, and on their
//! own when they were never sent within the configured time.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::fixtures;
use super::{fetch_status, send_with_files, stored_files, text, upload};
use crate::support::{each_store, eventually, spawn_app, spawn_app_with};

#[each_store]
async fn deleting_a_message_removes_its_files() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let picture = upload(&app, &alice, "photo.png", &fixtures::png(40, 40)).await;
    let document = upload(&app, &alice, "doc.bin", &fixtures::binary(700)).await;
    let (status, message) =
        send_with_files(&app, &alice, &room, "", &[text(&picture, "id"), text(&document, "id")])
            .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let urls = [text(&picture, "url"), text(&picture, "thumbnail_url"), text(&document, "url")];
    for url in urls {
        assert_eq!(fetch_status(&app, &bob, url).await, StatusCode::OK, "{url} before");
    }

    let (status, tombstone) =
        app.delete(&alice, &format!("/rooms/{room}/messages/{}", text(&message, "id"))).await;
    assert_eq!(status, StatusCode::OK, "{tombstone}");
    assert_eq!(tombstone["attachments"], json!([]), "the tombstone carries no files");
    for user in [&alice, &bob] {
        for url in urls {
            assert_eq!(fetch_status(&app, user, url).await, StatusCode::NOT_FOUND, "{url} after");
        }
    }
}

/// Uploads never sent are swept once they are older than the TTL; sent ones stay. The TTL
/// is a whole second here: sub-second TTLs are not honoured (see the next test).
#[each_store]
async fn an_upload_never_sent_is_removed_while_a_sent_one_stays() {
    let app = spawn_app_with(|settings| {
        settings.unattached_ttl = Duration::from_secs(1);
        settings.housekeeping_interval = Duration::from_millis(100);
    })
    .await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let sent = upload(&app, &alice, "sent.png", &fixtures::png(40, 40)).await;
    let (status, message) = send_with_files(&app, &alice, &room, "", &[text(&sent, "id")]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let orphan = upload(&app, &alice, "orphan.png", &fixtures::png(40, 40)).await;
    let orphan_id = text(&orphan, "id");
    assert_eq!(
        stored_files(&app, orphan_id).len(),
        2,
        "the orphan and its thumbnail are on disk at first: {:?}",
        stored_files(&app, "")
    );

    eventually("the unsent upload is gone", || async {
        (fetch_status(&app, &alice, text(&orphan, "url")).await == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    assert_eq!(
        fetch_status(&app, &alice, text(&orphan, "thumbnail_url")).await,
        StatusCode::NOT_FOUND
    );
    eventually("the unsent upload's files leave the disk", || async {
        stored_files(&app, orphan_id).is_empty().then_some(())
    })
    .await;

    // The sent file is older than the orphan was, so it would have gone first if sending
    // did not keep it.
    assert_eq!(fetch_status(&app, &alice, text(&sent, "url")).await, StatusCode::OK);
    assert_eq!(fetch_status(&app, &alice, text(&sent, "thumbnail_url")).await, StatusCode::OK);
    assert_eq!(stored_files(&app, text(&sent, "id")).len(), 2);
}

/// An upload is kept for its whole TTL, even one shorter than a second.
#[each_store]
async fn an_upload_never_sent_is_kept_until_its_ttl_has_passed() {
    let ttl = Duration::from_millis(900);
    let app = spawn_app_with(|settings| {
        settings.unattached_ttl = ttl;
        settings.housekeeping_interval = Duration::from_millis(50);
    })
    .await;
    let alice = app.register("alice").await;
    let started = tokio::time::Instant::now();
    let file = upload(&app, &alice, "draft.bin", &fixtures::binary(300)).await;

    eventually("the unsent upload is gone", || async {
        (fetch_status(&app, &alice, text(&file, "url")).await == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    let lived = started.elapsed();
    assert!(lived >= ttl, "removed {lived:?} after the upload began, before its TTL of {ttl:?}");
}
