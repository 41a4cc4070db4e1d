//! Uploaded files as the rest of the server names them.

use std::fmt;

use serde::Serialize;

/// What a file is, as far as showing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    /// Anything else: offered for download, never shown inline.
    File,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// A media id: 128 random bits as 26 lower-case base32 characters. Unlike other ids it is
/// long enough that knowing one URL tells nothing about any other.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct MediaId(String);

const MEDIA_ID_LEN: usize = 26;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl MediaId {
    pub fn generate() -> Self {
        let mut bits: u128 = rand::random();
        let mut text = String::with_capacity(MEDIA_ID_LEN);
        for _ in 0..MEDIA_ID_LEN {
            text.push(ALPHABET[(bits & 31) as usize] as char);
            bits >>= 5;
        }
        Self(text)
    }

    /// An id read back from storage, valid when it was written.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == MEDIA_ID_LEN && text.bytes().all(|b| ALPHABET.contains(&b));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaId({})", self.0)
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
