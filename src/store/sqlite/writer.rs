//! Group commit: the one task that writes to the database.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync of a few milliseconds. One transaction per message would cap the whole server at a
//! few hundred messages a second. Instead, every write is an [`Operation`] queued here; the
//! task takes everything that is waiting, applies it in one transaction, commits once, and
//! only then hands the batch's changes (in order) to the announcer and answers each caller.
//! While one batch waits for its fsync the next one gathers, so batches grow with the load.
//!
//! The announcer is a task of its own, beside the writer: it passes each batch's changes to
//! the change sink, batch after batch, so that they go out in commit order, while the
//! writer answers the batch's callers and commits the next batch. Announcing a message to
//! a room of thousands of connections takes milliseconds, which the callers of the whole
//! batch used to wait for. When announcing falls `ANNOUNCE_QUEUE` batches behind, the
//! writer waits for it.
//!
//! The task owns the write connection and is never cancelled by a caller going away: an
//! operation that was queued is applied, committed and announced even if nobody waits for
//! the answer any more. At shutdown ([`Writer::close`]) the queue stops taking operations,
//! the task applies the ones already queued, and only then closes the connection; closing
//! waits for it.
//!
//! Architecture invariant: nothing is answered and nothing is announced before the
//! transaction that holds it has committed, and changes are announced in commit order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BUSY_TIMEOUT;
use super::search::{self, SearchEntry};

use crate::store::{Change, ChangeSink, StoreError, StoreResult};

/// The most operations one transaction takes; bounds the work lost to a failed commit.
const MAX_BATCH: usize = 1024;

/// How many writes may wait for the writer before callers wait to enqueue.
pub(super) const QUEUE_LEN: usize = 16 * 1024;

/// How many committed batches may wait to be announced before the writer waits.
const ANNOUNCE_QUEUE: usize = 16;

/// Why an operation could not be applied.
pub(super) enum ApplyError {
    /// This operation is refused (not a member, a taken name); it wrote nothing, and the
    /// rest of the batch goes on.
    Refused(StoreError),
    /// The transaction itself is in doubt (an I/O error, say); the whole batch is rolled
    /// back and every operation in it fails.
    Batch(StoreError),
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Batch(error.into())
    }
}

/// One kind of write. `apply` runs inside the batch's transaction and pushes the changes it
/// made to `changes` once it has succeeded. An operation that refuses must do so before it
/// writes anything, so that refusing never leaves half a change in the batch.
#[async_trait]
pub(super) trait Operation: Send + 'static {
    type Output: Send + 'static;

    async fn apply(
        &mut self,
        connection: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Self::Output, ApplyError>;

    /// Whether this operation removes content that must not survive anywhere on disk; the
    /// writer then checkpoints and truncates the write-ahead log after the commit, so the
    /// old pages leave the log as well.
    fn erases(&self) -> bool {
        false
    }

    /// What this operation, applied, leaves for the writer to enter in the search index
    /// (`search::enter`) before the batch commits.
    fn search_entry(&mut self) -> Option<SearchEntry> {
        None
    }

    /// Whether this operation changes the search index's entries itself (an edit, a
    /// deletion): the entries waiting to be entered go in before it runs.
    fn changes_search_entries(&self) -> bool {
        false
    }
}

/// An operation on its way through a batch, type-erased so that one queue holds them all.
#[async_trait]
pub(super) trait Queued: Send {
    /// Applies the operation; `Err` only when the batch must be rolled back.
    async fn apply(
        &mut self,
        connection: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<(), StoreError>;

    /// Answers the caller: with the operation's own result, or with the batch's failure.
    fn answer(self: Box<Self>, batch_failure: Option<&str>);

    fn erases(&self) -> bool;

    fn search_entry(&mut self) -> Option<SearchEntry>;

    fn changes_search_entries(&self) -> bool;
}

pub(super) struct Pending<O: Operation> {
    op: O,
    reply: oneshot::Sender<StoreResult<O::Output>>,
    result: Option<StoreResult<O::Output>>,
}

#[async_trait]
impl<O: Operation> Queued for Pending<O> {
    async fn apply(
        &mut self,
        connection: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<(), StoreError> {
        match self.op.apply(connection, changes).await {
            Ok(output) => self.result = Some(Ok(output)),
            Err(ApplyError::Refused(error)) => self.result = Some(Err(error)),
            Err(ApplyError::Batch(error)) => return Err(error),
        }
        Ok(())
    }

    fn erases(&self) -> bool {
        self.op.erases()
    }

    fn search_entry(&mut self) -> Option<SearchEntry> {
        self.op.search_entry()
    }

    fn changes_search_entries(&self) -> bool {
        self.op.changes_search_entries()
    }

    fn answer(self: Box<Self>, batch_failure: Option<&str>) {
        let result = match self.result {
            Some(result) if batch_failure.is_none() => result,
            _ => Err(StoreError::BatchFailed(
                batch_failure.unwrap_or("the operation was not applied").to_owned(),
            )),
        };
        // The caller may have gone away; the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The sending side of the writer's queue.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Queued>>,
    /// Tells the task to stop taking operations and finish.
    closing: CancellationToken,
    /// The task, awaited by whoever closes the writer first.
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    /// Starts the writer task on `connection`; it runs until [`Writer::close`], or until
    /// every `Writer` is dropped.
    pub fn start(connection: SqliteConnection, sink: ChangeSink) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_LEN);
        let closing = CancellationToken::new();
        let task = tokio::spawn(run(connection, receiver, sink, closing.clone()));
        Self { queue, closing, task: Arc::new(Mutex::new(Some(task))) }
    }

    /// Stops taking operations (later ones fail with `Closed`), and waits until the task
    /// has applied, committed and announced those already queued and closed its connection.
    pub async fn close(&self) {
        self.closing.cancel();
        let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the writer task failed");
        }
    }

    /// Queues an operation and waits for its answer.
    pub async fn submit<O: Operation>(&self, op: O) -> StoreResult<O::Output> {
        self.submit_then(op, || ()).await
    }

    /// Queues an operation, calls `queued` once it has its place in the queue, and waits
    /// for its answer.
    pub async fn submit_then<O: Operation>(
        &self,
        op: O,
        queued: impl FnOnce(),
    ) -> StoreResult<O::Output> {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(Pending { op, reply, result: None });
        self.queue.send(pending).await.map_err(|_| StoreError::Closed)?;
        queued();
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(
    mut connection: SqliteConnection,
    mut queue: mpsc::Receiver<Box<dyn Queued>>,
    sink: ChangeSink,
    closing: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut changes = Vec::new();
    let mut erasure = Erasure::default();
    let (announce, announcements) = mpsc::channel(ANNOUNCE_QUEUE);
    let announcer = tokio::spawn(announce_all(announcements, sink));
    loop {
        // While an erasure waits for the log to be truncated, try again every so often even
        // if no write comes. Once closing, the queue takes nothing new; what it holds is
        // still applied, and then `recv_many` says there is no more.
        let retry = erasure.pending().then_some(ERASE_RETRY);
        let received = tokio::select! {
            received = queue.recv_many(&mut batch, MAX_BATCH) => received,
            () = closing.cancelled(), if !queue.is_closed() => {
                queue.close();
                continue;
            }
            () = sleep_or_never(retry) => {
                erasure.attempt(&mut connection).await;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        metrics::counter!(crate::metrics::STORE_BATCHES).increment(1);
        metrics::histogram!(crate::metrics::STORE_BATCH_SIZE).record(batch.len() as f64);
        let failure = commit_batch(&mut connection, &mut batch, &mut changes).await.err();
        if let Some(error) = &failure {
            tracing::error!(%error, ops = batch.len(), "write batch failed and was rolled back");
            changes.clear();
        }
        // The announcer outlives this loop, so the send fails only if it panicked; then the
        // changes are lost to the connections (who catch up with `sync`), not to the store.
        if !changes.is_empty() && announce.send(std::mem::take(&mut changes)).await.is_err() {
            tracing::error!("the announcer is gone; committed changes were not announced");
        }
        if failure.is_none() && batch.iter().any(|op| op.erases()) {
            erasure.request();
        }
        if erasure.pending() {
            erasure.attempt(&mut connection).await;
        }
        let failure = failure.map(|e| e.to_string());
        for op in batch.drain(..) {
            op.answer(failure.as_deref());
        }
    }
    if erasure.pending() {
        erasure.attempt(&mut connection).await;
    }
    if let Err(error) = sqlx::Connection::close(connection).await {
        tracing::warn!(%error, "closing the write connection");
    }
    // Every committed change is announced before the store reports closed.
    drop(announce);
    if let Err(error) = announcer.await {
        tracing::error!(%error, "the announcer failed");
    }
}

/// Passes each committed batch's changes to `sink`, batch after batch, in commit order.
async fn announce_all(mut batches: mpsc::Receiver<Vec<Change>>, sink: ChangeSink) {
    while let Some(changes) = batches.recv().await {
        for change in &changes {
            sink(change);
        }
    }
}

/// Sleeps for `duration`, or forever without one.
async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Applies every operation in one transaction and commits it.
///
/// New messages' search entries are entered together at the end of the batch (and before
/// any operation that changes entries itself), in one statement: FTS5 writes what it holds
/// to disk at every statement that may be rolled back alone, so an entry per message, each
/// followed by the next message's insert, would write a segment of the index per message.
async fn commit_batch(
    connection: &mut SqliteConnection,
    batch: &mut [Box<dyn Queued>],
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    execute(connection, "BEGIN IMMEDIATE").await?;
    let mut entries = Vec::new();
    for op in batch.iter_mut() {
        let mut applied = Ok(());
        if op.changes_search_entries() {
            applied = search::enter(connection, &mut entries).await.map_err(Into::into);
        }
        if applied.is_ok() {
            applied = op.apply(connection, changes).await;
        }
        if let Err(error) = applied {
            rollback(connection).await;
            return Err(error);
        }
        entries.extend(op.search_entry());
    }
    if let Err(error) = search::enter(connection, &mut entries).await {
        rollback(connection).await;
        return Err(error.into());
    }
    // The commit is where the batch's fsync happens: what a confirmed write waits for.
    let committing = std::time::Instant::now();
    if let Err(error) = execute(connection, "COMMIT").await {
        rollback(connection).await;
        return Err(error);
    }
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
        .record(committing.elapsed().as_secs_f64());
    Ok(())
}

/// How often an erasure that a reader held up is tried again.
const ERASE_RETRY: Duration = Duration::from_secs(1);
/// How long an erasure may wait before the log says so.
const ERASE_PATIENCE: Duration = Duration::from_secs(60);

/// An erasure waiting for the write-ahead log to be truncated.
///
/// Deleted content is zeroed in the new page images (secure_delete), but the old images stay
/// in the log until it is checkpointed and truncated. The checkpoint cannot finish while a
/// reader still uses an older snapshot; it is attempted without waiting (the writer must
/// never stall behind a reader), and again after each batch and every second until it
/// succeeds. A reader that never lets go (an external backup holding a transaction open,
/// say) delays the erasure for as long as it holds on.
#[derive(Default)]
struct Erasure {
    since: Option<Instant>,
    warned: bool,
}

impl Erasure {
    fn request(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }

    fn pending(&self) -> bool {
        self.since.is_some()
    }

    async fn attempt(&mut self, connection: &mut SqliteConnection) {
        if truncate_log(connection).await {
            self.since = None;
            self.warned = false;
        } else if let Some(since) = self.since
            && !self.warned
            && since.elapsed() > ERASE_PATIENCE
        {
            self.warned = true;
            tracing::warn!(
                "a reader has kept the write-ahead log busy for over a minute; deleted messages stay in it until it lets go"
            );
        }
    }
}

/// Copies the log into the database and empties it, without waiting for readers. Returns
/// whether it did.
async fn truncate_log(connection: &mut SqliteConnection) -> bool {
    let result = async {
        execute(connection, "PRAGMA busy_timeout = 0").await?;
        let done: (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *connection).await?;
        execute(connection, &format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis())).await?;
        Ok::<_, StoreError>(done.0 == 0)
    }
    .await;
    result.unwrap_or_else(|error| {
        tracing::warn!(%error, "could not truncate the write-ahead log after an erasure");
        false
    })
}

async fn execute(connection: &mut SqliteConnection, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(connection).await.map(|_| ()).map_err(Into::into)
}

async fn rollback(connection: &mut SqliteConnection) {
    // SQLite may already have rolled back on its own (after an I/O error, say); then this
    // fails harmlessly with "no transaction is active".
    if let Err(error) = execute(connection, "ROLLBACK").await {
        tracing::debug!(%error, "rollback after a failed batch");
    }
}
