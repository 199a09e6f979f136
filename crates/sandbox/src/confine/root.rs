//! The kernel's own root: an empty, read-only tmpfs in a mount namespace of
//! its own. After this the kernel can name no host or container file; the
//! gofer (forked earlier) keeps the container's rootfs in the container's
//! mount namespace.

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};

/// Directories the empty root can be mounted on: any existing directory
/// will do (the mount lives only in the kernel's private namespace).
const MOUNT_POINTS: &[&str] = &[
    "/proc", "/dev", "/sys", "/tmp", "/run", "/mnt", "/etc", "/bin",
];

pub fn enter_empty_root() -> Result<(), String> {
    let err = |what: &str, e: nix::Error| format!("confining the kernel: {what}: {e}");
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| err("new mount namespace", e))?;
    // Private first: the detach below must not propagate to the
    // container's namespace, where the gofer lives.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| err("private mounts", e))?;
    let at = MOUNT_POINTS
        .iter()
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
        .ok_or_else(|| {
            format!(
                "confining the kernel: the rootfs has none of {} to mount the kernel's empty root on",
                MOUNT_POINTS.join(", ")
            )
        })?;
    mount(
        Some("atoll-empty"),
        *at,
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,mode=0555"),
    )
    .map_err(|e| err("empty tmpfs", e))?;
    chdir(*at).map_err(|e| err("chdir", e))?;
    // pivot_root(".", "."): the old root ends up stacked on the new one
    // and is detached right away.
    pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("detaching the old root", e))?;
    chdir("/").map_err(|e| err("chdir /", e))?;
    Ok(())
}
