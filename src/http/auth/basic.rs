//! Passwords: `Authorization: Basic base64(login:password)` and the sign-in page, checked
//! against Argon2id hashes, with a lockout against guessing.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeSliceError, Engine as _};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::Identity;
use super::cache::CredentialCache;
use crate::clock::Clock;
use crate::domain::UserStatus;
use crate::http::error::ApiError;
use crate::password;
use crate::store::{Credentials, Store};

/// Failed passwords for one login within [`LOCKOUT_WINDOW`] that lock it.
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct BasicAuthenticator {
    cache: CredentialCache,
    /// Argon2 is deliberately expensive; at most this many verifications run at once, so a
    /// flood of wrong passwords queues instead of taking every core from the requests that
    /// are answered from the cache.
    verifications: Arc<Semaphore>,
}

/// The outcome of checking a password.
#[derive(Debug)]
pub enum PasswordCheck {
    Valid(Credentials),
    /// Wrong password, unknown login, no password, or a deleted user: deliberately not told
    /// apart.
    Invalid,
    /// Too many recent failures: the password was not even checked.
    LockedOut,
}

impl BasicAuthenticator {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Made now rather than on the first unknown login, which would stall a request.
        dummy_hash();
        Self {
            cache: CredentialCache::new(),
            verifications: Arc::new(Semaphore::new(cores)),
        }
    }

    pub async fn authenticate(
        &self,
        store: &Store,
        clock: &Clock,
        encoded: &str,
    ) -> Result<Identity, ApiError> {
        // Decoded on the stack when short, as nearly all are: this runs on every request.
        let mut buffer = [0u8; 192];
        let decoded = match STANDARD.decode_slice(encoded, &mut buffer) {
            Ok(length) => Ok(Cow::Borrowed(&buffer[..length])),
            Err(DecodeSliceError::OutputSliceTooSmall) => STANDARD.decode(encoded).map(Cow::Owned),
            Err(DecodeSliceError::DecodeError(error)) => Err(error),
        };
        let Ok(decoded) = decoded else {
            debug!("Basic credentials are not base64");
            return Err(ApiError::Unauthorized);
        };
        let Some((login, password)) = std::str::from_utf8(&decoded).ok().and_then(|text| {
            let colon = text.bytes().position(|b| b == b':')?;
            Some((&text[..colon], &text[colon + 1..]))
        }) else {
            debug!("Basic credentials are not UTF-8 login:password");
            return Err(ApiError::Unauthorized);
        };
        // Credentials verified before skip Argon2 and the lockout: they were proven already,
        // so a guesser locking a login out does not lock out its signed-in owner.
        let key = self.cache.key(&decoded);
        if let Some(user) = store.credentials(login).await?
            && user.status != UserStatus::StatusDeleted
            && let Some(hash) = &user.password_hash
            && self.cache.contains(&key, user.associate_id, hash)
        {
            return Ok(Identity {
                associate_id: user.associate_id,
                is_admin: user.is_admin,
            });
        }
        // Boxed: the first check of a password is rare, and its future, as large as the rest
        // of the request's together, would otherwise be moved with every request.
        match Box::pin(self.check_password(store, clock, login, password)).await? {
            PasswordCheck::Valid(user) => {
                if let Some(hash) = &user.password_hash {
                    self.cache.insert(key, user.associate_id, hash);
                }
                Ok(Identity {
                    associate_id: user.associate_id,
                    is_admin: user.is_admin,
                })
            }
            PasswordCheck::Invalid | PasswordCheck::LockedOut => Err(ApiError::Unauthorized),
        }
    }

    /// Checks a password, counting failures per login in the database (so the count holds
    /// across restarts and nodes) and refusing a locked login without checking.
    pub async fn check_password(
        &self,
        store: &Store,
        clock: &Clock,
        login: &str,
        password: &str,
    ) -> Result<PasswordCheck, ApiError> {
        let now = clock.now_millis();
        let window_start = now - i64::try_from(LOCKOUT_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let failures = store.count_login_failures(login, window_start).await?;
        if failures >= MAX_FAILURES {
            warn!(
                login,
                failures, "login locked out after repeated failed passwords"
            );
            return Ok(PasswordCheck::LockedOut);
        }
        let user = store.credentials(login).await?;
        let usable =
            user.filter(|u| u.status != UserStatus::StatusDeleted && u.password_hash.is_some());
        let valid = match &usable {
            Some(user) => {
                let hash = user.password_hash.as_deref().unwrap_or_default();
                self.verify(password.as_bytes(), hash).await?
            }
            None => {
                // Spend what a real check costs, so the response time does not tell whether
                // the login exists.
                self.verify(password.as_bytes(), dummy_hash()).await?;
                false
            }
        };
        match usable {
            Some(user) if valid => {
                if failures > 0 {
                    store.clear_login_failures(login).await?;
                }
                Ok(PasswordCheck::Valid(user))
            }
            _ => {
                store.record_login_failure(login, now).await?;
                warn!(login, "failed password");
                Ok(PasswordCheck::Invalid)
            }
        }
    }

    /// Runs an Argon2 verification on a blocking thread, at most one per core at a time.
    async fn verify(&self, password: &[u8], phc: &str) -> Result<bool, ApiError> {
        let _permit = self
            .verifications
            .acquire()
            .await
            .map_err(|_| ApiError::Internal)?;
        let (password, phc) = (password.to_vec(), phc.to_owned());
        tokio::task::spawn_blocking(move || password::verify(&password, &phc))
            .await
            .map_err(|_| ApiError::Internal)
    }

    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }
}

impl Default for BasicAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

/// A hash of a random password, made once, to verify against when there is no real one.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        password::hash(&password).expect("hashing a non-empty password cannot fail")
    })
}
