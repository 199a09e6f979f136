//! The spec libcontainer actually runs: the bundle's spec plus atoll's
//! secure defaults for the chosen level.
//!
//! libcontainer reads `config.json` from a bundle directory, so atoll writes
//! this effective spec into its own per-container directory and points
//! libcontainer there; the user's bundle is never modified.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Capability, Spec};

use crate::level::Isolation;
use crate::seccomp_profile;

/// runc's default masked paths (`runc spec`), used when a bundle has none.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths, used when a bundle has none.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The devices every container may use (runc's allowed devices, without
/// its blanket `mknod` of any node): null, zero, full, random, urandom,
/// tty, console, ptmx, the pty slaves and /dev/net/tun, as
/// (type, major, minor) with `None` for any minor.
const ALLOWED_DEVICES: &[(&str, i64, Option<i64>)] = &[
    ("c", 1, Some(3)),
    ("c", 1, Some(5)),
    ("c", 1, Some(7)),
    ("c", 1, Some(8)),
    ("c", 1, Some(9)),
    ("c", 5, Some(0)),
    ("c", 5, Some(1)),
    ("c", 5, Some(2)),
    ("c", 136, None),
    ("c", 10, Some(200)),
];

/// The devices cgroup rules: deny everything first (libcontainer applies
/// the spec's rules on top of "allow all", so a spec without a deny rule,
/// like `atoll spec`'s empty list, would let a workload with CAP_MKNOD open
/// the host's disks), then the spec's own rules, then the allowed devices
/// and the spec's `linux.devices`, as runc does.
fn device_rules(linux: &oci_spec::runtime::Linux) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};
    let rule = |allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access("rwm");
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("all fields set")
    };
    let mut rules = vec![rule(false, LinuxDeviceType::A, None, None)];
    rules.extend(
        linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut r| {
                if let Some(t) = r.typ() {
                    r.set_typ(Some(cgroup_device_type(t)?));
                }
                Some(r)
            }),
    );
    for (typ, major, minor) in ALLOWED_DEVICES {
        let t = if *typ == "c" {
            LinuxDeviceType::C
        } else {
            LinuxDeviceType::B
        };
        rules.push(rule(true, t, Some(*major), *minor));
    }
    for d in linux.devices().iter().flatten() {
        if let Some(t) = cgroup_device_type(d.typ()) {
            rules.push(rule(true, t, Some(d.major()), Some(d.minor())));
        }
    }
    rules
}

/// The devices cgroup knows only `a`, `b` and `c` (cgroup v1 refuses
/// anything else in devices.allow, and the v2 filter has no other kind):
/// an unbuffered character device (`u`) is a character device, and a FIFO
/// (`p`) is no device at all, so it needs no rule (runc skips it too).
fn cgroup_device_type(
    t: oci_spec::runtime::LinuxDeviceType,
) -> Option<oci_spec::runtime::LinuxDeviceType> {
    use oci_spec::runtime::LinuxDeviceType;
    match t {
        LinuxDeviceType::U => Some(LinuxDeviceType::C),
        LinuxDeviceType::P => None,
        t => Some(t),
    }
}

/// Cgroup path used when the bundle does not name one.
pub fn default_cgroup_path(id: &str, systemd: bool) -> String {
    if systemd {
        format!("system.slice:atoll:{id}")
    } else {
        format!("/atoll/{id}")
    }
}

/// The bounding set of the container's process (what the seccomp profile
/// may grant syscalls for).
pub fn bounding_caps(spec: &Spec) -> HashSet<Capability> {
    spec.process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Applies the defaults every level shares, then the level's own.
pub fn effective_spec(
    original: &Spec,
    id: &str,
    bundle: &Path,
    level: Isolation,
    systemd: bool,
) -> Spec {
    let mut spec = original.clone();
    let mut linux = spec.linux().clone().unwrap_or_default();
    if linux.cgroups_path().is_none() {
        linux.set_cgroups_path(Some(default_cgroup_path(id, systemd).into()));
    }
    if linux.masked_paths().is_none() {
        linux.set_masked_paths(Some(
            DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        ));
    }
    if linux.readonly_paths().is_none() {
        linux.set_readonly_paths(Some(
            DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ));
    }
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_devices(Some(device_rules(&linux)));
    linux.set_resources(Some(resources));
    match level {
        Isolation::Native => {
            if linux.seccomp().is_none() {
                linux.set_seccomp(Some(seccomp_profile::default_profile(&bounding_caps(
                    original,
                ))));
            }
        }
        Isolation::Vm => {
            // The guest's agent applies the spec's profile to the process
            // it runs; the VMM confines its own threads.
            linux.set_seccomp(None);
        }
        Isolation::Userspace => {
            // The application kernel enforces the spec's profile on the
            // workload's syscalls; the kernel process installs its own
            // host allowlist, so libcontainer must not apply one to it.
            linux.set_seccomp(None);
        }
    }
    spec.set_linux(Some(linux));

    // Relative bind-mount sources are relative to the bundle, which is no
    // longer where libcontainer reads the spec from.
    if let Some(mounts) = spec.mounts().clone() {
        let mounts = mounts
            .into_iter()
            .map(|mut m| {
                if let Some(src) = m.source().clone() {
                    let is_bind = m.typ().as_deref() == Some("bind")
                        || m.options()
                            .iter()
                            .flatten()
                            .any(|o| o == "bind" || o == "rbind");
                    if is_bind && src.is_relative() {
                        m.set_source(Some(bundle.join(src)));
                    }
                }
                m
            })
            .collect();
        spec.set_mounts(Some(mounts));
    }
    if level == Isolation::Userspace {
        crate::userspace_spec::adapt(&mut spec);
    }
    if level == Isolation::Vm {
        crate::vm_level::adapt(&mut spec);
    }
    work_around_libcontainer(&mut spec);
    spec
}

/// The seccomp profile the vm level's guest agent applies: the spec's, or
/// the default one for the process's bounding set, with the same
/// translation the native level's filter gets (see seccomp_filter.rs).
pub fn guest_seccomp_profile(original: &Spec) -> oci_spec::runtime::LinuxSeccomp {
    let mut spec = original.clone();
    let mut linux = spec.linux().clone().unwrap_or_default();
    if linux.seccomp().is_none() {
        linux.set_seccomp(Some(seccomp_profile::default_profile(&bounding_caps(
            original,
        ))));
    }
    spec.set_linux(Some(linux));
    work_around_libcontainer(&mut spec);
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .expect("set above")
}

/// Compensates for two libcontainer 0.7 behaviours that differ from runc,
/// so bundles mean what the runtime-spec says:
///
/// - `noNewPrivileges: false` makes libcontainer load the seccomp filter
///   after dropping capabilities (it tests `is_none()`), which fails
///   without CAP_SYS_ADMIN. `false` and absent mean the same, so absent.
/// - SCMP_CMP_MASKED_EQ: the spec (and runc) use `value` as the mask and
///   `valueTwo` as the datum; libcontainer passes them the other way round,
///   which turns Docker's clone rule into "allow every clone". Swap them.
fn work_around_libcontainer(spec: &mut Spec) {
    if let Some(mut p) = spec.process().clone()
        && p.no_new_privileges() == Some(false)
    {
        p.set_no_new_privileges(None);
        spec.set_process(Some(p));
    }
    let Some(mut linux) = spec.linux().clone() else {
        return;
    };
    let Some(mut seccomp) = linux.seccomp().clone() else {
        return;
    };
    let Some(syscalls) = seccomp.syscalls().clone() else {
        return;
    };
    let syscalls = syscalls
        .into_iter()
        .map(|mut s| {
            if let Some(args) = s.args().clone() {
                let args = args
                    .into_iter()
                    .map(|a| {
                        if a.op() == oci_spec::runtime::LinuxSeccompOperator::ScmpCmpMaskedEq {
                            oci_spec::runtime::LinuxSeccompArgBuilder::default()
                                .index(a.index())
                                .op(a.op())
                                .value(a.value_two().unwrap_or(0))
                                .value_two(a.value())
                                .build()
                                .expect("all fields set")
                        } else {
                            a
                        }
                    })
                    .collect();
                s.set_args(Some(args));
            }
            s
        })
        .collect();
    seccomp.set_syscalls(Some(syscalls));
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_denied_unless_allowed() {
        for level in [Isolation::Native, Isolation::Userspace] {
            let e = effective_spec(&Spec::default(), "c1", Path::new("/b"), level, false);
            let linux = e.linux().clone().unwrap();
            let rules = linux
                .resources()
                .clone()
                .unwrap()
                .devices()
                .clone()
                .unwrap();
            assert!(!rules[0].allow(), "{rules:?}");
            assert_eq!(rules[0].typ(), Some(oci_spec::runtime::LinuxDeviceType::A));
            assert!(rules[1..].iter().all(|r| r.allow()));
            // /dev/null is allowed; nothing of block devices is.
            assert!(
                rules
                    .iter()
                    .any(|r| r.major() == Some(1) && r.minor() == Some(3))
            );
            assert!(
                !rules
                    .iter()
                    .any(|r| r.allow() && r.typ() == Some(oci_spec::runtime::LinuxDeviceType::B))
            );
        }
    }

    #[test]
    fn fifo_and_unbuffered_devices_make_valid_cgroup_rules() {
        use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};
        let dev = |path: &str, typ, major, minor| {
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(major)
                .minor(minor)
                .build()
                .unwrap()
        };
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_devices(Some(vec![
            dev("/dev/fifo", LinuxDeviceType::P, 0, 0),
            dev("/dev/unull", LinuxDeviceType::U, 1, 3),
            dev("/dev/loop9", LinuxDeviceType::B, 7, 9),
        ]));
        spec.set_linux(Some(linux));
        let e = effective_spec(&spec, "c1", Path::new("/b"), Isolation::Native, false);
        let rules = e
            .linux()
            .clone()
            .unwrap()
            .resources()
            .clone()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        let types: Vec<_> = rules.iter().filter_map(|r| r.typ()).collect();
        assert!(
            types.iter().all(|t| matches!(
                t,
                LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C
            )),
            "{rules:?}"
        );
        // The FIFO has no rule; the unbuffered device is allowed as `c 1:3`.
        assert!(!rules.iter().any(|r| r.major() == Some(0)), "{rules:?}");
        assert!(rules.iter().any(|r| r.allow()
            && r.typ() == Some(LinuxDeviceType::C)
            && r.major() == Some(1)
            && r.minor() == Some(3)));
        assert!(
            rules
                .iter()
                .any(|r| r.allow() && r.typ() == Some(LinuxDeviceType::B) && r.major() == Some(7))
        );
    }

    #[test]
    fn native_gets_default_seccomp_and_paths() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        linux.set_seccomp(None);
        spec.set_linux(Some(linux));
        let e = effective_spec(&spec, "c1", Path::new("/b"), Isolation::Native, false);
        let l = e.linux().as_ref().unwrap();
        assert!(l.seccomp().is_some());
        assert!(
            l.masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
        assert!(
            l.readonly_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/sys".to_string())
        );
        assert_eq!(l.cgroups_path().as_deref(), Some(Path::new("/atoll/c1")));
    }

    #[test]
    fn explicit_choices_are_kept() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_masked_paths(Some(vec![]));
        linux.set_cgroups_path(Some("/mine".into()));
        spec.set_linux(Some(linux));
        let e = effective_spec(&spec, "c1", Path::new("/b"), Isolation::Native, false);
        let l = e.linux().as_ref().unwrap();
        assert_eq!(l.masked_paths().as_ref().unwrap().len(), 0);
        assert_eq!(l.cgroups_path().as_deref(), Some(Path::new("/mine")));
    }

    #[test]
    fn masked_eq_is_swapped_for_libcontainer_and_nnp_false_dropped() {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap();
        p.set_no_new_privileges(Some(false));
        spec.set_process(Some(p));
        let mut l = spec.linux().clone().unwrap();
        l.set_seccomp(None);
        spec.set_linux(Some(l));
        let e = effective_spec(&spec, "c", Path::new("/b"), Isolation::Native, false);
        assert_eq!(e.process().as_ref().unwrap().no_new_privileges(), None);
        let seccomp = e.linux().as_ref().unwrap().seccomp().clone().unwrap();
        let clone = seccomp
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names() == &["clone"])
            .unwrap();
        let a = &clone.args().as_ref().unwrap()[0];
        assert_eq!(a.value(), 0);
        assert_eq!(a.value_two(), Some(0x7E02_0000));
    }

    #[test]
    fn relative_bind_sources_become_absolute() {
        let mut spec = Spec::default();
        let m = oci_spec::runtime::MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("data")
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap();
        spec.set_mounts(Some(vec![m]));
        let e = effective_spec(&spec, "c1", Path::new("/b"), Isolation::Native, false);
        let src = e.mounts().as_ref().unwrap()[0].source().clone().unwrap();
        assert_eq!(src, Path::new("/b/data"));
    }
}
