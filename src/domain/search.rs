//! Search: what a query asks for, and where a message's text holds it, in any script.
//!
//! Matching is substring matching on folded text: case folded in full (`ß` is `ss`, `ς` is
//! `σ`), compatibility forms made plain (full-width `Ａ` is `a`, `ﬁ` is `fi`), the accents of
//! Latin, Greek and Cyrillic letters and the vowel marks of Arabic and Hebrew dropped, emoji
//! variation selectors and invisible characters dropped, and each run of whitespace one
//! space. Characters that compose count as their composed form: half-width `ｶﾞ` is `ガ`,
//! `か` followed by a combining voiced sound mark is `が`, conjoining Hangul jamo are their
//! syllable. Nothing else is folded: the marks that tell Japanese kana apart stay, so `か` does
//! not find `が`. The store's index is built from the same folded text (`store/search.rs`),
//! so what it offers as candidates is always a superset of what [`SearchQuery::find`]
//! confirms here.

use std::ops::{Range, RangeInclusive};

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::CodePointMapData;
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};

use super::lookalike::is_generic_mark;

/// The longest query, in characters, once trimmed.
pub const QUERY_MAX_CHARS: usize = 200;

/// A snippet longer than this many characters is cut around its first match.
pub const SNIPPET_CHARS: usize = 200;

/// How far before the first match a cut snippet starts, in characters.
const SNIPPET_LEAD: usize = 60;

/// The most characters [`fold`] normalises together. Real text combines a few at most;
/// a pile of hundreds of combining marks is cut into pieces of this many (as Unicode's
/// stream-safe format does at 30), so that it costs no more than ordinary text.
const SEGMENT_MAX: usize = 32;

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl QueryError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_query",
            Self::TooLong => "query_too_long",
            Self::ControlCharacter => "invalid_query_characters",
        }
    }

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

/// Folds `text` for matching (see the module's documentation) a canonical segment at a
/// time: a starter and the characters that may combine with it ([`joins`]) are normalised
/// together, so that compositions across characters count (`ｶﾞ` is `ガ`, `か` followed by
/// a combining voiced mark is `が`, conjoining jamo are their syllable). Each folded
/// character knows its origin: every folded character of a segment comes from the
/// segment's whole range. Whitespace at either end is dropped.
pub fn fold(text: &str) -> Folded {
    let mut folded = Folded::default();
    let mut offset = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // The fast path: ASCII needs no normalisation, one UTF-16 unit a character.
        let ascii = ascii_run(rest);
        for &b in &rest.as_bytes()[..ascii] {
            fold_ascii(char::from(b), &(offset..offset + 1), &mut folded);
            offset += 1;
        }
        rest = &rest[ascii..];
        let mut chars = rest.chars();
        let Some(first) = chars.next() else { break };
        let (mut end, mut units, mut previous) = (first.len_utf8(), first.len_utf16(), first);
        for c in chars.take(SEGMENT_MAX - 1) {
            if !joins(previous, c) {
                break;
            }
            end += c.len_utf8();
            units += c.len_utf16();
            previous = c;
        }
        let span = offset..offset + units;
        offset = span.end;
        if end == first.len_utf8() {
            fold_char(first, &span, &mut folded);
        } else {
            fold_segment(&rest[..end], &span, &mut folded);
        }
        rest = &rest[end..];
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

    /// One space for a run of whitespace, and none at the start.
    fn push_space(&mut self, span: &Range<usize>) {
        if self.chars.last().is_some_and(|&last| last != ' ') {
            self.push(' ', span);
        }
    }

    /// A character that folds to nothing belongs to the one before it: highlighting that
    /// highlights both.
    fn extend_last(&mut self, span: &Range<usize>) {
        if let Some(last) = self.spans.last_mut() {
            last.end = span.end;
        }
    }
}

/// How many of `text`'s first bytes are ASCII characters that fold on their own: all its
/// leading ASCII, but the last of it when a character that combines with it follows (an
/// `e` and a combining acute accent are one segment).
fn ascii_run(text: &str) -> usize {
    let run = text.bytes().take_while(u8::is_ascii).count();
    match (run.checked_sub(1), text[run..].chars().next()) {
        (Some(last), Some(next)) if joins(char::from(text.as_bytes()[last]), next) => last,
        _ => run,
    }
}

/// Whether `c` belongs to the segment of the character before it, `previous`: a combining
/// mark (with whatever it follows), a half-width voiced or semi-voiced sound mark (which
/// NFKC composes with the kana before it), and a Hangul vowel jamo after a leading
/// consonant jamo or a trailing one after a vowel jamo or a syllable without a final.
fn joins(previous: char, c: char) -> bool {
    const LEADING: RangeInclusive<char> = '\u{1100}'..='\u{1112}';
    const VOWEL: RangeInclusive<char> = '\u{1161}'..='\u{1175}';
    const TRAILING: RangeInclusive<char> = '\u{11A8}'..='\u{11C2}';
    const SYLLABLES: RangeInclusive<char> = '\u{AC00}'..='\u{D7A3}';
    if c.is_ascii() {
        return false;
    }
    let open_syllable =
        SYLLABLES.contains(&previous) && (previous as u32 - 0xAC00).is_multiple_of(28);
    matches!(c, '\u{FF9E}' | '\u{FF9F}')
        || (VOWEL.contains(&c) && LEADING.contains(&previous))
        || (TRAILING.contains(&c) && (VOWEL.contains(&previous) || open_syllable))
        || GeneralCategoryGroup::Mark.contains(CodePointMapData::<GeneralCategory>::new().get(c))
}

/// An ASCII character, folded without the Unicode tables.
fn fold_ascii(c: char, span: &Range<usize>, folded: &mut Folded) {
    if c.is_whitespace() {
        folded.push_space(span);
    } else {
        folded.push(c.to_ascii_lowercase(), span);
    }
}

/// A segment of one character: the common cases without normalising.
fn fold_char(c: char, span: &Range<usize>, folded: &mut Folded) {
    if c.is_ascii() {
        fold_ascii(c, span, folded);
    } else if c.is_whitespace() {
        folded.push_space(span);
    } else if is_plain(c) {
        folded.push(c, span);
    } else if is_dropped(c) {
        folded.extend_last(span);
    } else {
        let mut buffer = [0; 4];
        fold_normalized(
            &ComposingNormalizerBorrowed::new_nfkc().normalize(c.encode_utf8(&mut buffer)),
            span,
            folded,
        );
    }
}

/// A segment of several characters: its compatibility form, composed, then folded.
fn fold_segment(segment: &str, span: &Range<usize>, folded: &mut Folded) {
    let before = folded.chars.len();
    fold_normalized(&ComposingNormalizerBorrowed::new_nfkc().normalize(segment), span, folded);
    if folded.chars.len() == before {
        folded.extend_last(span);
    }
}

/// The slow path of [`fold`], on text already in NFKC: full case folding, then accents off.
fn fold_normalized(compatible: &str, span: &Range<usize>, folded: &mut Folded) {
    let mut buffer = [0; 4];
    let cased = CaseMapperBorrowed::new().fold_string(compatible);
    for g in cased.chars() {
        if is_dropped(g) {
            continue;
        }
        if g.is_whitespace() {
            folded.push_space(span);
            continue;
        }
        let decomposed =
            DecomposingNormalizerBorrowed::new_nfkd().normalize(g.encode_utf8(&mut buffer));
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
    is_generic_mark(c)
        || matches!(
                c,
                '\u{0591}'..='\u{05BD}'
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
    fn characters_that_combine_fold_as_their_composed_form() {
        // Half-width kana with a half-width voiced or semi-voiced sound mark.
        assert_eq!(folded("ｶﾞ"), "ガ");
        assert_eq!(folded("ﾊﾟﾝ"), "パン");
        assert_eq!(folded("ｶﾞｲﾄﾞﾌﾞｯｸ"), "ガイドブック");
        // Decomposed (NFD) kana.
        assert_eq!(folded("か\u{3099}"), "が");
        assert_eq!(folded("は\u{309A}"), "ぱ");
        assert_eq!(folded("カ\u{3099}"), "ガ");
        // Conjoining jamo, with a final consonant and without, and a syllable without a
        // final followed by a final jamo.
        assert_eq!(folded("\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}"), "한국");
        assert_eq!(folded("\u{1100}\u{1161}"), "가");
        assert_eq!(folded("가\u{11A8}"), "각");
        // A pile of combining marks costs no more than ordinary text, and still belongs
        // to its letter.
        let piled = format!("a{}b", "\u{0301}".repeat(100));
        let piled = fold(&piled);
        assert_eq!(piled.chars, ['a', 'b']);
        assert_eq!(piled.spans, [0..101, 101..102]);
    }

    #[test]
    fn ascii_takes_the_fast_path_but_keeps_a_combining_mark_with_its_letter() {
        assert_eq!(folded("Tab\tand\nnew\u{000B}LINE  "), "tab and new line");
        assert_eq!(folded("Cafe\u{0301} OK"), "cafe ok");
        let spans = fold("ab\u{0301}c d").spans;
        assert_eq!(spans, [0..1, 1..3, 3..4, 4..5, 5..6]);
    }

    #[test]
    fn the_voiced_sound_mark_tells_kana_apart_in_every_form() {
        for voiced in ["が", "か\u{3099}"] {
            assert!(finds("が", voiced), "{voiced:?}");
            assert!(finds(voiced, "が"), "{voiced:?}");
            assert!(!finds("か", voiced), "{voiced:?}");
            assert!(!finds(voiced, "か"), "{voiced:?}");
        }
        for voiced in ["ガ", "ｶﾞ", "カ\u{3099}"] {
            assert!(finds("ガ", voiced), "{voiced:?}");
            assert!(finds(voiced, "ガ"), "{voiced:?}");
            assert!(!finds("カ", voiced), "{voiced:?}");
            assert!(!finds("ｶ", voiced), "{voiced:?}");
            assert!(!finds(voiced, "カ"), "{voiced:?}");
        }
        assert!(finds("パン", "ﾊﾟﾝを買う"));
        assert!(!finds("ハン", "ﾊﾟﾝを買う"));
        assert!(finds("한국", "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}어"));
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
        // A half-width voiced kana is two characters, and a match covers both.
        let text = "😀 ｶﾞｲﾄﾞを見て";
        let found = SearchQuery::parse("ガ").expect("as written").find(text).expect("as written");
        assert_eq!(found, vec![3..5]);
        assert_eq!(marked("ガイド", text), ["ｶﾞｲﾄﾞ"]);
        assert_eq!(marked("ド", text), ["ﾄﾞ"]);
        assert_eq!(marked("イ", text), ["ｲ"]);
        assert_eq!(marked("が", "か\u{3099}と"), ["か\u{3099}"]);
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
