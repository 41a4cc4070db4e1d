//! Searching messages: the rooms a user is a member of now, newest first.
//!
//! The store's index offers candidates (every message that may match, and a few that do
//! not); each is matched here against its text, which also says what to highlight. The
//! work one request does is bounded: it looks at so many candidates at most, and a page
//! that stops there short of `limit` still says where to go on.

use serde::{Deserialize, Serialize};

use super::App;
use crate::domain::search::{SearchQuery, Snippet};
use crate::domain::{Message, RoomId, Timestamp, UserId, ValidationError};
use crate::error::{Error, Result};
use crate::limits::Action;
use crate::store::SearchScope;

/// The most results one page returns.
pub const MAX_SEARCH_PAGE: u32 = 50;

/// The most candidates one request matches before it answers with what it has.
const CANDIDATES_MAX: usize = 2_000;

/// A search as the query string gives it.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub room_id: Option<String>,
    pub from: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of results, newest first; `next` goes on from the last.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SearchResult {
    pub message: Message,
    pub snippet: SnippetView,
}

/// A snippet as clients get it: ranges as `[start, end]` pairs.
#[derive(Debug, Serialize)]
pub struct SnippetView {
    pub text: String,
    pub highlights: Vec<[usize; 2]>,
}

impl App {
    /// Messages matching `params.q` in the rooms `viewer` is a member of now.
    pub async fn search(&self, viewer: UserId, params: &SearchParams) -> Result<SearchPage> {
        let query = SearchQuery::parse(params.q.as_deref().unwrap_or(""))
            .map_err(|error| ValidationError::new("q", error.code(), error.message()))?;
        let limit = super::page_limit(params.limit, 20, MAX_SEARCH_PAGE)?;
        let author = match &params.from {
            Some(id) => Some(id.parse::<UserId>().map_err(|_| bad("from", "a user id"))?),
            None => None,
        };
        let after = time_param("after", params.after.as_deref())?;
        let before = time_param("before", params.before.as_deref())?;
        let mut below = match &params.cursor {
            Some(cursor) => Some(parse_cursor(cursor)?),
            None => None,
        };
        let room = match &params.room_id {
            Some(room_id) => Some(self.member_room(viewer, room_id).await?),
            None => None,
        };
        self.limit(Action::Search, viewer).await?;

        let scope = SearchScope { user: viewer, room, author, after, before };
        // A few more than asked, for the candidates whose text does not match.
        let batch = limit + limit / 4 + 1;
        let mut results = Vec::new();
        let mut examined = 0;
        loop {
            let candidates = self.store().search(scope, &query, below, batch).await?;
            let exhausted = candidates.len() < batch as usize;
            for candidate in candidates {
                examined += 1;
                below = Some(candidate.position);
                let Some(found) = query.find(candidate.message.body.as_str()) else { continue };
                let snippet = Snippet::new(candidate.message.body.as_str(), &found);
                results.push(SearchResult {
                    message: candidate.message,
                    snippet: SnippetView {
                        text: snippet.text,
                        highlights: snippet.highlights.iter().map(|r| [r.start, r.end]).collect(),
                    },
                });
                if results.len() == limit as usize {
                    return Ok(SearchPage { results, next: below.map(cursor) });
                }
            }
            if exhausted {
                return Ok(SearchPage { results, next: None });
            }
            if examined >= CANDIDATES_MAX {
                return Ok(SearchPage { results, next: below.map(cursor) });
            }
        }
    }

    /// A room the viewer is a member of: a room one could join but has not is searched no
    /// more than one that does not exist.
    async fn member_room(&self, viewer: UserId, room_id: &str) -> Result<RoomId> {
        match self.visible(viewer, room_id).await? {
            (room, access) if access.role.is_some() => Ok(room),
            _ => Err(Error::NotFound("Room")),
        }
    }
}

fn time_param(field: &'static str, text: Option<&str>) -> Result<Option<Timestamp>> {
    text.map(|text| Timestamp::parse_rfc3339(text).ok_or_else(|| bad(field, "an RFC 3339 time")))
        .transpose()
}

/// Cursors are opaque to clients: a position in the search's order, in base 36.
fn cursor(position: i64) -> String {
    let mut digits = Vec::new();
    let mut n = position as u64;
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

fn parse_cursor(text: &str) -> Result<i64> {
    u64::from_str_radix(text, 36)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| bad("cursor", "the next of an earlier page"))
}

fn bad(field: &'static str, what: &str) -> Error {
    Error::bad_request("invalid_query", format!("{field} must be {what}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_go_there_and_back() {
        for position in [0, 1, 35, 36, 1_000_000, i64::MAX] {
            assert_eq!(parse_cursor(&cursor(position)).ok(), Some(position));
        }
        assert!(parse_cursor("").is_err());
        assert!(parse_cursor("-1").is_err());
        assert!(parse_cursor("zzzzzzzzzzzzzzzzzzzzzz").is_err());
    }
}
