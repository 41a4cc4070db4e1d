//! The search index's terms, the same for both databases: every distinct run of three
//! folded characters of a message (`domain::search::fold`), and of one and two where they
//! hold a character of a script written without spaces between words (a Chinese or
//! Japanese word is often one or two characters; in Latin, Greek, Cyrillic, Hebrew or
//! Arabic text a run of one or two letters is in most messages and worth little as a
//! filter), each hashed to a 35-bit number. A query asks for the runs its terms are made of
//! (a short term is itself a run, a longer one is its runs of three), so the index offers
//! every message that may match, in any script and for any length of term, and a few that
//! do not (runs present but apart, or a rare hash collision), which the search drops by
//! matching the text itself (`SearchQuery::find`). A query whose every term is one or two
//! letters of a spaced script has no terms, and reads messages newest first. Hashing keeps
//! terms short and of one kind whatever the script, so neither database needs a tokenizer
//! that knows Unicode.
//!
//! Messages are placed in the search's order by when they were sent: a message's position
//! is its `created_at` in milliseconds times [`POSITIONS_PER_MS`], plus a small number
//! that tells apart messages of the same millisecond. A search's time bounds are bounds on
//! positions, and a message indexed late (stored before search came in) takes its place
//! among the others.

use std::collections::HashSet;

use crate::domain::search::{SearchQuery, fold};
use crate::domain::{RoomId, UserId};
use crate::store::SearchScope;

/// Which way of making terms an index holds. A store whose index was made another way
/// makes it again as it opens (a change to folding or to the terms changes this).
pub(super) const TERMS_VERSION: i64 = 3;

/// Positions per millisecond of `created_at`: room for that many messages sent in the same
/// millisecond, more than one server stores.
pub(super) const POSITIONS_PER_MS: i64 = 4096;

/// The first position of messages sent at `created_at` (milliseconds).
pub(super) fn first_position(created_at: i64) -> i64 {
    created_at.saturating_mul(POSITIONS_PER_MS)
}

/// The positions a search looks at, `low..high`: below `below` and within the scope's
/// time bounds.
pub(super) fn position_bounds(scope: &SearchScope, below: Option<i64>) -> (i64, i64) {
    let low = scope.after.map_or(i64::MIN, |t| first_position(t.as_millis()));
    let high = scope.before.map_or(i64::MAX, |t| first_position(t.as_millis()));
    (low, below.map_or(high, |below| below.min(high)))
}

/// The most terms one query asks the index for, spread over its words: any subset of a
/// query's runs is a correct filter (the text is matched afterwards), and more terms only
/// cost time. Every word has at least one, however many there are.
const QUERY_TERMS_MAX: usize = 24;

/// A term for a room, apart from every run's (runs' hashes are below 2^35), for an index
/// that narrows a search to rooms by its terms.
pub(super) fn room_gram(room: RoomId) -> i64 {
    (1 << 62) | (mix(room.as_i64()) >> 2)
}

/// A term for an author, apart from runs' and rooms'.
pub(super) fn author_gram(author: UserId) -> i64 {
    (1 << 61) | (mix(author.as_i64()) >> 3)
}

/// An id's bits, mixed (splitmix64's finalizer), as a non-negative number.
fn mix(id: i64) -> i64 {
    let mut x = id as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) >> 1) as i64
}

/// Whether a run of one or two characters holding `c` is a term: `c` is of a script
/// written without spaces between words, or a symbol or emoji, not a letter or digit of
/// ASCII, Latin, Greek, Cyrillic, Armenian, Hebrew or Arabic.
fn makes_short_terms(c: char) -> bool {
    !matches!(c, '\0'..='\u{06FF}' | '\u{1E00}'..='\u{1FFF}')
}

fn is_short_term(run: &[char]) -> bool {
    run.iter().copied().any(makes_short_terms)
}

/// The hash of one run of characters.
fn gram(chars: &[char]) -> i64 {
    // FNV-1a over the characters, seeded by the run's length.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ chars.len() as u64;
    for &c in chars {
        hash ^= c as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 29) as i64
}

/// The distinct terms of a message's text, in no particular order.
pub(super) fn index_grams(text: &str) -> Vec<i64> {
    let chars = fold(text).chars;
    let mut grams = HashSet::with_capacity(chars.len() * 3);
    for start in 0..chars.len() {
        for len in 1..=3 {
            let Some(run) = chars.get(start..start + len) else { break };
            if len == 3 || is_short_term(run) {
                grams.insert(gram(run));
            }
        }
    }
    grams.into_iter().collect()
}

/// The terms every match of `query` holds: its words of one or two characters whole when
/// those are terms, and runs of three spread along each longer word. Empty when no word
/// makes a term.
pub(super) fn query_grams(query: &SearchQuery) -> Vec<i64> {
    let mut grams = Vec::new();
    let per_term = (QUERY_TERMS_MAX / query.terms().len()).max(1);
    for term in query.terms() {
        if term.len() < 3 {
            if is_short_term(term) {
                grams.push(gram(term));
            }
            continue;
        }
        if term.len() == 3 {
            grams.push(gram(term));
            continue;
        }
        let runs: Vec<&[char]> = term.windows(3).collect();
        let take = runs.len().min(per_term);
        // Evenly spread, first and last included.
        for i in 0..take {
            let at = if take == 1 { 0 } else { i * (runs.len() - 1) / (take - 1) };
            grams.push(gram(runs[at]));
        }
    }
    let mut seen = HashSet::new();
    grams.retain(|g| seen.insert(*g));
    grams
}

/// A term as SQLite's full-text index takes it: a word of ASCII letters and digits.
pub(super) fn token(gram: i64) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut token = String::with_capacity(8);
    token.push('g');
    for shift in (0..35).step_by(5).rev() {
        token.push(DIGITS[((gram >> shift) & 31) as usize] as char);
    }
    token
}

/// A message's terms as one text for SQLite's full-text index, separated by spaces.
pub(super) fn index_text(text: &str) -> String {
    let grams = index_grams(text);
    let mut joined = String::with_capacity(grams.len() * 9);
    for g in grams {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(&token(g));
    }
    joined
}

/// A query for SQLite's full-text index: every term, quoted.
pub(super) fn match_expression(query: &SearchQuery) -> String {
    query_grams(query)
        .into_iter()
        .map(|g| format!("\"{}\"", token(g)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the index offers for `query` holds every text that matches it.
    fn offered(query: &str, text: &str) -> bool {
        let query = SearchQuery::parse(query).expect("as written");
        let indexed: HashSet<i64> = index_grams(text).into_iter().collect();
        query_grams(&query).iter().all(|g| indexed.contains(g))
    }

    #[test]
    fn every_match_is_offered_whatever_the_length_or_script() {
        for (query, text) in [
            ("猫", "我的猫"),
            ("京都", "東京都"),
            ("perm", "Permission"),
            ("\"new york\"", "NEW  YORK"),
            ("a", "banana"),
            ("ab cd", "xxcdxxab"),
            ("4711-b", "order #4711-B"),
            ("σοφια", "ΣΟΦΊΑ"),
            (
                "a supercalifragilisticexpialidocious word that is long",
                "A SUPERcalifragilisticexpialidocious word that is long indeed",
            ),
        ] {
            assert!(offered(query, text), "{query} in {text}");
        }
        assert!(!offered("猫", "犬"));
        assert!(!offered("perm", "term"));
    }

    #[test]
    fn queries_ask_for_a_bounded_number_of_terms_and_one_at_least_per_word() {
        let long = "x".repeat(40) + &"abcdefghijklmnopqrstuvwxyz".repeat(6);
        let query = SearchQuery::parse(&long).expect("as written");
        assert!(query_grams(&query).len() <= QUERY_TERMS_MAX);
        let many = (0..40).map(|i| format!("w{i:02}")).collect::<Vec<_>>().join(" ");
        let query = SearchQuery::parse(&many).expect("as written");
        let grams: HashSet<i64> = query_grams(&query).into_iter().collect();
        for word in query.terms() {
            assert!(grams.contains(&gram(word)), "{word:?} asks for nothing");
        }
    }

    #[test]
    fn short_runs_are_terms_only_in_scripts_written_without_spaces() {
        let terms = |q: &str| query_grams(&SearchQuery::parse(q).expect("as written")).len();
        assert_eq!(terms("a"), 0);
        assert_eq!(terms("is я σ"), 0);
        assert_eq!(terms("猫"), 1);
        assert_eq!(terms("京都"), 1);
        assert_eq!(terms("🎉"), 1);
        assert_eq!(terms("ab 猫"), 1);
        let banana: HashSet<i64> = index_grams("banana").into_iter().collect();
        assert!(!banana.contains(&gram(&['a'])) && !banana.contains(&gram(&['a', 'n'])));
        assert!(banana.contains(&gram(&['a', 'n', 'a'])));
        let cat: HashSet<i64> = index_grams("我的猫").into_iter().collect();
        assert!(cat.contains(&gram(&['猫'])) && cat.contains(&gram(&['的', '猫'])));
    }

    #[test]
    fn room_and_author_terms_are_apart_from_runs() {
        for id in [0, 1, 42, i64::MAX, -1] {
            let (room, author) =
                (room_gram(RoomId::from_i64(id)), author_gram(UserId::from_i64(id)));
            assert!(room >= 1 << 62 && (1 << 61..1 << 62).contains(&author), "{id}");
        }
    }

    #[test]
    fn tokens_are_words_of_ascii_letters_and_digits() {
        for g in [0, 1, (1 << 35) - 1, gram(&['a']), gram(&['猫', 'a', ' '])] {
            let t = token(g);
            assert_eq!(t.len(), 8);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()), "{t}");
        }
        assert!((0..1 << 35).contains(&gram(&['z', 'z', 'z'])));
    }
}
