//! futex(2)'s PI operations: FUTEX_LOCK_PI, FUTEX_LOCK_PI2,
//! FUTEX_TRYLOCK_PI and FUTEX_UNLOCK_PI (the protocol is in
//! kernel/futex_pi.rs). FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI
//! (glibc's condition variables before 2.25) are not implemented: ENOSYS.

use std::time::Instant;

use super::futex::{FutexKey, word, writable_word};
use crate::errno::{Errno, SysResult};
use crate::kernel::futex_pi::PiLock;
use crate::kernel::{Kernel, Tid};

/// LOCK_PI and LOCK_PI2 (`deadline` from their absolute timeout), and
/// TRYLOCK_PI (`trylock`).
pub fn lock(
    k: &mut Kernel,
    tid: Tid,
    uaddr: u64,
    key: Option<FutexKey>,
    deadline: Option<Instant>,
    trylock: bool,
) -> SysResult<u64> {
    let t = k.task(tid);
    if t.sys.started {
        // Woken only by a hand-over: the word names us now.
        if t.sys.woken {
            return Ok(0);
        }
        if t.sys.deadline.is_some_and(|d| Instant::now() >= d) {
            k.futexes.forget(tid);
            return Err(Errno::ETIMEDOUT);
        }
        return Err(Errno::EBLOCK);
    }
    let mm = k.task_mm(tid);
    // The word is written: a read-only mapping faults (EFAULT).
    let w = writable_word(&mm.borrow(), uaddr)?;
    let key = key.ok_or(Errno::EFAULT)?;
    let owner = match k.futex_pi_try_lock(tid, w, key)? {
        PiLock::Acquired => return Ok(0),
        PiLock::Held(owner) => owner,
    };
    if trylock {
        return Err(Errno::EAGAIN);
    }
    // Linux queues, then finds the timer expired: FUTEX_WAITERS stays set.
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    k.futex_pi_wait(key, tid, uaddr, owner);
    let t = k.task_mut(tid);
    t.sys.started = true;
    t.sys.deadline = deadline;
    Err(Errno::EBLOCK)
}

/// UNLOCK_PI: EPERM before anything else when the caller does not own the
/// word (as Linux reads it before checking it can be written).
pub fn unlock(k: &mut Kernel, tid: Tid, uaddr: u64, key: Option<FutexKey>) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let uval = word(&mm.borrow(), uaddr)?.load(std::sync::atomic::Ordering::SeqCst);
    if uval & crate::kernel::futex::FUTEX_TID_MASK != k.pid_out(tid, tid) as u32 {
        return Err(Errno::EPERM);
    }
    let w = writable_word(&mm.borrow(), uaddr)?;
    let key = key.ok_or(Errno::EFAULT)?;
    k.futex_pi_unlock(tid, w, key)
}
