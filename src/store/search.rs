//! The search index's terms, the same for both databases: every distinct run of one, two
//! and three folded characters of a message (`domain::search::fold`), each hashed to a
//! 35-bit number. A query asks for the runs its terms are made of (a term of one or two
//! characters is itself a run; a longer one is its runs of three), so the index offers
//! every message that may match, in any script and for any length of term, and a few that
//! do not (runs present but apart, or a rare hash collision), which the search drops by
//! matching the text itself (`SearchQuery::find`). Hashing keeps terms short and of one
//! kind whatever the script, so neither database needs a tokenizer that knows Unicode.

use std::collections::HashSet;

use crate::domain::search::{SearchQuery, fold};

/// The most terms one query asks the index for: any subset of a query's runs is a correct
/// filter (the text is matched afterwards), and more terms than this only cost time.
const QUERY_TERMS_MAX: usize = 24;

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
            if run != [' '] {
                grams.insert(gram(run));
            }
        }
    }
    grams.into_iter().collect()
}

/// The terms every match of `query` holds: the query's terms of one or two characters
/// whole, and runs of three spread along each longer term, at most [`QUERY_TERMS_MAX`].
pub(super) fn query_grams(query: &SearchQuery) -> Vec<i64> {
    let mut grams = Vec::new();
    let per_term = (QUERY_TERMS_MAX / query.terms().len()).max(1);
    for term in query.terms() {
        if term.len() <= 3 {
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
    grams.truncate(QUERY_TERMS_MAX);
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
    fn queries_ask_for_a_bounded_number_of_terms() {
        let long = "x".repeat(40) + &"abcdefghijklmnopqrstuvwxyz".repeat(6);
        let query = SearchQuery::parse(&long).expect("as written");
        assert!(query_grams(&query).len() <= QUERY_TERMS_MAX);
        let many = (0..40).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(
            query_grams(&SearchQuery::parse(&many).expect("as written")).len(),
            QUERY_TERMS_MAX
        );
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
