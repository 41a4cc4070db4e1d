//! Confab in containers, as docs/deploy.md ships it: the image `Containerfile` builds (with
//! this build's binary) and `compose.yaml` under podman, two nodes behind nginx on
//! PostgreSQL and Redis. People register through nginx, the image's health check passes,
//! and a message crosses from one node's WebSocket to the other's and to one through nginx.
//!
//! No image registry is reachable from CI: the test makes a local Debian base image
//! (`tests/container/base-image.sh`, with debootstrap) when it is missing, and images of
//! PostgreSQL, Redis and nginx from Debian's packages on it (`tests/container/`). It needs
//! podman and podman-compose (`CONFAB_PODMAN_COMPOSE`, else on PATH), which `.ci/run`
//! installs; without them it says so loudly and passes without running, except under `CI`.
//! Whatever happens, the compose project is taken down, its volumes and network with it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, free_loopback_address};

/// The base of every image the test builds, made by `tests/container/base-image.sh`.
const BASE_IMAGE: &str = "localhost/debian:bookworm";

/// How long the project may take to be ready once up: containers start in about a second
/// each, but a node started before PostgreSQL answers exits and waits for its restart.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn compose_runs_two_nodes_behind_nginx_that_chat_across_nodes() {
    let Some(tools) = Tools::find() else { return };
    let started = Instant::now();
    let images = build_images(&tools);
    let built = started.elapsed();

    let project = Project::up(&tools, &images);
    let front = project.wait_until_ready(project.nginx).await;
    let node_1 = project.wait_until_ready(project.nodes[0]).await;
    let node_2 = project.wait_until_ready(project.nodes[1]).await;
    let ready = started.elapsed();
    project.check_health("confab-1");

    let alice = front.register("alice").await;
    let bob = front.register("bob").await;
    let room = front.create_room(&alice, "containers", "private", &[&bob]).await;
    let mut alice_on_1 = node_1.connect(&alice).await;
    let mut bob_on_2 = node_2.connect(&bob).await;
    let mut alice_through_nginx = front.connect(&alice).await;

    // Alice sends through nginx; Bob hears it on node 2.
    let sent = front.send(&alice, &room, "hello from a container").await;
    let got = bob_on_2.recv_type("message.created").await;
    assert_eq!(got["message"]["id"], sent["id"]);
    // Bob answers on node 2's socket; Alice hears it on node 1 and through nginx.
    let answer = json!({ "type": "send", "room_id": room, "body": "and back", "client_id": "b1" });
    bob_on_2.send_json(answer).await;
    for socket in [&mut alice_on_1, &mut alice_through_nginx] {
        let own = socket.recv_type("message.created").await;
        assert_eq!(own["message"]["body"], "hello from a container", "her own, first");
        let got = socket.recv_type("message.created").await;
        assert_eq!(got["message"]["body"], "and back");
    }
    let history = front.whole_history(&alice, &room).await;
    assert_eq!(history.len(), 2);

    drop(project);
    let _ = writeln!(
        std::io::stderr(),
        "container test: images built in {built:?}, project ready at {ready:?}, down at {:?}",
        started.elapsed()
    );
}

/// podman and podman-compose.
struct Tools {
    podman: PathBuf,
    compose: PathBuf,
}

impl Tools {
    /// Both tools, or `None` after a loud notice; under `CI` their absence fails the test.
    fn find() -> Option<Tools> {
        let podman = on_path("podman");
        let compose = std::env::var_os("CONFAB_PODMAN_COMPOSE")
            .map(PathBuf::from)
            .filter(|path| path.is_file())
            .or_else(|| on_path("podman-compose"));
        if let (Some(podman), Some(compose)) = (podman, compose) {
            return Some(Tools { podman, compose });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the container test, but podman or podman-compose is missing: .ci/run \
             installs Debian's podman and podman-compose (named by CONFAB_PODMAN_COMPOSE)"
        );
        let _ = std::io::stderr().write_all(
            b"\n!!!!!!!!!!\n\
              !!! CONTAINER TEST SKIPPED: podman or podman-compose is missing.\n\
              !!! Install them as .ci/run does to run it.\n\
              !!!!!!!!!!\n",
        );
        None
    }

    fn podman(&self) -> Command {
        Command::new(&self.podman)
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.is_file())
}

/// Runs `command` and returns its standard output; fails the test, with what it said,
/// unless it succeeds.
fn run(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {:?}: {error}", command.get_program()));
    assert!(
        output.status.success(),
        "{:?} {:?} failed ({}):\n{}{}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The images compose.yaml runs, by the variables that name them.
struct Images {
    confab: String,
    postgres: String,
    redis: String,
    nginx: String,
}

/// Makes the base image if missing, the CI images of PostgreSQL, Redis and nginx (podman's
/// layer cache makes them again in a moment), and Confab's image from this build's binary,
/// under a name of this run's own.
fn build_images(tools: &Tools) -> Images {
    let repository = Path::new(REPOSITORY);
    let ci = repository.join("tests/container");
    run(Command::new("sh").arg(ci.join("base-image.sh")).arg(BASE_IMAGE));
    // Their `apt-get install` reaches Debian's mirror on the host's network: netavark's
    // bridge does not reach this machine's resolver.
    let ci_image = |service: &str| {
        let tag = format!("localhost/confab-ci/{service}:latest");
        run(tools
            .podman()
            .args(["build", "--quiet", "--format", "docker", "--network=host", "--tag", &tag])
            .arg(format!("--build-arg=BASE={BASE_IMAGE}"))
            .arg("--file")
            .arg(ci.join(format!("{service}.Containerfile")))
            .arg(&ci));
        tag
    };
    let (postgres, redis, nginx) = (ci_image("postgres"), ci_image("redis"), ci_image("nginx"));

    // The context holds the binary alone: the target directory is far too big to send.
    let context = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a build context");
    let binary = context.path().join("confab");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_confab"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_confab"), &binary).expect("copy the binary");
    }
    let confab = format!("localhost/confab:test-{}", unique_suffix());
    let containerfile = repository.join("Containerfile");
    run(tools
        .podman()
        .args(["build", "--quiet", "--format", "docker", "--tag", &confab])
        .arg(format!("--build-arg=BASE={BASE_IMAGE}"))
        .arg("--build-arg=BINARY=confab")
        .arg("--file")
        .arg(containerfile)
        .arg(context.path()));
    Images { confab, postgres, redis, nginx }
}

/// A name no other run of this test uses at the same time.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// compose.yaml up under a project name of its own, its ports on loopback; taken down
/// with its volumes and network, and this run's Confab image removed, when dropped.
struct Project {
    podman: PathBuf,
    compose: PathBuf,
    name: String,
    environment: Vec<(&'static str, String)>,
    confab_image: String,
    nginx: SocketAddr,
    nodes: [SocketAddr; 2],
}

impl Project {
    fn up(tools: &Tools, images: &Images) -> Project {
        let nginx = free_loopback_address();
        let nodes = [free_loopback_address(), free_loopback_address()];
        let environment = vec![
            ("CONFAB_IMAGE", images.confab.clone()),
            ("CONFAB_POSTGRES_IMAGE", images.postgres.clone()),
            ("CONFAB_REDIS_IMAGE", images.redis.clone()),
            ("CONFAB_NGINX_IMAGE", images.nginx.clone()),
            ("CONFAB_DB_PASSWORD", format!("test-{}", unique_suffix())),
            ("CONFAB_BIND", "127.0.0.1".to_owned()),
            ("CONFAB_PORT", nginx.port().to_string()),
            ("CONFAB_PUBLIC_URL", format!("http://{nginx}")),
            ("CONFAB_TEST_NODE1_PORT", nodes[0].port().to_string()),
            ("CONFAB_TEST_NODE2_PORT", nodes[1].port().to_string()),
        ];
        let project = Project {
            podman: tools.podman.clone(),
            compose: tools.compose.clone(),
            name: format!("confab-test-{}", unique_suffix()),
            environment,
            confab_image: images.confab.clone(),
            nginx,
            nodes,
        };
        run(&mut project.compose(&["up", "--detach"]));
        project
    }

    /// podman-compose on compose.yaml and the test's additions, as this project.
    fn compose(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.compose);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CONFAB_") {
                command.env_remove(name);
            }
        }
        command
            .current_dir(REPOSITORY)
            .args(["--project-name", &self.name])
            .args(["--file", "compose.yaml", "--file", "tests/container/compose.test.yaml"])
            .args(args)
            .envs(self.environment.iter().map(|(name, value)| (name, value)));
        command
    }

    /// What the containers said, for a failure's message.
    fn logs(&self) -> String {
        let output = self.compose(&["logs"]).stdin(Stdio::null()).output();
        output.map_or_else(
            |error| format!("(no logs: {error})"),
            |output| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
            },
        )
    }

    /// Waits until `/readyz` at `address` (nginx, or a node) says 200, and returns request
    /// helpers for it.
    async fn wait_until_ready(&self, address: SocketAddr) -> TestApp {
        let app = TestApp::external(address);
        let url = format!("http://{address}/readyz");
        let deadline = Instant::now() + STARTUP_PATIENCE;
        loop {
            let answer = app.http.get(&url).timeout(Duration::from_secs(5)).send().await;
            if answer.is_ok_and(|response| response.status() == StatusCode::OK) {
                return app;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready within {STARTUP_PATIENCE:?}; the containers said:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the image's HEALTHCHECK in `service`'s container (podman runs none by itself
    /// without systemd) and fails the test unless it passes.
    fn check_health(&self, service: &str) {
        let container = run(Command::new(&self.podman)
            .args(["ps", "--quiet"])
            .arg(format!("--filter=label=io.podman.compose.project={}", self.name))
            .arg(format!("--filter=label=com.docker.compose.service={service}")));
        let container = container.trim();
        assert!(!container.is_empty(), "no container of {service}");
        run(Command::new(&self.podman).args(["healthcheck", "run", container]));
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let down =
            self.compose(&["down", "--volumes", "--remove-orphans"]).stdin(Stdio::null()).output();
        if let Ok(output) = &down
            && !output.status.success()
        {
            let _ = writeln!(
                std::io::stderr(),
                "compose down failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let _ = Command::new(&self.podman)
            .args(["rmi", "--force", &self.confab_image])
            .stdin(Stdio::null())
            .output();
    }
}
