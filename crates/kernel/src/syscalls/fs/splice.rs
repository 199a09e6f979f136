//! Copying between files in the kernel: sendfile, copy_file_range.

use std::rc::Rc;

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::file::POLLIN;
use crate::vfs::{File, IoVecs};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("sendfile", sys_sendfile, Full, ""),
        ("copy_file_range", sys_copy_file_range, Full, ""),
    ]
}

/// Copies up to `len` bytes from `inf` to `outf` through a kernel buffer.
fn copy_between(
    k: &mut Kernel,
    tid: Tid,
    inf: &Rc<File>,
    in_off: Option<u64>,
    outf: &Rc<File>,
    out_off: Option<u64>,
    len: usize,
) -> SysResult<(u64, u64)> {
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let mut buf = vec![0u8; len.min(1 << 20)];
    let n = {
        let iov = IoVecs::from_slice(&mut buf);
        let pos = in_off.unwrap_or(inf.pos.get());
        match inf.ops.read(k, inf, &iov, pos) {
            Ok(n) => n,
            Err(Errno::EAGAIN) if !inf.nonblocking() && inf.ops.wait(k, tid, POLLIN) => {
                return Err(Errno::EBLOCK);
            }
            Err(e) => return Err(e),
        }
    };
    if n == 0 {
        return Ok((0, in_off.unwrap_or(inf.pos.get())));
    }
    let mut done = 0usize;
    while done < n {
        let iov = IoVecs::from_slice(&mut buf[done..n]);
        let pos = out_off.map(|o| o + done as u64).unwrap_or(outf.pos.get());
        match outf.ops.write(k, outf, &iov, pos) {
            Ok(w) => {
                if out_off.is_none() && outf.ops.seekable() {
                    outf.pos.set(pos + w as u64);
                }
                done += w;
            }
            Err(e) if done == 0 => {
                return Err(if e == Errno::EAGAIN { Errno::EAGAIN } else { e });
            }
            Err(_) => break,
        }
    }
    let new_in = in_off.unwrap_or(inf.pos.get()) + done as u64;
    if in_off.is_none() && inf.ops.seekable() {
        inf.pos.set(new_in);
    }
    Ok((done as u64, new_in))
}

fn sys_sendfile(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let outf = get_file(k, tid, a[0] as i32)?;
    let inf = get_file(k, tid, a[1] as i32)?;
    let off = if a[2] != 0 {
        Some(k.task_mm(tid).borrow().read_val::<u64>(a[2])?)
    } else {
        None
    };
    let (n, new_off) = copy_between(k, tid, &inf, off, &outf, None, a[3] as usize)?;
    if a[2] != 0 {
        k.task_mm(tid).borrow().write_val(a[2], &new_off)?;
    }
    Ok(n)
}

fn sys_copy_file_range(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[5] != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(k, tid, a[0] as i32)?;
    let outf = get_file(k, tid, a[2] as i32)?;
    let mm = k.task_mm(tid);
    let in_off = if a[1] != 0 {
        Some(mm.borrow().read_val::<u64>(a[1])?)
    } else {
        None
    };
    let out_off = if a[3] != 0 {
        Some(mm.borrow().read_val::<u64>(a[3])?)
    } else {
        None
    };
    let (n, new_in) = copy_between(k, tid, &inf, in_off, &outf, out_off, a[4] as usize)?;
    if a[1] != 0 {
        mm.borrow().write_val(a[1], &new_in)?;
    }
    if let (Some(o), true) = (out_off, a[3] != 0) {
        mm.borrow().write_val(a[3], &(o + n))?;
    }
    Ok(n)
}
