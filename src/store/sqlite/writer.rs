//! Group commit: the one task that writes messages and read markers.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for
//! an fsync of a few milliseconds. One transaction per message would cap the whole server
//! at a few hundred messages a second. Instead, writes queue here; the task takes
//! everything that is waiting, applies it in one transaction, commits once, and only then
//! runs each new message's commit hook (in seq order) and answers each caller. While one
//! batch waits for its fsync the next one gathers, so batches grow with the load.
//!
//! Architecture invariant: nothing is answered, and no message reaches the bus, before the
//! transaction that holds it has committed.

use std::sync::Arc;

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::rows::MessageRow;
use crate::domain::{Message, MessageId, RoomId, UserId};
use crate::store::{CommitHook, Inserted, NewMessage, StoreError, StoreResult};

/// The most operations one transaction takes; bounds the work lost to a failed commit and
/// the time other writers wait for the connection.
const MAX_BATCH: usize = 1024;

/// How many writes may wait for the writer before callers wait to enqueue.
pub(super) const QUEUE_LEN: usize = 16 * 1024;

/// One write that waits for the next batch.
pub(super) enum WriteOp {
    Message {
        message: NewMessage,
        on_commit: CommitHook,
        reply: oneshot::Sender<StoreResult<Inserted>>,
    },
    MarkRead {
        room: RoomId,
        user: UserId,
        seq: i64,
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

/// An operation applied inside the open transaction, waiting for the commit to be answered.
enum Applied {
    Message {
        on_commit: CommitHook,
        reply: oneshot::Sender<StoreResult<Inserted>>,
        result: StoreResult<Inserted>,
    },
    MarkRead {
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

/// Why an operation could not be applied.
enum ApplyError {
    /// This operation is refused (not a member, say); the rest of the batch goes on.
    Refused(StoreError),
    /// The transaction itself is in doubt; the whole batch is rolled back.
    Batch(StoreError),
}

/// Runs until every sender is gone, then returns after the last batch.
pub(super) async fn run(
    connection: Arc<Mutex<SqliteConnection>>,
    mut queue: mpsc::Receiver<WriteOp>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut connection = connection.lock().await;
        commit_batch(&mut connection, std::mem::take(&mut batch)).await;
    }
}

async fn commit_batch(connection: &mut SqliteConnection, ops: Vec<WriteOp>) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE").await {
        return fail_all(Vec::new(), ops, error);
    }
    let mut applied = Vec::with_capacity(ops.len());
    let mut ops = ops.into_iter();
    while let Some(op) = ops.next() {
        match apply(connection, op).await {
            Ok(done) => applied.push(done),
            Err((op, error)) => {
                rollback(connection).await;
                let rest = std::iter::once(op).chain(ops).collect();
                return fail_all(applied, rest, error);
            }
        }
    }
    if let Err(error) = execute(connection, "COMMIT").await {
        rollback(connection).await;
        return fail_all(applied, Vec::new(), error);
    }
    for done in applied {
        deliver(done);
    }
}

/// Runs the commit hook of a new message and answers the caller. The hook runs even when
/// the caller has gone away: the message is stored, so it must be broadcast.
fn deliver(done: Applied) {
    match done {
        Applied::Message { on_commit, reply, result } => {
            if let Ok(Inserted::New(message)) = &result {
                on_commit(message);
            }
            let _ = reply.send(result);
        }
        Applied::MarkRead { reply } => {
            let _ = reply.send(Ok(()));
        }
    }
}

/// Answers every operation of a rolled-back batch with the error that ended it.
fn fail_all(applied: Vec<Applied>, pending: Vec<WriteOp>, error: StoreError) {
    tracing::error!(%error, ops = applied.len() + pending.len(), "write batch failed and was rolled back");
    let failure = || StoreError::BatchFailed(error.to_string());
    for done in applied {
        match done {
            Applied::Message { reply, .. } => drop(reply.send(Err(failure()))),
            Applied::MarkRead { reply } => drop(reply.send(Err(failure()))),
        }
    }
    for op in pending {
        match op {
            WriteOp::Message { reply, .. } => drop(reply.send(Err(failure()))),
            WriteOp::MarkRead { reply, .. } => drop(reply.send(Err(failure()))),
        }
    }
}

/// Applies one operation. On an error that puts the transaction in doubt, hands the
/// operation back so that the batch can answer it.
async fn apply(
    connection: &mut SqliteConnection,
    op: WriteOp,
) -> Result<Applied, (WriteOp, StoreError)> {
    match op {
        WriteOp::Message { message, on_commit, reply } => {
            match insert_message(connection, &message).await {
                Ok(inserted) => Ok(Applied::Message { on_commit, reply, result: Ok(inserted) }),
                Err(ApplyError::Refused(error)) => {
                    Ok(Applied::Message { on_commit, reply, result: Err(error) })
                }
                Err(ApplyError::Batch(error)) => {
                    Err((WriteOp::Message { message, on_commit, reply }, error))
                }
            }
        }
        WriteOp::MarkRead { room, user, seq, reply } => {
            let updated = sqlx::query(
                "UPDATE memberships SET last_read_seq = ?1
                 WHERE room_id = ?2 AND user_id = ?3 AND last_read_seq < ?1",
            )
            .bind(seq)
            .bind(room.as_i64())
            .bind(user.as_i64())
            .execute(&mut *connection)
            .await;
            match updated {
                Ok(_) => Ok(Applied::MarkRead { reply }),
                Err(error) => Err((WriteOp::MarkRead { room, user, seq, reply }, error.into())),
            }
        }
    }
}

/// Stores one message under the room's next seq. The INSERT is one statement that reads
/// the seq, checks membership and writes the row, so a refused message leaves nothing
/// behind and never burns a seq.
async fn insert_message(
    connection: &mut SqliteConnection,
    message: &NewMessage,
) -> Result<Inserted, ApplyError> {
    let batch_error = |e: sqlx::Error| ApplyError::Batch(e.into());
    if let Some(client_id) = &message.client_id {
        let existing: Option<MessageRow> = sqlx::query_as(
            "SELECT id, room_id, seq, author_id, body, client_id, created_at FROM messages
             WHERE room_id = ?1 AND author_id = ?2 AND client_id = ?3",
        )
        .bind(message.room_id.as_i64())
        .bind(message.author_id.as_i64())
        .bind(client_id.as_str())
        .fetch_optional(&mut *connection)
        .await
        .map_err(batch_error)?;
        if let Some(row) = existing {
            return Ok(Inserted::Existing(row.into_message()));
        }
    }

    // A random 63-bit id can collide with an existing one, very rarely; draw again.
    let mut id = message.id;
    let seq = loop {
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO messages (room_id, seq, id, author_id, body, client_id, created_at)
             SELECT r.id, r.last_seq + 1, ?1, ?2, ?3, ?4, ?5 FROM rooms r
             WHERE r.id = ?6
               AND EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = ?2)
             RETURNING seq",
        )
        .bind(id.as_i64())
        .bind(message.author_id.as_i64())
        .bind(message.body.as_str())
        .bind(message.client_id.as_ref().map(|c| c.as_str()))
        .bind(message.created_at.as_millis())
        .bind(message.room_id.as_i64())
        .fetch_optional(&mut *connection)
        .await;
        match inserted {
            Ok(Some(seq)) => break seq,
            Ok(None) => return Err(ApplyError::Refused(StoreError::NotMember)),
            Err(error) if is_unique_violation_of(&error, "messages.id") => {
                id = MessageId::generate()
            }
            Err(error) => return Err(batch_error(error)),
        }
    };

    sqlx::query("UPDATE rooms SET last_seq = ?1 WHERE id = ?2")
        .bind(seq)
        .bind(message.room_id.as_i64())
        .execute(&mut *connection)
        .await
        .map_err(batch_error)?;
    // Sending counts as reading everything up to one's own message.
    sqlx::query(
        "UPDATE memberships SET last_read_seq = ?1
         WHERE room_id = ?2 AND user_id = ?3 AND last_read_seq < ?1",
    )
    .bind(seq)
    .bind(message.room_id.as_i64())
    .bind(message.author_id.as_i64())
    .execute(&mut *connection)
    .await
    .map_err(batch_error)?;

    Ok(Inserted::New(Message {
        id,
        room_id: message.room_id,
        seq,
        author_id: message.author_id,
        body: message.body.clone(),
        client_id: message.client_id.clone(),
        created_at: message.created_at,
    }))
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

/// Whether an error is a UNIQUE violation of the given `table.column`.
pub(super) fn is_unique_violation_of(error: &sqlx::Error, column: &str) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.message().contains(column),
        _ => false,
    }
}

/// Helpers for the store's public methods: enqueue an op and wait for its answer.
pub(super) async fn submit<T>(
    queue: &mpsc::Sender<WriteOp>,
    make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteOp,
) -> StoreResult<T> {
    let (reply, answer) = oneshot::channel();
    queue.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}
