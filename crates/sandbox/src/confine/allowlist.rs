//! The host syscalls the application kernel and the gofer may make once
//! they are confined, with argument restrictions and the reason for each.
//! One table per process drives both the seccomp filter (through
//! seccompiler) and the published list in docs/security.md, so the two
//! cannot drift apart.

use atoll_kernel::kernel::boot::NetworkMode;
use atoll_kernel::platform::PlatformKind;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// One condition on a syscall argument (its low 32 bits: every argument
/// restricted here is an int, flag word or request number).
#[derive(Clone, Debug)]
pub enum Cond {
    /// `arg == value`
    Eq(u8, u64, &'static str),
    /// `arg & mask == 0`
    Clear(u8, u64, &'static str),
    /// `arg <= value` (unsigned)
    Le(u8, u64, &'static str),
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

fn any(name: &'static str, nr: i64, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        rules: Vec::new(),
        why,
    }
}

/// Allowed when argument `arg` is one of `values`.
fn one_of(
    name: &'static str,
    nr: i64,
    arg: u8,
    values: &[(u64, &'static str)],
    why: &'static str,
) -> Allowed {
    Allowed {
        name,
        nr,
        rules: values
            .iter()
            .map(|(v, label)| vec![Cond::Eq(arg, *v, label)])
            .collect(),
        why,
    }
}

fn when(name: &'static str, nr: i64, conds: Vec<Cond>, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        rules: vec![conds],
        why,
    }
}

macro_rules! v {
    ($($c:ident),* $(,)?) => { &[$((libc::$c as u64, stringify!($c))),*] };
}

/// A non-negative descriptor in `arg` (AT_FDCWD is negative): the call
/// resolves an empty path against an open descriptor, never a name in the
/// (empty) root.
fn fd_only(arg: u8) -> Cond {
    Cond::Le(arg, i32::MAX as u64, "a descriptor, not AT_FDCWD")
}

/// The application kernel on `platform`, after it confined itself. It
/// opens no path: files arrive from the gofer as donated descriptors;
/// stubs are cloned from the zygote, so the kernel never forks;
/// executable memory exists only in the stubs. Only the ptrace platform
/// needs ptrace; systrap hands stops over through shared memory.
pub fn kernel(platform: PlatformKind, directfs: bool, network: NetworkMode) -> Vec<Allowed> {
    let mut list = kernel_common();
    if network == NetworkMode::Sandbox {
        sandbox_network(&mut list);
    }
    if directfs {
        list.extend(directfs_calls());
    }
    match platform {
        PlatformKind::Ptrace => list.push(ptrace()),
        PlatformKind::Systrap => list.push(any(
            "waitid",
            libc::SYS_waitid,
            "whether a stub the kernel waits for still lives (WNOWAIT)",
        )),
    }
    list
}

/// `--network sandbox`: the workload's inet sockets are the kernel's own
/// stack's, and the only host network the kernel touches is the frames
/// of the AF_PACKET sockets the container's init opened and donated,
/// moved with `read` and `write`. So no socket is created, bound,
/// connected, configured or queried: what stays is for the control
/// socket and the gofer (`accept4`, `sendmsg`/`recvmsg`, `recvfrom`,
/// `sendto` without an address, i.e. on a connected socket, and one
/// option, a receive timeout on a control connection); `ioctl` keeps the
/// terminal and queue-length requests but no interface queries.
fn sandbox_network(list: &mut Vec<Allowed>) {
    use libc::*;
    const HOST_SOCKETS_ONLY: &[i64] = &[
        SYS_socket,
        SYS_bind,
        SYS_listen,
        SYS_connect,
        SYS_shutdown,
        SYS_getsockname,
        SYS_getpeername,
        SYS_getsockopt,
    ];
    list.retain(|a| !HOST_SOCKETS_ONLY.contains(&a.nr));
    for a in list.iter_mut() {
        if a.nr == SYS_setsockopt {
            *a = when(
                "setsockopt",
                SYS_setsockopt,
                vec![
                    Cond::Eq(1, SOL_SOCKET as u64, "SOL_SOCKET"),
                    Cond::Eq(2, SO_RCVTIMEO as u64, "SO_RCVTIMEO"),
                ],
                "a receive timeout on a control connection",
            );
        }
        if a.nr == SYS_sendto {
            *a = when(
                "sendto",
                SYS_sendto,
                vec![Cond::Eq(4, 0, "no address (a connected socket)")],
                "replies on control connections",
            );
        }
        if a.nr == SYS_recvfrom {
            a.why = "requests on control connections";
        }
        if a.nr == SYS_ioctl {
            a.rules
                .retain(|r| !matches!(r.as_slice(), [Cond::Eq(_, _, l)] if l.starts_with("SIOC")));
            a.why = "terminal ioctls on the console; queue lengths of host streams";
        }
    }
}

/// Direct file access (`atoll_gofer::direct`): the kernel walks and opens
/// files itself, on descriptors of mount roots the gofer donated. Every
/// call names a descriptor, never `AT_FDCWD` (the kernel's root is empty
/// anyway), and every open refuses to follow a symlink.
fn directfs_calls() -> Vec<Allowed> {
    use libc::*;
    let nofollow = || Cond::Set(2, O_NOFOLLOW as u64, "O_NOFOLLOW");
    vec![
        when(
            "openat",
            SYS_openat,
            vec![fd_only(0), nofollow()],
            "directfs: a name in a held directory, never through a symlink",
        ),
        when(
            "mkdirat",
            SYS_mkdirat,
            vec![fd_only(0)],
            "directfs: mkdir in a held directory",
        ),
        when(
            "mknodat",
            SYS_mknodat,
            vec![
                fd_only(0),
                Cond::Clear(2, S_IFCHR as u64, "no S_IFCHR/S_IFBLK"),
            ],
            "directfs: FIFOs and sockets, never device nodes",
        ),
        when(
            "symlinkat",
            SYS_symlinkat,
            vec![fd_only(1)],
            "directfs: symlink in a held directory",
        ),
        when(
            "linkat",
            SYS_linkat,
            vec![fd_only(0), fd_only(2), Cond::Eq(4, 0, "no flags")],
            "directfs: hard link between held directories, never following a symlink",
        ),
        when(
            "unlinkat",
            SYS_unlinkat,
            vec![fd_only(0)],
            "directfs: unlink and rmdir in a held directory",
        ),
        when(
            "renameat2",
            SYS_renameat2,
            vec![fd_only(0), fd_only(2)],
            "directfs: rename between held directories",
        ),
        when(
            "readlinkat",
            SYS_readlinkat,
            vec![fd_only(0)],
            "directfs: a symlink's target (the kernel resolves it)",
        ),
        when(
            "fchownat",
            SYS_fchownat,
            vec![
                fd_only(0),
                Cond::Set(4, AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
            ],
            "directfs: owner of a new or held file (the kernel checked the sandbox's permissions)",
        ),
        any(
            "fchown",
            SYS_fchown,
            "directfs: owner of a file just created",
        ),
        when(
            "fchmodat2",
            452,
            vec![
                fd_only(0),
                Cond::Eq(3, AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
            ],
            "directfs: mode of a held file",
        ),
        when(
            "fchmodat",
            SYS_fchmodat,
            vec![fd_only(0)],
            "directfs: mode of a held file on hosts before Linux 6.6",
        ),
        when(
            "utimensat",
            SYS_utimensat,
            vec![
                fd_only(0),
                Cond::Set(3, AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
            ],
            "directfs: times of a held file",
        ),
        any("fstatfs", SYS_fstatfs, "directfs: statfs of a held file"),
        any(
            "getdents64",
            SYS_getdents64,
            "directfs: listing a held directory",
        ),
    ]
}

fn ptrace() -> Allowed {
    use libc::*;
    one_of(
        "ptrace",
        SYS_ptrace,
        0,
        &[
            (PTRACE_GETREGS as u64, "PTRACE_GETREGS"),
            (PTRACE_SETREGS as u64, "PTRACE_SETREGS"),
            (PTRACE_GETREGSET as u64, "PTRACE_GETREGSET"),
            (PTRACE_SETREGSET as u64, "PTRACE_SETREGSET"),
            (PTRACE_CONT as u64, "PTRACE_CONT"),
            (31, "PTRACE_SYSEMU"),
            (PTRACE_INTERRUPT as u64, "PTRACE_INTERRUPT"),
            (PTRACE_GETEVENTMSG as u64, "PTRACE_GETEVENTMSG"),
            (PTRACE_GETSIGINFO as u64, "PTRACE_GETSIGINFO"),
        ],
        "the platform: registers, FPU state, resuming and stopping stubs",
    )
}

fn kernel_common() -> Vec<Allowed> {
    use libc::*;
    let exec = PROT_EXEC as u64;
    vec![
        any(
            "read",
            SYS_read,
            "descriptors: gofer files, pipes, sockets, signalfd",
        ),
        any(
            "write",
            SYS_write,
            "descriptors: stdio, files, sockets, the sandbox log",
        ),
        any(
            "readv",
            SYS_readv,
            "vectored I/O on donated files and sockets",
        ),
        any(
            "writev",
            SYS_writev,
            "vectored I/O on donated files and sockets",
        ),
        any("pread64", SYS_pread64, "positioned reads of donated files"),
        any(
            "pwrite64",
            SYS_pwrite64,
            "positioned writes of donated files and of the memory file (bulk copies into fresh pages)",
        ),
        any(
            "preadv",
            SYS_preadv,
            "vectored positioned reads of donated files",
        ),
        any(
            "pwritev",
            SYS_pwritev,
            "vectored positioned writes of donated files",
        ),
        any("lseek", SYS_lseek, "file offsets of donated files"),
        any("close", SYS_close, "releasing descriptors"),
        any(
            "fstat",
            SYS_fstat,
            "attributes of donated files and host streams",
        ),
        Allowed {
            name: "newfstatat",
            nr: SYS_newfstatat,
            rules: vec![
                vec![
                    fd_only(0),
                    Cond::Set(3, AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
                ],
                vec![
                    fd_only(0),
                    Cond::Set(3, AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
                ],
            ],
            why: "an open descriptor's attributes; a name in a held directory, never through a symlink (directfs)",
        },
        any("fsync", SYS_fsync, "fsync of donated files"),
        any("fdatasync", SYS_fdatasync, "fdatasync of donated files"),
        any(
            "ftruncate",
            SYS_ftruncate,
            "truncate of donated files; sizing the memory file",
        ),
        any(
            "fallocate",
            SYS_fallocate,
            "fallocate of donated files; freeing memory-file pages",
        ),
        one_of(
            "fcntl",
            SYS_fcntl,
            1,
            v!(F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD_CLOEXEC),
            "non-blocking mode and close-on-exec of host descriptors",
        ),
        one_of(
            "ioctl",
            SYS_ioctl,
            1,
            &[
                v!(
                    FIONREAD, FIONBIO, TIOCOUTQ, TCGETS, TCSETS, TCSETSW, TCSETSF
                )
                .as_slice(),
                v!(TCFLSH, TCXONC, TCSBRK, TIOCGWINSZ, TIOCSWINSZ),
                &[(0x8905, "SIOCATMARK")],
                v!(
                    SIOCGIFCONF,
                    SIOCGIFADDR,
                    SIOCGIFFLAGS,
                    SIOCGIFINDEX,
                    SIOCGIFNETMASK
                ),
                v!(
                    SIOCGIFHWADDR,
                    SIOCGIFMTU,
                    SIOCGIFNAME,
                    SIOCGIFBRDADDR,
                    SIOCGIFDSTADDR
                ),
            ]
            .concat(),
            "terminal ioctls on the console; socket and interface queries",
        ),
        when(
            "mmap",
            SYS_mmap,
            vec![Cond::Clear(2, exec, "no PROT_EXEC")],
            "the kernel's heap and its view of the memory file; never executable",
        ),
        when(
            "mprotect",
            SYS_mprotect,
            vec![Cond::Clear(2, exec, "no PROT_EXEC")],
            "allocator guard pages; never executable",
        ),
        any(
            "munmap",
            SYS_munmap,
            "the kernel's heap and memory-file views",
        ),
        any(
            "mremap",
            SYS_mremap,
            "growing the kernel's heap allocations",
        ),
        any("madvise", SYS_madvise, "returning heap memory to the host"),
        any("brk", SYS_brk, "the kernel's heap"),
        any(
            "futex",
            SYS_futex,
            "Rust standard library locks; waking a stub sleeping on shared memory",
        ),
        one_of(
            "membarrier",
            SYS_membarrier,
            0,
            &[(1, "MEMBARRIER_CMD_GLOBAL")],
            "the workload's membarrier, as MEMBARRIER_CMD_GLOBAL (a barrier on every CPU)",
        ),
        any(
            "sched_yield",
            SYS_sched_yield,
            "spin-wait back-off in the standard library; waiting for a stub's control thread, which may need this CPU",
        ),
        any(
            "rt_sigprocmask",
            SYS_rt_sigprocmask,
            "host signals are read from a signalfd",
        ),
        any(
            "rt_sigreturn",
            SYS_rt_sigreturn,
            "return from a host signal handler",
        ),
        any(
            "sigaltstack",
            SYS_sigaltstack,
            "the standard library's stack-overflow handler, at exit",
        ),
        any("wait4", SYS_wait4, "stops and exits of stubs and the gofer"),
        one_of(
            "kill",
            SYS_kill,
            1,
            v!(SIGKILL),
            "ending stubs and the gofer (the pid namespace holds only the sandbox)",
        ),
        any(
            "tgkill",
            SYS_tgkill,
            "interrupting a stub thread; whether one still lives (signal 0)",
        ),
        any(
            "epoll_create1",
            SYS_epoll_create1,
            "host descriptors the workload polls",
        ),
        any("epoll_ctl", SYS_epoll_ctl, "the kernel's event loop"),
        any(
            "epoll_wait",
            SYS_epoll_wait,
            "the kernel's event loop on hosts without epoll_pwait2",
        ),
        any(
            "epoll_pwait2",
            SYS_epoll_pwait2,
            "the kernel's event loop: sleeps to the next timer with nanosecond resolution",
        ),
        any("poll", SYS_poll, "waiting on one host descriptor"),
        any("ppoll", SYS_ppoll, "waiting on one host descriptor"),
        any(
            "clock_gettime",
            SYS_clock_gettime,
            "time (and stubs' CPU clocks)",
        ),
        any("clock_getres", SYS_clock_getres, "time"),
        any("gettimeofday", SYS_gettimeofday, "time"),
        any("clock_nanosleep", SYS_clock_nanosleep, "short waits"),
        any("nanosleep", SYS_nanosleep, "short waits"),
        any("getrandom", SYS_getrandom, "the workload's randomness"),
        any("getpid", SYS_getpid, "log lines"),
        any("gettid", SYS_gettid, "the standard library"),
        one_of(
            "socket",
            SYS_socket,
            0,
            v!(AF_INET, AF_INET6),
            "the workload's TCP/UDP sockets (AF_UNIX is served in the kernel)",
        ),
        any("bind", SYS_bind, "sockets"),
        any("listen", SYS_listen, "sockets"),
        any("accept4", SYS_accept4, "sockets; the control socket"),
        any("connect", SYS_connect, "sockets"),
        any("shutdown", SYS_shutdown, "sockets"),
        any("sendto", SYS_sendto, "sockets"),
        any("recvfrom", SYS_recvfrom, "sockets"),
        any("sendmsg", SYS_sendmsg, "sockets; requests to the gofer"),
        any(
            "recvmsg",
            SYS_recvmsg,
            "sockets; replies and donated descriptors from the gofer",
        ),
        any("getsockname", SYS_getsockname, "sockets"),
        any("getpeername", SYS_getpeername, "sockets"),
        any(
            "setsockopt",
            SYS_setsockopt,
            "sockets (options filtered by the kernel)",
        ),
        any("getsockopt", SYS_getsockopt, "sockets"),
        any("exit", SYS_exit, "thread exit"),
        any("exit_group", SYS_exit_group, "the sandbox's exit"),
        any(
            "restart_syscall",
            SYS_restart_syscall,
            "restarting an interrupted wait",
        ),
    ]
}

/// The gofer, after it opened the container's root. It walks and opens
/// beneath that root only (openat2 with RESOLVE_BENEATH), never execs,
/// never forks, has no network.
pub fn gofer() -> Vec<Allowed> {
    use libc::*;
    vec![
        any(
            "read",
            SYS_read,
            "reading symlink targets and files for the kernel",
        ),
        any("write", SYS_write, "writing files for the kernel"),
        any("close", SYS_close, "releasing descriptors"),
        any(
            "openat",
            SYS_openat,
            "reopening held descriptors through /proc/self/fd",
        ),
        any(
            "openat2",
            SYS_openat2,
            "every walk: RESOLVE_BENEATH|NO_MAGICLINKS|NO_SYMLINKS",
        ),
        any("fstat", SYS_fstat, "attributes"),
        any(
            "newfstatat",
            SYS_newfstatat,
            "attributes of a name in a held directory",
        ),
        any("statx", SYS_statx, "attributes"),
        any("fstatfs", SYS_fstatfs, "statfs"),
        any("getdents64", SYS_getdents64, "readdir"),
        any("lseek", SYS_lseek, "rewinding directories"),
        any("mkdirat", SYS_mkdirat, "mkdir"),
        when(
            "mknodat",
            SYS_mknodat,
            // S_IFCHR's bit is set in S_IFCHR and S_IFBLK only.
            vec![Cond::Clear(2, S_IFCHR as u64, "no S_IFCHR/S_IFBLK")],
            "regular files, FIFOs and sockets only",
        ),
        any("unlinkat", SYS_unlinkat, "unlink and rmdir"),
        any("renameat2", SYS_renameat2, "rename"),
        any("linkat", SYS_linkat, "hard links"),
        any("symlinkat", SYS_symlinkat, "symlinks"),
        any("readlinkat", SYS_readlinkat, "readlink"),
        any("fchmod", SYS_fchmod, "setattr: mode"),
        any("fchmodat", SYS_fchmodat, "setattr: mode"),
        any("fchown", SYS_fchown, "setattr: owner"),
        any("fchownat", SYS_fchownat, "setattr: owner"),
        any("utimensat", SYS_utimensat, "setattr: times"),
        any("ftruncate", SYS_ftruncate, "setattr: size"),
        one_of(
            "fcntl",
            SYS_fcntl,
            1,
            v!(F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD_CLOEXEC),
            "descriptor flags",
        ),
        any("sendmsg", SYS_sendmsg, "replies with donated descriptors"),
        any("recvmsg", SYS_recvmsg, "requests"),
        when(
            "mmap",
            SYS_mmap,
            vec![Cond::Clear(2, PROT_EXEC as u64, "no PROT_EXEC")],
            "the heap; never executable",
        ),
        when(
            "mprotect",
            SYS_mprotect,
            vec![Cond::Clear(2, PROT_EXEC as u64, "no PROT_EXEC")],
            "allocator guard pages; never executable",
        ),
        any("munmap", SYS_munmap, "the heap"),
        any("mremap", SYS_mremap, "the heap"),
        any("madvise", SYS_madvise, "the heap"),
        any("brk", SYS_brk, "the heap"),
        any("futex", SYS_futex, "standard library locks"),
        any(
            "rt_sigreturn",
            SYS_rt_sigreturn,
            "return from a signal handler",
        ),
        any("rt_sigprocmask", SYS_rt_sigprocmask, "the standard library"),
        any("getrandom", SYS_getrandom, "hash map seeds"),
        any("exit", SYS_exit, "exit"),
        any("exit_group", SYS_exit_group, "exit"),
        any(
            "restart_syscall",
            SYS_restart_syscall,
            "restarting an interrupted call",
        ),
    ]
}

fn condition(c: &Cond) -> SeccompCondition {
    let (arg, op, val) = match *c {
        Cond::Eq(a, v, _) => (a, SeccompCmpOp::Eq, v),
        Cond::Clear(a, mask, _) => (a, SeccompCmpOp::MaskedEq(mask), 0),
        Cond::Le(a, v, _) => (a, SeccompCmpOp::Le, v),
        Cond::Set(a, mask, _) => (a, SeccompCmpOp::MaskedEq(mask), mask),
    };
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, val).expect("valid condition")
}

/// Compiles `list` into a filter that kills the whole process on any other
/// syscall (or `mismatch` when auditing).
pub fn compile(list: &[Allowed], mismatch: SeccompAction) -> Result<BpfProgram, String> {
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = Default::default();
    for a in list {
        let entry = rules.entry(a.nr).or_default();
        for r in &a.rules {
            entry.push(
                SeccompRule::new(r.iter().map(condition).collect()).map_err(|e| e.to_string())?,
            );
        }
    }
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

fn describe(c: &Cond) -> String {
    match c {
        Cond::Eq(a, _, label) => format!("arg{a} = {label}"),
        Cond::Clear(a, _, label) => format!("arg{a}: {label}"),
        Cond::Le(a, _, label) => format!("arg{a}: {label}"),
        Cond::Set(a, _, label) => format!("arg{a}: {label}"),
    }
}

/// A markdown table of `list`: syscall, argument restriction, why.
pub fn markdown(list: &[Allowed]) -> String {
    let mut s = String::from("| # | syscall | arguments | why |\n|---|---|---|---|\n");
    for (i, a) in list.iter().enumerate() {
        let args = if a.rules.is_empty() {
            "any".to_string()
        } else if a
            .rules
            .iter()
            .all(|r| r.len() == 1 && matches!(r[0], Cond::Eq(..)))
        {
            // One argument taking one of several values.
            let Cond::Eq(arg, ..) = a.rules[0][0] else {
                unreachable!()
            };
            let vals: Vec<&str> = a
                .rules
                .iter()
                .map(|r| match r[0] {
                    Cond::Eq(_, _, l) => l,
                    _ => unreachable!(),
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
    fn lists_fit_the_targets_and_compile() {
        let k = kernel(PlatformKind::Systrap, true, NetworkMode::Host);
        let kp = kernel(PlatformKind::Ptrace, false, NetworkMode::Host);
        let g = gofer();
        assert!(k.len() <= 80, "kernel allowlist has {} syscalls", k.len());
        assert!(g.len() <= 60, "gofer allowlist has {} syscalls", g.len());
        assert!(
            !k.iter().any(|a| a.name == "ptrace"),
            "systrap needs no ptrace"
        );
        // Sandbox networking takes every host-socket call away but the
        // control socket's and the gofer's.
        let kn = kernel(PlatformKind::Systrap, true, NetworkMode::Sandbox);
        assert_eq!(kn.len() + 8, k.len());
        for gone in [
            "socket",
            "bind",
            "connect",
            "listen",
            "getpeername",
            "getsockopt",
        ] {
            assert!(!kn.iter().any(|a| a.name == gone), "{gone}");
        }
        for kept in ["accept4", "sendmsg", "recvmsg", "read", "write"] {
            assert!(kn.iter().any(|a| a.name == kept), "{kept}");
        }
        let so = kn.iter().find(|a| a.name == "setsockopt").unwrap();
        assert_eq!(so.rules.len(), 1);
        let ioctl = kn.iter().find(|a| a.name == "ioctl").unwrap();
        assert!(
            !ioctl
                .rules
                .iter()
                .flatten()
                .any(|c| matches!(c, Cond::Eq(_, _, l) if l.starts_with("SIOC")))
        );
        assert!(
            ioctl
                .rules
                .iter()
                .flatten()
                .any(|c| matches!(c, Cond::Eq(_, _, "TCGETS")))
        );
        for list in [&k, &kp, &kn, &g] {
            let mut names: Vec<_> = list.iter().map(|a| a.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), list.len(), "a syscall listed twice");
            compile(list, SeccompAction::KillProcess).unwrap();
        }
    }

    #[test]
    fn names_match_numbers() {
        let k = [
            kernel(PlatformKind::Systrap, true, NetworkMode::Host),
            kernel(PlatformKind::Ptrace, false, NetworkMode::Host),
        ]
        .concat();
        for a in k.iter().chain(gofer().iter()) {
            assert_eq!(
                atoll_kernel::syscalls::names::NAMES[a.nr as usize],
                a.name,
                "syscall {}",
                a.nr
            );
        }
    }

    #[test]
    fn the_dangerous_ones_are_absent() {
        let forbidden = [
            "execve",
            "execveat",
            "fork",
            "vfork",
            "clone",
            "clone3",
            "open",
            "openat",
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "setns",
            "unshare",
            "ptrace_attach",
            "bpf",
            "init_module",
            "finit_module",
            "keyctl",
            "add_key",
            "io_uring_setup",
            "userfaultfd",
            "perf_event_open",
            "process_vm_writev",
            "open_by_handle_at",
        ];
        for a in kernel(PlatformKind::Systrap, true, NetworkMode::Host)
            .into_iter()
            .chain(kernel(PlatformKind::Ptrace, true, NetworkMode::Host))
        {
            // openat only as directfs has it: a descriptor, O_NOFOLLOW.
            if a.name == "openat" {
                assert_eq!(a.rules.len(), 1);
                assert!(a.rules[0].iter().any(|c| matches!(c, Cond::Le(0, ..))));
                assert!(
                    a.rules[0]
                        .iter()
                        .any(|c| matches!(c, Cond::Set(2, m, _) if *m == libc::O_NOFOLLOW as u64))
                );
                continue;
            }
            assert!(!forbidden.contains(&a.name), "kernel allows {}", a.name);
        }
        assert!(
            !kernel(PlatformKind::Systrap, false, NetworkMode::Host)
                .iter()
                .any(|a| a.name == "openat"),
            "the gofer-only kernel opens nothing"
        );
        for a in gofer() {
            assert!(
                !forbidden.contains(&a.name) || a.name == "openat",
                "gofer allows {}",
                a.name
            );
            assert!(!["socket", "connect", "bind", "execve", "clone", "fork"].contains(&a.name));
        }
    }
}
