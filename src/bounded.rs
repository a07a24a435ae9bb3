//! A hash map bounded by entries and by bytes, for the caches that input can grow.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use crate::domain::AssociateId;

/// What an entry costs in memory: its own size and what it holds on the heap.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for AssociateId {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl Weigh for Box<str> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

pub(crate) const WORD: usize = std::mem::size_of::<usize>();

/// What one heap allocation of `bytes` takes: glibc's malloc adds a word of header and
/// rounds chunks up to 16 bytes, 32 at the least.
pub(crate) fn allocated(bytes: usize) -> usize {
    (bytes + WORD).next_multiple_of(16).max(32)
}

/// A map bounded by entries and by bytes: an insert past either bound evicts arbitrary other
/// entries, an eighth of the map at once. One at a time, each eviction would scan the table
/// from its start for a victim, longer and longer as its front emptied, under the lock every
/// lookup takes; an eighth at once is one pass for as many inserts.
pub(crate) struct Bounded<K, V, S = RandomState> {
    map: HashMap<K, V, S>,
    /// The weight of every key and value in `map`.
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<K: Clone + Eq + Hash + Weigh, V: Weigh, S: BuildHasher + Default> Bounded<K, V, S> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::default(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.get(key)
    }

    /// For changes that keep the entry's weight.
    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.get_mut(key)
    }

    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    /// Whether an entry of `weight` more fits within both bounds without evicting any.
    pub fn has_room(&self, weight: usize) -> bool {
        self.map.len() < self.max_entries && self.bytes + weight <= self.max_bytes
    }

    /// Inserts, returning the value replaced and the entries evicted to make room.
    pub fn insert(&mut self, key: K, value: V) -> (Option<V>, Vec<(K, V)>) {
        let weight = key.weight() + value.weight();
        let replaced = self.remove(&key);
        let mut evicted = Vec::new();
        if self.map.len() >= self.max_entries || self.bytes + weight > self.max_bytes {
            let keep_entries = (self.max_entries - self.max_entries / 8).saturating_sub(1);
            let keep_bytes = (self.max_bytes - self.max_bytes / 8).saturating_sub(weight);
            let (mut entries, mut bytes) = (self.map.len(), self.bytes);
            evicted = self
                .map
                .extract_if(|key, value| {
                    let over = entries > keep_entries || bytes > keep_bytes;
                    if over {
                        entries -= 1;
                        bytes -= key.weight() + value.weight();
                    }
                    over
                })
                .collect();
            self.bytes = bytes;
        }
        self.bytes += weight;
        self.map.insert(key, value);
        (replaced, evicted)
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let (key, value) = self.map.remove_entry(key)?;
        self.bytes -= key.weight() + value.weight();
        Some(value)
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_map_keeps_to_its_entries_and_its_bytes() {
        let mut by_entries = Bounded::<Box<str>, Box<str>>::new(10, usize::MAX);
        for i in 0..100 {
            by_entries.insert(format!("login-{i}").into(), "".into());
            assert!(by_entries.len() <= 10);
        }
        assert!(by_entries.len() >= 8, "an eighth evicted at a time");
        let mut by_bytes = Bounded::<Box<str>, Box<str>>::new(1000, 4096);
        let mut evictions = 0;
        for i in 0..100 {
            let (_, evicted) =
                by_bytes.insert(format!("{i}-{}", "x".repeat(200)).into(), "".into());
            evictions += evicted.len();
        }
        assert_eq!(evictions + by_bytes.len(), 100);
        assert!(by_bytes.bytes() <= 4096);
        assert!(
            by_bytes.len() > 5 && by_bytes.len() < 20,
            "{}",
            by_bytes.len()
        );
        // Replacing an entry counts it once.
        let mut one = Bounded::<AssociateId, Box<str>>::new(10, usize::MAX);
        one.insert(AssociateId::new(1), "x".into());
        let weight = one.bytes();
        one.insert(AssociateId::new(1), "y".into());
        assert_eq!(one.bytes(), weight);
        one.remove(&AssociateId::new(1));
        assert_eq!(one.bytes(), 0);
        assert!(by_entries.has_room(0) == (by_entries.len() < 10));
        assert!(!by_bytes.has_room(4097) && by_bytes.has_room(0));
    }
}
