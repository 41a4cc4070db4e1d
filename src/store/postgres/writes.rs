//! How a write runs on PostgreSQL: one transaction per write, many at once.
//!
//! Each write ([`Write`]) runs on a task of its own, so a caller that goes away cannot cut
//! it between its commit and its announcement. It waits for its turn (`gate`), opens a
//! transaction, applies itself (taking the locks that guard its checks, refusing by
//! returning an error, which rolls everything back, seq included), commits, and announces
//! its changes while it still holds the turn. A write that changed nothing rolls back.
//!
//! Deadlocks and serialization failures are retried a few times from the start (nothing
//! was announced and everything was rolled back). When the connection breaks during the
//! commit, nobody can tell whether it committed: the caller is answered `Unavailable` at
//! once (a retry with the same client id is safe), and the task keeps the turn and asks
//! PostgreSQL about the transaction (`pg_xact_status`) until the database answers, then
//! announces the changes if they committed. A change is announced once, after its commit,
//! even then.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::erasure::Eraser;
use super::gate::{Gate, Turn, Turns};
use crate::store::driver::is_unavailability;
use crate::store::{Change, ChangeSink, StoreError, StoreResult};

/// How long a write waits for its room's turn before it is answered `Unavailable` (503,
/// worth retrying): the room's writes ahead of it are stuck (the database is away) or too
/// many (overload), and a prompt answer serves the caller better than a hang.
const TURN_PATIENCE: Duration = Duration::from_secs(5);

/// How many times a write that lost a deadlock or a serialization conflict is tried again.
const CONFLICT_RETRIES: u32 = 5;

/// How long a write whose commit is in doubt keeps asking whether it committed.
const IN_DOUBT_PATIENCE: Duration = Duration::from_secs(120);

/// How often it asks.
const IN_DOUBT_POLL: Duration = Duration::from_millis(500);

/// A write's transaction, and the id PostgreSQL gave it once it wrote.
pub(super) struct Tx {
    inner: sqlx::Transaction<'static, Postgres>,
    /// Who the transaction is, learnt by the first statement that asked (taking a seq
    /// does); needed only if the commit is in doubt, asked before committing otherwise.
    xid: Option<Xid>,
}

/// A transaction's id, and when the server that gave it started: after a crash, PostgreSQL
/// may give an id whose transaction never reached the disk to a new transaction, so an id
/// means the same transaction only while the server that gave it runs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Xid {
    xid: String,
    server_started: String,
}

/// Selects an [`Xid`] of the current transaction.
const XID_COLUMNS: &str =
    "pg_current_xact_id()::text AS xid, pg_postmaster_start_time()::text AS server_started";

impl Tx {
    pub fn db(&mut self) -> &mut PgConnection {
        &mut self.inner
    }

    /// Takes the room's next seq, locking the room's row until the transaction ends: the
    /// room's other writers (here and in other processes) wait for this one to commit or
    /// roll back. Rolled back, the seq is not taken. `None` if there is no such room.
    pub async fn next_seq(&mut self, room: crate::domain::RoomId) -> StoreResult<Option<i64>> {
        #[derive(sqlx::FromRow)]
        struct Taken {
            last_seq: i64,
            #[sqlx(flatten)]
            xid: Xid,
        }
        let taken: Option<Taken> = sqlx::query_as(&format!(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq, {XID_COLUMNS}"
        ))
        .bind(room.as_i64())
        .fetch_optional(self.db())
        .await?;
        Ok(taken.map(|taken| {
            self.xid = Some(taken.xid);
            taken.last_seq
        }))
    }
}

/// What a write did.
pub(super) enum Done<T> {
    /// It changed something: commit, then announce.
    Commit(T),
    /// It changed nothing (a retry of a stored message, a reaction already there): roll
    /// back whatever it took, and answer `T`.
    Rollback(T),
}

/// Why a write stopped.
pub(super) enum Failed {
    /// Refused, or failed: rolled back and answered as it is.
    Store(StoreError),
    /// Try the whole write again from the start (a random id that was taken, say).
    Retry,
}

impl<E: Into<StoreError>> From<E> for Failed {
    fn from(error: E) -> Self {
        Failed::Store(error.into())
    }
}

/// One kind of write. `apply` runs inside the write's transaction and pushes the changes it
/// made to `changes`; it may run again after a conflict, with `changes` emptied.
#[async_trait]
pub(super) trait Write: Send + 'static {
    type Output: Send + 'static;

    /// Whose turn the write takes.
    fn gate(&self) -> Gate;

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<Self::Output>, Failed>;

    /// For a write whose transaction takes no turn but whose announcement must (a marker
    /// move, which is frequent, must not wait for the room's sends, but its counts must not
    /// be announced out of order with them): the turn [`Write::after_commit`] runs in. Only
    /// for writes whose [`Write::gate`] is [`Gate::Free`]: a turn is not taken twice.
    fn announce_gate(&self) -> Gate {
        Gate::Free
    }

    /// Runs after the commit, in the turn of [`Write::announce_gate`], and may complete the
    /// answer and the changes with what the database holds now.
    async fn after_commit(
        &mut self,
        _pool: &PgPool,
        _output: &mut Self::Output,
        _changes: &mut Vec<Change>,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// The transaction (its full id) in which the write removed content that must not
    /// linger in the tables, if it did; the eraser then vacuums them once it has committed.
    fn erased_by(&self) -> Option<i64> {
        None
    }
}

/// Runs writes: the pool they use, the turns they take, where they announce.
#[derive(Clone)]
pub(super) struct Writes {
    pool: PgPool,
    turns: Arc<Turns>,
    sink: ChangeSink,
    eraser: Eraser,
    /// Writes in progress, so that closing can wait for them.
    tasks: TaskTracker,
    /// Cancelled at close: a write whose commit is in doubt stops asking about it.
    closing: CancellationToken,
}

impl Writes {
    pub fn new(pool: PgPool, sink: ChangeSink, eraser: Eraser) -> Self {
        Self {
            pool,
            turns: Arc::new(Turns::default()),
            sink,
            eraser,
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
        }
    }

    /// Runs `write` on a task of its own and waits for its answer. The write's turn is
    /// taken here, before the task starts, so that writes to one room go in the order
    /// they were submitted (a connection's messages in the order it sent them); a caller
    /// that goes away while it waits for the turn has written nothing.
    pub async fn submit<W: Write>(&self, write: W) -> StoreResult<W::Output> {
        self.submit_then(write, || ()).await
    }

    /// [`Writes::submit`], calling `placed` once the write holds its turn.
    pub async fn submit_then<W: Write>(
        &self,
        write: W,
        placed: impl FnOnce(),
    ) -> StoreResult<W::Output> {
        if self.tasks.is_closed() {
            return Err(StoreError::Closed);
        }
        let turn = tokio::time::timeout(TURN_PATIENCE, self.turns.take(write.gate()))
            .await
            .map_err(|_| StoreError::Unavailable("the room's writes ahead are stuck".into()))?;
        placed();
        let (reply, answer) = oneshot::channel();
        let writes = self.clone();
        self.tasks.spawn(async move { writes.run(write, turn, reply).await });
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Takes no more writes and waits for those in progress; one whose commit is in doubt
    /// stops asking about it (its changes are stored or not, and clients catching up read
    /// what is). Then closes the writes' connections.
    pub async fn close(&self) {
        self.tasks.close();
        self.closing.cancel();
        self.tasks.wait().await;
        self.pool.close().await;
    }

    /// Applies, commits and announces a write, holding its turn throughout.
    async fn run<W: Write>(
        &self,
        mut write: W,
        _turn: Option<Turn>,
        reply: oneshot::Sender<StoreResult<W::Output>>,
    ) {
        let mut changes = Vec::new();
        let outcome = self.attempts(&mut write, &mut changes).await;
        // The caller may have gone away; the write stands regardless.
        let committed = match outcome {
            Ok(Attempted::Committed(output)) => {
                let _ = reply.send(self.complete(&mut write, output, &mut changes).await);
                true
            }
            Ok(Attempted::Unchanged(output)) => {
                let _ = reply.send(Ok(output));
                false
            }
            Ok(Attempted::InDoubt { xid, error }) => {
                // The caller may retry; meanwhile, keep the turn until the outcome is known.
                let _ = reply.send(Err(error));
                let committed = self.committed(&xid).await;
                if committed {
                    self.announce(&changes);
                }
                committed
            }
            Err(error) => {
                let _ = reply.send(Err(error));
                false
            }
        };
        if let Some(xid) = write.erased_by().filter(|_| committed) {
            self.eraser.request(xid);
        }
    }

    /// Tries a write until it commits, changes nothing or fails for good: a deadlock, a
    /// serialization failure or a write's own request is tried again from the start, a few
    /// times.
    async fn attempts<W: Write>(
        &self,
        write: &mut W,
        changes: &mut Vec<Change>,
    ) -> StoreResult<Attempted<W::Output>> {
        let mut attempt = 0;
        loop {
            changes.clear();
            attempt += 1;
            let retry = attempt <= CONFLICT_RETRIES;
            match self.attempt(write, changes).await {
                Ok(outcome) => return Ok(outcome),
                Err(Failed::Retry) if retry => continue,
                Err(Failed::Store(error)) if retry && is_conflict(&error) => continue,
                Err(Failed::Retry) => {
                    return Err(StoreError::Backend("a write kept conflicting".into()));
                }
                Err(Failed::Store(error)) => return Err(error),
            }
        }
    }

    /// Announces a committed write's changes: at once, or, for a write with an announce
    /// gate, in that gate's turn after [`Write::after_commit`] has completed them.
    async fn complete<W: Write>(
        &self,
        write: &mut W,
        mut output: W::Output,
        changes: &mut Vec<Change>,
    ) -> StoreResult<W::Output> {
        let gate = write.announce_gate();
        if gate == Gate::Free {
            self.announce(changes);
            return Ok(output);
        }
        let _announcing = self.turns.take(gate).await;
        let completed = write.after_commit(&self.pool, &mut output, changes).await;
        self.announce(changes);
        completed.map(|()| output)
    }

    fn announce(&self, changes: &[Change]) {
        for change in changes {
            (self.sink)(change);
        }
    }

    /// One try: begin, apply, commit or roll back.
    async fn attempt<W: Write>(
        &self,
        write: &mut W,
        changes: &mut Vec<Change>,
    ) -> Result<Attempted<W::Output>, Failed> {
        let mut tx = Tx { inner: self.pool.begin().await?, xid: None };
        // Every write is a transaction of its own here: a batch of one.
        metrics::counter!(crate::metrics::STORE_BATCHES).increment(1);
        metrics::histogram!(crate::metrics::STORE_BATCH_SIZE).record(1.0);
        let output = match write.apply(&mut tx, changes).await? {
            Done::Rollback(output) => {
                tx.inner.rollback().await?;
                return Ok(Attempted::Unchanged(output));
            }
            Done::Commit(output) => output,
        };
        if changes.is_empty() {
            let committing = std::time::Instant::now();
            tx.inner.commit().await?;
            record_commit(committing);
            return Ok(Attempted::Committed(output));
        }
        let xid = match tx.xid.take() {
            Some(xid) => xid,
            None => sqlx::query_as(&format!("SELECT {XID_COLUMNS}")).fetch_one(tx.db()).await?,
        };
        let committing = std::time::Instant::now();
        match tx.inner.commit().await {
            Ok(()) => {
                record_commit(committing);
                Ok(Attempted::Committed(output))
            }
            Err(error) if is_unavailability(&error) => {
                tracing::warn!(%error, xid = xid.xid, "the database went away during a commit; asking whether it committed");
                Ok(Attempted::InDoubt { xid, error: error.into() })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the transaction `xid` committed, asked until the database answers (for at
    /// most [`IN_DOUBT_PATIENCE`], and not past closing). If the server restarted since it
    /// gave the id, the id may now be another transaction's, and the answer is no: the
    /// changes are not announced. They are stored or not, and clients read what is when
    /// they catch up or when the room's next event makes them fill the gap.
    async fn committed(&self, xid: &Xid) -> bool {
        let deadline = tokio::time::Instant::now() + IN_DOUBT_PATIENCE;
        while tokio::time::Instant::now() < deadline && !self.closing.is_cancelled() {
            let status: Result<(Option<String>, bool), sqlx::Error> = sqlx::query_as(
                "SELECT pg_xact_status($1::text::xid8),
                        pg_postmaster_start_time()::text = $2",
            )
            .bind(&xid.xid)
            .bind(&xid.server_started)
            .fetch_one(&self.pool)
            .await;
            match status {
                Ok((_, false)) => {
                    tracing::warn!(
                        xid = xid.xid,
                        "the database restarted during a commit; its changes were not announced"
                    );
                    return false;
                }
                Ok((Some(status), true)) if status == "committed" => {
                    tracing::info!(
                        xid = xid.xid,
                        "a commit in doubt did commit; announcing its changes"
                    );
                    return true;
                }
                Ok((Some(status), true)) if status == "aborted" => {
                    tracing::info!(xid = xid.xid, "a commit in doubt did not commit");
                    return false;
                }
                // Still in progress (its server process has not noticed yet), or an error:
                // ask again.
                Ok(_) | Err(_) => {
                    tokio::select! {
                        () = tokio::time::sleep(IN_DOUBT_POLL) => {}
                        () = self.closing.cancelled() => {}
                    }
                }
            }
        }
        tracing::error!(
            xid = xid.xid,
            "could not learn whether a commit in doubt committed; its changes were not announced"
        );
        false
    }
}

/// What one try came to.
enum Attempted<T> {
    Committed(T),
    Unchanged(T),
    /// The commit was sent, and the connection broke before it was answered.
    InDoubt {
        xid: Xid,
        error: StoreError,
    },
}

/// Whether an error is PostgreSQL giving up on a transaction that another one conflicted
/// with (a deadlock, a serialization failure): trying again is the cure.
/// How long a commit took, from `COMMIT` sent to its answer.
fn record_commit(started: std::time::Instant) {
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
        .record(started.elapsed().as_secs_f64());
}

fn is_conflict(error: &StoreError) -> bool {
    let StoreError::Backend(cause) = error else { return false };
    match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}
