//! Identifiers of users, rooms, messages, sessions and connections.
//!
//! Internally an id is a random positive 63-bit integer: compact in indexes, cheap to hash
//! and copy. On the wire it is an opaque 13-character string (Crockford base32, lower case),
//! so that no client mistakes it for a number (JavaScript loses precision past 2^53) and
//! nobody can walk the id space by counting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Crockford's base32 alphabet: no `i`, `l`, `o` or `u`, so ids survive being read aloud.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 13 base32 digits carry 65 bits, enough for any `u64`.
const ENCODED_LEN: usize = 13;

/// Encodes a positive 63-bit value as a fixed-width base32 string.
fn encode(value: i64) -> String {
    let mut out = [0u8; ENCODED_LEN];
    let mut rest = value as u64;
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(rest & 31) as usize];
        rest >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Parses what [`encode`] wrote; anything else (wrong length, foreign characters, values
/// that are not positive 63-bit integers) is not an id.
fn decode(text: &str) -> Option<i64> {
    if text.len() != ENCODED_LEN {
        return None;
    }
    let mut value: u64 = 0;
    for byte in text.bytes() {
        let digit = ALPHABET.iter().position(|&a| a == byte.to_ascii_lowercase())?;
        value = value.checked_mul(32)?.checked_add(digit as u64)?;
    }
    i64::try_from(value).ok().filter(|v| *v > 0)
}

/// A fresh random id: 63 random bits, never zero.
fn random() -> i64 {
    loop {
        let value = (rand::random::<u64>() >> 1) as i64;
        if value != 0 {
            return value;
        }
    }
}

/// The schema of an id as clients see it: a string of [`ENCODED_LEN`] base32 digits.
fn id_schema(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .min_length(Some(ENCODED_LEN))
        .max_length(Some(ENCODED_LEN))
        .pattern(Some("^[0-9a-hjkmnp-tv-z]{13}$"))
        .description(Some(description))
        .into()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(random())
            }

            /// The id as stored in the database.
            pub fn as_i64(self) -> i64 {
                self.0
            }

            /// An id read back from the database.
            pub fn from_i64(value: i64) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                decode(text).map(Self).ok_or(InvalidId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&encode(self.0))
            }
        }

        /// On the wire: 13 characters of Crockford's base32, lower case.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema(concat!("The id of ", stringify!($name), ": opaque, 13 characters."))
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(|_| {
                    serde::de::Error::custom(concat!("not a valid ", stringify!($name)))
                })
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A room: public room, private group or direct conversation.
    RoomId
);
id_type!(
    /// A message, unique across rooms.
    MessageId
);
id_type!(
    /// A login session; appears in logs and lets a logout close that session's sockets.
    SessionId
);
id_type!(
    /// An identity at an OpenID Connect provider, linked to an account.
    IdentityId
);

/// A string that is not an id of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for value in [1, 31, 32, 1 << 40, i64::MAX] {
            let id = RoomId::from_i64(value);
            let text = id.to_string();
            assert_eq!(text.len(), ENCODED_LEN);
            assert_eq!(text.parse::<RoomId>(), Ok(id));
        }
    }

    #[test]
    fn generated_ids_are_positive_and_distinct() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert!(a.as_i64() > 0 && b.as_i64() > 0);
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        for text in ["", "0000000000000", "zzzzzzzzzzzzz", "abc", "000000000000u", "00000000000001"]
        {
            assert_eq!(text.parse::<RoomId>(), Err(InvalidId), "{text:?}");
        }
    }

    #[test]
    fn parses_upper_case_too() {
        let id = MessageId::from_i64(123_456_789);
        assert_eq!(id.to_string().to_uppercase().parse::<MessageId>(), Ok(id));
    }
}
