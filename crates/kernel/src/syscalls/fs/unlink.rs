//! Removing names: unlink, unlinkat, rmdir.

use super::{may_modify_dir, sticky_ok};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::dentry::Dentry;
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("rmdir", sys_rmdir, Full, ""),
        ("unlink", sys_unlink, Full, ""),
        ("unlinkat", sys_unlinkat, Full, ""),
    ]
}

fn remove_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    dir: bool,
) -> SysResult<u64> {
    let path = k.read_path(tid, path_addr)?;
    let (parent, name) = k.lookup_parent_at(tid, dirfd, &path)?;
    // The root (a path of slashes only) is a mount point: busy.
    if dir && name == b"." && path.iter().all(|&c| c == b'/') {
        return Err(Errno::EBUSY);
    }
    if dir && name == b"." {
        return Err(Errno::EINVAL);
    }
    if dir && name == b".." {
        return Err(Errno::ENOTEMPTY);
    }
    if !dir && path.ends_with(b"/") {
        let d = k.lookup_at(tid, dirfd, &path, false, false)?;
        return Err(if d.kind() == FileType::Directory {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    let victim = parent.inode.lookup(k, &name)?;
    let child = Dentry::child(&parent, &name, victim.clone());
    if k.mounts.borrow().covering(&child).is_some() {
        return Err(Errno::EBUSY);
    }
    may_modify_dir(k, tid, &parent)?;
    sticky_ok(k, tid, &parent, &victim)?;
    if dir {
        if victim.kind() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        parent.inode.rmdir(k, &name)?;
    } else {
        if victim.kind() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        parent.inode.unlink(k, &name)?;
    }
    let nlink = victim.stat(k).map_or(0, |st| st.st_nlink);
    fsnotify::notify_remove(&parent, &name, victim.id(), victim.kind(), nlink);
    Ok(0)
}

fn sys_rmdir(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    remove_common(k, tid, AT_FDCWD, a[0], true)
}

fn sys_unlink(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    remove_common(k, tid, AT_FDCWD, a[0], false)
}

fn sys_unlinkat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove_common(k, tid, a[0] as i32, a[1], flags & libc::AT_REMOVEDIR != 0)
}
