//! clone3(2): clone with its arguments in a struct, as Linux checks them
//! (copy_clone_args_from_user, clone3_args_valid). New namespaces are
//! refused as by clone; CLONE_INTO_CGROUP names a cgroup directory and no
//! file in the sandbox is one (EBADF, as Linux answers for such an fd).

use super::process::clone_common;
use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::clone::{
    CLONE_DETACHED, CLONE_PARENT, CLONE_PIDFD, CLONE_SIGHAND, CLONE_THREAD, CloneArgs,
};
use crate::kernel::{Kernel, Tid, pidns};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    vec![(
        "clone3",
        sys_clone3,
        Status::Partial,
        "no new namespaces; CLONE_INTO_CGROUP: EBADF (no cgroup files); set_tid needs CAP_SYS_ADMIN and names one level",
    )]
}

/// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
const SIZE_VER0: u64 = 64;
const SIZE_VER2: u64 = 88;
const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
const CLONE_INTO_CGROUP: u64 = 1 << 33;
const CSIGNAL: u64 = 0xff;
const CLONE_NEWTIME: u64 = 0x80;

fn sys_clone3(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let size = a[1];
    if size < SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let raw = k.task_mm(tid).borrow().read_vec(a[0], size as usize)?;
    // A newer struct may be passed if what we do not know of is zero.
    if raw[(SIZE_VER2 as usize).min(raw.len())..]
        .iter()
        .any(|b| *b != 0)
    {
        return Err(Errno::E2BIG);
    }
    let field = |i: usize| -> u64 {
        raw.get(i * 8..i * 8 + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap()))
    };
    let (flags, pidfd, child_tid, parent_tid) = (field(0), field(1), field(2), field(3));
    let (exit_signal, stack, stack_size, tls) = (field(4), field(5), field(6), field(7));
    let (set_tid, set_tid_size, cgroup) = (field(8), field(9), field(10));

    if exit_signal & !CSIGNAL != 0 || exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    if flags & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
        || flags & (CLONE_DETACHED | (CSIGNAL & !CLONE_NEWTIME)) != 0
        || flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND
        || (flags & (CLONE_THREAD | CLONE_PARENT) != 0 && exit_signal != 0)
        || (stack == 0 && stack_size != 0)
        || (stack != 0 && stack_size == 0)
        || set_tid_size > 32
        || (set_tid == 0 && set_tid_size != 0)
        || (set_tid != 0 && set_tid_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD != 0 && flags & (CLONE_THREAD | CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    // A new time namespace, as the others, is not offered.
    if flags & CLONE_NEWTIME != 0 {
        return Err(Errno::EPERM);
    }
    if flags & CLONE_INTO_CGROUP != 0 {
        // An open file that is not a cgroup directory.
        super::fs::get_file_raw(k, tid, cgroup as i32)?;
        return Err(Errno::EBADF);
    }
    if set_tid_size > 0 {
        // Choosing the pid is checkpoint/restore's privilege; the sandbox
        // has one pid namespace level.
        if !k.cred(tid).capable(crate::vfs::perm::cap::SYS_ADMIN) {
            return Err(Errno::EPERM);
        }
        if set_tid_size > 1 {
            return Err(Errno::EINVAL);
        }
        // A pid of the caller's own pid namespace (pidns.rs).
        let want: i32 = k.task_mm(tid).borrow().read_val(set_tid)?;
        if want <= 0 || want > pidns::LOCAL_MAX {
            return Err(Errno::EINVAL);
        }
        let ns = pidns::ns_of(tid);
        let full = pidns::tagged(ns, want);
        if k.tasks.contains_key(&full) || k.groups.contains_key(&full) {
            return Err(Errno::EEXIST);
        }
        k.reserve_pid_in(ns, want);
    }
    let stack_top = if stack == 0 {
        0
    } else {
        stack.checked_add(stack_size).ok_or(Errno::EINVAL)?
    };
    let pidfd_at = (flags & CLONE_PIDFD != 0).then_some(pidfd);
    let flags = flags & !CLONE_PIDFD;
    clone_common(
        k,
        tid,
        CloneArgs {
            flags,
            stack: stack_top,
            parent_tid,
            child_tid,
            tls,
            exit_signal: exit_signal as i32,
        },
        pidfd_at,
    )
}
