//! The harness itself: `#[each_store]` runs each half on its store (servers started by
//! `spawn_app` and `ServerProcess` included, restarts too), the shared PostgreSQL cluster
//! gives every server a database of its own, and a private cluster stops and starts again
//! on its port with its data.

use confab::config::Database;
use sqlx::{Connection, PgConnection};

use crate::support::postgres;
use crate::support::{ServerProcess, Store, TestApp, each_store, spawn_app};

#[each_store]
async fn each_half_of_a_test_runs_on_the_store_it_is_named_after() {
    let name = std::thread::current().name().unwrap_or_default().to_owned();
    let expected = if name.ends_with("::postgres") { Store::Postgres } else { Store::Sqlite };
    assert!(name.ends_with("::sqlite") || name.ends_with("::postgres"), "test name {name:?}");
    assert_eq!(crate::support::store::current(), expected, "{name}");
}

#[each_store]
async fn servers_keep_their_records_in_the_store_of_their_half() {
    let app = spawn_app().await;
    app.register("alice").await;
    let store = crate::support::store::current();
    assert_eq!(users_in(app.database(), app.data_path()).await, 1, "{store:?}");
    let app = app.restart().await;
    assert_eq!(users_in(app.database(), app.data_path()).await, 1, "the same after a restart");

    let data_dir = tempfile::tempdir().expect("temp dir");
    let start = || {
        ServerProcess::start(|command| {
            command.arg("--data-dir").arg(data_dir.path());
        })
    };
    let mut first = start().await;
    TestApp::external(first.address).register("bob").await;
    first.terminate().await;
    let second = start().await;
    let (status, _) = TestApp::external(second.address)
        .call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(serde_json::json!({"username": "bob", "password": "password-bob"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "the process found its database again");
    let sqlite_file = data_dir.path().join("confab.db").exists();
    assert_eq!(sqlite_file, store == Store::Sqlite, "confab.db only on SQLite ({store:?})");
}

/// How many users the server's database holds, read past the API; on PostgreSQL, also
/// that the data directory holds no SQLite database.
async fn users_in(database: &Database, data_dir: &std::path::Path) -> i64 {
    let count = "SELECT COUNT(*) FROM users";
    match database {
        Database::Embedded => {
            let url = format!("sqlite://{}", data_dir.join("confab.db").display());
            let mut sqlite = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite");
            sqlx::query_scalar(count).fetch_one(&mut sqlite).await.expect("count")
        }
        Database::Postgres(url) => {
            assert!(!data_dir.join("confab.db").exists(), "no SQLite file on PostgreSQL");
            let mut postgres = PgConnection::connect(url).await.expect("connect");
            sqlx::query_scalar(count).fetch_one(&mut postgres).await.expect("count")
        }
    }
}

#[tokio::test]
async fn a_test_without_the_attribute_runs_on_sqlite() {
    assert_eq!(crate::support::store::current(), Store::Sqlite);
}

#[tokio::test]
async fn every_server_gets_a_database_of_its_own_on_the_shared_cluster() {
    if !postgres::available() {
        return;
    }
    let cluster = postgres::shared().await;
    let (first, second) = (cluster.create_database().await, cluster.create_database().await);
    assert_ne!(first, second);
    assert!(first.starts_with("postgres://postgres@127.0.0.1:"), "loopback only: {first}");

    let mut one = PgConnection::connect(&first).await.expect("the first database is reachable");
    let mut other = PgConnection::connect(&second).await.expect("the second is reachable");
    assert_eq!(tables(&mut one).await, 0, "a fresh database has no tables: the server makes them");
    sqlx::query("CREATE TABLE mine (x int)").execute(&mut one).await.expect("create a table");
    assert_eq!(tables(&mut one).await, 1);
    assert_eq!(tables(&mut other).await, 0, "another server's database is untouched");
    assert!(
        std::ptr::eq(cluster, postgres::shared().await),
        "one cluster for the whole test process"
    );
}

#[tokio::test]
async fn a_private_cluster_stops_and_starts_again_on_its_port_with_its_data() {
    let Some(cluster) = postgres::private_cluster().await else {
        return;
    };
    assert_ne!(cluster.port(), postgres::shared().await.port(), "not the shared cluster");
    let url = cluster.create_database().await;
    let mut connection = PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("CREATE TABLE kept (word text); INSERT INTO kept VALUES ('still here')")
        .execute(&mut connection)
        .await
        .expect("write");
    let _ = connection.close().await;
    let port = cluster.port();

    cluster.stop().await;
    assert!(PgConnection::connect(&url).await.is_err(), "a stopped cluster refuses connections");
    cluster.start().await;

    assert_eq!(cluster.port(), port);
    assert_eq!(cluster.url("x"), format!("postgres://postgres@127.0.0.1:{port}/x"));
    let mut connection = PgConnection::connect(&url).await.expect("connect after the restart");
    let word: String =
        sqlx::query_scalar("SELECT word FROM kept").fetch_one(&mut connection).await.expect("read");
    assert_eq!(word, "still here");
    let _ = connection.close().await;

    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    assert!(!dir.exists(), "a dropped private cluster leaves nothing behind: {}", dir.display());
}

async fn tables(connection: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(connection)
        .await
        .expect("count tables")
}
