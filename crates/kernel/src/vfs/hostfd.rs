//! Files backed by host descriptors that can block: the container's stdio
//! (pipes, FIFOs, or the console pty from libcontainer). Readiness comes
//! from the kernel's epoll; a task that would block waits on the file's
//! queue.

use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::file::{File, FileOps, POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub struct HostStream {
    pub fd: OwnedFd,
    pub wq: Rc<WaitQueue>,
    /// Terminals are never switched to O_NONBLOCK (the terminal may be
    /// shared with whoever started atoll); they are read only as far as
    /// FIONREAD says and written after POLLOUT in small pieces.
    pub tty: bool,
    registered: std::cell::Cell<bool>,
}

fn poll1(fd: i32, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents
}

fn last_errno() -> Errno {
    Errno::from_io(&std::io::Error::last_os_error())
}

impl HostStream {
    pub fn new(fd: OwnedFd) -> HostStream {
        // SAFETY: isatty/fcntl on a descriptor we own.
        let tty = unsafe { libc::isatty(fd.as_raw_fd()) } == 1;
        if !tty {
            unsafe {
                let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        HostStream {
            fd,
            wq: Rc::new(WaitQueue::new()),
            tty,
            registered: std::cell::Cell::new(false),
        }
    }
}

impl FileOps for HostStream {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        let fd = self.fd.as_raw_fd();
        let mut iovs = dst;
        let limited;
        if self.tty {
            let r = poll1(fd, libc::POLLIN);
            if r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
                return Err(Errno::EAGAIN);
            }
            let mut avail: libc::c_int = 0;
            // SAFETY: FIONREAD writes an int.
            unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) };
            if avail > 0 && (avail as usize) < dst.len {
                limited = dst.truncated(avail as usize);
                iovs = &limited;
            }
        }
        // SAFETY: iovecs are valid for writing.
        let n = unsafe { libc::readv(fd, iovs.iovs.as_ptr(), iovs.iovs.len() as i32) };
        if n < 0 {
            let e = last_errno();
            // A hung-up terminal reads as end of file.
            return if e == Errno::EIO && self.tty {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }

    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        let fd = self.fd.as_raw_fd();
        if self.tty && poll1(fd, libc::POLLOUT) & libc::POLLOUT == 0 {
            return Err(Errno::EAGAIN);
        }
        // SAFETY: iovecs are valid for reading.
        let n = unsafe { libc::writev(fd, src.iovs.as_ptr(), src.iovs.len() as i32) };
        if n < 0 {
            return Err(last_errno());
        }
        Ok(n as usize)
    }

    fn poll(&self, _k: &Kernel) -> u32 {
        let r = poll1(self.fd.as_raw_fd(), libc::POLLIN | libc::POLLOUT) as u32;
        r & (POLLIN | POLLOUT | POLLHUP | POLLERR)
    }

    fn wait(&self, k: &Kernel, tid: Tid, events: u32) -> bool {
        if !self.registered.get() {
            k.poller.register(self.fd.as_raw_fd(), &self.wq);
            self.registered.set(true);
        }
        self.wq.add(tid, events | POLLHUP | POLLERR);
        true
    }

    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }

    /// The host's wakeups of the descriptor, counted from the first look
    /// on (an edge-triggered epoll's add): the host's report of its
    /// readiness then is taken at once, not as a later event.
    fn event_seq(&self, mask: u32) -> u64 {
        if !self.registered.get() {
            crate::kernel::poller::watch_fd(self.fd.as_raw_fd(), &self.wq);
            self.registered.set(true);
        }
        self.wq.seq(mask)
    }

    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        if !self.tty {
            return Err(Errno::ENOTTY);
        }
        crate::vfs::tty::host_tty_ioctl(k, tid, self.fd.as_raw_fd(), cmd, arg)
    }

    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } < 0 {
            return Err(last_errno());
        }
        Ok(st)
    }

    fn anon_name(&self) -> Option<String> {
        if self.tty {
            return Some("/dev/console".into());
        }
        let st = self.stat_raw();
        Some(match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO => format!("pipe:[{}]", st.st_ino),
            libc::S_IFSOCK => format!("socket:[{}]", st.st_ino),
            // A host file given as stdio: its host path is not the sandbox's business.
            _ => format!("host:[{}]", st.st_ino),
        })
    }

    fn host_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl HostStream {
    fn stat_raw(&self) -> libc::stat {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) };
        st
    }
}

impl Drop for HostStream {
    fn drop(&mut self) {
        if self.registered.get() {
            crate::kernel::poller::unregister_fd(self.fd.as_raw_fd());
        }
    }
}
