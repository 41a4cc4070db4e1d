//! When two names are one name to a reader: the key that usernames and public room names
//! are unique under.
//!
//! A name people pick out of a list must not pass for another: `gеneral` with a Cyrillic
//! `е`, `ＧＥＮＥＲＡＬ` in full-width letters, `paypa1` beside `paypal`. Unicode's answer
//! is the confusable skeleton of UTS #39 (`unicode-security`, the tables rustc's own lint
//! uses): two strings that look alike map to the same skeleton. Around it this module adds
//! what a name needs and the skeleton leaves out: compatibility forms (NFKC), case, accents
//! and runs of spaces. Invisible characters are refused by parsing, and the skeleton drops
//! them anyway, so the key never depends on that.

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::ComposingNormalizerBorrowed;
use unicode_security::skeleton;

/// The comparison key of a name: equal for names that look alike whatever their case,
/// never shown to anyone.
///
/// In order: NFKC turns compatibility forms into the letters they stand for (full-width
/// `Ａ`, mathematical `𝐀`, ligatures, superscripts); the skeleton maps each character to
/// its prototype (`І`, `1` and `I` to `l`; `m` to `rn`; `0` to `O`), taken before case is
/// folded because a capital `I` looks like `l` and not like `i`; case folding makes
/// `GENERAL` and `general` one; a second skeleton maps what folding produced; then the
/// accents and other marks of the generic combining blocks are dropped (`Général` is
/// `General`, and a dot or ring small enough to miss changes nothing), while the vowel
/// signs of scripts that need them to tell words apart (Devanagari, Thai, Arabic…) stay;
/// last, each run of spaces counts as one, as a browser shows it.
///
/// Skeletons are not transitive the way people are: `ALICE` looks like `ALlCE`, whose key
/// is `allce`, so `allce` is refused beside `ALICE` though `alice` and `ALICE` have
/// different keys. Case alone is left to the names' lower-case keys, which stay unique too.
pub fn lookalike_key(name: &str) -> String {
    let compatible = ComposingNormalizerBorrowed::new_nfkc().normalize(name);
    let shapes: String = skeleton(&compatible).collect();
    let folded = CaseMapperBorrowed::new().fold_string(&shapes);
    let mut key = String::with_capacity(folded.len());
    let mut after_space = false;
    for c in skeleton(&folded).filter(|&c| !is_generic_mark(c)) {
        if c.is_whitespace() {
            if !after_space {
                key.push(' ');
            }
            after_space = true;
        } else {
            key.push(c);
            after_space = false;
        }
    }
    key
}

/// Whether `c` is a combining mark of Unicode's generic blocks: the accents, dots, rings,
/// tildes and bars that Latin, Greek and Cyrillic letters carry (the skeleton's NFD has
/// split them off their letters), and the marks made to go over symbols.
pub(super) fn is_generic_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

#[cfg(test)]
mod tests {
    use super::lookalike_key;

    /// Pairs that must share a key, each with why.
    const ALIKE: &[(&str, &str, &str)] = &[
        ("general", "gen\u{0435}ral", "Cyrillic е"),
        ("general", "gener\u{0430}l", "Cyrillic а"),
        ("general", "GENERAL", "case"),
        ("general", "G\u{0415}N\u{0415}R\u{0410}L", "capital Cyrillic Е and А"),
        ("general", "\u{FF47}\u{FF45}\u{FF4E}\u{FF45}\u{FF52}\u{FF41}\u{FF4C}", "full-width"),
        ("general", "\u{1D420}\u{1D41E}\u{1D427}\u{1D41E}\u{1D42B}\u{1D41A}\u{1D425}", "bold"),
        ("general", "gen\u{00AD}eral", "soft hyphen"),
        ("general", "gen\u{200B}eral", "zero-width space"),
        ("general", "g\u{0435}n\u{0435}r\u{0430}l\u{2060}", "word joiner"),
        ("Général", "Ge\u{0301}ne\u{0301}ral", "composed and decomposed accents"),
        ("Général", "GÉNÉRAL", "accents and case"),
        ("Général", "General", "accents"),
        ("lounge", "Iounge", "capital I"),
        ("lounge", "1ounge", "digit one"),
        ("lounge", "\u{0406}ounge", "Cyrillic І"),
        ("lounge", "|ounge", "vertical bar"),
        ("alice1", "alicel", "digit one"),
        ("paypa1", "paypal", "digit one"),
        ("modern", "rnodern", "rn and m"),
        ("g00gle", "google", "zeros"),
        ("\u{0440}\u{0430}\u{0443}\u{0440}\u{0430}l", "paypal", "all Cyrillic but l"),
        ("off topic", "off  topic", "two spaces"),
        ("off topic", "off\u{00A0}topic", "no-break space"),
        ("off topic", "off\u{2003}topic", "em space"),
        ("rust\u{FB01}x", "rustfix", "ligature"),
        ("\u{03A1}\u{039F}\u{039B}\u{0395}", "PO\u{039B}E", "Greek capitals"),
    ];

    /// Pairs that must keep apart.
    const DISTINCT: &[(&str, &str)] = &[
        ("general", "generals"),
        ("general", "genera"),
        ("alice", "alicia"),
        ("bob", "b0bby"),
        ("off topic", "offtopic"),
        ("room-1", "room-2"),
        ("李小龍", "李小虎"),
        ("कि", "की"),
        ("มา", "ม่า"),
        ("dev team", "ops team"),
    ];

    #[test]
    fn lookalikes_share_a_key() {
        for (one, other, why) in ALIKE {
            assert_eq!(lookalike_key(one), lookalike_key(other), "{why}: {one:?} and {other:?}");
        }
    }

    #[test]
    fn different_names_keep_different_keys() {
        for (one, other) in DISTINCT {
            assert_ne!(lookalike_key(one), lookalike_key(other), "{one:?} and {other:?}");
        }
    }

    #[test]
    fn the_key_is_stable() {
        for (one, _, _) in ALIKE {
            let key = lookalike_key(one);
            assert_eq!(lookalike_key(&key), key, "{one:?}");
        }
    }
}
