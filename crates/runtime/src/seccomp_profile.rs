//! The default seccomp profile for the native level, applied when a bundle
//! brings none. Modeled on Docker's default profile (moby
//! `profiles/seccomp/default.json`): an allowlist, EPERM for everything
//! else, with the syscalls that need a capability allowed only when the
//! container's bounding set holds that capability.
//!
//! Differences from Docker, all stricter: `ptrace` needs CAP_SYS_PTRACE
//! (Docker allows it on kernels >= 4.8), and the io_uring family stays
//! denied (as in Docker since 25.0).

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use std::collections::HashSet;

/// Syscalls every container may make.
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// Syscalls allowed only when the bounding set holds the capability.
pub const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (Capability::SysTime, &["settimeofday", "clock_settime"]),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
];

/// Namespace-creating clone flags: CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
const AF_VSOCK: u64 = 40;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|s| s.to_string()).collect());
    s.set_action(action);
    s
}

fn arg(index: usize, value: u64, value_two: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .value_two(value_two)
        .op(op)
        .build()
        .expect("all fields set")
}

/// Builds the profile for a container whose bounding set is `caps`.
pub fn default_profile(caps: &HashSet<Capability>) -> LinuxSeccomp {
    let allow = LinuxSeccompAction::ScmpActAllow;
    let mut syscalls = vec![rule(ALLOWED, allow)];
    let mut granted: Vec<&str> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            granted.extend(names.iter().copied());
        }
    }
    granted.sort_unstable();
    granted.dedup();
    if !granted.is_empty() {
        syscalls.push(rule(&granted, allow));
    }

    // personality: only the harmless domains (Linux, Linux32, UNAME26, and query).
    for value in [0x0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        let mut r = rule(&["personality"], allow);
        r.set_args(Some(vec![arg(
            0,
            value,
            0,
            LinuxSeccompOperator::ScmpCmpEq,
        )]));
        syscalls.push(r);
    }
    // socket: every family but vsock (a host-reaching transport).
    let mut r = rule(&["socket"], allow);
    r.set_args(Some(vec![arg(
        0,
        AF_VSOCK,
        0,
        LinuxSeccompOperator::ScmpCmpNe,
    )]));
    syscalls.push(r);

    if caps.contains(&Capability::SysAdmin) {
        syscalls.push(rule(&["clone"], allow));
        syscalls.push(rule(&["clone3"], allow));
    } else {
        // clone without namespace flags; clone3 hides its flags in memory
        // seccomp cannot read, so it gets ENOSYS and libc falls back to clone.
        let mut r = rule(&["clone"], allow);
        r.set_args(Some(vec![arg(
            0,
            CLONE_NAMESPACE_FLAGS,
            0,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )]));
        syscalls.push(r);
        let mut r = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        r.set_errno_ret(Some(ENOSYS));
        syscalls.push(r);
    }

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(EPERM));
    profile.set_architectures(Some(vec![
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ]));
    profile.set_syscalls(Some(syscalls));
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> HashSet<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            .flat_map(|s| s.names().iter().cloned())
            .collect()
    }

    #[test]
    fn dangerous_syscalls_need_capabilities() {
        let p = default_profile(&HashSet::new());
        let allowed = names(&p);
        for bad in [
            "mount",
            "ptrace",
            "bpf",
            "init_module",
            "kexec_load",
            "keyctl",
            "add_key",
            "userfaultfd",
            "io_uring_setup",
            "open_by_handle_at",
            "unshare",
            "setns",
            "reboot",
        ] {
            assert!(!allowed.contains(bad), "{bad} allowed by default");
        }
        assert!(allowed.contains("read") && allowed.contains("clone"));

        let caps: HashSet<_> = [Capability::SysAdmin, Capability::SysPtrace].into();
        let allowed = names(&default_profile(&caps));
        assert!(allowed.contains("mount") && allowed.contains("ptrace"));
        // never granted by any capability in the default profile
        assert!(!allowed.contains("kexec_load") && !allowed.contains("open_by_handle_at"));
    }

    #[test]
    fn clone_masks_namespace_flags_in_spec_order() {
        let p = default_profile(&HashSet::new());
        let clone = p
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names() == &["clone"])
            .unwrap();
        let a = &clone.args().as_ref().unwrap()[0];
        assert_eq!(a.value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    }
}
