//! File syscalls.

use std::rc::Rc;

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Kernel, Tid};
use crate::vfs::dentry::Dentry;
use crate::vfs::file::{POLLIN, POLLOUT};
use crate::vfs::inode::{FileType, SetAttr, TimeSet};
use crate::vfs::inotify as fsnotify;
use crate::vfs::iov::{IOVEC_SIZE, iovec_ranges};
use crate::vfs::lookup::AT_FDCWD;
use crate::vfs::perm::{MAY_EXEC, MAY_WRITE, cap};
use crate::vfs::pipe::Pipe;
use crate::vfs::{File, IoVecs};

const MAX_RW: usize = 0x7fff_f000;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("read", sys_read, Full, ""),
        ("write", sys_write, Full, ""),
        ("pread64", sys_pread64, Full, ""),
        ("pwrite64", sys_pwrite64, Full, ""),
        ("readv", sys_readv, Full, ""),
        ("writev", sys_writev, Full, ""),
        ("preadv", sys_preadv, Full, ""),
        ("pwritev", sys_pwritev, Full, ""),
        ("preadv2", sys_preadv2, Partial, "flags ignored"),
        ("pwritev2", sys_pwritev2, Partial, "flags ignored"),
        ("open", sys_open, Full, ""),
        (
            "memfd_create",
            sys_memfd_create,
            Partial,
            "no file seals; MAP_SHARED mappings fail (ENODEV)",
        ),
        ("openat", sys_openat, Full, ""),
        (
            "openat2",
            sys_openat2,
            Partial,
            "RESOLVE_* flags other than NO_SYMLINKS ignored",
        ),
        ("creat", sys_creat, Full, ""),
        ("close", sys_close, Full, ""),
        ("close_range", sys_close_range, Full, ""),
        ("lseek", sys_lseek, Full, ""),
        ("stat", sys_stat, Full, ""),
        ("lstat", sys_lstat, Full, ""),
        ("fstat", sys_fstat, Full, ""),
        ("newfstatat", sys_newfstatat, Full, ""),
        ("statx", sys_statx, Full, ""),
        ("access", sys_access, Full, ""),
        ("faccessat", sys_faccessat, Full, ""),
        ("faccessat2", sys_faccessat2, Full, ""),
        ("readlink", sys_readlink, Full, ""),
        ("readlinkat", sys_readlinkat, Full, ""),
        ("getcwd", sys_getcwd, Full, ""),
        ("chdir", sys_chdir, Full, ""),
        ("fchdir", sys_fchdir, Full, ""),
        (
            "chroot",
            sys_chroot,
            Full,
            "needs CAP_SYS_CHROOT in the sandbox",
        ),
        ("dup", sys_dup, Full, ""),
        ("dup2", sys_dup2, Full, ""),
        ("dup3", sys_dup3, Full, ""),
        (
            "fcntl",
            sys_fcntl,
            Partial,
            "no F_SETOWN signals, leases or notify",
        ),
        (
            "ioctl",
            sys_ioctl,
            Partial,
            "terminal, FIONREAD, FIONBIO, FIOCLEX",
        ),
        ("getdents64", sys_getdents64, Full, ""),
        ("getdents", sys_getdents, Full, ""),
        ("mkdir", sys_mkdir, Full, ""),
        ("mkdirat", sys_mkdirat, Full, ""),
        ("rmdir", sys_rmdir, Full, ""),
        ("unlink", sys_unlink, Full, ""),
        ("unlinkat", sys_unlinkat, Full, ""),
        ("rename", sys_rename, Full, ""),
        ("renameat", sys_renameat, Full, ""),
        (
            "renameat2",
            sys_renameat2,
            Partial,
            "RENAME_WHITEOUT unsupported",
        ),
        ("link", sys_link, Full, ""),
        ("linkat", sys_linkat, Full, ""),
        ("symlink", sys_symlink, Full, ""),
        ("symlinkat", sys_symlinkat, Full, ""),
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
        ("chmod", sys_chmod, Full, ""),
        ("fchmod", sys_fchmod, Full, ""),
        ("fchmodat", sys_fchmodat, Full, ""),
        ("fchmodat2", sys_fchmodat2, Full, ""),
        ("chown", sys_chown, Full, ""),
        ("lchown", sys_lchown, Full, ""),
        ("fchown", sys_fchown, Full, ""),
        ("fchownat", sys_fchownat, Full, ""),
        ("utimensat", sys_utimensat, Full, ""),
        ("utimes", sys_utimes, Full, ""),
        ("utime", sys_utime, Full, ""),
        ("futimesat", sys_futimesat, Full, ""),
        ("truncate", sys_truncate, Full, ""),
        ("ftruncate", sys_ftruncate, Full, ""),
        (
            "fallocate",
            sys_fallocate,
            Partial,
            "host files and tmpfs mode 0",
        ),
        ("fsync", sys_fsync, Full, ""),
        ("fdatasync", sys_fsync, Full, ""),
        ("sync", sys_sync, Full, ""),
        ("syncfs", sys_syncfs, Full, ""),
        ("sync_file_range", sys_sync_range, Full, ""),
        ("fadvise64", sys_fadvise, Full, "advice accepted, no effect"),
        ("readahead", sys_fadvise, Full, "no effect"),
        ("statfs", sys_statfs, Full, ""),
        ("fstatfs", sys_fstatfs, Full, ""),
        ("umask", sys_umask, Full, ""),
        ("pipe", sys_pipe, Full, ""),
        ("pipe2", sys_pipe2, Full, ""),
        ("flock", sys_flock, Partial, "advisory, within the sandbox"),
        (
            "getxattr",
            sys_getxattr,
            Partial,
            "no extended attributes are stored: ENODATA",
        ),
        (
            "lgetxattr",
            sys_getxattr,
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
        ("llistxattr", sys_listxattr, Partial, "always empty"),
        ("flistxattr", sys_flistxattr, Partial, "always empty"),
        (
            "setxattr",
            sys_setxattr,
            Partial,
            "extended attributes are not supported: ENOTSUP",
        ),
        (
            "lsetxattr",
            sys_setxattr,
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
        ("lremovexattr", sys_removexattr, Partial, "ENODATA"),
        ("fremovexattr", sys_fremovexattr, Partial, "ENODATA"),
    ]
}

fn files(k: &Kernel, tid: Tid) -> std::cell::Ref<'_, crate::vfs::FdTable> {
    k.task(tid).files.borrow()
}

pub fn get_file(k: &Kernel, tid: Tid, fd: i32) -> SysResult<Rc<File>> {
    files(k, tid).get(fd)
}

fn nofile(k: &Kernel, tid: Tid) -> u64 {
    k.rlimit(tid, libc::RLIMIT_NOFILE).rlim_cur
}

pub fn install_fd(k: &Kernel, tid: Tid, f: Rc<File>, cloexec: bool) -> SysResult<u64> {
    let limit = nofile(k, tid);
    let fd = k.task(tid).files.borrow_mut().alloc(f, cloexec, 0, limit)?;
    Ok(fd as u64)
}

// ---------- read / write ----------

/// Reads into `iov`; blocks (EBLOCK) if the file would block.
pub fn do_read(
    k: &mut Kernel,
    tid: Tid,
    f: &Rc<File>,
    iov: &IoVecs,
    off: Option<u64>,
) -> SysResult<u64> {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if f.dentry
        .as_ref()
        .is_some_and(|d| d.kind() == FileType::Directory)
    {
        return Err(Errno::EISDIR);
    }
    let seekable = f.ops.seekable();
    let pos = off.unwrap_or(f.pos.get());
    if seekable
        && (pos as i64)
            .checked_add(iov.len as i64)
            .is_none_or(|e| e < 0)
    {
        return Err(Errno::EINVAL);
    }
    match f.ops.read(k, f, iov, pos) {
        Ok(n) => {
            if off.is_none() && seekable {
                f.pos.set(pos + n as u64);
            }
            if n > 0 {
                fsnotify::notify_file(f, fsnotify::IN_ACCESS);
            }
            Ok(n as u64)
        }
        Err(Errno::EAGAIN) if !f.nonblocking() && f.ops.wait(k, tid, POLLIN) => Err(Errno::EBLOCK),
        Err(e) => Err(e),
    }
}

pub fn do_write(
    k: &mut Kernel,
    tid: Tid,
    f: &Rc<File>,
    iov: &IoVecs,
    off: Option<u64>,
) -> SysResult<u64> {
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let seekable = f.ops.seekable();
    let append = f.flags.get() & libc::O_APPEND != 0 && off.is_none();
    let pos = if append {
        f.ops.size(k).unwrap_or(f.pos.get())
    } else {
        off.unwrap_or(f.pos.get())
    };
    if seekable
        && (pos as i64)
            .checked_add(iov.len as i64)
            .is_none_or(|e| e < 0)
    {
        return Err(Errno::EINVAL);
    }
    // RLIMIT_FSIZE on regular files: a write is cut at the limit; one
    // that starts at it gets SIGXFSZ and EFBIG.
    let limited;
    let iov = if f
        .dentry
        .as_ref()
        .is_some_and(|d| d.kind() == FileType::Regular)
    {
        let n = k.fsize_allows(tid, pos, iov.len as u64)? as usize;
        if n < iov.len {
            limited = iov.truncated(n);
            &limited
        } else {
            iov
        }
    } else {
        iov
    };
    match f.ops.write(k, f, iov, pos) {
        Ok(n) => {
            if off.is_none() && seekable {
                f.pos.set(pos + n as u64);
            }
            if n > 0 {
                fsnotify::notify_file(f, fsnotify::IN_MODIFY);
            }
            Ok(n as u64)
        }
        Err(Errno::EAGAIN) if !f.nonblocking() && f.ops.wait(k, tid, POLLOUT) => Err(Errno::EBLOCK),
        Err(Errno::EPIPE) => {
            let _ = k.send_task(tid, SigInfo::user(libc::SIGPIPE, 0, tid, 0));
            Err(Errno::EPIPE)
        }
        Err(e) => Err(e),
    }
}

fn user_iov(k: &Kernel, tid: Tid, addr: u64, len: u64, write: bool) -> SysResult<IoVecs> {
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    IoVecs::single(&mm, addr, (len as usize).min(MAX_RW), write)
}

/// An iovec array from user memory as kernel-side vectors.
pub fn user_iovec_array(
    k: &Kernel,
    tid: Tid,
    addr: u64,
    cnt: u64,
    write: bool,
) -> SysResult<IoVecs> {
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    let raw = mm.read_vec(addr, cnt as usize * IOVEC_SIZE)?;
    crate::vfs::iov::check_iovec_array(&raw)?;
    IoVecs::from_user(&mm, &iovec_ranges(&raw, MAX_RW), write)
}

fn sys_read(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iov(k, tid, a[1], a[2], true)?;
    if let Some(s) = f
        .ops
        .clone()
        .as_any()
        .downcast_ref::<crate::vfs::eventfd::SignalFd>()
    {
        return super::poll::read_signalfd(k, tid, &f, s, &iov);
    }
    do_read(k, tid, &f, &iov, None)
}

fn sys_write(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iov(k, tid, a[1], a[2], false)?;
    do_write(k, tid, &f, &iov, None)
}

fn positional(f: &File, off: u64) -> SysResult<u64> {
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(off)
}

fn sys_pread64(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let off = positional(&f, a[3])?;
    let iov = user_iov(k, tid, a[1], a[2], true)?;
    do_read(k, tid, &f, &iov, Some(off))
}

fn sys_pwrite64(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let off = positional(&f, a[3])?;
    let iov = user_iov(k, tid, a[1], a[2], false)?;
    do_write(k, tid, &f, &iov, Some(off))
}

fn sys_readv(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iovec_array(k, tid, a[1], a[2], true)?;
    do_read(k, tid, &f, &iov, None)
}

fn sys_writev(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iovec_array(k, tid, a[1], a[2], false)?;
    do_write(k, tid, &f, &iov, None)
}

fn sys_preadv(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let off = positional(&f, a[3])?;
    let iov = user_iovec_array(k, tid, a[1], a[2], true)?;
    do_read(k, tid, &f, &iov, Some(off))
}

fn sys_pwritev(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let off = positional(&f, a[3])?;
    let iov = user_iovec_array(k, tid, a[1], a[2], false)?;
    do_write(k, tid, &f, &iov, Some(off))
}

fn sys_preadv2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iovec_array(k, tid, a[1], a[2], true)?;
    let off = if a[3] as i64 == -1 {
        None
    } else {
        Some(positional(&f, a[3])?)
    };
    do_read(k, tid, &f, &iov, off)
}

fn sys_pwritev2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let iov = user_iovec_array(k, tid, a[1], a[2], false)?;
    let off = if a[3] as i64 == -1 {
        None
    } else {
        Some(positional(&f, a[3])?)
    };
    do_write(k, tid, &f, &iov, off)
}

// ---------- open / close ----------

/// Checks W|X on a directory about to change, and that its mount is writable.
fn may_modify_dir(k: &Kernel, tid: Tid, dir: &Rc<Dentry>) -> SysResult<()> {
    if dir.mount.readonly {
        return Err(Errno::EROFS);
    }
    let st = dir.inode.stat(k)?;
    k.cred(tid).may_access(&st, MAY_WRITE | MAY_EXEC)
}

/// The sticky-bit rule for removing `victim` from `dir`.
fn sticky_ok(k: &Kernel, tid: Tid, dir: &Rc<Dentry>, victim: &libc::stat) -> SysResult<()> {
    let st = dir.inode.stat(k)?;
    if st.st_mode & libc::S_ISVTX == 0 {
        return Ok(());
    }
    let c = k.cred(tid);
    if c.fsuid == victim.st_uid || c.fsuid == st.st_uid || c.capable(cap::FOWNER) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
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
    match parent.inode.lookup(k, &name) {
        Ok(_) => {
            if flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let d = k.lookup_at(tid, dirfd, path, follow, false)?;
            if d.kind() == FileType::Symlink {
                return Err(Errno::ELOOP);
            }
            if d.kind() == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            k.open_dentry(tid, &d, flags & !libc::O_CREAT)
        }
        Err(Errno::ENOENT) => {
            may_modify_dir(k, tid, &parent)?;
            let umask = k.task(tid).fs.borrow().umask;
            let cred = k.cred(tid);
            let (inode, ops) =
                parent
                    .inode
                    .create(k, &name, mode & !umask & 0o7777, flags, &cred)?;
            let d = Dentry::child(&parent, &name, inode);
            let f = File::new(
                ops,
                flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY),
                Some(d.clone()),
            );
            fsnotify::notify_create(&parent, &name, FileType::Regular);
            f.notify_close.set(true);
            fsnotify::notify_open_close(&d, fsnotify::IN_OPEN);
            Ok(f)
        }
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
    let flags = flags as i32;
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

fn sys_close(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let e = k.task(tid).files.borrow_mut().remove(a[0] as i32)?;
    // POSIX record locks of the process on this file go with any close.
    if let Some(d) = &e.file.dentry {
        crate::vfs::lock::release_process(k.task(tid).tgid, Some(d.inode.id()));
    }
    drop(e);
    Ok(0)
}

fn sys_close_range(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2] as u32);
    if first > last {
        return Err(Errno::EINVAL);
    }
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    let fds: Vec<i32> = k
        .task(tid)
        .files
        .borrow()
        .iter()
        .map(|(fd, _)| fd)
        .filter(|fd| (*fd as u32) >= first && (*fd as u32) <= last)
        .collect();
    let mut t = k.task(tid).files.borrow_mut();
    let mut closed = Vec::new();
    for fd in fds {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            let _ = t.set_cloexec(fd, true);
        } else if let Ok(e) = t.remove(fd) {
            closed.push(e);
        }
    }
    drop(t);
    drop(closed);
    Ok(0)
}

fn sys_lseek(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = a[1] as i64;
    let base: i64 = match a[2] as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => f.pos.get() as i64,
        libc::SEEK_END => f
            .ops
            .size(k)
            .map(|s| s as i64)
            .or_else(|| f.stat(k).ok().map(|s| s.st_size))
            .unwrap_or(0),
        libc::SEEK_DATA | libc::SEEK_HOLE => {
            let Some(hfd) = f.ops.host_fd() else {
                // No holes in in-kernel files: data everywhere, hole at the end.
                let size = f.ops.size(k).unwrap_or(0) as i64;
                if off >= size {
                    return Err(Errno::ENXIO);
                }
                let r = if a[2] as i32 == libc::SEEK_DATA {
                    off
                } else {
                    size
                };
                f.pos.set(r as u64);
                return Ok(r as u64);
            };
            let r = unsafe { libc::lseek(hfd, off, a[2] as i32) };
            if r < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            f.pos.set(r as u64);
            return Ok(r as u64);
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    f.pos.set(new as u64);
    if f.dentry
        .as_ref()
        .is_some_and(|d| d.kind() == FileType::Directory)
        && new == 0
    {
        *f.dir.borrow_mut() = None;
    }
    Ok(new as u64)
}

// ---------- stat ----------

fn stat_path(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    flags: i32,
) -> SysResult<libc::stat> {
    let path = k.read_path(tid, path_addr)?;
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            let d = k.task(tid).fs.borrow().cwd.clone();
            return d.inode.stat(k);
        }
        let f = get_file(k, tid, dirfd)?;
        return f.stat(k);
    }
    let d = k.lookup_at(
        tid,
        dirfd,
        &path,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        false,
    )?;
    d.inode.stat(k)
}

fn put_stat(k: &Kernel, tid: Tid, addr: u64, st: &libc::stat) -> SysResult<u64> {
    k.task_mm(tid).borrow().write_val(addr, st)?;
    Ok(0)
}

fn sys_stat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, AT_FDCWD, a[0], 0)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_lstat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, AT_FDCWD, a[0], libc::AT_SYMLINK_NOFOLLOW)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_fstat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let st = f.stat(k)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_newfstatat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, a[0] as i32, a[1], a[3] as i32)?;
    put_stat(k, tid, a[2], &st)
}

pub fn statx_of(st: &libc::stat, mnt_id: u64) -> libc::statx {
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    x.stx_mask = 0x7ff; // STATX_BASIC_STATS | STATX_BTIME-less
    x.stx_blksize = st.st_blksize as u32;
    x.stx_nlink = st.st_nlink as u32;
    x.stx_uid = st.st_uid;
    x.stx_gid = st.st_gid;
    x.stx_mode = st.st_mode as u16;
    x.stx_ino = st.st_ino;
    x.stx_size = st.st_size as u64;
    x.stx_blocks = st.st_blocks as u64;
    x.stx_atime.tv_sec = st.st_atime;
    x.stx_atime.tv_nsec = st.st_atime_nsec as u32;
    x.stx_mtime.tv_sec = st.st_mtime;
    x.stx_mtime.tv_nsec = st.st_mtime_nsec as u32;
    x.stx_ctime.tv_sec = st.st_ctime;
    x.stx_ctime.tv_nsec = st.st_ctime_nsec as u32;
    x.stx_rdev_major = libc::major(st.st_rdev);
    x.stx_rdev_minor = libc::minor(st.st_rdev);
    x.stx_dev_major = libc::major(st.st_dev);
    x.stx_dev_minor = libc::minor(st.st_dev);
    x.stx_mnt_id = mnt_id;
    x
}

fn sys_statx(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, a[0] as i32, a[1], a[2] as i32)?;
    let x = statx_of(&st, 1);
    k.task_mm(tid).borrow().write_val(a[4], &x)?;
    Ok(0)
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

// ---------- cwd ----------

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
    let f = get_file(k, tid, a[0] as i32)?;
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

// ---------- descriptors ----------

fn sys_dup(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    install_fd(k, tid, f, false)
}

fn dup_to(k: &mut Kernel, tid: Tid, old: i32, new: i32, cloexec: bool) -> SysResult<u64> {
    let f = get_file(k, tid, old)?;
    if new < 0 || new as u64 >= nofile(k, tid) {
        return Err(Errno::EBADF);
    }
    let prev = k.task(tid).files.borrow_mut().put(new, f, cloexec);
    drop(prev);
    Ok(new as u64)
}

fn sys_dup2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[0] == a[1] {
        get_file(k, tid, a[0] as i32)?;
        return Ok(a[1]);
    }
    dup_to(k, tid, a[0] as i32, a[1] as i32, false)
}

fn sys_dup3(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2] as i32;
    if a[0] == a[1] || flags & !libc::O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    dup_to(
        k,
        tid,
        a[0] as i32,
        a[1] as i32,
        flags & libc::O_CLOEXEC != 0,
    )
}

fn sys_fcntl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let fd = a[0] as i32;
    let f = get_file(k, tid, fd)?;
    match a[1] as i32 {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let limit = nofile(k, tid);
            if a[2] >= limit {
                return Err(Errno::EINVAL);
            }
            let n = k.task(tid).files.borrow_mut().alloc(f, a[1] as i32 == libc::F_DUPFD_CLOEXEC, a[2] as i32, limit)?;
            Ok(n as u64)
        }
        libc::F_GETFD => Ok(k.task(tid).files.borrow().entry(fd).map_or(0, |e| e.cloexec as u64)),
        libc::F_SETFD => {
            k.task(tid).files.borrow_mut().set_cloexec(fd, a[2] & 1 != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok((f.flags.get() & !libc::O_CLOEXEC) as u64),
        libc::F_SETFL => {
            let settable = libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;
            let fl = (f.flags.get() & !settable) | (a[2] as i32 & settable);
            f.flags.set(fl);
            Ok(0)
        }
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_GETLK | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => crate::vfs::lock::fcntl_lock(k, tid, &f, a[1] as i32, a[2]),
        libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ => {
            let Some(end) = f.ops.as_any().downcast_ref::<crate::vfs::pipe::PipeEnd>() else {
                return Err(Errno::EBADF);
            };
            if a[1] as i32 == libc::F_GETPIPE_SZ {
                Ok(end.pipe.capacity() as u64)
            } else {
                Ok(end.pipe.set_capacity(a[2] as usize)? as u64)
            }
        }
        libc::F_GETOWN | libc::F_SETOWN | 10 /* F_SETSIG */ | 11 /* F_GETSIG */ => Ok(0),
        libc::F_ADD_SEALS | libc::F_GET_SEALS => super::mm::fcntl_seals(k, &f, a[1] as i32, a[2]),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_ioctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let fd = a[0] as i32;
    let f = get_file(k, tid, fd)?;
    match a[1] {
        x if x == libc::FIONBIO => {
            let on: i32 = k.task_mm(tid).borrow().read_val(a[2])?;
            let fl = f.flags.get();
            f.flags.set(if on != 0 {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            });
            Ok(0)
        }
        // O_ASYNC is recorded; SIGIO is not delivered (documented as partial).
        x if x == libc::FIOASYNC => {
            let on: i32 = k.task_mm(tid).borrow().read_val(a[2])?;
            let fl = f.flags.get();
            f.flags.set(if on != 0 {
                fl | libc::O_ASYNC
            } else {
                fl & !libc::O_ASYNC
            });
            Ok(0)
        }
        x if x == libc::FIOCLEX || x == libc::FIONCLEX => {
            k.task(tid)
                .files
                .borrow_mut()
                .set_cloexec(fd, x == libc::FIOCLEX)?;
            Ok(0)
        }
        _ => {
            let ops = f.ops.clone();
            ops.ioctl(k, &f, tid, a[1], a[2])
        }
    }
}

// ---------- directories ----------

fn dents(k: &mut Kernel, tid: Tid, a: [u64; 6], old: bool) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    if d.kind() != FileType::Directory || f.is_path_only() {
        return Err(if f.is_path_only() {
            Errno::EBADF
        } else {
            Errno::ENOTDIR
        });
    }
    if f.dir.borrow().is_none() || f.pos.get() == 0 {
        let mut list = vec![
            crate::vfs::DirEntry {
                name: b".".to_vec(),
                ino: d.inode.id().1,
                kind: FileType::Directory,
            },
            crate::vfs::DirEntry {
                name: b"..".to_vec(),
                ino: 1,
                kind: FileType::Directory,
            },
        ];
        list.extend(d.inode.readdir(k)?);
        *f.dir.borrow_mut() = Some(list);
    }
    let cap = a[2] as usize;
    let mut out = Vec::with_capacity(cap.min(65536));
    let list = f.dir.borrow();
    let list = list.as_ref().unwrap();
    let mut i = f.pos.get() as usize;
    while i < list.len() {
        let e = &list[i];
        let base = if old { 18 } else { 19 };
        let reclen = (base + e.name.len() + 1 + if old { 1 } else { 0 }).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_ne_bytes());
        out.extend_from_slice(&((i + 1) as i64).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        if !old {
            out.push(e.kind.dirent_type());
        }
        out.extend_from_slice(&e.name);
        out.push(0);
        while out.len() < start + reclen - if old { 1 } else { 0 } {
            out.push(0);
        }
        if old {
            out.push(e.kind.dirent_type());
        }
        i += 1;
    }
    if out.is_empty() && i < list.len() {
        return Err(Errno::EINVAL);
    }
    f.pos.set(i as u64);
    k.task_mm(tid).borrow().write_bytes(a[1], &out)?;
    fsnotify::notify_file(&f, fsnotify::IN_ACCESS);
    Ok(out.len() as u64)
}

fn sys_getdents64(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    dents(k, tid, a, false)
}

fn sys_getdents(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    dents(k, tid, a, true)
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

fn remove_common(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    dir: bool,
) -> SysResult<u64> {
    let path = k.read_path(tid, path_addr)?;
    let (parent, name) = k.lookup_parent_at(tid, dirfd, &path)?;
    if dir && name == b"." {
        return Err(Errno::EINVAL);
    }
    if dir && name == b".." {
        return Err(Errno::ENOTEMPTY);
    }
    if !dir && path.ends_with(b"/") {
        let d = k.lookup_at(tid, dirfd, &path, false, false)?;
        return Err(if d.kind() == FileType::Directory {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    let victim = parent.inode.lookup(k, &name)?;
    let child = Dentry::child(&parent, &name, victim.clone());
    if k.mounts.borrow().covering(&child).is_some() {
        return Err(Errno::EBUSY);
    }
    may_modify_dir(k, tid, &parent)?;
    let vst = victim.stat(k)?;
    sticky_ok(k, tid, &parent, &vst)?;
    if dir {
        if victim.kind() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        parent.inode.rmdir(k, &name)?;
    } else {
        if victim.kind() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        parent.inode.unlink(k, &name)?;
    }
    let nlink = victim.stat(k).map_or(0, |st| st.st_nlink);
    fsnotify::notify_remove(&parent, &name, victim.id(), victim.kind(), nlink);
    Ok(0)
}

fn sys_rmdir(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    remove_common(k, tid, AT_FDCWD, a[0], true)
}

fn sys_unlink(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    remove_common(k, tid, AT_FDCWD, a[0], false)
}

fn sys_unlinkat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove_common(k, tid, a[0] as i32, a[1], flags & libc::AT_REMOVEDIR != 0)
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
    if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = k.read_path(tid, old)?;
    let np = k.read_path(tid, new)?;
    let (od, on) = k.lookup_parent_at(tid, olddir, &op)?;
    let (nd, nn) = k.lookup_parent_at(tid, newdir, &np)?;
    for n in [&on, &nn] {
        if n == b"." || n == b".." {
            return Err(Errno::EBUSY);
        }
    }
    if od.mount.id != nd.mount.id {
        return Err(Errno::EXDEV);
    }
    let moving = od.inode.lookup(k, &on)?;
    may_modify_dir(k, tid, &od)?;
    may_modify_dir(k, tid, &nd)?;
    sticky_ok(k, tid, &od, &moving.stat(k)?)?;
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

fn link_common(
    k: &mut Kernel,
    tid: Tid,
    olddir: i32,
    old: u64,
    newdir: i32,
    new: u64,
    flags: i32,
) -> SysResult<u64> {
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

// ---------- attributes ----------

fn setattr_checked(k: &mut Kernel, tid: Tid, d: &Rc<Dentry>, attr: SetAttr) -> SysResult<u64> {
    if d.mount.readonly {
        return Err(Errno::EROFS);
    }
    let st = d.inode.stat(k)?;
    let c = k.cred(tid);
    let mut attr = attr;
    if attr.mode.is_some() {
        if !c.is_owner(&st) {
            return Err(Errno::EPERM);
        }
        // Non-members lose setgid.
        if let Some(m) = attr.mode.as_mut()
            && !c.in_group(st.st_gid)
            && !c.capable(cap::FSETID)
        {
            *m &= !libc::S_ISGID;
        }
    }
    if attr.uid.is_some() || attr.gid.is_some() {
        let uid_change = attr.uid.is_some_and(|u| u != st.st_uid);
        let gid_ok = attr
            .gid
            .is_none_or(|g| g == st.st_gid || (c.fsuid == st.st_uid && c.in_group(g)));
        if (uid_change || !gid_ok) && !c.capable(cap::CHOWN) {
            return Err(Errno::EPERM);
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR
            && st.st_mode & (libc::S_ISUID | libc::S_ISGID) != 0
        {
            attr.mode = Some(st.st_mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID));
        }
    }
    if attr.atime.is_some() || attr.mtime.is_some() {
        let now_only = matches!(attr.atime, None | Some(TimeSet::Now))
            && matches!(attr.mtime, None | Some(TimeSet::Now));
        if !(c.is_owner(&st) || (now_only && c.may_access(&st, MAY_WRITE).is_ok())) {
            return Err(if now_only {
                Errno::EACCES
            } else {
                Errno::EPERM
            });
        }
    }
    if let Some(size) = attr.size {
        if d.kind() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        c.may_access(&st, MAY_WRITE)?;
        k.fsize_check(tid, size)?;
    }
    d.inode.setattr(k, &attr)?;
    let mask = fsnotify::setattr_mask(
        attr.size.is_some(),
        attr.atime.is_some(),
        attr.mtime.is_some(),
        attr.mode.is_some(),
        attr.uid.is_some() || attr.gid.is_some(),
    );
    fsnotify::notify_dentry(d, mask);
    Ok(0)
}

fn path_setattr(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: u64,
    follow: bool,
    empty: bool,
    attr: SetAttr,
) -> SysResult<u64> {
    let p = if path == 0 && empty {
        Vec::new()
    } else {
        k.read_path(tid, path)?
    };
    let d = k.lookup_at(tid, dirfd, &p, follow, empty)?;
    setattr_checked(k, tid, &d, attr)
}

fn fd_setattr(k: &mut Kernel, tid: Tid, fd: i32, attr: SetAttr) -> SysResult<u64> {
    let f = get_file(k, tid, fd)?;
    let d = f.dentry.clone().ok_or(Errno::EBADF)?;
    setattr_checked(k, tid, &d, attr)
}

fn mode_attr(m: u64) -> SetAttr {
    SetAttr {
        mode: Some(m as u32 & 0o7777),
        ..Default::default()
    }
}

fn sys_chmod(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, mode_attr(a[1]))
}

fn sys_fchmod(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    fd_setattr(k, tid, a[0] as i32, mode_attr(a[1]))
}

fn sys_fchmodat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, a[0] as i32, a[1], true, false, mode_attr(a[2]))
}

fn sys_fchmodat2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[3] as i32;
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        mode_attr(a[2]),
    )
}

fn owner_attr(uid: u64, gid: u64) -> SetAttr {
    SetAttr {
        uid: (uid as u32 != u32::MAX).then_some(uid as u32),
        gid: (gid as u32 != u32::MAX).then_some(gid as u32),
        ..Default::default()
    }
}

fn sys_chown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, owner_attr(a[1], a[2]))
}

fn sys_lchown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], false, false, owner_attr(a[1], a[2]))
}

fn sys_fchown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    fd_setattr(k, tid, a[0] as i32, owner_attr(a[1], a[2]))
}

fn sys_fchownat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4] as i32;
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        owner_attr(a[2], a[3]),
    )
}

fn times_attr(t: Option<[libc::timespec; 2]>) -> SetAttr {
    let conv = |ts: libc::timespec| -> Option<TimeSet> {
        match ts.tv_nsec {
            libc::UTIME_OMIT => None,
            libc::UTIME_NOW => Some(TimeSet::Now),
            _ => Some(TimeSet::At(ts)),
        }
    };
    match t {
        None => SetAttr {
            atime: Some(TimeSet::Now),
            mtime: Some(TimeSet::Now),
            ..Default::default()
        },
        Some([a, m]) => SetAttr {
            atime: conv(a),
            mtime: conv(m),
            ..Default::default()
        },
    }
}

fn sys_utimensat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let times = if a[2] == 0 {
        None
    } else {
        Some(
            k.task_mm(tid)
                .borrow()
                .read_val::<[libc::timespec; 2]>(a[2])?,
        )
    };
    if let Some(t) = &times {
        for ts in t {
            if ts.tv_nsec != libc::UTIME_NOW
                && ts.tv_nsec != libc::UTIME_OMIT
                && !(0..1_000_000_000).contains(&ts.tv_nsec)
            {
                return Err(Errno::EINVAL);
            }
        }
    }
    let attr = times_attr(times);
    let flags = a[3] as i32;
    if a[1] == 0 {
        // futimens: the fd itself.
        return fd_setattr(k, tid, a[0] as i32, attr);
    }
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        attr,
    )
}

fn timeval_pair(k: &Kernel, tid: Tid, addr: u64) -> SysResult<Option<[libc::timespec; 2]>> {
    if addr == 0 {
        return Ok(None);
    }
    let tv: [libc::timeval; 2] = k.task_mm(tid).borrow().read_val(addr)?;
    Ok(Some([
        libc::timespec {
            tv_sec: tv[0].tv_sec,
            tv_nsec: tv[0].tv_usec * 1000,
        },
        libc::timespec {
            tv_sec: tv[1].tv_sec,
            tv_nsec: tv[1].tv_usec * 1000,
        },
    ]))
}

fn sys_utimes(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = timeval_pair(k, tid, a[1])?;
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, times_attr(t))
}

fn sys_futimesat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = timeval_pair(k, tid, a[2])?;
    path_setattr(k, tid, a[0] as i32, a[1], true, false, times_attr(t))
}

fn sys_utime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = if a[1] == 0 {
        None
    } else {
        let u: [i64; 2] = k.task_mm(tid).borrow().read_val(a[1])?;
        Some([
            libc::timespec {
                tv_sec: u[0],
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: u[1],
                tv_nsec: 0,
            },
        ])
    };
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, times_attr(t))
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
    f.ops.allocate(a[1] as i32, a[2], a[3])?;
    fsnotify::notify_file(&f, fsnotify::IN_MODIFY);
    Ok(0)
}

fn sys_fsync(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    f.ops.sync()?;
    Ok(0)
}

fn sys_sync(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}

fn sys_syncfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Ok(0)
}

fn sys_sync_range(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    f.ops.sync()?;
    Ok(0)
}

fn sys_fadvise(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}

fn put_statfs(k: &Kernel, tid: Tid, addr: u64, s: &libc::statfs) -> SysResult<u64> {
    k.task_mm(tid).borrow().write_val(addr, s)?;
    Ok(0)
}

fn sys_statfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let p = k.read_path(tid, a[0])?;
    let d = k.lookup(tid, &p, true)?;
    let mut s = d.inode.statfs(k)?;
    if d.mount.readonly {
        // f_flags follows f_frsize (libc hides it in padding).
        // SAFETY: statfs is 120 bytes; byte 80 is f_flags.
        unsafe {
            *((&mut s as *mut libc::statfs as *mut u8).add(80) as *mut i64) |=
                libc::ST_RDONLY as i64
        };
    }
    put_statfs(k, tid, a[1], &s)
}

fn sys_fstatfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let s = match &f.dentry {
        Some(d) => d.inode.statfs(k)?,
        None => crate::vfs::Inode::statfs(&*crate::vfs::tmpfs::TmpInode::new_root(0o755, 0, 0), k)?,
    };
    put_statfs(k, tid, a[1], &s)
}

fn sys_umask(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mut fs = k.task(tid).fs.borrow_mut();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}

// ---------- pipes ----------

fn pipe_common(k: &mut Kernel, tid: Tid, addr: u64, flags: i32) -> SysResult<u64> {
    if flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = Pipe::new();
    let r = File::new(
        p.end(false),
        libc::O_RDONLY | (flags & libc::O_NONBLOCK),
        None,
    );
    let w = File::new(
        p.end(true),
        libc::O_WRONLY | (flags & libc::O_NONBLOCK),
        None,
    );
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let rfd = install_fd(k, tid, r, cloexec)?;
    let wfd = match install_fd(k, tid, w, cloexec) {
        Ok(w) => w,
        Err(e) => {
            let _ = k.task(tid).files.borrow_mut().remove(rfd as i32);
            return Err(e);
        }
    };
    let fds = [rfd as i32, wfd as i32];
    if let Err(e) = k.task_mm(tid).borrow().write_val(addr, &fds) {
        let mut t = k.task(tid).files.borrow_mut();
        let _ = t.remove(rfd as i32);
        let _ = t.remove(wfd as i32);
        return Err(e);
    }
    Ok(0)
}

fn sys_pipe(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    pipe_common(k, tid, a[0], 0)
}

fn sys_pipe2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    pipe_common(k, tid, a[0], a[1] as i32)
}

fn sys_flock(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    crate::vfs::lock::flock(k, tid, &f, a[1] as i32)
}

// ---------- extended attributes ----------
// The sandbox keeps no extended attributes: reads find none, writes are
// refused. Lookups still run so missing paths give ENOENT.

fn xattr_path(k: &mut Kernel, tid: Tid, path: u64, follow: bool) -> SysResult<Rc<Dentry>> {
    let p = k.read_path(tid, path)?;
    k.lookup(tid, &p, follow)
}

fn sys_getxattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    xattr_path(k, tid, a[0], true)?;
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
