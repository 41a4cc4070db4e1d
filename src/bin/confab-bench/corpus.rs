//! The search scenario's text: deterministic pseudo-random messages in mixed scripts, and
//! the queries run against them.
//!
//! The text of a room's `n`th message depends only on the seed, the room and `n`, so a
//! server seeded twice holds the same messages whatever order the writers were confirmed
//! in. The vocabulary is fixed and small, so that the four kinds of query mean something
//! definite at any size:
//!
//! - a *common* word is one of the vocabulary's Latin, Cyrillic, Greek or Arabic words,
//!   each found in one to several percent of the messages;
//! - a *rare* word is a made-up one (syllables no vocabulary word contains), each put into
//!   about `rare_hits` messages over all the rooms;
//! - a *CJK character* is one Han or kana character of the Chinese and Japanese words;
//! - a *substring* is the middle of a long vocabulary word (`ermiss` of "permission") or
//!   three middle digits of an order number (`821` of "#48213-B").

/// What kind of query, as named in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Common,
    Rare,
    Cjk,
    Substring,
}

impl Category {
    pub const ALL: [Category; 4] =
        [Category::Common, Category::Rare, Category::Cjk, Category::Substring];

    pub fn name(self) -> &'static str {
        match self {
            Category::Common => "common word",
            Category::Rare => "rare word",
            Category::Cjk => "one CJK character",
            Category::Substring => "substring",
        }
    }
}

const ENGLISH: &[&str] = &[
    "meeting",
    "deploy",
    "permission",
    "tomorrow",
    "coffee",
    "review",
    "release",
    "budget",
    "customer",
    "invoice",
    "schedule",
    "weather",
    "project",
    "feedback",
    "quarter",
    "holiday",
    "network",
    "database",
    "question",
    "thanks",
    "morning",
    "kitchen",
    "printer",
    "password",
    "migration",
    "dashboard",
    "deadline",
    "ticket",
    "support",
    "weekend",
    "lunch",
    "garden",
    "bicycle",
    "library",
    "concert",
    "station",
    "airport",
    "hospital",
    "window",
    "message",
];
/// Latin letters with accents, and ß, æ, ø, ł: words of French, German, Spanish, Polish,
/// Danish, Icelandic and Czech, mixed into English sentences.
const ACCENTED: &[&str] = &[
    "café",
    "crème",
    "naïve",
    "façade",
    "résumé",
    "déjà",
    "Straße",
    "Grüße",
    "Mädchen",
    "Bürokratie",
    "Zürich",
    "mañana",
    "niño",
    "canción",
    "corazón",
    "acción",
    "Kraków",
    "Łódź",
    "smørrebrød",
    "fjörður",
    "piñata",
    "jalapeño",
    "über",
    "schön",
    "élève",
    "château",
    "forêt",
    "garçon",
    "señor",
    "pingüino",
    "Ångström",
    "Dvořák",
    "Škoda",
    "Brontë",
    "Noël",
    "Ærøskøbing",
];
const RUSSIAN: &[&str] = &[
    "сообщение",
    "встреча",
    "завтра",
    "проект",
    "погода",
    "вопрос",
    "спасибо",
    "работа",
    "команда",
    "сервер",
    "база",
    "данных",
    "пароль",
    "отчёт",
    "неделя",
    "клиент",
    "счёт",
    "доставка",
    "разрешение",
    "обновление",
    "ошибка",
    "время",
    "город",
    "Москва",
    "ёлка",
    "друзья",
    "письмо",
    "новости",
    "утро",
    "вечер",
];
const GREEK: &[&str] = &[
    "σοφία",
    "καλημέρα",
    "ευχαριστώ",
    "συνάντηση",
    "αύριο",
    "θάλασσα",
    "ήλιος",
    "βιβλίο",
    "δουλειά",
    "ερώτηση",
    "Αθήνα",
    "φίλος",
    "νερό",
    "καφές",
    "σήμερα",
    "μήνυμα",
    "ομάδα",
    "ταχυδρομείο",
    "λογαριασμός",
    "πρόγραμμα",
];
/// Two of them with their vowel marks.
const ARABIC: &[&str] = &[
    "مرحبا",
    "شكرا",
    "اجتماع",
    "غدا",
    "مشروع",
    "سؤال",
    "رسالة",
    "فريق",
    "عمل",
    "صباح",
    "مساء",
    "كتاب",
    "مدينة",
    "القاهرة",
    "قهوة",
    "سيارة",
    "مكتب",
    "تقرير",
    "موعد",
    "الخادم",
    "مُحَمَّد",
    "كِتَابٌ",
];
/// Chinese and Japanese are written without spaces between words.
const CHINESE: &[&str] = &[
    "东京",
    "北京",
    "会议",
    "明天",
    "项目",
    "问题",
    "谢谢",
    "服务器",
    "数据库",
    "密码",
    "报告",
    "客户",
    "时间",
    "天气",
    "城市",
    "朋友",
    "咖啡",
    "学校",
    "中国",
    "上海",
    "发布",
    "更新",
    "错误",
    "工作",
    "今天",
    "大家",
    "人民",
    "日本",
];
const JAPANESE: &[&str] = &[
    "東京都",
    "会議",
    "明日",
    "ありがとう",
    "よろしく",
    "お願いします",
    "サーバー",
    "データベース",
    "パスワード",
    "報告",
    "時間",
    "天気",
    "友達",
    "学校",
    "日本語",
    "大阪",
    "京都",
    "新幹線",
    "ラーメン",
    "コーヒー",
    "がんばって",
    "です",
    "ます",
    "今日",
    "会社",
];
/// With a variation selector, a flag, and a joined sequence among them.
const EMOJI: &[&str] = &["👍", "🎉", "😂", "❤️", "🚀", "🙏", "😅", "🔥", "✅", "👀", "🇯🇵", "👩‍💻"];
/// Syllables of the rare words; no vocabulary word holds four of them in a row.
const SYLLABLES: &[&str] = &[
    "zu", "vak", "qo", "rix", "tel", "mun", "py", "ka", "dre", "fo", "ul", "xe", "bri", "sna",
    "gor", "wi",
];

/// SplitMix64: small, fast, and the same sequence on every machine and version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, chance: u64) -> bool {
        self.next() % 100 < chance
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

/// The messages of a run, and the queries for them.
#[derive(Debug, Clone, Copy)]
pub struct Corpus {
    pub seed: u64,
    /// How many made-up rare words there are.
    rare_words: usize,
}

impl Corpus {
    /// A corpus of `messages` messages in which each rare word is in about `rare_hits`.
    pub fn new(seed: u64, messages: u64, rare_hits: u64) -> Self {
        // One message in ten carries a rare word.
        let rare_words = (messages / 10 / rare_hits.max(1)).clamp(1, 65_536);
        Self { seed, rare_words: rare_words as usize }
    }

    /// The body of room `room`'s `n`th message.
    pub fn message(&self, room: usize, n: u64) -> String {
        let mut rng = Rng::new(self.seed ^ ((room as u64) << 40) ^ n);
        // Throw the first away: neighbouring seeds start close.
        rng.next();
        let mut words: Vec<String> = match rng.below(100) {
            0..30 => spaced(&mut rng, &[ENGLISH]),
            30..45 => spaced(&mut rng, &[ENGLISH, ACCENTED]),
            45..57 => spaced(&mut rng, &[RUSSIAN]),
            57..65 => spaced(&mut rng, &[GREEK]),
            65..73 => spaced(&mut rng, &[ARABIC]),
            73..87 => vec![unspaced(&mut rng, CHINESE, "，", "。")],
            _ => vec![unspaced(&mut rng, JAPANESE, "、", "。")],
        };
        if rng.percent(20) {
            capitalize(&mut words[0]);
        }
        if rng.percent(10) {
            let at = rng.below(words.len() + 1);
            words.insert(at, order_number(&mut rng));
        }
        if rng.percent(10) {
            let at = rng.below(words.len() + 1);
            words.insert(at, self.rare(rng.below(self.rare_words)));
        }
        if rng.percent(5) {
            let path = rng.pick(ENGLISH);
            words.push(format!("https://git.example.org/team/{path}/issues/{}", rng.below(5000)));
        }
        if rng.percent(20) {
            for _ in 0..=rng.below(2) {
                words.push(rng.pick(EMOJI).to_owned());
            }
        }
        words.join(" ")
    }

    /// `count` queries of `category`, the same for the same seed.
    pub fn queries(&self, category: Category, count: usize) -> Vec<String> {
        let mut rng = Rng::new(self.seed ^ (0xC0FF_EE00 + category as u64));
        let common = common_words();
        let characters = cjk_characters();
        let long: Vec<&str> =
            common.iter().copied().filter(|word| word.chars().count() >= 7).collect();
        (0..count)
            .map(|_| match category {
                Category::Common => rng.pick(&common).to_owned(),
                Category::Rare => self.rare(rng.below(self.rare_words)),
                Category::Cjk => characters[rng.below(characters.len())].to_string(),
                Category::Substring if rng.percent(25) => format!("{:03}", rng.below(1000)),
                Category::Substring => middle(rng.pick(&long)),
            })
            .collect()
    }

    /// Rare word `index`: four syllables, from the index's digits in base 16, scrambled so
    /// that neighbours do not share three syllables.
    fn rare(&self, index: usize) -> String {
        let scrambled = (index as u64).wrapping_mul(40_503) % 65_536;
        (0..4).map(|digit| SYLLABLES[(scrambled >> (4 * digit)) as usize % 16]).collect()
    }
}

/// Four to fourteen words from `lists`, separated by spaces.
fn spaced(rng: &mut Rng, lists: &[&[&str]]) -> Vec<String> {
    let count = 4 + rng.below(11);
    (0..count)
        .map(|_| {
            let list = lists[rng.below(lists.len())];
            rng.pick(list).to_owned()
        })
        .collect()
}

/// Three to nine words run together, with a comma now and then and a full stop.
fn unspaced(rng: &mut Rng, list: &[&str], comma: &str, stop: &str) -> String {
    let mut text = String::new();
    for i in 0..3 + rng.below(7) {
        if i > 0 && rng.percent(15) {
            text.push_str(comma);
        }
        text.push_str(rng.pick(list));
    }
    text.push_str(stop);
    text
}

/// An order number such as `#48213-B`.
fn order_number(rng: &mut Rng) -> String {
    let letter = char::from(b'A' + rng.below(26) as u8);
    format!("#{:05}-{letter}", rng.below(100_000))
}

fn capitalize(word: &mut String) {
    if let Some(first) = word.chars().next() {
        *word = first.to_uppercase().chain(word.chars().skip(1)).collect();
    }
}

/// The words spaced scripts are written with, each a common-word query.
fn common_words() -> Vec<&'static str> {
    [ENGLISH, ACCENTED, RUSSIAN, GREEK, ARABIC].concat()
}

/// Every Han and kana character of the Chinese and Japanese words, once each.
fn cjk_characters() -> Vec<char> {
    let mut characters: Vec<char> = [CHINESE, JAPANESE]
        .concat()
        .iter()
        .flat_map(|word| word.chars())
        .filter(|&c| {
            ('\u{3040}'..='\u{30FF}').contains(&c) || ('\u{4E00}'..='\u{9FFF}').contains(&c)
        })
        .collect();
    characters.sort_unstable();
    characters.dedup();
    characters
}

/// Up to six characters from the inside of `word` (its first and last left out).
fn middle(word: &str) -> String {
    let characters: Vec<char> = word.chars().collect();
    let end = (characters.len() - 1).min(7);
    characters[1..end].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_depends_only_on_the_seed_the_room_and_its_number() {
        let corpus = Corpus::new(7, 1_000_000, 50);
        assert_eq!(corpus.message(3, 17), Corpus::new(7, 1_000_000, 50).message(3, 17));
        assert_ne!(corpus.message(3, 17), corpus.message(3, 18));
        assert_ne!(corpus.message(3, 17), corpus.message(4, 17));
        assert_ne!(corpus.message(3, 17), Corpus::new(8, 1_000_000, 50).message(3, 17));
    }

    #[test]
    fn queries_are_what_their_category_says() {
        let corpus = Corpus::new(1, 1_000_000, 50);
        assert_eq!(middle("permission"), "ermiss");
        assert_eq!(corpus.rare_words, 2_000);
        for query in corpus.queries(Category::Cjk, 50) {
            assert_eq!(query.chars().count(), 1, "{query}");
        }
        for query in corpus.queries(Category::Rare, 50) {
            assert!(!common_words().iter().any(|word| word.contains(&query)), "{query}");
        }
        let common = corpus.queries(Category::Common, 50);
        assert!(common.iter().all(|query| common_words().contains(&query.as_str())));
        // Rare words are different from each other, and each is in about rare_hits.
        let words: std::collections::HashSet<String> =
            (0..corpus.rare_words).map(|i| corpus.rare(i)).collect();
        assert_eq!(words.len(), corpus.rare_words);
    }

    #[test]
    fn every_rare_word_is_in_a_handful_of_messages() {
        let corpus = Corpus::new(5, 20_000, 10);
        let mut hits = std::collections::HashMap::<String, u64>::new();
        for room in 0..10 {
            for n in 1..=2_000 {
                let message = corpus.message(room, n);
                for i in 0..corpus.rare_words {
                    if message.contains(&corpus.rare(i)) {
                        *hits.entry(corpus.rare(i)).or_default() += 1;
                    }
                }
            }
        }
        let mean = hits.values().sum::<u64>() as f64 / corpus.rare_words as f64;
        assert!((6.0..14.0).contains(&mean), "{mean}");
    }
}
