//! The web client: the files under `web/`, embedded in the binary at compile time and served
//! at `/` (the page) and `/assets/<version>/...` (its scripts and styles); and the API
//! reference at `/api/docs`, a page of the same kind that draws `/api/v1/openapi.json`
//! (`web/reference.html`, `web/reference/`), with nothing fetched from elsewhere.
//!
//! `<version>` is a digest of every file, so a new build changes every asset URL: assets are
//! cached for a year as immutable, and the page, which is never cached, always names the
//! current ones. The page uses the public API like any other client; nothing here serves
//! data.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;

use crate::app::App;
use crate::error::Error;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "index.html"]
#[exclude = "reference.html"]
struct Assets;

/// The page, with `{{ASSETS}}` standing for the versioned asset path.
const INDEX_TEMPLATE: &str = include_str!("../../web/index.html");
/// The API reference's page, likewise.
const REFERENCE_TEMPLATE: &str = include_str!("../../web/reference.html");

/// The pages as served, and the version their asset URLs carry.
struct Site {
    version: String,
    index: String,
    reference: String,
}

impl Site {
    fn build() -> Self {
        let mut digest = Sha256::new();
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        for name in names {
            if let Some(file) = Assets::get(&name) {
                digest.update(name.as_bytes());
                digest.update(file.metadata.sha256_hash());
            }
        }
        digest.update(INDEX_TEMPLATE.as_bytes());
        digest.update(REFERENCE_TEMPLATE.as_bytes());
        let version: String =
            digest.finalize().iter().take(6).map(|byte| format!("{byte:02x}")).collect();
        let assets = format!("/assets/{version}");
        let index = INDEX_TEMPLATE.replace("{{ASSETS}}", &assets);
        let reference = REFERENCE_TEMPLATE.replace("{{ASSETS}}", &assets);
        Self { version, index, reference }
    }
}

pub fn routes() -> Router<App> {
    let site = Arc::new(Site::build());
    let page = site.clone();
    let reference = site.clone();
    Router::new()
        .route("/", get(move || html(page.index.clone())))
        .route("/api/docs", get(move || html(reference.reference.clone())))
        .route("/assets/{version}/{*path}", get(move |path| asset(site.clone(), path)))
        .layer(CompressionLayer::new().gzip(true))
}

/// A page: never cached, so that it always names the current assets.
async fn html(page: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        page,
    )
        .into_response()
}

async fn asset(site: Arc<Site>, Path((version, path)): Path<(String, String)>) -> Response {
    let Some(file) = Assets::get(&path) else {
        return Error::NotFound("Asset").into_response();
    };
    // An old page may still ask for its own version's files after an upgrade; it gets the
    // current ones, but not for keeps.
    let cache =
        if version == site.version { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.data,
    )
        .into_response()
}
