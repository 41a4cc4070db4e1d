//! A connection's messages to one room are stored in the order it sent them. The connection
//! runs each send as a request of its own, and each waits until the one before it to that
//! room has its place among the store's writes: queued for SQLite's writer, or holding the
//! room's turn on PostgreSQL. Not until it is stored: a connection's messages still share
//! a batch, and a window of messages in flight still fills it.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

tokio::task_local! {
    static PLACE: Mutex<Option<oneshot::Sender<()>>>;
}

/// Runs `send`, telling `placed` once its message has its place (`placed` below), or once
/// it is over, whichever comes first.
pub async fn placing<F: Future>(placed: oneshot::Sender<()>, send: F) -> F::Output {
    PLACE.scope(Mutex::new(Some(placed)), send).await
}

/// Says, inside [`placing`], that the message has its place in the order of writes.
pub(crate) fn placed() {
    let _ = PLACE.try_with(|place| {
        let taken = place.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(placed) = taken {
            let _ = placed.send(());
        }
    });
}
