//! One sandbox per pod at the userspace level: the runtime's side.
//!
//! A pod's sandbox container (CRI's pause) starts the pod's application
//! kernel as any userspace container does. Every later container of the
//! pod joins that kernel instead of starting its own: create opens its
//! rootfs and the sources of its bind mounts on the host (detached clones,
//! `open_tree`), sends them with its spec over the sandbox's control
//! socket, and hands the connection to the container's init, which becomes
//! the container's proxy on the host: at start it asks the kernel to start
//! the container's process (passing its own stdio, so a terminal or the
//! shim's pipes reach it), forwards signals, and exits as the process
//! does. libcontainer still gives the proxy the container's cgroup and
//! namespaces, so create/start/state/kill/delete/events work unchanged.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// containerd's CRI annotations.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// CRI-O's.
pub const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
pub const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";

/// What a container is in its pod, as its annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRole {
    /// Not a pod's (no CRI annotations).
    None,
    /// The pod's sandbox container.
    Sandbox,
    /// A container of the pod whose sandbox container is this id.
    Member(String),
}

/// The container's role in its pod.
pub fn role(spec: &Spec) -> PodRole {
    let Some(a) = spec.annotations().as_ref() else {
        return PodRole::None;
    };
    let (kind, sandbox) = match (a.get(CRI_CONTAINER_TYPE), a.get(CRIO_CONTAINER_TYPE)) {
        (Some(k), _) => (k, a.get(CRI_SANDBOX_ID)),
        (None, Some(k)) => (k, a.get(CRIO_SANDBOX_ID)),
        (None, None) => return PodRole::None,
    };
    match (kind.as_str(), sandbox) {
        ("sandbox", _) => PodRole::Sandbox,
        ("container", Some(s)) if !s.is_empty() => PodRole::Member(s.clone()),
        _ => PodRole::None,
    }
}

/// Whether the container joins its sandbox's pid namespace (CRI gives a
/// path to it with `shareProcessNamespace: true`; no pid namespace at all
/// is the host's, which a pod container at the userspace level cannot
/// have: it shares the pod's then).
pub fn shares_pids(spec: &Spec) -> bool {
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    match ns.iter().find(|n| n.typ() == LinuxNamespaceType::Pid) {
        Some(n) => n.path().is_some(),
        None => true,
    }
}

const SYS_OPEN_TREE: libc::c_long = 428;
const SYS_MOUNT_SETATTR: libc::c_long = 442;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached clone of the mount at `path` (recursive with `recursive`),
/// nosuid and nodev, read-only with `readonly`: the pod's kernel reaches
/// the files through it and nothing else of the host.
pub fn clone_tree(path: &Path, recursive: bool, readonly: bool) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("{}: path has a NUL byte", path.display()))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree with a valid path.
    let fd = unsafe { libc::syscall(SYS_OPEN_TREE, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| path.display().to_string());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_NOSUID
            | MOUNT_ATTR_NODEV
            | if readonly { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut at = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        at |= AT_RECURSIVE;
    }
    // SAFETY: mount_setattr on our detached mount with a valid attr struct.
    let r = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("{}: setting mount flags", path.display()));
    }
    Ok(fd)
}

/// The descriptors a pod container brings: its rootfs, then the sources of
/// its bind mounts (directories and regular files; other kinds are not
/// reachable from the pod's kernel and are left out).
pub struct Donated {
    pub fds: Vec<OwnedFd>,
    /// Per mount of the spec: the index of its source's descriptor.
    pub mount_fds: Vec<Option<usize>>,
}

/// `overlay`: the rootfs is the lower layer of the kernel's overlay, so
/// its clone is read-only (nothing in the sandbox may write it).
pub fn donate(spec: &Spec, bundle: &Path, rootfs: &Path, overlay: bool) -> Result<Donated> {
    let readonly = overlay
        || spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
    let mut fds = vec![clone_tree(rootfs, false, readonly).context("rootfs")?];
    let mut mount_fds = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let is_bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        let Some(src) = m.source().as_ref().filter(|_| is_bind) else {
            mount_fds.push(None);
            continue;
        };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let dest = m.destination().display();
        let kind = std::fs::metadata(&src)
            .with_context(|| format!("mount {dest}: source {}", src.display()))?
            .file_type();
        if !kind.is_dir() && !kind.is_file() {
            mount_fds.push(None);
            continue;
        }
        let fd = clone_tree(
            &src,
            opts.iter().any(|o| o == "rbind"),
            opts.iter().any(|o| o == "ro"),
        )
        .with_context(|| format!("mount {dest}"))?;
        mount_fds.push(Some(fds.len()));
        fds.push(fd);
    }
    Ok(Donated { fds, mount_fds })
}

/// Adds container `id` to the pod whose kernel listens on `socket`: the
/// connection its proxy keeps.
pub fn join(socket: &Path, id: &str, spec: &Spec, donated: &Donated) -> Result<UnixStream> {
    let req = serde_json::json!({
        "op": "container",
        "id": id,
        "spec": serde_json::to_value(spec)?,
        "root_fd": 0,
        "mount_fds": donated.mount_fds,
        "share_pids": shares_pids(spec),
    });
    let fds: Vec<RawFd> = donated.fds.iter().map(|f| f.as_raw_fd()).collect();
    let conn = crate::control::connect_and_send(socket, &req, &fds)?;
    let v = crate::control::read_reply(&conn)?;
    if let Some(e) = v.get("error") {
        bail!("{}", e.as_str().unwrap_or("refused"));
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(annotations: &[(&str, &str)]) -> Spec {
        let mut s = Spec::default();
        s.set_annotations(Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        s
    }

    #[test]
    fn roles_from_containerd_and_crio_annotations() {
        assert_eq!(role(&Spec::default()), PodRole::None);
        assert_eq!(
            role(&spec_with(&[(CRI_CONTAINER_TYPE, "sandbox")])),
            PodRole::Sandbox
        );
        assert_eq!(
            role(&spec_with(&[
                (CRI_CONTAINER_TYPE, "container"),
                (CRI_SANDBOX_ID, "abc")
            ])),
            PodRole::Member("abc".into())
        );
        assert_eq!(
            role(&spec_with(&[
                (CRIO_CONTAINER_TYPE, "container"),
                (CRIO_SANDBOX_ID, "def")
            ])),
            PodRole::Member("def".into())
        );
        // A container without its sandbox's id is on its own.
        assert_eq!(
            role(&spec_with(&[(CRI_CONTAINER_TYPE, "container")])),
            PodRole::None
        );
    }
}
