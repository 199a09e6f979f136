//! Pid namespaces of a pod: the sandbox's, and one per pod container that
//! does not join it (Kubernetes' default; `shareProcessNamespace: true`
//! joins).
//!
//! A pid is stored once, kernel-wide, with its namespace in its high bits:
//! `ns << NS_SHIFT | local`. The sandbox's namespace is 0, so its pids are
//! the plain numbers its processes see; a pod container with a namespace
//! of its own has the container's number there, and its init is local
//! pid 1. Every map keyed by pid stays as it is; only what crosses into a
//! process (return values, siginfo, /proc, arguments naming a pid) is
//! translated, and only for processes of a container's own namespace.
//!
//! - out: a pid of the viewer's namespace loses the tag; a pid of another
//!   namespace is invisible (0), as the parent namespace's pids are in a
//!   child namespace;
//! - in: a local pid gets the viewer's tag; the sandbox's namespace (the
//!   parent of every container's) names every process by its full value,
//!   as Linux shows a child namespace's processes in the parent.

use super::signal::{SI_QUEUE, SI_TKILL, SI_USER, SigInfo};
use super::{Kernel, Pid, Tid};
use crate::errno::Errno;

const SI_MESGQ: i32 = -3;

/// Bits of a pid that are the local number (Linux's pid_max is 2^22).
pub const NS_SHIFT: u32 = 22;
/// Local pids are 1..=LOCAL_MAX.
pub const LOCAL_MAX: Pid = (1 << NS_SHIFT) - 1;
/// Namespaces: 0 (the sandbox's) and 1..MAX_NS (pod containers); the
/// tagged pid stays a positive i32.
pub const MAX_NS: u32 = 1 << (31 - NS_SHIFT);

/// The namespace a pid belongs to.
pub fn ns_of(pid: Pid) -> u32 {
    (pid as u32) >> NS_SHIFT
}

/// The number a process of the same namespace sees.
pub fn local(pid: Pid) -> Pid {
    pid & LOCAL_MAX
}

/// The kernel-wide value of local pid `pid` of namespace `ns`.
pub fn tagged(ns: u32, pid: Pid) -> Pid {
    ((ns << NS_SHIFT) as Pid) | (pid & LOCAL_MAX)
}

impl Kernel {
    /// The pid namespace of task `tid` (its pid's tag).
    pub fn pidns(&self, tid: Tid) -> u32 {
        ns_of(tid)
    }

    /// `pid` as task `viewer` sees it: 0 if it is not in its namespace.
    pub fn pid_out(&self, viewer: Tid, pid: Pid) -> Pid {
        match ns_of(viewer) {
            0 => pid,
            ns if pid > 0 && ns_of(pid) == ns => local(pid),
            _ => 0,
        }
    }

    /// A pid task `viewer` named (positive): its kernel-wide value, or
    /// None if it cannot name a process (ESRCH).
    pub fn pid_in(&self, viewer: Tid, pid: Pid) -> Option<Pid> {
        if pid <= 0 {
            return None;
        }
        match ns_of(viewer) {
            0 => Some(pid),
            _ if pid > LOCAL_MAX => None,
            ns => Some(tagged(ns, pid)),
        }
    }

    /// Whether task `viewer` can see process or task `pid`.
    pub fn pid_visible(&self, viewer: Tid, pid: Pid) -> bool {
        match ns_of(viewer) {
            0 => true,
            ns => ns_of(pid) == ns,
        }
    }

    /// A free pid of namespace `ns`: the lowest above the last one handed
    /// out there, wrapping.
    pub fn alloc_pid_in(&mut self, ns: u32) -> crate::errno::SysResult<Pid> {
        let next = self.next_pids.entry(ns).or_insert(1);
        for _ in 0..LOCAL_MAX {
            let p = tagged(ns, *next);
            *next = if *next >= LOCAL_MAX { 2 } else { *next + 1 };
            if !self.tasks.contains_key(&p) && !self.groups.contains_key(&p) {
                return Ok(p);
            }
        }
        Err(crate::errno::Errno::EAGAIN)
    }

    /// The init of namespace `ns` (the sandbox's init for 0).
    pub fn ns_init(&self, ns: u32) -> Pid {
        tagged(ns, 1)
    }

    /// `info` as the receiver `to` (a task or thread group) gets it: the
    /// sender's or child's pid in its namespace (0 from outside).
    pub fn siginfo_for(&self, to: Pid, mut info: SigInfo) -> SigInfo {
        if ns_of(to) == 0 {
            return info;
        }
        let code = info.code();
        let has_pid = matches!(code, SI_USER | SI_QUEUE | SI_MESGQ | SI_TKILL)
            || (info.signo() == libc::SIGCHLD && (1..=6).contains(&code));
        if has_pid {
            let p = self.pid_out(to, info.pid());
            info.raw[16..20].copy_from_slice(&p.to_ne_bytes());
        }
        info
    }

    /// Arguments of syscall `nr` that name pids, from task `tid`'s
    /// namespace to kernel-wide values (nothing to do in the sandbox's
    /// namespace). Err: a pid it cannot name.
    #[allow(non_upper_case_globals)]
    pub fn pids_in(&self, tid: Tid, nr: u64, a: &mut [u64; 6]) -> Result<(), Errno> {
        if ns_of(tid) == 0 {
            return Ok(());
        }
        use libc::*;
        let nr = nr as c_long;
        // A positive pid; 0 stays ("self"); `group`: negative is a
        // process group (kill, wait4, F_SETOWN).
        let conv = |v: &mut u64, err: Errno, group: bool| -> Result<(), Errno> {
            let p = *v as i32;
            let t = match p {
                0 => return Ok(()),
                -1 if group => return Ok(()),
                p if p > 0 => self.pid_in(tid, p).ok_or(err)?,
                p if group => -(self.pid_in(tid, p.checked_neg().ok_or(err)?).ok_or(err)?),
                _ => return Err(err),
            };
            *v = t as i64 as u64;
            Ok(())
        };
        match nr {
            SYS_kill => conv(&mut a[0], Errno::ESRCH, true),
            SYS_wait4 => conv(&mut a[0], Errno::ECHILD, true),
            SYS_waitid if a[0] == P_PID as u64 || a[0] == P_PGID as u64 => {
                conv(&mut a[1], Errno::ECHILD, false)
            }
            SYS_tkill
            | SYS_rt_sigqueueinfo
            | SYS_getpgid
            | SYS_getsid
            | SYS_prlimit64
            | SYS_sched_setaffinity
            | SYS_sched_getaffinity
            | SYS_sched_setparam
            | SYS_sched_getparam
            | SYS_sched_setscheduler
            | SYS_sched_getscheduler
            | SYS_sched_rr_get_interval
            | SYS_sched_setattr
            | SYS_sched_getattr
            | SYS_pidfd_open
            | SYS_process_vm_readv
            | SYS_process_vm_writev
            | SYS_get_robust_list
            | SYS_migrate_pages
            | SYS_move_pages => conv(&mut a[0], Errno::ESRCH, false),
            SYS_tgkill | SYS_rt_tgsigqueueinfo | SYS_kcmp => {
                conv(&mut a[0], Errno::ESRCH, false)?;
                conv(&mut a[1], Errno::ESRCH, false)
            }
            SYS_setpgid => {
                conv(&mut a[0], Errno::ESRCH, false)?;
                conv(&mut a[1], Errno::EPERM, false)
            }
            // PRIO_PROCESS, PRIO_PGRP; IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP.
            SYS_getpriority | SYS_setpriority if a[0] <= 1 => conv(&mut a[1], Errno::ESRCH, false),
            SYS_ioprio_get | SYS_ioprio_set if a[0] == 1 || a[0] == 2 => {
                conv(&mut a[1], Errno::ESRCH, false)
            }
            SYS_fcntl if a[1] == F_SETOWN as u64 => conv(&mut a[2], Errno::ESRCH, true),
            _ => Ok(()),
        }
    }

    /// The result of syscall `nr` when it is a pid, as task `tid` sees it.
    #[allow(non_upper_case_globals)]
    pub fn pid_result(&self, tid: Tid, nr: u64, args: &[u64; 6], v: u64) -> u64 {
        if ns_of(tid) == 0 {
            return v;
        }
        use libc::*;
        let p = v as i32;
        let out = match nr as c_long {
            SYS_getpid | SYS_gettid | SYS_getppid | SYS_getpgid | SYS_getpgrp | SYS_getsid
            | SYS_setsid | SYS_set_tid_address => self.pid_out(tid, p),
            SYS_clone | SYS_clone3 | SYS_fork | SYS_vfork | SYS_wait4 if p > 0 => {
                self.pid_out(tid, p)
            }
            SYS_fcntl if args[1] == F_GETOWN as u64 && p > 0 => self.pid_out(tid, p),
            SYS_fcntl if args[1] == F_GETOWN as u64 && p < 0 => -self.pid_out(tid, -p),
            _ => return v,
        };
        out as i64 as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_stay_positive() {
        assert_eq!(tagged(0, 5), 5);
        let p = tagged(3, 1);
        assert_eq!((ns_of(p), local(p)), (3, 1));
        let top = tagged(MAX_NS - 1, LOCAL_MAX);
        assert!(top > 0, "{top}");
        assert_eq!(ns_of(top), MAX_NS - 1);
    }
}
