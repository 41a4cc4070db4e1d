//! Group commit: the one thread that writes to the database.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync of a few milliseconds. One transaction per message would cap the whole server at a
//! few hundred messages a second. Instead, every write is an [`Operation`] queued here; the
//! writer takes everything that is waiting, applies it in one transaction, commits once, and
//! only then hands the batch's changes (in order) to the announcer and answers each caller.
//! While one batch waits for its fsync the next one gathers, so batches grow with the load.
//!
//! The writer is a thread of its own that owns its SQLite connection (rusqlite) and calls
//! into SQLite directly, statement after statement, with its prepared statements cached.
//! A driver that runs SQLite on a worker thread of its own (sqlx, which the readers use)
//! costs two hand-offs between threads per statement, and a batch of a thousand messages
//! is a thousand statements: that, not the fsync, was the writer's limit. The thread waits
//! for work on the async queue with the runtime's handle, so callers queue without blocking
//! a runtime thread.
//!
//! The announcer is a task beside the writer: it passes each batch's changes to the change
//! sink, batch after batch, so that they go out in commit order, while the writer answers
//! the batch's callers and commits the next batch. Announcing a message to a room of
//! thousands of connections takes milliseconds, which the callers of the whole batch used
//! to wait for. When announcing falls `ANNOUNCE_QUEUE` batches behind, the writer waits for
//! it.
//!
//! The writer is never cancelled by a caller going away: an operation that was queued is
//! applied, committed and announced even if nobody waits for the answer any more. At
//! shutdown ([`Writer::close`]) the queue stops taking operations, the writer applies the
//! ones already queued, closes its connection and waits for the announcer; closing waits
//! for all of it.
//!
//! Architecture invariant: nothing is answered and nothing is announced before the
//! transaction that holds it has committed, and changes are announced in commit order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
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

/// How big the write-ahead log may grow, in pages, before the writer checkpoints it itself:
/// a backstop for a checkpointer that cannot keep up (SQLite's default is 1,000 pages).
pub(super) const AUTOCHECKPOINT_PAGES: u32 = 16 * 1024;

/// How long the checkpointer rests after a checkpoint: the log's pages written meanwhile
/// are copied once, however often the writer changed them.
const CHECKPOINT_REST: Duration = Duration::from_millis(100);

/// Why an operation could not be applied.
pub(super) enum ApplyError {
    /// This operation is refused (not a member, a taken name); it wrote nothing, and the
    /// rest of the batch goes on.
    Refused(StoreError),
    /// The transaction itself is in doubt (an I/O error, say); the whole batch is rolled
    /// back and every operation in it fails.
    Batch(StoreError),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Batch(backend(error))
    }
}

/// A SQLite error as the rest of the server sees it.
pub(super) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// Whether an error is a uniqueness violation (of a unique index or a primary key).
pub(super) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// One kind of write. `apply` runs inside the batch's transaction, on the writer's thread,
/// and pushes the changes it made to `changes` once it has succeeded. An operation that
/// refuses must do so before it writes anything, so that refusing never leaves half a
/// change in the batch.
pub(super) trait Operation: Send + 'static {
    type Output: Send + 'static;

    fn apply(
        &mut self,
        db: &Connection,
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
pub(super) trait Queued: Send {
    /// Applies the operation; `Err` only when the batch must be rolled back.
    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<(), StoreError>;

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

impl<O: Operation> Queued for Pending<O> {
    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<(), StoreError> {
        match self.op.apply(db, changes) {
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
    /// Tells the writer to stop taking operations and finish.
    closing: CancellationToken,
    /// Says when the writer has finished, to whoever closes it first.
    finished: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

impl Writer {
    /// Starts the writer's thread on `connection`; it runs until [`Writer::close`], or
    /// until every `Writer` is dropped. Must be called within the Tokio runtime, which
    /// the thread uses to wait for work and to run the announcer.
    ///
    /// `checkpoints` is a second connection to the same database, for the checkpointer.
    pub fn start(
        connection: Connection,
        checkpoints: Connection,
        sink: ChangeSink,
    ) -> StoreResult<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE_LEN);
        let closing = CancellationToken::new();
        let (finish, finished) = oneshot::channel();
        let runtime = Handle::current();
        let until = closing.clone();
        let checkpointer = Checkpointer::start(checkpoints)?;
        std::thread::Builder::new()
            .name("confab-writer".into())
            .spawn(move || {
                run(connection, receiver, sink, until, &runtime, &checkpointer);
                checkpointer.stop();
                let _ = finish.send(());
            })
            .map_err(|error| StoreError::Backend(Box::new(error)))?;
        Ok(Self { queue, closing, finished: Arc::new(Mutex::new(Some(finished))) })
    }

    /// Stops taking operations (later ones fail with `Closed`), and waits until the writer
    /// has applied, committed and announced those already queued and closed its connection.
    pub async fn close(&self) {
        self.closing.cancel();
        let finished = self.finished.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(finished) = finished
            && finished.await.is_err()
        {
            tracing::error!("the writer thread failed");
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

/// What the writer waits for between batches.
enum Awaited {
    /// This many operations were taken from the queue (none: it is closed and empty).
    Received(usize),
    /// The store is closing.
    Closing,
    /// Time to try the pending erasure again.
    Retry,
}

/// The writer's thread: batches until the queue is closed and empty, then closes the
/// connection and waits until every committed change is announced.
fn run(
    connection: Connection,
    mut queue: mpsc::Receiver<Box<dyn Queued>>,
    sink: ChangeSink,
    closing: CancellationToken,
    runtime: &Handle,
    checkpointer: &Checkpointer,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut changes = Vec::new();
    let mut erasure = Erasure::default();
    let (announce, announcements) = mpsc::channel(ANNOUNCE_QUEUE);
    let announcer = runtime.spawn(announce_all(announcements, sink));
    loop {
        // While an erasure waits for the log to be truncated, try again every so often even
        // if no write comes. Once closing, the queue takes nothing new; what it holds is
        // still applied, and then `recv_many` says there is no more.
        let retry = erasure.pending().then_some(ERASE_RETRY);
        let awaited = runtime.block_on(async {
            tokio::select! {
                received = queue.recv_many(&mut batch, MAX_BATCH) => Awaited::Received(received),
                () = closing.cancelled(), if !queue.is_closed() => Awaited::Closing,
                () = sleep_or_never(retry) => Awaited::Retry,
            }
        });
        match awaited {
            Awaited::Received(0) => break,
            Awaited::Received(_) => {}
            Awaited::Closing => {
                queue.close();
                continue;
            }
            Awaited::Retry => {
                erasure.attempt(&connection);
                continue;
            }
        }
        metrics::counter!(crate::metrics::STORE_BATCHES).increment(1);
        metrics::histogram!(crate::metrics::STORE_BATCH_SIZE).record(batch.len() as f64);
        let failure = commit_batch(&connection, &mut batch, &mut changes).err();
        if let Some(error) = &failure {
            tracing::error!(%error, ops = batch.len(), "write batch failed and was rolled back");
            changes.clear();
        } else {
            checkpointer.nudge();
        }
        // The announcer outlives this loop, so the send fails only if it panicked; then the
        // changes are lost to the connections (who catch up with `sync`), not to the store.
        if !changes.is_empty() && announce.blocking_send(std::mem::take(&mut changes)).is_err() {
            tracing::error!("the announcer is gone; committed changes were not announced");
        }
        if failure.is_none() && batch.iter().any(|op| op.erases()) {
            erasure.request();
        }
        if erasure.pending() {
            erasure.attempt(&connection);
        }
        let failure = failure.map(|e| e.to_string());
        for op in batch.drain(..) {
            op.answer(failure.as_deref());
        }
    }
    if erasure.pending() {
        erasure.attempt(&connection);
    }
    if let Err((_, error)) = connection.close() {
        tracing::warn!(%error, "closing the write connection");
    }
    // Every committed change is announced before the store reports closed.
    drop(announce);
    if let Err(error) = runtime.block_on(announcer) {
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
fn commit_batch(
    db: &Connection,
    batch: &mut [Box<dyn Queued>],
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    execute(db, "BEGIN IMMEDIATE")?;
    let mut entries = Vec::new();
    for op in batch.iter_mut() {
        let mut applied = Ok(());
        if op.changes_search_entries() {
            applied = search::enter(db, &mut entries).map_err(backend);
        }
        if applied.is_ok() {
            applied = op.apply(db, changes);
        }
        if let Err(error) = applied {
            rollback(db);
            return Err(error);
        }
        entries.extend(op.search_entry());
    }
    if let Err(error) = search::enter(db, &mut entries) {
        rollback(db);
        return Err(backend(error));
    }
    // The commit is where the batch's fsync happens: what a confirmed write waits for.
    let committing = Instant::now();
    if let Err(error) = execute(db, "COMMIT") {
        rollback(db);
        return Err(error);
    }
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
        .record(committing.elapsed().as_secs_f64());
    Ok(())
}

/// Copies the write-ahead log into the database, on a thread and a connection of its own, so
/// that the writer's thread only appends to the log and commits. SQLite's automatic
/// checkpoints run on the connection that commits, inside the commit: 11 % of the writer's
/// time under load. After each commit the writer nudges the checkpointer, which runs a
/// passive checkpoint (it copies what no reader still needs, and never waits for a reader
/// or the writer), then rests for `CHECKPOINT_REST`. Once a checkpoint has copied the whole
/// log, the writer's next transaction starts the log again from its beginning. An erasure's
/// truncation stays with the writer, which retries it when the checkpointer is busy.
struct Checkpointer {
    nudges: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(connection: Connection) -> StoreResult<Self> {
        let (nudges, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("confab-checkpoint".into())
            .spawn(move || {
                while nudged.recv().is_ok() {
                    let checkpoint =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            row.get::<_, i64>(0)
                        });
                    if let Err(error) = checkpoint {
                        tracing::warn!(%error, "checkpointing the write-ahead log");
                    }
                    std::thread::sleep(CHECKPOINT_REST);
                }
                if let Err((_, error)) = connection.close() {
                    tracing::warn!(%error, "closing the checkpointer's connection");
                }
            })
            .map_err(|error| StoreError::Backend(Box::new(error)))?;
        Ok(Self { nudges, thread })
    }

    /// Says the log has grown; a nudge while one is waiting is the same nudge.
    fn nudge(&self) {
        let _ = self.nudges.try_send(());
    }

    /// Ends the thread after the checkpoint it may be running, and closes its connection.
    fn stop(self) {
        drop(self.nudges);
        if self.thread.join().is_err() {
            tracing::error!("the checkpointer failed");
        }
    }
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

    fn attempt(&mut self, db: &Connection) {
        if truncate_log(db) {
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
fn truncate_log(db: &Connection) -> bool {
    let checkpoint = db.busy_timeout(Duration::ZERO).and_then(|()| {
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0))
    });
    let restored = db.busy_timeout(BUSY_TIMEOUT);
    checkpoint.and_then(|busy| restored.map(|()| busy == 0)).unwrap_or_else(|error| {
        tracing::warn!(%error, "could not truncate the write-ahead log after an erasure");
        false
    })
}

/// Runs a statement without parameters (its preparation is kept for next time).
fn execute(db: &Connection, sql: &str) -> Result<(), StoreError> {
    db.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(backend)
}

fn rollback(db: &Connection) {
    // SQLite may already have rolled back on its own (after an I/O error, say); then this
    // fails harmlessly with "no transaction is active".
    if let Err(error) = execute(db, "ROLLBACK") {
        tracing::debug!(%error, "rollback after a failed batch");
    }
}
