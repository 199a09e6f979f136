//! Mount checks: `host_paths`, `host_paths_readonly` and the mount part of
//! `privileged`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::paths::{self, is_under, normalize};

/// Filesystems the kernel makes up: a non-bind mount of one of these has
/// no host source.
pub const PSEUDO_FS: [&str; 7] = [
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
];

fn options(m: &Mount) -> &[String] {
    m.options().as_deref().unwrap_or_default()
}

pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || options(m).iter().any(|o| o == "bind" || o == "rbind")
}

/// Whether the mount's source is a host path (a directory, file or device).
/// Unknown filesystem types count as host sources: failing closed.
pub fn has_host_source(m: &Mount) -> bool {
    is_bind(m) || !m.typ().as_deref().is_some_and(|t| PSEUDO_FS.contains(&t))
}

/// The last of `ro`/`rro`/`rw` wins, as the mount options are applied.
pub fn is_read_only(m: &Mount) -> bool {
    options(m)
        .iter()
        .rev()
        .find_map(|o| match o.as_str() {
            "ro" | "rro" => Some(true),
            "rw" => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

fn options_value(m: &Mount) -> String {
    if options(m).is_empty() {
        "(none)".to_string()
    } else {
        options(m).join(",")
    }
}

fn host_mounts(spec: &Spec) -> impl Iterator<Item = (usize, &Mount)> {
    spec.mounts()
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, m)| has_host_source(m))
}

/// `host_paths`: the first host-source mount outside every prefix.
pub fn first_outside(spec: &Spec, prefixes: &[PathBuf]) -> Option<(String, String)> {
    host_mounts(spec).find_map(|(i, m)| {
        let field = format!("mounts[{i}].source");
        let Some(src) = m.source() else {
            return Some((field, "absent".to_string()));
        };
        if !src.is_absolute() {
            return Some((field, format!("{} (not absolute)", src.display())));
        }
        if paths::allowed(src, prefixes) {
            return None;
        }
        let resolved = paths::resolve(src);
        let value = if resolved == normalize(src) && resolved == *src {
            src.display().to_string()
        } else {
            format!("{} -> {}", src.display(), resolved.display())
        };
        Some((field, value))
    })
}

/// `host_paths_readonly`: the first writable host-source mount.
pub fn first_writable_host(spec: &Spec) -> Option<(String, String)> {
    host_mounts(spec)
        .find(|(_, m)| !is_read_only(m))
        .map(|(i, m)| (format!("mounts[{i}].options"), options_value(m)))
}

/// The mount and device part of `privileged` (see the rule's doc).
pub fn first_privileged(spec: &Spec) -> Option<(String, String)> {
    let sys = Path::new("/sys");
    let proc_sys = Path::new("/proc/sys");
    let proc = Path::new("/proc");
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if is_read_only(m) {
            continue;
        }
        let dest = normalize(m.destination());
        if m.typ().as_deref() == Some("sysfs") || dest == sys || is_under(&dest, proc_sys) {
            return Some((
                format!("mounts[{i}].destination"),
                format!("{} (writable)", dest.display()),
            ));
        }
        if let (true, Some(src)) = (is_bind(m), m.source()) {
            let src = normalize(src);
            if is_under(&src, sys) || is_under(&src, proc) {
                return Some((
                    format!("mounts[{i}].source"),
                    format!("{} (writable)", src.display()),
                ));
            }
        }
    }

    let linux = spec.linux().as_ref();
    // atoll's effective spec adds runc's default read-only paths, which
    // include /proc/sys, when the bundle has none.
    let default_ro = [String::from("/proc/sys")];
    let readonly = linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&default_ro);
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    for m in spec.mounts().iter().flatten() {
        if m.typ().as_deref() != Some("proc") {
            continue;
        }
        let sysctl_dir = normalize(m.destination()).join("sys");
        let covered = readonly
            .iter()
            .chain(masked)
            .any(|p| is_under(&sysctl_dir, &normalize(Path::new(p))));
        if !covered {
            return Some((
                "linux.readonlyPaths".to_string(),
                format!("(without {})", sysctl_dir.display()),
            ));
        }
    }

    let devices = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_deref())
        .unwrap_or_default();
    devices.iter().enumerate().find_map(|(i, d)| {
        let any = |n: Option<i64>| n.is_none_or(|n| n == -1);
        let all_types = d.typ().is_none_or(|t| t == LinuxDeviceType::A);
        let access = d.access().as_deref().unwrap_or("rwm");
        let reads_or_writes = access.contains('r') || access.contains('w');
        (d.allow() && all_types && any(d.major()) && any(d.minor()) && reads_or_writes).then(|| {
            (
                format!("linux.resources.devices[{i}]"),
                format!("allow all ({access})"),
            )
        })
    })
}
