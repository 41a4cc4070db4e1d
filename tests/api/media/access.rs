//! Who may fetch a file: its uploader until it is sent, then the members of the room it was
//! sent to. To anyone else it does not exist (404, never 403), public rooms included.

use reqwest::StatusCode;

use super::fixtures;
use serde_json::json;

use super::{error_code, fetch, fetch_status, history, send_with_files, text, upload};
use crate::support::{described, each_store, spawn_app};

#[each_store]
async fn an_unsent_upload_is_only_its_uploaders() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let file = upload(&app, &alice, "photo.png", &fixtures::png(50, 50)).await;
    let (url, thumbnail) = (text(&file, "url"), text(&file, "thumbnail_url"));

    assert_eq!(fetch_status(&app, &alice, url).await, StatusCode::OK);
    assert_eq!(fetch_status(&app, &alice, thumbnail).await, StatusCode::OK);
    for url in [url, thumbnail] {
        let reply = fetch(&app, &bob, url).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(error_code(&reply.json()), "not_found");
    }
    let anonymous = described::send(app.http.get(format!("http://{}{url}", app.address))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[each_store]
async fn a_file_sent_to_a_private_room_is_for_its_members_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "team", "private", &[&bob]).await;
    let bytes = fixtures::png(50, 50);
    let file = upload(&app, &alice, "photo.png", &bytes).await;
    let (status, message) = send_with_files(&app, &alice, &room, "", &[text(&file, "id")]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");

    for member in [&alice, &bob] {
        let download = fetch(&app, member, text(&file, "url")).await;
        assert_eq!(download.status, StatusCode::OK, "{}", member.username);
        assert!(download.bytes == bytes);
        let thumbnail = text(&file, "thumbnail_url");
        assert_eq!(fetch_status(&app, member, thumbnail).await, StatusCode::OK);
    }
    for url in [text(&file, "url"), text(&file, "thumbnail_url")] {
        assert_eq!(fetch_status(&app, &carol, url).await, StatusCode::NOT_FOUND, "{url}");
    }

    // Bob leaves: the file is no longer his to fetch.
    let (status, body) = app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
    assert!(status.is_success(), "leave: {status} {body}");
    assert_eq!(fetch_status(&app, &bob, text(&file, "url")).await, StatusCode::NOT_FOUND);
}

/// Anyone may read a public room's history, but its files are fetched by members only.
#[each_store]
async fn a_file_sent_to_a_public_room_is_for_its_members_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let (status, _) = app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let file = upload(&app, &alice, "notes.bin", &fixtures::binary(400)).await;
    let (status, message) =
        send_with_files(&app, &alice, &room, "notes", &[text(&file, "id")]).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");

    assert_eq!(fetch_status(&app, &bob, text(&file, "url")).await, StatusCode::OK);
    // Carol sees the message and its file's URL in the history, but cannot fetch it.
    let seen = history(&app, &carol, &room).await;
    assert_eq!(seen.last().expect("the message")["attachments"], json!([file]));
    assert_eq!(fetch_status(&app, &carol, text(&file, "url")).await, StatusCode::NOT_FOUND);
}

#[each_store]
async fn malformed_and_unknown_media_ids_are_404() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let file = upload(&app, &alice, "photo.png", &fixtures::png(10, 10)).await;
    let real = text(&file, "id");
    // Same length and alphabet as a real id, but naming nothing.
    let unknown: String = real.chars().rev().collect();
    let upper = real.to_uppercase();
    for id in [
        "short",
        "uuuuuuuuuuuuuuuuuuuuuuuuuu",
        &upper,
        &unknown,
        &format!("{real}0"),
        "..%2F..%2Fconfab.db",
    ] {
        for suffix in ["", "/thumbnail"] {
            let url = format!("/api/v1/media/{id}{suffix}");
            let reply = fetch(&app, &alice, &url).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{url}: {}", reply.json());
            assert_eq!(error_code(&reply.json()), "not_found", "{url}");
        }
    }
}
