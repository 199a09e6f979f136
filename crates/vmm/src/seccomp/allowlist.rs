//! The host syscalls each VMM thread may make once the guest runs, with
//! argument restrictions and the reason for each. Everything a thread
//! needs before the guest runs (opening /dev/kvm, creating the VM and its
//! vCPUs, mapping guest RAM, loading the kernel, opening the shared root)
//! is done before the filters go in, so none of it is here: no thread
//! opens a path by name except the file server's (a process of its own),
//! none creates a process, none makes a KVM ioctl other than `KVM_RUN`.

/// One condition on a syscall argument (its low 32 bits: every argument
/// restricted here is an int, flag word or request number).
#[derive(Clone, Debug)]
pub enum Cond {
    /// `arg == value`
    Eq(u8, u64, &'static str),
    /// `arg & mask == 0`
    Clear(u8, u64, &'static str),
    /// `arg & mask == mask`
    Set(u8, u64, &'static str),
}

/// An allowed syscall: any one of `rules` (each a conjunction of
/// conditions) must hold; no rules means any arguments.
#[derive(Clone, Debug)]
pub struct Allowed {
    pub name: &'static str,
    pub nr: i64,
    pub rules: Vec<Vec<Cond>>,
    pub why: &'static str,
}

/// The thread roles of the VMM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Vmm,
    Vcpu,
    Vsock,
    Fs,
    Net,
    /// The file server process (every one of its threads).
    FsServer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Vmm,
        Role::Vcpu,
        Role::Vsock,
        Role::Fs,
        Role::Net,
        Role::FsServer,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Role::Vmm => "VMM thread",
            Role::Vcpu => "vCPU threads",
            Role::Vsock => "vsock device thread",
            Role::Fs => "virtio-fs device thread (vhost-user frontend)",
            Role::Net => "virtio-net device thread",
            Role::FsServer => "virtio-fs file server process (vhost-user backend), every thread",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Role::Vmm => {
                "The container's init thread once the guest runs: it talks to the guest agent \
                 over the in-process vsock connector, relays the guest process's stdio and the \
                 signals the init receives (a signalfd), and exits with the guest process's \
                 status."
            }
            Role::Vcpu => {
                "Runs the guest: `KVM_RUN` is its only ioctl. Exits for the serial port and the \
                 virtio-mmio register windows are handled here; queue kicks never reach it \
                 (ioeventfds), and a device is handed its queues over a channel."
            }
            Role::Vsock => {
                "Serves the vsock queues: guest packets to and from host Unix streams (`atoll \
                 exec` connecting to the VM's socket, the VMM thread's own session)."
            }
            Role::Fs => {
                "Hands the virtio-fs queues to the file server process when the driver sets \
                 them up (vhost-user messages on the socket to it: the queues' addresses, their \
                 KVM ioeventfds and irqfd), then waits for that socket to hang up; if the server \
                 dies, it answers the guest's file requests with EIO itself. It opens nothing \
                 and touches no file."
            }
            Role::Net => {
                "Moves Ethernet frames between the guest's queues and the tap descriptor the \
                 runtime made in the pod's network namespace and handed over: it opens no \
                 socket; its one ioctl tells the tap which offloads the guest accepted."
            }
            Role::FsServer => {
                "A separate process, forked by the VMM before it has a thread or a guest and \
                 filtered (all threads at once) before the guest runs: it serves the guest's \
                 root file system (fuse-backend-rs's passthrough) in the VMM's root, which is \
                 the bundle's rootfs; names are resolved one component at a time under held \
                 directory descriptors. It acts for the guest's users by switching its own \
                 thread's effective uid and gid per request. Guest RAM (a memfd) and the queues \
                 come over its vhost-user socket; it holds no other descriptor of the VMM's."
            }
        }
    }
}

/// `a!(SYS_x, "why")`: syscall x with any arguments; the name comes from
/// the constant, so it cannot disagree with the number.
macro_rules! a {
    ($nr:ident, $why:expr) => {
        Allowed {
            name: name(stringify!($nr)),
            nr: libc::$nr,
            rules: Vec::new(),
            why: $why,
        }
    };
}

/// `when!(SYS_x, [conds], "why")`: syscall x when all conditions hold.
macro_rules! when {
    ($nr:ident, [$($c:expr),* $(,)?], $why:expr) => {
        Allowed {
            name: name(stringify!($nr)),
            nr: libc::$nr,
            rules: vec![vec![$($c),*]],
            why: $why,
        }
    };
}

/// `one_of!(SYS_x, arg, [CONST, ...], "why")`: syscall x when argument
/// `arg` is one of the named constants.
macro_rules! one_of {
    ($nr:ident, $arg:expr, [$($v:expr => $label:expr),* $(,)?], $why:expr) => {
        Allowed {
            name: name(stringify!($nr)),
            nr: libc::$nr,
            rules: vec![$(vec![Cond::Eq($arg, $v as u64, $label)]),*],
            why: $why,
        }
    };
}

fn name(constant: &'static str) -> &'static str {
    constant.strip_prefix("SYS_").unwrap_or(constant)
}

/// KVM_RUN: _IO(KVMIO, 0x80).
pub const KVM_RUN: u64 = 0xae80;

fn no_exec(arg: u8) -> Cond {
    Cond::Clear(arg, libc::PROT_EXEC as u64, "no PROT_EXEC")
}

/// What every thread does: memory, locks and channels, time, thread and
/// process exit, and diagnostics on stderr.
pub fn common() -> Vec<Allowed> {
    vec![
        when!(
            SYS_mmap,
            [no_exec(2)],
            "the heap (malloc's per-thread arenas); never executable"
        ),
        when!(
            SYS_mprotect,
            [no_exec(2)],
            "growing malloc's arenas; never executable"
        ),
        a!(SYS_munmap, "the heap; a thread's signal stack at its exit"),
        a!(SYS_mremap, "growing heap allocations"),
        a!(
            SYS_madvise,
            "returning heap memory and a finished thread's stack; the main thread: the binary's pages of code run once"
        ),
        a!(SYS_brk, "the heap"),
        a!(SYS_futex, "locks, channels between threads"),
        a!(SYS_sched_yield, "spin-wait back-off in channels"),
        a!(
            SYS_write,
            "descriptors the role holds; a panic's message on stderr"
        ),
        a!(
            SYS_clock_gettime,
            "time, where the vDSO falls back to the kernel"
        ),
        a!(SYS_getrandom, "hash map seeds"),
        a!(SYS_rt_sigreturn, "return from a signal handler"),
        a!(
            SYS_rt_sigprocmask,
            "glibc blocks signals in a thread that ends; unblocking the signal that ended the guest process"
        ),
        a!(
            SYS_sigaltstack,
            "the standard library's stack-overflow handler, at thread exit"
        ),
        a!(SYS_close, "descriptors the role drops"),
        a!(SYS_exit, "thread exit"),
        a!(SYS_exit_group, "the VMM's exit (and an abort's)"),
    ]
}

/// The calls of `role` beyond [`common`].
pub fn own(role: Role) -> Vec<Allowed> {
    match role {
        Role::Vmm => vmm(),
        Role::Vcpu => vcpu(),
        Role::Vsock => vsock(),
        Role::Fs => fs_frontend(),
        Role::Net => net(),
        Role::FsServer => fs_server(),
    }
}

/// The whole allowlist of `role`.
pub fn allowlist(role: Role) -> Vec<Allowed> {
    let mut l = common();
    l.extend(own(role));
    l
}

fn vmm() -> Vec<Allowed> {
    use libc::*;
    vec![
        a!(
            SYS_read,
            "the agent stream, stdin, the signalfd of forwarded signals"
        ),
        a!(SYS_recvfrom, "the agent stream (a Unix stream's read)"),
        a!(
            SYS_sendto,
            "the agent stream (a Unix stream's write: send with MSG_NOSIGNAL)"
        ),
        one_of!(
            SYS_socketpair,
            0,
            [AF_UNIX => "AF_UNIX"],
            "the in-process connection to the vsock device (no socket reaches the host's network)"
        ),
        when!(
            SYS_setsockopt,
            [
                Cond::Eq(1, SOL_SOCKET as u64, "SOL_SOCKET"),
                Cond::Eq(2, SO_RCVTIMEO as u64, "SO_RCVTIMEO"),
            ],
            "the timeout of the vsock handshake while the guest boots"
        ),
        a!(
            SYS_poll,
            "waiting on the agent stream, stdin and the signalfd"
        ),
        a!(
            SYS_ppoll,
            "waiting on the agent stream, stdin and the signalfd"
        ),
        a!(
            SYS_nanosleep,
            "pause between attempts to reach the booting agent"
        ),
        a!(
            SYS_clock_nanosleep,
            "pause between attempts to reach the booting agent"
        ),
        one_of!(
            SYS_ioctl,
            1,
            [TCGETS => "TCGETS", TCSETS => "TCSETS"],
            "raw mode on the container's terminal (the guest does the line discipline)"
        ),
        a!(
            SYS_rt_sigaction,
            "default action for the signal that ended the guest process"
        ),
        a!(SYS_getpid, "raise(): exiting as the guest process did"),
        a!(SYS_gettid, "raise(): exiting as the guest process did"),
        a!(SYS_tgkill, "raise(): exiting as the guest process did"),
    ]
}

fn vcpu() -> Vec<Allowed> {
    vec![one_of!(
        SYS_ioctl,
        1,
        [KVM_RUN => "KVM_RUN"],
        "running the guest until its next exit to the VMM"
    )]
}

fn vsock() -> Vec<Allowed> {
    use libc::*;
    vec![
        a!(SYS_epoll_create1, "the device's event loop"),
        a!(SYS_epoll_ctl, "the device's event loop"),
        a!(SYS_epoll_wait, "the device's event loop"),
        a!(SYS_epoll_pwait, "the device's event loop"),
        a!(SYS_read, "queue kicks (eventfds)"),
        a!(SYS_recvfrom, "reading host streams"),
        a!(SYS_sendto, "writing host streams (send with MSG_NOSIGNAL)"),
        a!(
            SYS_accept4,
            "connections to the VM's socket in the state directory (`atoll exec`, `ps`, `kill`)"
        ),
        one_of!(
            SYS_ioctl,
            1,
            [FIONBIO => "FIONBIO"],
            "non-blocking host streams"
        ),
        a!(SYS_shutdown, "the guest closed its side of a stream"),
    ]
}

fn net() -> Vec<Allowed> {
    vec![
        a!(SYS_epoll_create1, "the device's event loop"),
        a!(SYS_epoll_ctl, "the device's event loop"),
        a!(SYS_epoll_wait, "the device's event loop"),
        a!(SYS_epoll_pwait, "the device's event loop"),
        a!(SYS_read, "queue kicks (eventfds), frames from the tap"),
        one_of!(
            SYS_ioctl,
            1,
            [libc::TUNSETOFFLOAD => "TUNSETOFFLOAD"],
            "the offloads the guest's driver accepted, on the tap (once, at activation)"
        ),
    ]
}

fn fs_frontend() -> Vec<Allowed> {
    vec![
        a!(
            SYS_sendmsg,
            "vhost-user messages to the file server, with the queues' eventfds (SCM_RIGHTS)"
        ),
        a!(
            SYS_recvmsg,
            "vhost-user replies (GET_FEATURES at activation)"
        ),
        a!(
            SYS_epoll_create1,
            "waiting for the file server's socket to hang up"
        ),
        a!(
            SYS_epoll_ctl,
            "the socket; queue kicks once the server is gone"
        ),
        a!(
            SYS_epoll_wait,
            "the socket; queue kicks once the server is gone"
        ),
        a!(
            SYS_epoll_pwait,
            "the socket; queue kicks once the server is gone"
        ),
        a!(
            SYS_read,
            "queue kicks (eventfds) once the server is gone (its requests then fail with EIO)"
        ),
    ]
}

fn fs_server() -> Vec<Allowed> {
    vec![
        a!(
            SYS_recvmsg,
            "vhost-user messages from the VMM, with descriptors (guest RAM's memfd, eventfds)"
        ),
        a!(SYS_sendmsg, "vhost-user replies to the VMM"),
        a!(SYS_epoll_create1, "the queues' event loop"),
        a!(SYS_epoll_ctl, "the queues' event loop: kicks the VMM sends"),
        a!(SYS_epoll_wait, "the queues' event loop"),
        a!(SYS_epoll_pwait, "the queues' event loop"),
        a!(SYS_read, "queue kicks (KVM ioeventfds)"),
        // The filter goes on all of the server's threads at once (TSYNC),
        // and the two threads the vhost-user daemon started just before
        // may not have finished starting: these are what a thread's start
        // makes (glibc's and the standard library's), all about itself.
        a!(
            SYS_rseq,
            "a starting thread registers its restartable sequences (glibc)"
        ),
        a!(
            SYS_set_robust_list,
            "a starting thread's robust futex list (glibc)"
        ),
        a!(
            SYS_sched_getaffinity,
            "a thread's first allocation: glibc's malloc sizes its arenas by the CPU count"
        ),
        a!(SYS_gettid, "a starting thread's id (the standard library)"),
        one_of!(
            SYS_prctl,
            0,
            [libc::PR_SET_NAME => "PR_SET_NAME"],
            "a starting thread names itself"
        ),
        a!(
            SYS_openat,
            "lookup and open: a name under a held directory with O_NOFOLLOW, a held inode reopened through /proc/self/fd"
        ),
        a!(SYS_fstat, "getattr"),
        a!(SYS_newfstatat, "lookup, getattr"),
        a!(SYS_statx, "lookup: inode and mount ids"),
        a!(SYS_fstatfs, "statfs"),
        a!(SYS_getdents64, "readdir"),
        a!(SYS_lseek, "readdir offsets, lseek"),
        a!(SYS_pread64, "read"),
        a!(SYS_preadv, "read"),
        a!(SYS_pwrite64, "write"),
        a!(SYS_pwritev, "write"),
        a!(SYS_fsync, "fsync, fsyncdir"),
        a!(SYS_fdatasync, "fsync"),
        a!(SYS_fallocate, "fallocate"),
        a!(SYS_ftruncate, "setattr: size"),
        a!(SYS_mkdirat, "mkdir"),
        // Any mode: a device node is refused by the host (the VMM has no
        // CAP_MKNOD) with EPERM, which the guest sees; refusing it here
        // would kill the VMM on a guest's mknod.
        a!(
            SYS_mknodat,
            "mknod: regular files, FIFOs and sockets (device nodes fail: no CAP_MKNOD)"
        ),
        a!(SYS_unlinkat, "unlink, rmdir"),
        a!(SYS_renameat2, "rename"),
        a!(SYS_linkat, "link"),
        a!(SYS_symlinkat, "symlink"),
        a!(SYS_readlinkat, "readlink"),
        a!(SYS_fchmod, "setattr: mode"),
        a!(SYS_fchmodat, "setattr: mode"),
        a!(SYS_fchownat, "setattr: owner"),
        a!(SYS_utimensat, "setattr: times"),
        a!(SYS_fcntl, "open flags of a held file"),
        a!(
            SYS_dup,
            "flush: closing a duplicate of the file, as the guest's close would"
        ),
        a!(
            SYS_umask,
            "FUSE_INIT re-imports the root with umask 0 (modes are the guest's)"
        ),
        a!(SYS_getxattr, "getxattr (by /proc/self/fd path)"),
        a!(SYS_setxattr, "setxattr (by /proc/self/fd path)"),
        a!(SYS_listxattr, "listxattr (by /proc/self/fd path)"),
        a!(SYS_removexattr, "removexattr (by /proc/self/fd path)"),
        a!(
            SYS_setresuid,
            "the request's effective uid on this thread only, and back to 0"
        ),
        a!(
            SYS_setresgid,
            "the request's effective gid on this thread only, and back to 0"
        ),
        a!(
            SYS_capget,
            "whether CAP_FSETID is in effect (a write that kills setuid bits)"
        ),
        a!(
            SYS_capset,
            "dropping and restoring CAP_FSETID around such a write (never beyond the permitted set)"
        ),
    ]
}

fn describe(c: &Cond) -> String {
    match c {
        Cond::Eq(a, _, label) => format!("arg{a} = {label}"),
        Cond::Clear(a, _, label) | Cond::Set(a, _, label) => format!("arg{a}: {label}"),
    }
}

/// A markdown table of `list`: syscall, argument restriction, why.
pub fn markdown(list: &[Allowed]) -> String {
    let mut s = String::from("| # | syscall | arguments | why |\n|---|---|---|---|\n");
    for (i, a) in list.iter().enumerate() {
        let args = if a.rules.is_empty() {
            "any".to_string()
        } else if a.rules.len() > 1
            && a.rules
                .iter()
                .all(|r| r.len() == 1 && matches!(r[0], Cond::Eq(..)))
        {
            let Cond::Eq(arg, ..) = a.rules[0][0] else {
                unreachable!()
            };
            let vals: Vec<&str> = a
                .rules
                .iter()
                .filter_map(|r| match r[0] {
                    Cond::Eq(_, _, l) => Some(l),
                    _ => None,
                })
                .collect();
            format!("arg{arg} ∈ {{{}}}", vals.join(", "))
        } else {
            a.rules
                .iter()
                .map(|r| r.iter().map(describe).collect::<Vec<_>>().join(" and "))
                .collect::<Vec<_>>()
                .join("; or ")
        };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            i + 1,
            a.name,
            args,
            a.why
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_syscall_is_listed_twice_in_a_role() {
        for role in Role::ALL {
            let l = allowlist(role);
            let mut nrs: Vec<i64> = l.iter().map(|a| a.nr).collect();
            nrs.sort();
            nrs.dedup();
            assert_eq!(nrs.len(), l.len(), "{role:?} lists a syscall twice");
            assert!(l.len() <= 70, "{role:?} allows {} syscalls", l.len());
        }
    }

    #[test]
    fn the_dangerous_ones_are_absent() {
        let forbidden = [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_setns,
            libc::SYS_unshare,
            libc::SYS_bpf,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_io_uring_setup,
            libc::SYS_userfaultfd,
            libc::SYS_perf_event_open,
            libc::SYS_process_vm_writev,
            libc::SYS_open_by_handle_at,
            libc::SYS_name_to_handle_at,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_kill,
            libc::SYS_setuid,
            libc::SYS_setgid,
            libc::SYS_setgroups,
        ];
        for role in Role::ALL {
            for a in allowlist(role) {
                assert!(!forbidden.contains(&a.nr), "{role:?} allows {}", a.name);
            }
        }
        // Only the file server opens anything, and only the vCPUs run the
        // guest.
        for role in [Role::Vmm, Role::Vcpu, Role::Vsock] {
            assert!(!allowlist(role).iter().any(|a| a.nr == libc::SYS_openat));
        }
        for role in Role::ALL {
            let ioctl = allowlist(role)
                .into_iter()
                .find(|a| a.nr == libc::SYS_ioctl);
            let runs = ioctl.is_some_and(|a| {
                a.rules
                    .iter()
                    .any(|r| matches!(r[0], Cond::Eq(1, v, _) if v == KVM_RUN))
            });
            assert_eq!(runs, role == Role::Vcpu, "{role:?}");
        }
    }

    #[test]
    fn kvm_run_is_the_kvm_ioctl() {
        assert_eq!(KVM_RUN, kvm_bindings::KVMIO as u64 * 256 + 0x80);
    }
}
