//! Confinement of the sandbox's own processes: if the workload finds a bug
//! in the application kernel or the gofer, it lands in a process that can
//! do almost nothing on the host.
//!
//! - The kernel: its own mount namespace whose root is an empty read-only
//!   tmpfs, no capabilities (except `CAP_NET_BIND_SERVICE` when the
//!   workload may bind ports below 1024), no_new_privs, and a seccomp
//!   allowlist ([`allowlist::kernel`]) on every thread.
//! - The gofer: rooted in the container's rootfs, its own empty network
//!   namespace, only the file-ownership capabilities, its own allowlist.
//! - The stubs: see `atoll_kernel::platform::{systrap, ptrace}::filter`.
//!
//! Violations kill the process (`SECCOMP_RET_KILL_PROCESS`); atoll reports
//! the offending syscall from the kernel's audit record.

pub mod allowlist;
mod root;

use atoll_kernel::kernel::boot::NetworkMode;
use atoll_kernel::platform::PlatformKind;
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::Spec;
use seccompiler::{BpfProgram, SeccompAction};

pub use root::enter_empty_root;

/// Capabilities the gofer keeps: it creates files as the workload's
/// credentials say (chown), and the kernel, not the host, checks the
/// workload's permissions (so the gofer overrides the host's).
pub const GOFER_CAPS: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
];

/// Both filters, compiled once before anything is forked.
pub struct Filters {
    pub kernel: BpfProgram,
    pub gofer: BpfProgram,
}

/// What violations do. A binary built with `ATOLL_CONFINE_AUDIT=1` in the
/// build environment (development only: the filters then only log to the
/// kernel's audit log) shows what a new feature needs.
fn mismatch() -> SeccompAction {
    if option_env!("ATOLL_CONFINE_AUDIT") == Some("1") {
        SeccompAction::Log
    } else {
        SeccompAction::KillProcess
    }
}

pub fn compile(
    platform: PlatformKind,
    directfs: bool,
    network: NetworkMode,
) -> Result<Filters, String> {
    Ok(Filters {
        kernel: allowlist::compile(&allowlist::kernel(platform, directfs, network), mismatch())?,
        gofer: allowlist::compile(&allowlist::gofer(), mismatch())?,
    })
}

/// The capabilities the kernel keeps: binding a port below 1024 is a host
/// `bind` on the workload's behalf, so with host sockets the kernel keeps
/// `CAP_NET_BIND_SERVICE` when (and only when) the workload's bounding
/// set has it (with `--network sandbox` its own stack binds nothing on
/// the host); with direct file access it does what the gofer does, so it
/// keeps the gofer's file-ownership capabilities ([`GOFER_CAPS`]).
pub fn kernel_caps(spec: &Spec, directfs: bool, network: NetworkMode) -> Vec<Capability> {
    let has = network == NetworkMode::Host
        && spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .and_then(|c| c.bounding().as_ref())
            .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::NetBindService));
    let mut keep = Vec::new();
    if has {
        keep.push(Capability::CAP_NET_BIND_SERVICE);
    }
    if directfs {
        keep.extend_from_slice(GOFER_CAPS);
    }
    keep
}

/// Drops every capability not in `keep` from all sets.
fn drop_capabilities(keep: &[Capability]) -> Result<(), String> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    let err =
        |what: &str, e: caps::errors::CapsError| format!("dropping capabilities ({what}): {e}");
    // The bounding set first: dropping from it needs CAP_SETPCAP.
    for c in caps::all() {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, c).map_err(|e| err("bounding", e))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("inheritable", e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| err("permitted", e))?;
    Ok(())
}

fn no_new_privs() -> Result<(), String> {
    // SAFETY: prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Names the calling process as `ps` and /proc show it.
pub fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// The kernel's last step before the workload: capabilities, no_new_privs
/// and the seccomp filter on every thread. `probe`, a test hook, then
/// makes a forbidden host syscall, which must kill the process.
pub fn confine_kernel(
    filter: &BpfProgram,
    keep: &[Capability],
    platform: PlatformKind,
    directfs: bool,
    network: NetworkMode,
    probe: Option<&str>,
) -> Result<(), String> {
    drop_capabilities(keep)?;
    no_new_privs()?;
    seccompiler::apply_filter_all_threads(filter).map_err(|e| format!("seccomp filter: {e}"))?;
    if let Some(name) = probe {
        forbidden_probe(name, platform, directfs, network)?;
    }
    Ok(())
}

/// `--debug-confinement SYSCALL`: attempt `SYSCALL` (with zero arguments)
/// as the confined kernel. Only syscalls off the allowlist are attempted:
/// an allowed one could do real work with those arguments.
fn forbidden_probe(
    name: &str,
    platform: PlatformKind,
    directfs: bool,
    network: NetworkMode,
) -> Result<(), String> {
    let names = &atoll_kernel::syscalls::names::NAMES;
    let nr = names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| format!("--debug-confinement: unknown syscall {name:?}"))?;
    if allowlist::kernel(platform, directfs, network)
        .iter()
        .any(|a| a.nr == nr as i64)
    {
        return Err(format!(
            "--debug-confinement: {name} is on the kernel's allowlist; name a forbidden syscall"
        ));
    }
    // SAFETY: a syscall the filter forbids; it kills the process before
    // the host kernel runs it.
    unsafe { libc::syscall(nr as libc::c_long, 0, 0, 0, 0, 0, 0) };
    Err(format!(
        "--debug-confinement: {name} returned; the seccomp filter did not stop it"
    ))
}

/// The gofer, once it holds the container's root.
pub fn confine_gofer(filter: &BpfProgram) -> Result<(), String> {
    drop_capabilities(GOFER_CAPS)?;
    no_new_privs()?;
    seccompiler::apply_filter(filter).map_err(|e| format!("seccomp filter: {e}"))
}

/// The allowlists as docs/security.md publishes them (`atoll allowlists`).
pub fn markdown() -> String {
    use atoll_kernel::platform::{ptrace, systrap};
    let k = allowlist::kernel(PlatformKind::Systrap, true, NetworkMode::Host);
    let kp = allowlist::kernel(PlatformKind::Ptrace, true, NetworkMode::Host);
    let kg = allowlist::kernel(PlatformKind::Systrap, false, NetworkMode::Host);
    let kn = allowlist::kernel(PlatformKind::Systrap, true, NetworkMode::Sandbox);
    let only = |a: &[allowlist::Allowed], b: &[allowlist::Allowed]| {
        a.iter()
            .filter(|x| !b.iter().any(|y| y.nr == x.nr))
            .map(|x| format!("`{}`", x.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let g = allowlist::gofer();
    let mut s = String::new();
    s.push_str(&format!(
        "Generated by `atoll allowlists` from the tables the filters are compiled from \
         (crates/sandbox/src/confine/allowlist.rs, crates/kernel/src/platform/systrap/filter.rs, \
         crates/kernel/src/platform/ptrace/filter.rs). Any other syscall kills the process \
         (`SECCOMP_RET_KILL_PROCESS`). Argument conditions of the kernel and gofer apply to the \
         argument's low 32 bits; the stub filters compare all 64.\n\n\
         ### Application kernel: {} syscalls (systrap platform, direct file access)\n\n\
         On the ptrace platform the kernel has {} instead: {} in place of {}. \
         Without direct file access (`dev.atoll.directfs: \"false\"`: every file operation \
         goes through the gofer) it has {}: none of {}. The table is the kernel's with \
         `--network host` (the workload's inet sockets are host sockets of the kernel: the \
         network of a container sharing the node's network namespace, or asking for it). With \
         `--network sandbox` (the default otherwise: the workload's inet sockets on the \
         kernel's own stack, frames moved with `read` and `write` on the AF_PACKET sockets the \
         container's init donated) it has {}: no {}; \
         `setsockopt` only `SOL_SOCKET`/`SO_RCVTIMEO` and `sendto` only without an address \
         (control connections), `ioctl` without the `SIOC*` requests.\n\n",
        k.len(),
        kp.len(),
        only(&kp, &k),
        only(&k, &kp),
        kg.len(),
        only(&k, &kg),
        kn.len(),
        only(&k, &kn),
    ));
    s.push_str(&allowlist::markdown(&k));
    s.push_str(&format!("\n### Gofer: {} syscalls\n\n", g.len()));
    s.push_str(&allowlist::markdown(&g));
    let rules = |title: String, rows: Vec<(&str, String, &str)>| {
        let mut s = format!("\n### {title}\n\n| syscall | arguments | why |\n|---|---|---|\n");
        for (name, cond, why) in rows {
            let cond = if cond.is_empty() { "any".into() } else { cond };
            s.push_str(&format!("| `{name}` | {cond} | {why} |\n"));
        }
        s
    };
    let count = |rows: &[(&str, String, &str)]| {
        let mut n: Vec<&str> = rows.iter().map(|r| r.0).collect();
        n.sort();
        n.dedup();
        n.len()
    };
    let st = systrap::filter::describe(&systrap::filter::stub_rules());
    let wk = systrap::filter::describe(&systrap::filter::work_rules());
    s.push_str(&rules(
        format!(
            "systrap stubs: {} syscalls, only from the stub's code (a call from elsewhere traps to the kernel)",
            count(&st)
        ),
        st,
    ));
    s.push_str(&rules(
        format!(
            "systrap workload threads: {} syscalls, on top of the stub filter",
            count(&wk)
        ),
        wk,
    ));
    let pt: Vec<(&str, String, &str)> = ptrace::filter::describe()
        .into_iter()
        .map(|(n, c)| (n, c, ""))
        .collect();
    s.push_str(&rules(
        format!(
            "ptrace stubs: {} syscalls, only from the stub's code page",
            count(&pt)
        ),
        pt,
    ));
    s
}
