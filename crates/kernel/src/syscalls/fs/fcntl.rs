//! fcntl and flock.

use super::{get_file, nofile};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::perm::cap;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "fcntl",
            sys_fcntl,
            Partial,
            "no F_SETOWN signals, leases or notify",
        ),
        ("flock", sys_flock, Partial, "advisory, within the sandbox"),
    ]
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
            let Some(pipe) = crate::vfs::pipe::pipe_of(&*f.ops) else {
                return Err(Errno::EBADF);
            };
            if a[1] as i32 == libc::F_GETPIPE_SZ {
                Ok(pipe.capacity() as u64)
            } else {
                let privileged = k.cred(tid).capable(cap::SYS_RESOURCE);
                Ok(pipe.set_capacity(a[2], privileged)? as u64)
            }
        }
        libc::F_GETOWN | libc::F_SETOWN | 10 /* F_SETSIG */ | 11 /* F_GETSIG */ => Ok(0),
        libc::F_ADD_SEALS | libc::F_GET_SEALS => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_flock(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    crate::vfs::lock::flock(k, tid, &f, a[1] as i32)
}
