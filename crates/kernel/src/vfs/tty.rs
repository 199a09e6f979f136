//! Terminal ioctls on the container's console (a host pty slave that
//! libcontainer set up): the termios and window-size requests go to the
//! host terminal; process-group requests are answered from the sandbox's
//! own (virtual) sessions.

use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

fn host_ioctl<T>(fd: i32, cmd: u64, v: *mut T) -> SysResult<()> {
    // SAFETY: the request's argument points at a T.
    if unsafe { libc::ioctl(fd, cmd as _, v) } < 0 {
        return Err(Errno::from_io(&std::io::Error::last_os_error()));
    }
    Ok(())
}

pub fn host_tty_ioctl(k: &mut Kernel, tid: Tid, fd: i32, cmd: u64, arg: u64) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    match cmd {
        // The kernel's struct termios, smaller than the C library's.
        libc::TCGETS => {
            let mut t = crate::vfs::ldisc::KTermios::standard();
            host_ioctl(fd, cmd, &mut t)?;
            mm.write_val(arg, &t)?;
            Ok(0)
        }
        libc::TCSETS | libc::TCSETSW | libc::TCSETSF => {
            let mut t: crate::vfs::ldisc::KTermios = mm.read_val(arg)?;
            host_ioctl(fd, cmd, &mut t)?;
            Ok(0)
        }
        libc::TIOCGWINSZ => {
            let mut w: libc::winsize = unsafe { std::mem::zeroed() };
            host_ioctl(fd, cmd, &mut w)?;
            mm.write_val(arg, &w)?;
            Ok(0)
        }
        libc::TIOCSWINSZ => {
            let mut w: libc::winsize = mm.read_val(arg)?;
            host_ioctl(fd, cmd, &mut w)?;
            Ok(0)
        }
        libc::FIONREAD | libc::TIOCOUTQ => {
            let mut n: libc::c_int = 0;
            host_ioctl(fd, cmd, &mut n)?;
            mm.write_val(arg, &n)?;
            Ok(0)
        }
        libc::TCFLSH | libc::TCXONC | libc::TCSBRK => {
            // Integer argument.
            if unsafe { libc::ioctl(fd, cmd as _, arg as libc::c_ulong) } < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            Ok(0)
        }
        libc::TIOCGPGRP => {
            let pg = k.tty_pgrp.get();
            mm.write_val(arg, &pg)?;
            Ok(0)
        }
        libc::TIOCSPGRP => {
            let pg: i32 = mm.read_val(arg)?;
            k.tty_pgrp.set(pg);
            Ok(0)
        }
        libc::TIOCGSID => {
            mm.write_val(arg, &1i32)?;
            Ok(0)
        }
        libc::TIOCSCTTY | libc::TIOCNOTTY => Ok(0),
        _ => Err(Errno::ENOTTY),
    }
}
