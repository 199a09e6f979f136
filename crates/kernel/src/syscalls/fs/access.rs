//! Permission checks: access, faccessat, faccessat2.

use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::inode::FileType;
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("access", sys_access, Full, ""),
        ("faccessat", sys_faccessat, Full, ""),
        ("faccessat2", sys_faccessat2, Full, ""),
    ]
}

fn access_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    mode: u64,
    flags: i32,
) -> SysResult<u64> {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, path_addr)?;
    let d = k.lookup_at(
        tid,
        dirfd,
        &path,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
    )?;
    if mode == 0 {
        return Ok(0);
    }
    let st = d.inode.stat(k)?;
    if mode & 2 != 0 && d.mount.readonly && d.kind() != FileType::CharDev {
        return Err(Errno::EROFS);
    }
    // access(2) checks with the real ids unless AT_EACCESS.
    let mut c = k.cred(tid);
    if flags & libc::AT_EACCESS == 0 {
        c.fsuid = c.uid;
        c.fsgid = c.gid;
    }
    let want = ((mode & 4 != 0) as u32 * 4) | ((mode & 2 != 0) as u32 * 2) | (mode & 1 != 0) as u32;
    c.may_access(&st, want)?;
    Ok(0)
}

fn sys_access(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    access_common(k, tid, AT_FDCWD, a[0], a[1], 0)
}

fn sys_faccessat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    access_common(k, tid, a[0] as i32, a[1], a[2], 0)
}

fn sys_faccessat2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    access_common(k, tid, a[0] as i32, a[1], a[2], a[3] as i32)
}
