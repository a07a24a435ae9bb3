//! Secrets the server issues (tickets, access tokens, application tokens, XSRF tokens): 256
//! random bits each, handed out once and stored only as their SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The prefix of a SOTicket ticket, as SuperOffice writes them.
pub const TICKET_PREFIX: &str = "7T:";
/// The prefix of an opaque Bearer access token, as SuperOffice writes them.
pub const ACCESS_TOKEN_PREFIX: &str = "8A:";

/// The SHA-256 of a secret: what the database keeps. A fast hash is enough: the secrets are
/// random and long, so there is nothing to guess offline, unlike passwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }
}

/// A new secret: `prefix` followed by 32 random bytes in unpadded base64url.
pub fn issue(prefix: &str) -> (String, SecretHash) {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).expect("the operating system's random source failed");
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random));
    let hash = SecretHash::of(&secret);
    (secret, hash)
}

/// Compares two secrets in time that depends only on their lengths, so a guess cannot be
/// refined byte by byte from response times.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_are_long_random_and_hash_to_what_is_stored() {
        let (a, hash) = issue(TICKET_PREFIX);
        let (b, _) = issue(TICKET_PREFIX);
        assert!(a.starts_with("7T:"));
        assert_eq!(a.len(), 3 + 43);
        assert_ne!(a, b);
        assert_eq!(SecretHash::of(&a), hash);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
