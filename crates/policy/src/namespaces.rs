//! `host_namespaces`.

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Namespaces a container must have of its own: leaving one out of
/// `linux.namespaces` shares the runtime's, which is the host's.
pub const REQUIRED: [LinuxNamespaceType; 5] = [
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
];

/// The `type` value config.json uses (oci-spec's Display says `net`/`mnt`).
pub fn json_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The first namespace joined by path (any type: a path always names an
/// existing namespace, which the container would share), else the first
/// required namespace that is missing.
pub fn first_shared(spec: &Spec) -> Option<(String, String)> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let list = namespaces.map(Vec::as_slice).unwrap_or_default();
    if let Some(ns) = list.iter().find(|ns| ns.path().is_some()) {
        let path = ns.path().as_ref().expect("found by path");
        return Some((
            format!("linux.namespaces[{}].path", json_name(ns.typ())),
            path.display().to_string(),
        ));
    }
    REQUIRED
        .iter()
        .find(|t| !list.iter().any(|ns| ns.typ() == **t))
        .map(|t| {
            (
                format!("linux.namespaces[{}]", json_name(*t)),
                "absent".to_string(),
            )
        })
}
