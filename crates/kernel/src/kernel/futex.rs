//! Futexes. A futex is keyed by the memory-file offset of its word, which
//! is unique per page of memory: private memory of different processes
//! never shares an offset, and MAP_SHARED memory does, so one key works
//! for private and shared futexes alike.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Kernel, Tid, waitq};
use crate::errno::{Errno, SysResult};
use crate::mm::AddressSpace;

/// What a futex waits on: the memory-file offset of its word, and for a
/// private futex (FUTEX_PRIVATE_FLAG) its address space too (0 for a
/// shared one), so a shared wake never wakes a private waiter, as Linux's
/// keys differ.
pub type FutexKey = (u32, u64);

/// The shared futex key of `addr` (the kernel's own wakes: robust lists,
/// CLONE_CHILD_CLEARTID).
pub fn key_of(mm: &AddressSpace, addr: u64) -> Option<FutexKey> {
    Some((0, mm.find(addr)?.memfile_offset(addr).ok()?))
}

/// The key of `addr` for a private or shared futex operation.
pub fn key_for(mm: &AddressSpace, addr: u64, private: bool) -> Option<FutexKey> {
    let (_, off) = key_of(mm, addr)?;
    Some((if private { mm.space + 1 } else { 0 }, off))
}

/// The futex word, atomically, through the kernel's mapping.
pub fn word(mm: &AddressSpace, addr: u64) -> SysResult<&'static AtomicU32> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let v = mm.find(addr).ok_or(Errno::EFAULT)?;
    if v.prot & libc::PROT_READ == 0 || addr + 4 > v.end {
        return Err(Errno::EFAULT);
    }
    let (p, _) = v.kernel_span(addr, 4, false)?;
    let p = p as *const AtomicU32;
    // SAFETY: 4-byte aligned, inside the memory file mapping which lives
    // as long as the kernel.
    Ok(unsafe { &*p })
}

pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's ROBUST_LIST_LIMIT: a circular or hostile list ends here.
const ROBUST_LIST_LIMIT: usize = 2048;

#[derive(Default)]
pub struct Futexes {
    waiters: HashMap<FutexKey, Vec<(Tid, u32)>>,
    /// Tasks waiting on several futexes at once (futex_waitv).
    many: std::collections::HashSet<Tid>,
    /// PI futexes with threads waiting for their owner (futex_pi.rs).
    pub(super) pi: super::futex_pi::PiFutexes,
}

impl Futexes {
    pub fn wait(&mut self, key: FutexKey, tid: Tid, bitset: u32) {
        let w = self.waiters.entry(key).or_default();
        if !w.iter().any(|(t, _)| *t == tid) {
            w.push((tid, bitset));
        }
    }

    pub fn cancel(&mut self, key: FutexKey, tid: Tid) {
        if let Some(w) = self.waiters.get_mut(&key) {
            w.retain(|(t, _)| *t != tid);
            if w.is_empty() {
                self.waiters.remove(&key);
            }
        }
    }

    /// Removes up to `n` waiters whose bitset matches; returns them.
    pub fn wake(&mut self, key: FutexKey, n: usize, bitset: u32) -> Vec<Tid> {
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
    pub fn requeue(&mut self, from: FutexKey, to: FutexKey, n: usize) -> usize {
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

    /// futex_waitv: `tid` waits on several keys.
    pub fn wait_many(&mut self, keys: &[FutexKey], tid: Tid) {
        for k in keys {
            self.wait(*k, tid, u32::MAX);
        }
        self.many.insert(tid);
    }

    pub fn waits_on_many(&self, tid: Tid) -> bool {
        self.many.contains(&tid)
    }

    /// Whether `tid` still waits on `key` (not woken through it).
    pub fn is_waiting(&self, key: FutexKey, tid: Tid) -> bool {
        self.waiters
            .get(&key)
            .is_some_and(|w| w.iter().any(|(t, _)| *t == tid))
    }

    pub fn forget(&mut self, tid: Tid) {
        self.many.remove(&tid);
        self.pi.forget(tid);
        self.waiters.retain(|_, w| {
            w.retain(|(t, _)| *t != tid);
            !w.is_empty()
        });
    }
}

impl Kernel {
    /// Wakes up to `n` waiters of `key`.
    pub fn futex_wake(&mut self, key: FutexKey, n: usize, bitset: u32) -> usize {
        let woken = self.futexes.wake(key, n, bitset);
        for t in &woken {
            if let Some(task) = self.tasks.get_mut(t) {
                task.sys.woken = true;
            }
            waitq::wake(*t);
        }
        woken.len()
    }

    /// The robust futex list of a thread that exits or execs (Linux's
    /// exit_robust_list): every lock it still holds is marked
    /// FUTEX_OWNER_DIED and one waiter is woken, so a robust mutex's next
    /// locker gets EOWNERDEAD instead of sleeping forever. The list lives
    /// in workload memory: every read may fault, and the walk is bounded.
    pub fn exit_robust_list(&mut self, tid: Tid) {
        let Some(t) = self.tasks.get_mut(&tid) else {
            return;
        };
        let head = std::mem::take(&mut t.robust_list);
        if head == 0 {
            return;
        }
        let mm = t.mm.clone();
        // struct robust_list_head { next; long futex_offset; list_op_pending; }
        let fetch = |addr: u64| -> Option<u64> { mm.borrow().read_val::<u64>(addr).ok() };
        let at = |off: u64| head.checked_add(off).and_then(fetch);
        let (Some(mut entry), Some(offset), Some(pending)) = (at(0), at(8), at(16)) else {
            return;
        };
        let offset = offset as i64;
        // Bit 0 of each pointer marks a PI futex.
        let (pending, pending_pi) = (pending & !1, pending & 1 != 0);
        let mut deaths = Vec::new();
        let mut limit = ROBUST_LIST_LIMIT;
        while entry & !1 != head {
            let (addr, pi) = (entry & !1, entry & 1 != 0);
            let next = fetch(addr);
            if addr != pending {
                deaths.push((addr.wrapping_add_signed(offset), pi, false));
            }
            let Some(next) = next else {
                break;
            };
            entry = next;
            limit -= 1;
            if limit == 0 {
                break;
            }
        }
        if pending != 0 {
            deaths.push((pending.wrapping_add_signed(offset), pending_pi, true));
        }
        for (uaddr, pi, pending) in deaths {
            self.futex_owner_died(&mm, tid, uaddr, pi, pending);
        }
    }

    /// Linux's handle_futex_death for one robust futex word.
    fn futex_owner_died(
        &mut self,
        mm: &std::rc::Rc<std::cell::RefCell<AddressSpace>>,
        tid: Tid,
        uaddr: u64,
        pi: bool,
        pending: bool,
    ) {
        let (w, key) = {
            let m = mm.borrow();
            let Ok(w) = word(&m, uaddr) else {
                return;
            };
            let writable = m
                .find(uaddr)
                .is_some_and(|v| v.prot & libc::PROT_WRITE != 0);
            (writable.then_some(w), key_of(&m, uaddr))
        };
        let (Some(w), Some(key)) = (w, key) else {
            return;
        };
        let mut uval = w.load(Ordering::SeqCst);
        // A lock being taken when the thread died, not yet owned: wake
        // a waiter so it retries.
        if pending && !pi && uval == 0 {
            self.futex_wake(key, 1, u32::MAX);
            return;
        }
        // The word holds the TID as the thread saw it (its namespace's).
        let vtid = self.pid_out(tid, tid) as u32;
        loop {
            if uval & FUTEX_TID_MASK != vtid {
                return;
            }
            let mval = (uval & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            match w.compare_exchange(uval, mval, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => uval = now,
            }
        }
        if !pi && uval & FUTEX_WAITERS != 0 {
            self.futex_wake(key, 1, u32::MAX);
        }
    }
}
