//! Sizes and ranges: uploads over the limit are refused and leave nothing behind, uploads
//! far over the JSON body limit but under the upload limit are fine, and downloads serve
//! the byte range asked for.

use reqwest::StatusCode;

use super::fixtures;
use super::{error_code, fetch, fetch_with, stored_files, text, upload, upload_claimed};
use crate::support::{each_store, eventually, spawn_app, spawn_app_with};

const LIMIT: u64 = 1024 * 1024;

/// Refuses an upload of `size` bytes with 413 and keeps nothing of it; then checks that
/// the server still takes a file of nearly the limit (sixteen times the JSON body limit).
async fn refuses_an_upload_of(size: usize) {
    let app = spawn_app_with(|settings| settings.max_upload_bytes = LIMIT).await;
    let alice = app.register("alice").await;

    let too_big = fixtures::binary(size);
    let reply = upload_claimed(&app, &alice, "big.bin", "application/octet-stream", &too_big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes: {}", reply.json());
    assert_eq!(error_code(&reply.json()), "payload_too_large", "{size} bytes");
    assert_eq!(reply.json()["error"]["message"], "Files may be at most 1 MB.", "{size} bytes");
    eventually("the refused upload's staging file is removed", || async {
        stored_files(&app, "").is_empty().then_some(())
    })
    .await;

    let fits = fixtures::binary(LIMIT as usize - 1000);
    let file = upload(&app, &alice, "fits.bin", &fits).await;
    assert_eq!(file["size"], fits.len());
    let download = fetch(&app, &alice, text(&file, "url")).await;
    assert!(download.bytes == fits, "the file that fits comes back whole");
    let stored = stored_files(&app, "");
    assert_eq!(stored.len(), 1, "only the file that fits is stored: {stored:?}");
}

#[each_store]
async fn an_upload_just_over_the_limit_is_refused_with_413_and_nothing_is_kept() {
    refuses_an_upload_of(LIMIT as usize + 1).await;
}

/// Far over the limit, the request body also passes the cap the server puts a little above
/// the upload limit (for the multipart framing), and is cut off mid-file: still a 413.
#[each_store]
async fn an_upload_far_over_the_limit_is_refused_with_413_and_nothing_is_kept() {
    refuses_an_upload_of(4 * LIMIT as usize).await;
}

#[each_store]
async fn a_byte_range_is_served_with_206_and_exactly_those_bytes() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = fixtures::webm("A_OPUS", &fixtures::silence(2000));
    let file = upload(&app, &alice, "voice.webm", &bytes).await;
    let url = text(&file, "url");
    let size = bytes.len();

    let whole = fetch(&app, &alice, url).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("accept-ranges"), "bytes");

    let part = fetch_with(&app, &alice, url, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), format!("bytes 10-19/{size}"));
    assert_eq!(part.header("content-length"), "10");
    assert_eq!(part.header("content-type"), "audio/webm");
    assert!(part.bytes == bytes[10..20], "bytes 10 to 19: {:?}", part.bytes);

    let tail = fetch_with(&app, &alice, url, &[("range", &format!("bytes={}-", size - 5))]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.header("content-range"), format!("bytes {}-{}/{size}", size - 5, size - 1));
    assert!(tail.bytes == bytes[size - 5..], "the last five bytes");

    let overlong = fetch_with(&app, &alice, url, &[("range", "bytes=100-999999")]).await;
    assert_eq!(overlong.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(overlong.header("content-range"), format!("bytes 100-{}/{size}", size - 1));
    assert!(overlong.bytes == bytes[100..], "a range past the end stops at the end");
}

/// The last byte asked for may be as large as a range can say: the file is served to its
/// end, with a Content-Range and Content-Length that are the file's.
#[each_store]
async fn a_range_ending_at_the_largest_number_serves_the_whole_file_as_206() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = fixtures::mp3();
    let file = upload(&app, &alice, "song.mp3", &bytes).await;
    let size = bytes.len();
    for (range, start) in [("bytes=0-18446744073709551615", 0), ("bytes=7-18446744073709551615", 7)]
    {
        let reply = fetch_with(&app, &alice, text(&file, "url"), &[("range", range)]).await;
        assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(reply.header("content-range"), format!("bytes {start}-{}/{size}", size - 1));
        assert_eq!(reply.header("content-length"), (size - start).to_string(), "{range}");
        assert!(reply.bytes == bytes[start..], "{range}: the file from {start} to its end");
    }
}

#[each_store]
async fn a_range_starting_past_the_end_is_416() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = fixtures::mp3();
    let file = upload(&app, &alice, "song.mp3", &bytes).await;
    let size = bytes.len();
    for range in [format!("bytes={size}-"), format!("bytes={}-{}", size + 10, size + 20)] {
        let reply = fetch_with(&app, &alice, text(&file, "url"), &[("range", &range)]).await;
        assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(reply.header("content-range"), format!("bytes */{size}"), "{range}");
    }
}

/// Many avatars of a 64-megapixel picture at once, from one user, cost the memory of two
/// decodes (the picture work's budget), not one body and one decode per request: each
/// body goes to disk as it arrives, and a decode waits for its share of the budget.
/// confab-bench's `avatars` mode sends them and reads the server's peak memory.
#[tokio::test]
async fn parallel_avatar_uploads_of_a_huge_picture_keep_memory_bounded() {
    // Two decodes of 192 MB at once (the budget, 512 MB, holds two), their files, the
    // connections' buffers, what the allocator keeps between decodes, and the process's own
    // 50 MB: 500 to 700 MB is measured, more when the machine is busy. Before the bodies
    // went to disk and decodes kept to threads of their own, 16 uploads took over 1 GB,
    // and each further upload held its body (16 MB) on top.
    const BOUND_MB: f64 = 850.0;
    let server = crate::support::ServerProcess::start(|_| {}).await;
    let (url, pid) = (format!("http://{}", server.address), server.pid().to_string());
    let report = tokio::task::spawn_blocking(move || {
        crate::bench::bench(&[
            "--url",
            &url,
            "--server-pid",
            &pid,
            "avatars",
            "--parallel",
            "32",
            "--side",
            "8000",
        ])
    })
    .await
    .expect("bench ran");
    assert_eq!(report["accepted"], 32, "every upload made an avatar: {report}");
    assert!(report["picture_bytes"].as_u64() > Some(7_000_000), "{report}");
    let peak = report["server_peak_mb"].as_f64().expect("the server's peak");
    println!("32 parallel avatars of 8000 × 8000: {report}");
    assert!(peak < BOUND_MB, "peak memory {peak:.0} MB, over {BOUND_MB} MB: {report}");
}
