//! eventfd and signalfd.

use std::any::Any;
use std::cell::Cell;

use super::file::{File, FileOps, POLLIN, POLLOUT};
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigSet;
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub struct EventFd {
    pub count: Cell<u64>,
    pub semaphore: bool,
    wq: WaitQueue,
    ino: u64,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> EventFd {
        EventFd {
            count: Cell::new(init),
            semaphore,
            wq: WaitQueue::new(),
            ino: super::new_ino(),
        }
    }
}

impl FileOps for EventFd {
    fn plain_poll(&self) -> bool {
        true
    }
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        if dst.len < 8 {
            return Err(Errno::EINVAL);
        }
        let c = self.count.get();
        if c == 0 {
            return Err(Errno::EAGAIN);
        }
        let v = if self.semaphore { 1 } else { c };
        self.count.set(c - v);
        self.wq.notify(POLLOUT);
        Ok(dst.copy_in(0, &v.to_ne_bytes()))
    }
    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        if src.len < 8 {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 8];
        src.copy_out(0, &mut b);
        let v = u64::from_ne_bytes(b);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let c = self.count.get();
        if c.checked_add(v).is_none_or(|s| s == u64::MAX) {
            return Err(Errno::EAGAIN);
        }
        self.count.set(c + v);
        // Every write is an event (edge-triggered epoll counts them).
        self.wq.notify(POLLIN);
        Ok(8)
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        let c = self.count.get();
        let mut r = 0;
        if c > 0 {
            r |= POLLIN;
        }
        if c < u64::MAX - 1 {
            r |= POLLOUT;
        }
        r
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events);
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.wq.seq(mask)
    }
    fn anon_name(&self) -> Option<String> {
        Some("anon_inode:[eventfd]".into())
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(0, self.ino, libc::S_IFREG | 0o600, 1))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

thread_local! {
    /// Tasks waiting on any signalfd: every new signal wakes them to re-check.
    pub static SIGNALFD_WAITERS: WaitQueue = WaitQueue::new();
}

/// A signal was queued somewhere: signalfd readers re-check.
pub fn signal_queued() {
    SIGNALFD_WAITERS.with(|w| w.notify_all());
}

pub struct SignalFd {
    pub mask: Cell<SigSet>,
    ino: u64,
}

impl SignalFd {
    pub fn new(mask: SigSet) -> SignalFd {
        SignalFd {
            mask: Cell::new(mask),
            ino: super::new_ino(),
        }
    }

    fn has_pending(&self, k: &Kernel) -> bool {
        let tid = k.current.get();
        let Some(t) = k.tasks.get(&tid) else {
            return false;
        };
        let m = self.mask.get().0;
        let shared = k
            .groups
            .get(&t.tgid)
            .map(|g| g.shared_pending.set.0)
            .unwrap_or(0);
        (t.pending.set.0 | shared) & m != 0
    }
}

impl FileOps for SignalFd {
    fn plain_poll(&self) -> bool {
        true
    }
    fn read(&self, _k: &Kernel, _f: &File, _dst: &IoVecs, _off: u64) -> SysResult<usize> {
        // Reading dequeues signals, which needs the kernel mutably: done by
        // the read syscall itself (see syscalls::poll::read_signalfd).
        Err(Errno::EINVAL)
    }
    fn poll(&self, k: &Kernel) -> u32 {
        if self.has_pending(k) { POLLIN } else { 0 }
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        SIGNALFD_WAITERS.with(|w| w.add(tid, events));
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        SIGNALFD_WAITERS.with(|w| w.remove(tid));
    }
    fn anon_name(&self) -> Option<String> {
        Some("anon_inode:[signalfd]".into())
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(0, self.ino, libc::S_IFREG | 0o600, 1))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
