//! Extended attributes.
//!
//! tmpfs keeps user.* and trusted.* attributes in the kernel's memory
//! (see vfs/xattr.rs); other filesystems keep none: reads find none and
//! writes are refused with ENOTSUP. The checks run in Linux's order
//! whatever the filesystem: flags, name and size first (nothing is
//! allocated for a size past XATTR_SIZE_MAX), then the path, the mount,
//! the permission (xattr_permission) and the namespace. The l* calls name
//! a symlink itself (a dangling one is no ENOENT: shutil.copytree with
//! symlinks=True lists a copied link's attributes so).

use std::rc::Rc;

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::dentry::Dentry;
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::perm::{MAY_READ, MAY_WRITE, cap};
use crate::vfs::xattr::{
    Namespace, XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX,
    namespace,
};

const KEPT: &str = "tmpfs keeps user.* and trusted.* attributes; other filesystems keep none";

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("getxattr", sys_getxattr, Partial, KEPT),
        ("lgetxattr", sys_lgetxattr, Partial, KEPT),
        ("fgetxattr", sys_fgetxattr, Partial, KEPT),
        ("listxattr", sys_listxattr, Partial, KEPT),
        ("llistxattr", sys_llistxattr, Partial, KEPT),
        ("flistxattr", sys_flistxattr, Partial, KEPT),
        ("setxattr", sys_setxattr, Partial, KEPT),
        ("lsetxattr", sys_lsetxattr, Partial, KEPT),
        ("fsetxattr", sys_fsetxattr, Partial, KEPT),
        ("removexattr", sys_removexattr, Partial, KEPT),
        ("lremovexattr", sys_lremovexattr, Partial, KEPT),
        ("fremovexattr", sys_fremovexattr, Partial, KEPT),
    ]
}

/// What a call names: a path (followed or not) or a descriptor.
#[derive(Clone, Copy)]
enum Target {
    Path(u64, bool),
    Fd(i32),
}

/// The object behind `t`; None for a descriptor with no name in a
/// filesystem (a pipe, a socket): such objects keep no attributes.
fn resolve(k: &mut Kernel, tid: Tid, t: Target) -> SysResult<Option<Rc<Dentry>>> {
    match t {
        Target::Path(path, follow) => {
            let p = k.read_path(tid, path)?;
            Ok(Some(k.lookup(tid, &p, follow)?))
        }
        Target::Fd(fd) => Ok(get_file(k, tid, fd)?.dentry.clone()),
    }
}

/// The attribute name at `addr`: empty or longer than XATTR_NAME_MAX is
/// ERANGE (Linux's strncpy_from_user into a XATTR_NAME_MAX+1 buffer).
fn read_name(k: &Kernel, tid: Tid, addr: u64) -> SysResult<Vec<u8>> {
    let name = k
        .task_mm(tid)
        .borrow()
        .read_cstr(addr, XATTR_NAME_MAX + 1)
        .map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::ERANGE
            } else {
                e
            }
        })?;
    if name.is_empty() {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

/// Linux's xattr_permission for `mask` (MAY_READ or MAY_WRITE), then the
/// namespace. user.* belongs to regular files and directories only (other
/// kinds: EPERM to write, ENODATA to read), and a sticky directory's to
/// its owner; trusted.* needs CAP_SYS_ADMIN and no file permission.
fn permitted(
    k: &Kernel,
    tid: Tid,
    d: Option<&Rc<Dentry>>,
    name: &[u8],
    mask: u32,
) -> SysResult<Namespace> {
    let denied = if mask & MAY_WRITE != 0 {
        Errno::EPERM
    } else {
        Errno::ENODATA
    };
    let c = k.cred(tid);
    let ns = namespace(name);
    let Some(d) = d else {
        // A pipe or socket: an inode of no filesystem, not a file or
        // directory.
        return match ns? {
            Namespace::User => Err(denied),
            Namespace::Trusted if !c.capable(cap::SYS_ADMIN) => Err(denied),
            ns => Ok(ns),
        };
    };
    if mask & MAY_WRITE != 0 && d.mount.readonly {
        return Err(Errno::EROFS);
    }
    let st = d.inode.stat_cached(k)?;
    if name.starts_with(b"trusted.") {
        if !c.capable(cap::SYS_ADMIN) {
            return Err(denied);
        }
        return namespace(name);
    }
    if name.starts_with(b"user.") {
        let kind = FileType::from_mode(st.st_mode);
        if kind != FileType::Regular && kind != FileType::Directory {
            return Err(denied);
        }
        if kind == FileType::Directory
            && st.st_mode & libc::S_ISVTX != 0
            && mask & MAY_WRITE != 0
            && !c.is_owner(&st)
        {
            return Err(Errno::EPERM);
        }
    }
    c.may_access(&st, mask)?;
    namespace(name)
}

/// Whether `d`'s filesystem keeps attributes of namespace `ns`.
fn kept(ns: Namespace) -> bool {
    matches!(ns, Namespace::User | Namespace::Trusted)
}

fn getxattr(k: &mut Kernel, tid: Tid, t: Target, a: [u64; 6]) -> SysResult<u64> {
    let name = read_name(k, tid, a[1])?;
    let d = resolve(k, tid, t)?;
    let ns = permitted(k, tid, d.as_ref(), &name, MAY_READ)?;
    let store = d.as_ref().and_then(|d| d.inode.xattrs());
    let (Some(store), true) = (store, kept(ns)) else {
        return Err(Errno::ENODATA);
    };
    let x = store.borrow();
    let v = x.get(&name)?;
    let size = a[3] as usize;
    if size == 0 {
        return Ok(v.len() as u64);
    }
    if v.len() > size.min(XATTR_SIZE_MAX) {
        return Err(Errno::ERANGE);
    }
    k.task_mm(tid).borrow().write_bytes(a[2], v)?;
    Ok(v.len() as u64)
}

fn setxattr(k: &mut Kernel, tid: Tid, t: Target, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4] as i32;
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(k, tid, a[1])?;
    let size = a[3] as usize;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let value = if size == 0 {
        Vec::new()
    } else {
        k.task_mm(tid).borrow().read_vec(a[2], size)?
    };
    let d = resolve(k, tid, t)?;
    let ns = permitted(k, tid, d.as_ref(), &name, MAY_WRITE)?;
    let d = d.ok_or(Errno::ENOTSUP)?;
    let Some(store) = d.inode.xattrs().filter(|_| kept(ns)) else {
        return Err(Errno::ENOTSUP);
    };
    store.borrow_mut().set(&name, &value, flags)?;
    d.inode.xattr_changed();
    fsnotify::notify_dentry(&d, fsnotify::IN_ATTRIB);
    Ok(0)
}

fn removexattr(k: &mut Kernel, tid: Tid, t: Target, a: [u64; 6]) -> SysResult<u64> {
    let name = read_name(k, tid, a[1])?;
    let d = resolve(k, tid, t)?;
    let ns = permitted(k, tid, d.as_ref(), &name, MAY_WRITE)?;
    let d = d.ok_or(Errno::ENODATA)?;
    let Some(store) = d.inode.xattrs().filter(|_| kept(ns)) else {
        return Err(Errno::ENODATA);
    };
    store.borrow_mut().remove(&name)?;
    d.inode.xattr_changed();
    fsnotify::notify_dentry(&d, fsnotify::IN_ATTRIB);
    Ok(0)
}

/// listxattr needs no permission on the file; trusted.* names are shown
/// to CAP_SYS_ADMIN only.
fn listxattr(k: &mut Kernel, tid: Tid, t: Target, a: [u64; 6]) -> SysResult<u64> {
    let d = resolve(k, tid, t)?;
    let Some(store) = d.as_ref().and_then(|d| d.inode.xattrs()) else {
        return Ok(0);
    };
    let admin = k.cred(tid).capable(cap::SYS_ADMIN);
    let list = store
        .borrow()
        .list(|n| admin || !n.starts_with(b"trusted."));
    let size = a[2] as usize;
    if size == 0 {
        return Ok(list.len() as u64);
    }
    if list.len() > size.min(XATTR_LIST_MAX) {
        return Err(if size >= XATTR_LIST_MAX {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    k.task_mm(tid).borrow().write_bytes(a[1], &list)?;
    Ok(list.len() as u64)
}

fn sys_getxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    getxattr(k, tid, Target::Path(a[0], true), a)
}

fn sys_lgetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    getxattr(k, tid, Target::Path(a[0], false), a)
}

fn sys_fgetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    getxattr(k, tid, Target::Fd(a[0] as i32), a)
}

fn sys_listxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    listxattr(k, tid, Target::Path(a[0], true), a)
}

fn sys_llistxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    listxattr(k, tid, Target::Path(a[0], false), a)
}

fn sys_flistxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    listxattr(k, tid, Target::Fd(a[0] as i32), a)
}

fn sys_setxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    setxattr(k, tid, Target::Path(a[0], true), a)
}

fn sys_lsetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    setxattr(k, tid, Target::Path(a[0], false), a)
}

fn sys_fsetxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    setxattr(k, tid, Target::Fd(a[0] as i32), a)
}

fn sys_removexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    removexattr(k, tid, Target::Path(a[0], true), a)
}

fn sys_lremovexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    removexattr(k, tid, Target::Path(a[0], false), a)
}

fn sys_fremovexattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    removexattr(k, tid, Target::Fd(a[0] as i32), a)
}
