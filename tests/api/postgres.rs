//! What only a server on PostgreSQL meets: nodes starting at once against an empty
//! database, migrating without serving, a database that is not there at start, one that
//! restarts under a stream of sends, and a deleted body's old row version pruned (even past
//! a reader that holds the horizon back for a while). (Every other server test runs on
//! PostgreSQL too, through `#[each_store]`.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use confab::config::Database;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::support::{
    PATIENCE, ServerProcess, Store, TestApp, TestUser, each_store, eventually,
    free_loopback_address, on_store, postgres, spawn_app, spawn_app_with,
};

/// How many migrations `migrations/postgres/` holds.
fn postgres_migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("the migrations folder")
        .filter(|entry| {
            entry.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count()
}

/// The versions recorded as applied, with how often each is.
async fn applied_migrations(url: &str) -> BTreeMap<i64, i64> {
    let mut db = PgConnection::connect(url).await.expect("connect");
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT version, COUNT(*) FROM _sqlx_migrations WHERE success GROUP BY version",
    )
    .fetch_all(&mut db)
    .await
    .expect("the migrations table");
    rows.into_iter().collect()
}

#[tokio::test]
async fn nodes_starting_at_once_on_an_empty_database_apply_its_migrations_once() {
    on_store(Store::Postgres, async {
        let url = postgres::shared().await.create_database().await;
        let data_dirs: Vec<tempfile::TempDir> =
            (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
        let nodes = join_all(data_dirs.iter().map(|dir| {
            let url = url.clone();
            ServerProcess::start(move |command| {
                command.arg("--data-dir").arg(dir.path()).arg("--database-url").arg(url);
            })
        }))
        .await;

        let applied = applied_migrations(&url).await;
        assert_eq!(applied.len(), postgres_migrations(), "{applied:?}");
        assert!(applied.values().all(|count| *count == 1), "each applied once: {applied:?}");
        // They serve one database: what one node stores, another reads.
        let first = TestApp::external(nodes[0].address);
        let last = TestApp::external(nodes[3].address);
        let alice = first.register("alice").await;
        let (status, me) = last.get(&alice, "/me").await;
        assert_eq!((status, &me["username"]), (StatusCode::OK, &json!("alice")));
    })
    .await;
}

#[each_store]
async fn confab_migrate_prepares_the_database_and_serves_nothing() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = crate::support::fresh_database().await;
    let address = free_loopback_address();
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    // The listen address before the command, the database's options after it, as an
    // operator might write them.
    command.args(["--addr", &address.to_string(), "migrate", "--data-dir"]).arg(data_dir.path());
    if let Database::Postgres(url) = &database {
        command.arg("--database-url").arg(url);
    }
    let output = command.output().expect("run confab migrate");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(std::net::TcpListener::bind(address).is_ok(), "it never listened");
    match &database {
        Database::Embedded => {
            let db = data_dir.path().join("confab.db");
            let mut sqlite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .expect("the database file exists");
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut sqlite)
                .await
                .expect("the tables exist");
            assert_eq!(users, 0);
        }
        Database::Postgres(url) => {
            let applied = applied_migrations(url).await;
            assert_eq!(applied.len(), postgres_migrations(), "{applied:?}");
        }
    }
    // A server started on it finds nothing to do and serves.
    let app = spawn_app_with(move |settings| {
        settings.database = database;
        settings.data_dir = data_dir.path().to_path_buf();
    })
    .await;
    app.register("alice").await;
}

#[tokio::test]
async fn a_database_out_of_reach_at_start_is_one_line_naming_it_without_its_password() {
    // A port nobody listens on: nothing answers there. The node tries for a second.
    let closed = free_loopback_address();
    let url = format!("postgres://confab:hunter2@{closed}/chat");
    for migrate in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
        command
            .args(["--addr", &free_loopback_address().to_string(), "--database-url", &url])
            .args(["--database-wait-secs", "1"])
            .arg("--data-dir")
            .arg(tempfile::tempdir().expect("temp dir").path());
        if migrate {
            command.arg("migrate");
        }
        let output = failure_within_patience(command).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        let redacted = format!("postgres://confab:***@{closed}/chat");
        assert!(lines[0].contains(&redacted), "it names the database: {stderr}");
        assert!(!stderr.contains("hunter2") && !stdout.contains("hunter2"), "{stderr}{stdout}");
        assert!(stdout.contains("trying again"), "it said it was trying again: {stdout}");
    }
}

#[tokio::test]
async fn a_node_started_before_its_database_waits_for_it_and_then_serves() {
    let Some(cluster) = postgres::private_cluster().await else { return };
    let url = cluster.create_database().await;
    cluster.stop().await;
    let data = tempfile::tempdir().expect("temp dir");
    let mut node = ServerProcess::spawn(|command| {
        command.args(["--database-url", &url]).arg("--data-dir").arg(data.path());
    })
    .await;
    node.until_logged("the database cannot be reached yet; trying again").await;
    cluster.start().await;
    node.wait_until_healthy().await;
    let app = TestApp::external(node.address);
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "first", "public", &[]).await;
    let (status, _) =
        app.post(&alice, &format!("/rooms/{room}/messages"), json!({ "body": "made it" })).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_wrong_password_at_start_is_final_at_once() {
    let Some(cluster) = postgres::private_cluster().await else { return };
    let url = cluster.create_database().await;
    // The test cluster trusts loopback; a user that does not exist is refused all the same.
    let wrong = url.replacen("postgres://postgres@", "postgres://nobody:nothing@", 1);
    assert_ne!(wrong, url, "the URL names its user: {url}");
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    command
        .args(["--addr", &free_loopback_address().to_string(), "--database-url", &wrong])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--database-wait-secs", "3600", "migrate"]);
    // Within PATIENCE, not after the hour it was told it may wait.
    let output = failure_within_patience(command).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("trying again"), "a refusal is not retried: {stdout}");
}

/// Runs `command` to its end, which must come within PATIENCE and be a failure.
async fn failure_within_patience(mut command: Command) -> std::process::Output {
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || command.output().expect("run confab")),
    )
    .await
    .expect("confab gives up in time")
    .expect("no panic");
    assert!(!output.status.success(), "it exits non-zero: {output:?}");
    output
}

/// What became of one send.
#[derive(Debug, Clone)]
enum Outcome {
    Confirmed(i64),
    Retryable,
}

/// Sends `c-<n>` over HTTP and says what came of it; anything but a confirmation or a
/// retryable refusal fails the test.
async fn send_numbered(app: &TestApp, user: &TestUser, room: &str, n: usize) -> Outcome {
    let body = json!({ "body": format!("message {n}"), "client_id": format!("c-{n}") });
    let (status, reply) = app.post(user, &format!("/rooms/{room}/messages"), body).await;
    match status {
        // 200: a retry of a send that was stored after all (its commit was in doubt).
        StatusCode::CREATED | StatusCode::OK => {
            Outcome::Confirmed(reply["seq"].as_i64().expect("seq"))
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
            Outcome::Retryable
        }
        other => panic!("message {n}: {other} {reply}"),
    }
}

async fn status_of(app: &TestApp, path: &str) -> StatusCode {
    let url = format!("http://{}{path}", app.address);
    app.http.get(url).send().await.expect("health answers").status()
}

#[tokio::test]
async fn sends_through_a_database_restart_are_confirmed_once_or_refused_as_retryable() {
    let Some(cluster) = postgres::private_cluster().await else { return };
    let url = cluster.create_database().await;
    let app = spawn_app_with(move |settings| settings.database = Database::Postgres(url)).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "steady", "private", &[&bob]).await;
    let mut bob_ws = app.connect(&bob).await;
    let mut alice_ws = app.connect(&alice).await;

    // A stream of sends, one after another, until told to stop.
    let stop = tokio_util::sync::CancellationToken::new();
    let outcomes = {
        let (app, alice, room, stop) = (&app, &alice, &room, stop.clone());
        async move {
            let mut outcomes = Vec::new();
            while !stop.is_cancelled() {
                let outcome = send_numbered(app, alice, room, outcomes.len()).await;
                if matches!(outcome, Outcome::Retryable) {
                    // Paced while the database is away, as a client backing off would be.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcomes.push(outcome);
            }
            outcomes
        }
    };
    let restart = async {
        // Some traffic first, then the database goes away under it.
        eventually("sends flow", || async {
            let (_, page) = app.get(&alice, &format!("/rooms/{room}/messages?limit=1")).await;
            (page["messages"][0]["seq"].as_i64().unwrap_or(0) >= 20).then_some(())
        })
        .await;
        cluster.stop().await;
        // Meanwhile: not ready, but alive; the WebSocket says so frame by frame.
        assert_eq!(status_of(&app, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(&app, "/healthz").await, StatusCode::OK);
        alice_ws
            .send_json(
                json!({ "type": "send", "room_id": room, "body": "during", "client_id": "ws-1" }),
            )
            .await;
        let error = alice_ws.recv_type("error").await;
        assert_eq!((&error["code"], &error["client_id"]), (&json!("unavailable"), &json!("ws-1")));
        cluster.start().await;
        // Back by itself, without a restart of Confab.
        eventually("ready again", || async {
            (status_of(&app, "/readyz").await == StatusCode::OK).then_some(())
        })
        .await;
        alice_ws
            .send_json(
                json!({ "type": "send", "room_id": room, "body": "during", "client_id": "ws-1" }),
            )
            .await;
        let ack = alice_ws.recv_type("message.ack").await;
        assert_eq!(ack["client_id"], "ws-1");
        // Some traffic after it too.
        let resumed = ack["message"]["seq"].as_i64().expect("seq");
        eventually("sends flow again", || async {
            let (_, page) = app.get(&alice, &format!("/rooms/{room}/messages?limit=1")).await;
            (page["messages"][0]["seq"].as_i64().unwrap_or(0) >= resumed + 20).then_some(())
        })
        .await;
        stop.cancel();
    };
    let (outcomes, ()) = tokio::join!(outcomes, restart);
    let refused = outcomes.iter().filter(|o| matches!(o, Outcome::Retryable)).count();
    assert!(refused > 0, "some sends met the outage: {outcomes:?}");

    // Whatever was refused is sent again with its client id, and stored once.
    let mut seqs: BTreeMap<usize, i64> = BTreeMap::new();
    for (n, outcome) in outcomes.iter().enumerate() {
        let seq = match outcome {
            Outcome::Confirmed(seq) => *seq,
            Outcome::Retryable => match send_numbered(&app, &alice, &room, n).await {
                Outcome::Confirmed(seq) => seq,
                Outcome::Retryable => panic!("message {n} refused again after the restart"),
            },
        };
        seqs.insert(n, seq);
    }
    let history = app.whole_history(&alice, &room).await;
    let stored: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
    assert_eq!(stored, (1..=stored.len() as i64).collect::<Vec<_>>(), "no gap, no repeat");
    let by_client: BTreeMap<&str, Vec<i64>> = history.iter().fold(BTreeMap::new(), |mut by, m| {
        by.entry(m["client_id"].as_str().expect("client id"))
            .or_default()
            .push(m["seq"].as_i64().expect("seq"));
        by
    });
    for (n, seq) in &seqs {
        assert_eq!(by_client.get(format!("c-{n}").as_str()), Some(&vec![*seq]), "message {n} once");
    }
    assert_eq!(by_client.len(), seqs.len() + 1, "each send once, and the WebSocket's");

    // Bob's connection stayed open through it all and missed nothing, in order.
    let last = *stored.last().expect("messages");
    let mut seen = BTreeSet::new();
    let mut previous = 0;
    while previous < last {
        let frame: Value = bob_ws.recv_type("message.created").await;
        let seq = frame["seq"].as_i64().expect("seq");
        assert!(seq > previous, "in order: {seq} after {previous}");
        seen.insert(seq);
        previous = seq;
    }
    assert_eq!(seen, stored.into_iter().collect(), "every message reached bob once");
}

/// How many versions of the `messages` rows (live, or dead and not yet pruned) hold
/// `needle`, read from the table's pages themselves (pageinspect).
async fn row_versions_holding(url: &str, needle: &str) -> i64 {
    let mut db = PgConnection::connect(url).await.expect("connect");
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .execute(&mut db)
        .await
        .expect("pageinspect, from PostgreSQL's contrib modules");
    sqlx::query_scalar(
        "SELECT COUNT(*)
         FROM generate_series(0, pg_relation_size('messages')
                                 / current_setting('block_size')::bigint - 1) AS page,
              LATERAL heap_page_items(get_raw_page('messages', page::int)) AS item
         WHERE item.t_data IS NOT NULL AND position(convert_to($1, 'UTF8') IN item.t_data) > 0",
    )
    .bind(needle)
    .fetch_one(&mut db)
    .await
    .expect("the table's pages")
}

/// PostgreSQL keeps the version of a row that an update replaced until vacuum prunes it;
/// the store vacuums after a deletion. (Pruning does not zero the space it frees, so this
/// looks at the row versions a page holds, not at its bytes: see ARCHITECTURE.md.)
#[tokio::test]
async fn a_deleted_message_body_leaves_every_row_version() {
    on_store(Store::Postgres, async {
        let app = spawn_app().await;
        let Database::Postgres(url) = app.database().clone() else { unreachable!("PostgreSQL") };
        let alice = app.register("alice").await;
        let room = app.create_room(&alice, "notes", "private", &[]).await;
        let kept = "this one stays: OSPREY-77c1-GRANITE";
        for i in 0..20 {
            app.send(&alice, &room, &format!("before {i}")).await;
        }
        app.send(&alice, &room, kept).await;
        // The newest message, and long: nothing written after it moves over its space.
        let secret: String = (0..30).map(|i| format!("vault-line-{i:02}-5e0c2d ")).collect();
        let doomed = app.send(&alice, &room, secret.trim_end()).await;
        assert_eq!(row_versions_holding(&url, &secret[..40]).await, 1, "found before");
        let path = format!("/rooms/{room}/messages/{}", doomed["id"].as_str().expect("id"));
        assert_eq!(app.delete(&alice, &path).await.0, StatusCode::OK);

        eventually("no version of the row holds the deleted body", || async {
            (row_versions_holding(&url, &secret[..40]).await == 0).then_some(())
        })
        .await;
        assert_eq!(row_versions_holding(&url, kept).await, 1, "the others stay");
    })
    .await;
}

/// A reader that began after the deletion committed, while an older transaction was still
/// open, inherits that transaction's horizon: its snapshot holds the old row version as
/// surely as the older transaction did. The pass waits for it too, and the body goes once
/// it ends.
#[tokio::test]
async fn a_reader_holding_the_horizon_past_an_older_transaction_delays_erasure_but_not_for_good() {
    on_store(Store::Postgres, async {
        let app = spawn_app().await;
        let Database::Postgres(url) = app.database().clone() else { unreachable!("PostgreSQL") };
        let alice = app.register("alice").await;
        let room = app.create_room(&alice, "notes", "private", &[]).await;
        let secret: String = (0..30).map(|i| format!("held-line-{i:02}-9a41f7 ")).collect();
        let doomed = app.send(&alice, &room, secret.trim_end()).await;

        // An older transaction, with an id, open across the deletion.
        let mut older = PgConnection::connect(&url).await.expect("connect");
        sqlx::query("BEGIN").execute(&mut older).await.expect("begin");
        sqlx::query("SELECT pg_current_xact_id()").execute(&mut older).await.expect("an id");
        let path = format!("/rooms/{room}/messages/{}", doomed["id"].as_str().expect("id"));
        assert_eq!(app.delete(&alice, &path).await.0, StatusCode::OK);

        // A reader that begins after the deletion, while the older transaction is open.
        let mut reader = PgConnection::connect(&url).await.expect("connect");
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut reader)
            .await
            .expect("begin");
        sqlx::query("SELECT 1").execute(&mut reader).await.expect("a snapshot");
        sqlx::query("COMMIT").execute(&mut older).await.expect("commit");
        let ended: f64 = sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetch_one(&mut older)
            .await
            .expect("the time");

        // The server has looked at who holds snapshots, or vacuumed, since the older
        // transaction ended.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        // (The pattern is split so that this query does not match itself.)
        loop {
            let looked: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                       AND query LIKE '%FROM pg_stat_activity%' || 'backend' || '_xmin%'
                       AND query_start > to_timestamp($1))
                 OR EXISTS (SELECT 1 FROM pg_stat_user_tables
                     WHERE relname = 'messages' AND last_vacuum > to_timestamp($1))",
            )
            .bind(ended)
            .fetch_one(&mut older)
            .await
            .expect("the sessions");
            if looked {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the eraser never looked again nor vacuumed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(row_versions_holding(&url, &secret[..40]).await, 1, "held by the reader");
        sqlx::query("COMMIT").execute(&mut reader).await.expect("commit");

        eventually("no version of the row holds the deleted body", || async {
            (row_versions_holding(&url, &secret[..40]).await == 0).then_some(())
        })
        .await;
    })
    .await;
}
