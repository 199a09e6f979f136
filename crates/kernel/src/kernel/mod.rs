//! The kernel proper: tasks, thread groups, the virtual pid namespace,
//! signals, futexes, timers, and the event loop that serves every stop of
//! every workload thread.

pub mod boot;
pub mod clone;
pub mod control;
pub mod control_proto;
pub mod cpu_itimer;
pub mod cputime;
pub mod creds;
pub mod deliver;
pub mod exec;
pub mod exit;
pub mod fasync;
pub mod filemap;
pub mod futex;
pub mod futex_pi;
pub mod identity;
mod lean;
pub mod limits;
pub mod netstack;
pub mod packet_link;
pub mod pidfd;
pub mod pidns;
pub mod pod;
pub mod poller;
pub mod ptrace;
pub mod random;
pub mod run;
pub mod signal;
pub mod task;
pub mod timer;
pub mod ttysig;
pub mod usertrap;
pub mod waitq;
pub mod yama;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Instant;

use crate::errno::{Errno, SysResult};
use crate::mm::{AddressSpace, MemoryFile};
use crate::platform::AnyPlatform;
use crate::platform::ThreadId;
use crate::vfs::perm::Cred;
use crate::vfs::pipe::FifoTable;
use crate::vfs::{FileOps, MountTable};

pub use boot::SandboxConfig;
pub use task::{Task, TaskState, ThreadGroup};

/// A thread id in the sandbox's pid namespace.
pub type Tid = i32;
/// A process (thread group) id in the sandbox's pid namespace.
pub type Pid = i32;

/// Highest pid before wrapping (Linux's default pid_max).
pub const PID_MAX: Pid = 4_194_304;

/// Counters the sandbox reports (metrics, audit, compatibility work).
#[derive(Default)]
pub struct Stats {
    pub syscalls: u64,
    /// Unimplemented syscalls the workload tried: number → count.
    pub enosys: BTreeMap<u64, u64>,
    /// Refused (dangerous) syscalls: number → count.
    pub refused: BTreeMap<u64, u64>,
}

pub struct Kernel {
    pub platform: AnyPlatform,
    pub mf: Rc<MemoryFile>,
    pub tasks: BTreeMap<Tid, Task>,
    /// Looked up on every stop: foldhash (seeded per map), not SipHash;
    /// the host assigns its keys.
    pub host_tids: HashMap<ThreadId, Tid, foldhash::fast::RandomState>,
    pub groups: BTreeMap<Pid, ThreadGroup>,
    /// Per pid namespace: where the next pid search starts (pidns.rs).
    next_pids: HashMap<u32, Pid>,
    pub mounts: RefCell<MountTable>,
    pub fifos: FifoTable,
    /// The container's terminal, if it has one (/dev/tty, /dev/console).
    pub console: Option<Rc<dyn FileOps>>,
    pub poller: poller::Poller,
    pub timers: timer::Timers,
    pub futexes: futex::Futexes,
    pub tty_pgrp: Cell<i32>,
    pub hostname: Vec<u8>,
    pub domainname: Vec<u8>,
    pub syslog: identity::Syslog,
    pub config: SandboxConfig,
    pub stats: Stats,
    /// Wait status of the workload's init once it has exited.
    pub init_status: Option<i32>,
    pub boot_time: Instant,
    /// When the kernel last finished serving a syscall (read for the CPU
    /// account): the run loop's clock for that round, which then needs
    /// no read of its own. Taken by the loop.
    pub served_at: Option<Instant>,
    /// Host signals to forward to the workload's init.
    pub signal_fd: i32,
    pub log: boot::SandboxLog,
    /// The task whose syscall is being served (for /proc/self).
    pub current: Cell<Tid>,
    /// Listening control socket, if atoll gave one.
    pub control_fd: Option<i32>,
    /// Connections of processes started by `atoll exec`, by pid.
    pub exec_conns: HashMap<Pid, i32>,
    /// The pod's other containers, when this sandbox is a pod's.
    pub pod: pod::Pod,
    /// The gofer, kept for the whole sandbox: its exit ends the sandbox,
    /// and mounts it could not donate for direct access go through it.
    pub gofer: Rc<dyn atoll_gofer::FileService>,
    /// The sandbox's own TCP/IP stack (`--network sandbox`); None when
    /// AF_INET sockets are host sockets.
    pub netstack: Option<Rc<netstack::NetStack>>,
}

impl Kernel {
    pub fn task(&self, tid: Tid) -> &Task {
        self.tasks.get(&tid).expect("task exists")
    }

    pub fn task_mut(&mut self, tid: Tid) -> &mut Task {
        self.tasks.get_mut(&tid).expect("task exists")
    }

    pub fn task_mm(&self, tid: Tid) -> Rc<RefCell<AddressSpace>> {
        self.task(tid).mm.clone()
    }

    pub fn group_of(&self, tid: Tid) -> &ThreadGroup {
        let tgid = self.task(tid).tgid;
        self.groups.get(&tgid).expect("group exists")
    }

    pub fn group_of_mut(&mut self, tid: Tid) -> &mut ThreadGroup {
        let tgid = self.task(tid).tgid;
        self.groups.get_mut(&tgid).expect("group exists")
    }

    pub fn cred(&self, tid: Tid) -> Cred {
        self.group_of(tid).cred.clone()
    }

    pub fn rlimit(&self, tid: Tid, res: u32) -> libc::rlimit {
        self.group_of(tid).rlimits[res as usize]
    }

    /// Tasks of the pid namespace, for /proc and ps.
    pub fn pids(&self) -> Vec<Pid> {
        self.groups
            .values()
            .filter(|g| !g.is_zombie())
            .map(|g| g.tgid)
            .collect()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.boot_time.elapsed()
    }

    /// The seccomp profile of `tid`'s container: the sandbox spec's, or a
    /// pod container's own.
    fn seccomp_of(&self, tid: Tid) -> Option<&crate::seccomp::Profile> {
        if self.pod.containers.is_empty() {
            return self.config.seccomp.as_ref();
        }
        match self.group_of(tid).container {
            0 => self.config.seccomp.as_ref(),
            n => self.pod.containers.get(&n)?.config.seccomp.as_ref(),
        }
    }

    /// Whether `tid`'s spec gave it a seccomp profile (shown as
    /// "Seccomp: 2" in /proc, as it would be natively).
    pub fn has_seccomp(&self, tid: Tid) -> bool {
        self.seccomp_of(tid).is_some()
    }

    /// Applies the spec's seccomp profile to a workload syscall: None to
    /// go on, Some(result) when the profile decides.
    pub fn seccomp_check(&mut self, tid: Tid, nr: u64, args: &[u64; 6]) -> Option<SysResult<u64>> {
        let action = self.seccomp_of(tid)?.evaluate(nr, args);
        match action {
            crate::seccomp::Action::Allow => None,
            crate::seccomp::Action::Errno(e) => Some(Err(Errno(e as i32))),
            crate::seccomp::Action::Log => {
                let line = format!(
                    "seccomp log: pid {tid} syscall {}",
                    crate::syscalls::name(nr)
                );
                self.log.line(&line);
                None
            }
            crate::seccomp::Action::Kill => {
                let tgid = self.task(tid).tgid;
                self.log.line(&format!(
                    "seccomp: killed pid {tid} on syscall {}",
                    crate::syscalls::name(nr)
                ));
                self.group_exit(tgid, libc::SIGSYS | 0x80);
                self.exit_task(tid);
                Some(Err(Errno::ENORESUME))
            }
            crate::seccomp::Action::Trap => {
                let mut info = signal::SigInfo::new(libc::SIGSYS, 1 /* SYS_SECCOMP */);
                info.raw[24..28].copy_from_slice(&(nr as i32).to_ne_bytes());
                let _ = self.send_task(tid, info);
                Some(Err(Errno::ENOSYS))
            }
        }
    }
}
