//! Redis for the tests: a private `redis-server` per test that needs one, on a free
//! loopback port, without persistence, stopped and started again at will on the same
//! port (to lose what is published meanwhile, as an outage does).
//!
//! The server stops when its [`Redis`] is dropped, and in any case when the test process
//! exits, however it exits: a guardian (`sh`) waits for the test process to close its
//! stdin, which the kernel does when the process dies, then kills the server by its pid
//! file.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use tempfile::TempDir;

use super::{PATIENCE, free_loopback_address};

/// `redis-server`, from PATH.
fn binary() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join("redis-server")).find(|path| path.is_file())
}

/// Whether a test that needs Redis can run: says loudly once when it cannot, and fails
/// under `CI`, which must run it.
pub fn available() -> bool {
    if binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the tests of several nodes, but redis-server is not on PATH: install \
         Debian's redis-server package (.ci/run does)"
    );
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let _ = std::io::stderr().write_all(
            b"\n!!!!!!!!!!\n\
              !!! REDIS TESTS SKIPPED: redis-server is not on PATH.\n\
              !!! The tests of several nodes pass without running.\n\
              !!! Install Debian's redis-server package to run them.\n\
              !!!!!!!!!!\n",
        );
    });
    false
}

pub struct Redis {
    dir: TempDir,
    port: u16,
    server: Option<Child>,
    /// The users made by [`Redis::node_url`], made again when the server starts again (it
    /// keeps nothing on disk).
    users: std::sync::Mutex<Vec<String>>,
    _guardian: (Child, ChildStdin),
}

impl Redis {
    /// A running server of this test's own.
    pub async fn start() -> Redis {
        let dir = tempfile::tempdir().expect("a directory for redis");
        let pid_file = dir.path().join("redis.pid");
        let mut guardian = Command::new("sh")
            .args(["-c", "cat >/dev/null; kill -9 \"$(cat \"$1\" 2>/dev/null)\" 2>/dev/null; true"])
            .arg("confab-redis-guardian")
            .arg(&pid_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the guardian (sh)");
        let stdin = guardian.stdin.take().expect("piped");
        let mut redis = Redis {
            dir,
            port: free_loopback_address().port(),
            server: None,
            users: std::sync::Mutex::new(Vec::new()),
            _guardian: (guardian, stdin),
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command on the server (`ACL SETUSER default -publish`, say).
    pub async fn command(&self, args: &[&str]) {
        let client = redis::Client::open(self.url()).expect("a redis URL");
        let mut connection = client.get_multiplexed_async_connection().await.expect("connect");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async::<redis::Value>(&mut connection).await.expect("the command runs");
    }

    /// A user of its own for node `node`, so that a test can cut that node off alone;
    /// returns the URL the node connects with.
    pub async fn node_url(&self, node: usize) -> String {
        let user = format!("node{node}");
        self.make_user(&user).await;
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(user.clone());
        format!("redis://{user}:secret@127.0.0.1:{}", self.port)
    }

    async fn make_user(&self, user: &str) {
        self.command(&["ACL", "SETUSER", user, "on", ">secret", "~*", "&*", "+@all"]).await;
    }

    /// Makes node `node`'s publishes fail, while every subscription stays: what it
    /// publishes meanwhile is lost to the others, and nothing tells them so.
    pub async fn refuse_publishing(&self, node: usize) {
        self.command(&["ACL", "SETUSER", &format!("node{node}"), "-publish"]).await;
    }

    pub async fn allow_publishing(&self, node: usize) {
        self.command(&["ACL", "SETUSER", &format!("node{node}"), "+publish"]).await;
    }

    /// Stops the server at once (SIGKILL: nothing is flushed, nobody is told).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// Starts the server (again) on its port, and waits until it answers.
    pub async fn start_again(&mut self) {
        let binary = binary().expect("redis-server is on PATH");
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        loop {
            let server = Command::new(&binary)
                .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--pidfile")
                .arg(self.dir.path().join("redis.pid"))
                .arg("--dir")
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            self.server = Some(server);
            if self.answers(deadline).await {
                let users =
                    self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
                for user in users {
                    self.make_user(&user).await;
                }
                return;
            }
            // The port was taken meanwhile (or the server died): another port, unless the
            // server is being started again, whose clients expect the old one.
            self.stop();
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start");
        }
    }

    async fn answers(&mut self, deadline: tokio::time::Instant) -> bool {
        let client = redis::Client::open(self.url()).expect("a redis URL");
        while tokio::time::Instant::now() < deadline {
            if let Some(server) = self.server.as_mut()
                && server.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
