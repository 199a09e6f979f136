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
//! Bind mounts (CRI gives every container a few: /etc/hosts, resolv.conf,
//! hostname, the pod's /dev/shm, the termination log) travel the same
//! way, as Kata's shared directory does: create bind-mounts each source
//! at `<pod dir>/<container>=binds/<n>` (read-only there when the mount
//! is), and the agent binds `/.atoll-pod/<container>=binds/<n>` of the
//! share onto the destination. '=' is in no container id, so no member's
//! rootfs is named like a staging directory.
//!
//! The pod directory is outside every container's state directory, and
//! only ever emptied with umount and rmdir (or unlink of an empty mount
//! point file): a recursive removal of a state directory cannot reach
//! into a member's rootfs or a bind mount's source.

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
    // (Another pod's teardown may remove the then empty parent between
    // the two mkdirs: try again.)
    let mut made = std::fs::create_dir_all(&d);
    for _ in 0..3 {
        if made.is_ok() {
            break;
        }
        made = std::fs::create_dir_all(&d);
    }
    made.with_context(|| format!("pod directory {}", d.display()))?;
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

/// Whether a spec mount is a bind mount.
fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Container `id`'s staging directory in pod directory `pod`.
fn binds_dir(pod: &Path, id: &str) -> PathBuf {
    pod.join(format!("{id}=binds"))
}

/// Refuses a vm-level container's bind mounts outside a pod: only a pod
/// has a directory shared with the guest to stage them in.
pub fn refuse_binds(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(m) = spec.mounts().iter().flatten().find(|m| is_bind(m)) {
        bail!(
            "bind mount of {} on {}: at the vm level bind mounts need a pod (a CRI sandbox container, whose VM shares them with the guest)",
            m.source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default(),
            m.destination().display()
        );
    }
    Ok(())
}

/// Stages container `id`'s bind-mount sources in sandbox `sid`'s pod
/// directory and points the spec's bind mounts at them, as paths in the
/// share. Relative sources are relative to `bundle`. On error nothing of
/// it is left.
pub fn stage_binds(
    layout: &Layout,
    sid: &str,
    id: &str,
    bundle: &Path,
    spec: &mut oci_spec::runtime::Spec,
) -> Result<()> {
    let mounts = spec.mounts().clone().unwrap_or_default();
    if !mounts.iter().any(is_bind) {
        return Ok(());
    }
    let d = dir(layout, sid);
    if !d.is_dir() {
        bail!(
            "its pod's sandbox container {sid} has no pod directory {}",
            d.display()
        );
    }
    let b = binds_dir(&d, id);
    std::fs::create_dir(&b).with_context(|| format!("pod directory {}", b.display()))?;
    let staged = mounts
        .into_iter()
        .enumerate()
        .map(|(n, mut m)| {
            if is_bind(&m) {
                let dest = m.destination().display().to_string();
                let src = m.source().clone().unwrap_or_default();
                let src = if src.is_relative() {
                    bundle.join(src)
                } else {
                    src
                };
                let stage = b.join(n.to_string());
                stage_one(&src, &stage, m.options().as_deref().unwrap_or_default())
                    .map_err(|e| anyhow!("bind mount of {} on {dest}: {e}", src.display()))?;
                m.set_source(Some(PathBuf::from(format!("{IN_SHARE}/{id}=binds/{n}"))));
            }
            Ok(m)
        })
        .collect::<Result<Vec<_>>>();
    match staged {
        Ok(m) => {
            spec.set_mounts(Some(m));
            Ok(())
        }
        Err(e) => {
            unstage(&b);
            Err(e)
        }
    }
}

/// Binds `src` at `stage` (a directory onto a directory, anything else
/// onto an empty file), read-only there if the mount is: the file server
/// then cannot write to it either, whatever the guest asks.
fn stage_one(src: &Path, stage: &Path, options: &[String]) -> std::io::Result<()> {
    if std::fs::metadata(src)?.is_dir() {
        std::fs::create_dir(stage)?;
    } else {
        std::fs::File::create(stage)?;
    }
    let rec = if options.iter().any(|o| o == "rbind") {
        libc::MS_REC
    } else {
        0
    };
    mount(src, stage, libc::MS_BIND | rec)?;
    if options.iter().any(|o| o == "ro") {
        mount(
            Path::new("none"),
            stage,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        )?;
    }
    Ok(())
}

/// Removes a staging directory: each mount point unmounted, then removed
/// (an empty file or directory), never recursively.
fn unstage(b: &Path) {
    for e in std::fs::read_dir(b).into_iter().flatten().flatten() {
        let p = e.path();
        if let Ok(c) = cstr(&p) {
            // SAFETY: umount2 with a C string.
            while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {}
        }
        if std::fs::remove_dir(&p).is_err() {
            // A file mount point: removed only once nothing is mounted on
            // it (then it is the empty file create made).
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let _ = std::fs::remove_dir(b);
}

/// Takes member `id`'s rootfs and staged bind mounts out of whichever pod
/// it is in.
pub fn remove_member(layout: &Layout, id: &str) {
    let pods = layout.root.join(".atoll").join(".pods");
    for e in std::fs::read_dir(pods).into_iter().flatten().flatten() {
        let m = e.path().join(id);
        if m.exists() {
            unmount_and_rmdir(&m);
        }
        let b = binds_dir(&e.path(), id);
        if b.exists() {
            unstage(&b);
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
        if e.file_name().to_string_lossy().ends_with("=binds") {
            unstage(&e.path());
        } else {
            unmount_and_rmdir(&e.path());
        }
    }
    unmount_and_rmdir(&d);
    // The last pod's teardown leaves no `.pods` behind (fails while
    // another pod has its directory there).
    if let Some(pods) = d.parent() {
        let _ = std::fs::remove_dir(pods);
    }
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
    fn the_last_teardown_removes_the_pods_directory_a_busy_one_stays() {
        let t = tempfile::tempdir().unwrap();
        let l = Layout::new(t.path());
        std::fs::create_dir_all(dir(&l, "a")).unwrap();
        std::fs::create_dir_all(dir(&l, "b")).unwrap();
        teardown(&l, "a");
        assert!(!dir(&l, "a").exists());
        assert!(dir(&l, "b").exists());
        teardown(&l, "b");
        assert!(!t.path().join(".atoll").join(".pods").exists());
        assert!(t.path().join(".atoll").exists());
    }

    #[test]
    fn staging_refuses_a_missing_source_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let l = Layout::new(t.path());
        std::fs::create_dir_all(dir(&l, "s")).unwrap();
        let mut spec = oci_spec::runtime::Spec::default();
        spec.set_mounts(Some(vec![
            MountBuilder::default()
                .destination("/etc/hosts")
                .typ("bind")
                .source(t.path().join("no-such-file"))
                .options(vec!["rbind".into(), "ro".into()])
                .build()
                .unwrap(),
        ]));
        let e = stage_binds(&l, "s", "c1", t.path(), &mut spec)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bind mount of") && e.contains("on /etc/hosts"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(dir(&l, "s")).unwrap().count(), 0);
        // Outside a pod a bind mount is refused in one line.
        let e = refuse_binds(&spec).unwrap_err().to_string();
        assert!(e.contains("need a pod") && !e.contains('\n'), "{e}");
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
