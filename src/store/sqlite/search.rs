//! The search index on SQLite (migration 0008): `search_rows` numbers messages as they are
//! stored and says where each is, and `search_text`, a contentless FTS5 table, holds each
//! one's terms (`store/search.rs`) under that number. Both are written in the transaction
//! that stores, edits or deletes the message, so a confirmed message is searchable at once
//! and a crash cannot leave the index and the messages out of step. FTS5's `secure-delete`
//! removes a deleted message's entries from the index's pages, and `secure_delete` zeroes
//! what they leave free, as it does for the message itself.

use sqlx::SqliteConnection;

use super::messages::complete;
use crate::domain::RoomId;
use crate::domain::search::SearchQuery;
use crate::store::rows::{CandidateRow, message_columns};
use crate::store::rules::SHOWN_TO_MEMBER;
pub(super) use crate::store::search::index_text;
use crate::store::search::match_expression;
use crate::store::{Candidate, SearchScope, StoreResult};

/// What follows a message's insert (`ops/messages.rs`, whose `?1` and `?2` are the terms
/// and the room), when it stored a row. Each statement uses the lowest parameters it can:
/// sqlx binds a statement's unused parameters below its highest one in order from what the
/// statements before left, and stops binding where those run out.
pub(super) const ENTER: &str = "
    INSERT INTO search_rows (room_id, seq, author_id, created_at)
        SELECT room_id, seq, author_id, created_at FROM messages
        WHERE room_id = ?2 AND seq = (SELECT last_seq FROM rooms WHERE id = ?2)
          AND changes() > 0;
    INSERT INTO search_text (rowid, terms) SELECT last_insert_rowid(), ?1 WHERE changes() > 0";

/// Replaces an edited message's terms.
pub(super) async fn reindex(
    db: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
    terms: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE search_text SET terms = ?1
         WHERE rowid = (SELECT id FROM search_rows WHERE room_id = ?2 AND seq = ?3)",
    )
    .bind(terms)
    .bind(room.as_i64())
    .bind(seq)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Takes a deleted message out of the index.
pub(super) async fn remove(db: &mut SqliteConnection, room: RoomId, seq: i64) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM search_text
         WHERE rowid = (SELECT id FROM search_rows WHERE room_id = ?1 AND seq = ?2);
         DELETE FROM search_rows WHERE room_id = ?1 AND seq = ?2",
    )
    .bind(room.as_i64())
    .bind(seq)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Messages the index may offer for `query`, newest first.
pub(super) async fn candidates(
    db: &mut SqliteConnection,
    scope: SearchScope,
    query: &SearchQuery,
    below: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<Candidate>> {
    // The index leads (CROSS JOIN keeps SQLite from reordering): it yields numbers newest
    // first, each looked up by its primary key, until enough pass the filters.
    let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
        "SELECT s.id AS position, {columns}
         FROM search_text t
         CROSS JOIN search_rows s ON s.id = t.rowid
         CROSS JOIN messages m ON m.room_id = s.room_id AND m.seq = s.seq
         LEFT JOIN messages p ON p.id = m.reply_to
         WHERE search_text MATCH ?1 AND t.rowid < ?2
           AND s.room_id IN (SELECT m.room_id FROM memberships m
                             WHERE m.user_id = ?3 AND {SHOWN_TO_MEMBER})
           AND (?4 IS NULL OR s.room_id = ?4) AND (?5 IS NULL OR s.author_id = ?5)
           AND s.created_at >= ?6 AND s.created_at < ?7 AND m.deleted_at IS NULL
         ORDER BY t.rowid DESC LIMIT ?8",
        columns = message_columns(),
    ))
    .bind(match_expression(query))
    .bind(below.unwrap_or(i64::MAX))
    .bind(scope.user.as_i64())
    .bind(scope.room.map(|r| r.as_i64()))
    .bind(scope.author.map(|a| a.as_i64()))
    .bind(scope.after.map_or(i64::MIN, |t| t.as_millis()))
    .bind(scope.before.map_or(i64::MAX, |t| t.as_millis()))
    .bind(i64::from(limit))
    .fetch_all(&mut *db)
    .await?;
    let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
    let messages = complete(db, rows.into_iter().map(|r| r.row).collect()).await?;
    Ok(positions
        .into_iter()
        .zip(messages)
        .map(|(position, (_, message))| Candidate { position, message })
        .collect())
}

/// How many messages of the backlog one transaction indexes.
const BACKLOG_BATCH: i64 = 2_000;

/// Indexes the messages stored before search came in (listed, oldest first, by migration
/// 0008 in `search_backlog`), in batches, on the writing connection as the store opens:
/// nothing else writes then. Every later start finds the backlog empty.
pub(super) async fn fill_in(db: &mut SqliteConnection) -> StoreResult<()> {
    use sqlx::Connection;
    let mut count = 0;
    loop {
        let mut tx = db.begin().await?;
        let batch: Vec<(i64, i64, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT b.id, m.room_id, m.seq, m.author_id, m.created_at, m.body
             FROM search_backlog b JOIN messages m ON m.room_id = b.room_id AND m.seq = b.seq
             WHERE m.deleted_at IS NULL ORDER BY b.id LIMIT ?1",
        )
        .bind(BACKLOG_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = batch.last().map(|row| row.0) else {
            sqlx::query("DELETE FROM search_backlog").execute(&mut *tx).await?;
            tx.commit().await?;
            break;
        };
        for (_, room, seq, author, created_at, body) in &batch {
            sqlx::query(
                "INSERT INTO search_rows (room_id, seq, author_id, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING;
                 INSERT INTO search_text (rowid, terms) SELECT last_insert_rowid(), ?5
                 WHERE changes() > 0",
            )
            .bind(room)
            .bind(seq)
            .bind(author)
            .bind(created_at)
            .bind(index_text(body))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM search_backlog WHERE id <= ?1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        count += batch.len();
    }
    if count > 0 {
        tracing::info!(count, "indexed messages stored before search for search");
    }
    Ok(())
}
