//! Searching messages: the rooms a user is a member of now, newest first.
//!
//! The store's index offers candidates (every message that may match, and a few that do
//! not); each is matched here against its text, which also says what to highlight. The
//! work one request does is bounded: it looks at so many candidates at most, and a page
//! that stops there short of `limit` still says where to go on.
//!
//! A page's `next` is a position in the search's order, signed with the server's key: a
//! bare position (the time a message was sent, perhaps one in a room the searcher is not
//! in) would tell what it should not, and would let a client make up places to start from.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::App;
use crate::domain::search::{SearchQuery, Snippet};
use crate::domain::{Message, RoomId, Timestamp, UserId, ValidationError};
use crate::error::{Error, Result};
use crate::limits::Action;
use crate::store::{Candidates, SearchScope};

/// The most results one page returns.
pub const MAX_SEARCH_PAGE: u32 = 50;

/// The most positions one request looks at before it answers with what it has.
const CANDIDATES_MAX: usize = 2_000;

/// The most positions one look at the index takes.
const EXAMINE_MAX: u32 = 1_000;

/// A search as the query string gives it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words and "quoted phrases", every one of which a message must hold.
    pub q: Option<String>,
    /// Only this room's messages.
    pub room_id: Option<String>,
    /// Only this user's messages (a user id).
    pub from: Option<String>,
    /// Only messages sent after this time (RFC 3339).
    pub after: Option<String>,
    /// Only messages sent before this time (RFC 3339).
    pub before: Option<String>,
    /// 1 to 50; 20 when absent.
    pub limit: Option<u32>,
    /// The `next` of the page before, to go on from it.
    pub cursor: Option<String>,
}

/// A page of results, newest first; `next` goes on from the last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    /// Where to go on from (as `cursor`), or null at the end.
    #[schema(required = true)]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub message: Message,
    pub snippet: SnippetView,
}

/// A snippet as clients get it: ranges as `[start, end]` pairs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SnippetView {
    pub text: String,
    /// Matched ranges of `text`, `[start, end)` in UTF-16 code units.
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
            Some(cursor) => Some(self.parse_cursor(cursor)?),
            None => None,
        };
        let room = match &params.room_id {
            Some(room_id) => Some(self.member_room(viewer, room_id).await?),
            None => None,
        };
        self.limit(Action::Search, viewer).await?;

        let scope = SearchScope { user: viewer, room, author, after, before };
        let query = Arc::new(query);
        let mut results = Vec::new();
        // A few more than asked at first, for the candidates whose text does not match, and
        // more each time after, where matches are few.
        let mut examine = limit + limit / 4 + 1;
        let mut examined = 0;
        loop {
            let Candidates { found, next } =
                self.store().search(scope, &query, below, examine).await?;
            examined += examine as usize;
            // Matching reads every candidate's text: off the threads that serve sockets.
            let matching = Arc::clone(&query);
            let matched = tokio::task::spawn_blocking(move || {
                found
                    .into_iter()
                    .filter_map(|candidate| {
                        let found = matching.find(candidate.message.body.as_str())?;
                        let snippet = Snippet::new(candidate.message.body.as_str(), &found);
                        Some((
                            candidate.position,
                            SearchResult {
                                message: candidate.message,
                                snippet: SnippetView {
                                    text: snippet.text,
                                    highlights: snippet
                                        .highlights
                                        .iter()
                                        .map(|r| [r.start, r.end])
                                        .collect(),
                                },
                            },
                        ))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(Error::internal)?;
            for (position, result) in matched {
                results.push(result);
                if results.len() == limit as usize {
                    return Ok(SearchPage { results, next: Some(self.cursor(position)) });
                }
            }
            let Some(next) = next else {
                return Ok(SearchPage { results, next: None });
            };
            below = Some(next);
            if examined >= CANDIDATES_MAX {
                return Ok(SearchPage { results, next: Some(self.cursor(next)) });
            }
            examine = (examine * 4).min(EXAMINE_MAX);
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

    /// The `next` of a page that ends at `position`.
    fn cursor(&self, position: i64) -> String {
        self.inner.search_cursors.seal(position)
    }

    /// The position a page's `next` ends at, if this server (or another node of its
    /// cluster) made it.
    fn parse_cursor(&self, text: &str) -> Result<i64> {
        self.inner
            .search_cursors
            .open(text)
            .ok_or_else(|| bad("cursor", "the next of an earlier page"))
    }
}

fn time_param(field: &'static str, text: Option<&str>) -> Result<Option<Timestamp>> {
    text.map(|text| Timestamp::parse_rfc3339(text).ok_or_else(|| bad(field, "an RFC 3339 time")))
        .transpose()
}

/// The name of the cursors' key in the server's secrets.
pub const SEARCH_CURSOR_SECRET: &str = "search_cursor_key";

/// How many bytes of the HMAC a cursor carries: 128 bits are beyond guessing.
const CURSOR_TAG_BYTES: usize = 16;

/// Signs and checks cursors: `base64url(position as 8 big-endian bytes || the first 16
/// bytes of HMAC-SHA256(key, those 8 bytes))`.
#[derive(Clone)]
pub(super) struct CursorKeys {
    mac: Hmac<Sha256>,
}

impl CursorKeys {
    pub(super) fn new(key: &[u8]) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        Self { mac }
    }

    fn seal(&self, position: i64) -> String {
        let position = position.to_be_bytes();
        let mut mac = self.mac.clone();
        mac.update(&position);
        let mut bytes = [0; 8 + CURSOR_TAG_BYTES];
        bytes[..8].copy_from_slice(&position);
        bytes[8..].copy_from_slice(&mac.finalize().into_bytes()[..CURSOR_TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn open(&self, text: &str) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (position, tag) = bytes.split_at_checked(8)?;
        if tag.len() != CURSOR_TAG_BYTES {
            return None;
        }
        let mut mac = self.mac.clone();
        mac.update(position);
        // Constant-time: the comparison says nothing of how close a forgery came.
        mac.verify_truncated_left(tag).ok()?;
        Some(i64::from_be_bytes(position.try_into().ok()?))
    }
}

fn bad(field: &'static str, what: &str) -> Error {
    Error::bad_request("invalid_query", format!("{field} must be {what}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_go_there_and_back() {
        let keys = CursorKeys::new(b"a key");
        for position in [0, 1, 35, 36, 1_000_000, i64::MAX] {
            assert_eq!(keys.open(&keys.seal(position)), Some(position));
        }
    }

    #[test]
    fn cursors_reveal_no_number_and_refuse_tampering_other_keys_and_garbage() {
        let keys = CursorKeys::new(b"a key");
        let cursor = keys.seal(1_000_000);
        assert!(!cursor.contains("1000000") && cursor.len() == 32, "{cursor}");

        // Another position with the tag of this one, and this one with its tag changed.
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).expect("as written");
        bytes[7] ^= 1;
        assert_eq!(keys.open(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        bytes[7] ^= 1;
        bytes[23] ^= 1;
        assert_eq!(keys.open(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        // A tag cut short, or with more after it.
        assert_eq!(keys.open(&URL_SAFE_NO_PAD.encode(&bytes[..20])), None);
        let mut longer = URL_SAFE_NO_PAD.decode(&cursor).expect("as written");
        longer.push(0);
        assert_eq!(keys.open(&URL_SAFE_NO_PAD.encode(&longer)), None);

        assert_eq!(CursorKeys::new(b"another key").open(&cursor), None);
        for garbage in ["", "-1", "lfls", "zzzzzzzzzzzzzzzzzzzzzz", "not base64!", "AAAAAAAAAAA"] {
            assert_eq!(keys.open(garbage), None, "{garbage:?}");
        }
    }
}
