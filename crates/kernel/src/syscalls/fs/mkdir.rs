//! Creating directories and nodes: mkdir, mkdirat, mknod, mknodat.

use super::may_modify_dir;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;
use crate::vfs::perm::cap;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("mkdir", sys_mkdir, Full, ""),
        ("mkdirat", sys_mkdirat, Full, ""),
        (
            "mknod",
            sys_mknod,
            Partial,
            "regular files, FIFOs and sockets only",
        ),
        (
            "mknodat",
            sys_mknodat,
            Partial,
            "regular files, FIFOs and sockets only",
        ),
    ]
}

fn mkdir_common(k: &mut Kernel, tid: Tid, dirfd: i32, path_addr: u64, mode: u64) -> SysResult<u64> {
    let path = k.read_path(tid, path_addr)?;
    let (parent, name) = k.lookup_parent_at(tid, dirfd, &path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    if parent.inode.lookup(k, &name).is_ok() {
        return Err(Errno::EEXIST);
    }
    may_modify_dir(k, tid, &parent)?;
    let umask = k.task(tid).fs.borrow().umask;
    let cred = k.cred(tid);
    parent
        .inode
        .mkdir(k, &name, mode as u32 & !umask & 0o7777, &cred)?;
    fsnotify::notify_create(&parent, &name, FileType::Directory);
    Ok(0)
}

fn sys_mkdir(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    mkdir_common(k, tid, AT_FDCWD, a[0], a[1])
}

fn sys_mkdirat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    mkdir_common(k, tid, a[0] as i32, a[1], a[2])
}

fn mknod_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: u64,
    mode: u64,
    dev: u64,
) -> SysResult<u64> {
    let p = k.read_path(tid, path)?;
    let mode = mode as u32;
    match mode & libc::S_IFMT {
        0 | libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {}
        libc::S_IFDIR => return Err(Errno::EPERM),
        _ => {
            if !k.cred(tid).capable(cap::MKNOD) {
                return Err(Errno::EPERM);
            }
            // Device nodes would reach host devices: never created.
            return Err(Errno::EPERM);
        }
    }
    let (d, n) = k.lookup_parent_at(tid, dirfd, &p)?;
    if d.inode.lookup(k, &n).is_ok() {
        return Err(Errno::EEXIST);
    }
    may_modify_dir(k, tid, &d)?;
    let umask = k.task(tid).fs.borrow().umask;
    let cred = k.cred(tid);
    d.inode.mknod(
        k,
        &n,
        (mode & libc::S_IFMT) | (mode & !umask & 0o7777),
        dev,
        &cred,
    )?;
    fsnotify::notify_create(&d, &n, FileType::from_mode(mode));
    Ok(0)
}

fn sys_mknod(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    mknod_common(k, tid, AT_FDCWD, a[0], a[1], a[2])
}

fn sys_mknodat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    mknod_common(k, tid, a[0] as i32, a[1], a[2], a[3])
}
