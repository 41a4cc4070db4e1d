//! Usernames, passwords and display names, validated by parsing.

use std::fmt;

use serde::Serialize;

use super::{ValidationError, has_control_chars};

/// A username: 3–32 characters of `a-z 0-9 _ . -`. Upper-case letters are accepted on input
/// and folded to lower case, so names are unique without regard to case and `Alice` logs in
/// as `alice`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = |message: &str| ValidationError::new("username", "invalid_username", message);
        let len = input.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(invalid("Username must be 3 to 32 characters long."));
        }
        let folded = input.to_ascii_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if !folded.chars().all(allowed) {
            return Err(invalid(
                "Username may contain only letters a-z, digits 0-9, '_', '.' and '-'.",
            ));
        }
        Ok(Self(folded))
    }

    /// A name read back from the database, valid when it was written.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the name is unique under: no two accounts have names that look alike
    /// (`alice1` and `alicel`, `modern` and `rnodern`). See [`super::lookalike_key`].
    pub fn lookalike_key(&self) -> String {
        super::lookalike_key(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: at least 8 characters, at most 256 (argon2 takes time in proportion to
/// its input; an unbounded password is a denial-of-service handle), and not the username.
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 256;

    pub fn parse(input: String, username: &Username) -> Result<Self, ValidationError> {
        let invalid = |message: &str| ValidationError::new("password", "invalid_password", message);
        let len = input.chars().count();
        if len < Self::MIN_LEN {
            return Err(invalid("Password must be at least 8 characters long."));
        }
        if len > Self::MAX_LEN {
            return Err(invalid("Password must be at most 256 characters long."));
        }
        if input.eq_ignore_ascii_case(username.as_str()) {
            return Err(invalid("Password must not be the same as the username."));
        }
        Ok(Self(input))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The name shown beside a user's messages: 1–64 printable characters, surrounding
/// whitespace removed. Printable excludes the invisible characters that change how the
/// text around a name is shown, so that no name can pass for another or reverse the line it
/// sits in.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid =
            |message: &str| ValidationError::new("display_name", "invalid_display_name", message);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("Display name must not be empty."));
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(invalid("Display name must be at most 64 characters long."));
        }
        if has_control_chars(trimmed, false) {
            return Err(invalid("Display name must not contain control characters."));
        }
        if let Some(problem) = super::unshown_name(trimmed, "Display name") {
            return Err(invalid(&problem));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The default display name of a new account.
    pub fn from_username(username: &Username) -> Self {
        Self(username.as_str().to_owned())
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A few words a user says about themself: at most 300 characters, surrounding whitespace
/// removed; may be empty.
#[derive(Clone, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Bio(String);

impl Bio {
    pub const MAX_CHARS: usize = 300;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let normalized = input.replace("\r\n", "\n");
        let trimmed = normalized.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "bio",
                "invalid_bio",
                "A bio is at most 300 characters long.",
            ));
        }
        if has_control_chars(trimmed, true) {
            return Err(ValidationError::new(
                "bio",
                "invalid_bio",
                "A bio must not contain control characters.",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Bio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert_eq!(Username::parse("Alice_1.x-y").map(|u| u.0), Ok("alice_1.x-y".to_owned()));
        for bad in ["ab", "a b c", "ålice", "alice!", &"x".repeat(33), ""] {
            assert_eq!(Username::parse(bad).map_err(|e| e.code), Err("invalid_username"), "{bad}");
        }
        assert!(Username::parse(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn password_rules() {
        let alice = Username::parse("alice123").expect("valid name");
        let code = |p: &str| Password::parse(p.to_owned(), &alice).err().map(|e| e.code);
        assert_eq!(code("short"), Some("invalid_password"));
        assert_eq!(code("ALICE123"), Some("invalid_password"));
        assert_eq!(code(&"p".repeat(257)), Some("invalid_password"));
        assert_eq!(code("correct horse"), None);
    }

    #[test]
    fn bio_rules() {
        assert_eq!(
            Bio::parse("  likes tea\r\nand cats ").map(|b| b.0),
            Ok("likes tea\nand cats".to_owned())
        );
        assert!(Bio::parse("").is_ok());
        assert!(Bio::parse(&"b".repeat(301)).is_err());
        assert!(Bio::parse("bell \u{7}").is_err());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(DisplayName::parse("  Ada L.  ").map(|d| d.0), Ok("Ada L.".to_owned()));
        for bad in ["", "   ", "tab\there", "bell\u{7}", &"é".repeat(65)] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        let invisible = [
            '\u{200B}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{061C}',
            '\u{206A}',
            '\u{206F}',
            '\u{2060}',
            '\u{180E}',
            '\u{E0001}',
            '\u{00AD}',
            '\u{3164}',
        ];
        for c in invisible {
            let name = format!("ad{c}min");
            let refused = DisplayName::parse(&name).map_err(|e| e.code);
            assert_eq!(refused, Err("invalid_display_name"), "U+{:04X}", c as u32);
        }
        for fine in [
            "Zoë",
            "李小龍",
            "محمد",
            "Ada 🚀",
            "O'Brien-Smith",
            "dev 👩\u{200D}💻",
            "می\u{200C}خواهم",
            "I \u{2764}\u{FE0F} Rust",
            "Scot \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        ] {
            assert!(DisplayName::parse(fine).is_ok(), "{fine:?}");
        }
        for neighbour in ['\u{2027}', '\u{202F}'] {
            let name = format!("a{neighbour}b");
            assert!(DisplayName::parse(&name).is_ok(), "U+{:04X} is allowed", neighbour as u32);
        }
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        for blank in ["\u{2800}", "\u{2800} \u{2800}", "\u{FFA0}"] {
            assert!(DisplayName::parse(blank).is_err(), "{blank:?} shows nothing");
        }
    }
}
