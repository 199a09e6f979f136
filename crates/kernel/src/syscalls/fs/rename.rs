//! Renaming: rename, renameat, renameat2.

use std::rc::Rc;

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
        ("rename", sys_rename, Full, ""),
        ("renameat", sys_renameat, Full, ""),
        (
            "renameat2",
            sys_renameat2,
            Partial,
            "RENAME_WHITEOUT unsupported",
        ),
    ]
}

fn rename_common(
    k: &mut Kernel,
    tid: Tid,
    olddir: i32,
    old: u64,
    newdir: i32,
    new: u64,
    flags: u32,
) -> SysResult<u64> {
    if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0
        || flags & libc::RENAME_NOREPLACE != 0 && flags & libc::RENAME_EXCHANGE != 0
    {
        return Err(Errno::EINVAL);
    }
    let op = k.read_path(tid, old)?;
    let np = k.read_path(tid, new)?;
    let (od, on) = k.lookup_parent_at(tid, olddir, &op)?;
    let (nd, nn) = k.lookup_parent_at(tid, newdir, &np)?;
    // In Linux's do_renameat2 order: "." or ".." as the old name is busy;
    // as the new name it exists by definition, which NOREPLACE reports.
    let dots = |n: &[u8]| n == b"." || n == b"..";
    if dots(&on) {
        return Err(Errno::EBUSY);
    }
    if dots(&nn) {
        return Err(if flags & libc::RENAME_NOREPLACE != 0 {
            Errno::EEXIST
        } else {
            Errno::EBUSY
        });
    }
    if od.mount.id != nd.mount.id {
        return Err(Errno::EXDEV);
    }
    let moving = od.inode.lookup(k, &on)?;
    // A mount point neither moves nor is replaced (Linux: EBUSY).
    let busy = |d: &Rc<Dentry>, n: &[u8], i: Rc<dyn crate::vfs::Inode>| {
        k.mounts
            .borrow()
            .covering(&Dentry::child(d, n, i))
            .is_some()
    };
    if busy(&od, &on, moving.clone()) || nd.inode.lookup(k, &nn).is_ok_and(|i| busy(&nd, &nn, i)) {
        return Err(Errno::EBUSY);
    }
    may_modify_dir(k, tid, &od)?;
    may_modify_dir(k, tid, &nd)?;
    sticky_ok(k, tid, &od, &moving)?;
    // A directory may not move below itself.
    if moving.kind() == FileType::Directory {
        let mut cur = Some(nd.clone());
        while let Some(c) = cur {
            if c.mount.id == od.mount.id && c.inode.id() == moving.id() {
                return Err(Errno::EINVAL);
            }
            cur = c.parent.clone();
        }
    }
    let replaced = nd
        .inode
        .lookup(k, &nn)
        .ok()
        .filter(|r| r.id() != moving.id());
    od.inode.rename(k, &on, &nd.inode, &nn, flags)?;
    fsnotify::notify_rename(&od, &on, &nd, &nn, moving.id(), moving.kind());
    if let Some(r) = replaced.filter(|_| flags & libc::RENAME_EXCHANGE == 0) {
        let nlink = r.stat(k).map_or(0, |st| st.st_nlink);
        fsnotify::notify_replaced(r.id(), r.kind(), nlink);
    }
    Ok(0)
}

fn sys_rename(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    rename_common(k, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

fn sys_renameat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    rename_common(k, tid, a[0] as i32, a[1], a[2] as i32, a[3], 0)
}

fn sys_renameat2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    rename_common(k, tid, a[0] as i32, a[1], a[2] as i32, a[3], a[4] as u32)
}
