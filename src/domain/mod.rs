//! The words of a chat server as types: ids, names, message bodies, room kinds, timestamps.
//!
//! Every value that arrives from outside is parsed here into a type that can only hold a
//! valid value, so the rest of the server never re-checks it. This module does no IO.

mod id;
mod links;
mod media;
mod message;
mod model;
mod room;
mod time;
mod user;

pub use id::{InvalidId, MessageId, RoomId, SessionId, UserId};
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

/// Control characters are refused everywhere except where a field explicitly allows line
/// breaks and tabs.
fn has_control_chars(text: &str, allow_newline_and_tab: bool) -> bool {
    text.chars().any(|c| c.is_control() && !(allow_newline_and_tab && (c == '\n' || c == '\t')))
}
