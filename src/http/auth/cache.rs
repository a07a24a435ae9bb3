//! Verified Basic credentials, so that Argon2 (tens of milliseconds) runs once per password
//! and not once per request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{PoisonError, RwLock};

use sha2::{Digest, Sha256};

use crate::domain::AssociateId;

/// Entries beyond this many evict an arbitrary other one: enough for every user of a large
/// help desk, small enough to bound memory (about 200 bytes an entry).
const CAPACITY: usize = 50_000;

/// The stored hashes the entries keep, in bytes, beyond which arbitrary entries are evicted:
/// a hash is whatever the database holds, so its length is bounded here, not assumed.
const MAX_HASH_BYTES: usize = 16 << 20;

/// Maps a keyed hash of `login:password` to the stored password hash it was verified
/// against.
///
/// An entry counts only while the user's stored hash is still the one it was verified
/// against, and the caller re-reads that hash with the user's status on every request: a
/// password change, removal or deletion (also by another process on the same database) ends
/// the entry's use at once, and the stale entry is dropped when next met.
pub struct CredentialCache {
    /// A random per-process key mixed into every hash, so that the cache's keys, if memory
    /// ever leaked, could not be tested against guessed passwords offline.
    secret: [u8; 32],
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<CacheKey, Entry, BuildHasherDefault<KeyHasher>>,
    /// The length of every entry's `password_hash`.
    hash_bytes: usize,
}

impl Entries {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.map.remove(key) {
            self.hash_bytes -= entry.password_hash.len();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

/// A key is a SHA-256 under the process's secret, as uniform and as unguessable as a hash
/// table's seeded hash: its first eight bytes serve as one, with no hashing again of what is
/// already a hash, on every request.
impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (first, _) = self.0.split_first_chunk::<8>().expect("a key has 32 bytes");
        state.write_u64(u64::from_ne_bytes(*first));
    }
}

/// The hasher of [`CacheKey`]s: their [`Hash`] writes one `u64`, which is the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    /// Not reached by `CacheKey`; a plain fold, should anything else ever write bytes.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Entry {
    associate_id: AssociateId,
    password_hash: Box<str>,
}

impl CredentialCache {
    pub fn new() -> Self {
        let mut secret = [0; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        Self {
            secret,
            entries: RwLock::new(Entries::default()),
        }
    }

    pub fn key(&self, credentials: &[u8]) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(credentials);
        CacheKey(hasher.finalize().into())
    }

    /// Whether these credentials were verified for this associate against this stored hash.
    pub fn contains(&self, key: &CacheKey, associate_id: AssociateId, password_hash: &str) -> bool {
        let fresh = match self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(key)
        {
            None => return false,
            Some(entry) => {
                entry.associate_id == associate_id && *entry.password_hash == *password_hash
            }
        };
        if !fresh {
            self.entries
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(key);
        }
        fresh
    }

    /// Past either bound, an eighth of the entries go at once: one pass for as many inserts,
    /// where evicting one at a time would scan the table from its start for each.
    pub fn insert(&self, key: CacheKey, associate_id: AssociateId, password_hash: &str) {
        if password_hash.len() > MAX_HASH_BYTES / 8 {
            // Not a hash this program made: not kept.
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&key);
        if entries.map.len() >= CAPACITY
            || entries.hash_bytes + password_hash.len() > MAX_HASH_BYTES
        {
            let keep_entries = CAPACITY - CAPACITY / 8;
            let keep_bytes = MAX_HASH_BYTES - MAX_HASH_BYTES / 8 - password_hash.len();
            let (mut count, mut bytes) = (entries.map.len(), entries.hash_bytes);
            entries.map.retain(|_, entry| {
                let over = count > keep_entries || bytes > keep_bytes;
                if over {
                    count -= 1;
                    bytes -= entry.password_hash.len();
                }
                !over
            });
            entries.hash_bytes = bytes;
        }
        entries.hash_bytes += password_hash.len();
        entries.map.insert(
            key,
            Entry {
                associate_id,
                password_hash: password_hash.into(),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_counts_only_for_the_hash_it_was_verified_against() {
        let cache = CredentialCache::new();
        let key = cache.key(b"tje0:Tje0");
        let id = AssociateId::new(1);
        assert!(!cache.contains(&key, id, "$hash1"));
        cache.insert(key, id, "$hash1");
        assert!(cache.contains(&key, id, "$hash1"));
        assert!(!cache.contains(&key, AssociateId::new(2), "$hash1"));
        // The mismatch above dropped the entry.
        assert!(cache.is_empty());
        cache.insert(key, id, "$hash1");
        assert!(!cache.contains(&key, id, "$hash2"));
        assert!(cache.is_empty());
    }

    #[test]
    fn keys_depend_on_the_credentials_and_the_process_secret() {
        let a = CredentialCache::new();
        let b = CredentialCache::new();
        assert_eq!(a.key(b"x:y"), a.key(b"x:y"));
        assert_ne!(a.key(b"x:y"), a.key(b"x:z"));
        assert_ne!(a.key(b"x:y"), b.key(b"x:y"));
    }
}
