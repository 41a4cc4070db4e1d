//! What the database driver's errors mean to the rest of the server. sqlx's error type
//! never leaves `store/`: it becomes a [`StoreError`] here, sorted into what a caller can
//! act on (the database is unreachable: retry later) and what it cannot (a bug, a broken
//! disk: logged with its cause).

use super::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if matches!(error, sqlx::Error::PoolClosed) {
            StoreError::Closed
        } else if is_unavailability(&error) {
            StoreError::Unavailable(Box::new(error))
        } else {
            StoreError::Backend(Box::new(error))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(error) => error.into(),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

/// Whether an error means the database could not be reached or could not serve in time:
/// the connection failed or broke, the pool found no connection in time, the server said
/// it is starting, shutting down or full (SQLSTATE classes 08 and 57P, and 53300), or a
/// statement waited past its time or its lock's (57014, 55P03: a stranded transaction of a
/// node that died holds the lock until the server drops it). All are worth retrying.
pub(super) fn is_unavailability(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code.as_ref(), "53300" | "57014" | "55P03")
        }),
        _ => false,
    }
}

/// The name of the unique constraint (or unique index) an error broke, if it is a
/// uniqueness violation that the database named (PostgreSQL does; SQLite names columns
/// in its message text instead, so its store finds conflicts by other means).
pub(super) fn violated_unique(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}
