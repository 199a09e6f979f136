//! The walk cache of a host file system: (directory fid, name) → what the
//! walk found.
//!
//! Two generations approximate least-recently-used eviction at the cost
//! of two hash lookups: new and re-used entries live in the young map;
//! when it holds half the capacity it becomes the old map (dropping the
//! previous old one), and an entry found in the old map moves back to the
//! young one. A tree walked over and over (a build, `find`, an
//! interpreter's imports) thus stays cached as long as it fits; before,
//! the whole cache was dropped when it filled, so a tree one entry larger
//! than the cache was walked on the host again at every pass.

use std::collections::HashMap;
use std::hash::Hash;

pub struct WalkCache<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    /// Most entries held (both generations).
    cap: usize,
}

impl<K: Hash + Eq, V: Clone> WalkCache<K, V> {
    pub fn new(cap: usize) -> WalkCache<K, V> {
        WalkCache {
            young: HashMap::new(),
            old: HashMap::new(),
            cap: cap.max(2),
        }
    }

    /// The entry for `key`, now counted as recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        if let Some(v) = self.young.get(key) {
            return Some(v.clone());
        }
        let (k, v) = self.old.remove_entry(key)?;
        // What this evicts goes with it: its users found it just now or
        // hold their own references.
        drop(self.insert(k, v.clone()));
        Some(v)
    }

    /// Adds `key`; returns the entries this evicted (the old generation,
    /// when the young one was full).
    pub fn insert(&mut self, key: K, value: V) -> Vec<V> {
        let mut evicted = Vec::new();
        if self.young.len() >= self.cap / 2 {
            let old = std::mem::replace(&mut self.old, std::mem::take(&mut self.young));
            evicted = old.into_values().collect();
        }
        self.old.remove(&key);
        self.young.insert(key, value);
        evicted
    }

    /// Removes the entry for `key`, returning it.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let young = self.young.remove(key);
        let old = self.old.remove(key);
        young.or(old)
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::WalkCache;

    #[test]
    fn a_tree_that_fits_stays_cached_across_passes() {
        let mut c = WalkCache::new(100);
        for pass in 0..5 {
            for i in 0..40 {
                if c.get(&i).is_none() {
                    assert_eq!(pass, 0, "entry {i} evicted in pass {pass}");
                    c.insert(i, i * 2);
                }
            }
        }
        assert_eq!(c.get(&7), Some(14));
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let mut c = WalkCache::new(10);
        let mut evicted = 0;
        for i in 0..1000 {
            evicted += c.insert(i, ()).len();
            assert!(c.len() <= 10, "{} entries after {i}", c.len());
        }
        assert_eq!(evicted + c.len(), 1000);
        // The most recent entries are the ones kept.
        assert!(c.get(&999).is_some());
        assert!(c.get(&0).is_none());
    }

    #[test]
    fn a_used_entry_survives_a_generation_change() {
        let mut c = WalkCache::new(10);
        c.insert(-1, ());
        for i in 0..7 {
            c.insert(i, ());
            // Used between inserts: always moved back to the young map.
            assert!(c.get(&-1).is_some(), "lost after {i}");
        }
    }

    #[test]
    fn removed_entries_are_gone_from_both_generations() {
        let mut c = WalkCache::new(4);
        c.insert(1, ());
        c.insert(2, ());
        c.insert(3, ()); // 1 and 2 now old
        c.remove(&1);
        c.remove(&3);
        assert!(c.get(&1).is_none());
        assert!(c.get(&3).is_none());
        assert!(c.get(&2).is_some());
        c.remove(&2);
        assert!(c.is_empty());
    }
}
