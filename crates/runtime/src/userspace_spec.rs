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
