//! ioctl: the generic requests; the rest go to the file.

use super::get_file;
use crate::errno::SysResult;
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![(
        "ioctl",
        sys_ioctl,
        Partial,
        "terminal, FIONREAD, FIONBIO, FIOASYNC, FIOCLEX, TIOCOUTQ; SIOCGIF* (conf, index, name, addr, netmask, brdaddr, flags, mtu, hwaddr, txqlen) on any socket with --network sandbox, from its stack (SIOCS* refused); on host sockets passed to the host",
    )]
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
        x if x == libc::FIOASYNC => {
            let on: i32 = k.task_mm(tid).borrow().read_val(a[2])?;
            super::fcntl::set_async(&f, fd, on != 0);
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
