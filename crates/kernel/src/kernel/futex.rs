//! Futexes. A futex is keyed by the memory-file offset of its word, which
//! is unique per page of memory: private memory of different processes
//! never shares an offset, and MAP_SHARED memory does, so one key works
//! for private and shared futexes alike.

use std::collections::HashMap;

use super::Tid;

#[derive(Default)]
pub struct Futexes {
    waiters: HashMap<u64, Vec<(Tid, u32)>>,
}

impl Futexes {
    pub fn wait(&mut self, key: u64, tid: Tid, bitset: u32) {
        let w = self.waiters.entry(key).or_default();
        if !w.iter().any(|(t, _)| *t == tid) {
            w.push((tid, bitset));
        }
    }

    pub fn cancel(&mut self, key: u64, tid: Tid) {
        if let Some(w) = self.waiters.get_mut(&key) {
            w.retain(|(t, _)| *t != tid);
            if w.is_empty() {
                self.waiters.remove(&key);
            }
        }
    }

    /// Removes up to `n` waiters whose bitset matches; returns them.
    pub fn wake(&mut self, key: u64, n: usize, bitset: u32) -> Vec<Tid> {
        let mut woken = Vec::new();
        if let Some(w) = self.waiters.get_mut(&key) {
            let mut i = 0;
            while i < w.len() && woken.len() < n {
                if w[i].1 & bitset != 0 {
                    woken.push(w.remove(i).0);
                } else {
                    i += 1;
                }
            }
            if w.is_empty() {
                self.waiters.remove(&key);
            }
        }
        woken
    }

    /// Moves up to `n` waiters from `from` to `to`; returns how many moved.
    pub fn requeue(&mut self, from: u64, to: u64, n: usize) -> usize {
        let Some(mut w) = self.waiters.remove(&from) else {
            return 0;
        };
        let take = n.min(w.len());
        let moved: Vec<_> = w.drain(..take).collect();
        if !w.is_empty() {
            self.waiters.insert(from, w);
        }
        self.waiters.entry(to).or_default().extend(moved);
        take
    }

    pub fn forget(&mut self, tid: Tid) {
        self.waiters.retain(|_, w| {
            w.retain(|(t, _)| *t != tid);
            !w.is_empty()
        });
    }
}
