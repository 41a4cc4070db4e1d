//! Which store the servers of a test run on. `#[each_store]` (tests/macros) runs a test's
//! body once per [`Store`] under [`on_store`], which sets a task-local that
//! `spawn_app`, `spawn_app_with` and `ServerProcess::start` read; a test without the
//! attribute runs on SQLite.
//!
//! On PostgreSQL each new server gets a fresh database on the shared cluster, so tests stay
//! as independent as their temporary data directories make them on SQLite. A server
//! started again over the same data directory gets the same database, as it would find
//! the same `confab.db` there.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use confab::config::Database;

use super::postgres;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The embedded database, `confab.db` in the data directory.
    Sqlite,
    /// A database of its own on the harness's PostgreSQL cluster.
    Postgres,
}

tokio::task_local! {
    static STORE: Store;
}

/// The store this test runs on: the one [`on_store`] set, else SQLite. A task the test
/// spawns does not inherit it; the harness starts servers from the test's own task.
pub fn current() -> Store {
    STORE.try_with(|store| *store).unwrap_or(Store::Sqlite)
}

/// Runs one half of an `#[each_store]` test: `test` with the harness set to `store`.
/// The PostgreSQL half returns at once where PostgreSQL is missing (after a notice), and
/// fails under `CI`.
pub async fn on_store(store: Store, test: impl Future<Output = ()>) {
    if store == Store::Postgres && !postgres::available() {
        return;
    }
    STORE.scope(store, test).await
}

/// The database for a new server of this test.
pub async fn fresh_database() -> Database {
    match current() {
        Store::Sqlite => Database::Embedded,
        Store::Postgres => Database::Postgres(postgres::shared().await.create_database().await),
    }
}

/// On PostgreSQL, the URL of the database that goes with `data_dir` (an absolute path):
/// the one made for the first server started over that directory, or a fresh one.
pub async fn postgres_for(data_dir: &Path) -> String {
    static BY_DATA_DIR: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    let lock = || BY_DATA_DIR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(url) = lock().get(data_dir) {
        return url.clone();
    }
    let url = postgres::shared().await.create_database().await;
    lock().insert(data_dir.to_path_buf(), url.clone());
    url
}

/// Runs `sql` on a server's database, past the API: to put a record in a state the API
/// cannot (a flow past its expiry, say).
pub async fn execute(database: &Database, data_dir: &Path, sql: &str) {
    use sqlx::Connection;
    match database {
        Database::Embedded => {
            let url = format!("sqlite://{}", data_dir.join("confab.db").display());
            let mut sqlite = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite");
            sqlx::raw_sql(sql).execute(&mut sqlite).await.expect("SQL runs on SQLite");
        }
        Database::Postgres(url) => {
            let mut postgres = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&mut postgres).await.expect("SQL runs on PostgreSQL");
        }
    }
}
