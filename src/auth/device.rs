//! Device cookies, after OWASP's defence against account lockout: a browser that has
//! signed in to an account gets a cookie, signed by the server, that names the account and
//! a random device id. When it signs in to that account again, its failures count against
//! that device alone, not against the account or the address, so a stranger guessing at the
//! account (or sharing the owner's address behind a NAT or an unconfigured proxy) cannot
//! keep the owner out; a stolen or guessing device is held up by its own count like any
//! guesser at one address.
//!
//! The cookie is `<device id>.<HMAC-SHA256 of the username and the id>`, both base64url. The
//! key is the server's own, kept in the database (`Store::secret`) so that every node
//! checks the cookies every other node issued.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name of the key in the server's secrets.
pub const DEVICE_KEY_SECRET: &str = "device_cookie_key";

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks device cookies.
#[derive(Clone)]
pub struct DeviceKeys {
    mac: HmacSha256,
}

impl DeviceKeys {
    pub fn new(key: &[u8]) -> Self {
        // HMAC takes a key of any length.
        let mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        Self { mac }
    }

    /// A fresh key to offer the store on first start.
    pub fn generate_key() -> Vec<u8> {
        rand::random::<[u8; 32]>().to_vec()
    }

    /// A new cookie value for a browser that has just signed in as `username` (canonical).
    pub fn issue(&self, username: &str) -> String {
        let device = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let tag = URL_SAFE_NO_PAD.encode(self.tag(username, &device).finalize().into_bytes());
        format!("{device}.{tag}")
    }

    /// The device id of `cookie`, if this server issued it for `username`.
    pub fn verify<'c>(&self, cookie: &'c str, username: &str) -> Option<&'c str> {
        let (device, tag) = cookie.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant-time: the comparison says nothing of how close a forgery came.
        self.tag(username, device).verify_slice(&tag).ok()?;
        Some(device)
    }

    fn tag(&self, username: &str, device: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"confab device\0");
        mac.update(username.as_bytes());
        mac.update(b"\0");
        mac.update(device.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_names_its_device_for_its_account_only() {
        let keys = DeviceKeys::new(&DeviceKeys::generate_key());
        let cookie = keys.issue("alice");
        let device = keys.verify(&cookie, "alice").expect("valid for alice");
        assert!(cookie.starts_with(device));
        assert_ne!(keys.issue("alice"), cookie, "each sign-in a new device id");
        assert_eq!(keys.verify(&cookie, "alicf"), None, "another account");
        let other = DeviceKeys::new(&DeviceKeys::generate_key());
        assert_eq!(other.verify(&cookie, "alice"), None, "another server's key");
        let (id, tag) = cookie.split_once('.').expect("two parts");
        assert_eq!(keys.verify(&format!("{id}x.{tag}"), "alice"), None, "a changed id");
        for junk in ["", ".", "abc", "abc.", ".abc", "a.b.c", "%%.%%"] {
            assert_eq!(keys.verify(junk, "alice"), None, "{junk:?}");
        }
    }
}
