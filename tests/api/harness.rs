//! The harness itself: `#[each_store]` runs each half on its store, the shared PostgreSQL
//! cluster gives every server a database of its own, and a private cluster stops and
//! starts again on its port with its data.

use sqlx::{Connection, PgConnection};

use crate::support::postgres;
use crate::support::{Store, each_store};

#[each_store]
async fn each_half_of_a_test_runs_on_the_store_it_is_named_after() {
    let name = std::thread::current().name().unwrap_or_default().to_owned();
    let expected = if name.ends_with("::postgres") { Store::Postgres } else { Store::Sqlite };
    assert!(name.ends_with("::sqlite") || name.ends_with("::postgres"), "test name {name:?}");
    assert_eq!(crate::support::store::current(), expected, "{name}");
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
