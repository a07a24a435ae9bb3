//! `Authorization: Basic base64(login:password)`, checked against Argon2id hashes.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::Semaphore;
use tracing::debug;

use super::Caller;
use super::cache::CredentialCache;
use crate::domain::UserStatus;
use crate::http::error::ApiError;
use crate::password;
use crate::store::Store;

pub struct BasicAuthenticator {
    cache: CredentialCache,
    /// Argon2 is deliberately expensive; at most this many verifications run at once, so a
    /// flood of wrong passwords queues instead of taking every core from the requests that
    /// are answered from the cache.
    verifications: Arc<Semaphore>,
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

    pub async fn authenticate(&self, store: &Store, encoded: &str) -> Result<Caller, ApiError> {
        let Ok(decoded) = STANDARD.decode(encoded) else {
            debug!("Basic credentials are not base64");
            return Err(ApiError::Unauthorized);
        };
        let Some((login, password)) = std::str::from_utf8(&decoded)
            .ok()
            .and_then(|text| text.split_once(':'))
        else {
            debug!("Basic credentials are not UTF-8 login:password");
            return Err(ApiError::Unauthorized);
        };
        let credentials = store.credentials(login).await?;
        let usable = credentials.and_then(|c| {
            let hash = c.password_hash?;
            (c.status != UserStatus::StatusDeleted).then_some((c.associate_id, c.is_admin, hash))
        });
        let Some((associate_id, is_admin, password_hash)) = usable else {
            // Spend what a real check costs, so the response time does not tell whether the
            // login exists.
            self.verify(password.as_bytes(), dummy_hash()).await?;
            debug!(login, "unknown login, deleted user, or no password");
            return Err(ApiError::Unauthorized);
        };
        let key = self.cache.key(&decoded);
        if self.cache.contains(&key, associate_id, &password_hash) {
            return Ok(Caller {
                associate_id,
                is_admin,
            });
        }
        if !self.verify(password.as_bytes(), &password_hash).await? {
            debug!(login, "wrong password");
            return Err(ApiError::Unauthorized);
        }
        self.cache.insert(key, associate_id, &password_hash);
        Ok(Caller {
            associate_id,
            is_admin,
        })
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
