//! Extended attributes.

use std::rc::Rc;

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::dentry::Dentry;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "getxattr",
            sys_getxattr,
            Partial,
            "no extended attributes are stored: ENODATA",
        ),
        (
            "lgetxattr",
            sys_lgetxattr,
            Partial,
            "no extended attributes are stored: ENODATA",
        ),
        (
            "fgetxattr",
            sys_fgetxattr,
            Partial,
            "no extended attributes are stored: ENODATA",
        ),
        ("listxattr", sys_listxattr, Partial, "always empty"),
        ("llistxattr", sys_llistxattr, Partial, "always empty"),
        ("flistxattr", sys_flistxattr, Partial, "always empty"),
        (
            "setxattr",
            sys_setxattr,
            Partial,
            "extended attributes are not supported: ENOTSUP",
        ),
        (
            "lsetxattr",
            sys_lsetxattr,
            Partial,
            "extended attributes are not supported: ENOTSUP",
        ),
        (
            "fsetxattr",
            sys_fsetxattr,
            Partial,
            "extended attributes are not supported: ENOTSUP",
        ),
        ("removexattr", sys_removexattr, Partial, "ENODATA"),
        ("lremovexattr", sys_lremovexattr, Partial, "ENODATA"),
        ("fremovexattr", sys_fremovexattr, Partial, "ENODATA"),
    ]
}

// The sandbox keeps no extended attributes: reads find none, writes are
// refused. Lookups still run so missing paths give ENOENT; the l* calls
// name a symlink itself (a dangling one is no ENOENT: shutil.copytree
// with symlinks=True lists a copied link's attributes so).

fn xattr_path(k: &mut Kernel, tid: Tid, path: u64, follow: bool) -> SysResult<Rc<Dentry>> {
    let p = k.read_path(tid, path)?;
    k.lookup(tid, &p, follow)
}

fn sys_getxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], true)?;
    Err(Errno::ENODATA)
}

fn sys_lgetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], false)?;
    Err(Errno::ENODATA)
}

fn sys_llistxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], false)?;
    Ok(0)
}

fn sys_lsetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], false)?;
    Err(Errno::ENOTSUP)
}

fn sys_lremovexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], false)?;
    Err(Errno::ENODATA)
}

fn sys_fgetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Err(Errno::ENODATA)
}

fn sys_listxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], true)?;
    Ok(0)
}

fn sys_flistxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Ok(0)
}

fn sys_setxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], true)?;
    Err(Errno::ENOTSUP)
}

fn sys_fsetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Err(Errno::ENOTSUP)
}

fn sys_removexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], true)?;
    Err(Errno::ENODATA)
}

fn sys_fremovexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Err(Errno::ENODATA)
}
