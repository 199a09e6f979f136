//! Tasks (threads) and thread groups (processes).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::signal::{AltStack, SigHandlers, SigQueue, SigSet};
use super::waitq::WaitQueue;
use super::{Pid, Tid};
use crate::arch::Regs;
use crate::mm::AddressSpace;
use crate::platform::ThreadId;
use crate::vfs::perm::Cred;
use crate::vfs::{Dentry, FdTable};

/// Root and working directory, umask: shared by CLONE_FS threads.
#[derive(Clone)]
pub struct FsContext {
    pub root: Rc<Dentry>,
    pub cwd: Rc<Dentry>,
    pub umask: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Running workload code (the platform thread is not stopped).
    Running,
    /// Stopped in the kernel (a syscall or fault being handled).
    InKernel,
    /// Sleeping in a syscall; re-run when woken.
    Blocked,
    /// Stopped by job control (SIGSTOP).
    JobStopped,
    /// In a ptrace stop: parked until its tracer resumes it (ptrace.rs).
    Traced,
}

/// Per-syscall scratch state that survives re-runs of a blocked syscall.
#[derive(Clone, Default, Debug)]
pub struct SyscallState {
    pub deadline: Option<Instant>,
    /// Set by whoever woke the task for the event it waited for (futex wake).
    pub woken: bool,
    pub started: bool,
    pub value: u64,
    /// Bytes a blocking transfer has already moved: when a signal comes,
    /// the syscall returns this count instead of being interrupted.
    pub done: Option<u64>,
    /// The file the syscall's descriptor named when it started: a syscall
    /// that sleeps keeps using it (and keeps it open) even if the
    /// descriptor is closed or replaced meanwhile, as Linux's fdget holds
    /// the file for the whole call.
    pub file: PinnedFile,
}

/// A file held by a syscall in progress (see [`SyscallState::file`]).
#[derive(Clone, Default)]
pub struct PinnedFile(pub std::cell::RefCell<Option<(i32, Rc<crate::vfs::File>)>>);

impl std::fmt::Debug for PinnedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0.borrow() {
            Some((fd, _)) => write!(f, "PinnedFile({fd})"),
            None => write!(f, "PinnedFile(None)"),
        }
    }
}

pub struct Task {
    pub tid: Tid,
    pub tgid: Pid,
    pub host: ThreadId,
    pub regs: Regs,
    /// rbx, rbp and r12-r15 in `regs` may be stale: the last stop left
    /// them in the platform (`Kernel::callee_saved` fetches them).
    pub callee_partial: bool,
    pub mm: Rc<RefCell<AddressSpace>>,
    pub files: Rc<RefCell<FdTable>>,
    pub fs: Rc<RefCell<FsContext>>,
    pub sighand: Rc<RefCell<SigHandlers>>,
    pub sigmask: SigSet,
    /// Mask to restore after the handler of a sigsuspend/ppoll/pselect.
    pub saved_mask: Option<SigSet>,
    pub pending: SigQueue,
    /// Signals a sigtimedwait is waiting for (they wake it though blocked).
    pub sigwait: SigSet,
    pub altstack: AltStack,
    pub state: TaskState,
    pub clear_child_tid: u64,
    pub robust_list: u64,
    /// Syscall being served while Blocked: number and arguments.
    pub blocked_on: Option<(u64, [u64; 6])>,
    pub sys: SyscallState,
    /// The last syscall returned an ERESTART* code (restart or EINTR
    /// is decided when returning to user mode).
    pub restart: Option<crate::errno::Errno>,
    /// Parent task sleeping in vfork until this task execs or exits.
    pub vfork_parent: Option<Tid>,
    pub comm: Vec<u8>,
    /// Exit in progress (exit_group, fatal signal): status to report.
    pub exiting: bool,
    pub cpu_time: super::cputime::TaskCpu,
    pub started: Instant,
    /// Set while another task traces this one.
    pub ptrace: Option<Box<super::ptrace::Tracee>>,
    /// PR_SET_PDEATHSIG: sent to this task's process when the thread that
    /// created it (its parent thread) exits; 0 for none.
    pub pdeath_signal: i32,
}

pub struct ExitStatus {
    /// wait status word (as waitpid returns it).
    pub status: i32,
}

pub struct ThreadGroup {
    pub tgid: Pid,
    pub parent: Pid,
    /// The thread of the parent that created it (Linux's real_parent is
    /// a thread): __WNOTHREAD waits and PR_SET_PDEATHSIG go by it.
    pub parent_thread: Tid,
    pub pgid: Pid,
    pub sid: Pid,
    pub threads: Vec<Tid>,
    pub children: Vec<Pid>,
    pub cred: Cred,
    pub rlimits: [libc::rlimit; 16],
    pub shared_pending: SigQueue,
    pub exit_signal: i32,
    /// exit_group or fatal signal: the wait status every thread exits with.
    pub group_exit: Option<i32>,
    /// All threads gone: the wait status, until the parent reaps it.
    pub zombie: Option<i32>,
    /// Job control: stopped, and whether the parent was told.
    pub stopped: bool,
    pub stop_report: Option<i32>,
    /// The signal of the current group stop (ptrace reports it).
    pub stop_sig: i32,
    pub continued_report: bool,
    /// Exited tracees of this process's tasks not yet waited for.
    pub traced_exits: Vec<super::ptrace::TracedExit>,
    /// Its exit waits for its tracer's wait before the parent hears of it.
    pub ptrace_held: bool,
    /// The leader exited while traced: the tracer then (ptrace.rs).
    pub leader_tracer: Option<Tid>,
    /// Tasks of the parent waiting for this group to change state are
    /// registered on the parent's queue.
    pub child_waitq: Rc<WaitQueue>,
    pub exe: Vec<u8>,
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    pub start: Instant,
    /// CPU time of exited threads and reaped children.
    pub children_cpu: super::cputime::GroupCpu,
    pub personality: u32,
    pub subreaper: bool,
    pub dumpable: bool,
    /// Yama's PR_SET_PTRACER exception (not inherited by fork).
    pub ptracer: Option<super::yama::Ptracer>,
    pub itimer_real_interval: std::time::Duration,
    /// ITIMER_VIRTUAL and ITIMER_PROF (not inherited across fork).
    pub cpu_itimers: [super::cpu_itimer::CpuItimer; 2],
    pub posix_timers: std::collections::BTreeMap<i32, PosixTimer>,
    /// The pod container the process belongs to (0: the sandbox's own);
    /// inherited by its children.
    pub container: u32,
}

/// A timer_create timer.
#[derive(Clone, Debug)]
pub struct PosixTimer {
    pub clock: i32,
    pub signo: i32,
    pub value: u64,
    pub target_tid: Option<Tid>,
    pub interval: std::time::Duration,
    pub overrun: i32,
}

impl ThreadGroup {
    pub fn is_zombie(&self) -> bool {
        self.zombie.is_some()
    }
}

/// Default rlimits of a sandbox (overridden by the spec's).
pub fn default_rlimits() -> [libc::rlimit; 16] {
    let inf = libc::RLIM_INFINITY;
    let mut r = [libc::rlimit {
        rlim_cur: inf,
        rlim_max: inf,
    }; 16];
    r[libc::RLIMIT_STACK as usize] = libc::rlimit {
        rlim_cur: 8 << 20,
        rlim_max: inf,
    };
    r[libc::RLIMIT_NOFILE as usize] = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 4096,
    };
    r[libc::RLIMIT_CORE as usize] = libc::rlimit {
        rlim_cur: 0,
        rlim_max: inf,
    };
    r[libc::RLIMIT_MEMLOCK as usize] = libc::rlimit {
        rlim_cur: 8 << 20,
        rlim_max: 8 << 20,
    };
    r[libc::RLIMIT_NPROC as usize] = libc::rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    r[libc::RLIMIT_SIGPENDING as usize] = libc::rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    r[libc::RLIMIT_MSGQUEUE as usize] = libc::rlimit {
        rlim_cur: 819200,
        rlim_max: 819200,
    };
    // As Linux's init: no nice value below 0 and no realtime priority
    // without CAP_SYS_NICE.
    for res in [libc::RLIMIT_NICE, libc::RLIMIT_RTPRIO] {
        r[res as usize] = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
    }
    r
}
