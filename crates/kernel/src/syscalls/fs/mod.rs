//! File syscalls, one module per family (as gVisor's sys_*.go).

mod access;
mod attr;
pub mod fcntl;
mod fd;
mod fs_context;
mod getdents;
mod ioctl;
mod link;
mod lseek;
mod mkdir;
mod open;
mod pipe;
mod read_write;
mod rename;
mod stat;
mod sync;
mod truncate;
mod unlink;
mod xattr;

pub use open::do_open;
pub use read_write::{do_read, do_write, read_interrupted, user_iovec_array};
pub use stat::statx_of;

use std::rc::Rc;

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::vfs::File;
use crate::vfs::dentry::Dentry;
use crate::vfs::perm::{MAY_EXEC, MAY_WRITE, cap};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    let mut v = Vec::new();
    v.extend(read_write::table());
    v.extend(open::table());
    v.extend(fd::table());
    v.extend(lseek::table());
    v.extend(stat::table());
    v.extend(access::table());
    v.extend(link::table());
    v.extend(fs_context::table());
    v.extend(fcntl::table());
    v.extend(ioctl::table());
    v.extend(getdents::table());
    v.extend(mkdir::table());
    v.extend(unlink::table());
    v.extend(rename::table());
    v.extend(attr::table());
    v.extend(truncate::table());
    v.extend(sync::table());
    v.extend(pipe::table());
    v.extend(xattr::table());
    v
}

fn files(k: &Kernel, tid: Tid) -> std::cell::Ref<'_, crate::vfs::FdTable> {
    k.task(tid).files.borrow()
}

/// The open file of descriptor `fd`. The first one a syscall looks up
/// stays its own until it returns (re-runs after a sleep get the same
/// file, even if `fd` was closed meanwhile).
/// The open file behind `fd`, for a syscall that works on what the file
/// is (read, write, ioctl, mmap, ...): an O_PATH descriptor only names a
/// path, so it is EBADF here, as Linux's fdget.
pub fn get_file(k: &Kernel, tid: Tid, fd: i32) -> SysResult<Rc<File>> {
    let f = get_file_raw(k, tid, fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// The open file behind `fd`, O_PATH descriptors included (Linux's
/// fdget_raw): for fstat, fstatfs, fchdir, dup, fcntl, *at() with
/// AT_EMPTY_PATH, and passing descriptors.
pub fn get_file_raw(k: &Kernel, tid: Tid, fd: i32) -> SysResult<Rc<File>> {
    let pinned = &k.task(tid).sys.file.0;
    if let Some((p, f)) = &*pinned.borrow()
        && *p == fd
    {
        return Ok(f.clone());
    }
    let f = files(k, tid).get(fd)?;
    let mut pin = pinned.borrow_mut();
    if pin.is_none() {
        *pin = Some((fd, f.clone()));
    }
    Ok(f)
}

/// Linux's fs.nr_open: no descriptor table grows past it, whatever
/// RLIMIT_NOFILE says (a spec may set it to infinity).
pub const NR_OPEN: u64 = 1 << 20;

fn nofile(k: &Kernel, tid: Tid) -> u64 {
    k.rlimit(tid, libc::RLIMIT_NOFILE).rlim_cur.min(NR_OPEN)
}

pub fn install_fd(k: &Kernel, tid: Tid, f: Rc<File>, cloexec: bool) -> SysResult<u64> {
    let limit = nofile(k, tid);
    let fd = k.task(tid).files.borrow_mut().alloc(f, cloexec, 0, limit)?;
    Ok(fd as u64)
}

/// Checks W|X on a directory about to change, and that its mount is writable.
fn may_modify_dir(k: &Kernel, tid: Tid, dir: &Rc<Dentry>) -> SysResult<()> {
    if dir.mount.readonly {
        return Err(Errno::EROFS);
    }
    let st = dir.inode.stat_for_check(k)?;
    k.cred(tid).may_access(&st, MAY_WRITE | MAY_EXEC)
}

/// The sticky-bit rule for removing `victim` from `dir`.
fn sticky_ok(
    k: &Kernel,
    tid: Tid,
    dir: &Rc<Dentry>,
    victim: &Rc<dyn crate::vfs::Inode>,
) -> SysResult<()> {
    let st = dir.inode.stat_for_check(k)?;
    if st.st_mode & libc::S_ISVTX == 0 {
        return Ok(());
    }
    let victim = victim.stat_for_check(k)?;
    let c = k.cred(tid);
    if c.fsuid == victim.st_uid || c.fsuid == st.st_uid || c.capable(cap::FOWNER) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}
