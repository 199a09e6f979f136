//! A set of page numbers kept as disjoint, merged ranges (which pages of a
//! file are cached, which are dirty): a file of a million pages written
//! in one piece is one entry, not a million.

use std::collections::BTreeMap;

#[derive(Default, Debug, Clone)]
pub struct RangeSet {
    /// start → end (exclusive); ranges never overlap or touch.
    r: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.r.is_empty()
    }

    pub fn contains(&self, x: u64) -> bool {
        self.r.range(..=x).next_back().is_some_and(|(_, &e)| x < e)
    }

    /// Adds `[start, end)`.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // Absorb a range that starts before and reaches `start`.
        if let Some((&s, &e)) = self.r.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.r.remove(&s);
        }
        // Absorb every range starting inside `[start, end]`.
        let inner: Vec<(u64, u64)> = self.r.range(start..=end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in inner {
            end = end.max(e);
            self.r.remove(&s);
        }
        self.r.insert(start, end);
    }

    /// Removes `[start, end)`.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let hit: Vec<(u64, u64)> = self
            .r
            .range(..end)
            .rev()
            .take_while(|(_, e)| **e > start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in hit {
            self.r.remove(&s);
            if s < start {
                self.r.insert(s, start);
            }
            if e > end {
                self.r.insert(end, e);
            }
        }
    }

    /// The parts of the set inside `[start, end)`, in order.
    pub fn within(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if let Some((_, &e)) = self.r.range(..start).next_back()
            && e > start
        {
            out.push((start, e.min(end)));
        }
        for (&s, &e) in self.r.range(start..end) {
            out.push((s, e.min(end)));
        }
        out
    }

    /// The parts of `[start, end)` not in the set, in order.
    pub fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = start;
        for (s, e) in self.within(start, end) {
            if s > pos {
                out.push((pos, s));
            }
            pos = e;
        }
        if pos < end {
            out.push((pos, end));
        }
        out
    }

    /// Number of members.
    pub fn count(&self) -> u64 {
        self.r.iter().map(|(s, e)| e - s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut s = RangeSet::new();
        s.insert(10, 20);
        s.insert(30, 40);
        s.insert(20, 30);
        assert_eq!(s.within(0, 100), vec![(10, 40)]);
        s.remove(15, 35);
        assert_eq!(s.within(0, 100), vec![(10, 15), (35, 40)]);
        assert!(s.contains(14) && !s.contains(15) && s.contains(35) && !s.contains(40));
        assert_eq!(s.gaps(12, 38), vec![(15, 35)]);
        assert_eq!(s.gaps(0, 50), vec![(0, 10), (15, 35), (40, 50)]);
        s.insert(5, 50);
        assert_eq!(s.within(0, 100), vec![(5, 50)]);
        assert_eq!(s.count(), 45);
        s.remove(0, 100);
        assert!(s.is_empty());
    }

    #[test]
    fn within_clips() {
        let mut s = RangeSet::new();
        s.insert(0, 10);
        s.insert(20, 30);
        assert_eq!(s.within(5, 25), vec![(5, 10), (20, 25)]);
        assert_eq!(s.within(10, 20), vec![]);
    }
}
