//! Scheduling syscalls: nice values, policies, affinity, the CPU a task
//! runs on. The kernel keeps each thread's attributes with Linux's checks
//! and reports them (getpriority, sched_get*, /proc/PID/stat); the host
//! schedules the stub threads as it schedules all of its threads, so the
//! attributes do not change who runs first. Realtime policies (SCHED_FIFO,
//! SCHED_RR) are refused with EPERM, as for a process without
//! CAP_SYS_NICE whose RLIMIT_RTPRIO is 0: the sandbox could not honour them.

use super::process::sys_zero;
use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::cputime::Sched;
use crate::kernel::{Kernel, Tid};
use crate::vfs::perm::cap;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("sched_yield", sys_zero, Full, ""),
        ("sched_getaffinity", sys_sched_getaffinity, Full, ""),
        (
            "sched_setaffinity",
            sys_sched_setaffinity,
            Partial,
            "the mask is kept and reported (inherited by children); scheduling ignores it",
        ),
        ("sched_getparam", sys_sched_getparam, Full, ""),
        (
            "sched_setparam",
            sys_sched_setparam,
            Partial,
            "as sched_setscheduler",
        ),
        ("sched_getscheduler", sys_sched_getscheduler, Full, ""),
        (
            "sched_setscheduler",
            sys_sched_setscheduler,
            Partial,
            "SCHED_OTHER, SCHED_BATCH, SCHED_IDLE and SCHED_RESET_ON_FORK kept per thread with Linux's checks; SCHED_FIFO and SCHED_RR refused (EPERM); the host's scheduling is not changed",
        ),
        ("sched_get_priority_max", sys_prio_max, Full, ""),
        ("sched_get_priority_min", sys_prio_min, Full, ""),
        ("sched_rr_get_interval", sys_rr_interval, Full, ""),
        (
            "getpriority",
            sys_getpriority,
            Full,
            "the nice values setpriority kept",
        ),
        (
            "setpriority",
            sys_setpriority,
            Partial,
            "nice values kept per thread with Linux's checks (RLIMIT_NICE, CAP_SYS_NICE) and reported; the host's scheduling is not changed",
        ),
        ("getcpu", sys_getcpu, Full, ""),
    ]
}

/// The sandbox's CPUs as a mask.
fn online_cpus(k: &Kernel) -> u64 {
    let cpus = k.config.cpus.clamp(1, 64);
    if cpus == 64 { !0 } else { (1u64 << cpus) - 1 }
}

/// The task a sched_* call names (0: the caller). A negative pid is
/// EINVAL for the policy calls, which check it first, and ESRCH for the
/// affinity calls, which look it up as any other.
fn sched_target(k: &Kernel, tid: Tid, pid: u64, negative: Errno) -> SysResult<Tid> {
    let p = pid as i32;
    if p < 0 {
        return Err(negative);
    }
    if p == 0 {
        return Ok(tid);
    }
    if k.tasks.contains_key(&p) {
        Ok(p)
    } else {
        Err(Errno::ESRCH)
    }
}

fn sys_sched_getaffinity(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    // The buffer must hold a cpumask (one long here), in whole longs.
    if a[1] < 8 || !a[1].is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let t = sched_target(k, tid, a[0], Errno::ESRCH)?;
    let mask = k.task(t).cpu_time.affinity.unwrap_or(!0) & online_cpus(k);
    k.task_mm(tid).borrow().write_val(a[2], &mask)?;
    Ok(8)
}

/// Linux's check_same_owner: the caller's effective uid is the target's
/// real or effective uid.
fn same_owner(k: &Kernel, tid: Tid, t: Tid) -> bool {
    let (c, target) = (k.cred(tid), k.cred(t));
    c.euid == target.uid || c.euid == target.euid
}

fn sys_sched_setaffinity(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = sched_target(k, tid, a[0], Errno::ESRCH)?;
    // Bytes past the first long name CPUs the sandbox does not have.
    let n = (a[1] as usize).min(8);
    let mut raw = [0u8; 8];
    k.task_mm(tid).borrow().read_bytes(a[2], &mut raw[..n])?;
    let mask = u64::from_ne_bytes(raw) & online_cpus(k);
    if mask == 0 {
        return Err(Errno::EINVAL);
    }
    if !same_owner(k, tid, t) && !k.cred(tid).capable(cap::SYS_NICE) {
        return Err(Errno::EPERM);
    }
    k.task_mut(t).cpu_time.affinity = Some(mask);
    Ok(0)
}

/// Linux's can_nice: lowering `t`'s nice value to `nice` is allowed by
/// its RLIMIT_NICE (20 - nice at most) or the caller's CAP_SYS_NICE.
fn can_nice(k: &Kernel, tid: Tid, t: Tid, nice: i32) -> bool {
    let lim = k.rlimit(t, libc::RLIMIT_NICE).rlim_cur;
    (20 - nice) as u64 <= lim || k.cred(tid).capable(cap::SYS_NICE)
}

fn sys_sched_getparam(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    sched_target(k, tid, a[0], Errno::EINVAL)?;
    // struct sched_param: the priority, 0 for the policies kept here.
    k.task_mm(tid).borrow().write_val(a[1], &0i32)?;
    Ok(0)
}

fn sys_sched_getscheduler(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = sched_target(k, tid, a[0], Errno::EINVAL)?;
    let s = k.task(t).cpu_time.sched;
    let flag = if s.reset_on_fork {
        libc::SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok((s.policy | flag) as u64)
}

/// sched_setscheduler (`policy` Some) and sched_setparam (None: the
/// thread's own), in the order of Linux's checks.
fn set_scheduler(
    k: &mut Kernel,
    tid: Tid,
    pid: u64,
    policy: Option<i32>,
    param: u64,
) -> SysResult<u64> {
    // Linux's order: a missing parameter or a negative pid, then the
    // parameter's memory, then the pid's lookup.
    if param == 0 || (pid as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = k.task_mm(tid).borrow().read_val(param)?;
    let t = sched_target(k, tid, pid, Errno::EINVAL)?;
    let cur = k.task(t).cpu_time.sched;
    let (policy, reset) = match policy {
        Some(p) => (
            p & !libc::SCHED_RESET_ON_FORK,
            p & libc::SCHED_RESET_ON_FORK != 0,
        ),
        None => (cur.policy, cur.reset_on_fork),
    };
    let realtime = matches!(policy, libc::SCHED_FIFO | libc::SCHED_RR);
    if !realtime
        && !matches!(
            policy,
            libc::SCHED_OTHER | libc::SCHED_BATCH | libc::SCHED_IDLE
        )
    {
        return Err(Errno::EINVAL);
    }
    // Priorities: 1-99 for the realtime policies, 0 for the others.
    if !(0..=99).contains(&prio) || realtime != (prio != 0) {
        return Err(Errno::EINVAL);
    }
    if realtime {
        return Err(Errno::EPERM);
    }
    if !k.cred(tid).capable(cap::SYS_NICE) {
        // Leaving SCHED_IDLE takes what lowering the nice value takes.
        if cur.policy == libc::SCHED_IDLE
            && policy != libc::SCHED_IDLE
            && !can_nice(k, tid, t, cur.nice)
        {
            return Err(Errno::EPERM);
        }
        if !same_owner(k, tid, t) {
            return Err(Errno::EPERM);
        }
        // Only a privileged caller may clear SCHED_RESET_ON_FORK.
        if cur.reset_on_fork && !reset {
            return Err(Errno::EPERM);
        }
    }
    k.task_mut(t).cpu_time.sched = Sched {
        nice: cur.nice,
        policy,
        reset_on_fork: reset,
    };
    Ok(0)
}

fn sys_sched_setscheduler(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let policy = a[1] as i32;
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    set_scheduler(k, tid, a[0], Some(policy), a[2])
}

fn sys_sched_setparam(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    set_scheduler(k, tid, a[0], None, a[1])
}

fn sys_prio_max(_k: &mut Kernel, _tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    match a[0] as i32 {
        libc::SCHED_FIFO | libc::SCHED_RR => Ok(99),
        libc::SCHED_OTHER | libc::SCHED_BATCH | libc::SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_prio_min(_k: &mut Kernel, _tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    match a[0] as i32 {
        libc::SCHED_FIFO | libc::SCHED_RR => Ok(1),
        libc::SCHED_OTHER | libc::SCHED_BATCH | libc::SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_rr_interval(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    sched_target(k, tid, a[0], Errno::EINVAL)?;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    k.task_mm(tid).borrow().write_val(a[1], &ts)?;
    Ok(0)
}

/// The threads setpriority and getpriority name: PRIO_PROCESS a thread,
/// PRIO_PGRP every thread of a process group, PRIO_USER every thread of
/// a real user (`who` 0: the caller's).
fn prio_targets(k: &Kernel, tid: Tid, which: u64, who: u64) -> SysResult<Vec<Tid>> {
    let who = who as i32;
    Ok(match which as u32 {
        libc::PRIO_PROCESS => {
            let t = if who == 0 { tid } else { who };
            if k.tasks.contains_key(&t) {
                vec![t]
            } else {
                Vec::new()
            }
        }
        libc::PRIO_PGRP => {
            let pgid = if who == 0 { k.group_of(tid).pgid } else { who };
            k.groups
                .values()
                .filter(|g| g.pgid == pgid && !g.is_zombie())
                .flat_map(|g| g.threads.iter().copied())
                .collect()
        }
        libc::PRIO_USER => {
            let uid = if who == 0 {
                k.cred(tid).uid
            } else {
                who as u32
            };
            k.groups
                .values()
                .filter(|g| g.cred.uid == uid && !g.is_zombie())
                .flat_map(|g| g.threads.iter().copied())
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    })
}

fn sys_getpriority(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    // The raw syscall returns 20 - nice (1..=40), the highest of them.
    prio_targets(k, tid, a[0], a[1])?
        .iter()
        .map(|t| (20 - k.task(*t).cpu_time.sched.nice) as u64)
        .max()
        .ok_or(Errno::ESRCH)
}

fn sys_setpriority(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let nice = (a[2] as i32).clamp(-20, 19);
    let mut result = Err(Errno::ESRCH);
    for t in prio_targets(k, tid, a[0], a[1])? {
        // Linux's set_one_prio: an error stays once made.
        let ok = if !same_owner(k, tid, t) && !k.cred(tid).capable(cap::SYS_NICE) {
            Err(Errno::EPERM)
        } else if nice < k.task(t).cpu_time.sched.nice && !can_nice(k, tid, t, nice) {
            Err(Errno::EACCES)
        } else {
            k.task_mut(t).cpu_time.sched.nice = nice;
            Ok(0)
        };
        result = match (result, ok) {
            (Err(Errno::ESRCH), r) | (Ok(_), r) => r,
            (e, _) => e,
        };
    }
    result
}

fn sys_getcpu(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    if a[0] != 0 {
        // A CPU the task may run on.
        let mask = k.task(tid).cpu_time.affinity.unwrap_or(!0) & online_cpus(k);
        mm.borrow()
            .write_val(a[0], &mask.trailing_zeros().min(63))?;
    }
    if a[1] != 0 {
        mm.borrow().write_val(a[1], &0u32)?;
    }
    Ok(0)
}
