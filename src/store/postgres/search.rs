//! The search index on PostgreSQL (migration 0005): each message row holds its terms
//! (`store/search.rs`) in `search_terms`, under a GIN index, and its number in the search's
//! order in `search_ord`, both set by the statement that stores, edits or deletes it (a
//! deletion clears its terms; the eraser then vacuums the old row version away, as it does
//! the body; the index's entries for it, numbers rather than text, go at the table's next
//! index vacuum).

use sqlx::{Connection, PgConnection};

use super::messages::complete;
use crate::domain::search::SearchQuery;
use crate::store::rows::{CandidateRow, candidates_from, message_columns};
use crate::store::rules::SHOWN_TO_MEMBER;
pub(super) use crate::store::search::index_grams;
use crate::store::search::query_grams;
use crate::store::{Candidates, SearchScope, StoreResult};

/// Messages the index may offer for `query`, newest first.
pub(super) async fn candidates(
    db: &mut PgConnection,
    scope: SearchScope,
    query: &SearchQuery,
    below: Option<i64>,
    limit: u32,
) -> StoreResult<Candidates> {
    let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
        "SELECT m.search_ord AS position, {columns}
         FROM messages m LEFT JOIN messages p ON p.id = m.reply_to
         WHERE m.search_terms @> $1 AND m.search_ord < $2
           AND m.room_id IN (SELECT m.room_id FROM memberships m
                             WHERE m.user_id = $3 AND {SHOWN_TO_MEMBER})
           AND ($4::bigint IS NULL OR m.room_id = $4) AND ($5::bigint IS NULL OR m.author_id = $5)
           AND m.created_at >= $6 AND m.created_at < $7 AND m.deleted_at IS NULL
         ORDER BY m.search_ord DESC LIMIT $8",
        columns = message_columns(),
    ))
    .bind(query_grams(query))
    .bind(below.unwrap_or(i64::MAX))
    .bind(scope.user.as_i64())
    .bind(scope.room.map(|r| r.as_i64()))
    .bind(scope.author.map(|a| a.as_i64()))
    .bind(scope.after.map_or(i64::MIN, |t| t.as_millis()))
    .bind(scope.before.map_or(i64::MAX, |t| t.as_millis()))
    .bind(i64::from(limit))
    .fetch_all(&mut *db)
    .await?;
    let next = match rows.last() {
        Some(last) if rows.len() == limit as usize => Some(last.position),
        _ => None,
    };
    let found = candidates_from(rows, |rows| complete(db, rows)).await?;
    Ok(Candidates { found, next })
}

/// How many messages one transaction of the backlog indexes.
const BACKLOG_BATCH: i64 = 2_000;

/// Indexes the messages stored before search came in, oldest first, in batches, as
/// migrations run. Other nodes may be serving and starting meanwhile: each batch locks the
/// rows it indexes (an edit or a deletion of one waits, then writes its own terms), and
/// takes them only while they still lack a number, so two nodes never index one twice.
pub(super) async fn fill_in(db: &mut PgConnection) -> StoreResult<()> {
    let mut count = 0;
    loop {
        let mut tx = db.begin().await?;
        let batch: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, body FROM messages WHERE search_ord IS NULL AND deleted_at IS NULL
             ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BACKLOG_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if batch.is_empty() {
            break;
        }
        // Numbers in the messages' order: drawn at once, handed out smallest first.
        let mut ords: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('messages_search_order') FROM generate_series(1, $1)",
        )
        .bind(batch.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        ords.sort_unstable();
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        // An array of arrays must be rectangular: each message's terms travel as text.
        let terms: Vec<String> = batch
            .iter()
            .map(|(_, body)| {
                let grams: Vec<String> = index_grams(body).iter().map(i64::to_string).collect();
                format!("{{{}}}", grams.join(","))
            })
            .collect();
        sqlx::query(
            "UPDATE messages t SET search_terms = v.terms::bigint[], search_ord = v.ord
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) AS v (id, terms, ord)
             WHERE t.id = v.id",
        )
        .bind(&ids)
        .bind(&terms)
        .bind(&ords)
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
