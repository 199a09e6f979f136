//! File sizes: truncate, ftruncate, fallocate.

use super::attr::path_setattr;
use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::FileType;
use crate::vfs::inode::SetAttr;
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("truncate", sys_truncate, Full, ""),
        ("ftruncate", sys_ftruncate, Full, ""),
        (
            "fallocate",
            sys_fallocate,
            Partial,
            "host files and tmpfs mode 0",
        ),
    ]
}

fn sys_truncate(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    path_setattr(
        k,
        tid,
        AT_FDCWD,
        a[0],
        true,
        false,
        SetAttr {
            size: Some(a[1]),
            ..Default::default()
        },
    )
}

fn sys_ftruncate(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if (a[1] as i64) < 0 || !f.writable() {
        return Err(Errno::EINVAL);
    }
    if f.dentry.as_ref().is_some_and(|d| d.mount.readonly) {
        return Err(Errno::EROFS);
    }
    k.fsize_check(tid, a[1])?;
    f.ops.truncate(k, a[1])?;
    if let Some(d) = &f.dentry {
        k.remove_privs(tid, d)?;
        fsnotify::notify_dentry(d, fsnotify::IN_MODIFY);
    }
    Ok(0)
}

fn sys_fallocate(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if a[1] as i32 & libc::FALLOC_FL_KEEP_SIZE == 0 {
        k.fsize_check(tid, a[2].saturating_add(a[3]))?;
    }
    // The pages fallocate reserves in a tmpfs file are the container's
    // memory: full is ENOSPC, as for a write.
    if a[1] as i32 & !libc::FALLOC_FL_KEEP_SIZE == 0
        && let Ok(Some(m)) = f.ops.pages(k)
        && !m.is_host()
    {
        k.may_commit(a[3]).map_err(|_| Errno::ENOSPC)?;
    }
    // Set-ID bits go first, as Linux's file_modified takes them before
    // the file system allocates (the host, whose kernel holds
    // CAP_FSETID, would keep them).
    if let Some(d) = f.dentry.as_ref().filter(|d| d.kind() == FileType::Regular) {
        k.remove_privs(tid, d)?;
    }
    f.ops.allocate(a[1] as i32, a[2], a[3])?;
    fsnotify::notify_file(&f, fsnotify::IN_MODIFY);
    Ok(0)
}
