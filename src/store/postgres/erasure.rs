//! Erasure on PostgreSQL: after a deletion commits, the tables that held the deleted
//! content are vacuumed, so that the row versions the deletion replaced (PostgreSQL never
//! overwrites a row in place: the body lives on in the old version) are pruned from their
//! pages promptly rather than whenever autovacuum comes by.
//!
//! What this does not do, because PostgreSQL cannot: pruning frees the old version's space
//! in its page without zeroing it, so fragments of a deleted body can stay in the table
//! files until that space is written over; and they stay in the write-ahead log until
//! PostgreSQL recycles its segments, and in any backup or archive the operator keeps.
//! ARCHITECTURE.md says so; SQLite, which zeroes freed space, is the store for operators
//! who need deleted content gone from every disk.
//!
//! A pass can only prune versions that no open transaction may still read, so it first
//! waits until every transaction that started before the latest deletion has ended (a
//! reader holding an old snapshot delays it; it says so after a minute). Deletions come in
//! bursts: requests are coalesced, one pass at a time, at most one every
//! [`ERASE_INTERVAL`], each covering every deletion committed before it started. The pass
//! skips index cleanup (no index holds message content; autovacuum cleans them later), and
//! runs beside reads and writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The shortest time between two vacuum passes.
const ERASE_INTERVAL: Duration = Duration::from_secs(2);

/// How often to look again for older transactions, or to try again after a failed pass.
const ERASE_RETRY: Duration = Duration::from_secs(1);

/// How long older transactions may hold a pass back before the log says so.
const ERASE_PATIENCE: Duration = Duration::from_secs(60);

/// The tables a deletion removes content from.
const ERASED_TABLES: &str = "messages, reactions, mentions, media";

/// Asks for vacuum passes; cheap to clone and to call.
#[derive(Clone)]
pub(super) struct Eraser {
    wanted: Arc<Notify>,
    /// When the latest deletion took place, by the database's clock (seconds since the
    /// epoch): a pass waits for every transaction older than that.
    latest: Arc<Mutex<f64>>,
}

impl Eraser {
    /// Starts the task that runs the passes; it stops when `stop` is cancelled.
    pub fn start(pool: PgPool, stop: CancellationToken) -> Self {
        let eraser = Self { wanted: Arc::new(Notify::new()), latest: Arc::new(Mutex::new(0.0)) };
        tokio::spawn(eraser.clone().run(pool, stop));
        eraser
    }

    /// A deletion made at `at` (the database's clock) committed: its content must leave
    /// the tables' pages.
    pub fn request(&self, at: f64) {
        let mut latest = self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *latest = latest.max(at);
        // Stores a permit if the task is busy: the next pass starts after this call.
        self.wanted.notify_one();
    }

    fn latest(&self) -> f64 {
        *self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn run(self, pool: PgPool, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wanted.notified() => {}
            }
            // A pass may wait and take long: stopping does not wait for it.
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.erase(&pool) => {}
            }
        }
    }

    /// Waits until no transaction older than the latest deletion is open, and vacuums;
    /// tries again after a failure.
    async fn erase(&self, pool: &PgPool) {
        let since = Instant::now();
        let mut warned = false;
        loop {
            let result = match older_transactions(pool, self.latest()).await {
                Ok(0) => vacuum(pool).await,
                Ok(older) => {
                    if !warned && since.elapsed() > ERASE_PATIENCE {
                        warned = true;
                        tracing::warn!(
                            older,
                            "transactions older than a deletion have stayed open for over a minute; its old row versions stay until they end"
                        );
                    }
                    tokio::time::sleep(ERASE_RETRY).await;
                    continue;
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => {
                    tokio::time::sleep(ERASE_INTERVAL).await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not vacuum after a deletion; trying again");
                    tokio::time::sleep(ERASE_RETRY).await;
                }
            }
        }
    }
}

/// How many other transactions of this database began before `at` and still hold a
/// snapshot (those of other roles are hidden from us, and not counted).
async fn older_transactions(pool: &PgPool, at: f64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_xmin IS NOT NULL AND xact_start <= to_timestamp($1)",
    )
    .bind(at)
    .fetch_one(pool)
    .await
}

async fn vacuum(pool: &PgPool) -> sqlx::Result<()> {
    let mut db = pool.acquire().await?;
    // A pass over a large table may take longer than a request's statement may.
    sqlx::query("SET statement_timeout = 0").execute(&mut *db).await?;
    let vacuumed =
        sqlx::query(&format!("VACUUM (INDEX_CLEANUP OFF, TRUNCATE OFF) {ERASED_TABLES}"))
            .execute(&mut *db)
            .await;
    sqlx::query("RESET statement_timeout").execute(&mut *db).await?;
    vacuumed.map(|_| ())
}
