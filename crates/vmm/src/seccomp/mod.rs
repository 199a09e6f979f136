//! Seccomp allowlists of the VMM's threads, Firecracker's way: one filter
//! per thread role, each installed by the thread on itself before the
//! guest runs, and any other syscall kills the whole process
//! (`SECCOMP_RET_KILL_PROCESS`).
//!
//! - the VMM thread (the caller of [`crate::Vm::start`]): the agent
//!   session that relays the guest process's stdio, signals and exit;
//! - each vCPU thread: `KVM_RUN` and the serial console;
//! - the vsock device thread: its queues and the host-side Unix sockets;
//! - the virtio-fs device thread: the vhost-user frontend of the file
//!   server;
//! - the virtio-net device thread: its queues and the tap descriptor;
//! - the file server, a process of its own: the file system it serves
//!   and the queues the VMM hands it ([`crate::fs_server`]).
//!
//! One exception to the kill: in the roles that open nothing, `open` and
//! `openat` fail with EACCES ([`OPEN_REFUSED`]). glibc's malloc opens
//! `/proc/sys/vm/overcommit_memory` the first time it shrinks the heap of
//! a thread's arena (not the main one), and shrinks it without that when
//! the open fails; as a kill, a vsock thread that freed a large buffer
//! once took the VM down with it. A refused open opens nothing either.
//!
//! One table per role ([`allowlist`]) drives both the filter (through
//! seccompiler) and the list `atoll allowlists` publishes, so they cannot
//! drift apart.

pub mod allowlist;

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

pub use allowlist::{Allowed, Cond, Role};

/// The compiled filter of each thread role.
#[derive(Clone)]
pub struct Filters {
    /// The thread that calls [`crate::Vm::start`], installed as it
    /// returns; None leaves that thread unconfined (`atoll-vmm`, the
    /// benchmark binary, which reads its own /proc files at the end).
    pub vmm: Option<BpfProgram>,
    pub vcpu: BpfProgram,
    pub vsock: BpfProgram,
    pub fs: BpfProgram,
    pub net: BpfProgram,
    /// The file server process's, installed on all its threads.
    pub fs_server: BpfProgram,
}

/// What a violation does: kill the process. A binary built with
/// `ATOLL_CONFINE_AUDIT=1` in the build environment (development only)
/// logs violations to the kernel's audit log instead, to find what a new
/// feature needs.
fn mismatch() -> SeccompAction {
    if option_env!("ATOLL_CONFINE_AUDIT") == Some("1") {
        SeccompAction::Log
    } else {
        SeccompAction::KillProcess
    }
}

impl Filters {
    /// Compiles every role's filter (`confine_vmm`: the calling thread's
    /// too).
    pub fn compile(confine_vmm: bool) -> Result<Filters> {
        let c = |r: Role| compile_role(r, mismatch());
        Ok(Filters {
            vmm: if confine_vmm {
                Some(c(Role::Vmm)?)
            } else {
                None
            },
            vcpu: c(Role::Vcpu)?,
            vsock: c(Role::Vsock)?,
            fs: c(Role::Fs)?,
            net: c(Role::Net)?,
            fs_server: c(Role::FsServer)?,
        })
    }
}

fn condition(c: &Cond) -> Result<SeccompCondition> {
    let (arg, op, val) = match *c {
        Cond::Eq(a, v, _) => (a, SeccompCmpOp::Eq, v),
        Cond::Clear(a, mask, _) => (a, SeccompCmpOp::MaskedEq(mask), 0),
        Cond::Set(a, mask, _) => (a, SeccompCmpOp::MaskedEq(mask), mask),
    };
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, val)
        .map_err(|e| anyhow!("seccomp condition: {e}"))
}

/// The errno of an `open` or `openat` in a role that opens nothing.
pub const OPEN_REFUSED: i32 = libc::EACCES;

/// `role`'s filter: its allowlist, `mismatch` on anything else, and in
/// the roles that open nothing, `open` and `openat` refused with
/// [`OPEN_REFUSED`] (see the module's documentation for why).
pub fn compile_role(role: Role, mismatch: SeccompAction) -> Result<BpfProgram> {
    let list = allowlist::allowlist(role);
    let body = compile(&list, mismatch)?;
    let opens = [libc::SYS_open, libc::SYS_openat];
    if list.iter().any(|a| opens.contains(&a.nr)) {
        return Ok(body);
    }
    Ok(refuse_opens_then(body))
}

/// Puts in front of `body` (a seccompiler program) six instructions that
/// answer `open` and `openat` on x86_64 with `SECCOMP_RET_ERRNO`
/// ([`OPEN_REFUSED`]) and pass everything else, other architectures
/// included, to `body`'s first instruction. Classic BPF jumps are relative
/// and only go forward, so `body`'s own jumps are unchanged by what
/// comes before it, and `body` still checks the architecture itself.
fn refuse_opens_then(body: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    // struct seccomp_data: nr at offset 0, arch at 4.
    let op = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    let mut p = vec![
        op(LD_W_ABS, 4, 0, 0),
        // not x86_64: on to `body`
        op(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, libc::SYS_openat as u32, 1, 0),
        // open: to the refusal; anything else: on to `body`
        op(JEQ_K, libc::SYS_open as u32, 0, 1),
        op(RET_K, libc::SECCOMP_RET_ERRNO | OPEN_REFUSED as u32, 0, 0),
    ];
    p.extend(body);
    p
}

/// Compiles `list` into a filter that allows it and does `mismatch` on
/// anything else.
pub fn compile(list: &[Allowed], mismatch: SeccompAction) -> Result<BpfProgram> {
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = Default::default();
    for a in list {
        let entry = rules.entry(a.nr).or_default();
        for r in &a.rules {
            let conds = r.iter().map(condition).collect::<Result<Vec<_>>>()?;
            entry.push(SeccompRule::new(conds).map_err(|e| anyhow!("seccomp rule: {e}"))?);
        }
    }
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| anyhow!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| anyhow!("seccomp filter: {e}"))
}

/// Installs `filter` on the calling thread (and sets no_new_privs, which
/// the container's init already has).
pub fn apply(filter: &BpfProgram) -> Result<()> {
    seccompiler::apply_filter(filter).map_err(|e| anyhow!("installing the seccomp filter: {e}"))
}

/// Whether a thread keeps the process's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caps {
    /// Keeps the process's capabilities (the file server's filter test
    /// runs the passthrough file system on such a thread; the server
    /// itself is a process with its own, see [`crate::fs_server`]).
    Keep,
    /// Every other thread (vCPUs, vsock, net): none at all.
    Drop,
}

/// Empties the calling thread's effective, permitted and inheritable
/// capability sets (and so its ambient set). Capabilities are per thread
/// in Linux: the VMM's other threads, the file server's among them, keep
/// theirs.
pub fn drop_thread_caps() -> Result<()> {
    capset(&[CapData::default(); 2]).map_err(|e| anyhow!("dropping the thread's capabilities: {e}"))
}

/// One word of capget(2)/capset(2)'s version 3 data (capabilities 0-31,
/// then 32-63).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's capability sets.
pub(crate) fn capget() -> std::io::Result<[CapData; 2]> {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget(2) with a v3 header and its two data words, both
    // valid for the call.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(d)
}

/// Sets the calling thread's capability sets to `d`.
pub(crate) fn capset(d: &[CapData; 2]) -> std::io::Result<()> {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset(2) on the calling thread with a v3 header and its
    // two data words, both valid for the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Starts thread `name`, which drops its capabilities (unless `caps` says
/// keep), installs `filter` (if any) on itself and then runs `body`;
/// returns once it is confined, or the reason it could not be.
pub fn spawn(
    name: String,
    filter: Option<BpfProgram>,
    caps: Caps,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::sync_channel::<std::result::Result<(), String>>(1);
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            if caps == Caps::Drop
                && let Err(e) = drop_thread_caps()
            {
                let _ = tx.send(Err(format!("{e:#}")));
                return;
            }
            if let Some(Err(e)) = filter.as_ref().map(apply) {
                let _ = tx.send(Err(format!("{e:#}")));
                return;
            }
            let _ = tx.send(Ok(()));
            drop((tx, filter));
            body()
        })
        .map_err(|e| anyhow!("starting thread {name}: {e}"))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(anyhow!("thread {name}: {e}")),
        Err(_) => Err(anyhow!("thread {name} ended before it was confined")),
    }
}

/// The VMM's allowlists as docs/security.md publishes them.
pub fn markdown() -> String {
    let mut s = String::from(
        "Generated by `atoll allowlists` from the tables the VMM's filters are compiled from \
         (crates/vmm/src/seccomp/allowlist.rs). Each VMM thread installs its role's filter \
         on itself before the guest runs; any other syscall kills the VMM \
         (`SECCOMP_RET_KILL_PROCESS`), except `open` and `openat` in the roles that open \
         nothing (all but the file server): they fail with EACCES. glibc's malloc opens \
         /proc/sys/vm/overcommit_memory the first time it shrinks a thread's heap, and does \
         without when that fails. The file server is a process of its own, which \
         installs its filter on all its threads at once (TSYNC) before the guest runs; a \
         violation there kills the file server, and the guest's file requests fail with EIO \
         from then on. Argument conditions apply to the argument's low 32 bits. Every role \
         also has the calls every thread makes (the first table).\n",
    );
    s.push_str(&format!(
        "\n### Every thread, the VMM's and the file server's: {} syscalls\n\n",
        allowlist::common().len()
    ));
    s.push_str(&allowlist::markdown(&allowlist::common()));
    for role in Role::ALL {
        let own = allowlist::own(role);
        s.push_str(&format!(
            "\n### {}: {} syscalls, {} with the common ones\n\n{}\n\n",
            role.title(),
            own.len(),
            allowlist::allowlist(role).len(),
            role.about()
        ));
        s.push_str(&allowlist::markdown(&own));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap_line(status: &str, key: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// A thread started with Caps::Drop has no capability left, while the
    /// thread that started it (and a Caps::Keep thread) keeps its own.
    #[test]
    fn only_the_dropping_thread_loses_its_capabilities() {
        let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let (tx, rx) = mpsc::channel();
        for caps in [Caps::Drop, Caps::Keep] {
            let tx = tx.clone();
            spawn("caps-test".into(), None, caps, move || {
                let st = std::fs::read_to_string("/proc/thread-self/status").unwrap();
                tx.send((caps, cap_line(&st, "CapEff:"), cap_line(&st, "CapPrm:")))
                    .unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        }
        let after = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert_eq!(cap_line(&own, "CapEff:"), cap_line(&after, "CapEff:"));
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got.len(), 2);
        for (caps, eff, prm) in got {
            if caps == Caps::Drop {
                assert_eq!(
                    (eff.as_str(), prm.as_str()),
                    ("0000000000000000", "0000000000000000")
                );
            } else {
                assert_eq!(eff, cap_line(&own, "CapEff:"));
            }
        }
    }

    #[test]
    fn every_role_compiles_on_this_host() {
        let f = Filters::compile(true).unwrap();
        assert!(f.vmm.is_some());
        for p in [
            f.vmm.as_ref().unwrap(),
            &f.vcpu,
            &f.vsock,
            &f.fs,
            &f.net,
            &f.fs_server,
        ] {
            assert!(!p.is_empty());
        }
        assert!(Filters::compile(false).unwrap().vmm.is_none());
    }

    #[test]
    fn markdown_lists_every_role() {
        let m = markdown();
        for role in Role::ALL {
            assert!(m.contains(&format!("### {}:", role.title())), "{m}");
        }
        assert!(m.contains("`KVM_RUN`"));
    }

    /// A thread under the vCPU filter may not open a file (refused) nor
    /// make another call outside its list: the filter is really
    /// installed (the test runs violations with an errno instead of a
    /// kill, on a thread of its own).
    #[test]
    fn a_confined_thread_cannot_make_other_syscalls() {
        assert!(
            !allowlist::allowlist(Role::Vcpu)
                .iter()
                .any(|a| a.nr == libc::SYS_getppid)
        );
        let prog = compile_role(Role::Vcpu, SeccompAction::Errno(libc::EOWNERDEAD as u32)).unwrap();
        let h = spawn("vcpu-test".into(), Some(prog), Caps::Drop, || {
            let errno = || std::io::Error::last_os_error().raw_os_error();
            // SAFETY: a plain openat of a C string; the filter refuses it.
            let fd = unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
            assert_eq!((fd, errno()), (-1, Some(OPEN_REFUSED)));
            // SAFETY: open(2) itself, by number.
            let fd = unsafe { libc::syscall(libc::SYS_open, c"/etc/hostname".as_ptr(), 0) };
            assert_eq!((fd, errno()), (-1, Some(OPEN_REFUSED)));
            // SAFETY: getppid has no arguments; the filter refuses it.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            assert_eq!((r, errno()), (-1, Some(libc::EOWNERDEAD)));
            // Allowed: a write (to a pipe of its own would need pipe2,
            // which is not allowed either; stderr with nothing to say).
            // SAFETY: a zero-length write.
            assert_eq!(unsafe { libc::write(2, std::ptr::null(), 0) }, 0);
        })
        .unwrap();
        h.join().unwrap();
    }

    /// glibc's malloc opens /proc/sys/vm/overcommit_memory the first time
    /// it shrinks the heap of a thread's arena. A thread under the real
    /// vsock filter (violations kill) allocates and frees enough for that,
    /// in a fresh process (the test binary again, so that glibc has not
    /// looked yet): the process must live. Before opens were refused, it
    /// died of SIGSYS here, as the VMM did in the vm level's late-read
    /// check.
    #[test]
    fn a_confined_thread_can_shrink_its_heap() {
        const CHILD: &str = "ATOLL_TEST_SHRINK_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let filter = compile_role(Role::Vsock, mismatch()).unwrap();
            spawn("shrink-test".into(), Some(filter), Caps::Keep, || {
                // Below the mmap threshold, so from the thread's arena;
                // freed together, they leave a top chunk past the trim
                // threshold, which glibc gives back (shrink_heap).
                let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 100 << 10]).collect();
                let sum: u64 = blocks.iter().map(|b| u64::from(b[0])).sum();
                drop(blocks);
                assert_eq!(sum, (0..64).sum::<u64>());
            })
            .unwrap()
            .join()
            .unwrap();
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "seccomp::tests::a_confined_thread_can_shrink_its_heap",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
}
