//! Reading and writing: read, write and their positional and vectored forms.

use std::rc::Rc;

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::file::{POLLIN, POLLOUT};
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;
use crate::vfs::iov::{IOVEC_SIZE, check_iovec_array, iovec_ranges};
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
    ]
}

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
    if seekable {
        verify_area(pos, iov.len)?;
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
        Err(Errno::EAGAIN) if !f.nonblocking() && f.ops.socket().is_some() => {
            crate::syscalls::net::sleep_or_timeout(k, tid, f, POLLIN, false)
        }
        Err(Errno::EAGAIN) if !f.nonblocking() && f.ops.wait(k, tid, POLLIN) => {
            let t = k.task_mut(tid);
            t.sys.deadline = f.ops.read_deadline(t.sys.deadline);
            Err(Errno::EBLOCK)
        }
        Err(e) => Err(e),
    }
}

/// A read or readv blocked on descriptor `a[0]` is interrupted by a
/// signal: the bytes its file hands over then (see
/// FileOps::read_interrupted), None when there are none.
pub fn read_interrupted(k: &mut Kernel, tid: Tid, nr: u64, a: [u64; 6]) -> Option<u64> {
    let f = get_file(k, tid, a[0] as i32).ok()?;
    let iov = match nr as i64 {
        libc::SYS_read => user_iov(k, tid, a[1], a[2], true).ok()?,
        libc::SYS_readv => user_iovec_array(k, tid, a[1], a[2], true).ok()?,
        _ => return None,
    };
    let n = f.ops.read_interrupted(k, &iov);
    (n > 0).then_some(n as u64)
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
    if seekable {
        verify_area(pos, iov.len)?;
    }
    // RLIMIT_FSIZE on regular files: a write is cut at the limit; one
    // that starts at it gets SIGXFSZ and EFBIG.
    let limited;
    let regular = f.dentry.as_ref().filter(|d| d.kind() == FileType::Regular);
    let iov = if let Some(d) = regular {
        let n = k.fsize_allows(tid, pos, iov.len as u64)? as usize;
        if n > 0 {
            // Set-ID bits go before the first byte lands.
            k.remove_privs(tid, d)?;
        }
        if n < iov.len {
            limited = iov.truncated(n);
            &limited
        } else {
            iov
        }
    } else {
        iov
    };
    if f.ops.writes_whole() && !f.nonblocking() {
        return write_whole(k, tid, f, iov);
    }
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

/// Linux's rw_verify_area: the range a read or write covers must end
/// within a file's largest offset.
fn verify_area(pos: u64, len: usize) -> SysResult<()> {
    match pos.checked_add(len as u64) {
        Some(end) if pos <= i64::MAX as u64 && end <= i64::MAX as u64 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// A blocking write to a pipe (or another stream that writes whole): it
/// returns when everything is written, as Linux's pipe_write, sleeping for
/// room as often as needed; what it wrote so far is kept across sleeps
/// (`sys.done`). It returns less only when the reader goes (with SIGPIPE)
/// or a signal interrupts it, and then the count written, never an error
/// after data went out.
fn write_whole(k: &mut Kernel, tid: Tid, f: &Rc<File>, iov: &IoVecs) -> SysResult<u64> {
    let done = k.task(tid).sys.done.unwrap_or(0) as usize;
    if done > 0 && k.has_deliverable_signal(tid) {
        return Ok(done as u64);
    }
    let rest = iov.suffix(done);
    let r = f.ops.write(k, f, &rest, 0);
    let done = match r {
        Ok(n) => done + n,
        Err(Errno::EAGAIN) => done,
        Err(Errno::EPIPE) => {
            let _ = k.send_task(tid, SigInfo::user(libc::SIGPIPE, 0, tid, 0));
            return if done > 0 {
                Ok(done as u64)
            } else {
                Err(Errno::EPIPE)
            };
        }
        Err(e) if done == 0 => return Err(e),
        Err(_) => return Ok(done as u64),
    };
    if done >= iov.len {
        return Ok(done as u64);
    }
    k.task_mut(tid).sys.done = Some(done as u64);
    if f.ops.socket().is_some() {
        // A socket's send timeout ends the wait with what was written.
        return match crate::syscalls::net::sleep_or_timeout(k, tid, f, POLLOUT, true) {
            Err(Errno::EAGAIN) if done > 0 => Ok(done as u64),
            r => r,
        };
    }
    f.ops.wait(k, tid, POLLOUT);
    Err(Errno::EBLOCK)
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
    check_iovec_array(&raw)?;
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
        return crate::syscalls::poll::read_signalfd(k, tid, &f, s, &iov);
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
