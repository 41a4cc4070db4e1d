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
//! waits until no other session of this database holds a snapshot that may still see the
//! latest deletion's transaction as running (a reader holding an old snapshot delays it;
//! it says so after a minute). Transaction ids, not clocks, decide: a reader that began
//! while the deletion was committing, or after it but while an older transaction was
//! still open, holds the old version as surely as one that began before. Deletions come in
//! bursts: requests are coalesced, one pass at a time, at most one every
//! [`ERASE_INTERVAL`], each covering every deletion committed before it started. The pass
//! skips index cleanup, which autovacuum does later, and runs beside reads and writes.
//! Skipping it leaves the deleted message's entries in the search's GIN index (hashes of
//! its runs of three characters, from which someone with the files can guess at its words)
//! until then (ARCHITECTURE.md). A snapshot taken while the pass starts can still hold
//! the horizon back (its oldest id may come from a transaction of another database), and
//! a page pinned by a reader is not pruned: a pass that leaves dead versions behind is
//! followed by another, up to [`ERASE_PASSES`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The shortest time between two vacuum passes.
const ERASE_INTERVAL: Duration = Duration::from_secs(2);

/// How often to look again for older snapshots, or to try again after a failed pass.
const ERASE_RETRY: Duration = Duration::from_secs(1);

/// How long older snapshots may hold a pass back before the log says so.
const ERASE_PATIENCE: Duration = Duration::from_secs(60);

/// How many passes one deletion may take: a pass that leaves dead row versions behind
/// (a reader in another database held the horizon back, or a page was pinned) is followed
/// by another.
const ERASE_PASSES: u32 = 5;

/// The tables a deletion removes content from.
const ERASED_TABLES: [&str; 4] = ["messages", "reactions", "mentions", "media"];

/// Asks for vacuum passes; cheap to clone and to call.
#[derive(Clone)]
pub(super) struct Eraser {
    wanted: Arc<Notify>,
    /// The latest deletion's transaction (its full id): a pass waits until no snapshot
    /// may still see it running.
    latest: Arc<Mutex<i64>>,
}

impl Eraser {
    /// Starts the task that runs the passes; it stops when `stop` is cancelled.
    pub fn start(pool: PgPool, stop: CancellationToken) -> Self {
        let eraser = Self { wanted: Arc::new(Notify::new()), latest: Arc::new(Mutex::new(0)) };
        tokio::spawn(eraser.clone().run(pool, stop));
        eraser
    }

    /// A deletion made by transaction `xid` (its full id) committed: its content must
    /// leave the tables' pages.
    pub fn request(&self, xid: i64) {
        let mut latest = self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *latest = (*latest).max(xid);
        // Stores a permit if the task is busy: the next pass starts after this call.
        self.wanted.notify_one();
    }

    fn latest(&self) -> i64 {
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

    /// Waits until no snapshot may still see the latest deletion running, and vacuums;
    /// tries again after a failure, and while a pass leaves dead row versions behind (a
    /// few times: on a busy server, edits leave some all the time).
    async fn erase(&self, pool: &PgPool) {
        let since = Instant::now();
        let mut warned = false;
        let mut passes = 0;
        loop {
            let result = match snapshots_before(pool, self.latest()).await {
                Ok(0) => {
                    passes += 1;
                    vacuum(pool).await
                }
                Ok(older) => {
                    if !warned && since.elapsed() > ERASE_PATIENCE {
                        warned = true;
                        tracing::warn!(
                            older,
                            "snapshots older than a deletion have stayed open for over a minute; its old row versions stay until they end"
                        );
                    }
                    tokio::time::sleep(ERASE_RETRY).await;
                    continue;
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(left) => {
                    tokio::time::sleep(ERASE_INTERVAL).await;
                    if left == 0 || passes >= ERASE_PASSES {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "could not vacuum after a deletion; trying again");
                    tokio::time::sleep(ERASE_RETRY).await;
                }
            }
        }
    }
}

/// How many other sessions of this database hold a snapshot or a transaction that may
/// see transaction `xid` (a full id) as running: their oldest transaction id is `xid` or
/// older. Sessions report 32-bit ids, compared as PostgreSQL does, modulo 2^32 (live ids
/// are never 2^31 apart). Those of other roles are hidden from us, and not counted.
async fn snapshots_before(pool: &PgPool, xid: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(DISTINCT pid) FROM pg_stat_activity,
                LATERAL (SELECT ($1 - oldest::text::bigint) & 4294967295 AS behind
                         FROM unnest(ARRAY[backend_xmin, backend_xid]) AS oldest
                         WHERE oldest IS NOT NULL) AS held
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND held.behind < 2147483648",
    )
    .bind(xid & 0xffff_ffff)
    .fetch_one(pool)
    .await
}

/// Vacuums the tables that held deleted content, and says how many dead row versions
/// they still hold (as the pass counted them: those it could not prune yet).
async fn vacuum(pool: &PgPool) -> sqlx::Result<i64> {
    let mut db = pool.acquire().await?;
    // A pass over a large table may take longer than a request's statement may.
    sqlx::query("SET statement_timeout = 0").execute(&mut *db).await?;
    let vacuumed = sqlx::query(&format!(
        "VACUUM (INDEX_CLEANUP OFF, TRUNCATE OFF) {}",
        ERASED_TABLES.join(", ")
    ))
    .execute(&mut *db)
    .await;
    sqlx::query("RESET statement_timeout").execute(&mut *db).await?;
    vacuumed?;
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(n_dead_tup), 0)::bigint FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = ANY($1)",
    )
    .bind(&ERASED_TABLES[..])
    .fetch_one(&mut *db)
    .await
}
