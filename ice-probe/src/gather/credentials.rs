//! TURN credentials: the long-term credential key (RFC 8489 section 9.2.2)
//! and TURN REST ephemeral credentials as coturn's `use-auth-secret` checks
//! them (draft-uberti-behave-turn-rest).

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// A username and password for the long-term credential mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The user part of REST usernames when `--username` is not given.
pub const DEFAULT_REST_USER: &str = "ice-probe";
/// How long generated REST credentials stay valid.
pub const REST_TTL_S: u64 = 86_400;

/// key = MD5(username ":" realm ":" password). The password is used as
/// given (no SASLprep: ASCII passwords are unchanged by it).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// HMAC-SHA1 of `data` with `key`.
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// TURN REST credentials: username "<expiry unix time>:<user>", password
/// base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &str, user: &str, expiry_unix: u64) -> Credentials {
    let username = format!("{expiry_unix}:{user}");
    let mac = hmac_sha1(secret.as_bytes(), username.as_bytes());
    Credentials {
        password: base64::engine::general_purpose::STANDARD.encode(mac),
        username,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_key_is_md5_of_the_triple() {
        // MD5("user:realm:pass") computed independently (coreutils md5sum).
        let k = long_term_key("user", "realm", "pass");
        assert_eq!(
            k.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "8493fbc53ba582fb4c044c456bdc40eb"
        );
    }

    #[test]
    fn rest_credentials_match_coturn_formula() {
        // echo -n "1700000000:alice" | openssl dgst -binary -sha1 -hmac s3cret | base64
        let c = rest_credentials("s3cret", "alice", 1_700_000_000);
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.password, "TtElzSjT0GdnTQ9xdcRNxx96yQs=");
    }
}
