//! PI futexes (FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_TRYLOCK_PI,
//! FUTEX_UNLOCK_PI): Linux's protocol on the futex word. The word holds
//! the owner's TID; FUTEX_WAITERS is set while a thread sleeps in the
//! kernel for it, so the owner's user-space unlock (TID -> 0) fails and it
//! comes to the kernel, which hands the lock to the first waiter by writing
//! that waiter's TID. When an owner with waiters exits (or execs), the lock
//! goes to the first waiter with FUTEX_OWNER_DIED, as Linux's
//! exit_pi_state_list and fixup_pi_state_owner do.
//!
//! Priority inheritance itself (boosting the owner to the priority of its
//! highest waiter) has no meaning here: the host schedules the workload's
//! threads and the application kernel has no priority to lend. Waiters get
//! the lock in arrival order; Linux orders them by priority, which for
//! threads of equal priority is the same FIFO.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};

use super::futex::{FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS, FutexKey, word};
use super::{Kernel, Tid, waitq};
use crate::errno::{Errno, SysResult};

/// Linux's pi_state: exists while threads wait in the kernel for the lock.
pub struct PiState {
    /// The thread the waiters wait for (kernel-wide tid).
    owner: Tid,
    /// Waiters in arrival order, with the address each named the word by
    /// (to write it when the lock is handed over at the owner's exit).
    waiters: VecDeque<(Tid, u64)>,
}

#[derive(Default)]
pub struct PiFutexes {
    states: HashMap<FutexKey, PiState>,
}

impl PiFutexes {
    /// `tid` stops waiting (woken, timed out, interrupted, or gone).
    pub fn forget(&mut self, tid: Tid) {
        self.states.retain(|_, s| {
            s.waiters.retain(|(t, _)| *t != tid);
            !s.waiters.is_empty()
        });
    }

    fn wait(&mut self, key: FutexKey, tid: Tid, uaddr: u64, owner: Tid) {
        let s = self.states.entry(key).or_insert_with(|| PiState {
            owner,
            waiters: VecDeque::new(),
        });
        if !s.waiters.iter().any(|(t, _)| *t == tid) {
            s.waiters.push_back((tid, uaddr));
        }
    }
}

/// What a lock attempt found.
pub enum PiLock {
    /// The caller owns the lock now.
    Acquired,
    /// Another thread (kernel-wide tid) owns it; FUTEX_WAITERS is set.
    Held(Tid),
}

impl Kernel {
    /// The TID task `tid` writes into a futex word (its own pid namespace's).
    fn vtid(&self, viewer: Tid, tid: Tid) -> u32 {
        self.pid_out(viewer, tid) as u32
    }

    /// Linux's futex_lock_pi_atomic: takes a free lock, or sets
    /// FUTEX_WAITERS and names the owner to wait for. EDEADLK if the caller
    /// owns it, ESRCH if the TID in the word names no live thread, EINVAL
    /// if the word contradicts the waiters' record of the owner.
    pub fn futex_pi_try_lock(&self, tid: Tid, w: &AtomicU32, key: FutexKey) -> SysResult<PiLock> {
        let me = self.vtid(tid, tid);
        loop {
            let uval = w.load(Ordering::SeqCst);
            let pid = uval & FUTEX_TID_MASK;
            if pid == me {
                return Err(Errno::EDEADLK);
            }
            if let Some(s) = self.futexes.pi.states.get(&key) {
                // Threads already wait: the word must name their owner (a
                // dead owner's word is TID 0 with FUTEX_OWNER_DIED only
                // until the lock is handed on, which the exit does at once).
                let owner = s.owner;
                if (pid == 0 && uval & FUTEX_OWNER_DIED != 0) || pid == self.vtid(tid, owner) {
                    return Ok(PiLock::Held(owner));
                }
                return Err(Errno::EINVAL);
            }
            if pid == 0 {
                // Free: take it, keeping FUTEX_OWNER_DIED for the new owner
                // to see (a robust mutex's EOWNERDEAD).
                let newval = (uval & FUTEX_OWNER_DIED) | me;
                if w.compare_exchange(uval, newval, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Ok(PiLock::Acquired);
                }
                continue;
            }
            // Set FUTEX_WAITERS first, as Linux does: it stays set even if
            // the owner turns out not to exist.
            if w.compare_exchange(
                uval,
                uval | FUTEX_WAITERS,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
            {
                continue;
            }
            let owner = self
                .pid_in(tid, pid as i32)
                .filter(|t| self.tasks.contains_key(t))
                .ok_or(Errno::ESRCH)?;
            return Ok(PiLock::Held(owner));
        }
    }

    /// `tid` sleeps until `owner` hands it the lock of `key`.
    pub fn futex_pi_wait(&mut self, key: FutexKey, tid: Tid, uaddr: u64, owner: Tid) {
        self.futexes.pi.wait(key, tid, uaddr, owner);
    }

    /// Linux's futex_unlock_pi: EPERM unless the word names the caller;
    /// hands the lock to the first waiter (its TID with FUTEX_WAITERS,
    /// FUTEX_OWNER_DIED cleared), or frees the word when nobody waits
    /// (EAGAIN if user space changed it meanwhile).
    pub fn futex_pi_unlock(&mut self, tid: Tid, w: &AtomicU32, key: FutexKey) -> SysResult<u64> {
        let me = self.vtid(tid, tid);
        loop {
            let uval = w.load(Ordering::SeqCst);
            if uval & FUTEX_TID_MASK != me {
                return Err(Errno::EPERM);
            }
            let Some(s) = self.futexes.pi.states.get(&key) else {
                return match w.compare_exchange(uval, 0, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => Ok(0),
                    Err(_) => Err(Errno::EAGAIN),
                };
            };
            if s.owner != tid {
                // User space wrote the caller's TID over another owner's.
                return Err(Errno::EINVAL);
            }
            let (next, _) = s.waiters[0];
            let newval = FUTEX_WAITERS | self.vtid(tid, next);
            match w.compare_exchange(uval, newval, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.pi_hand_over(key, next);
                    return Ok(0);
                }
                // A waiter set FUTEX_WAITERS meanwhile: try again.
                Err(now) if now & FUTEX_TID_MASK == me => continue,
                Err(_) => return Err(Errno::EINVAL),
            }
        }
    }

    /// The word of `key` names `next` now: it leaves the queue, owns what
    /// the others wait for, and its LOCK_PI returns 0.
    fn pi_hand_over(&mut self, key: FutexKey, next: Tid) {
        if let Some(s) = self.futexes.pi.states.get_mut(&key) {
            s.waiters.retain(|(t, _)| *t != next);
            s.owner = next;
            if s.waiters.is_empty() {
                self.futexes.pi.states.remove(&key);
            }
        }
        if let Some(t) = self.tasks.get_mut(&next) {
            t.sys.woken = true;
        }
        waitq::wake(next);
    }

    /// Linux's exit_pi_state_list: every PI lock `tid` owns with waiters
    /// goes to its first waiter, marked FUTEX_OWNER_DIED (the owner went
    /// without unlocking). Runs after the robust list, at exit and exec.
    pub fn exit_pi_state_list(&mut self, tid: Tid) {
        let owned: Vec<FutexKey> = self
            .futexes
            .pi
            .states
            .iter()
            .filter(|(_, s)| s.owner == tid)
            .map(|(k, _)| *k)
            .collect();
        for key in owned {
            let Some(&(next, uaddr)) = self
                .futexes
                .pi
                .states
                .get(&key)
                .and_then(|s| s.waiters.front())
            else {
                continue;
            };
            // The waiter writes its own TID, through its own mapping, as
            // Linux's waiter does when it wakes owning the lock.
            if let Some(t) = self.tasks.get(&next) {
                let newtid = FUTEX_WAITERS | FUTEX_OWNER_DIED | self.vtid(next, next);
                let mm = t.mm.clone();
                let m = mm.borrow();
                let writable = m
                    .find(uaddr)
                    .is_some_and(|v| v.prot & libc::PROT_WRITE != 0);
                if let (true, Ok(w)) = (writable, word(&m, uaddr)) {
                    let mut uval = w.load(Ordering::SeqCst);
                    while let Err(now) = w.compare_exchange(
                        uval,
                        (uval & FUTEX_OWNER_DIED) | newtid,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        uval = now;
                    }
                }
            }
            self.pi_hand_over(key, next);
        }
    }
}
