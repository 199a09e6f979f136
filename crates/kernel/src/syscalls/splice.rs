//! Moving data between descriptors inside the kernel: splice, tee,
//! vmsplice, sendfile, copy_file_range, on every kind of file (pipes and
//! FIFOs, regular files, sockets, devices). Bytes move through a kernel
//! buffer; a pipe's bytes are consumed only once they were delivered, so
//! a transfer that blocks or fails halfway loses nothing.

use std::rc::Rc;

use super::fs::{do_read, do_write, get_file, user_iovec_array};
use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Kernel, Tid};
use crate::vfs::file::{POLLIN, POLLOUT};
use crate::vfs::inode::FileType;
use crate::vfs::pipe::{Pipe, pipe_of};
use crate::vfs::{File, IoVecs};

const SPLICE_F_MOVE: u64 = 1;
const SPLICE_F_NONBLOCK: u64 = 2;
const SPLICE_F_MORE: u64 = 4;
const SPLICE_F_GIFT: u64 = 8;
const SPLICE_FLAGS: u64 = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

/// Most one call moves (Linux's MAX_RW_COUNT).
const MAX_RW: u64 = 0x7fff_f000;
/// Kernel buffer per step of sendfile and copy_file_range.
const CHUNK: u64 = 1 << 20;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("splice", sys_splice, Full, ""),
        ("tee", sys_tee, Full, ""),
        (
            "vmsplice",
            sys_vmsplice,
            Full,
            "copies (SPLICE_F_GIFT has no effect)",
        ),
        ("sendfile", sys_sendfile, Full, ""),
        ("copy_file_range", sys_copy_file_range, Full, ""),
    ]
}

/// Waits for `events` on `f` (EBLOCK), or EAGAIN when it must not block.
fn wait_or_again(k: &Kernel, tid: Tid, f: &File, events: u32, nonblock: bool) -> SysResult<u64> {
    if nonblock || f.nonblocking() || !f.ops.wait(k, tid, events) {
        return Err(Errno::EAGAIN);
    }
    Err(Errno::EBLOCK)
}

fn sigpipe(k: &mut Kernel, tid: Tid) -> Errno {
    let _ = k.send_task(tid, SigInfo::user(libc::SIGPIPE, 0, tid, 0));
    Errno::EPIPE
}

/// An offset argument (NULL: the file position is used): its value.
fn read_off(k: &Kernel, tid: Tid, addr: u64, f: &File) -> SysResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    let v: i64 = k.task_mm(tid).borrow().read_val(addr)?;
    if v < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(v as u64))
}

fn write_off(k: &Kernel, tid: Tid, addr: u64, v: u64) -> SysResult<()> {
    k.task_mm(tid).borrow().write_val(addr, &v)
}

/// Puts `data` into pipe `f` (the caller made sure there is room).
fn push(k: &Kernel, f: &Rc<File>, data: &mut [u8]) -> SysResult<usize> {
    f.ops.write(k, f, &IoVecs::from_slice(data), 0)
}

fn sys_splice(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd_in, off_in, fd_out, off_out, len, flags) =
        (a[0] as i32, a[1], a[2] as i32, a[3], a[4], a[5]);
    if flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(k, tid, fd_in)?;
    let outf = get_file(k, tid, fd_out)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let (ip, op) = (pipe_of(&inf), pipe_of(&outf));
    match (&ip, &op) {
        (None, None) => return Err(Errno::EINVAL),
        (Some(x), Some(y)) if Rc::ptr_eq(x, y) => return Err(Errno::EINVAL),
        _ => {}
    }
    if (ip.is_some() && off_in != 0) || (op.is_some() && off_out != 0) {
        return Err(Errno::ESPIPE);
    }
    if op.is_none() && outf.flags.get() & libc::O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let in_off = read_off(k, tid, off_in, &inf)?;
    let out_off = read_off(k, tid, off_out, &outf)?;
    let len = len.min(MAX_RW);
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    match (ip, op) {
        (Some(ip), op) => {
            let avail = ip.available();
            if avail == 0 {
                if !ip.has_writers() {
                    return Ok(0);
                }
                return wait_or_again(k, tid, &inf, POLLIN, nonblock);
            }
            let mut n = len.min(avail as u64) as usize;
            if let Some(op) = &op {
                if !op.has_readers() {
                    return Err(sigpipe(k, tid));
                }
                if op.room() == 0 {
                    return wait_or_again(k, tid, &outf, POLLOUT, nonblock);
                }
                n = n.min(op.room());
                let mut data = ip.peek(n);
                let w = push(k, &outf, &mut data)?;
                ip.consume(w);
                return Ok(w as u64);
            }
            let mut data = ip.peek(n);
            let w = do_write(k, tid, &outf, &IoVecs::from_slice(&mut data), out_off)?;
            ip.consume(w as usize);
            if let Some(o) = out_off {
                write_off(k, tid, off_out, o + w)?;
            }
            Ok(w)
        }
        (None, Some(op)) => {
            if !op.has_readers() {
                return Err(sigpipe(k, tid));
            }
            let room = op.room();
            if room == 0 {
                return wait_or_again(k, tid, &outf, POLLOUT, nonblock);
            }
            let mut buf = vec![0u8; len.min(room as u64) as usize];
            let pos = in_off.unwrap_or(inf.pos.get());
            let r = read_at(k, tid, &inf, &mut buf, pos)? as usize;
            if r == 0 {
                return Ok(0);
            }
            let w = push(k, &outf, &mut buf[..r])?;
            advance(k, tid, &inf, off_in, in_off, pos + w as u64)?;
            Ok(w as u64)
        }
        (None, None) => Err(Errno::EINVAL),
    }
}

/// Reads into `buf` at `pos` (seekable files) or from the stream,
/// without moving the file position.
fn read_at(k: &mut Kernel, tid: Tid, f: &Rc<File>, buf: &mut [u8], pos: u64) -> SysResult<u64> {
    let iov = IoVecs::from_slice(buf);
    if f.ops.seekable() {
        do_read(k, tid, f, &iov, Some(pos))
    } else {
        do_read(k, tid, f, &iov, None)
    }
}

/// After a transfer from `f`: its offset argument, or its position.
fn advance(
    k: &Kernel,
    tid: Tid,
    f: &File,
    off_addr: u64,
    off: Option<u64>,
    new: u64,
) -> SysResult<()> {
    match off {
        Some(_) => write_off(k, tid, off_addr, new),
        None => {
            if f.ops.seekable() {
                f.pos.set(new);
            }
            Ok(())
        }
    }
}

fn sys_tee(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd_in, fd_out, len, flags) = (a[0] as i32, a[1] as i32, a[2], a[3]);
    if flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(k, tid, fd_in)?;
    let outf = get_file(k, tid, fd_out)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let (Some(ip), Some(op)) = (pipe_of(&inf), pipe_of(&outf)) else {
        return Err(Errno::EINVAL);
    };
    if Rc::ptr_eq(&ip, &op) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let avail = ip.available();
    if avail == 0 {
        if !ip.has_writers() {
            return Ok(0);
        }
        return wait_or_again(k, tid, &inf, POLLIN, nonblock);
    }
    if !op.has_readers() {
        return Err(sigpipe(k, tid));
    }
    if op.room() == 0 {
        return wait_or_again(k, tid, &outf, POLLOUT, nonblock);
    }
    let n = (len.min(MAX_RW) as usize).min(avail).min(op.room());
    let mut data = ip.peek(n);
    Ok(push(k, &outf, &mut data)? as u64)
}

fn sys_vmsplice(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, iov, nr, flags) = (a[0] as i32, a[1], a[2], a[3]);
    if flags & !SPLICE_FLAGS != 0 || nr > 1024 {
        return Err(Errno::EINVAL);
    }
    let f = get_file(k, tid, fd)?;
    let p: Rc<Pipe> = pipe_of(&f).ok_or(Errno::EBADF)?;
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    if f.writable() {
        // User memory into the pipe.
        let src = user_iovec_array(k, tid, iov, nr, false)?;
        if src.len == 0 {
            return Ok(0);
        }
        if !p.has_readers() {
            return Err(sigpipe(k, tid));
        }
        if p.room() == 0 {
            return wait_or_again(k, tid, &f, POLLOUT, nonblock);
        }
        let mut data = vec![0u8; src.len.min(p.room())];
        src.copy_out(0, &mut data);
        return Ok(push(k, &f, &mut data)? as u64);
    }
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    // The pipe into user memory.
    let dst = user_iovec_array(k, tid, iov, nr, true)?;
    if dst.len == 0 {
        return Ok(0);
    }
    let avail = p.available();
    if avail == 0 {
        if !p.has_writers() {
            return Ok(0);
        }
        return wait_or_again(k, tid, &f, POLLIN, nonblock);
    }
    let data = p.peek(dst.len.min(avail));
    let n = dst.copy_in(0, &data);
    p.consume(n);
    Ok(n as u64)
}

/// Copies up to `len` bytes from `inf` (at `in_pos`) to `outf` (at
/// `out_pos`, or its position), a chunk at a time, stopping at end of
/// input or at a short write. Returns bytes copied; an error only if
/// nothing was.
fn copy_loop(
    k: &mut Kernel,
    tid: Tid,
    inf: &Rc<File>,
    in_pos: u64,
    outf: &Rc<File>,
    out_pos: Option<u64>,
    len: u64,
) -> SysResult<u64> {
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(CHUNK) as usize;
        let mut buf = vec![0u8; want];
        let r = match read_at(k, tid, inf, &mut buf, in_pos + done) {
            Ok(r) => r as usize,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if r == 0 {
            break;
        }
        let w = match do_write(
            k,
            tid,
            outf,
            &IoVecs::from_slice(&mut buf[..r]),
            out_pos.map(|o| o + done),
        ) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        if (w as usize) < r {
            break;
        }
    }
    Ok(done)
}

fn sys_sendfile(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd_out, fd_in, off_addr, count) = (a[0] as i32, a[1] as i32, a[2], a[3]);
    let outf = get_file(k, tid, fd_out)?;
    let inf = get_file(k, tid, fd_in)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    if outf.flags.get() & libc::O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let count = count.min(MAX_RW);
    if let Some(ip) = pipe_of(&inf) {
        // From a pipe: what was delivered is consumed.
        if off_addr != 0 {
            return Err(Errno::ESPIPE);
        }
        if count == 0 {
            return Ok(0);
        }
        let avail = ip.available();
        if avail == 0 {
            if !ip.has_writers() {
                return Ok(0);
            }
            return wait_or_again(k, tid, &inf, POLLIN, false);
        }
        let mut data = ip.peek(avail.min(count as usize));
        let w = do_write(k, tid, &outf, &IoVecs::from_slice(&mut data), None)?;
        ip.consume(w as usize);
        return Ok(w);
    }
    if !inf.ops.seekable() {
        // Sockets and other streams: Linux needs a page-cache source.
        return Err(Errno::EINVAL);
    }
    let off = read_off(k, tid, off_addr, &inf)?;
    let pos = off.unwrap_or(inf.pos.get());
    let n = copy_loop(k, tid, &inf, pos, &outf, None, count)?;
    advance(k, tid, &inf, off_addr, off, pos + n)?;
    Ok(n)
}

fn sys_copy_file_range(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd_in, off_in, fd_out, off_out, len, flags) =
        (a[0] as i32, a[1], a[2] as i32, a[3], a[4], a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(k, tid, fd_in)?;
    let outf = get_file(k, tid, fd_out)?;
    if !inf.readable() || !outf.writable() || outf.flags.get() & libc::O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let kind = |f: &File| f.dentry.as_ref().map(|d| d.kind());
    for f in [&inf, &outf] {
        match kind(f) {
            Some(FileType::Regular) => {}
            Some(FileType::Directory) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    let in_off = read_off(k, tid, off_in, &inf)?;
    let out_off = read_off(k, tid, off_out, &outf)?;
    let ipos = in_off.unwrap_or(inf.pos.get());
    let opos = out_off.unwrap_or(outf.pos.get());
    let len = len.min(MAX_RW);
    // Overlapping ranges of one file are refused.
    let same = match (&inf.dentry, &outf.dentry) {
        (Some(x), Some(y)) => x.inode.id() == y.inode.id(),
        _ => false,
    };
    if same && ipos < opos.saturating_add(len) && opos < ipos.saturating_add(len) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let n = copy_loop(k, tid, &inf, ipos, &outf, Some(opos), len)?;
    advance(k, tid, &inf, off_in, in_off, ipos + n)?;
    match out_off {
        Some(o) => write_off(k, tid, off_out, o + n)?,
        None => outf.pos.set(opos + n),
    }
    Ok(n)
}
