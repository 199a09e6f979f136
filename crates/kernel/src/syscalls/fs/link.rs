//! Links: link, linkat, symlink, symlinkat, readlink, readlinkat.

use super::may_modify_dir;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("readlink", sys_readlink, Full, ""),
        ("readlinkat", sys_readlinkat, Full, ""),
        ("link", sys_link, Full, ""),
        ("linkat", sys_linkat, Full, ""),
        ("symlink", sys_symlink, Full, ""),
        ("symlinkat", sys_symlinkat, Full, ""),
    ]
}

fn readlink_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    buf: u64,
    size: u64,
) -> SysResult<u64> {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, path_addr)?;
    let d = k.lookup_at(tid, dirfd, &path, false, true)?;
    if d.kind() != FileType::Symlink {
        return Err(Errno::EINVAL);
    }
    let target = d.inode.readlink(k)?;
    let n = target.len().min(size as usize);
    k.task_mm(tid).borrow().write_bytes(buf, &target[..n])?;
    Ok(n as u64)
}

fn sys_readlink(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    readlink_common(k, tid, AT_FDCWD, a[0], a[1], a[2])
}

fn sys_readlinkat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    readlink_common(k, tid, a[0] as i32, a[1], a[2], a[3])
}

fn link_common(
    k: &mut Kernel,
    tid: Tid,
    olddir: i32,
    old: u64,
    newdir: i32,
    new: u64,
    flags: i32,
) -> SysResult<u64> {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = k.read_path(tid, old)?;
    let np = k.read_path(tid, new)?;
    let target = k.lookup_at(
        tid,
        olddir,
        &op,
        flags & libc::AT_SYMLINK_FOLLOW != 0,
        flags & libc::AT_EMPTY_PATH != 0,
    )?;
    let (nd, nn) = k.lookup_parent_at(tid, newdir, &np)?;
    if target.kind() == FileType::Directory {
        return Err(Errno::EPERM);
    }
    if target.mount.id != nd.mount.id {
        return Err(Errno::EXDEV);
    }
    if nd.inode.lookup(k, &nn).is_ok() {
        return Err(Errno::EEXIST);
    }
    // A new name with a trailing slash asks for a directory, which a
    // link never makes (Linux's filename_create).
    if np.ends_with(b"/") {
        return Err(Errno::ENOENT);
    }
    may_modify_dir(k, tid, &nd)?;
    nd.inode.link(k, &nn, &target.inode)?;
    fsnotify::notify_link_count(target.inode.id());
    fsnotify::notify_create(&nd, &nn, target.kind());
    Ok(0)
}

fn sys_link(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    link_common(k, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

fn sys_linkat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    link_common(k, tid, a[0] as i32, a[1], a[2] as i32, a[3], a[4] as i32)
}

fn symlink_common(k: &mut Kernel, tid: Tid, target: u64, dirfd: i32, path: u64) -> SysResult<u64> {
    let t = k.read_path(tid, target)?;
    if t.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = k.read_path(tid, path)?;
    let (d, n) = k.lookup_parent_at(tid, dirfd, &p)?;
    if d.inode.lookup(k, &n).is_ok() {
        return Err(Errno::EEXIST);
    }
    may_modify_dir(k, tid, &d)?;
    let cred = k.cred(tid);
    d.inode.symlink(k, &n, &t, &cred)?;
    fsnotify::notify_create(&d, &n, FileType::Symlink);
    Ok(0)
}

fn sys_symlink(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    symlink_common(k, tid, a[0], AT_FDCWD, a[1])
}

fn sys_symlinkat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    symlink_common(k, tid, a[0], a[1] as i32, a[2])
}
