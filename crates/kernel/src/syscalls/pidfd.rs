//! Process file descriptors: pidfd_open and pidfd_send_signal (pidfd_getfd
//! is refused: no stealing descriptors). waitid(P_PIDFD) is in process.rs
//! and CLONE_PIDFD in clone.

use std::rc::Rc;

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::pidfd::{Life, PidFd};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Kernel, Tid};
use crate::vfs::File;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "pidfd_open",
            sys_pidfd_open,
            Partial,
            "process pidfds (no PIDFD_THREAD)",
        ),
        ("pidfd_send_signal", sys_pidfd_send_signal, Full, ""),
    ]
}

fn sys_pidfd_open(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (pid, flags) = (a[0] as i32, a[1] as u32);
    if flags & !(libc::O_NONBLOCK as u32) != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let g = k.groups.get(&pid).filter(|g| !g.is_zombie());
    if g.is_none() {
        // A thread that is not a process leader is ENOENT (Linux 6.9+,
        // without PIDFD_THREAD), else ESRCH.
        return Err(if k.tasks.contains_key(&pid) {
            Errno::ENOENT
        } else {
            Errno::ESRCH
        });
    }
    let f = File::new(
        Rc::new(PidFd::new(k, pid)?),
        libc::O_RDWR | (flags as i32 & libc::O_NONBLOCK),
        None,
    );
    super::fs::install_fd(k, tid, f, true)
}

/// pidfd_send_signal's flags: whom the signal goes to.
const PIDFD_SIGNAL_THREAD: u64 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u64 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u64 = 4;

fn sys_pidfd_send_signal(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, sig, info_at, flags) = (a[0] as i32, a[1] as i32, a[2], a[3]);
    // At most one scope.
    if !matches!(
        flags,
        0 | PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP
    ) {
        return Err(Errno::EINVAL);
    }
    let f = super::fs::get_file(k, tid, fd)?;
    // A pidfd, or (as Linux allows since 5.1) a descriptor of a
    // /proc/<pid> directory. Such a directory names its pid only, not
    // the process that had it when it was opened: a pid reused since then
    // names the new process (Linux pins the old one: ESRCH).
    let target = if let Some(p) = f.ops.as_any().downcast_ref::<PidFd>() {
        if !(0..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        if p.life(k) != Life::Alive {
            return Err(Errno::ESRCH);
        }
        p.pid
    } else if let Some(pid) = f
        .dentry
        .as_ref()
        .and_then(|d| crate::vfs::procfs::pid_dir(&*d.inode))
    {
        if !(0..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        match k.groups.get(&pid) {
            Some(g) if !g.is_zombie() => pid,
            _ => return Err(Errno::ESRCH),
        }
    } else {
        return Err(Errno::EBADF);
    };
    let me = k.task(tid).tgid;
    let uid = k.cred(tid).uid;
    let info = if info_at != 0 {
        let raw: [u8; 128] = k.task_mm(tid).borrow().read_val(info_at)?;
        let i = SigInfo { raw };
        // The signal named twice must agree; forging a kernel si_code for
        // another process is EPERM (as rt_sigqueueinfo).
        if i.signo() != sig {
            return Err(Errno::EINVAL);
        }
        if (i.code() >= 0 || i.code() == crate::kernel::signal::SI_TKILL) && target != me {
            return Err(Errno::EPERM);
        }
        i
    } else if flags == PIDFD_SIGNAL_THREAD {
        SigInfo::user(sig, crate::kernel::signal::SI_TKILL, me, uid)
    } else {
        SigInfo::user(sig, 0 /* SI_USER */, me, uid)
    };
    match flags {
        PIDFD_SIGNAL_PROCESS_GROUP => {
            // The process group the pid names (kill_pgrp_info on the
            // pidfd's pid), not the one the process is in.
            let pgid = target;
            let members: Vec<_> = k
                .groups
                .values()
                .filter(|g| g.pgid == pgid && !g.is_zombie())
                .map(|g| g.tgid)
                .collect();
            super::signal::signal_groups(k, tid, &members, info)
        }
        _ => {
            if !super::signal::may_signal(k, tid, target) {
                return Err(Errno::EPERM);
            }
            if sig == 0 {
                return Ok(0);
            }
            if flags == PIDFD_SIGNAL_THREAD {
                // The thread the pidfd names: the leader, while it lives.
                if !k.tasks.contains_key(&target) {
                    return Err(Errno::ESRCH);
                }
                k.send_task(target, info)?;
            } else {
                k.send_group(target, info)?;
            }
            Ok(0)
        }
    }
}
