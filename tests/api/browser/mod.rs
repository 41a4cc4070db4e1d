//! The web client in a real browser: headless Chromium driven through chromedriver.
//!
//! The page knows nothing of the store behind the API, and the API tests run every
//! behaviour on both stores (`#[each_store]`), so the browser tests run on the embedded
//! store only, apart from the cluster test, which runs on PostgreSQL and Redis.
//!
//! Each test starts its own chromedriver (on a port it picks itself, tried again if it fails
//! to start) and its own browser sessions, each with a fresh profile. Without Chromium or chromedriver on PATH the tests print a loud
//! notice and pass without running, except when `CI` is set: then they must run. A
//! screenshot of each key screen is saved under `target/tmp/screenshots/` on every run.

mod admin;
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
mod people;
mod phone;
mod reading;
mod reference;
mod resilience;
mod search;
mod sso;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::TestApp;

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
    let mut failures = Vec::new();
    for _ in 0..STARTS {
        match start_chromedriver().await {
            Ok(driver) => return Some(driver),
            Err(output) => failures.push(output),
        }
    }
    panic!(
        "chromedriver did not start in {STARTS} tries; what it said:\n{}",
        failures.join("\n---- next try ----\n")
    )
}

/// How many times to start chromedriver before giving up.
const STARTS: usize = 3;

/// Starts chromedriver on a port of its own choosing (`--port=0`: picking a free port here
/// and handing it over races with every other socket on the machine, and chromedriver exits
/// when the port is taken on any address), reading the port from what it prints. On failure,
/// returns everything it printed.
async fn start_chromedriver() -> Result<Driver, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let mut process = Command::new("chromedriver")
        .arg("--port=0")
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // A process group of its own, which the Chromium it starts joins: see `Drop`.
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let mut stdout = BufReader::new(process.stdout.take().expect("stdout is piped")).lines();
    let mut stderr = process.stderr.take().expect("stderr is piped");
    let mut said = String::new();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = stdout.next_line().await {
            said.push_str(&line);
            said.push('\n');
            // "ChromeDriver was started successfully on port 44701."
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(port) = port else {
        let _ = process.start_kill();
        let mut errors = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut errors)).await;
        let status = process.try_wait().ok().flatten();
        return Err(format!("exit status {status:?}\nstdout:\n{said}stderr:\n{errors}"));
    };
    // What it says later goes nowhere, but must be read: a full pipe would stall it.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
    let url = format!("http://127.0.0.1:{port}");
    let status = format!("{url}/status");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while reqwest::get(&status).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "said it listens on port {port}, but {status} never answered:\n{said}"
            ));
        }
        if let Ok(Some(exit)) = process.try_wait() {
            return Err(format!("exited ({exit}) after saying:\n{said}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Driver { process, url, _profiles: Vec::new() })
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
        let mut options =
            json!({ "binary": which("chromium").map(|p| p.display().to_string()), "args": args });
        // A window is never narrower than 500 pixels, even headless: a phone's screen is
        // emulated instead (with touch, as on a phone).
        if width < 500 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "touch": true, "mobile": true },
            });
        }
        let capabilities = json!({ "browserName": "chrome", "goog:chromeOptions": options });
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
        Browser { client, driver_url: self.url.clone() }
    }
}

impl Drop for Driver {
    /// Ends chromedriver and every browser it started: a test that fails before closing its
    /// windows would otherwise leave Chromium running after chromedriver is gone.
    fn drop(&mut self) {
        if let Some(pid) = self.process.id() {
            let group = format!("-{pid}");
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = self.process.start_kill();
    }
}

/// One browser window.
pub struct Browser {
    pub client: Client,
    /// chromedriver's address, for the WebDriver commands fantoccini does not have.
    driver_url: String,
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

    /// Waits until nothing on the page moves: every CSS transition and animation (a drawer
    /// sliding in, say) has finished; endless ones (a pulsing dot) do not count. For
    /// screenshots.
    pub async fn until_still(&self) {
        let still = "document.getAnimations().every(a => a.playState !== 'running' \
                     || a.effect.getComputedTiming().endTime === Infinity)";
        self.until("the page is still", still).await;
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

    /// Saves a screenshot as `target/tmp/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }

    /// Sets a permission of the page's origin (`name` as the Permissions API says it, such
    /// as "notifications"; `state` "granted", "denied" or "prompt"), through WebDriver's
    /// Set Permission command.
    pub async fn set_permission(&self, name: &str, state: &str) {
        let session = self.client.session_id().await.expect("session id").expect("a session");
        let url = format!("{}/session/{session}/permissions", self.driver_url);
        let body = json!({ "descriptor": { "name": name }, "state": state });
        let response = reqwest::Client::new().post(&url).json(&body).send().await.expect("sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "set permission {name} to {state}: {status} {text}");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
