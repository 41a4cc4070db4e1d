//! nginx for the tests, with the configuration docs/deploy.md documents (`deploy/nginx/`):
//! Debian's (`nginx-light` or `nginx`), started on a free loopback port in a temporary
//! directory; without it the tests that need it say so loudly and pass without running,
//! except under `CI`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use super::{PATIENCE, TestApp, free_loopback_address};

fn nginx_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter().map(|dir| dir.join("nginx")).find(|path| path.is_file())
}

pub fn available() -> bool {
    if nginx_binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the nginx test, but nginx is not installed: install Debian's nginx-light \
         package (.ci/run does)"
    );
    let _ = std::io::stderr().write_all(
        b"\n!!!!!!!!!!\n!!! NGINX TEST SKIPPED: nginx is not installed (Debian's nginx-light).\n!!!!!!!!!!\n",
    );
    false
}

/// nginx in front of `nodes`, until dropped (or the test process dies: it runs under a
/// `sh` that kills it when its stdin closes).
pub struct Nginx {
    _dir: tempfile::TempDir,
    guardian: Child,
    pub address: std::net::SocketAddr,
}

impl Nginx {
    /// nginx on a free loopback port in front of `nodes`.
    pub async fn start(nodes: &[&TestApp]) -> Nginx {
        Self::start_on(free_loopback_address(), nodes).await
    }

    /// nginx on `address` in front of `nodes`.
    pub async fn start_on(address: std::net::SocketAddr, nodes: &[&TestApp]) -> Nginx {
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx");
        let servers: String =
            nodes.iter().map(|node| format!("        server {};\n", node.address)).collect();
        let root = dir.path().display();
        let config = format!(
            "pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    include {deploy}/confab-http.conf;
    upstream confab {{
{servers}        keepalive 32;
    }}
    server {{
        listen {address};
        include {deploy}/confab-proxy.conf;
    }}
}}
"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let nginx = nginx_binary().expect("nginx is installed");
        let script = "\"$1\" -p \"$2\" -c \"$3\" -g 'daemon off;' & pid=$!; cat >/dev/null; kill $pid; wait $pid";
        let guardian = Command::new("sh")
            .args(["-c", script, "confab-nginx-guardian"])
            .arg(&nginx)
            .arg(dir.path())
            .arg(&config_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { _dir: dir, guardian, address };
        let http = reqwest::Client::new();
        let url = format!("http://{address}/healthz");
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status() == StatusCode::OK
            {
                return nginx;
            }
            assert!(tokio::time::Instant::now() < deadline, "nginx did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        drop(self.guardian.stdin.take());
        let _ = self.guardian.wait();
    }
}
