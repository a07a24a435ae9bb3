//! Password hashing: Argon2id with the crate's recommended parameters, stored as PHC strings;
//! and the server's verifier, which checks passwords on a fixed set of threads with memory
//! allocated once, so that its memory stays flat however many guesses arrive.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::{mpsc, oneshot};

use crate::secret::constant_time_eq;

/// The most memory a stored hash may ask one verification for: 256 MiB, thirteen times the
/// recommended parameters. A hash asking for more (one no version of this program made) is
/// never checked, so that a row in the database cannot make each verifier thread keep more.
const MAX_BLOCKS: usize = 256 * 1024;

/// The longest hash output a PHC string carries.
const MAX_OUTPUT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// Hashes a password with a fresh random salt. Costs about as much as a verification: tens of
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

/// The same as [`hash`], computed in `memory`, which grows to what the parameters need and is
/// kept for the next call: for hashing many passwords on one thread without allocating
/// Argon2's 19 MiB anew for each (see [`Verifier`] for why that matters).
pub fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String, PasswordError> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let argon2 = Argon2::default();
    let params = argon2.params().clone();
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| failed(&e))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut output = [0u8; MAX_OUTPUT];
    let output = &mut output[..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, output, &mut memory[..blocks])
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(output).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Hashes many passwords on `threads` threads (one per core is what a command wants), each
/// keeping its Argon2 memory from one password to the next; the hashes in the passwords'
/// order. `hashed` is called after each one, from whichever thread hashed it, so that a
/// caller can show progress.
pub fn hash_many(
    passwords: &[&str],
    threads: usize,
    hashed: &(dyn Fn() + Sync),
) -> Vec<Result<String, PasswordError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<String, PasswordError>>> =
        (0..passwords.len()).map(|_| None).collect();
    let done = Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, passwords.len().max(1)) {
            scope.spawn(|| {
                let mut memory = Vec::new();
                // Taken one at a time: a hash costs tens of milliseconds, far more than the
                // counter and the lock.
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(password) = passwords.get(index) else {
                        return;
                    };
                    let result = hash_with(&mut memory, password);
                    done.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                    hashed();
                }
            });
        }
    });
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(PasswordError::Hashing("not hashed".into()))))
        .collect()
}

/// Whether a password matches a stored PHC string, computed in `memory`, which grows to what
/// the hash's parameters need and is kept for the next call. A malformed string, or one whose
/// parameters this program refuses, matches nothing.
pub fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    let length = expected.len();
    if blocks > MAX_BLOCKS || length > MAX_OUTPUT {
        tracing::warn!(
            blocks,
            "a stored password hash asks for more than this program allows; it matches nothing"
        );
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut output = [0u8; MAX_OUTPUT];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password,
            salt,
            &mut output[..length],
            &mut memory[..blocks],
        )
        .is_ok()
        && constant_time_eq(&output[..length], expected.as_bytes())
}

/// Whether a password matches a stored PHC string; allocates the memory the check needs.
pub fn verify(password: &[u8], phc: &str) -> bool {
    verify_with(&mut Vec::new(), password, phc)
}

/// Verifies passwords on one thread per core, each keeping the memory one verification needs
/// from its first to the server's end. Argon2 asks for 19 MiB a verification: allocated anew
/// each time on whichever thread ran it, the freed blocks would stay with that thread's
/// allocator arena, and the process would grow with every thread a burst of guesses used.
/// Verifications beyond one per core wait in a bounded queue, in order.
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
}

struct Job {
    password: Vec<u8>,
    phc: Arc<str>,
    reply: oneshot::Sender<bool>,
}

/// The verifier's threads are gone (the process is ending).
#[derive(Debug, thiserror::Error)]
#[error("the password verifier has stopped")]
pub struct VerifierStopped;

impl Verifier {
    /// Starts `threads` threads; `queue` bounds the verifications waiting for one.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, waiting) = mpsc::channel(queue.max(1));
        let waiting = Arc::new(Mutex::new(waiting));
        for number in 0..threads.max(1) {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("password-{number}"))
                .spawn(move || verify_until_stopped(&waiting))?;
        }
        Ok(Self { jobs })
    }

    /// Whether `password` matches `phc`, checked on one of the verifier's threads.
    pub async fn verify(&self, password: &[u8], phc: Arc<str>) -> Result<bool, VerifierStopped> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: password.to_vec(),
            phc,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| VerifierStopped)?;
        answer.await.map_err(|_| VerifierStopped)
    }
}

/// A verifier thread: takes one job at a time until the verifier is dropped.
fn verify_until_stopped(waiting: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        // The lock is held while waiting for a job, so one idle thread waits in the queue and
        // the others wait for it: each job goes to exactly one thread.
        let job = waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(job) = job else {
            return;
        };
        let valid = verify_with(&mut memory, &job.password, &job.phc);
        let _ = job.reply.send(valid);
    }
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

    #[test]
    fn memory_is_kept_between_verifications_and_other_parameters_still_verify() {
        let mut memory = Vec::new();
        let phc = hash("secret").unwrap();
        assert!(verify_with(&mut memory, b"secret", &phc));
        let kept = memory.len();
        assert_eq!(kept, Params::DEFAULT.block_count());
        assert!(!verify_with(&mut memory, b"other", &phc));
        assert_eq!(memory.len(), kept, "the same memory, not more");

        // Made with other parameters (and Argon2i), as another program might have.
        let params = Params::new(8 * 1024, 3, 1, Some(32)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"secret")
            .unwrap()
            .to_string();
        assert!(verify_with(&mut memory, b"secret", &other));
        assert!(!verify_with(&mut memory, b"Secret", &other));
    }

    #[test]
    fn hashes_made_in_kept_memory_verify_and_differ_by_salt() {
        let mut memory = Vec::new();
        let first = hash_with(&mut memory, "secret").unwrap();
        let second = hash_with(&mut memory, "secret").unwrap();
        assert_eq!(memory.len(), Params::DEFAULT.block_count());
        assert_ne!(first, second, "a fresh salt each time");
        assert_eq!(first.len(), hash("secret").unwrap().len());
        assert!(verify(b"secret", &first) && verify(b"secret", &second));
        assert!(!verify(b"Secret", &first));
        assert!(matches!(
            hash_with(&mut memory, ""),
            Err(PasswordError::Empty)
        ));
    }

    #[test]
    fn many_passwords_are_hashed_in_their_order_on_several_threads() {
        let passwords = ["a", "b", "", "d", "e"];
        let counted = std::sync::atomic::AtomicUsize::new(0);
        let hashes = hash_many(&passwords, 3, &|| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(counted.into_inner(), passwords.len());
        for (password, hash) in passwords.iter().zip(&hashes) {
            match hash {
                Ok(hash) => assert!(verify(password.as_bytes(), hash), "{password}"),
                Err(PasswordError::Empty) => assert!(password.is_empty()),
                Err(other) => panic!("{other}"),
            }
        }
        assert!(hash_many(&[], 2, &|| {}).is_empty());
    }

    #[test]
    fn a_hash_asking_for_too_much_memory_matches_nothing() {
        let phc = hash("secret").unwrap();
        let greedy = phc.replace("m=19456", "m=1048576");
        assert_ne!(greedy, phc);
        let mut memory = Vec::new();
        assert!(!verify_with(&mut memory, b"secret", &greedy));
        assert!(memory.is_empty(), "nothing was allocated for it");
    }

    #[tokio::test]
    async fn the_verifier_answers_each_check() {
        let verifier = Verifier::start(2, 4).unwrap();
        let phc: Arc<str> = hash("secret").unwrap().into();
        let check = |password: &'static str| verifier.verify(password.as_bytes(), phc.clone());
        let answers = tokio::join!(
            check("secret"),
            check("wrong"),
            check("secret"),
            check("Secret"),
            check("secret"),
        );
        assert_eq!(
            [answers.0, answers.1, answers.2, answers.3, answers.4].map(Result::unwrap),
            [true, false, true, false, true]
        );
    }
}
