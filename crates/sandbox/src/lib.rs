//! The userspace level's entry point: runs in the container's init (after
//! libcontainer has set up namespaces, cgroup and rootfs), turns the OCI
//! spec into the kernel's configuration, starts the file server and the
//! application kernel, and exits with the workload's status.

mod config;
pub mod confine;
mod egress;
mod gofer;
mod link;

use std::os::fd::FromRawFd;
use std::rc::Rc;

use atoll_kernel::kernel::Kernel;
use atoll_kernel::kernel::boot::{NetworkMode, RootOverlay};
use atoll_kernel::platform::PlatformKind;
use atoll_runtime::executor::SandboxLaunch;

pub use config::sandbox_config;

/// docs/compatibility.md content.
pub fn compat_markdown() -> String {
    atoll_kernel::syscalls::compat_markdown()
}

/// Whether this host runs the userspace level's systrap platform, and if
/// not why (the level then runs on ptrace unless systrap is asked for).
pub fn systrap_support() -> Result<(), String> {
    atoll_kernel::platform::systrap::supported()
}

/// The platform asked for, or systrap where this host supports it.
fn platform(asked: Option<&str>) -> Result<PlatformKind, String> {
    use atoll_kernel::platform::systrap;
    match asked {
        Some(name) => {
            let p =
                PlatformKind::parse(name).ok_or_else(|| format!("unknown platform {name:?}"))?;
            if p == PlatformKind::Systrap {
                systrap::supported().map_err(|e| format!("platform systrap: {e}"))?;
            }
            Ok(p)
        }
        None if systrap::supported().is_ok() => Ok(PlatformKind::Systrap),
        None => Ok(PlatformKind::Ptrace),
    }
}

/// Soft RLIMIT_NOFILE up to the hard limit; returns the limit.
fn raise_nofile() -> u64 {
    // SAFETY: get/setrlimit on this process with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
        r.rlim_cur
    }
}

/// A pod container's OCI spec (sent by the runtime over the control
/// socket) → its configuration in the pod's kernel.
fn pod_container_config(
    spec: &serde_json::Value,
) -> Result<atoll_kernel::kernel::SandboxConfig, String> {
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).map_err(|e| format!("container spec: {e}"))?;
    sandbox_config(&spec)
}

/// Whether the container has a network namespace of its own (new, or
/// joined by path as CRI and CNI set it up). Without one it shares the
/// host's, whose interfaces the sandbox must never take: its stack then
/// has loopback only.
fn has_own_netns(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        })
}

/// Whether the init is still in the network namespace atoll create ran in
/// (a spec joining the node's namespace by path): its interfaces are the
/// node's and are never taken over. Unknown counts as the same.
fn in_runtime_netns(runtime: Option<(u64, u64)>) -> bool {
    match runtime {
        Some(r) => atoll_runtime::netns::identity("/proc/self/ns/net").is_none_or(|me| me == r),
        None => true,
    }
}

/// `SandboxEntry` for the runtime: never returns on success.
pub fn enter(launch: &SandboxLaunch) -> Result<(), String> {
    let mut config = sandbox_config(&launch.spec)?;
    config.platform = platform(launch.options.platform.as_deref())?;
    config.network = match launch.options.network.as_deref() {
        None => NetworkMode::Host,
        Some(n) => NetworkMode::parse(n).ok_or_else(|| format!("unknown network {n:?}"))?,
    };
    if let Some(o) = launch.options.overlay.as_deref() {
        config.overlay = RootOverlay::parse(o)?;
    }
    // Compiled before anything is forked; installed by the gofer and the
    // kernel once each holds what it needs.
    let filters = confine::compile(config.platform, config.directfs, config.network)?;
    atoll_kernel::vfs::procfs::capture_host_facts(config.cpus);
    atoll_kernel::platform::vdso::capture_host_vdso();
    let log = launch
        .options
        .log_fd
        // SAFETY: the runtime passed us this descriptor for the sandbox log.
        .map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    let control = launch.options.control_fd;
    config.strace = launch.options.strace;
    // The kernel holds the workload's files (and, with direct access, the
    // walked directories) as host descriptors: its own limit, not the
    // workload's (those are virtual), is the hard one.
    atoll_kernel::vfs::hostfs::size_walk_caches(raise_nofile(), config.directfs);
    // The gofer is the only component that can reach the container's files
    // from outside; with direct access it hands the kernel detached clones
    // of the rootfs and of the bind mounts of directories.
    let offered: Vec<Vec<u8>> = if config.directfs {
        std::iter::once(b"/".to_vec())
            .chain(
                config
                    .mounts
                    .iter()
                    .filter(|m| m.is_bind())
                    .map(|m| m.abs_dest()),
            )
            .collect()
    } else {
        Vec::new()
    };
    // With the overlay, nothing of the sandbox writes the rootfs: the
    // gofer makes it read-only before it clones it for the kernel.
    let readonly_root = config.overlay != RootOverlay::None && !config.readonly_root;
    let gofer = gofer::start(&filters.gofer, &offered, readonly_root)?;
    config.gofer_pid = Some(gofer.pid);
    // After the gofer is forked (it never holds a packet socket), before
    // the kernel confines itself (it could not open one afterwards).
    if config.network == NetworkMode::Sandbox {
        config.egress = egress::rules(launch.options.egress.as_ref())?;
    }
    if config.network == NetworkMode::Sandbox
        && has_own_netns(&launch.spec)
        && !in_runtime_netns(launch.options.runtime_netns)
    {
        config.links = link::take_over().map_err(|e| format!("network sandbox: {e}"))?;
    }
    // From here on the kernel names no file: its root is an empty tmpfs.
    confine::enter_empty_root()?;
    confine::set_name(c"atoll-kernel");
    let keep = confine::kernel_caps(&launch.spec, config.directfs, config.network);
    let probe = launch.options.debug_confinement.clone();
    let (platform, directfs, network) = (config.platform, config.directfs, config.network);
    let mut confine_kernel = || {
        confine::confine_kernel(
            &filters.kernel,
            &keep,
            platform,
            directfs,
            network,
            probe.as_deref(),
        )?;
        // Its filter refuses rt_sigaction from here on: a fault of the
        // kernel ends it by its own signal (see atoll_kernel::mm::safecopy).
        atoll_kernel::mm::safecopy::confined();
        Ok(())
    };
    let files: Rc<dyn atoll_gofer::FileService> =
        Rc::new(atoll_gofer::serve::Client::new(gofer.sock));
    let stdio = atoll_kernel::kernel::boot::dup_stdio().map_err(|e| format!("stdio: {e}"))?;
    let mut k = match Kernel::boot(config, files, stdio, log, &mut confine_kernel) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("atoll: {}", e.message);
            std::process::exit(e.code);
        }
    };
    if let Some(fd) = control {
        k.set_control(fd);
    }
    k.pod.parse_spec = Some(pod_container_config);
    let status = k.run();
    // The counters outlive the sandbox in its log: atoll reads them at
    // delete for the audit trail (refused syscalls per container).
    let stats = atoll_kernel::kernel::control_proto::stats(&k);
    k.log.line(&format!(
        "stats {}",
        serde_json::to_string(&stats).unwrap_or_default()
    ));
    // The last line of a kernel that stopped by itself: `delete` then
    // knows there is no seccomp kill to look up in the host's log.
    let code = atoll_kernel::kernel::exit::exit_code_of(status);
    k.log
        .line(&format!("{}{code}", atoll_runtime::kmsg::STOPPED_LINE));
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interfaces are taken only from a namespace of the container's
    /// own: a spec without a network namespace shares the host's, whose
    /// addresses must never be removed.
    #[test]
    fn only_the_containers_own_network_namespace_is_taken_over() {
        let spec = |ns: serde_json::Value| -> oci_spec::runtime::Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.2.0",
                "root": {"path": "rootfs"},
                "linux": {"namespaces": ns}
            }))
            .unwrap()
        };
        assert!(has_own_netns(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "network"}
        ]))));
        assert!(has_own_netns(&spec(serde_json::json!([
            {"type": "network", "path": "/var/run/netns/cni-1"}
        ]))));
        assert!(!has_own_netns(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "mount"}
        ]))));
        let no_linux: oci_spec::runtime::Spec = serde_json::from_value(
            serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}}),
        )
        .unwrap();
        assert!(!has_own_netns(&no_linux));
        // Joined by path, the namespace may still be the node's: compared
        // with the one create ran in; unknown is taken as the node's.
        let mine = atoll_runtime::netns::identity("/proc/self/ns/net");
        assert!(mine.is_some());
        assert!(in_runtime_netns(mine));
        assert!(!in_runtime_netns(Some((0, 0))));
        assert!(in_runtime_netns(None));
    }
}
