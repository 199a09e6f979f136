//! The syscall table: one entry per x86_64 syscall number, with its
//! handler and support status. docs/compatibility.md is generated from
//! this table (`atoll compat`), so what the docs say is what the kernel does.

pub mod clone3;
pub mod fs;
pub mod futex;
pub mod futex_pi;
pub mod inotify;
pub mod ipc;
pub mod membarrier;
pub mod mm;
pub mod names;
pub mod net;
pub mod pidfd;
pub mod poll;
pub mod process;
pub mod ptrace;
pub mod sched;
pub mod signal;
pub mod splice;
pub mod strace;
pub mod time;

use std::sync::OnceLock;

use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

pub type Handler = fn(&mut Kernel, Tid, [u64; 6]) -> SysResult<u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Implemented with Linux's semantics.
    Full,
    /// Implemented; some flags or cases are missing (see the note).
    Partial,
    /// Dangerous: refused with EPERM, counted, never forwarded to the host.
    Refused,
    /// Not implemented: ENOSYS, counted.
    Missing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Full => "full",
            Status::Partial => "partial",
            Status::Refused => "refused",
            Status::Missing => "missing",
        }
    }
}

#[derive(Clone, Copy)]
pub struct Entry {
    pub nr: u64,
    pub name: &'static str,
    pub handler: Option<Handler>,
    pub status: Status,
    pub note: &'static str,
}

/// Syscalls that would reach host kernel features no tenant should touch.
pub const REFUSED: &[(&str, &str)] = &[
    ("mount", "no mounts inside the sandbox"),
    ("umount2", "no mounts inside the sandbox"),
    ("pivot_root", "no mounts inside the sandbox"),
    // Another process's memory is reachable, but only where ptrace's
    // access rules (Yama scope 1) allow it; these two would be a second
    // way in, so they stay refused rather than duplicate those checks.
    (
        "process_vm_readv",
        "another process's memory is read only through ptrace (PEEKDATA) and \
         /proc/PID/mem, under ptrace's access rules",
    ),
    (
        "process_vm_writev",
        "another process's memory is written only through ptrace (POKEDATA) and \
         /proc/PID/mem, under ptrace's access rules",
    ),
    ("bpf", "no eBPF"),
    ("kexec_load", "no kernel replacement"),
    ("kexec_file_load", "no kernel replacement"),
    ("init_module", "no kernel modules"),
    ("finit_module", "no kernel modules"),
    ("delete_module", "no kernel modules"),
    ("keyctl", "no kernel keyrings"),
    ("add_key", "no kernel keyrings"),
    ("request_key", "no kernel keyrings"),
    ("perf_event_open", "no performance counters"),
    ("userfaultfd", "no userfaultfd"),
    ("io_uring_setup", "no io_uring"),
    ("io_uring_enter", "no io_uring"),
    ("io_uring_register", "no io_uring"),
    ("open_by_handle_at", "no file handles (the shocker escape)"),
    ("name_to_handle_at", "no file handles"),
    ("reboot", "no reboot"),
    ("swapon", "no swap"),
    ("swapoff", "no swap"),
    ("setns", "no joining namespaces"),
    ("unshare", "no new namespaces"),
    ("acct", "no process accounting"),
    ("quotactl", "no quota control"),
    ("quotactl_fd", "no quota control"),
    ("iopl", "no I/O port access"),
    ("ioperm", "no I/O port access"),
    ("settimeofday", "the host clock is not the sandbox's to set"),
    (
        "clock_settime",
        "the host clock is not the sandbox's to set",
    ),
    (
        "clock_adjtime",
        "the host clock is not the sandbox's to set",
    ),
    ("adjtimex", "the host clock is not the sandbox's to set"),
    ("lookup_dcookie", "no profiling interfaces"),
    ("fanotify_init", "no filesystem-wide monitoring"),
    ("fsopen", "no mounts inside the sandbox"),
    ("fsconfig", "no mounts inside the sandbox"),
    ("fsmount", "no mounts inside the sandbox"),
    ("fspick", "no mounts inside the sandbox"),
    ("move_mount", "no mounts inside the sandbox"),
    ("open_tree", "no mounts inside the sandbox"),
    ("mount_setattr", "no mounts inside the sandbox"),
    ("pidfd_getfd", "no stealing descriptors"),
    ("vhangup", "no terminal hangups"),
    ("syslog_write", ""),
    ("uselib", "obsolete loader interface"),
    ("create_module", "no kernel modules"),
    ("nfsservctl", "obsolete"),
    ("kcmp", "no comparing other processes' kernel objects"),
    ("mbind", "no NUMA policy"),
    ("set_mempolicy", "no NUMA policy"),
    ("migrate_pages", "no NUMA policy"),
    ("move_pages", "no NUMA policy"),
    ("landlock_create_ruleset", "LSMs are the host's"),
    ("landlock_add_rule", "LSMs are the host's"),
    ("landlock_restrict_self", "LSMs are the host's"),
    ("memfd_secret", "no secret memory"),
    (
        "process_madvise",
        "no memory advice through a pidfd (madvise serves a process's own)",
    ),
    (
        "process_mrelease",
        "no early reaping of a dying process's memory",
    ),
];

/// Syscalls left unimplemented on purpose, with the reason shown in
/// docs/compatibility.md.
pub const MISSING: &[(&str, &str)] = &[(
    "rseq",
    "ENOSYS on purpose: restartable sequences need the CPU number kept current at every \
     preemption, which the kernel does not see; glibc runs without them",
)];

fn implemented() -> Vec<(&'static str, Handler, Status, &'static str)> {
    let mut v = Vec::new();
    v.extend(fs::table());
    v.extend(mm::table());
    v.extend(process::table());
    v.extend(sched::table());
    v.extend(ptrace::table());
    v.extend(signal::table());
    v.extend(time::table());
    v.extend(futex::table());
    v.extend(poll::table());
    v.extend(net::table());
    v.extend(clone3::table());
    v.extend(pidfd::table());
    v.extend(membarrier::table());
    v.extend(ipc::table());
    v.extend(inotify::table());
    v.extend(splice::table());
    v
}

/// The whole table, by number.
pub fn table() -> &'static [Entry] {
    static T: OnceLock<Vec<Entry>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: Vec<Entry> = names::NAMES
            .iter()
            .enumerate()
            .map(|(nr, name)| Entry {
                nr: nr as u64,
                name,
                handler: None,
                status: Status::Missing,
                note: "",
            })
            .collect();
        for (name, h, status, note) in implemented() {
            let e = t
                .iter_mut()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("unknown syscall {name}"));
            e.handler = Some(h);
            e.status = status;
            e.note = note;
        }
        for (name, note) in MISSING {
            if let Some(e) = t
                .iter_mut()
                .find(|e| e.name == *name && e.handler.is_none())
            {
                e.note = note;
            }
        }
        for (name, note) in REFUSED {
            if let Some(e) = t.iter_mut().find(|e| e.name == *name) {
                e.handler = None;
                e.status = Status::Refused;
                e.note = note;
            }
        }
        t
    })
}

pub fn name(nr: u64) -> &'static str {
    table()
        .get(nr as usize)
        .map(|e| e.name)
        .filter(|n| !n.is_empty())
        .unwrap_or("unknown")
}

pub fn number(name: &str) -> Option<u64> {
    table().iter().find(|e| e.name == name).map(|e| e.nr)
}

/// Serves syscall `nr` of task `tid`, and accounts the task's CPU time:
/// workload code until now, kernel time while served.
pub fn dispatch(k: &mut Kernel, tid: Tid, nr: u64, args: [u64; 6]) -> SysResult<u64> {
    let (r, entered) = dispatch_unaccounted(k, tid, nr, args);
    let resumes = !matches!(r, Err(Errno::EBLOCK) | Err(Errno::ENORESUME));
    account_leave(k, tid, entered, resumes);
    r
}

/// `dispatch` without the end of the task's time in the kernel, which
/// the caller accounts with [`account_leave`] (the lean path does it once
/// the task runs again: the clock read is then off the way of its answer).
/// Returns when the syscall entered the kernel, too.
pub fn dispatch_unaccounted(
    k: &mut Kernel,
    tid: Tid,
    nr: u64,
    args: [u64; 6],
) -> (SysResult<u64>, std::time::Instant) {
    let entered = std::time::Instant::now();
    let outer = crate::clock::enter(entered);
    if let Some(t) = k.tasks.get_mut(&tid) {
        t.cpu_time.enter_kernel(entered);
    }
    let r = dispatch_inner(k, tid, nr, args);
    crate::clock::leave(outer);
    // Signal-driven I/O the syscall caused.
    k.deliver_async_io();
    // Signals a terminal raised (signal characters, hangups).
    k.deliver_tty_signals();
    k.deliver_dnotify();
    (r, entered)
}

/// The task's syscall, entered at `entered`, left the kernel now;
/// `resumes`: the task runs on (it did not block or go).
pub fn account_leave(k: &mut Kernel, tid: Tid, entered: std::time::Instant, resumes: bool) {
    let left = std::time::Instant::now();
    k.served_at = Some(left);
    if let Some(t) = k.tasks.get_mut(&tid) {
        t.cpu_time.leave_kernel(entered, left, resumes);
    }
}

fn dispatch_inner(k: &mut Kernel, tid: Tid, nr: u64, args: [u64; 6]) -> SysResult<u64> {
    k.current.set(tid);
    // A futex_waitv a signal cut short left its task on several futexes.
    if k.futexes.waits_on_many(tid) && !k.task(tid).sys.started {
        k.futexes.forget(tid);
    }
    let Some(e) = table().get(nr as usize) else {
        *k.stats.enosys.entry(nr).or_default() += 1;
        return Err(Errno::ENOSYS);
    };
    if let Some(r) = k.seccomp_check(tid, nr, &args) {
        return r;
    }
    match (e.status, e.handler) {
        (_, Some(h)) => {
            let r = h(k, tid, args);
            // Truncated file pages leave every process before anyone runs on.
            if crate::mm::filemem::has_invalidations() {
                k.apply_invalidations();
            }
            r
        }
        (Status::Refused, _) => {
            let n = k.stats.refused.entry(nr).or_default();
            *n += 1;
            if *n == 1 {
                let line = format!("refused syscall {} ({nr}) from pid {tid}", e.name);
                k.log.line(&line);
            }
            Err(Errno::EPERM)
        }
        _ => {
            let n = k.stats.enosys.entry(nr).or_default();
            *n += 1;
            if *n == 1 {
                let line = format!(
                    "unimplemented syscall {} ({nr}) from pid {tid}: ENOSYS",
                    e.name
                );
                k.log.line(&line);
            }
            Err(Errno::ENOSYS)
        }
    }
}

/// Helper for handlers: the argument as a file descriptor.
pub fn fd(a: u64) -> i32 {
    a as i32
}

/// docs/compatibility.md, generated from the table.
pub fn compat_markdown() -> String {
    use std::fmt::Write as _;
    let t = table();
    let count = |s: Status| {
        t.iter()
            .filter(|e| !e.name.is_empty() && e.status == s)
            .count()
    };
    let mut out = String::new();
    out.push_str("# Syscall compatibility of the userspace level\n\n");
    out.push_str(
        "Generated by `atoll compat` from the application kernel's syscall table \
         (`crates/kernel/src/syscalls`); do not edit by hand (`make docs` regenerates it, \
         and a test fails when it is stale). The table between the cpython markers is \
         written by `make cpython-table` and kept by `make docs`.\n\n",
    );
    out.push_str("## gVisor's syscall test suite\n\n");
    out.push_str(
        "`make conformance` runs gVisor's own syscall tests (`test/syscalls/linux`, the \
         suite gVisor holds its Sentry to, expecting Linux's behaviour everywhere) at the \
         native and userspace levels, and at gVisor's runsc when `RUNSC` names it, one \
         container per test binary; the native level is the host kernel, the reference. \
         `GVISOR_SYSCALL_TESTS` names the binaries (a directory or a tarball); they are a \
         yardstick, not part of atoll. Its per-binary results (passed, failed and skipped \
         cases, wall time at each level) are generated into \
         [conformance.md](conformance.md).\n\n",
    );
    out.push_str("## CPython's regression tests\n\n");
    out.push_str(
        "`make cpython-table` (`scripts/cpython-tests.py`) runs CPython's own regression \
         tests for its OS-facing modules (Debian's libpython3.11-testsuite, `python3 -m \
         test`) at both levels, one container per module, on the Debian runtimes rootfs of \
         the tests; the native level is the reference. The table between its markers is \
         that command's and kept by `make docs`.\n\n",
    );
    out.push_str("<!-- cpython:begin -->\n<!-- cpython:end -->\n\n");
    out.push_str("## Syscalls\n\n");
    out.push_str("Status: **full**: Linux semantics; **partial**: implemented, with the limits in the note; \
                  **refused**: dangerous, answered with EPERM, counted in the sandbox log and never \
                  forwarded to the host; **missing**: ENOSYS, counted in the sandbox log.\n\n");
    let _ = writeln!(
        out,
        "Totals (x86_64): {} full, {} partial, {} refused, {} missing.\n",
        count(Status::Full),
        count(Status::Partial),
        count(Status::Refused),
        count(Status::Missing)
    );
    out.push_str("| nr | syscall | status | note |\n|---:|---|---|---|\n");
    for e in t.iter().filter(|e| !e.name.is_empty()) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            e.nr,
            e.name,
            e.status.as_str(),
            e.note
        );
    }
    out
}
