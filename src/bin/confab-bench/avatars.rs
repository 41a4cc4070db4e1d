//! Parallel avatar uploads of one huge picture by one user, as an attacker would send them:
//! what they cost the server's memory at its peak.
//!
//! The picture is a PNG of `side` × `side` pixels made here: smooth colour with one row in
//! 40 of noise, so that at 8,000 pixels it stays under the 10 MB avatar limit (7.6 MB)
//! while unpacking to 192 MB.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde::Serialize;

use crate::Run;
use crate::process::Usage;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Uploads sent at once.
    #[arg(long, default_value_t = 80)]
    parallel: usize,
    /// The picture's side, in pixels.
    #[arg(long, default_value_t = 8000)]
    side: u32,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    parallel: usize,
    side: u32,
    picture_bytes: usize,
    /// Uploads answered 200.
    accepted: usize,
    /// The others, by status (or by error, for those not answered).
    refused: BTreeMap<String, usize>,
    seconds: f64,
    server_rss_before_mb: Option<f64>,
    /// The server's peak resident memory (VmHWM) after the uploads: since it started.
    server_peak_mb: Option<f64>,
    server_rss_after_mb: Option<f64>,
}

pub async fn run(run: &Run, options: Options) -> Result<()> {
    if run.target.ceiling {
        anyhow::bail!("the ceiling has no avatars");
    }
    let side = options.side;
    let picture = tokio::task::spawn_blocking(move || picture(side)).await??;
    let token =
        crate::setup::register(&run.http, run.base(), format!("avatar{}", rand::random::<u32>()))
            .await?;
    let boundary = "confab-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&picture);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let body = bytes::Bytes::from(body);

    let pid = run.watched.servers.first().copied();
    let mb = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    let before = pid.and_then(|pid| Usage::of(Some(pid))).map(|usage| mb(usage.rss_bytes));
    let started = Instant::now();
    let uploads = run.bases.iter().cycle().take(options.parallel).map(|base| {
        let request = run
            .http
            .put(format!("{base}/api/v1/me/avatar"))
            .bearer_auth(&token)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .timeout(std::time::Duration::from_secs(600))
            .body(body.clone());
        async move { request.send().await.map(|response| response.status()) }
    });
    let mut accepted = 0;
    let mut refused = BTreeMap::new();
    for outcome in join_all(uploads).await {
        match outcome {
            Ok(status) if status.is_success() => accepted += 1,
            Ok(status) => *refused.entry(status.to_string()).or_default() += 1,
            Err(error) => *refused.entry(error.to_string()).or_default() += 1,
        }
    }
    let report = Report {
        mode: "avatars",
        parallel: options.parallel,
        side,
        picture_bytes: picture.len(),
        accepted,
        refused,
        seconds: started.elapsed().as_secs_f64(),
        server_rss_before_mb: before,
        server_peak_mb: pid.and_then(crate::process::peak_rss).map(mb),
        server_rss_after_mb: pid
            .and_then(|pid| Usage::of(Some(pid)))
            .map(|usage| mb(usage.rss_bytes)),
    };
    run.report(&report)?;
    if !run.json {
        println!("{report:#?}");
    }
    Ok(())
}

fn picture(side: u32) -> Result<Vec<u8>> {
    let mut state: u32 = 0x9e37_79b9;
    let mut noise = move || {
        // xorshift: cheap, and enough to defeat compression.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    };
    let image = RgbImage::from_fn(side, side, |x, y| {
        if y % 40 == 0 {
            Rgb([noise(), noise(), noise()])
        } else {
            Rgb([(x / 32 % 256) as u8, (y / 32 % 256) as u8, 128])
        }
    });
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .context("encoding the picture")?;
    Ok(png)
}
