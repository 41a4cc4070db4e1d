//! Profiles: display name and bio with their rules, avatars cropped to a 256-pixel square,
//! and every change announced live to the user's own connections and to everyone who
//! shares a room with them, but to no one else.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use futures_util::future::join_all;

use super::fixtures;
use super::{QUIET, Reply, error_code, fetch, send_file, stored_files, text};
use crate::support::{TestApp, TestUser, each_store, spawn_app, spawn_nodes};

async fn patch_me(app: &TestApp, user: &TestUser, body: Value) -> (StatusCode, Value) {
    app.call(Method::PATCH, "/me", Some(user), Some(body)).await
}

async fn set_avatar(app: &TestApp, user: &TestUser, name: &str, bytes: &[u8]) -> Reply {
    send_file(app, user, Method::PUT, "/me/avatar", name, "application/octet-stream", bytes).await
}

/// The caller as `/me` shows them, without `admin` (which only `/me` says), so that it
/// compares with the user other answers carry.
async fn me(app: &TestApp, user: &TestUser) -> Value {
    let (status, mut body) = app.get(user, "/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object_mut().and_then(|me| me.remove("admin")), Some(Value::Bool(false)));
    body
}

#[each_store]
async fn a_user_sets_their_display_name_and_bio_and_everyone_sees_them() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let (status, user) = patch_me(
        &app,
        &alice,
        json!({ "display_name": "  Alice A.  ", "bio": "Tea & maps\nLondon" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["bio"], "Tea & maps\nLondon");
    assert_eq!(me(&app, &alice).await, user);
    let (status, seen) = app.get(&bob, &format!("/users/{}", alice.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, user);

    // Each field is optional: changing one keeps the other.
    let (status, user) = patch_me(&app, &alice, json!({ "bio": "" })).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!((user["display_name"].as_str(), user["bio"].as_str()), (Some("Alice A."), Some("")));
    let (status, user) = patch_me(&app, &alice, json!({ "bio": "b".repeat(300) })).await;
    assert_eq!(status, StatusCode::OK, "300 characters is the most a bio holds: {user}");
}

#[each_store]
async fn an_invalid_display_name_or_bio_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let before = me(&app, &alice).await;
    let cases = [
        (json!({ "bio": "b".repeat(301) }), "invalid_bio", "bio"),
        (json!({ "bio": "nul \u{0} inside" }), "invalid_bio", "bio"),
        (json!({ "display_name": "" }), "invalid_display_name", "display_name"),
        (json!({ "display_name": "   " }), "invalid_display_name", "display_name"),
        (json!({ "display_name": "n".repeat(65) }), "invalid_display_name", "display_name"),
        (json!({ "display_name": "Alice", "bio": "b".repeat(301) }), "invalid_bio", "bio"),
    ];
    for (body, code, field) in cases {
        let (status, reply) = patch_me(&app, &alice, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        assert_eq!(error_code(&reply), code, "{body}");
        assert_eq!(reply["error"]["field"], field, "{body}");
    }
    assert_eq!(me(&app, &alice).await, before, "no refused change was applied");
}

/// Fetches a user's avatar by the URL their profile gives and decodes it.
async fn avatar_picture(app: &TestApp, viewer: &TestUser, user: &Value) -> image::RgbImage {
    let url = text(user, "avatar_url");
    let reply = fetch(app, viewer, url).await;
    assert_eq!(reply.status, StatusCode::OK, "{url}");
    assert!(reply.header("content-type").starts_with("image/"), "{url}");
    image::load_from_memory(&reply.bytes).expect("the avatar decodes").to_rgb8()
}

fn is_red(pixel: &image::Rgb<u8>) -> bool {
    pixel[0] > 200 && pixel[1] < 60 && pixel[2] < 60
}

#[each_store]
async fn an_avatar_is_the_centre_square_of_the_picture_at_256_pixels() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    assert_eq!(me(&app, &alice).await["avatar_url"], Value::Null);

    let reply = set_avatar(&app, &alice, "me.png", &fixtures::blue_red_blue(200)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let user = reply.json();
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(me(&app, &alice).await, user);
    let avatar = avatar_picture(&app, &bob, &user).await;
    assert_eq!(avatar.dimensions(), (256, 256));
    for (x, y) in [(2, 2), (253, 2), (2, 253), (253, 253), (128, 128)] {
        let pixel = avatar.get_pixel(x, y);
        assert!(
            is_red(pixel),
            "({x}, {y}) is {pixel:?}: the red centre square, cropped, not squashed"
        );
    }

    // A new picture is a new URL; the old one is not reused.
    let reply = set_avatar(&app, &alice, "me.jpg", &fixtures::jpeg(300, 500)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let replaced = reply.json();
    assert_ne!(replaced["avatar_url"], user["avatar_url"]);
    assert_eq!(avatar_picture(&app, &bob, &replaced).await.dimensions(), (256, 256));
    assert!(!is_red(avatar_picture(&app, &bob, &replaced).await.get_pixel(128, 128)));

    let (status, cleared) = app.delete(&alice, "/me/avatar").await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["avatar_url"], Value::Null);
    assert_eq!(me(&app, &alice).await["avatar_url"], Value::Null);
    let reply = fetch(&app, &bob, &format!("/api/v1/users/{}/avatar", alice.id)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[each_store]
async fn an_avatar_that_is_not_a_picture_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (name, bytes) in [
        ("me.png", fixtures::binary(500)),
        ("me.svg", fixtures::SVG.to_vec()),
        ("me.webm", fixtures::webm("V_VP8", &fixtures::silence(300))),
    ] {
        let reply = set_avatar(&app, &alice, name, &bytes).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", reply.json());
        assert_eq!(error_code(&reply.json()), "invalid_image", "{name}");
    }
    assert_eq!(me(&app, &alice).await["avatar_url"], Value::Null);
}

/// Every kind of profile change reaches Alice's own connection and Bob, who shares a room
/// with her, as `user.updated` with her profile as it now is; Carol shares no room with
/// her and hears nothing.
#[each_store]
async fn a_profile_change_is_announced_to_the_user_and_to_those_sharing_a_room_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.create_room(&alice, "team", "private", &[&bob]).await;
    let mut alice_ws = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut carol_ws = app.connect(&carol).await;

    let (status, named) = patch_me(&app, &alice, json!({ "display_name": "Alice A." })).await;
    assert_eq!(status, StatusCode::OK, "{named}");
    let (status, described) = patch_me(&app, &alice, json!({ "bio": "Hello" })).await;
    assert_eq!(status, StatusCode::OK, "{described}");
    let pictured = set_avatar(&app, &alice, "me.png", &fixtures::png(300, 300)).await.json();
    assert_ne!(pictured["avatar_url"], Value::Null, "{pictured}");
    let (status, unpictured) = app.delete(&alice, "/me/avatar").await;
    assert_eq!(status, StatusCode::OK, "{unpictured}");

    for ws in [&mut alice_ws, &mut bob_ws] {
        for profile in [&named, &described, &pictured, &unpictured] {
            let frame = ws.recv().await;
            assert_eq!(frame["type"], "user.updated", "{frame}");
            assert_eq!(&frame["user"], profile);
        }
    }
    carol_ws.expect_silence(QUIET).await;
}

/// A user in no room at all still hears of their own changes, on every connection.
#[each_store]
async fn a_user_sharing_no_room_hears_of_their_own_profile_change_on_every_connection() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut phone = app.connect(&alice).await;
    let mut laptop = app.connect(&alice).await;
    let mut bob_ws = app.connect(&bob).await;

    let (status, user) = patch_me(&app, &alice, json!({ "bio": "new here" })).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    for ws in [&mut phone, &mut laptop] {
        let frame = ws.recv().await;
        assert_eq!(frame["type"], "user.updated", "{frame}");
        assert_eq!(frame["user"], user);
    }
    bob_ws.expect_silence(QUIET).await;
}

const AVATAR_LIMIT: usize = 10 * 1024 * 1024;

/// Puts an avatar of `size` bytes (a real picture with bytes after its end, which decoders
/// ignore) and expects 413, with the profile unchanged.
async fn refuses_an_avatar_of(size: usize) {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut bytes = fixtures::png(64, 64);
    bytes.resize(size, 0);
    let reply = set_avatar(&app, &alice, "me.png", &bytes).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes: {}", reply.json());
    assert_eq!(error_code(&reply.json()), "payload_too_large", "{size} bytes");
    assert_eq!(reply.json()["error"]["message"], "Avatars may be at most 10 MB.", "{size} bytes");
    assert_eq!(me(&app, &alice).await["avatar_url"], Value::Null);
}

#[each_store]
async fn an_avatar_just_under_ten_megabytes_is_accepted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut bytes = fixtures::png(64, 64);
    bytes.resize(AVATAR_LIMIT - 1024, 0);
    let reply = set_avatar(&app, &alice, "me.png", &bytes).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
}

#[each_store]
async fn an_avatar_far_over_ten_megabytes_is_refused_with_413() {
    refuses_an_avatar_of(AVATAR_LIMIT + 2 * 1024 * 1024).await;
}

/// The limit is on the picture, not on the multipart body around it.
#[each_store]
async fn an_avatar_just_over_ten_megabytes_is_refused_with_413() {
    refuses_an_avatar_of(AVATAR_LIMIT + 1).await;
}

#[each_store]
async fn avatars_swapped_at_once_leave_one_picture_on_disk_the_current_one() {
    // On PostgreSQL over two servers sharing the database and the media directory.
    let nodes = &spawn_nodes().await;
    let app = &nodes[0];
    let alice = app.register("alice").await;
    let pictures: Vec<Vec<u8>> = (0..6).map(|i| fixtures::png(40 + i, 40)).collect();
    let replies = join_all(pictures.iter().enumerate().map(|(i, picture)| {
        let node = &nodes[i % nodes.len()];
        let alice = &alice;
        async move { set_avatar(node, alice, "me.png", picture).await }
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    }

    let current = me(app, &alice).await;
    let url = text(&current, "avatar_url");
    let key = url.split("v=").nth(1).expect("the avatar's key is in its URL");
    let avatars = stored_files(app, "avatar-");
    let names: Vec<String> = avatars
        .iter()
        .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [key.to_owned()], "each swap removed the picture it replaced");
    assert_eq!(fetch(app, &alice, url).await.status, StatusCode::OK);
}

/// Every directory and file the server makes under its data directory is its user's
/// alone, whatever the umask: the database and its journal, the lock, uploads, thumbnails
/// and avatars. A data directory an earlier version left open to others is closed.
#[each_store]
async fn the_data_directory_is_private_to_the_servers_user() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("temp dir");
    let data_dir = parent.path().join("data");
    std::fs::create_dir(&data_dir).expect("data dir");
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = data_dir.clone();
    let app = crate::support::spawn_app_with(move |settings| settings.data_dir = dir).await;
    let alice = app.register("alice").await;
    crate::media::upload(&app, &alice, "photo.jpg", &fixtures::jpeg(400, 300)).await;
    crate::media::upload(&app, &alice, "notes.txt", b"some notes").await;
    let reply = set_avatar(&app, &alice, "me.png", &fixtures::png(300, 300)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());

    let mut seen = Vec::new();
    let mut pending = vec![data_dir.clone()];
    while let Some(path) = pending.pop() {
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        let relative = path.strip_prefix(&data_dir).expect("under the data dir").display();
        if path.is_dir() {
            assert_eq!(mode, 0o700, "directory {relative} is {mode:o}");
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        } else {
            assert_eq!(mode, 0o600, "file {relative} is {mode:o}");
        }
        seen.push(relative.to_string());
    }
    // Two uploads, a thumbnail and an avatar at least, besides the directories.
    assert!(seen.len() >= 7, "the server wrote its files: {seen:?}");
}
