//! Mapping changes of a systrap space kept back until they are needed
//! (see [`Deferred`]): the state they must end in, made in one control
//! call.

use std::collections::BTreeMap;

use super::layout::CTL_CAP;
use super::map_entry;
use crate::arch::{USER_END, USER_START};
use crate::platform::MapOp;

/// Mapping changes of a space kept back until they are needed.
///
/// Every change reaches a stub through its control thread, a round trip
/// that costs two wake-ups (~20 µs each across this host's vCPUs), and a
/// program's start makes dozens: the dynamic loader maps each library,
/// maps its segments over that, then protects parts; malloc and the heap
/// grow by fresh mappings. Changes inside ranges where no access can
/// succeed on the host (nothing mapped there, or PROT_NONE: see
/// `Platform::apply_fresh`), and later changes inside those same ranges,
/// are kept here instead, as the state the ranges must end in, and made
/// in one call: when a thread of the space faults (any access to them
/// faults on the host until then), when a change outside them comes, and
/// before a new thread starts.
///
/// Security: nothing changes for the workload. Until the call the host
/// maps less than the kernel's view, never more, so an access that should
/// fail still fails. What is kept is the end state, not the sequence of
/// changes: memory-file pages that a later change replaced or unmapped
/// (and the kernel may have freed and given to another process since)
/// are never mapped, not even for the instant between two changes.
#[derive(Default, Clone)]
pub(super) struct Deferred {
    /// start → (end, what the host must have there), disjoint.
    ranges: BTreeMap<u64, (u64, Target)>,
    /// Keeps any number of ranges (an image exec builds: see
    /// [`Deferred::nothing_mapped`]); made in as many calls as they take.
    unbounded: bool,
}

/// The state a kept-back range must end in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// The memory file from `offset` (at the range's start), `prot`.
    Map { prot: i32, offset: u64 },
    /// Nothing.
    Unmap,
}

/// Most ranges kept back per space (a control call's worth).
const DEFERRED_MAX: usize = CTL_CAP as usize;

impl Deferred {
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The whole workload range ends unmapped: the start of an image that
    /// exec builds, whose every change may then wait (all lie inside
    /// kept ranges). Made in a stub that carried another image, the
    /// unmaps of the gaps take that image away in the same call.
    pub(super) fn nothing_mapped() -> Deferred {
        let mut d = Deferred {
            unbounded: true,
            ..Deferred::default()
        };
        d.set(USER_START, USER_END, Target::Unmap);
        d
    }

    /// Whether kept-back ranges cover [start, end) without a gap; with
    /// `mapped`, ranges that end mapped.
    pub(super) fn covers(&self, start: u64, end: u64, mapped: bool) -> bool {
        let mut pos = start;
        for (&s, &(e, t)) in self.ranges.range(..end) {
            if e <= pos {
                continue;
            }
            if s > pos || (mapped && t == Target::Unmap) {
                return false;
            }
            pos = e;
            if pos >= end {
                return true;
            }
        }
        pos >= end
    }

    /// Splits the range containing `at` (if any) so that one starts there.
    fn split_at(&mut self, at: u64) {
        let Some((&s, &(e, t))) = self.ranges.range(..at).next_back() else {
            return;
        };
        if e <= at {
            return;
        }
        let tail = match t {
            Target::Map { prot, offset } => Target::Map {
                prot,
                offset: offset + (at - s),
            },
            Target::Unmap => Target::Unmap,
        };
        self.ranges.insert(s, (at, t));
        self.ranges.insert(at, (e, tail));
    }

    /// [start, end) ends as `t`, whatever was kept for it before.
    fn set(&mut self, start: u64, end: u64, t: Target) {
        self.split_at(start);
        self.split_at(end);
        let inside: Vec<u64> = self.ranges.range(start..end).map(|(s, _)| *s).collect();
        for s in inside {
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, (end, t));
    }

    /// [start, end), kept mapped, ends with protection `prot`.
    fn protect(&mut self, start: u64, end: u64, prot: i32) {
        self.split_at(start);
        self.split_at(end);
        for (_, (_, t)) in self.ranges.range_mut(start..end) {
            if let Target::Map { prot: p, .. } = t {
                *p = prot;
            }
        }
    }

    /// Adds `op`, if it may wait: `fresh` (the host gives no access in
    /// its range) or inside ranges already kept. False leaves `self` in a
    /// state to be dropped.
    pub(super) fn add(&mut self, op: &MapOp, fresh: bool) -> bool {
        let (s, e) = op_range(op);
        match *op {
            MapOp::Map { prot, offset, .. } if fresh || self.covers(s, e, false) => {
                self.set(s, e, Target::Map { prot, offset });
            }
            MapOp::Unmap { .. } if fresh || self.covers(s, e, false) => {
                self.set(s, e, Target::Unmap);
            }
            // A protection change applies to what is kept mapped there.
            MapOp::Protect { prot, .. } if self.covers(s, e, true) => {
                self.protect(s, e, prot);
            }
            _ => return false,
        }
        self.unbounded || self.ranges.len() <= DEFERRED_MAX
    }

    /// The changes that bring the host to the kept state, in address order.
    pub(super) fn take(&mut self) -> Vec<[u64; 8]> {
        self.unbounded = false;
        std::mem::take(&mut self.ranges)
            .into_iter()
            .map(|(s, (e, t))| {
                map_entry(&match t {
                    Target::Map { prot, offset } => MapOp::Map {
                        addr: s,
                        len: e - s,
                        prot,
                        offset,
                    },
                    Target::Unmap => MapOp::Unmap {
                        addr: s,
                        len: e - s,
                    },
                })
            })
            .collect()
    }
}

fn op_range(op: &MapOp) -> (u64, u64) {
    match *op {
        MapOp::Map { addr, len, .. }
        | MapOp::Unmap { addr, len }
        | MapOp::Protect { addr, len, .. } => (addr, addr.saturating_add(len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::PAGE_SIZE;

    fn ops(d: &mut Deferred) -> Vec<MapOp> {
        d.take()
            .into_iter()
            .map(|e| match e[0] as i64 {
                libc::SYS_mmap => MapOp::Map {
                    addr: e[1],
                    len: e[2],
                    prot: e[3] as i32,
                    offset: e[6],
                },
                libc::SYS_munmap => MapOp::Unmap {
                    addr: e[1],
                    len: e[2],
                },
                _ => panic!("unexpected entry {e:?}"),
            })
            .collect()
    }

    const P: u64 = PAGE_SIZE;
    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

    /// What a dynamic loader does with a library: a mapping of the whole
    /// file, segments mapped over it, a gap protected: kept as the end
    /// state, where the replaced memory-file pages never appear.
    #[test]
    fn kept_changes_end_in_the_last_state_only() {
        let mut d = Deferred::default();
        let a = 0x10_0000;
        assert!(d.add(
            &MapOp::Map {
                addr: a,
                len: 4 * P,
                prot: libc::PROT_READ,
                offset: 0x1000_0000
            },
            true
        ));
        assert!(d.add(
            &MapOp::Map {
                addr: a + P,
                len: P,
                prot: RW,
                offset: 0x2000_0000
            },
            false
        ));
        assert!(d.add(
            &MapOp::Protect {
                addr: a + 2 * P,
                len: P,
                prot: libc::PROT_NONE
            },
            false
        ));
        assert!(d.add(
            &MapOp::Unmap {
                addr: a + 3 * P,
                len: P
            },
            false
        ));
        assert_eq!(
            ops(&mut d),
            vec![
                MapOp::Map {
                    addr: a,
                    len: P,
                    prot: libc::PROT_READ,
                    offset: 0x1000_0000
                },
                MapOp::Map {
                    addr: a + P,
                    len: P,
                    prot: RW,
                    offset: 0x2000_0000
                },
                MapOp::Map {
                    addr: a + 2 * P,
                    len: P,
                    prot: libc::PROT_NONE,
                    offset: 0x1000_0000 + 2 * P
                },
                MapOp::Unmap {
                    addr: a + 3 * P,
                    len: P
                },
            ]
        );
        assert!(d.is_empty());
    }

    /// Only changes inside kept ranges may wait; a protection change
    /// needs what it protects to be kept mapped.
    #[test]
    fn changes_outside_kept_ranges_are_not_kept() {
        let mut d = Deferred::default();
        let a = 0x10_0000;
        assert!(d.add(
            &MapOp::Map {
                addr: a,
                len: 2 * P,
                prot: RW,
                offset: 0
            },
            true
        ));
        let mut t = d.clone();
        assert!(!t.add(
            &MapOp::Unmap {
                addr: a + P,
                len: 2 * P
            },
            false
        ));
        let mut t = d.clone();
        assert!(!t.add(
            &MapOp::Protect {
                addr: a - P,
                len: 2 * P,
                prot: 0
            },
            false
        ));
        assert!(d.add(&MapOp::Unmap { addr: a, len: P }, false));
        let mut t = d.clone();
        assert!(!t.add(
            &MapOp::Protect {
                addr: a,
                len: 2 * P,
                prot: libc::PROT_READ
            },
            false
        ));
        // Fresh ranges join, also next to kept ones.
        assert!(d.add(
            &MapOp::Map {
                addr: a + 2 * P,
                len: P,
                prot: RW,
                offset: 2 * P
            },
            true
        ));
        assert!(d.covers(a, a + 3 * P, false));
        assert!(!d.covers(a, a + 4 * P, false));
        assert!(d.covers(a + P, a + 3 * P, true));
    }

    /// An exec's image: everything but its mappings ends unmapped, so
    /// that in a stub that carried another image the same call takes
    /// that image away; more changes than one call holds are kept too.
    #[test]
    fn an_exec_image_unmaps_the_rest_of_the_workload_range() {
        let mut d = Deferred::nothing_mapped();
        let (a, b) = (0x40_0000, 0x7f00_0000_0000);
        for (addr, off) in [(a, 0x1000_0000), (b, 0x2000_0000)] {
            assert!(d.add(
                &MapOp::Map {
                    addr,
                    len: P,
                    prot: RW,
                    offset: off
                },
                false
            ));
        }
        let got = ops(&mut d);
        assert_eq!(
            got,
            vec![
                MapOp::Unmap {
                    addr: USER_START,
                    len: a - USER_START
                },
                MapOp::Map {
                    addr: a,
                    len: P,
                    prot: RW,
                    offset: 0x1000_0000
                },
                MapOp::Unmap {
                    addr: a + P,
                    len: b - a - P
                },
                MapOp::Map {
                    addr: b,
                    len: P,
                    prot: RW,
                    offset: 0x2000_0000
                },
                MapOp::Unmap {
                    addr: b + P,
                    len: USER_END - b - P
                },
            ]
        );
        // Unbounded for the image: more ranges than one call's worth.
        let mut d = Deferred::nothing_mapped();
        for i in 0..(DEFERRED_MAX as u64 + 8) {
            assert!(d.add(
                &MapOp::Map {
                    addr: a + 2 * i * P,
                    len: P,
                    prot: RW,
                    offset: i * P
                },
                true
            ));
        }
        // After it is made, the space keeps back one call's worth again.
        d.take();
        let kept = (0..(DEFERRED_MAX as u64 + 1))
            .filter(|i| {
                d.add(
                    &MapOp::Map {
                        addr: a + 2 * i * P,
                        len: P,
                        prot: RW,
                        offset: i * P,
                    },
                    true,
                )
            })
            .count();
        assert_eq!(kept, DEFERRED_MAX);
    }
}
