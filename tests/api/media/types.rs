//! What a file is comes from its bytes: every recognised kind round-trips with its sniffed
//! type and is shown inline; anything else, whatever its name or claimed type, is served
//! as a plain download.

use reqwest::StatusCode;
use serde_json::Value;

use super::fixtures::{self, HTML, SVG};
use super::{fetch, text, upload, upload_claimed};
use crate::support::{each_store, spawn_app};

/// An upload's answer: the fields every file has, and those only pictures have.
fn assert_described(file: &Value, kind: &str, mime: &str, name: &str, size: usize) {
    let id = text(file, "id");
    assert_eq!(id.len(), 26, "{file}");
    assert_eq!(file["kind"], kind, "{name}: {file}");
    assert_eq!(file["mime"], mime, "{name}: {file}");
    assert_eq!(file["name"], name, "{file}");
    assert_eq!(file["size"], size, "{name}: {file}");
    assert_eq!(file["url"], format!("/api/v1/media/{id}"), "{file}");
    if kind == "image" {
        assert!(file["width"].as_u64().is_some_and(|w| w > 0), "{file}");
        assert!(file["height"].as_u64().is_some_and(|h| h > 0), "{file}");
        assert_eq!(file["thumbnail_url"], format!("/api/v1/media/{id}/thumbnail"), "{file}");
    } else {
        assert_eq!(file["width"], Value::Null, "{name}: {file}");
        assert_eq!(file["height"], Value::Null, "{name}: {file}");
        assert_eq!(file["thumbnail_url"], Value::Null, "{name}: {file}");
    }
}

#[each_store]
async fn every_recognised_kind_is_sniffed_from_its_bytes_and_comes_back_whole_and_inline() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("photo.png", fixtures::png(64, 48), "image", "image/png"),
        ("photo.jpg", fixtures::jpeg(64, 48), "image", "image/jpeg"),
        ("animation.gif", fixtures::gif(64, 48), "image", "image/gif"),
        ("sticker.webp", fixtures::webp(64, 48), "image", "image/webp"),
        ("clip.mp4", fixtures::mp4(b"isom"), "video", "video/mp4"),
        ("clip.webm", fixtures::webm("V_VP8", &fixtures::silence(300)), "video", "video/webm"),
        ("voice.webm", fixtures::webm("A_OPUS", &fixtures::silence(300)), "audio", "audio/webm"),
        ("voice.m4a", fixtures::mp4(b"M4A "), "audio", "audio/mp4"),
        (
            "voice.mp4",
            fixtures::mp4_recording(b"iso5", &[b"soun"], &[0; 300]),
            "audio",
            "audio/mp4",
        ),
        ("song.ogg", fixtures::ogg(), "audio", "audio/ogg"),
        ("song.mp3", fixtures::mp3(), "audio", "audio/mpeg"),
        ("beep.wav", fixtures::wav(), "audio", "audio/wav"),
    ];
    for (name, bytes, kind, mime) in cases {
        let file = upload(&app, &alice, name, &bytes).await;
        assert_described(&file, kind, mime, name, bytes.len());

        let download = fetch(&app, &alice, text(&file, "url")).await;
        assert_eq!(download.status, StatusCode::OK, "{name}");
        assert!(download.bytes == bytes, "{name}: the same bytes come back");
        assert_eq!(download.header("content-type"), mime, "{name}");
        assert_eq!(download.header("content-length"), bytes.len().to_string(), "{name}");
        assert!(
            download
                .header("content-disposition")
                .starts_with(&format!("inline; filename=\"{name}\"")),
            "{name}: {}",
            download.header("content-disposition")
        );
        assert_eq!(download.header("x-content-type-options"), "nosniff", "{name}");
    }
}

#[each_store]
async fn an_unknown_file_is_a_download_under_a_safe_name() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = fixtures::binary(5000);
    let file = upload(&app, &alice, "../../etc/ré<sumé>*.bin", &bytes).await;
    assert_described(&file, "file", "application/octet-stream", "résumé.bin", bytes.len());

    let download = fetch(&app, &alice, text(&file, "url")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(download.bytes == bytes, "the same bytes come back");
    assert_eq!(download.header("content-type"), "application/octet-stream");
    assert_eq!(
        download.header("content-disposition"),
        "attachment; filename=\"r_sum_.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9.bin"
    );
    assert_eq!(download.header("x-content-type-options"), "nosniff");
}

#[each_store]
async fn a_picture_is_a_picture_whatever_its_name_and_claimed_type() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = fixtures::png(30, 20);
    let reply = upload_claimed(&app, &alice, "notes.txt", "text/plain", &bytes).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let file = reply.json();
    assert_described(&file, "image", "image/png", "notes.txt", bytes.len());
    assert_eq!((file["width"].as_u64(), file["height"].as_u64()), (Some(30), Some(20)));

    let download = fetch(&app, &alice, text(&file, "url")).await;
    assert_eq!(download.header("content-type"), "image/png");
    assert!(download.header("content-disposition").starts_with("inline"));
}

/// Markup a browser would run if it were shown inline is only ever a download, even named
/// and typed as a picture.
#[each_store]
async fn html_and_svg_named_as_pictures_are_served_as_plain_downloads() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (name, claimed, bytes) in
        [("page.png", "image/png", HTML), ("drawing.png", "image/svg+xml", SVG)]
    {
        let reply = upload_claimed(&app, &alice, name, claimed, bytes).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.json());
        let file = reply.json();
        assert_described(&file, "file", "application/octet-stream", name, bytes.len());

        let download = fetch(&app, &alice, text(&file, "url")).await;
        assert_eq!(download.status, StatusCode::OK, "{name}");
        assert!(download.bytes == bytes, "{name}");
        assert_eq!(download.header("content-type"), "application/octet-stream", "{name}");
        assert!(
            download.header("content-disposition").starts_with("attachment;"),
            "{name}: {}",
            download.header("content-disposition")
        );
        assert_eq!(download.header("x-content-type-options"), "nosniff", "{name}");
    }
}

/// A file that starts like a picture but does not decode is not shown as one.
#[each_store]
async fn bytes_that_only_start_like_a_picture_are_a_plain_file() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(&fixtures::binary(600));
    let file = upload(&app, &alice, "broken.png", &bytes).await;
    assert_described(&file, "file", "application/octet-stream", "broken.png", bytes.len());
    let download = fetch(&app, &alice, text(&file, "url")).await;
    assert_eq!(download.header("content-type"), "application/octet-stream");
    assert!(download.header("content-disposition").starts_with("attachment;"));
}

/// A voice message is sound even when its recorded data happens to hold the bytes "V_"
/// (as roughly one recording in nine does within the first 8 KiB): only the track's codec
/// id says whether it is video.
#[each_store]
async fn a_voice_recording_is_sound_whatever_bytes_its_sound_holds() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut sound = fixtures::silence(300);
    sound[150..152].copy_from_slice(b"V_");
    let file = upload(&app, &alice, "voice.webm", &fixtures::webm("A_OPUS", &sound)).await;
    assert_eq!((file["kind"].as_str(), file["mime"].as_str()), (Some("audio"), Some("audio/webm")));
}

/// Safari's MediaRecorder writes a voice message as an MP4 branded like any video (`iso5`,
/// `mp42`, `isom`): only its tracks' handlers say it is sound. A track of video among them,
/// or a `moov` the server cannot reach, makes it video, which plays sound too.
#[each_store]
async fn an_mp4_is_sound_when_its_tracks_are_whatever_its_brand() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let kind_of = |file: &Value| (file["kind"].clone(), file["mime"].clone());
    for brand in [b"iso5", b"mp42", b"isom"] {
        let bytes = fixtures::mp4_recording(brand, &[b"soun"], &fixtures::silence(300));
        let file = upload(&app, &alice, "voice.mp4", &bytes).await;
        assert_eq!(kind_of(&file), ("audio".into(), "audio/mp4".into()), "{brand:?}");
        let download = fetch(&app, &alice, text(&file, "url")).await;
        assert_eq!(download.header("content-type"), "audio/mp4");
        assert!(download.bytes == bytes, "the same bytes come back");
    }

    let video = fixtures::mp4_recording(b"iso5", &[b"soun", b"vide"], &fixtures::silence(300));
    let file = upload(&app, &alice, "clip.mp4", &video).await;
    assert_eq!(kind_of(&file), ("video".into(), "video/mp4".into()));

    let sound = fixtures::mp4_recording(b"isom", &[b"soun"], &fixtures::silence(300));
    let cut = sound.windows(4).position(|w| w == b"hdlr").expect("a handler");
    let file = upload(&app, &alice, "cut.mp4", &sound[..cut]).await;
    assert_eq!(kind_of(&file), ("video".into(), "video/mp4".into()), "a moov cut off");
}

/// A JPEG whose first segment claims a length below its own two bytes cannot be walked:
/// it is kept as a plain file, not a server error.
#[each_store]
async fn a_jpeg_with_a_broken_segment_length_is_a_plain_file() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for bytes in [&b"\xff\xd8\xff\xe0\x00\x00"[..], b"\xff\xd8\xff\xe0\x00\x01JFIF\0\x01\x01"] {
        let file = upload(&app, &alice, "photo.jpg", bytes).await;
        assert_described(&file, "file", "application/octet-stream", "photo.jpg", bytes.len());
        let download = fetch(&app, &alice, text(&file, "url")).await;
        assert!(download.bytes == bytes, "{bytes:?} comes back as it was");
    }
}
