//! A container's memory limit inside the guest. The VM is sized by its
//! own container's limit (or its pod's), but a pod's later containers run
//! in that VM too: without a cgroup of their own in the guest, a member
//! could take every page of the pod's guest whatever its spec says. Each
//! container with a memory limit gets a cgroup v2 group of the guest
//! kernel's, `atoll-<id>` under the agent's cgroup root, with `memory.max`
//! set to it; its init and every process exec'd into it join the group
//! before they exec (the child writes `0` into `cgroup.procs`), so the
//! guest kernel's OOM killer answers a member that outgrows its limit, as
//! the host's would under runc.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// Where the agent mounts the guest's cgroup v2 hierarchy: a directory of
/// its own tmpfs root, which containers pivot away from.
const ROOT: &str = "/run/atoll-cgroup";

/// Whether the memory controller is enabled below the root.
static ENABLED: Mutex<bool> = Mutex::new(false);

/// The group of container `id`, or an error for an id that is not a
/// single path component.
fn dir(id: &str) -> io::Result<String> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("container id {id:?} cannot name a cgroup"),
        ));
    }
    Ok(format!("{ROOT}/atoll-{id}"))
}

/// Mounts the hierarchy, at boot: before any container mounts it. There
/// is one cgroup2 superblock per cgroup namespace, and the first mount
/// decides whether it is read-only; a container's `ro` cgroup mount,
/// were it first, would leave the agent's own read-only too.
pub fn mount() -> io::Result<()> {
    std::fs::create_dir_all(ROOT)?;
    super::sys::mount(
        "cgroup2",
        ROOT,
        "cgroup2",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
}

/// Enables the memory controller for the groups below the root, once
/// (the root cgroup may hold processes and enable controllers at once).
fn enable_memory() -> io::Result<()> {
    let mut done = ENABLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*done {
        std::fs::write(format!("{ROOT}/cgroup.subtree_control"), "+memory")?;
        *done = true;
    }
    Ok(())
}

/// Makes container `id`'s group with its memory limit (bytes) and opens
/// its `cgroup.procs` for the init to join.
pub fn create(id: &str, limit: u64) -> io::Result<OwnedFd> {
    enable_memory().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("the guest's cgroups ({ROOT}): the memory controller: {e}"),
        )
    })?;
    let d = dir(id)?;
    match std::fs::create_dir(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{d}: {e}"))),
    }
    let mut max = OpenOptions::new()
        .write(true)
        .open(format!("{d}/memory.max"))?;
    max.write_all(limit.to_string().as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("{d}/memory.max = {limit}: {e}")))?;
    procs(id)?.ok_or_else(|| io::Error::other(format!("{d} vanished")))
}

/// The `cgroup.procs` of container `id`'s group, if it has one (an exec'd
/// process joins it).
pub fn procs(id: &str) -> io::Result<Option<OwnedFd>> {
    let d = dir(id)?;
    match OpenOptions::new()
        .write(true)
        .open(format!("{d}/cgroup.procs"))
    {
        Ok(f) => Ok(Some(f.into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes container `id`'s group once its init has gone (the kernel
/// refuses while a process is left; nothing to do then but leave it).
pub fn remove(id: &str) {
    if let Ok(d) = dir(id) {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_name_makes_a_group() {
        assert_eq!(dir("web-1").unwrap(), "/run/atoll-cgroup/atoll-web-1");
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(dir(bad).is_err(), "{bad:?}");
        }
    }
}
