//! Pictures and recordings: dimensions and thumbnails, location data removed from photos,
//! and the length a client measured of a recording.

use std::io::Cursor;

use reqwest::StatusCode;
use serde_json::Value;

use super::fixtures;
use super::{fetch, text, upload, upload_recording};
use crate::support::{TestApp, TestUser, each_store, spawn_app};

/// The Exif tags a JPEG carries; none when it has no Exif segment.
fn exif_tags(jpeg: &[u8]) -> Vec<exif::Tag> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(jpeg))
        .map(|exif| exif.fields().map(|field| field.tag).collect())
        .unwrap_or_default()
}

fn orientation(jpeg: &[u8]) -> Option<u32> {
    let exif = exif::Reader::new().read_from_container(&mut Cursor::new(jpeg)).ok()?;
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?.value.get_uint(0)
}

#[each_store]
async fn a_picture_reports_its_dimensions_and_has_a_thumbnail_320_pixels_wide() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (name, bytes) in
        [("wide.png", fixtures::png(1200, 600)), ("wide.jpg", fixtures::jpeg(1200, 600))]
    {
        let file = upload(&app, &alice, name, &bytes).await;
        assert_eq!((file["width"].as_u64(), file["height"].as_u64()), (Some(1200), Some(600)));

        let thumbnail = fetch(&app, &alice, text(&file, "thumbnail_url")).await;
        assert_eq!(thumbnail.status, StatusCode::OK, "{name}");
        assert!(thumbnail.header("content-type").starts_with("image/"), "{name}");
        assert_eq!(thumbnail.header("x-content-type-options"), "nosniff");
        let small = image::load_from_memory(&thumbnail.bytes).expect("the thumbnail decodes");
        assert_eq!((small.width(), small.height()), (320, 160), "{name}");
    }
}

#[each_store]
async fn a_thumbnail_is_never_larger_than_its_picture() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let file = upload(&app, &alice, "tiny.png", &fixtures::png(40, 30)).await;
    let thumbnail = fetch(&app, &alice, text(&file, "thumbnail_url")).await;
    let small = image::load_from_memory(&thumbnail.bytes).expect("the thumbnail decodes");
    assert_eq!(
        (small.width(), small.height()),
        (40, 30),
        "a picture smaller than a thumbnail is not scaled up"
    );
}

#[each_store]
async fn a_file_that_is_not_a_picture_has_no_thumbnail() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let file = upload(&app, &alice, "song.mp3", &fixtures::mp3()).await;
    let url = format!("{}/thumbnail", text(&file, "url"));
    assert_eq!(fetch(&app, &alice, &url).await.status, StatusCode::NOT_FOUND);
}

#[each_store]
async fn a_photo_loses_its_location_but_keeps_its_orientation() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let original = fixtures::jpeg_with_location(6);
    assert!(exif_tags(&original).contains(&exif::Tag::GPSLatitudeRef), "the fixture has GPS");

    let file = upload(&app, &alice, "holiday.jpg", &original).await;
    assert_eq!(file["mime"], "image/jpeg");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(20), Some(40)),
        "stored 40×20 and turned a quarter (orientation 6): shown 20×40"
    );
    let thumbnail = fetch(&app, &alice, text(&file, "thumbnail_url")).await;
    let small = image::load_from_memory(&thumbnail.bytes).expect("the thumbnail decodes");
    assert_eq!((small.width(), small.height()), (20, 40), "the thumbnail is the right way up");
    let download = fetch(&app, &alice, text(&file, "url")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(file["size"], download.bytes.len(), "the size is that of the file served");

    let tags = exif_tags(&download.bytes);
    assert!(
        !tags.iter().any(|tag| tag.context() == exif::Context::Gps),
        "no GPS field is left: {tags:?}"
    );
    assert_eq!(tags, vec![exif::Tag::Orientation], "only the orientation is left");
    assert_eq!(orientation(&download.bytes), Some(6));
    let decoded = image::load_from_memory(&download.bytes).expect("the photo still decodes");
    assert_eq!(
        (decoded.width(), decoded.height()),
        (40, 20),
        "stored as taken, for browsers to turn"
    );
}

#[each_store]
async fn a_recording_keeps_the_duration_its_client_measured_and_a_picture_drops_it() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let voice = fixtures::webm("A_OPUS", &fixtures::silence(300));
    let file = upload_recording(&app, &alice, "voice.webm", &voice, 4200).await;
    assert_eq!(file["kind"], "audio");
    assert_eq!(file["duration_ms"], 4200);

    let clip = upload_recording(&app, &alice, "clip.mp4", &fixtures::mp4(b"isom"), 9000).await;
    assert_eq!(clip["kind"], "video");
    assert_eq!(clip["duration_ms"], 9000);

    let picture = upload_recording(&app, &alice, "photo.png", &fixtures::png(10, 10), 4200).await;
    assert_eq!(picture["kind"], "image");
    assert_eq!(picture["duration_ms"], Value::Null);

    let plain = upload(&app, &alice, "voice.webm", &voice).await;
    assert_eq!(plain["duration_ms"], Value::Null, "no duration unless the client gives one");
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Uploads `original` as `name` and returns the bytes served for it, after checking that
/// it is still the picture it was, the right way up.
async fn served(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    original: &[u8],
    mime: &str,
) -> Vec<u8> {
    let file = upload(app, user, name, original).await;
    assert_eq!(file["mime"], mime, "{file}");
    assert_eq!((file["width"].as_u64(), file["height"].as_u64()), (Some(20), Some(40)), "{file}");
    let download = fetch(app, user, text(&file, "url")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(file["size"], download.bytes.len(), "the size is that of the file served");
    let decoded = image::load_from_memory(&download.bytes).expect("the picture still decodes");
    assert_eq!((decoded.width(), decoded.height()), (40, 20), "stored as it was taken");
    download.bytes
}

/// Only the orientation is left of a picture's Exif.
fn only_orientation(bytes: &[u8], what: &str) {
    let tags = exif_tags(bytes);
    assert!(!tags.iter().any(|tag| tag.context() == exif::Context::Gps), "{what}: {tags:?}");
    assert_eq!(tags, vec![exif::Tag::Orientation], "{what}: only the orientation is left");
    assert_eq!(orientation(bytes), Some(6), "{what}");
}

#[each_store]
async fn every_layout_of_photo_metadata_is_removed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;

    // A second picture after the first (the multi-picture layout phones write), with its
    // own Exif and location, and an index of the two in an APP2 segment.
    let first = fixtures::jpeg_with_segment(&fixtures::jpeg_with_location(6), 0xe2, b"MPF\0II*\0");
    let second = fixtures::jpeg_with_location(1);
    let two = [first.as_slice(), second.as_slice()].concat();
    let bytes = served(&app, &alice, "pair.jpg", &two, "image/jpeg").await;
    only_orientation(&bytes, "two pictures in one JPEG");
    assert!(!contains(&bytes, &second), "the second picture is gone");
    assert!(!contains(&bytes, b"MPF\0"), "so is its index");

    // IPTC (Photoshop's APP13) and a comment.
    let iptc =
        [&b"Photoshop 3.0\0"[..], b"8BIM\x04\x04\0\0\0\0\0\x0c\x1c\x02\x5a\0\x05Paris"].concat();
    let commented = fixtures::jpeg_with_segment(&fixtures::jpeg_with_location(6), 0xed, &iptc);
    let commented = fixtures::jpeg_with_segment(&commented, 0xfe, b"shot at 48.8606 N, 2.3376 E");
    let bytes = served(&app, &alice, "iptc.jpg", &commented, "image/jpeg").await;
    only_orientation(&bytes, "IPTC and a comment");
    assert!(!contains(&bytes, b"Paris"), "no IPTC city is left");
    assert!(!contains(&bytes, b"48.8606"), "no comment is left");

    let bytes = served(&app, &alice, "map.png", &fixtures::png_with_location(6), "image/png").await;
    only_orientation(&bytes, "a PNG's Exif and text");
    assert!(!contains(&bytes, b"Rivoli"), "no text chunk is left");

    let bytes =
        served(&app, &alice, "map.webp", &fixtures::webp_with_location(6), "image/webp").await;
    only_orientation(&bytes, "a WebP's Exif and XMP");
    assert!(!contains(&bytes, b"Paris"), "no XMP is left");
}
