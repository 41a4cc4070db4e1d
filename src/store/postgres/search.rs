//! The search index on PostgreSQL (migrations 0005, 0006): each message row holds its
//! position in the search's order (`store/search.rs`: when it was sent) in `search_ord`,
//! under a B-tree, and its terms in `search_terms`, under a GIN index: the text's, and one
//! for its room and one for its author, so that the index itself narrows a search to the
//! searcher's rooms and to an author. Both are set by the statement that stores, edits or
//! deletes the message (a deletion clears them; the eraser then vacuums the old row version
//! away, as it does the body; the GIN index's entries for it, hashed terms rather than
//! text, stay until the table's next index vacuum, ARCHITECTURE.md).
//!
//! A search looks newest first. PostgreSQL cannot read a GIN index in the order of another
//! column: its bitmap of the messages holding the terms must be fetched whole and sorted,
//! which for a common term is thousands of rows. So a search first walks a window of recent
//! positions along the B-tree, checking each row's terms, and goes on walking while matches
//! come often enough; when they are rare, it fetches the GIN index's matches of all the
//! rest at once, which are then few. The planner is told which (`SET LOCAL`): its estimate
//! of how many rows hold a set of hashed terms is blind, and on 200,000 messages it walked
//! 20,000 rows (38 ms) for a rare word whose bitmap took 1 ms.

use sqlx::{Connection, PgConnection};

use super::messages::complete;
use crate::domain::search::SearchQuery;
use crate::domain::{RoomId, UserId};
use crate::store::rows::{CandidateRow, candidates_from, message_columns};
use crate::store::rules::SHOWN_TO_MEMBER;
use crate::store::search::{
    POSITIONS_PER_MS, TERMS_VERSION, author_gram, index_grams, position_bounds, query_grams,
    room_gram,
};
use crate::store::{Candidates, SearchScope, StoreResult};

/// A message's terms as the index holds them: its text's, its room's and its author's.
pub(super) fn message_terms(room: RoomId, author: UserId, body: &str) -> Vec<i64> {
    let mut terms = index_grams(body);
    terms.push(room_gram(room));
    terms.push(author_gram(author));
    terms
}

/// The position of a message sent at `created_at` (an SQL expression in milliseconds):
/// the first of its millisecond plus a number from a sequence, so that messages of the same
/// millisecond, from any node, are told apart.
pub(super) fn position(created_at: &str) -> String {
    format!(
        "{created_at} * {POSITIONS_PER_MS}
         + nextval('messages_search_order') % {POSITIONS_PER_MS}"
    )
}

/// How many messages of all rooms the first window holds, as a multiple of the positions
/// asked for: enough that a query matching one message in a few hundred among the
/// searcher's rooms is usually answered by one or two windows.
const FIRST_WINDOW_PER_EXAMINED: f64 = 32.0;

/// Live messages in `scope` that may match `query`, newest first, looking at no more than
/// `examine` positions the index offers.
pub(super) async fn candidates(
    db: &mut PgConnection,
    scope: SearchScope,
    query: &SearchQuery,
    below: Option<i64>,
    examine: u32,
) -> StoreResult<Candidates> {
    let nothing = Candidates { found: Vec::new(), next: None };
    let rooms: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT m.room_id FROM memberships m WHERE m.user_id = $1 AND {SHOWN_TO_MEMBER}"
    ))
    .bind(scope.user.as_i64())
    .fetch_all(&mut *db)
    .await?;
    if rooms.is_empty() || scope.room.is_some_and(|room| !rooms.contains(&room.as_i64())) {
        return Ok(nothing);
    }
    // Every term a message must hold, and, searching all the member rooms, the terms of
    // which it must hold one.
    let mut every = query_grams(query);
    let mut any = Vec::new();
    match scope.room {
        Some(room) => every.push(room_gram(room)),
        None => any = rooms.iter().map(|room| room_gram(RoomId::from_i64(*room))).collect(),
    }
    if let Some(author) = scope.author {
        every.push(author_gram(author));
    }
    // The terms' parameters are numbered as they come: PostgreSQL refuses one it is not
    // given a use for.
    let mut held = Vec::new();
    let mut terms = Vec::new();
    if !every.is_empty() {
        terms.push(every);
        held.push(format!("search_terms @> ${}", terms.len()));
    }
    if !any.is_empty() {
        terms.push(any);
        held.push(format!("search_terms && ${}", terms.len()));
    }
    let bounds = terms.len();
    let look = format!(
        "SELECT search_ord, id FROM messages
         WHERE {} AND search_ord >= ${} AND search_ord < ${}
         ORDER BY search_ord DESC LIMIT ${}",
        held.join(" AND "),
        bounds + 1,
        bounds + 2,
        bounds + 3,
    );

    let (low, high) = position_bounds(&scope, below);
    let (oldest, newest, estimate): (Option<i64>, Option<i64>, f32) = sqlx::query_as(
        "SELECT (SELECT min(search_ord) FROM messages), (SELECT max(search_ord) FROM messages),
                (SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass)",
    )
    .fetch_one(&mut *db)
    .await?;
    let (Some(oldest), Some(newest)) = (oldest, newest) else { return Ok(nothing) };
    let floor = low.max(oldest);
    let mut top = high.min(newest.saturating_add(1));
    if floor >= top {
        return Ok(nothing);
    }
    // Messages per position, were they sent evenly: unknown (0) before the table's first
    // analysis, and then the look is one bitmap scan of the GIN index.
    let density = f64::from(estimate.max(0.0)) / (newest - oldest + 1) as f64;
    let mut width = first_width(newest - oldest + 1, f64::from(estimate), examine);
    let mut walked = 0.0;
    let mut looked: Vec<(i64, i64)> = Vec::new();
    let look = |bottom: i64, top: i64, wanted: usize| {
        let mut statement = sqlx::query_as::<_, (i64, i64)>(&look);
        for terms in &terms {
            statement = statement.bind(terms);
        }
        // Unnamed: planned for these bounds, never as a generic plan.
        statement.bind(bottom).bind(top).bind(wanted as i64).persistent(false)
    };
    let mut tx = db.begin().await?;
    let next = loop {
        let wanted = examine as usize - looked.len();
        if density > 0.0 && width > 0 {
            // A window of positions, walked newest first along their B-tree.
            let bottom = top.saturating_sub(width).max(floor);
            sqlx::query("SET LOCAL enable_bitmapscan = off").execute(&mut *tx).await?;
            looked.extend(look(bottom, top, wanted).fetch_all(&mut *tx).await?);
            if looked.len() == examine as usize {
                break looked.last().map(|(position, _)| *position);
            }
            if bottom <= floor {
                break None;
            }
            walked += (top - bottom) as f64 * density;
            top = bottom;
            let remaining = (top - floor) as f64 * density;
            width = match next_walk(walked, looked.len(), examine as usize, remaining) {
                Some(rows) => ((rows / density) as i64).max(1),
                None => 0,
            };
            continue;
        }
        // The rest at once: the GIN index's bitmap of every message below that holds the
        // terms, fetched and sorted.
        sqlx::query("SET LOCAL enable_bitmapscan = on").execute(&mut *tx).await?;
        sqlx::query("SET LOCAL enable_indexscan = off").execute(&mut *tx).await?;
        looked.extend(look(floor, top, wanted).fetch_all(&mut *tx).await?);
        break match looked.last() {
            Some((position, _)) if looked.len() == examine as usize => Some(*position),
            _ => None,
        };
    };
    tx.commit().await?;
    if looked.is_empty() {
        return Ok(Candidates { found: Vec::new(), next });
    }

    let ids: Vec<i64> = looked.iter().map(|(_, id)| *id).collect();
    let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
        "SELECT m.search_ord AS position, {columns}
         FROM messages m LEFT JOIN messages p ON p.id = m.reply_to
         WHERE m.id = ANY($1) AND m.room_id = ANY($2)
           AND ($3::bigint IS NULL OR m.room_id = $3) AND ($4::bigint IS NULL OR m.author_id = $4)
           AND m.deleted_at IS NULL
         ORDER BY m.search_ord DESC",
        columns = message_columns(),
    ))
    .bind(&ids)
    .bind(&rooms)
    .bind(scope.room.map(|r| r.as_i64()))
    .bind(scope.author.map(|a| a.as_i64()))
    .fetch_all(&mut *db)
    .await?;
    let found = candidates_from(rows, |rows| complete(db, rows)).await?;
    Ok(Candidates { found, next })
}

/// The first window's width in positions: enough to hold [`FIRST_WINDOW_PER_EXAMINED`]
/// times `examine` messages of all rooms, were they sent evenly over `span` positions.
/// One window over everything when the table's size is not known yet.
fn first_width(span: i64, messages: f64, examine: u32) -> i64 {
    if messages < 1.0 {
        return span;
    }
    let share = FIRST_WINDOW_PER_EXAMINED * f64::from(examine) / messages;
    if share >= 1.0 { span } else { ((span as f64) * share).max(1.0) as i64 }
}

/// What fetching a row the GIN index's bitmap offers costs, in rows walked along the
/// B-tree (which come in the order they were written, mostly from pages just read): EXPLAIN
/// ANALYZE on 200,000 messages, 1,514 rows walked in 2.4 ms, 1,560 fetched in 6.1 ms.
const BITMAP_ROW_COST: f64 = 2.5;

/// How many rows the next window should hold, or `None` when fetching the GIN index's
/// matches for all of the `remaining` rows at once costs less. Walking finds what is still
/// wanted at the rate found so far in the `walked` rows (with room to spare); the index's
/// bitmap fetches every match of the rest, at the same rate. A term held by few messages
/// goes to the bitmap after the first window, a common one keeps walking.
fn next_walk(walked: f64, found: usize, examine: usize, remaining: f64) -> Option<f64> {
    if found == 0 || walked <= 0.0 {
        return None;
    }
    let rate = found as f64 / walked;
    let walk = (examine - found) as f64 / rate * 1.5;
    (walk < BITMAP_ROW_COST * rate * remaining).then_some(walk)
}

/// How many messages one transaction of the fill-in indexes.
const BACKLOG_BATCH: i64 = 2_000;

/// The advisory lock the fill-in holds (a number of Confab's own, apart from sqlx's
/// migration lock), so that one node at a time makes the index.
const FILL_IN_LOCK: i64 = 0x636f_6e66_6162_0006;

/// Makes the index as the store opens: when it was made another way ([`TERMS_VERSION`];
/// 0 after migration 0006), every message's number and terms are cleared and every live
/// message is indexed again, in batches, oldest first. Several nodes may start at once and
/// others may be serving: the whole fill-in runs under a session advisory lock, so a
/// starting node waits until another's fill-in is done, then finds nothing to do, and no
/// node starts serving while part of the index is still being made. Messages sent
/// meanwhile through serving nodes are indexed by their inserts; an edit or a deletion of a
/// message in a batch waits for the batch's row lock, then writes its own terms.
pub(super) async fn fill_in(db: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_lock($1)").bind(FILL_IN_LOCK).execute(&mut *db).await?;
    let filled = fill_in_locked(db).await;
    // On an error the connection is dropped, which ends the session and its lock.
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(FILL_IN_LOCK).execute(&mut *db).await?;
    let count = filled?;
    if count > 0 {
        tracing::info!(count, "indexed messages for search");
    }
    Ok(())
}

async fn fill_in_locked(db: &mut PgConnection) -> StoreResult<usize> {
    let version: i64 =
        sqlx::query_scalar("SELECT terms_version FROM search_state").fetch_one(&mut *db).await?;
    if version != TERMS_VERSION {
        let mut tx = db.begin().await?;
        sqlx::query(
            "UPDATE messages SET search_ord = NULL, search_terms = NULL
             WHERE search_ord IS NOT NULL OR search_terms IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE search_state SET terms_version = $1")
            .bind(TERMS_VERSION)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let place = format!(
        "UPDATE messages t SET search_terms = v.terms::bigint[], search_ord = {}
         FROM UNNEST($1::bigint[], $2::text[]) AS v (id, terms)
         WHERE t.id = v.id",
        position("t.created_at")
    );
    let mut count = 0;
    loop {
        let mut tx = db.begin().await?;
        // Locked, so that an edit or a deletion of one of them waits for this batch and
        // then writes its own terms over the ones made here.
        let batch: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT id, room_id, author_id, body FROM messages
             WHERE search_ord IS NULL AND deleted_at IS NULL
             ORDER BY created_at, id LIMIT $1 FOR UPDATE",
        )
        .bind(BACKLOG_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, ..)| *id).collect();
        // An array of arrays must be rectangular: each message's terms travel as text.
        let terms: Vec<String> = batch
            .iter()
            .map(|(_, room, author, body)| {
                let terms = message_terms(RoomId::from_i64(*room), UserId::from_i64(*author), body);
                let terms: Vec<String> = terms.iter().map(i64::to_string).collect();
                format!("{{{}}}", terms.join(","))
            })
            .collect();
        sqlx::query(&place).bind(&ids).bind(&terms).execute(&mut *tx).await?;
        tx.commit().await?;
        count += batch.len();
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_terms_walk_on_and_rare_ones_go_to_the_index() {
        // One match in 100 rows of 100,000 left: walking 2,400 rows beats fetching 1,000.
        assert_eq!(next_walk(1_000.0, 10, 26, 100_000.0), Some(2_400.0));
        // One in 1,000: fetching 100 beats walking 37,500.
        assert_eq!(next_walk(1_000.0, 1, 26, 100_000.0), None);
        assert_eq!(next_walk(1_000.0, 0, 26, 100_000_000.0), None);
    }

    #[test]
    fn the_first_window_holds_a_multiple_of_what_is_examined() {
        assert_eq!(first_width(1_000_000, 0.0, 26), 1_000_000);
        assert_eq!(first_width(1_000_000, 100.0, 26), 1_000_000);
        assert_eq!(first_width(1_000_000, 1_000_000.0, 26), 832);
    }
}
