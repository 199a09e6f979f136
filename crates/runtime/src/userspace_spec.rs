//! What the container's init needs when it is the application kernel
//! rather than the workload.
//!
//! In the userspace level the workload's user, capabilities, seccomp
//! profile and rlimits are virtual: the application kernel applies them to
//! the workload's syscalls. The init process itself runs as the container's
//! root with the capabilities it needs to set up the gofer and confine
//! itself, and drops them before the first workload instruction.

use oci_spec::runtime::{Capability, LinuxCapabilities, Spec, User};

/// Capabilities the init needs during sandbox setup (the kernel drops all
/// but the documented few before the workload runs).
pub const SETUP_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::SysAdmin,
    Capability::Mknod,
];

pub fn adapt(spec: &mut Spec) {
    init_as_root(spec, SETUP_CAPS);
    raise_nofile_for_kernel();
}

/// The descriptor limit the application kernel gets: at least
/// `KERNEL_NOFILE` (never below what the runtime has, never above the
/// host's `fs.nr_open`).
///
/// The kernel holds every host file of every workload process, and with
/// direct file access an `O_PATH` descriptor per cached walk, as host
/// descriptors of its own; the workload's own RLIMIT_NOFILE is virtual and
/// applied inside. Inherited as it was, the kernel's limit was whatever the
/// caller of `atoll` had (20,000 in a login shell here, 1,048,576 under
/// containerd), which made the walk cache's size depend on who started the
/// container. Each descriptor's kernel memory is charged to the
/// container's memory cgroup.
pub const KERNEL_NOFILE: u64 = 1 << 20;

/// Raises this (the runtime's) process's RLIMIT_NOFILE to the kernel's,
/// which the container's init inherits. Not through the spec's rlimits:
/// libcontainer applies those in its intermediate process, which may no
/// longer raise a hard limit (EPERM). Best effort: a runtime that may not
/// raise it keeps its own limit, and the kernel sizes its caches by what
/// it gets.
fn raise_nofile_for_kernel() {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(KERNEL_NOFILE);
    // SAFETY: get/setrlimit of this process with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return;
        }
        let limit = KERNEL_NOFILE.max(r.rlim_max).min(nr_open);
        if r.rlim_cur >= limit && r.rlim_max >= limit {
            return;
        }
        r.rlim_cur = limit;
        r.rlim_max = limit.max(r.rlim_max.min(nr_open));
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

/// What the init also needs with `--network sandbox`: it takes over the
/// container's interfaces (reads them and removes their addresses over
/// rtnetlink, opens AF_PACKET sockets on them) before the kernel drops
/// every capability.
pub const LINK_CAPS: &[Capability] = &[Capability::NetAdmin, Capability::NetRaw];

/// Adds `caps` to the init's bounding, effective and permitted sets.
pub fn add_init_caps(spec: &mut Spec, caps: &[Capability]) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    let mut c = process.capabilities().clone().unwrap_or_default();
    let add = |set: Option<std::collections::HashSet<Capability>>| {
        let mut set = set.unwrap_or_default();
        set.extend(caps.iter().copied());
        Some(set)
    };
    c.set_bounding(add(c.bounding().clone()));
    c.set_effective(add(c.effective().clone()));
    c.set_permitted(add(c.permitted().clone()));
    process.set_capabilities(Some(c));
    spec.set_process(Some(process));
}

/// Makes the container's init a process of atoll's own (the application
/// kernel, the VMM) rather than the workload: the container's root with
/// exactly `caps`, no_new_privs, and the runtime's own rlimits (the
/// workload's are applied inside, where its processes run).
pub fn init_as_root(spec: &mut Spec, caps: &[Capability]) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    let mut user = User::default();
    user.set_uid(0);
    user.set_gid(0);
    process.set_user(user);
    let caps: std::collections::HashSet<Capability> = caps.iter().copied().collect();
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(caps.clone()));
    c.set_effective(Some(caps.clone()));
    c.set_permitted(Some(caps));
    c.set_inheritable(None);
    c.set_ambient(None);
    process.set_capabilities(Some(c));
    process.set_no_new_privileges(Some(true));
    process.set_rlimits(None);
    spec.set_process(Some(process));
}
