//! The descriptor table: close, close_range, dup, dup2, dup3.

use super::{get_file_raw, install_fd, nofile};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("close", sys_close, Full, ""),
        ("close_range", sys_close_range, Full, ""),
        ("dup", sys_dup, Full, ""),
        ("dup2", sys_dup2, Full, ""),
        ("dup3", sys_dup3, Full, ""),
    ]
}

fn sys_close(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let e = k.task(tid).files.borrow_mut().remove(a[0] as i32)?;
    // POSIX record locks of the process on this file go with any close.
    crate::vfs::lock::release_process(k.task(tid).tgid, Some(crate::vfs::lock::lock_id(&e.file)));
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

fn sys_dup(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file_raw(k, tid, a[0] as i32)?;
    install_fd(k, tid, f, false)
}

fn dup_to(k: &mut Kernel, tid: Tid, old: i32, new: i32, cloexec: bool) -> SysResult<u64> {
    let f = get_file_raw(k, tid, old)?;
    if new < 0 || new as u64 >= nofile(k, tid) {
        return Err(Errno::EBADF);
    }
    let prev = k.task(tid).files.borrow_mut().put(new, f, cloexec);
    drop(prev);
    Ok(new as u64)
}

fn sys_dup2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[0] == a[1] {
        get_file_raw(k, tid, a[0] as i32)?;
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
