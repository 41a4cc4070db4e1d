//! Search: what a query asks for, and where a message's text holds it, in any script.
//!
//! Matching is substring matching on folded text: case folded in full (`ß` is `ss`, `ς` is
//! `σ`), compatibility forms made plain (full-width `Ａ` is `a`, `ﬁ` is `fi`), the accents of
//! Latin, Greek and Cyrillic letters and the vowel marks of Arabic and Hebrew dropped, emoji
//! variation selectors and invisible characters dropped, and each run of whitespace one
//! space. Nothing else is folded: the marks that tell Japanese kana apart stay, so `か` does
//! not find `が`. The store's index is built from the same folded text (`store/search.rs`),
//! so what it offers as candidates is always a superset of what [`SearchQuery::find`]
//! confirms here.

use std::ops::Range;

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};

/// The longest query, in characters, once trimmed.
pub const QUERY_MAX_CHARS: usize = 200;

/// A snippet longer than this many characters is cut around its first match.
pub const SNIPPET_CHARS: usize = 200;

/// How far before the first match a cut snippet starts, in characters.
const SNIPPET_LEAD: usize = 60;

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl QueryError {
    pub fn message(&self) -> String {
        match self {
            Self::Empty => "Type something to search for.".to_owned(),
            Self::TooLong => format!("A search is at most {QUERY_MAX_CHARS} characters."),
            Self::ControlCharacter => "A search cannot hold control characters.".to_owned(),
        }
    }
}

/// A parsed query: the folded terms that must all appear in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Vec<char>>,
}

impl SearchQuery {
    /// Words separated by whitespace, and text in double quotes kept whole (an unclosed
    /// quote runs to the end). Terms that fold to nothing are dropped, as are repeats.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        if query.chars().any(char::is_control) {
            return Err(QueryError::ControlCharacter);
        }
        let query = query.trim();
        if query.chars().count() > QUERY_MAX_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut raw: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for c in query.chars() {
            if c == '"' {
                raw.push(std::mem::take(&mut current));
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                raw.push(std::mem::take(&mut current));
            } else {
                current.push(c);
            }
        }
        raw.push(current);
        let mut terms: Vec<Vec<char>> = Vec::new();
        for term in raw {
            let folded = fold(&term).chars;
            if !folded.is_empty() && !terms.contains(&folded) {
                terms.push(folded);
            }
        }
        if terms.is_empty() {
            return Err(QueryError::Empty);
        }
        Ok(Self { terms })
    }

    /// The folded terms, each at least one character.
    pub fn terms(&self) -> &[Vec<char>] {
        &self.terms
    }

    /// Where `text` holds the query: every place any term appears, as sorted, merged ranges
    /// of UTF-16 code units of `text`; `None` unless every term appears.
    pub fn find(&self, text: &str) -> Option<Vec<Range<usize>>> {
        let folded = fold(text);
        let mut found = Vec::new();
        for term in &self.terms {
            let before = found.len();
            for start in occurrences(&folded.chars, term) {
                let end = start + term.len() - 1;
                found.push(folded.spans[start].start..folded.spans[end].end);
            }
            if found.len() == before {
                return None;
            }
        }
        Some(merge(found))
    }
}

/// Text folded for matching, with where each folded character came from.
#[derive(Debug, Default)]
pub struct Folded {
    /// The folded characters.
    pub chars: Vec<char>,
    /// For each folded character, the UTF-16 range of the original character it came from.
    pub spans: Vec<Range<usize>>,
}

/// Folds `text` one character at a time (so every folded character knows its origin): see
/// the module's documentation for what folding does. Whitespace at either end is dropped.
pub fn fold(text: &str) -> Folded {
    let mut folded = Folded::default();
    let mut offset = 0;
    for c in text.chars() {
        let span = offset..offset + c.len_utf16();
        offset = span.end;
        if c.is_whitespace() {
            if folded.chars.last().is_some_and(|&last| last != ' ') {
                folded.push(' ', &span);
            }
        } else if c.is_ascii() {
            folded.push(c.to_ascii_lowercase(), &span);
        } else if is_plain(c) {
            folded.push(c, &span);
        } else if is_dropped(c) {
            // A mark belongs to the character it follows: highlighting that highlights both.
            if let Some(last) = folded.spans.last_mut() {
                last.end = span.end;
            }
        } else {
            fold_char(c, &span, &mut folded);
        }
    }
    if folded.chars.last() == Some(&' ') {
        folded.chars.pop();
        folded.spans.pop();
    }
    folded
}

impl Folded {
    fn push(&mut self, c: char, span: &Range<usize>) {
        self.chars.push(c);
        self.spans.push(span.clone());
    }
}

/// The slow path of [`fold`]: compatibility form, full case folding, then accents off.
fn fold_char(c: char, span: &Range<usize>, folded: &mut Folded) {
    let (mut one, mut other) = ([0; 4], [0; 4]);
    let compatible = ComposingNormalizerBorrowed::new_nfkc().normalize(c.encode_utf8(&mut other));
    let cased = CaseMapperBorrowed::new().fold_string(&compatible);
    for g in cased.chars() {
        if is_dropped(g) {
            continue;
        }
        if g.is_whitespace() {
            if folded.chars.last().is_some_and(|&last| last != ' ') {
                folded.push(' ', span);
            }
            continue;
        }
        let decomposed =
            DecomposingNormalizerBorrowed::new_nfkd().normalize(g.encode_utf8(&mut one));
        if decomposed.chars().any(is_dropped) {
            for d in decomposed.chars().filter(|&d| !is_dropped(d)) {
                folded.push(d, span);
            }
        } else {
            folded.push(g, span);
        }
    }
}

/// Characters folding leaves as they are, the common ones of scripts without case or
/// accents: kana (whose voicing marks stay), CJK ideographs and Hangul syllables.
fn is_plain(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}')
}

/// What folding drops: the combining accents of Latin, Greek and Cyrillic (and of symbols),
/// Hebrew points and cantillation, Arabic vowel marks and the tatweel, emoji variation
/// selectors, and invisible characters that people do not type on purpose.
fn is_dropped(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
            | '\u{0591}'..='\u{05BD}'
            | '\u{05BF}'
            | '\u{05C1}'..='\u{05C2}'
            | '\u{05C4}'..='\u{05C5}'
            | '\u{05C7}'
            | '\u{0610}'..='\u{061A}'
            | '\u{0640}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{06D6}'..='\u{06DC}'
            | '\u{06DF}'..='\u{06E4}'
            | '\u{06E7}'..='\u{06E8}'
            | '\u{06EA}'..='\u{06ED}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{00AD}'
            | '\u{200B}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// Every index at which `needle` starts in `haystack`, overlapping ones included.
fn occurrences<'a>(haystack: &'a [char], needle: &'a [char]) -> impl Iterator<Item = usize> + 'a {
    haystack.windows(needle.len()).enumerate().filter(move |(_, w)| *w == needle).map(|(i, _)| i)
}

/// Sorts ranges and merges those that overlap or touch.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// A result's text to show: the whole body when short, else a part of it around the first
/// match, with `…` where it was cut; `highlights` are within `text`, in UTF-16 code units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<Range<usize>>,
}

impl Snippet {
    /// The snippet of `body`, whose matches are `found` (from [`SearchQuery::find`]).
    pub fn new(body: &str, found: &[Range<usize>]) -> Self {
        let chars: Vec<char> = body.chars().collect();
        if chars.len() <= SNIPPET_CHARS {
            return Self { text: body.to_owned(), highlights: found.to_vec() };
        }
        // Character index of each UTF-16 offset where a character starts.
        let mut starts = Vec::with_capacity(chars.len() + 1);
        let mut offset = 0;
        for c in &chars {
            starts.push(offset);
            offset += c.len_utf16();
        }
        starts.push(offset);
        let char_at = |unit: usize| starts.partition_point(|&s| s < unit);

        let first = found.first().map_or(0, |r| char_at(r.start));
        let mut from = first.saturating_sub(SNIPPET_LEAD);
        // Start at a word when one starts shortly before.
        if from > 0
            && let Some(space) = chars[from..first].iter().position(|c| c.is_whitespace())
            && space < SNIPPET_LEAD / 3
        {
            from += space + 1;
        }
        let to = (from + SNIPPET_CHARS).min(chars.len());
        let from = to.saturating_sub(SNIPPET_CHARS).min(from);
        let lead = if from > 0 { "…" } else { "" };
        let mut text = String::from(lead);
        text.extend(&chars[from..to]);
        if to < chars.len() {
            text.push('…');
        }
        let shift = starts[from];
        let limit = starts[to];
        let lead_units = lead.encode_utf16().count();
        let highlights = found
            .iter()
            .filter(|r| r.end > shift && r.start < limit)
            .map(|r| r.start.max(shift) - shift + lead_units..r.end.min(limit) - shift + lead_units)
            .collect();
        Self { text, highlights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> String {
        fold(text).chars.into_iter().collect()
    }

    fn finds(query: &str, text: &str) -> bool {
        SearchQuery::parse(query).expect("as written").find(text).is_some()
    }

    /// The highlighted parts of `text`, as strings.
    fn marked(query: &str, text: &str) -> Vec<String> {
        let units: Vec<u16> = text.encode_utf16().collect();
        SearchQuery::parse(query)
            .expect("as written")
            .find(text)
            .expect("as written")
            .into_iter()
            .map(|r| String::from_utf16(&units[r]).expect("as written"))
            .collect()
    }

    #[test]
    fn folding_ignores_case_accents_widths_and_marks_in_every_script() {
        assert_eq!(folded("  Hello,   WORLD\n"), "hello, world");
        assert_eq!(folded("Café Crème"), "cafe creme");
        assert_eq!(folded("STRASSE Straße"), "strasse strasse");
        assert_eq!(folded("ΣΟΦΊΑ σοφίας"), "σοφια σοφιασ");
        assert_eq!(folded("Ёлка"), "елка");
        assert_eq!(folded("ＡＢＣ１２３ ﬁne"), "abc123 fine");
        assert_eq!(folded("ｶﾀｶﾅ"), "カタカナ");
        assert_eq!(folded("مَرْحَبًا"), "مرحبا");
        assert_eq!(folded("שָׁלוֹם"), "שלום");
        assert_eq!(folded("❤\u{FE0F} ok"), "❤ ok");
        assert_eq!(folded("İstanbul"), "istanbul");
        assert_eq!(folded("soft\u{00AD}ware"), "software");
        // What tells words apart stays.
        assert_eq!(folded("が"), "が");
        assert_eq!(folded("한국어"), "한국어");
        assert_eq!(folded("東京都"), "東京都");
    }

    #[test]
    fn every_word_must_appear_anywhere_and_quotes_keep_a_phrase_whole() {
        assert!(finds("perm", "Who has the Permission?"));
        assert!(finds("york new", "new york"));
        assert!(finds("\"new york\"", "I love NEW   York!"));
        assert!(!finds("\"york new\"", "new york"));
        assert!(!finds("york paris", "new york"));
        assert!(finds("4711", "order #4711-B shipped"));
        assert!(finds("京都", "東京都に住んでいます"));
        assert!(finds("猫", "我的猫"));
        assert!(!finds("か", "がんばって"));
        assert!(finds("cafe", "Un café, s'il vous plaît"));
        assert!(finds("СЛОВО", "одно слово"));
        assert!(finds("👍", "great 👍🏽"));
        assert!(finds("\"unclosed phrase", "an unclosed phrase here"));
    }

    #[test]
    fn queries_are_refused_when_empty_too_long_or_holding_control_characters() {
        assert_eq!(SearchQuery::parse("   "), Err(QueryError::Empty));
        assert_eq!(SearchQuery::parse("\"\" \u{FE0F}"), Err(QueryError::Empty));
        assert_eq!(SearchQuery::parse(&"a".repeat(201)), Err(QueryError::TooLong));
        assert!(SearchQuery::parse(&"a".repeat(200)).is_ok());
        assert_eq!(SearchQuery::parse("a\u{0}b"), Err(QueryError::ControlCharacter));
        assert_eq!(SearchQuery::parse("a a A").expect("as written").terms().len(), 1);
    }

    #[test]
    fn highlights_cover_every_match_in_the_original_text() {
        assert_eq!(marked("straße", "STRASSE and Straße"), ["STRASSE", "Straße"]);
        assert_eq!(marked("cafe", "Café"), ["Café"]);
        assert_eq!(marked("new york", "New York, new-york"), ["New", "York", "new", "york"]);
        assert_eq!(marked("ab", "abab"), ["abab"]);
        // UTF-16: an emoji takes two units.
        let text = "😀 Tokyo";
        let found =
            SearchQuery::parse("tokyo").expect("as written").find(text).expect("as written");
        assert_eq!(found, vec![3..8]);
        // A match that folds several characters into one keeps them all.
        assert_eq!(marked("e", "e\u{0301}"), ["e\u{0301}"]);
    }

    #[test]
    fn short_bodies_are_their_own_snippet_and_long_ones_are_cut_around_the_first_match() {
        let query = SearchQuery::parse("needle").expect("as written");
        let short = "a needle here";
        let found = query.find(short).expect("as written");
        assert_eq!(Snippet::new(short, &found), Snippet { text: short.into(), highlights: found });

        let long = format!("{} needle {}", "hay ".repeat(100), "straw ".repeat(100));
        let found = query.find(&long).expect("as written");
        let snippet = Snippet::new(&long, &found);
        assert!(snippet.text.starts_with('…') && snippet.text.ends_with('…'));
        assert_eq!(snippet.text.chars().count(), SNIPPET_CHARS + 2);
        let units: Vec<u16> = snippet.text.encode_utf16().collect();
        let [range] = &snippet.highlights[..] else { panic!("{:?}", snippet.highlights) };
        assert_eq!(String::from_utf16(&units[range.clone()]).expect("as written"), "needle");
        assert!(snippet.text.starts_with("…hay "), "starts at a word: {}", snippet.text);

        // A match near the end still shows a full-length snippet, ending with the body.
        let late = format!("{}needle", "x".repeat(300));
        let found = query.find(&late).expect("as written");
        let snippet = Snippet::new(&late, &found);
        assert!(snippet.text.ends_with("needle") && snippet.text.starts_with('…'));
        assert_eq!(snippet.highlights, vec![195..201]);
    }
}
