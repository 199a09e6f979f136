//! The task's filesystem context: working directory, root, umask.

use std::rc::Rc;

use super::get_file_raw;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::dentry::Dentry;
use crate::vfs::inode::FileType;
use crate::vfs::perm::{MAY_EXEC, cap};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("getcwd", sys_getcwd, Full, ""),
        ("chdir", sys_chdir, Full, ""),
        ("fchdir", sys_fchdir, Full, ""),
        (
            "chroot",
            sys_chroot,
            Full,
            "needs CAP_SYS_CHROOT in the sandbox",
        ),
        ("umask", sys_umask, Full, ""),
    ]
}

fn sys_getcwd(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let fs = k.task(tid).fs.borrow().clone();
    let mut p = fs.cwd.path(k);
    let root = fs.root.path(k);
    if root != b"/" {
        // Under chroot: the path relative to the process root.
        if p.starts_with(&root) {
            p = p[root.len()..].to_vec();
            if p.is_empty() {
                p = b"/".to_vec();
            }
        } else {
            p = [b"(unreachable)".as_slice(), &p].concat();
        }
    }
    p.push(0);
    if p.len() as u64 > a[1] {
        return Err(Errno::ERANGE);
    }
    k.task_mm(tid).borrow().write_bytes(a[0], &p)?;
    Ok(p.len() as u64)
}

fn set_cwd(k: &mut Kernel, tid: Tid, d: Rc<Dentry>) -> SysResult<u64> {
    if d.kind() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let st = d.inode.stat(k)?;
    k.cred(tid).may_access(&st, MAY_EXEC)?;
    k.task(tid).fs.borrow_mut().cwd = d;
    Ok(0)
}

fn sys_chdir(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let path = k.read_path(tid, a[0])?;
    let d = k.lookup(tid, &path, true)?;
    set_cwd(k, tid, d)
}

fn sys_fchdir(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file_raw(k, tid, a[0] as i32)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(k, tid, d)
}

fn sys_chroot(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !k.cred(tid).capable(cap::SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    let path = k.read_path(tid, a[0])?;
    let d = k.lookup(tid, &path, true)?;
    if d.kind() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    k.task(tid).fs.borrow_mut().root = d;
    Ok(0)
}

fn sys_umask(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mut fs = k.task(tid).fs.borrow_mut();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}
