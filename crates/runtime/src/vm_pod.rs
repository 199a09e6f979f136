//! One VM per pod at the vm level: the host's side.
//!
//! A pod's sandbox container (CRI's pause) boots the pod's VM as any
//! vm-level container does. Each later container of the pod runs inside
//! that VM: the guest agent makes it (own mount, UTS, IPC and pid
//! namespaces, pivoted into its own rootfs), and on the host the
//! container's init is a proxy that asks the agent to start the process,
//! relays its stdio and the signals it receives, and exits as it does
//! (libcontainer still gives the proxy the container's cgroup and
//! namespaces, so create/start/state/kill/delete work unchanged).
//!
//! The member's rootfs reaches the guest through the sandbox's virtio-fs
//! share (Kata's shared directory): create makes a per-pod directory
//! `<root>/.atoll/.pods/<sandbox>` a shared mount, and the sandbox's VMM
//! gets it bind-mounted as a slave at `/.atoll-pod` in its root (the
//! share's root). A member's create bind-mounts its rootfs at
//! `<pod dir>/<member>` on the host; the mount propagates into the VMM's
//! mount namespace, where the file server finds it, and the agent uses
//! `/.atoll-pod/<member>` of the share as the container's root. The
//! sandbox's own container in the guest has `/.atoll-pod` masked.
//!
//! The pod directory is outside every container's state directory, and
//! only ever emptied with umount and rmdir: a recursive removal of a
//! state directory cannot reach into a member's rootfs.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{Mount, MountBuilder};

use crate::layout::Layout;

/// Where the pod directory appears in the sandbox VMM's root, and so in
/// the root of its virtio-fs share.
pub const IN_SHARE: &str = "/.atoll-pod";

/// The pod directory of sandbox `sid`.
pub fn dir(layout: &Layout, sid: &str) -> PathBuf {
    layout.root.join(".atoll").join(".pods").join(sid)
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("{}: NUL in path", p.display()))
}

fn mount(src: &Path, target: &Path, flags: libc::c_ulong) -> std::io::Result<()> {
    let (s, t) = (
        cstr(src).map_err(std::io::Error::other)?,
        cstr(target).map_err(std::io::Error::other)?,
    );
    // SAFETY: mount with two C strings and no data.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts `p` (lazily: the VM's file server may hold files open) and
/// removes the then empty directory. Never removes contents.
fn unmount_and_rmdir(p: &Path) {
    if let Ok(c) = cstr(p) {
        // Bind mounts stack when the same source was mounted twice.
        // SAFETY: umount2 with a C string.
        while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {}
    }
    let _ = std::fs::remove_dir(p);
}

/// Makes sandbox `sid`'s pod directory, a shared mount point, and
/// returns the mount that puts it at IN_SHARE in the VMM's root.
pub fn prepare(layout: &Layout, sid: &str) -> Result<Mount> {
    let d = dir(layout, sid);
    std::fs::create_dir_all(&d).with_context(|| format!("pod directory {}", d.display()))?;
    mount(&d, &d, libc::MS_BIND)
        .and_then(|_| mount(Path::new("none"), &d, libc::MS_SHARED))
        .map_err(|e| {
            unmount_and_rmdir(&d);
            anyhow!("pod directory {}: {e}", d.display())
        })?;
    Ok(sandbox_mount(&d))
}

/// The spec mount of the pod directory for the sandbox's VMM: a slave,
/// so members' rootfs mounts made later on the host appear in it.
pub fn sandbox_mount(d: &Path) -> Mount {
    MountBuilder::default()
        .destination(IN_SHARE)
        .typ("bind")
        .source(d)
        .options(vec![
            "rbind".into(),
            "rslave".into(),
            "nosuid".into(),
            "nodev".into(),
        ])
        .build()
        .expect("all fields set")
}

/// Makes member `id`'s rootfs visible in sandbox `sid`'s VM; returns the
/// rootfs's path inside the share.
pub fn add_member(layout: &Layout, sid: &str, id: &str, rootfs: &Path) -> Result<String> {
    let d = dir(layout, sid);
    if !d.is_dir() {
        bail!(
            "its pod's sandbox container {sid} has no pod directory {} (it was not created at the vm level by this atoll)",
            d.display()
        );
    }
    let m = d.join(id);
    std::fs::create_dir(&m).with_context(|| format!("pod directory {}", m.display()))?;
    if let Err(e) = mount(rootfs, &m, libc::MS_BIND | libc::MS_REC) {
        let _ = std::fs::remove_dir(&m);
        bail!("binding rootfs {} into the pod: {e}", rootfs.display());
    }
    Ok(format!("{IN_SHARE}/{id}"))
}

/// Takes member `id`'s rootfs out of whichever pod it is in.
pub fn remove_member(layout: &Layout, id: &str) {
    let pods = layout.root.join(".atoll").join(".pods");
    for e in std::fs::read_dir(pods).into_iter().flatten().flatten() {
        let m = e.path().join(id);
        if m.exists() {
            unmount_and_rmdir(&m);
        }
    }
}

/// Removes sandbox `sid`'s pod directory: every member's rootfs mount,
/// then the directory's own.
pub fn teardown(layout: &Layout, sid: &str) {
    let d = dir(layout, sid);
    if !d.exists() {
        return;
    }
    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
        unmount_and_rmdir(&e.path());
    }
    unmount_and_rmdir(&d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_directory_is_outside_every_state_directory() {
        let l = Layout::new("/run/atoll");
        let d = dir(&l, "pod1");
        assert!(!d.starts_with(l.atoll_dir("pod1")));
        assert!(!d.starts_with(l.container_dir("pod1")));
        // ids never start with '.', so no container is named like it
        assert!(d.starts_with(l.root.join(".atoll").join(".pods")));
    }

    #[test]
    fn the_sandbox_sees_members_mounted_later() {
        let m = sandbox_mount(Path::new("/x"));
        assert_eq!(m.destination(), Path::new(IN_SHARE));
        let o = m.options().clone().unwrap();
        assert!(o.contains(&"rbind".to_string()) && o.contains(&"rslave".to_string()));
    }

    #[test]
    fn a_member_of_a_pod_without_a_directory_is_refused_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let l = Layout::new(t.path());
        let e = add_member(&l, "nosuch", "c1", t.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sandbox container nosuch"), "{e}");
        assert!(!dir(&l, "nosuch").exists());
    }

    #[test]
    fn removal_never_reaches_into_contents() {
        // Not a mount (no privileges needed): rmdir of a non-empty
        // directory fails, and its files stay.
        let t = tempfile::tempdir().unwrap();
        let l = Layout::new(t.path());
        let m = dir(&l, "s").join("c1");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("keep"), "x").unwrap();
        remove_member(&l, "c1");
        teardown(&l, "s");
        assert!(m.join("keep").exists());
    }
}
