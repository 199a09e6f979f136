//! futex(2).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::timer::duration_of;
use crate::kernel::{Kernel, Tid};
use crate::mm::AddressSpace;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    vec![
        (
            "futex",
            sys_futex,
            Status::Partial,
            "PI futexes without priority inheritance (the host schedules threads); no requeue-PI",
        ),
        (
            "futex_waitv",
            sys_futex_waitv,
            Status::Partial,
            "32-bit futexes (as Linux); no FUTEX2_NUMA",
        ),
    ]
}

/// struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; }
const WAITV_SIZE: usize = 24;
const FUTEX2_SIZE_U32: u32 = 2;
const FUTEX2_PRIVATE: u32 = 128;
const FUTEX_WAITV_MAX: u64 = 128;

/// futex_waitv(2): sleeps until any of the futexes is woken (returning
/// its index), a value differs (EAGAIN), or the absolute timeout on
/// `clockid` passes (ETIMEDOUT).
fn sys_futex_waitv(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (addr, nr, flags, timeout, clockid) = (a[0], a[1], a[2], a[3], a[4] as i32);
    if flags != 0 || nr == 0 || nr > FUTEX_WAITV_MAX {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let raw = mm.borrow().read_vec(addr, nr as usize * WAITV_SIZE)?;
    let mut futexes = Vec::with_capacity(nr as usize);
    for w in raw.chunks_exact(WAITV_SIZE) {
        let val = u64::from_ne_bytes(w[0..8].try_into().unwrap());
        let uaddr = u64::from_ne_bytes(w[8..16].try_into().unwrap());
        let fl = u32::from_ne_bytes(w[16..20].try_into().unwrap());
        let reserved = u32::from_ne_bytes(w[20..24].try_into().unwrap());
        if fl & !(FUTEX2_SIZE_U32 | 1 | FUTEX2_PRIVATE) != 0
            || reserved != 0
            || fl & 3 != FUTEX2_SIZE_U32
            || val > u32::MAX as u64
        {
            return Err(Errno::EINVAL);
        }
        let m = mm.borrow();
        word(&m, uaddr)?;
        let key = key_for(&m, uaddr, fl & FUTEX2_PRIVATE != 0).ok_or(Errno::EFAULT)?;
        futexes.push((uaddr, val as u32, key));
    }
    let t = k.task(tid);
    if t.sys.started {
        let woken = t.sys.woken;
        let expired = t.sys.deadline.is_some_and(|d| Instant::now() >= d);
        if woken || expired {
            // The futex a wake took us off.
            let idx = futexes
                .iter()
                .position(|(_, _, key)| !k.futexes.is_waiting(*key, tid));
            k.futexes.forget(tid);
            return match (woken, idx) {
                (true, Some(i)) => Ok(i as u64),
                _ => Err(Errno::ETIMEDOUT),
            };
        }
        return Err(Errno::EBLOCK);
    }
    let deadline = if timeout != 0 {
        if clockid != libc::CLOCK_MONOTONIC && clockid != libc::CLOCK_REALTIME {
            return Err(Errno::EINVAL);
        }
        let ts: libc::timespec = mm.borrow().read_val(timeout)?;
        let at = duration_of(&ts).ok_or(Errno::EINVAL)?;
        let now = super::time::read_clock(k, tid, clockid)?;
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        Some(crate::kernel::timer::after(at.saturating_sub(now)))
    } else {
        None
    };
    for (uaddr, val, _) in &futexes {
        if word(&mm.borrow(), *uaddr)?.load(Ordering::SeqCst) != *val {
            return Err(Errno::EAGAIN);
        }
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    let keys: Vec<_> = futexes.iter().map(|f| f.2).collect();
    k.futexes.wait_many(&keys, tid);
    let t = k.task_mut(tid);
    t.sys.started = true;
    t.sys.deadline = deadline;
    Err(Errno::EBLOCK)
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_UNLOCK_PI: u64 = 7;
const FUTEX_TRYLOCK_PI: u64 = 8;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
const FUTEX_LOCK_PI2: u64 = 13;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const CMD_MASK: u64 = 127;

pub use crate::kernel::futex::{FutexKey, key_for, key_of, word};

/// Wakes up to `n` waiters; Linux wakes one when asked for zero (or a
/// negative count), so must we.
fn wake(k: &mut Kernel, key: Option<FutexKey>, n: u32, bitset: u32) -> usize {
    let Some(key) = key else {
        return 0;
    };
    let n = if (n as i32) <= 0 { 1 } else { n as usize };
    k.futex_wake(key, n, bitset)
}

/// A futex word the operation will modify: mapped writable.
pub fn writable_word(mm: &AddressSpace, addr: u64) -> SysResult<&'static AtomicU32> {
    let w = word(mm, addr)?;
    if mm.find(addr).is_none_or(|v| v.prot & libc::PROT_WRITE == 0) {
        return Err(Errno::EFAULT);
    }
    Ok(w)
}

/// The absolute timeout at `utime` on CLOCK_REALTIME or CLOCK_MONOTONIC,
/// as a deadline.
fn absolute_deadline(k: &Kernel, tid: Tid, utime: u64, realtime: bool) -> SysResult<Instant> {
    let ts: libc::timespec = k.task_mm(tid).borrow().read_val(utime)?;
    let at = duration_of(&ts).ok_or(Errno::EINVAL)?;
    let clk = if realtime {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    let now = super::time::read_clock(k, tid, clk)?;
    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    Ok(crate::kernel::timer::after(at.saturating_sub(now)))
}

fn sys_futex(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (uaddr, op, val, utime, uaddr2, val3) = (a[0], a[1], a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & CMD_MASK;
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    // The timeout of a blocking operation is read and checked first
    // (Linux's sys_futex), the clock flag next: only the operations with
    // an absolute timeout take it.
    let timed = matches!(
        cmd,
        FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI | FUTEX_LOCK_PI2
    );
    if realtime
        && !matches!(
            cmd,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        if timed && utime != 0 {
            let ts: libc::timespec = k.task_mm(tid).borrow().read_val(utime)?;
            duration_of(&ts).ok_or(Errno::EINVAL)?;
        }
        return Err(Errno::ENOSYS);
    }
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    // A private wake needs no mapping (Linux keys it by address): an
    // unmapped word has no waiters. Waits read the word, so they fault.
    let key = key_for(&mm.borrow(), uaddr, private);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let key = key.ok_or(Errno::EFAULT)?;
            let t = k.task(tid);
            if t.sys.started {
                if t.sys.woken {
                    return Ok(0);
                }
                if t.sys.deadline.is_some_and(|d| Instant::now() >= d) {
                    k.futexes.cancel(key, tid);
                    return Err(Errno::ETIMEDOUT);
                }
                return Err(Errno::EBLOCK);
            }
            let cur = word(&mm.borrow(), uaddr)?.load(Ordering::SeqCst);
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            let deadline = match (utime, cmd) {
                (0, _) => None,
                (_, FUTEX_WAIT) => {
                    let ts: libc::timespec = mm.borrow().read_val(utime)?;
                    let d = duration_of(&ts).ok_or(Errno::EINVAL)?;
                    Some(crate::kernel::timer::after(d))
                }
                // WAIT_BITSET timeouts are absolute.
                _ => Some(absolute_deadline(k, tid, utime, realtime)?),
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            k.futexes.wait(key, tid, bitset);
            let t = k.task_mut(tid);
            t.sys.started = true;
            t.sys.deadline = deadline;
            Err(Errno::EBLOCK)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(wake(k, key, val, bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val: how many to wake; the timeout argument: how many to move.
            if (val as i32) < 0 || (utime as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            if !uaddr2.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            if cmd == FUTEX_CMP_REQUEUE && word(&mm.borrow(), uaddr)?.load(Ordering::SeqCst) != val3
            {
                return Err(Errno::EAGAIN);
            }
            let key2 = key_for(&mm.borrow(), uaddr2, private);
            let (Some(key), Some(key2)) = (key, key2) else {
                return Ok(0);
            };
            // Unlike FUTEX_WAKE, zero here wakes none.
            let woken = k.futex_wake(key, val as usize, u32::MAX);
            let moved = k.futexes.requeue(key, key2, utime as u32 as usize);
            Ok((woken + moved) as u64)
        }
        FUTEX_WAKE_OP => {
            let w2 = writable_word(&mm.borrow(), uaddr2)?;
            let key2 = key_for(&mm.borrow(), uaddr2, private);
            let encoded = val3;
            let op_kind = (encoded >> 28) & 7;
            let shift = encoded & (8 << 28) != 0;
            let cmp = (encoded >> 24) & 15;
            let mut oparg = (encoded >> 12) & 0xfff;
            let cmparg = encoded & 0xfff;
            if shift {
                oparg = 1u32.checked_shl(oparg).unwrap_or(0);
            }
            let old = match op_kind {
                0 => w2.swap(oparg, Ordering::SeqCst),
                1 => w2.fetch_add(oparg, Ordering::SeqCst),
                2 => w2.fetch_or(oparg, Ordering::SeqCst),
                3 => w2.fetch_and(!oparg, Ordering::SeqCst),
                4 => w2.fetch_xor(oparg, Ordering::SeqCst),
                _ => return Err(Errno::ENOSYS),
            };
            let ok = match cmp {
                0 => old == cmparg,
                1 => old != cmparg,
                2 => (old as i32) < cmparg as i32,
                3 => (old as i32) <= cmparg as i32,
                4 => (old as i32) > cmparg as i32,
                5 => (old as i32) >= cmparg as i32,
                _ => return Err(Errno::ENOSYS),
            };
            let mut n = wake(k, key, val, u32::MAX);
            if ok {
                n += wake(k, key2, utime as u32, u32::MAX);
            }
            Ok(n as u64)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => {
            // LOCK_PI's absolute timeout is on CLOCK_REALTIME, LOCK_PI2's
            // on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME says otherwise.
            let deadline = if utime != 0 && !k.task(tid).sys.started {
                Some(absolute_deadline(
                    k,
                    tid,
                    utime,
                    cmd == FUTEX_LOCK_PI || realtime,
                )?)
            } else {
                None
            };
            super::futex_pi::lock(k, tid, uaddr, key, deadline, false)
        }
        FUTEX_TRYLOCK_PI => super::futex_pi::lock(k, tid, uaddr, key, None, true),
        FUTEX_UNLOCK_PI => super::futex_pi::unlock(k, tid, uaddr, key),
        _ => Err(Errno::ENOSYS),
    }
}
