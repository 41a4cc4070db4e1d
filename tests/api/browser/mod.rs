//! The web client in a real browser: headless Chromium driven through chromedriver.
//!
//! Each test starts its own chromedriver on a free port and its own browser sessions, each
//! with a fresh profile. Without Chromium or chromedriver on PATH the tests print a loud
//! notice and pass without running, except when `CI` is set: then they must run. A
//! screenshot of each key screen is saved under `target/tmp/screenshots/` on every run.

mod bidi;
mod big_room;
mod blocking;
mod chat;
mod cluster;
mod conversation;
mod emoji;
mod formatting;
mod keyboard;
mod media;
mod reading;
mod resilience;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::{Store, TestApp};

/// How long a test waits for something to show on a page.
const PATIENCE: Duration = Duration::from_secs(20);

/// A chromedriver process; killed when dropped.
pub struct Driver {
    process: Child,
    url: String,
    _profiles: Vec<TempDir>,
}

/// Starts chromedriver, or says why it cannot (and fails under CI).
pub async fn driver() -> Option<Driver> {
    let missing: Vec<&str> =
        ["chromium", "chromedriver"].into_iter().filter(|tool| which(tool).is_none()).collect();
    if !missing.is_empty() {
        let notice = format!(
            "\n!!!!!!!!!!\n!!! BROWSER TESTS SKIPPED: {} not found on PATH.\n!!! Install Debian's chromium and chromium-driver to run them.\n!!!!!!!!!!\n",
            missing.join(" and ")
        );
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: {notice}");
        eprintln!("{notice}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let status = format!("{url}/status");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while reqwest::get(&status).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Driver { process, url, _profiles: Vec::new() })
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(tool)).find(|path| path.is_file())
    })
}

impl Driver {
    /// A new browser window with a fresh profile, `width` pixels wide.
    pub async fn browser(&mut self, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // A fake microphone that plays a tone, granted without asking, and sound that may
            // play without a click: for voice messages.
            "--use-fake-device-for-media-stream".to_owned(),
            "--use-fake-ui-for-media-stream".to_owned(),
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": which("chromium").map(|p| p.display().to_string()), "args": args },
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session starts");
        self._profiles.push(profile);
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

/// One browser window.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn open(&self, app: &TestApp) {
        self.client.goto(&format!("http://{}/", app.address)).await.expect("page opens");
    }

    /// The first element matching a CSS selector, once it exists. When it never does, the
    /// page is saved as `timeout-find-<selector>.png` first, to show what stood instead.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => {
                let name: String =
                    css.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                self.screenshot(&format!("timeout-find-{name}")).await;
                panic!("no element {css:?}: {error}")
            }
        }
    }

    /// Waits until `script` (a JavaScript expression) is truthy in the page.
    pub async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self
                .client
                .execute(&format!("return !!({script});"), vec![])
                .await
                .expect("script runs");
            if value == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                panic!("not within {PATIENCE:?}: {what} ({script})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Text of the first element matching `css`, or "" if none.
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            json!(css)
        );
        self.client
            .execute(&script, vec![])
            .await
            .expect("script runs")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the first element matching `css`; if the page replaced it between finding
    /// and clicking (lists re-render as results arrive), finds it again.
    pub async fn click(&self, css: &str) {
        for attempt in 0.. {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(error) if attempt < 20 && error.to_string().contains("stale element") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("click {css:?}: {error}"),
            }
        }
    }

    /// Clicks the first button whose text is `label`.
    pub async fn click_button(&self, label: &str) {
        let css = format!("//button[normalize-space(.)={}]", json!(label));
        let button = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&css))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"));
        button.click().await.expect("click");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.expect("typing");
    }

    /// Registers through the sign-in screen and waits for the sidebar.
    pub async fn register(&self, app: &TestApp, username: &str) {
        self.open(app).await;
        self.click_button("Register").await;
        self.type_into("#auth-username", username).await;
        self.type_into("#auth-password", &format!("password-{username}")).await;
        self.click_button("Create account").await;
        self.find(".sidebar .connection[data-state=connected]").await;
    }

    /// Types a message into the composer and presses Enter.
    pub async fn say(&self, text: &str) {
        let enter: char = fantoccini::key::Key::Enter.into();
        self.type_into("[data-testid=composer]", &format!("{text}{enter}")).await;
    }

    /// Saves a screenshot as `target/tmp/screenshots/<name>.png` (`<name>-postgres.png` on
    /// PostgreSQL, so that the two halves of a test, which run at once, keep a file each).
    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let suffix = match crate::support::store::current() {
            Store::Sqlite => "",
            Store::Postgres => "-postgres",
        };
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}{suffix}.png")), png);
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
