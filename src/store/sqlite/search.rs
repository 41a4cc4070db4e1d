//! The search index on SQLite (migrations 0008, 0009): each message's position in the
//! search's order (`store/search.rs`) is on its row, `search_pos`, under an index, and
//! `search_text`, a contentless FTS5 table, holds its terms under that position. Both are
//! written in the transaction that stores, edits or deletes the message, so a confirmed
//! message is searchable at once and a crash cannot leave the index and the messages out
//! of step. A deleted or edited message's old terms leave the index by FTS5's `delete`
//! command, given the same terms (made again from the old text); with `secure-delete` that
//! removes them from the index's pages, and `secure_delete` zeroes what they leave free, as
//! it does for the message itself.

use sqlx::{Connection, SqliteConnection};

use super::messages::complete;
use crate::domain::search::SearchQuery;
use crate::domain::{RoomId, UserId};
use crate::store::rows::{CandidateRow, candidates_from, message_columns};
use crate::store::rules::SHOWN_TO_MEMBER;
use crate::store::search::{
    POSITIONS_PER_MS, TERMS_VERSION, index_text, match_expression, position_bounds,
};
use crate::store::{Candidates, SearchScope, StoreResult};

/// A message's terms as the index holds them: its text's, and one each for its room and its
/// author, so that a search of one room or by one person, or by someone in few rooms, is
/// narrowed by the index itself rather than row by row after it.
pub(super) fn message_terms(room: RoomId, author: UserId, body: &str) -> String {
    let text = index_text(body);
    let (room, author) = (room_term(room.as_i64()), author_term(author.as_i64()));
    if text.is_empty() { format!("{room} {author}") } else { format!("{text} {room} {author}") }
}

fn room_term(room: i64) -> String {
    format!("r{room:x}")
}

fn author_term(author: i64) -> String {
    format!("u{author:x}")
}

/// A searcher in at most this many rooms has the index narrow to them; beyond, their rooms
/// hold most messages anyway, and the rows are checked one by one.
const ROOMS_IN_QUERY_MAX: usize = 16;

/// The position of a message sent at the parameter `created_at` (milliseconds): the first
/// of its millisecond that no message holds yet.
pub(super) fn next_position(created_at: &str) -> String {
    format!(
        "COALESCE((SELECT max(search_pos) + 1 FROM messages
                   WHERE search_pos >= {created_at} * {POSITIONS_PER_MS}
                     AND search_pos < ({created_at} + 1) * {POSITIONS_PER_MS}),
                  {created_at} * {POSITIONS_PER_MS})"
    )
}

/// A new message's terms, to be entered in the index under its position before its batch
/// commits (`writer.rs`).
pub(super) struct SearchEntry {
    pub position: i64,
    pub terms: String,
}

/// Enters `entries` in the index, in one statement, and empties the list (on the writer's
/// connection).
pub(super) fn enter(
    db: &rusqlite::Connection,
    entries: &mut Vec<SearchEntry>,
) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    db.prepare_cached(ENTER)?.execute([listed(entries)])?;
    entries.clear();
    Ok(())
}

/// Enters the entries listed in `?1` (as [`listed`] makes them).
const ENTER: &str = "INSERT INTO search_text (rowid, terms)
                         SELECT value ->> 0, value ->> 1 FROM json_each(?1)";

/// Entries as a JSON list of `[position, terms]`, for [`ENTER`].
fn listed(entries: &[SearchEntry]) -> String {
    let listed: Vec<(i64, &str)> =
        entries.iter().map(|entry| (entry.position, entry.terms.as_str())).collect();
    serde_json::to_string(&listed).expect("numbers and text")
}

/// Takes a message's terms out of the index, before it is edited or deleted: `terms` are
/// those it was entered with, made again from its text as it was.
pub(super) fn remove(
    db: &rusqlite::Connection,
    room: RoomId,
    seq: i64,
    terms: &str,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO search_text (search_text, rowid, terms)
             SELECT 'delete', search_pos, ?3 FROM messages
             WHERE room_id = ?1 AND seq = ?2 AND search_pos IS NOT NULL",
    )?
    .execute(rusqlite::params![room.as_i64(), seq, terms])?;
    Ok(())
}

/// Enters an edited message's new terms, at the position it had.
pub(super) fn reenter(
    db: &rusqlite::Connection,
    room: RoomId,
    seq: i64,
    terms: &str,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO search_text (rowid, terms)
             SELECT search_pos, ?3 FROM messages
             WHERE room_id = ?1 AND seq = ?2 AND search_pos IS NOT NULL",
    )?
    .execute(rusqlite::params![room.as_i64(), seq, terms])?;
    Ok(())
}

/// Live messages in `scope` that may match `query`, newest first, looking at no more than
/// `examine` positions the index offers.
pub(super) async fn candidates(
    db: &mut SqliteConnection,
    scope: SearchScope,
    query: &SearchQuery,
    below: Option<i64>,
    examine: u32,
) -> StoreResult<Candidates> {
    let mut narrowing = Vec::new();
    if let Some(room) = scope.room {
        narrowing.push(room_term(room.as_i64()));
    } else {
        let rooms: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT m.room_id FROM memberships m WHERE m.user_id = ?1 AND {SHOWN_TO_MEMBER}"
        ))
        .bind(scope.user.as_i64())
        .fetch_all(&mut *db)
        .await?;
        if rooms.is_empty() {
            return Ok(Candidates { found: Vec::new(), next: None });
        }
        if rooms.len() <= ROOMS_IN_QUERY_MAX {
            let terms: Vec<String> = rooms.into_iter().map(room_term).collect();
            narrowing.push(format!("({})", terms.join(" OR ")));
        }
    }
    if let Some(author) = scope.author {
        narrowing.push(author_term(author.as_i64()));
    }
    let expression = std::iter::once(match_expression(query))
        .chain(narrowing)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" AND ");
    let (low, high) = position_bounds(&scope, below);
    // The positions to look at, newest first: the index's, or, when nothing narrows the
    // search, every message's.
    let look = if expression.is_empty() {
        "SELECT search_pos FROM messages WHERE ?1 = '' AND search_pos >= ?2 AND search_pos < ?3
         ORDER BY search_pos DESC LIMIT ?4"
    } else {
        "SELECT rowid FROM search_text
         WHERE search_text MATCH ?1 AND rowid >= ?2 AND rowid < ?3
         ORDER BY rowid DESC LIMIT ?4"
    };
    let positions: Vec<i64> = sqlx::query_scalar(look)
        .bind(expression)
        .bind(low)
        .bind(high)
        .bind(i64::from(examine))
        .fetch_all(&mut *db)
        .await?;
    let next = match positions.last() {
        Some(&last) if positions.len() == examine as usize => Some(last),
        _ => None,
    };
    if positions.is_empty() {
        return Ok(Candidates { found: Vec::new(), next });
    }
    let listed = serde_json::to_string(&positions).expect("numbers");
    let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
        "SELECT m.search_pos AS position, {columns}
         FROM json_each(?1) j
         CROSS JOIN messages m ON m.search_pos = j.value
         LEFT JOIN messages p ON p.id = m.reply_to
         WHERE m.room_id IN (SELECT m.room_id FROM memberships m
                             WHERE m.user_id = ?2 AND {SHOWN_TO_MEMBER})
           AND (?3 IS NULL OR m.room_id = ?3) AND (?4 IS NULL OR m.author_id = ?4)
           AND m.deleted_at IS NULL
         ORDER BY m.search_pos DESC",
        columns = message_columns(),
    ))
    .bind(listed)
    .bind(scope.user.as_i64())
    .bind(scope.room.map(|r| r.as_i64()))
    .bind(scope.author.map(|a| a.as_i64()))
    .fetch_all(&mut *db)
    .await?;
    let found = candidates_from(rows, |rows| complete(db, rows)).await?;
    Ok(Candidates { found, next })
}

/// How many messages of the backlog one transaction indexes.
const BACKLOG_BATCH: i64 = 2_000;

/// Makes the index as the store opens, on the writing connection (nothing else writes
/// then): when it was made another way ([`TERMS_VERSION`]), it is emptied and every live
/// message is listed in `search_backlog`; the messages listed there are then indexed in
/// batches, oldest first. Every later start finds nothing to do.
pub(super) async fn fill_in(db: &mut SqliteConnection) -> StoreResult<()> {
    let version: i64 =
        sqlx::query_scalar("SELECT terms_version FROM search_state").fetch_one(&mut *db).await?;
    if version != TERMS_VERSION {
        let mut tx = db.begin().await?;
        sqlx::query(
            "INSERT INTO search_text (search_text) VALUES ('delete-all');
             UPDATE messages SET search_pos = NULL WHERE search_pos IS NOT NULL;
             DELETE FROM search_backlog;
             INSERT INTO search_backlog (room_id, seq)
                 SELECT room_id, seq FROM messages WHERE deleted_at IS NULL
                 ORDER BY created_at, seq;",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE search_state SET terms_version = ?1")
            .bind(TERMS_VERSION)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let place = format!(
        "UPDATE messages SET search_pos = {} WHERE room_id = ?1 AND seq = ?2
         RETURNING search_pos",
        next_position("?3")
    );
    let mut count = 0;
    loop {
        let mut tx = db.begin().await?;
        let batch: Vec<(i64, i64, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT b.id, m.room_id, m.seq, m.author_id, m.created_at, m.body
             FROM search_backlog b JOIN messages m ON m.room_id = b.room_id AND m.seq = b.seq
             WHERE m.deleted_at IS NULL AND m.search_pos IS NULL ORDER BY b.id LIMIT ?1",
        )
        .bind(BACKLOG_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = batch.last().map(|row| row.0) else {
            sqlx::query("DELETE FROM search_backlog").execute(&mut *tx).await?;
            tx.commit().await?;
            break;
        };
        let mut entries = Vec::with_capacity(batch.len());
        for (_, room, seq, author, created_at, body) in &batch {
            let position: i64 = sqlx::query_scalar(&place)
                .bind(room)
                .bind(seq)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
            let terms = message_terms(RoomId::from_i64(*room), UserId::from_i64(*author), body);
            entries.push(SearchEntry { position, terms });
        }
        sqlx::query(ENTER).bind(listed(&entries)).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM search_backlog WHERE id <= ?1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        count += batch.len();
    }
    if count > 0 {
        tracing::info!(count, "indexed messages for search");
    }
    Ok(())
}
