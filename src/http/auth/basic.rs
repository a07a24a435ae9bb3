//! Passwords: `Authorization: Basic base64(login:password)` and the sign-in page, checked
//! against Argon2id hashes, with a lockout against guessing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeSliceError, Engine as _};
use tracing::{debug, warn};

use super::Identity;
use super::cache::{CacheKey, CredentialCache};
use crate::clock::Clock;
use crate::domain::UserStatus;
use crate::http::error::{ApiError, Unavailability};
use crate::password::{self, Verifier};
use crate::repeated;
use crate::store::{Credentials, LoginKey, Store, StoreError};

/// Failed passwords for one login within [`LOCKOUT_WINDOW`] that lock it.
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The longest login looked up, in bytes; a longer one is refused before anything is looked
/// up or stored. SuperOffice's logins are far shorter.
pub const MAX_LOGIN_BYTES: usize = 256;

/// Password checks under way at most, per Argon2 thread (recorded, or waiting for a thread):
/// about a sixth of a second of work each.
const CHECKS_PER_THREAD: usize = 8;

/// How long a password check waits for its turn before it is refused as busy (a 503): before
/// it is recorded or made, so that it counts against no login. A flood of guesses thus neither
/// waits without end nor holds for long the places of the requests answered at once.
const CHECK_WAIT: Duration = Duration::from_secs(1);

pub struct BasicAuthenticator {
    cache: CredentialCache,
    /// The credentials being checked just now.
    checking: Turns,
    /// Argon2 is deliberately expensive: it runs on one thread per core, so a flood of wrong
    /// passwords queues instead of taking every core from the requests answered from the
    /// cache, and each thread keeps its memory rather than allocating it per check.
    verifier: Verifier,
    /// One permit per check under way, from its record to its verdict.
    checks: tokio::sync::Semaphore,
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
        let checks = cores * CHECKS_PER_THREAD;
        Self {
            cache: CredentialCache::new(),
            checking: Turns::default(),
            verifier: Verifier::start(cores, checks)
                .expect("the operating system starts the password threads"),
            checks: tokio::sync::Semaphore::new(checks),
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
        if login.len() > MAX_LOGIN_BYTES {
            debug!(bytes = login.len(), "the login is too long to be one");
            return Err(ApiError::Unauthorized);
        }
        // Credentials verified before skip Argon2 and the lockout: they were proven already,
        // so a guesser locking a login out does not lock out its signed-in owner.
        let key = self.cache.key(&decoded);
        if let Some(identity) = self.remembered(store, login, &key).await? {
            return Ok(identity);
        }
        // Boxed: the first check of a password is rare, and its future, as large as the rest
        // of the request's together, would otherwise be moved with every request.
        Box::pin(self.first_check(store, clock, key, login, password)).await
    }

    /// The identity of credentials verified before, if the user's stored hash is still the
    /// one they were verified against.
    async fn remembered(
        &self,
        store: &Store,
        login: &str,
        key: &CacheKey,
    ) -> Result<Option<Identity>, ApiError> {
        Ok(store
            .credentials(login)
            .await?
            .filter(|user| {
                user.status != UserStatus::StatusDeleted
                    && user
                        .password_hash
                        .as_ref()
                        .is_some_and(|hash| self.cache.contains(key, user.associate_id, hash))
            })
            .map(|user| Identity {
                associate_id: user.associate_id,
                is_admin: user.is_admin,
            }))
    }

    /// Checks credentials not remembered yet. Requests with the same credentials take turns:
    /// a client that opens several connections at once verifies its password once, and the
    /// others find it remembered, instead of each taking one of the lockout's few checks.
    async fn first_check(
        &self,
        store: &Store,
        clock: &Clock,
        key: CacheKey,
        login: &str,
        password: &str,
    ) -> Result<Identity, ApiError> {
        let _turn = self.checking.turn(key).await;
        if let Some(identity) = self.remembered(store, login, &key).await? {
            return Ok(identity);
        }
        match self.check_password(store, clock, login, password).await? {
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

    /// Checks a password, with a lockout against guessing: every check of a login is recorded
    /// in the database before it runs (so the count holds across restarts and nodes), as a
    /// failure until it succeeds, and a login with [`MAX_FAILURES`] recorded within the
    /// [`LOCKOUT_WINDOW`] is refused without a check. Recording first, in one atomic step with
    /// the count, means guesses sent at once cannot all pass the count: at most
    /// [`MAX_FAILURES`] of them are checked. A check that cannot be recorded does not run: the
    /// answer is a 503, never a verdict on the password.
    pub async fn check_password(
        &self,
        store: &Store,
        clock: &Clock,
        login: &str,
        password: &str,
    ) -> Result<PasswordCheck, ApiError> {
        if login.len() > MAX_LOGIN_BYTES {
            debug!(bytes = login.len(), "the login is too long to be one");
            return Ok(PasswordCheck::Invalid);
        }
        let Ok(Ok(_check)) = tokio::time::timeout(CHECK_WAIT, self.checks.acquire()).await else {
            repeated::OVERLOADED.report(|unlogged| {
                warn!(
                    unlogged,
                    "a password check was refused: too many are waiting"
                );
            });
            return Err(ApiError::Unavailable(Unavailability::Busy));
        };
        let now = clock.now_millis();
        let window_start = now - i64::try_from(LOCKOUT_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let key = LoginKey::of(login);
        let reserved = store
            .reserve_login_attempt(key, now, window_start, MAX_FAILURES)
            .await
            .map_err(fail_closed)?;
        if !reserved {
            crate::metrics::lockout();
            repeated::LOGIN_LOCKED_OUT.report(|unlogged| {
                warn!(
                    login,
                    unlogged, "login locked out after repeated failed passwords"
                );
            });
            return Ok(PasswordCheck::LockedOut);
        }
        let user = store.credentials(login).await?;
        let usable =
            user.filter(|u| u.status != UserStatus::StatusDeleted && u.password_hash.is_some());
        let valid = match usable.as_ref().and_then(|user| user.password_hash.clone()) {
            Some(hash) => self.verify(password.as_bytes(), hash).await?,
            None => {
                // Spend what a real check costs, so the response time does not tell whether
                // the login exists.
                self.verify(password.as_bytes(), dummy_hash()).await?;
                false
            }
        };
        match usable {
            Some(user) if valid => {
                if let Err(error) = store.clear_login_failures(key).await {
                    // The password was right all the same; the check stays counted as a
                    // failure until the window passes.
                    warn!(login, %error, "cannot clear the login's recorded checks");
                }
                Ok(PasswordCheck::Valid(user))
            }
            _ => {
                repeated::FAILED_PASSWORD.report(|unlogged| {
                    warn!(login, unlogged, "failed password");
                });
                Ok(PasswordCheck::Invalid)
            }
        }
    }

    /// Runs an Argon2 verification on one of the verifier's threads.
    async fn verify(&self, password: &[u8], phc: Arc<str>) -> Result<bool, ApiError> {
        self.verifier
            .verify(password, phc)
            .await
            .map_err(|_| ApiError::Internal)
    }
}

impl Default for BasicAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

/// One lock per key in use: holders of one key take turns, other keys do not wait. A key's
/// entry counts the turns that hold or wait for it and goes with the last, also when a waiting
/// request is given up (its turn is dropped before it got the lock), so the map holds no more
/// entries than there are checks in flight.
#[derive(Default)]
struct Turns {
    locks: Mutex<HashMap<CacheKey, KeyLock>>,
}

/// A key's lock, and how many turns hold or wait for it.
type KeyLock = (Arc<tokio::sync::Mutex<()>>, usize);

/// A turn of one key, given back when dropped.
struct Turn<'a> {
    turns: &'a Turns,
    key: CacheKey,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    async fn turn(&self, key: CacheKey) -> Turn<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            let (lock, turns) = locks.entry(key).or_default();
            *turns += 1;
            lock.clone()
        };
        // Made before the wait, so that it is dropped, and counted out, however the wait ends.
        let mut turn = Turn {
            turns: self,
            key,
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .turns
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, turns)) = locks.get_mut(&self.key) {
            *turns -= 1;
            if *turns == 0 {
                locks.remove(&self.key);
            }
        }
    }
}

/// A hash of a random password, made once, to verify against when there is no real one.
fn dummy_hash() -> Arc<str> {
    static HASH: OnceLock<Arc<str>> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        password::hash(&password)
            .expect("hashing a non-empty password cannot fail")
            .into()
    })
    .clone()
}

/// The answer when a check cannot be recorded: a 503, whatever the cause, so that the
/// password is never checked unrecorded.
fn fail_closed(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(_) | StoreError::DiskFull(_) | StoreError::Busy => {
            ApiError::from(error)
        }
        other => {
            repeated::STORAGE_FAILED.report(|unlogged| {
                tracing::error!(error = %other, unlogged, "cannot record a password check; refusing to check it");
            });
            ApiError::Unavailable(crate::http::error::Unavailability::Database)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_given_up_while_waiting_leaves_no_entry_behind() {
        let turns = Turns::default();
        let key = CredentialCache::new().key(b"anna:guess");
        let first = turns.turn(key).await;
        let given_up = tokio::time::timeout(Duration::from_millis(20), turns.turn(key)).await;
        assert!(given_up.is_err(), "the second waits for the first");
        drop(first);
        assert!(turns.locks.lock().unwrap().is_empty());
        // And a turn taken in full goes too.
        drop(turns.turn(key).await);
        assert!(turns.locks.lock().unwrap().is_empty());
    }
}
