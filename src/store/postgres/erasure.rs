//! Erasure on PostgreSQL: after a deletion commits, the tables that held the deleted
//! content are vacuumed, so that the old row versions (PostgreSQL never overwrites a row
//! in place: the body lives on in the version the deletion replaced) are pruned from their
//! pages. The bytes leave the table files when those pages are next written out (at the
//! next checkpoint); they linger in the write-ahead log until PostgreSQL recycles its
//! segments, and in any backup or archive the operator keeps.
//!
//! Deletions come in bursts and a vacuum pass costs a scan of the pages that changed, so
//! requests are coalesced: one pass at a time, at most one every [`ERASE_INTERVAL`], each
//! covering every deletion committed before it started. The pass skips index cleanup (no
//! index holds message content; autovacuum cleans them later), and it runs beside reads and
//! writes (a vacuum's lock conflicts only with another vacuum of the same table, which it
//! then waits for, in the background).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The shortest time between two vacuum passes.
const ERASE_INTERVAL: Duration = Duration::from_secs(2);

/// How long to wait before trying again after a pass failed or skipped a table.
const ERASE_RETRY: Duration = Duration::from_secs(5);

/// The tables a deletion removes content from.
const ERASED_TABLES: &str = "messages, reactions, mentions, media";

/// Asks for vacuum passes; cheap to clone and to call.
#[derive(Clone)]
pub(super) struct Eraser {
    wanted: Arc<Notify>,
}

impl Eraser {
    /// Starts the task that runs the passes; it stops when `stop` is cancelled.
    pub fn start(pool: PgPool, stop: CancellationToken) -> Self {
        let wanted = Arc::new(Notify::new());
        tokio::spawn(run(pool, wanted.clone(), stop));
        Self { wanted }
    }

    /// A deletion committed: its content must leave the tables' pages.
    pub fn request(&self) {
        // Stores a permit if the task is busy: the next pass starts after this call.
        self.wanted.notify_one();
    }
}

async fn run(pool: PgPool, wanted: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = wanted.notified() => {}
        }
        loop {
            let pause = match vacuum(&pool).await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(%error, "could not vacuum after a deletion; trying again");
                    Some(ERASE_RETRY)
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause.unwrap_or(ERASE_INTERVAL)) => {}
            }
            if pause.is_none() {
                break;
            }
        }
    }
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
