//! Pipes: pipe, pipe2.

use super::install_fd;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::File;
use crate::vfs::pipe::Pipe;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![("pipe", sys_pipe, Full, ""), ("pipe2", sys_pipe2, Full, "")]
}

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
