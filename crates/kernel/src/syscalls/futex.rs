//! futex(2).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::timer::duration_of;
use crate::kernel::{Kernel, Tid, waitq};
use crate::mm::AddressSpace;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    vec![("futex", sys_futex, Status::Partial, "no PI futexes")]
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const CMD_MASK: u64 = 127;

/// The futex key of `addr`: its memory-file offset.
pub fn key_of(mm: &AddressSpace, addr: u64) -> Option<u64> {
    mm.find(addr)?.memfile_offset(addr).ok()
}

/// The futex word, atomically, through the kernel's mapping.
fn word(mm: &AddressSpace, addr: u64) -> SysResult<&'static AtomicU32> {
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

fn wake(k: &mut Kernel, key: u64, n: usize, bitset: u32) -> usize {
    let woken = k.futexes.wake(key, n, bitset);
    for t in &woken {
        if let Some(task) = k.tasks.get_mut(t) {
            task.sys.woken = true;
        }
        waitq::wake(*t);
    }
    woken.len()
}

fn sys_futex(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (uaddr, op, val, utime, uaddr2, val3) = (a[0], a[1], a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & CMD_MASK;
    let mm = k.task_mm(tid);
    let key = {
        let m = mm.borrow();
        word(&m, uaddr)?;
        key_of(&m, uaddr).ok_or(Errno::EFAULT)?
    };
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
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
            let deadline = if utime != 0 {
                let ts: libc::timespec = mm.borrow().read_val(utime)?;
                let d = duration_of(&ts).ok_or(Errno::EINVAL)?;
                if cmd == FUTEX_WAIT {
                    Some(Instant::now() + d)
                } else {
                    // WAIT_BITSET timeouts are absolute.
                    let clk = if op & FUTEX_CLOCK_REALTIME != 0 {
                        libc::CLOCK_REALTIME
                    } else {
                        libc::CLOCK_MONOTONIC
                    };
                    let now = super::time::read_clock(k, tid, clk)?;
                    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
                    Some(Instant::now() + d.saturating_sub(now))
                }
            } else {
                None
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
            Ok(wake(k, key, val as usize, bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let key2 = {
                let m = mm.borrow();
                word(&m, uaddr2)?;
                key_of(&m, uaddr2).ok_or(Errno::EFAULT)?
            };
            if cmd == FUTEX_CMP_REQUEUE && word(&mm.borrow(), uaddr)?.load(Ordering::SeqCst) != val3
            {
                return Err(Errno::EAGAIN);
            }
            let woken = wake(k, key, val as usize, u32::MAX);
            let moved = k.futexes.requeue(key, key2, utime as usize);
            Ok((woken + moved) as u64)
        }
        FUTEX_WAKE_OP => {
            let key2 = {
                let m = mm.borrow();
                word(&m, uaddr2)?;
                key_of(&m, uaddr2).ok_or(Errno::EFAULT)?
            };
            let w2 = word(&mm.borrow(), uaddr2)?;
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
            let mut n = wake(k, key, val as usize, u32::MAX);
            if ok {
                n += wake(k, key2, utime as usize, u32::MAX);
            }
            Ok(n as u64)
        }
        _ => Err(Errno::ENOSYS),
    }
}
