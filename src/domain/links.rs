//! Where the API serves what records link to: the one place that turns an avatar's key or
//! a file's id into the path a client fetches. The routes themselves are in `http`.

use super::{MediaId, UserId};

/// A user's avatar; the blob key in the query makes a new picture a new URL, so that
/// browsers may cache each one for good.
pub(super) fn avatar(user: UserId, key: &str) -> String {
    format!("/api/v1/users/{user}/avatar?v={key}")
}

/// An uploaded file.
pub(super) fn media(id: &MediaId) -> String {
    format!("/api/v1/media/{id}")
}

/// The small version of an uploaded picture.
pub(super) fn thumbnail(id: &MediaId) -> String {
    format!("/api/v1/media/{id}/thumbnail")
}
