//! OCI spec → the kernel's SandboxConfig.

use atoll_kernel::kernel::boot::{MountSpec, RootOverlay, SandboxConfig};
use atoll_kernel::seccomp::{Action, ArgCmp, Op, Profile, Rule};
use atoll_kernel::vfs::perm::{Cred, caps_from_names};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, Spec};

/// Annotation that turns syscall-site patching off (`"false"`).
pub const SYSCALL_PATCHING_ANNOTATION: &str = "dev.atoll.syscall-patching";
/// Annotation that turns direct file access off (`"false"`): every file
/// operation goes through the gofer.
pub const DIRECTFS_ANNOTATION: &str = "dev.atoll.directfs";
/// Annotation listing bind mounts (destinations, comma-separated) that
/// nothing outside the sandbox changes: their cached walks are trusted.
pub const EXCLUSIVE_MOUNTS_ANNOTATION: &str = "dev.atoll.exclusive-mounts";
/// Annotation that picks where rootfs writes go (`none`, `root:memory`).
/// The runtime resolves it with `--overlay` and the config file, and
/// writes the result here for a pod's container.
pub const OVERLAY_ANNOTATION: &str = "dev.atoll.overlay";

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a String> {
    spec.annotations().as_ref().and_then(|a| a.get(key))
}

fn rlimit_number(name: &str) -> Option<u32> {
    const NAMES: &[&str] = &[
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Action {
    match a {
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
        LinuxSeccompAction::ScmpActErrno => Action::Errno(errno.unwrap_or(libc::EPERM as u32)),
        LinuxSeccompAction::ScmpActKill
        | LinuxSeccompAction::ScmpActKillThread
        | LinuxSeccompAction::ScmpActKillProcess => Action::Kill,
        LinuxSeccompAction::ScmpActTrap => Action::Trap,
        LinuxSeccompAction::ScmpActLog => Action::Log,
        // No tracer or notifier inside the sandbox: ENOSYS, as libseccomp
        // returns when nothing listens.
        LinuxSeccompAction::ScmpActTrace | LinuxSeccompAction::ScmpActNotify => {
            Action::Errno(libc::ENOSYS as u32)
        }
    }
}

/// The spec's seccomp profile for the kernel to enforce.
pub fn seccomp_profile(s: &LinuxSeccomp) -> Profile {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut rules = Vec::new();
    for sc in s.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret());
        let args: Vec<ArgCmp> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let op = match a.op() {
                    LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
                    LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
                    LinuxSeccompOperator::ScmpCmpLe => Op::Le,
                    LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
                    LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
                    LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
                    // runtime-spec: value is the mask, valueTwo the datum.
                    LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq { mask: a.value() },
                };
                let value = match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
                    _ => a.value(),
                };
                ArgCmp {
                    index: a.index(),
                    op,
                    value,
                }
            })
            .collect();
        for name in sc.names() {
            if let Some(nr) = atoll_kernel::syscalls::number(name) {
                rules.push(Rule {
                    nr,
                    action: act,
                    args: args.clone(),
                });
            }
        }
    }
    Profile::new(default, rules)
}

pub fn sandbox_config(spec: &Spec) -> Result<SandboxConfig, String> {
    let p = spec.process().as_ref().ok_or("spec has no process")?;
    let args: Vec<Vec<u8>> = p
        .args()
        .iter()
        .flatten()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    if args.is_empty() {
        return Err("process.args is empty".into());
    }
    let env = p
        .env()
        .iter()
        .flatten()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let u = p.user();
    let caps = p.capabilities().as_ref();
    let set = |s: Option<&std::collections::HashSet<oci_spec::runtime::Capability>>| -> u64 {
        s.map(|s| {
            let names: Vec<String> = s.iter().map(|c| c.to_string()).collect();
            caps_from_names(names.iter().map(|n| n.as_str()))
        })
        .unwrap_or(0)
    };
    let cred = Cred {
        uid: u.uid(),
        euid: u.uid(),
        suid: u.uid(),
        fsuid: u.uid(),
        gid: u.gid(),
        egid: u.gid(),
        sgid: u.gid(),
        fsgid: u.gid(),
        groups: u.additional_gids().clone().unwrap_or_default(),
        cap_effective: set(caps.and_then(|c| c.effective().as_ref())),
        cap_permitted: set(caps.and_then(|c| c.permitted().as_ref())),
        cap_bounding: set(caps.and_then(|c| c.bounding().as_ref())),
        cap_inheritable: set(caps.and_then(|c| c.inheritable().as_ref())),
        cap_ambient: set(caps.and_then(|c| c.ambient().as_ref())),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
    };
    let rlimits = p
        .rlimits()
        .iter()
        .flatten()
        .filter_map(|r| {
            let name = serde_name(&format!("{:?}", r.typ()));
            rlimit_number(&name).map(|n| (n, r.soft(), r.hard()))
        })
        .collect();
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| MountSpec {
            dest: m.destination().as_os_str().as_encoded_bytes().to_vec(),
            fstype: m.typ().clone().unwrap_or_default(),
            source: m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_else(|| "none".into()),
            options: m.options().clone().unwrap_or_default(),
        })
        .collect();
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let mem_limit = resources
        .as_ref()
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|l| *l > 0)
        .map(|l| l as u64);
    let pids_limit = resources
        .as_ref()
        .and_then(|r| r.pids().as_ref())
        .map(|p| p.limit())
        .filter(|l| *l > 0)
        .map(|l| l as u64);
    let host_cpus = host_cpus();
    let cpus = resources
        .as_ref()
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| match (c.quota(), c.period()) {
            (Some(q), Some(p)) if q > 0 && p > 0 => Some((q as u64).div_ceil(p) as usize),
            _ => None,
        })
        .unwrap_or(host_cpus)
        .clamp(1, host_cpus);
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp_profile);
    Ok(SandboxConfig {
        args,
        env,
        cwd: p.cwd().as_os_str().as_encoded_bytes().to_vec(),
        cred,
        rlimits,
        hostname: spec.hostname().clone().unwrap_or_default().into_bytes(),
        mounts,
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        strace: false,
        mem_limit,
        pids_limit,
        cpus,
        gofer_pid: None,
        umask: p.user().umask().unwrap_or(0o022),
        seccomp,
        platform: Default::default(),
        syscall_patching: annotation(spec, SYSCALL_PATCHING_ANNOTATION)
            .is_none_or(|v| v != "false"),
        directfs: annotation(spec, DIRECTFS_ANNOTATION).is_none_or(|v| v != "false"),
        exclusive_mounts: annotation(spec, EXCLUSIVE_MOUNTS_ANNOTATION)
            .map(|v| {
                v.split(',')
                    .map(|d| d.trim())
                    .filter(|d| !d.is_empty())
                    .map(|d| d.as_bytes().to_vec())
                    .collect()
            })
            .unwrap_or_default(),
        // Sandbox-wide: set from the runtime's options at boot.
        network: Default::default(),
        overlay: annotation(spec, OVERLAY_ANNOTATION)
            .map(String::as_str)
            .map(RootOverlay::parse)
            .transpose()?
            .unwrap_or_default(),
        // Filled in by `enter`, in the container's network namespace.
        links: Vec::new(),
        egress: Default::default(),
    })
}

/// The host's CPUs, read once: the sandbox's own spec is converted before
/// the kernel confines itself, a pod container's after, when the kernel
/// can no longer read /sys or /proc (its seccomp filter kills it first).
fn host_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// `PosixRlimitType::RlimitNofile` (Debug) → `RLIMIT_NOFILE`.
fn serde_name(debug: &str) -> String {
    let body = debug.trim_start_matches("Rlimit");
    let mut out = String::from("RLIMIT_");
    out.push_str(&body.to_ascii_uppercase());
    out
}
