//! `host_namespaces`.
//!
//! A container shares the host's namespace of a type in two ways: by
//! leaving the type out of `linux.namespaces` (the runtime's own is kept,
//! and the runtime runs in the host's), or by naming a path to it.
//!
//! Joining a namespace by path is how Kubernetes pods work: every app
//! container of a pod joins the pause container's namespaces through
//! `/proc/<pid>/ns/<type>`, and containerd pins a pod's network namespace
//! at `/var/run/netns/cni-...`. So a path is refused only when it names a
//! namespace of the host: the namespace file is stat'ed (following the
//! magic link to the nsfs inode) and its `(st_dev, st_ino)` compared with
//! the host's namespaces, read from `/proc/1/ns/*` (atoll runs in the
//! host's pid namespace, where pid 1 is the host's init) and from
//! `/proc/2/ns/*` when pid 2 is `kthreadd` (kernel threads live in the
//! initial namespaces; some hosts' pid 1 cannot be inspected even by
//! root). A path that cannot be stat'ed, or is not a namespace, is refused
//! too, and so is every path when the host's namespaces cannot be read:
//! the check fails closed.
//!
//! Limits: the check happens at `create`, before libcontainer opens the
//! path, so a path swapped in between (a pid reused, a bind mount
//! replaced) is outside its reach; and it does not stop one tenant from
//! joining another tenant's (non-host) namespace, which only whoever
//! writes bundles can do.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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

/// `/proc/<pid>/ns/` entries that are namespaces (the `*_for_children`
/// links name namespaces too, possibly different from the process's own).
const NS_FILES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

/// `NSFS_MAGIC` from linux/magic.h: the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The type value config.json uses (oci-spec's Display says `net`/`mnt`).
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

/// A namespace's identity: the `(st_dev, st_ino)` of its nsfs inode.
pub type NsId = (u64, u64);

/// The host's namespaces, as `(st_dev, st_ino)` of `/proc/<pid>/ns/*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNamespaces {
    ids: BTreeSet<NsId>,
    /// Why a namespace file could not be read, if one could not.
    error: Option<String>,
}

impl HostNamespaces {
    /// The host's namespaces: those of pid 1 and of kthreadd.
    pub fn of_host() -> HostNamespaces {
        let mut host = HostNamespaces::of_process(Path::new("/proc/1"));
        let kthreadd =
            std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim_end() == "kthreadd");
        if kthreadd {
            let k = HostNamespaces::of_process(Path::new("/proc/2"));
            host.ids.extend(k.ids);
            host.error = host.error.or(k.error);
        }
        host
    }

    /// The namespaces of the process whose `/proc` directory is `proc_dir`.
    pub fn of_process(proc_dir: &Path) -> HostNamespaces {
        let mut ids = BTreeSet::new();
        let mut error = None;
        for name in NS_FILES {
            let path = proc_dir.join("ns").join(name);
            match std::fs::metadata(&path) {
                Ok(m) => {
                    ids.insert((m.dev(), m.ino()));
                }
                // Namespace types the kernel does not have.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && proc_dir.exists() => {}
                Err(e) => {
                    error.get_or_insert_with(|| format!("{}: {e}", path.display()));
                }
            }
        }
        HostNamespaces { ids, error }
    }

    /// Whether `id` is one of these namespaces (of any type: a file of one
    /// type naming a host namespace of another is refused all the same).
    pub fn contains(&self, id: NsId) -> bool {
        self.ids.contains(&id)
    }

    /// Every namespace in the set.
    pub fn ids(&self) -> impl Iterator<Item = NsId> + '_ {
        self.ids.iter().copied()
    }

    /// Why the host's namespaces are unknown, if they are.
    pub fn error(&self) -> Option<&str> {
        if self.ids.is_empty() {
            self.error.as_deref().or(Some("no namespace files"))
        } else {
            None
        }
    }
}

/// Why a namespace path may not be joined, or `None` if it may.
pub fn path_problem(path: &Path, host: &HostNamespaces) -> Option<String> {
    let shown = path.display();
    if let Some(e) = host.error() {
        return Some(format!("{shown} (the host's namespaces are unknown: {e})"));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{shown} (cannot be read: {e})")),
    };
    match fs_magic(path) {
        Ok(NSFS_MAGIC) => {}
        Ok(_) => return Some(format!("{shown} (not a namespace)")),
        Err(e) => return Some(format!("{shown} (cannot be read: {e})")),
    }
    host.contains((meta.dev(), meta.ino()))
        .then(|| format!("{shown} (a host namespace)"))
}

fn fs_magic(path: &Path) -> std::io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statfs buffer of our own.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type as i64)
}

/// The first namespace joined by a path that is not allowed (a host
/// namespace, or a path that cannot be checked), else the first required
/// namespace that is missing.
pub fn first_shared(spec: &Spec, host: &HostNamespaces) -> Option<(String, String)> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let list = namespaces.map(Vec::as_slice).unwrap_or_default();
    for ns in list {
        if let Some(path) = ns.path()
            && let Some(problem) = path_problem(path, host)
        {
            return Some((
                format!("linux.namespaces[{}].path", json_name(ns.typ())),
                problem,
            ));
        }
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
