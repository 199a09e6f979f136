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

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// foldhash (seeded per map) rather than std's SipHash: a walk hashes
/// every component of every path the workload names, and SipHash was a
/// tenth of the kernel's time in `find | xargs stat`. The keys are names
/// that exist in the workload's own file systems, so colliding them
/// only slows the workload's own sandbox.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct WalkCache<K, V> {
    young: Map<K, V>,
    old: Map<K, V>,
    /// Most entries held (both generations).
    cap: usize,
}

/// A walk's key, (directory, name) as one byte string (the directory's
/// number, then the name), so that a lookup borrows it from the stack
/// (see [`with_key`]) instead of allocating.
pub type NameKey = Box<[u8]>;

/// Calls `f` with the key of `name` in directory `dir`.
pub fn with_key<R>(dir: u64, name: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; 8 + 256];
    if name.len() <= 256 {
        buf[..8].copy_from_slice(&dir.to_le_bytes());
        buf[8..8 + name.len()].copy_from_slice(name);
        f(&buf[..8 + name.len()])
    } else {
        f(&name_key(dir, name))
    }
}

/// The key of `name` in directory `dir`, to keep.
pub fn name_key(dir: u64, name: &[u8]) -> NameKey {
    let mut k = Vec::with_capacity(8 + name.len());
    k.extend_from_slice(&dir.to_le_bytes());
    k.extend_from_slice(name);
    k.into_boxed_slice()
}

impl<K: Hash + Eq, V: Clone> WalkCache<K, V> {
    pub fn new(cap: usize) -> WalkCache<K, V> {
        WalkCache {
            young: Map::default(),
            old: Map::default(),
            cap: cap.max(2),
        }
    }

    /// The entry for `key`, now counted as recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
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
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
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
