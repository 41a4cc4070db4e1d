//! The web client's files as HTTP serves them: the security headers the page relies on,
//! caching (the page never, versioned assets for a year), and compression.

use reqwest::header::{self, HeaderMap};

use crate::support::{TestApp, each_store, spawn_app};

/// Fetches a path outside `/api/v1`, asking for gzip; returns the headers and raw body.
async fn fetch(app: &TestApp, path: &str) -> (reqwest::StatusCode, HeaderMap, Vec<u8>) {
    let response = app
        .http
        .get(format!("http://{}{path}", app.address))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body read").to_vec();
    (status, headers, body)
}

fn header_of(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(&name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

/// The page itself, uncompressed, with the versioned path of its stylesheet.
async fn page_and_stylesheet(app: &TestApp) -> (String, String) {
    let response =
        app.http.get(format!("http://{}/", app.address)).send().await.expect("page fetched");
    let page = response.text().await.expect("page read");
    let start = page.find("/assets/").expect("the page names its assets");
    let end = start + page[start..].find("app.css").expect("a stylesheet") + "app.css".len();
    let stylesheet = page[start..end].to_owned();
    (page, stylesheet)
}

/// What every response of the site must carry, page and assets alike.
fn assert_hardened(path: &str, headers: &HeaderMap) {
    let policy = header_of(headers, header::CONTENT_SECURITY_POLICY);
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'self'"), "{path}: {policy}");
    assert!(directives.contains(&"script-src 'self'"), "{path}: only the site's scripts: {policy}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{path}: {policy}");
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
        "{path}: no inline or evaluated script: {policy}"
    );
    assert_eq!(header_of(headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
    assert_eq!(header_of(headers, header::X_FRAME_OPTIONS), "DENY", "{path}");
    assert_eq!(header_of(headers, header::REFERRER_POLICY), "no-referrer", "{path}");
}

#[each_store]
async fn the_page_carries_the_security_headers_and_is_never_cached() {
    let app = spawn_app().await;
    let (status, headers, _) = fetch(&app, "/").await;
    assert_eq!(status, 200);
    assert_hardened("/", &headers);
    assert!(header_of(&headers, header::CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(header_of(&headers, header::CACHE_CONTROL), "no-cache");
}

#[each_store]
async fn the_page_has_no_inline_script_or_style_for_the_policy_to_block() {
    let app = spawn_app().await;
    let (page, _) = page_and_stylesheet(&app).await;
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page loads its script");
    for script in scripts {
        let tag = &script[..script.find('>').expect("a closed tag")];
        assert!(tag.contains("src=\"/assets/"), "a script from a file, not inline: <script{tag}>");
        let body = &script[script.find('>').expect("a closed tag") + 1..];
        assert!(body.starts_with("</script>"), "nothing inline after <script{tag}>");
    }
    assert!(!page.contains("<style"), "styles come from app.css");
    assert!(!page.contains(" style=\""), "no inline style attributes");
    assert!(!has_handler_attribute(&page), "no inline event handlers");
}

/// Whether the page has an inline event handler attribute such as `onclick="..."`.
fn has_handler_attribute(page: &str) -> bool {
    page.match_indices(" on").any(|(at, _)| {
        let rest = &page[at + 3..];
        let name_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        name_end > 0 && rest[name_end..].starts_with('=')
    })
}

#[each_store]
async fn a_versioned_asset_is_hardened_and_cached_for_a_year_as_immutable() {
    let app = spawn_app().await;
    let (_, stylesheet) = page_and_stylesheet(&app).await;
    let (status, headers, _) = fetch(&app, &stylesheet).await;
    assert_eq!(status, 200, "{stylesheet}");
    assert_hardened(&stylesheet, &headers);
    assert!(header_of(&headers, header::CONTENT_TYPE).starts_with("text/css"));
    let cache = header_of(&headers, header::CACHE_CONTROL);
    assert!(cache.contains("max-age=31536000") && cache.contains("immutable"), "{cache}");

    // An old page asking for its own version's file after an upgrade gets today's, but
    // must not keep it.
    let (status, headers, _) = fetch(&app, "/assets/000000000000/app.css").await;
    assert_eq!(status, 200);
    assert_eq!(header_of(&headers, header::CACHE_CONTROL), "no-cache");
}

#[each_store]
async fn the_page_and_its_assets_are_gzipped_when_asked_for() {
    let app = spawn_app().await;
    let (_, stylesheet) = page_and_stylesheet(&app).await;
    let script = stylesheet.replace("app.css", "js/main.js");
    for path in ["/", stylesheet.as_str(), script.as_str()] {
        let (status, headers, body) = fetch(&app, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header_of(&headers, header::CONTENT_ENCODING), "gzip", "{path}");
        assert_eq!(body.get(..2), Some(&[0x1f, 0x8b][..]), "{path}: a gzip stream");
        assert!(header_of(&headers, header::VARY).to_ascii_lowercase().contains("accept-encoding"));
    }
    // Not asked for, not given.
    let response = app.http.get(format!("http://{}{stylesheet}", app.address)).send().await;
    let response = response.expect("request sent");
    assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(response.text().await.expect("css").contains(".message"), "plain CSS");
}
