//! Process syscalls: creation, exec, exit, wait, ids, credentials,
//! limits, identity.

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use std::rc::Rc;

use crate::kernel::clone::{
    CLONE_DETACHED, CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_THREAD, CLONE_VFORK, CLONE_VM,
    CloneArgs,
};
use crate::kernel::cputime::Times;
use crate::kernel::exit::{WaitSel, exited};
use crate::kernel::identity;
use crate::kernel::{Kernel, Tid};
use crate::platform::Platform;
use crate::vfs::perm::cap;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("clone", sys_clone, Partial, "no new namespaces"),
        ("fork", sys_fork, Full, ""),
        ("vfork", sys_vfork, Full, ""),
        (
            "execve",
            sys_execve,
            Partial,
            "set-ID files as Linux; file capabilities not read, and a non-set-ID exec keeps the capabilities",
        ),
        ("execveat", sys_execveat, Partial, "as execve"),
        ("exit", sys_exit, Full, ""),
        ("exit_group", sys_exit_group, Full, ""),
        ("wait4", sys_wait4, Full, ""),
        ("waitid", sys_waitid, Full, ""),
        ("getpid", sys_getpid, Full, ""),
        ("getppid", sys_getppid, Full, ""),
        ("gettid", sys_gettid, Full, ""),
        ("getpgid", sys_getpgid, Full, ""),
        ("setpgid", sys_setpgid, Full, ""),
        ("getpgrp", sys_getpgrp, Full, ""),
        ("setsid", sys_setsid, Full, ""),
        ("getsid", sys_getsid, Full, ""),
        ("set_tid_address", sys_set_tid_address, Full, ""),
        ("set_robust_list", sys_set_robust_list, Full, ""),
        ("get_robust_list", sys_get_robust_list, Full, ""),
        (
            "arch_prctl",
            sys_arch_prctl,
            Partial,
            "FS/GS base and CPUID query",
        ),
        (
            "prctl",
            sys_prctl,
            Partial,
            "common options; no seccomp inside the sandbox",
        ),
        ("uname", sys_uname, Full, ""),
        ("sethostname", sys_sethostname, Full, ""),
        ("setdomainname", sys_setdomainname, Full, ""),
        ("getrlimit", sys_getrlimit, Full, ""),
        (
            "setrlimit",
            sys_setrlimit,
            Partial,
            "enforced: AS, DATA, FSIZE, NOFILE, NPROC, SIGPENDING, STACK (at exec); CPU, CORE, MEMLOCK, MSGQUEUE, NICE, RTPRIO, RTTIME, LOCKS are kept, not enforced",
        ),
        ("prlimit64", sys_prlimit64, Partial, "as setrlimit"),
        (
            "getrusage",
            sys_getrusage,
            Partial,
            "CPU times are wall time running or served (as gVisor); no fault or I/O counts",
        ),
        ("times", sys_times, Partial, "CPU times as getrusage"),
        ("ioprio_get", sys_zero, Partial, ""),
        ("ioprio_set", sys_zero, Partial, ""),
        ("getrandom", sys_getrandom, Full, ""),
        ("getuid", sys_getuid, Full, ""),
        ("geteuid", sys_geteuid, Full, ""),
        ("getgid", sys_getgid, Full, ""),
        ("getegid", sys_getegid, Full, ""),
        ("getresuid", sys_getresuid, Full, ""),
        ("getresgid", sys_getresgid, Full, ""),
        ("setuid", sys_setuid, Full, ""),
        ("setgid", sys_setgid, Full, ""),
        ("setreuid", sys_setreuid, Full, ""),
        ("setregid", sys_setregid, Full, ""),
        ("setresuid", sys_setresuid, Full, ""),
        ("setresgid", sys_setresgid, Full, ""),
        ("setfsuid", sys_setfsuid, Full, ""),
        ("setfsgid", sys_setfsgid, Full, ""),
        ("getgroups", sys_getgroups, Full, ""),
        ("setgroups", sys_setgroups, Full, ""),
        ("capget", sys_capget, Full, ""),
        ("capset", sys_capset, Full, ""),
        ("personality", sys_personality, Partial, "stored, no effect"),
        (
            "syslog",
            sys_syslog,
            Partial,
            "the sandbox's own log, read-only",
        ),
        ("sysinfo", sys_sysinfo, Full, ""),
    ]
}

pub(super) fn sys_zero(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}

// ---------- creation ----------

/// How long a clone the pids limit refused sleeps before it fails with
/// EAGAIN. Linux fails such a fork in microseconds; here every attempt is a
/// ptrace round trip, and a fork bomb's children retrying at that rate kept
/// more than a core of the host busy (host commands took seconds). The
/// pause only slows a workload that is already at its limit.
const CLONE_EAGAIN_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

/// `sys.value` of a clone sleeping off an EAGAIN.
const BACKING_OFF: u64 = u64::MAX;

/// clone, fork, vfork and clone3. With `pidfd_at`, a pidfd for the child
/// is installed (close-on-exec) and its number stored there.
pub(super) fn clone_common(
    k: &mut Kernel,
    tid: Tid,
    args: CloneArgs,
    pidfd_at: Option<u64>,
) -> SysResult<u64> {
    let vfork = args.flags & CLONE_VFORK != 0;
    let t = k.task(tid);
    if t.sys.started && t.sys.value == BACKING_OFF {
        return if t
            .sys
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            Err(Errno::EAGAIN)
        } else {
            Err(Errno::EBLOCK)
        };
    }
    if vfork && k.task(tid).sys.started {
        let t = k.task(tid);
        return if t.sys.woken {
            let child = t.sys.value;
            // PTRACE_O_TRACEVFORKDONE: a stop once the child let go.
            if let Some(p) = k.task_mut(tid).ptrace.as_mut()
                && p.options & crate::kernel::ptrace::O_TRACEVFORKDONE != 0
            {
                p.pending_event = Some((crate::kernel::ptrace::PTRACE_EVENT_VFORK_DONE, child));
            }
            Ok(child)
        } else {
            Err(Errno::EBLOCK)
        };
    }
    if let Some(at) = pidfd_at {
        // Checked before the child exists: the clone fails as a whole.
        k.task_mm(tid).borrow().write_val(at, &-1i32)?;
    }
    let child = match k.do_clone(tid, &args) {
        Err(Errno::EAGAIN) => {
            let t = k.task_mut(tid);
            t.sys.started = true;
            t.sys.value = BACKING_OFF;
            t.sys.deadline = Some(std::time::Instant::now() + CLONE_EAGAIN_BACKOFF);
            return Err(Errno::EBLOCK);
        }
        r => r?,
    };
    if let Some(at) = pidfd_at {
        let ops = Rc::new(crate::kernel::pidfd::PidFd::new(k, child)?);
        let f = crate::vfs::File::new(ops, libc::O_RDWR, None);
        let fd = super::fs::install_fd(k, tid, f, true)?;
        k.task_mm(tid).borrow().write_val(at, &(fd as i32))?;
    }
    if vfork {
        let t = k.task_mut(tid);
        t.sys.started = true;
        t.sys.value = child as u64;
        // The child may already be gone (exec/exit woke us synchronously).
        if t.sys.woken {
            return Ok(child as u64);
        }
        return Err(Errno::EBLOCK);
    }
    Ok(child as u64)
}

fn sys_clone(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[0] & !0xff;
    // CLONE_PIDFD stores the pidfd where CLONE_PARENT_SETTID would store
    // the tid: not both, and no pidfd for a thread or a detached child.
    let pidfd_at = if flags & CLONE_PIDFD != 0 {
        if flags & (CLONE_PARENT_SETTID | CLONE_THREAD | CLONE_DETACHED) != 0 {
            return Err(Errno::EINVAL);
        }
        Some(a[2])
    } else {
        None
    };
    clone_common(
        k,
        tid,
        CloneArgs {
            flags: flags & !CLONE_PIDFD,
            stack: a[1],
            parent_tid: a[2],
            child_tid: a[3],
            tls: a[4],
            exit_signal: (a[0] & 0xff) as i32,
        },
        pidfd_at,
    )
}

fn sys_fork(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    clone_common(
        k,
        tid,
        CloneArgs {
            flags: 0,
            stack: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
            exit_signal: libc::SIGCHLD,
        },
        None,
    )
}

fn sys_vfork(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    clone_common(
        k,
        tid,
        CloneArgs {
            flags: CLONE_VM | CLONE_VFORK,
            stack: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
            exit_signal: libc::SIGCHLD,
        },
        None,
    )
}

fn exec_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: u64,
    argv: u64,
    envp: u64,
    flags: i32,
) -> SysResult<u64> {
    let p = if path == 0 {
        Vec::new()
    } else {
        k.read_path(tid, path)?
    };
    // Linux opens the file before it reads the arguments: ENOENT or
    // EACCES of the file wins over EFAULT or E2BIG of the arguments.
    let opened = k.open_execve(tid, dirfd, &p, flags)?;
    let name = k.exec_name(tid, dirfd, &p);
    let stack_rlimit = k.rlimit(tid, libc::RLIMIT_STACK).rlim_cur;
    let mm = k.task_mm(tid);
    let (argv, envp) = mm
        .borrow()
        .read_exec_args(argv, envp, name.filename.len(), stack_rlimit)?;
    drop(mm);
    let argv = if argv.is_empty() {
        vec![Vec::new()]
    } else {
        argv
    };
    k.do_execve(tid, name, opened, argv, envp)
}

fn sys_execve(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    exec_common(k, tid, crate::vfs::lookup::AT_FDCWD, a[0], a[1], a[2], 0)
}

fn sys_execveat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    exec_common(k, tid, a[0] as i32, a[1], a[2], a[3], a[4] as i32)
}

// ---------- exit and wait ----------

fn sys_exit(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let g = k.group_of_mut(tid);
    if g.threads.len() == 1 && g.group_exit.is_none() {
        g.group_exit = Some(exited(a[0] as i32));
    }
    k.exit_task(tid);
    Err(Errno::ENORESUME)
}

fn sys_exit_group(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let tgid = k.task(tid).tgid;
    k.group_exit(tgid, exited(a[0] as i32));
    k.exit_task(tid);
    Err(Errno::ENORESUME)
}

fn sys_wait4(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let pid = a[0] as i32;
    let opts = a[2] as i32;
    if opts
        & !(libc::WNOHANG
            | libc::WUNTRACED
            | libc::WCONTINUED
            | libc::__WALL
            | libc::__WCLONE
            | libc::__WNOTHREAD)
        != 0
    {
        return Err(Errno::EINVAL);
    }
    let sel = match pid {
        // -INT_MIN is no process group (Linux's kernel_wait4).
        i32::MIN => return Err(Errno::ESRCH),
        -1 => WaitSel::Any,
        0 => WaitSel::Pgid(0),
        p if p < -1 => WaitSel::Pgid(-p),
        p => WaitSel::Pid(p),
    };
    match k.wait_child(tid, sel, opts | libc::WEXITED)? {
        None => Ok(0),
        Some(w) => {
            let mm = k.task_mm(tid);
            if a[1] != 0 {
                mm.borrow().write_val(a[1], &w.status)?;
            }
            if a[3] != 0 {
                mm.borrow().write_val(a[3], &rusage_of(w.cpu, 0))?;
            }
            Ok(w.pid as u64)
        }
    }
}

fn sys_waitid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let opts = a[3] as i32;
    let known = libc::WNOHANG
        | libc::WEXITED
        | libc::WSTOPPED
        | libc::WCONTINUED
        | libc::WNOWAIT
        | libc::__WNOTHREAD
        | libc::__WCLONE
        | libc::__WALL;
    if opts & !known != 0 || opts & (libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let sel = match a[0] as u32 {
        libc::P_ALL => WaitSel::Any,
        libc::P_PID => WaitSel::Pid(a[1] as i32),
        libc::P_PGID => WaitSel::Pgid(a[1] as i32),
        // P_PIDFD: the child a pidfd names.
        3 => {
            let f = super::fs::get_file(k, tid, a[1] as i32)?;
            let pidfd = f
                .ops
                .as_any()
                .downcast_ref::<crate::kernel::pidfd::PidFd>()
                .ok_or(Errno::EINVAL)?;
            if pidfd.life(k) == crate::kernel::pidfd::Life::Gone {
                return Err(Errno::ECHILD);
            }
            // A non-blocking pidfd does not wait for a running child.
            if f.nonblocking()
                && opts & libc::WNOHANG == 0
                && pidfd.life(k) == crate::kernel::pidfd::Life::Alive
            {
                return Err(Errno::EAGAIN);
            }
            WaitSel::Pid(pidfd.pid)
        }
        _ => return Err(Errno::EINVAL),
    };
    let opts2 = if opts & libc::WSTOPPED != 0 {
        opts | libc::WUNTRACED
    } else {
        opts
    };
    let r = k.wait_child(tid, sel, opts2)?;
    let mm = k.task_mm(tid);
    let mut info = crate::kernel::signal::SigInfo::new(0, 0);
    if let Some(w) = &r {
        let st = match w.code {
            crate::kernel::signal::CLD_EXITED => (w.status >> 8) & 0xff,
            crate::kernel::signal::CLD_STOPPED => (w.status >> 8) & 0xff,
            crate::kernel::signal::CLD_CONTINUED => libc::SIGCONT,
            _ => w.status & 0x7f,
        };
        info = crate::kernel::signal::SigInfo::child(w.code, k.pid_out(tid, w.pid), 0, st);
    }
    if a[2] != 0 {
        mm.borrow().write_bytes(a[2], &info.raw)?;
    }
    // The raw syscall's fifth argument: the child's resource usage.
    if a[4] != 0 {
        let cpu = r.map(|w| w.cpu).unwrap_or_default();
        mm.borrow().write_val(a[4], &rusage_of(cpu, 0))?;
    }
    Ok(0)
}

// ---------- ids ----------

fn sys_getpid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.task(tid).tgid as u64)
}

fn sys_getppid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.group_of(tid).parent as u64)
}

fn sys_gettid(_k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(tid as u64)
}

fn target_group(k: &Kernel, tid: Tid, pid: i32) -> SysResult<i32> {
    if pid == 0 {
        return Ok(k.task(tid).tgid);
    }
    match k.groups.get(&pid) {
        Some(g) if !g.is_zombie() => Ok(pid),
        _ => Err(Errno::ESRCH),
    }
}

fn sys_getpgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let p = target_group(k, tid, a[0] as i32)?;
    Ok(k.groups[&p].pgid as u64)
}

fn sys_getpgrp(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.group_of(tid).pgid as u64)
}

fn sys_setpgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let me = k.task(tid).tgid;
    let p = if a[0] == 0 { me } else { a[0] as i32 };
    let pgid = if a[1] == 0 { p } else { a[1] as i32 };
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let g = k.groups.get(&p).ok_or(Errno::ESRCH)?;
    if p != me && g.parent != me {
        return Err(Errno::ESRCH);
    }
    let my_sid = k.groups[&me].sid;
    if g.sid != my_sid || g.sid == p {
        return Err(Errno::EPERM);
    }
    if pgid != p && !k.groups.values().any(|x| x.pgid == pgid && x.sid == my_sid) {
        return Err(Errno::EPERM);
    }
    k.groups.get_mut(&p).unwrap().pgid = pgid;
    Ok(0)
}

fn sys_setsid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    let me = k.task(tid).tgid;
    // A process group leader cannot start a session.
    if k.groups[&me].pgid == me || k.groups.values().any(|g| g.pgid == me) {
        return Err(Errno::EPERM);
    }
    let g = k.groups.get_mut(&me).unwrap();
    g.sid = me;
    g.pgid = me;
    Ok(me as u64)
}

fn sys_getsid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let p = target_group(k, tid, a[0] as i32)?;
    Ok(k.groups[&p].sid as u64)
}

fn sys_set_tid_address(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    k.task_mut(tid).clear_child_tid = a[0];
    Ok(tid as u64)
}

fn sys_set_robust_list(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[1] != 24 {
        return Err(Errno::EINVAL);
    }
    k.task_mut(tid).robust_list = a[0];
    Ok(0)
}

fn sys_get_robust_list(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = if a[0] == 0 { tid } else { a[0] as i32 };
    let head = k.tasks.get(&t).ok_or(Errno::ESRCH)?.robust_list;
    let mm = k.task_mm(tid);
    mm.borrow().write_val(a[1], &head)?;
    mm.borrow().write_val(a[2], &24u64)?;
    Ok(0)
}

fn sys_arch_prctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    const SET_GS: u64 = 0x1001;
    const SET_FS: u64 = 0x1002;
    const GET_FS: u64 = 0x1003;
    const GET_GS: u64 = 0x1004;
    const GET_CPUID: u64 = 0x1011;
    const SET_CPUID: u64 = 0x1012;
    match a[0] {
        SET_FS | SET_GS => {
            if a[1] >= crate::arch::USER_END {
                return Err(Errno::EPERM);
            }
            // The systrap stub keeps GS for itself (gVisor refuses it too).
            if a[0] == SET_GS && !k.platform.workload_gs() {
                return Err(Errno::EINVAL);
            }
            let t = k.task_mut(tid);
            if a[0] == SET_FS {
                t.regs.fs_base = a[1];
            } else {
                t.regs.gs_base = a[1];
            }
            Ok(0)
        }
        GET_FS | GET_GS => {
            let t = k.task(tid);
            let v = if a[0] == GET_FS {
                t.regs.fs_base
            } else {
                t.regs.gs_base
            };
            k.task_mm(tid).borrow().write_val(a[1], &v)?;
            Ok(0)
        }
        GET_CPUID => Ok(1),
        SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_prctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let mut name = k
                .task_mm(tid)
                .borrow()
                .read_vec(a[1], 16)
                .or_else(|_| k.task_mm(tid).borrow().read_cstr(a[1], 4096))?;
            if let Some(z) = name.iter().position(|b| *b == 0) {
                name.truncate(z);
            }
            name.truncate(15);
            k.task_mut(tid).comm = name;
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let mut n = k.task(tid).comm.clone();
            n.resize(16, 0);
            k.task_mm(tid).borrow().write_bytes(a[1], &n)?;
            Ok(0)
        }
        libc::PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            k.task_mut(tid).pdeath_signal = a[1] as i32;
            Ok(0)
        }
        libc::PR_SET_TIMERSLACK | libc::PR_SET_THP_DISABLE | libc::PR_MCE_KILL => Ok(0),
        libc::PR_GET_PDEATHSIG => {
            let sig = k.task(tid).pdeath_signal;
            k.task_mm(tid).borrow().write_val(a[1], &sig)?;
            Ok(0)
        }
        libc::PR_GET_TIMERSLACK => Ok(50_000),
        libc::PR_GET_THP_DISABLE => Ok(0),
        libc::PR_SET_DUMPABLE => {
            if a[1] > 1 {
                return Err(Errno::EINVAL);
            }
            k.group_of_mut(tid).dumpable = a[1] == 1;
            Ok(0)
        }
        libc::PR_GET_DUMPABLE => Ok(k.group_of(tid).dumpable as u64),
        libc::PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 {
                return Err(Errno::EINVAL);
            }
            k.group_of_mut(tid).cred.no_new_privs = true;
            Ok(0)
        }
        libc::PR_GET_NO_NEW_PRIVS => Ok(k.group_of(tid).cred.no_new_privs as u64),
        libc::PR_GET_SECCOMP => Ok(0),
        libc::PR_SET_SECCOMP => Err(Errno::EINVAL),
        libc::PR_SET_CHILD_SUBREAPER => {
            k.group_of_mut(tid).subreaper = a[1] != 0;
            Ok(0)
        }
        libc::PR_GET_CHILD_SUBREAPER => {
            let v = k.group_of(tid).subreaper as i32;
            k.task_mm(tid).borrow().write_val(a[1], &v)?;
            Ok(0)
        }
        libc::PR_CAPBSET_READ => {
            if a[1] > 63 {
                return Err(Errno::EINVAL);
            }
            Ok((k.cred(tid).cap_bounding >> a[1]) & 1)
        }
        libc::PR_CAPBSET_DROP => {
            let c = &mut k.group_of_mut(tid).cred;
            if !c.capable(cap::SETPCAP) {
                return Err(Errno::EPERM);
            }
            c.cap_bounding &= !(1u64 << (a[1] & 63));
            Ok(0)
        }
        libc::PR_GET_KEEPCAPS => Ok(0),
        libc::PR_SET_KEEPCAPS => Ok(0),
        libc::PR_CAP_AMBIENT => match a[1] as i32 {
            libc::PR_CAP_AMBIENT_IS_SET => Ok((k.cred(tid).cap_ambient >> (a[2] & 63)) & 1),
            libc::PR_CAP_AMBIENT_CLEAR_ALL => {
                k.group_of_mut(tid).cred.cap_ambient = 0;
                Ok(0)
            }
            _ => Err(Errno::EPERM),
        },
        0x5356_4d41 => Ok(0), // PR_SET_VMA (naming anonymous memory)
        libc::PR_GET_TID_ADDRESS => {
            let v = k.task(tid).clear_child_tid;
            k.task_mm(tid).borrow().write_val(a[1], &v)?;
            Ok(0)
        }
        libc::PR_SET_MM => Err(Errno::EPERM),
        crate::kernel::yama::PR_SET_PTRACER => k.set_ptracer(tid, a[1]).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

// ---------- identity ----------

fn field(s: &[u8]) -> [u8; 65] {
    let mut f = [0u8; 65];
    let n = s.len().min(64);
    f[..n].copy_from_slice(&s[..n]);
    f
}

fn sys_uname(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mut buf = Vec::with_capacity(65 * 6);
    for s in [
        identity::SYSNAME.as_bytes(),
        &k.hostname,
        identity::RELEASE.as_bytes(),
        identity::VERSION.as_bytes(),
        identity::MACHINE.as_bytes(),
        &k.domainname,
    ] {
        buf.extend_from_slice(&field(s));
    }
    k.task_mm(tid).borrow().write_bytes(a[0], &buf)?;
    Ok(0)
}

fn set_name(k: &mut Kernel, tid: Tid, a: [u64; 6], host: bool) -> SysResult<u64> {
    if !k.cred(tid).capable(cap::SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if a[1] > 64 {
        return Err(Errno::EINVAL);
    }
    let v = k.task_mm(tid).borrow().read_vec(a[0], a[1] as usize)?;
    if host {
        k.hostname = v;
    } else {
        k.domainname = v;
    }
    Ok(0)
}

fn sys_sethostname(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    set_name(k, tid, a, true)
}

fn sys_setdomainname(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    set_name(k, tid, a, false)
}

fn sys_sysinfo(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    si.uptime = k.uptime().as_secs() as i64;
    let (total, free) = crate::vfs::procfs::memory(k);
    si.totalram = total;
    si.freeram = free;
    si.procs = k.tasks.len() as u16;
    si.mem_unit = 1;
    k.task_mm(tid).borrow().write_val(a[0], &si)?;
    Ok(0)
}

fn sys_syslog(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let text = k.syslog.render();
    match a[0] {
        // READ, READ_ALL
        2 | 3 => {
            let n = text.len().min(a[2] as usize);
            let start = text.len() - n;
            k.task_mm(tid)
                .borrow()
                .write_bytes(a[1], &text.as_bytes()[start..])?;
            Ok(n as u64)
        }
        // SIZE_UNREAD, SIZE_BUFFER
        9 | 10 => Ok(text.len() as u64),
        // CLOSE, OPEN
        0 | 1 => Ok(0),
        _ => Err(Errno::EPERM),
    }
}

// ---------- limits ----------

fn rlimit_res(r: u64) -> SysResult<usize> {
    if r >= 16 {
        Err(Errno::EINVAL)
    } else {
        Ok(r as usize)
    }
}

fn sys_getrlimit(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let r = rlimit_res(a[0])?;
    let v = k.group_of(tid).rlimits[r];
    k.task_mm(tid).borrow().write_val(a[1], &v)?;
    Ok(0)
}

fn set_limit(k: &mut Kernel, tid: Tid, target: i32, r: usize, new: libc::rlimit) -> SysResult<()> {
    if new.rlim_cur > new.rlim_max {
        return Err(Errno::EINVAL);
    }
    let c = k.cred(tid);
    let g = k.groups.get_mut(&target).ok_or(Errno::ESRCH)?;
    let old = g.rlimits[r];
    if new.rlim_max > old.rlim_max && !c.capable(cap::SYS_RESOURCE) {
        return Err(Errno::EPERM);
    }
    if r == libc::RLIMIT_NOFILE as usize && new.rlim_max > 1 << 20 {
        return Err(Errno::EPERM);
    }
    g.rlimits[r] = new;
    Ok(())
}

fn sys_setrlimit(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let r = rlimit_res(a[0])?;
    let new: libc::rlimit = k.task_mm(tid).borrow().read_val(a[1])?;
    let me = k.task(tid).tgid;
    set_limit(k, tid, me, r, new)?;
    Ok(0)
}

fn sys_prlimit64(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let target = target_group(k, tid, a[0] as i32)?;
    let r = rlimit_res(a[1])?;
    let old = k.groups[&target].rlimits[r];
    if a[2] != 0 {
        let new: libc::rlimit = k.task_mm(tid).borrow().read_val(a[2])?;
        set_limit(k, tid, target, r, new)?;
    }
    if a[3] != 0 {
        k.task_mm(tid).borrow().write_val(a[3], &old)?;
    }
    Ok(0)
}

/// A struct rusage with these times (and max RSS in KiB).
fn rusage_of(t: Times, maxrss_kib: i64) -> libc::rusage {
    // SAFETY: rusage is plain data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let tv = |d: std::time::Duration| libc::timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: d.subsec_micros() as i64,
    };
    ru.ru_utime = tv(t.user);
    ru.ru_stime = tv(t.sys);
    ru.ru_maxrss = maxrss_kib;
    ru
}

fn sys_getrusage(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let tgid = k.task(tid).tgid;
    let times = match a[0] as i32 {
        libc::RUSAGE_SELF => k.process_cpu(tgid),
        libc::RUSAGE_CHILDREN => k.children_cpu(tgid),
        libc::RUSAGE_THREAD => k.thread_cpu(tid),
        _ => return Err(Errno::EINVAL),
    };
    let rss = if a[0] as i32 == libc::RUSAGE_CHILDREN {
        0
    } else {
        (k.task(tid).mm.borrow().mapped_bytes() / 1024) as i64
    };
    k.task_mm(tid)
        .borrow()
        .write_val(a[1], &rusage_of(times, rss))?;
    Ok(0)
}

/// Clock ticks (USER_HZ, 100 a second).
fn ticks(d: std::time::Duration) -> i64 {
    (d.as_millis() / 10) as i64
}

fn sys_times(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[0] != 0 {
        let tgid = k.task(tid).tgid;
        let me = k.process_cpu(tgid);
        let ch = k.children_cpu(tgid);
        let tms = libc::tms {
            tms_utime: ticks(me.user),
            tms_stime: ticks(me.sys),
            tms_cutime: ticks(ch.user),
            tms_cstime: ticks(ch.sys),
        };
        k.task_mm(tid).borrow().write_val(a[0], &tms)?;
    }
    Ok((k.uptime().as_millis() / 10) as u64 + 100_000)
}

fn sys_getrandom(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let n = (a[1] as usize).min(33_554_431);
    let mut buf = vec![0u8; n];
    crate::kernel::random::fill(&mut buf);
    k.task_mm(tid).borrow().write_bytes(a[0], &buf)?;
    Ok(n as u64)
}

// ---------- credentials ----------

fn sys_getuid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.cred(tid).uid as u64)
}
fn sys_geteuid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.cred(tid).euid as u64)
}
fn sys_getgid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.cred(tid).gid as u64)
}
fn sys_getegid(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(k.cred(tid).egid as u64)
}

fn put3(k: &Kernel, tid: Tid, a: [u64; 6], v: [u32; 3]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    for (i, x) in v.iter().enumerate() {
        mm.borrow().write_val(a[i], x)?;
    }
    Ok(0)
}

fn sys_getresuid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let c = k.cred(tid);
    put3(k, tid, a, [c.uid, c.euid, c.suid])
}

fn sys_getresgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let c = k.cred(tid);
    put3(k, tid, a, [c.gid, c.egid, c.sgid])
}

/// Capability changes that follow uid changes (Linux's cap_emulate_setxuid).
fn fix_caps(c: &mut crate::vfs::perm::Cred, old: (u32, u32, u32)) {
    let was_root = old.0 == 0 || old.1 == 0 || old.2 == 0;
    let now_root = c.uid == 0 || c.euid == 0 || c.suid == 0;
    if was_root && !now_root {
        c.cap_permitted = 0;
        c.cap_effective = 0;
        c.cap_ambient = 0;
    }
    if old.1 == 0 && c.euid != 0 {
        c.cap_effective = 0;
    }
    if old.1 != 0 && c.euid == 0 {
        c.cap_effective = c.cap_permitted;
    }
}

fn set_uids(
    k: &mut Kernel,
    tid: Tid,
    r: Option<u32>,
    e: Option<u32>,
    s: Option<u32>,
) -> SysResult<u64> {
    let before = k.cred(tid);
    let r = set_uids_inner(k, tid, r, e, s);
    k.creds_committed(tid, &before);
    r
}

fn set_uids_inner(
    k: &mut Kernel,
    tid: Tid,
    r: Option<u32>,
    e: Option<u32>,
    s: Option<u32>,
) -> SysResult<u64> {
    let c = &mut k.group_of_mut(tid).cred;
    let allowed = |x: u32| x == c.uid || x == c.euid || x == c.suid;
    if !c.capable(cap::SETUID) && [r, e, s].iter().flatten().any(|x| !allowed(*x)) {
        return Err(Errno::EPERM);
    }
    let old = (c.uid, c.euid, c.suid);
    if let Some(x) = r {
        c.uid = x;
    }
    if let Some(x) = e {
        c.euid = x;
    }
    if let Some(x) = s {
        c.suid = x;
    }
    c.fsuid = c.euid;
    fix_caps(c, old);
    Ok(0)
}

fn set_gids(
    k: &mut Kernel,
    tid: Tid,
    r: Option<u32>,
    e: Option<u32>,
    s: Option<u32>,
) -> SysResult<u64> {
    let before = k.cred(tid);
    let r = set_gids_inner(k, tid, r, e, s);
    k.creds_committed(tid, &before);
    r
}

fn set_gids_inner(
    k: &mut Kernel,
    tid: Tid,
    r: Option<u32>,
    e: Option<u32>,
    s: Option<u32>,
) -> SysResult<u64> {
    let c = &mut k.group_of_mut(tid).cred;
    let allowed = |x: u32| x == c.gid || x == c.egid || x == c.sgid;
    if !c.capable(cap::SETGID) && [r, e, s].iter().flatten().any(|x| !allowed(*x)) {
        return Err(Errno::EPERM);
    }
    if let Some(x) = r {
        c.gid = x;
    }
    if let Some(x) = e {
        c.egid = x;
    }
    if let Some(x) = s {
        c.sgid = x;
    }
    c.fsgid = c.egid;
    Ok(0)
}

fn opt(v: u64) -> Option<u32> {
    (v as u32 != u32::MAX).then_some(v as u32)
}

fn sys_setuid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let u = a[0] as u32;
    if k.cred(tid).capable(cap::SETUID) {
        set_uids(k, tid, Some(u), Some(u), Some(u))
    } else {
        set_uids(k, tid, None, Some(u), None)
    }
}

fn sys_setgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let g = a[0] as u32;
    if k.cred(tid).capable(cap::SETGID) {
        set_gids(k, tid, Some(g), Some(g), Some(g))
    } else {
        set_gids(k, tid, None, Some(g), None)
    }
}

fn sys_setreuid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (r, e) = (opt(a[0]), opt(a[1]));
    let s = if r.is_some() || e.is_some_and(|e| e != k.cred(tid).uid) {
        e.or(Some(k.cred(tid).euid))
    } else {
        None
    };
    set_uids(k, tid, r, e, s)
}

fn sys_setregid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (r, e) = (opt(a[0]), opt(a[1]));
    let s = if r.is_some() || e.is_some_and(|e| e != k.cred(tid).gid) {
        e.or(Some(k.cred(tid).egid))
    } else {
        None
    };
    set_gids(k, tid, r, e, s)
}

fn sys_setresuid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    set_uids(k, tid, opt(a[0]), opt(a[1]), opt(a[2]))
}

fn sys_setresgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    set_gids(k, tid, opt(a[0]), opt(a[1]), opt(a[2]))
}

fn sys_setfsuid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let before = k.cred(tid);
    let c = &mut k.group_of_mut(tid).cred;
    let old = c.fsuid;
    let u = a[0] as u32;
    if u == c.uid || u == c.euid || u == c.suid || u == c.fsuid || c.capable(cap::SETUID) {
        c.fsuid = u;
    }
    k.creds_committed(tid, &before);
    Ok(old as u64)
}

fn sys_setfsgid(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let before = k.cred(tid);
    let c = &mut k.group_of_mut(tid).cred;
    let old = c.fsgid;
    let g = a[0] as u32;
    if g == c.gid || g == c.egid || g == c.sgid || g == c.fsgid || c.capable(cap::SETGID) {
        c.fsgid = g;
    }
    k.creds_committed(tid, &before);
    Ok(old as u64)
}

fn sys_getgroups(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let g = k.cred(tid).groups;
    if a[0] == 0 {
        return Ok(g.len() as u64);
    }
    if (a[0] as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = g.iter().flat_map(|x| x.to_ne_bytes()).collect();
    k.task_mm(tid).borrow().write_bytes(a[1], &bytes)?;
    Ok(g.len() as u64)
}

fn sys_setgroups(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !k.cred(tid).capable(cap::SETGID) {
        return Err(Errno::EPERM);
    }
    if a[0] > 65536 {
        return Err(Errno::EINVAL);
    }
    let v: Vec<u32> = k.task_mm(tid).borrow().read_vals(a[1], a[0] as usize)?;
    k.group_of_mut(tid).cred.groups = v;
    Ok(0)
}

fn sys_capget(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let hdr: [u32; 2] = mm.borrow().read_val(a[0])?;
    const V3: u32 = 0x2008_0522;
    const V2: u32 = 0x2007_1026;
    const V1: u32 = 0x1998_0330;
    if ![V1, V2, V3].contains(&hdr[0]) {
        mm.borrow().write_val(a[0], &[V3, hdr[1]])?;
        return if a[1] == 0 { Ok(0) } else { Err(Errno::EINVAL) };
    }
    if a[1] == 0 {
        return Ok(0);
    }
    let target = if hdr[1] == 0 { tid } else { hdr[1] as i32 };
    let tg = k.tasks.get(&target).ok_or(Errno::ESRCH)?.tgid;
    let c = k.groups[&tg].cred.clone();
    let words = if hdr[0] == V1 { 1 } else { 2 };
    let mut out = Vec::new();
    for i in 0..words {
        let sh = 32 * i;
        out.extend_from_slice(&((c.cap_effective >> sh) as u32).to_ne_bytes());
        out.extend_from_slice(&((c.cap_permitted >> sh) as u32).to_ne_bytes());
        out.extend_from_slice(&((c.cap_inheritable >> sh) as u32).to_ne_bytes());
    }
    mm.borrow().write_bytes(a[1], &out)?;
    Ok(0)
}

fn sys_capset(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let hdr: [u32; 2] = mm.borrow().read_val(a[0])?;
    if hdr[1] != 0 && hdr[1] as i32 != k.task(tid).tgid && hdr[1] as i32 != tid {
        return Err(Errno::EPERM);
    }
    let words = if hdr[0] == 0x1998_0330 { 1 } else { 2 };
    let d: Vec<u32> = mm.borrow().read_vals(a[1], 3 * words)?;
    let get = |j: usize| -> u64 {
        let mut v = 0u64;
        for i in 0..words {
            v |= (d[i * 3 + j] as u64) << (32 * i);
        }
        v
    };
    let (eff, perm, inh) = (get(0), get(1), get(2));
    let c = &mut k.group_of_mut(tid).cred;
    if perm & !c.cap_permitted != 0 || eff & !perm != 0 {
        return Err(Errno::EPERM);
    }
    if inh & !(c.cap_inheritable | c.cap_permitted) != 0 && !c.capable(cap::SETPCAP) {
        return Err(Errno::EPERM);
    }
    c.cap_effective = eff;
    c.cap_permitted = perm;
    c.cap_inheritable = inh & c.cap_bounding;
    Ok(0)
}

fn sys_personality(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let g = k.group_of_mut(tid);
    let old = g.personality;
    if a[0] as u32 != 0xffff_ffff {
        g.personality = a[0] as u32;
    }
    Ok(old as u64)
}
