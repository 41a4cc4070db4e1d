//! The words of a chat server as types: ids, names, message bodies, room kinds, timestamps.
//!
//! Every value that arrives from outside is parsed here into a type that can only hold a
//! valid value, so the rest of the server never re-checks it. This module does no IO.

mod id;
mod links;
mod lookalike;
mod media;
mod message;
mod model;
mod room;
pub mod search;
mod time;
mod user;

pub use id::{IdentityId, InvalidId, MessageId, RoomId, SessionId, UserId};
pub use lookalike::lookalike_key;
pub use media::{MediaId, MediaKind};
pub use message::{ClientId, Emoji, Mention, MessageBody};
pub use model::{
    Attachment, Member, Message, Presence, PresenceStatus, Reaction, Receipt, ReplyPreview, Room,
    RoomCursor, Unread, User,
};
pub use room::{RoomKind, RoomName, RoomRole};
pub use time::Timestamp;
pub use user::{Bio, DisplayName, Password, Username};

/// Why a value from outside was refused: which field, a stable code and a sentence for a
/// person. Shown to clients as a 422 or an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The request field at fault, so a form can show the message beside it.
    pub field: &'static str,
    /// A stable snake_case code that clients may match on.
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { field, code, message: message.into() }
    }
}

/// Whether `c` shows nothing itself yet can change how text reads, or make one name pass
/// for another: Unicode's default-ignorable code points (zero-width characters, direction
/// marks, overrides and isolates, the soft hyphen, fillers, the language tag…) and the line
/// and paragraph separators. Allowed are what real text needs: the zero-width joiner and
/// non-joiner (emoji sequences such as 👩‍💻, Persian spelling), variation selectors (❤️) and
/// the tag characters of subdivision flags (🏴󠁧󠁢󠁳󠁣󠁴󠁿).
pub fn is_invisible(c: char) -> bool {
    use icu_properties::CodePointSetData;
    use icu_properties::props::DefaultIgnorableCodePoint;
    let needed = matches!(
        c,
        '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0020}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}'
    );
    !needed
        && (matches!(c, '\u{2028}' | '\u{2029}')
            || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c))
}

/// Whether `text` would show as nothing at all: only whitespace, invisible characters and
/// characters drawn blank (the braille blank U+2800, the Hangul fillers).
pub fn looks_blank(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace()
            || is_invisible(c)
            || matches!(c, '\u{2800}' | '\u{3164}' | '\u{115F}' | '\u{1160}' | '\u{FFA0}')
    })
}

/// What is wrong with a name (of a person or a room: `what`) that would hide characters or
/// show nothing, if anything is.
fn unshown_name(name: &str, what: &str) -> Option<String> {
    if name.chars().any(is_invisible) {
        return Some(format!(
            "{what} must not contain invisible formatting characters (direction overrides, \
             zero-width characters, line separators)."
        ));
    }
    looks_blank(name).then(|| format!("{what} must show something."))
}

/// Control characters are refused everywhere except where a field explicitly allows line
/// breaks and tabs.
fn has_control_chars(text: &str, allow_newline_and_tab: bool) -> bool {
    text.chars().any(|c| c.is_control() && !(allow_newline_and_tab && (c == '\n' || c == '\t')))
}
