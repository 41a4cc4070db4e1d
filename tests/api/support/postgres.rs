//! PostgreSQL for the tests, started by the harness itself: one shared cluster per test
//! process (started the first time a test needs it, with a fresh database per server), and
//! private clusters for the tests that stop and start PostgreSQL under a server.
//!
//! A cluster is `initdb`'s work in a temporary directory, served on a free loopback port
//! with durability off (a test's data need not survive a power cut). It stops and its
//! directory goes when its [`Cluster`] is dropped, and in any case when the test process
//! exits, however it exits: statics are never dropped, and a crash or a kill runs no
//! destructor, so each cluster has a guardian (a small `sh` child) that waits for the test
//! process to close the guardian's stdin, which the kernel does when the process dies.
//! The guardian is told the pid of each PostgreSQL program the harness runs (initdb,
//! pg_ctl) and waits for one still running before it cleans up: otherwise a test process
//! killed during `initdb` or `pg_ctl start` would leave that program to recreate the
//! directory, or start a server, after the clean-up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::process::Command;

/// How long a cluster may take to start or stop: initdb takes about half a second and a
/// start well under one on an idle machine, but a busy CI machine can be many times slower.
const CLUSTER_PATIENCE: Duration = Duration::from_secs(120);

/// Each Confab server keeps two pools of up to 16 connections each, for reads and for
/// writes (`READ_CONNECTIONS`, `WRITE_CONNECTIONS` in src/store/postgres/mod.rs), opened as
/// it needs them, and one more while it migrates. The shared cluster serves every
/// PostgreSQL test of the run at once: as many tests as there are test threads (the cores,
/// unless `--test-threads` says otherwise), each with at most three servers alive at once
/// (a restart overlaps two briefly), plus the harness's own short connections. On 2 cores
/// that is at most 2 × 3 × 33 = 198; 1,000 covers 10 test threads at that worst. A slot costs PostgreSQL some shared memory, not a process, until
/// it is used.
const MAX_CONNECTIONS: u32 = 1000;

/// `initdb`, `pg_ctl` and `postgres`, from one directory.
#[derive(Debug)]
pub struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

/// PostgreSQL's programs: from the first directory on PATH that has all three, else from
/// the newest `/usr/lib/postgresql/<version>/bin/` (where Debian's packages put them, off
/// PATH). `None` when neither has them.
pub fn binaries() -> Option<&'static Binaries> {
    static FOUND: OnceLock<Option<Binaries>> = OnceLock::new();
    FOUND.get_or_init(find_binaries).as_ref()
}

fn find_binaries() -> Option<Binaries> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    let mut packaged: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.split('.').map(|part| part.parse().ok()).collect::<Option<_>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    packaged.sort_by(|a, b| b.0.cmp(&a.0));
    on_path.into_iter().chain(packaged.into_iter().map(|(_, dir)| dir)).find_map(|dir| {
        let [initdb, pg_ctl, postgres] =
            ["initdb", "pg_ctl", "postgres"].map(|tool| dir.join(tool));
        (initdb.is_file() && pg_ctl.is_file() && postgres.is_file())
            .then_some(Binaries { initdb, pg_ctl })
    })
}

/// Whether the PostgreSQL half of a test can run. Where PostgreSQL's programs are missing
/// it says so once per test process, straight to stderr (past the test harness's capture,
/// so it shows even when every test passes), and answers false; under `CI` it fails the
/// test instead, since CI must run both halves.
pub fn available() -> bool {
    if binaries().is_some() {
        return true;
    }
    let missing = "initdb, pg_ctl and postgres were found neither on PATH nor in \
                   /usr/lib/postgresql/<version>/bin/";
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the PostgreSQL half of every server test, but {missing}: install \
         Debian's postgresql package (.ci/run does)"
    );
    let notice = format!(
        "\n!!!!!!!!!!\n\
         !!! POSTGRESQL TESTS SKIPPED: {missing}.\n\
         !!! Each test that starts a server passes its PostgreSQL half without running it.\n\
         !!! Install Debian's postgresql package to run them.\n\
         !!!!!!!!!!\n"
    );
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let _ = std::io::stderr().write_all(notice.as_bytes());
    });
    false
}

/// The cluster every PostgreSQL test of this process shares, started by the first that
/// needs it. A cluster that failed to start fails every test that asks for it, with the
/// reason, rather than being tried again by each.
pub async fn shared() -> &'static Cluster {
    static SHARED: tokio::sync::OnceCell<Result<Cluster, String>> =
        tokio::sync::OnceCell::const_new();
    let cluster = SHARED.get_or_init(|| async { Cluster::try_start().await }).await;
    match cluster {
        Ok(cluster) => cluster,
        Err(error) => panic!("the shared PostgreSQL cluster did not start: {error}"),
    }
}

/// A cluster of this test's own, to stop and start as it likes without disturbing the
/// shared one; `None` (after the notice) where PostgreSQL is missing, outside CI.
pub async fn private_cluster() -> Option<Cluster> {
    if !available() {
        return None;
    }
    Some(Cluster::try_start().await.unwrap_or_else(|error| panic!("{error}")))
}

/// A PostgreSQL cluster in a temporary directory, serving 127.0.0.1 on its own port. Its
/// superuser is `postgres`, trusted without a password.
pub struct Cluster {
    binaries: &'static Binaries,
    /// Holds `data/` (the cluster), `socket/` (its unix socket) and `log`.
    dir: PathBuf,
    port: u16,
    /// Whether initdb and the server run as the `postgres` user: both refuse to run as
    /// root, which the tests are in CI containers.
    as_postgres: bool,
    /// The write end of the guardian's stdin: closing it stops the cluster and removes
    /// its directory.
    guardian: Mutex<Option<(std::process::Child, ChildStdin)>>,
    /// Held while a PostgreSQL program runs, so that the guardian has one at most to wait
    /// for (and a test's `stop` and `start` cannot cross).
    running: tokio::sync::Mutex<()>,
    databases: AtomicU64,
}

impl Cluster {
    /// Creates a cluster and starts it on a free port.
    async fn try_start() -> Result<Cluster, String> {
        let binaries = binaries().ok_or("PostgreSQL's programs are not installed")?;
        let as_postgres = running_as_root().await?;
        let dir = tempfile::Builder::new()
            .prefix("confab-postgres-")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?
            .keep();
        let cluster = Cluster {
            binaries,
            dir,
            port: 0,
            as_postgres,
            guardian: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
            databases: AtomicU64::new(0),
        };
        // The guardian first, so that whatever follows leaves nothing behind.
        cluster.spawn_guardian()?;
        cluster.init().await?;
        cluster.start_on_a_free_port().await
    }

    /// The URL of `database` on this cluster, as its superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates an empty database (no tables: a server applies its own migrations) and
    /// returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("confab_test_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let mut admin = PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap_or_else(|e| panic!("connect to PostgreSQL on port {}: {e}", self.port));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        self.url(&name)
    }

    /// Stops the server (fast shutdown: open connections are ended) and waits until it
    /// has. Its data stays, for [`Cluster::start`].
    pub async fn stop(&self) {
        let output = self
            .pg_ctl(&["stop", "-m", "fast", "-w", "-t", &CLUSTER_PATIENCE.as_secs().to_string()])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(output.status.success(), "pg_ctl stop: {}", describe(&output));
    }

    /// Starts the stopped server again, on the same port with the same data, and waits
    /// until it takes connections.
    pub async fn start(&self) {
        if let Err(error) = self.start_server().await {
            panic!("PostgreSQL did not start again on port {}: {error}", self.port);
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `sh` waiting on a pipe from this process; when the pipe closes (this cluster is
    /// dropped, or the process exits however it does), it waits for the PostgreSQL program
    /// last announced on the pipe (a pid, until a `done` line), stops the server at once
    /// and removes the directory. It ignores the signals a terminal sends its foreground
    /// group (and is in a group of its own), so a Ctrl-C ends the tests, not the clean-up.
    fn spawn_guardian(&self) -> Result<(), String> {
        let script = r#"
            trap '' INT TERM HUP QUIT
            busy=
            while read -r line; do
                case $line in done) busy= ;; *) busy=$line ;; esac
            done
            # Until it is gone or a zombie (an orphan waits for a reaper that may never
            # come), and two minutes at most, as pg_ctl's own wait.
            waited=0
            while [ -n "$busy" ] && [ "$waited" -lt 1200 ] && kill -0 "$busy" 2>/dev/null; do
                case $(cut -d ' ' -f 3 "/proc/$busy/stat" 2>/dev/null) in Z) break ;; esac
                sleep 0.1
                waited=$((waited + 1))
            done
            dir=$1
            shift
            "$@" >/dev/null 2>&1
            rm -rf "$dir"
        "#;
        let mut command = std::process::Command::new("sh");
        command.args(["-c", script, "confab-postgres-guardian"]).arg(&self.dir);
        if self.as_postgres {
            command.args(["runuser", "-u", "postgres", "--"]);
        }
        command
            .arg(&self.binaries.pg_ctl)
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| format!("spawn the guardian (sh): {e}"))?;
        let stdin = child.stdin.take().ok_or("the guardian's stdin is piped")?;
        *self.guardian.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((child, stdin));
        Ok(())
    }

    /// `initdb` into `data/`, as `postgres` when this process is root (the directory is
    /// given to that user first; its parents must let it through, as /tmp does).
    async fn init(&self) -> Result<(), String> {
        std::fs::create_dir(self.dir.join("socket")).map_err(|e| format!("socket dir: {e}"))?;
        if self.as_postgres {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:"]).arg(&self.dir);
            let output = self.run(chown).await?;
            if !output.status.success() {
                return Err(format!("chown -R postgres: {}", describe(&output)));
            }
        }
        let mut initdb = self.command(&self.binaries.initdb);
        initdb.args(["-D"]).arg(self.data()).args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-A",
            "trust",
            "--no-sync",
        ]);
        let output = self.run(initdb).await?;
        if !output.status.success() {
            return Err(format!("initdb: {}", describe(&output)));
        }
        Ok(())
    }

    /// Starts the server on a free port, and on another if something took that one before
    /// the server could bind it.
    async fn start_on_a_free_port(mut self) -> Result<Cluster, String> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.port = super::free_loopback_address().port();
            self.configure()?;
            let logged = self.log().len();
            match self.start_server().await {
                Ok(()) => return Ok(self),
                Err(error) if attempts < 10 && self.port_was_taken(logged) => {
                    eprintln!(
                        "PostgreSQL could not bind port {}, trying another: {error}",
                        self.port
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The server's settings, appended to `postgresql.conf` (a later line wins, so a new
    /// port replaces an old one). Loopback only; the unix socket inside our directory
    /// rather than in /var/run; and no durability: fsync, synchronous commit and full
    /// page writes off, as a test's data need not survive a crash.
    fn configure(&self) -> Result<(), String> {
        let quoted = |path: &Path| format!("'{}'", path.display().to_string().replace('\'', "''"));
        let settings = format!(
            "\n# Confab's test harness\n\
             port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = {socket}\n\
             max_connections = {MAX_CONNECTIONS}\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            port = self.port,
            socket = quoted(&self.dir.join("socket")),
        );
        let path = self.data().join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        file.write_all(settings.as_bytes()).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// `pg_ctl start`, then a connection: the server is ready when one succeeds.
    async fn start_server(&self) -> Result<(), String> {
        let log = self.dir.join("log");
        let patience = CLUSTER_PATIENCE.as_secs().to_string();
        let mut pg_ctl = self.command(&self.binaries.pg_ctl);
        pg_ctl.arg("start").arg("-D").arg(self.data()).arg("-l").arg(&log);
        pg_ctl.args(["-w", "-t", &patience]);
        let output = self.run(pg_ctl).await?;
        if !output.status.success() {
            return Err(format!(
                "pg_ctl start: {}\nserver log:\n{}",
                describe(&output),
                self.log()
            ));
        }
        let url = self.url("postgres");
        let deadline = tokio::time::Instant::now() + CLUSTER_PATIENCE;
        loop {
            match PgConnection::connect(&url).await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    return Ok(());
                }
                Err(error) if tokio::time::Instant::now() > deadline => {
                    return Err(format!("no connection within {CLUSTER_PATIENCE:?}: {error}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Whether the server's log, past its first `logged` bytes, says that its port was in
    /// use.
    fn port_was_taken(&self, logged: usize) -> bool {
        let log = self.log();
        let log = log.get(logged..).unwrap_or_default();
        log.contains("could not bind") || log.contains("Address already in use")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<std::process::Output, String> {
        let mut pg_ctl = self.command(&self.binaries.pg_ctl);
        pg_ctl.args(args).arg("-D").arg(self.data());
        self.run(pg_ctl).await
    }

    /// Runs `command` to its end, its pid announced to the guardian meanwhile.
    async fn run(&self, mut command: Command) -> Result<std::process::Output, String> {
        let _one_at_a_time = self.running.lock().await;
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run {command:?}: {e}"))?;
        if let Some(pid) = child.id() {
            self.tell_guardian(&pid.to_string());
        }
        let output = child.wait_with_output().await.map_err(|e| format!("{command:?}: {e}"));
        self.tell_guardian("done");
        output
    }

    fn tell_guardian(&self, line: &str) {
        let mut guardian = self.guardian.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, stdin)) = guardian.as_mut() {
            let _ = writeln!(stdin, "{line}");
        }
    }

    /// A PostgreSQL program, run as `postgres` when this process is root, in our
    /// directory (which that user may enter, unlike perhaps the working directory).
    fn command(&self, program: &Path) -> Command {
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }
}

impl Drop for Cluster {
    /// Closes the guardian's pipe and waits for it to stop the server and remove the
    /// directory (it would anyway when the process exits; a private cluster should not
    /// outlive its test).
    fn drop(&mut self) {
        let guardian = self.guardian.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((mut child, stdin)) = guardian.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Whether this process runs as root, when initdb and postgres must run as `postgres`.
async fn running_as_root() -> Result<bool, String> {
    let output = Command::new("id").arg("-u").output().await.map_err(|e| format!("run id: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn describe(output: &std::process::Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}
