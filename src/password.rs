//! Password hashing: Argon2id with the crate's recommended parameters, stored as PHC strings.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// Hashes a password with a fresh random salt. Costs about as much as [`verify`]: tens of
/// milliseconds by design.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether a password matches a stored PHC string. A malformed string matches nothing.
pub fn verify(password: &[u8], phc: &str) -> bool {
    Argon2::default().verify_password(password, phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("Tje0").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(b"Tje0", &phc));
        assert!(!verify(b"tje0", &phc));
        assert!(!verify(b"Tje0", "not a hash"));
        assert!(matches!(hash(""), Err(PasswordError::Empty)));
    }
}
