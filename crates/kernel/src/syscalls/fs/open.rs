//! Opening files: open, openat, openat2, creat, memfd_create.

use std::rc::Rc;

use super::{install_fd, may_modify_dir};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::File;
use crate::vfs::dentry::{Dentry, Walk};
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("open", sys_open, Full, ""),
        (
            "memfd_create",
            sys_memfd_create,
            Partial,
            "no MFD_HUGETLB (EINVAL)",
        ),
        ("openat", sys_openat, Full, ""),
        (
            "openat2",
            sys_openat2,
            Partial,
            "RESOLVE_* flags other than NO_SYMLINKS ignored",
        ),
        ("creat", sys_creat, Full, ""),
    ]
}

fn sys_memfd_create(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    // A name over 249 bytes is EINVAL, not ENAMETOOLONG.
    let name = k.task_mm(tid).borrow().read_cstr(a[0], 250).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::EINVAL
        } else {
            e
        }
    })?;
    let flags = a[1] as u32;
    let f = crate::vfs::tmpfile::memfd(k, tid, &name, flags)?;
    install_fd(k, tid, f, flags & 1 != 0)
}

pub fn do_open(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Rc<File>> {
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return crate::vfs::tmpfile::open_tmpfile(k, tid, dirfd, path, flags, mode);
    }
    let follow = flags & libc::O_NOFOLLOW == 0;
    if flags & libc::O_CREAT == 0 {
        let d = k.lookup_at(tid, dirfd, path, follow, false)?;
        if d.kind() == FileType::Symlink && flags & libc::O_PATH == 0 {
            return Err(Errno::ELOOP);
        }
        return k.open_dentry(tid, &d, flags);
    }
    let (parent, name) = k.lookup_parent_at(tid, dirfd, path)?;
    if name == b"." || name == b".." || path.ends_with(b"/") {
        return Err(Errno::EISDIR);
    }
    if flags & libc::O_EXCL != 0
        && parent.inode.create_excl_checks_name()
        && may_modify_dir(k, tid, &parent).is_ok()
    {
        // The file system's own exclusive create fails with EEXIST on
        // any name a lookup would find (a dangling symlink included), so
        // the lookup (a host walk for a name not cached: `tar -x` makes
        // every file this way) is left out. Without write access to the
        // directory the lookup stays first, as in Linux: EEXIST before
        // EACCES.
        return create_checked(k, tid, &parent, &name, flags, mode);
    }
    match parent.inode.lookup(k, &name) {
        Ok(existing) => {
            if flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let d = match k.lookup_at(tid, dirfd, path, follow, false) {
                // A dangling symlink: create what it points to, as Linux
                // follows the last component even when creating.
                Err(Errno::ENOENT) if follow && existing.kind() == FileType::Symlink => {
                    return create_through_link(k, tid, &parent, &existing, flags, mode, 1);
                }
                r => r?,
            };
            if d.kind() == FileType::Symlink {
                return Err(Errno::ELOOP);
            }
            if d.kind() == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            k.open_dentry(tid, &d, flags & !libc::O_CREAT)
        }
        Err(Errno::ENOENT) => create_in(k, tid, &parent, &name, flags, mode),
        Err(e) => Err(e),
    }
}

/// Creates `name` in `parent` and opens it.
fn create_in(
    k: &Kernel,
    tid: Tid,
    parent: &Rc<Dentry>,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Rc<File>> {
    may_modify_dir(k, tid, parent)?;
    create_checked(k, tid, parent, name, flags, mode)
}

/// `create_in` once the caller may write `parent`.
fn create_checked(
    k: &Kernel,
    tid: Tid,
    parent: &Rc<Dentry>,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Rc<File>> {
    let umask = k.task(tid).fs.borrow().umask;
    let cred = k.cred(tid);
    let (inode, ops) = parent
        .inode
        .create(k, name, mode & !umask & 0o7777, flags, &cred)?;
    let d = Dentry::child(parent, name, inode);
    let f = File::new(
        ops,
        flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY),
        Some(d.clone()),
    );
    fsnotify::notify_create(parent, name, FileType::Regular);
    f.notify_close.set(true);
    fsnotify::notify_open_close(&d, fsnotify::IN_OPEN);
    Ok(f)
}

/// O_CREAT through a symlink whose target does not exist: the target is
/// created (following further links, up to Linux's 40).
fn create_through_link(
    k: &Kernel,
    tid: Tid,
    dir: &Rc<Dentry>,
    link: &Rc<dyn crate::vfs::Inode>,
    flags: i32,
    mode: u32,
    depth: u32,
) -> SysResult<Rc<File>> {
    if depth > 40 {
        return Err(Errno::ELOOP);
    }
    let target = link.readlink(k)?;
    if target.ends_with(b"/") {
        return Err(Errno::EISDIR);
    }
    let cred = k.cred(tid);
    let root = k.task(tid).fs.borrow().root.clone();
    let walk = Walk {
        k,
        cred: &cred,
        root: &root,
    };
    let start = if target.starts_with(b"/") {
        root.clone()
    } else {
        dir.clone()
    };
    let (parent, name) = walk.resolve_parent(&start, &target)?;
    match parent.inode.lookup(k, &name) {
        Ok(i) if i.kind() == FileType::Symlink => {
            create_through_link(k, tid, &parent, &i, flags, mode, depth + 1)
        }
        Ok(_) => {
            let d = walk.resolve(&parent, &name, true)?;
            if d.kind() == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            k.open_dentry(tid, &d, flags & !libc::O_CREAT)
        }
        Err(Errno::ENOENT) => create_in(k, tid, &parent, &name, flags, mode),
        Err(e) => Err(e),
    }
}

fn open_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    flags: u64,
    mode: u64,
) -> SysResult<u64> {
    let path = k.read_path(tid, path_addr)?;
    // On 64-bit, every open is a large-file open (O_PATH drops it again).
    let flags = flags as i32 | crate::vfs::file::O_LARGEFILE;
    let f = do_open(k, tid, dirfd, &path, flags, mode as u32)?;
    install_fd(k, tid, f, flags & libc::O_CLOEXEC != 0)
}

fn sys_open(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    open_common(k, tid, AT_FDCWD, a[0], a[1], a[2])
}

fn sys_openat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    open_common(k, tid, a[0] as i32, a[1], a[2], a[3])
}

fn sys_creat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    open_common(
        k,
        tid,
        AT_FDCWD,
        a[0],
        (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
        a[1],
    )
}

fn sys_openat2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let size = a[3] as usize;
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    let how: [u64; 3] = k.task_mm(tid).borrow().read_val(a[2])?;
    let (flags, mode, resolve) = (how[0], how[1], how[2]);
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let flags = if resolve & RESOLVE_NO_SYMLINKS != 0 {
        flags | libc::O_NOFOLLOW as u64
    } else {
        flags
    };
    open_common(k, tid, a[0] as i32, a[1], flags, mode)
}
