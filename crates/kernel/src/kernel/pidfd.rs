//! Process file descriptors (pidfd_open, clone's CLONE_PIDFD): a file that
//! names one process for its whole life, even after its pid is reused,
//! and polls readable once the process has exited.

use std::any::Any;
use std::time::Instant;

use super::waitq::WaitQueue;
use super::{Kernel, Pid, Tid};
use crate::errno::{Errno, SysResult};
use crate::vfs::file::{File, FileOps, POLLHUP, POLLIN};

thread_local! {
    /// Pollers of any pidfd: every process death wakes them to look again.
    static WAITERS: WaitQueue = WaitQueue::new();
}

/// A process died: pidfd pollers look again.
pub fn process_exited() {
    WAITERS.with(|w| w.notify_all());
}

pub struct PidFd {
    pub pid: Pid,
    /// When the process started: the same pid later is another process.
    start: Instant,
    ino: u64,
}

/// What a pidfd's process has become.
#[derive(Debug, PartialEq, Eq)]
pub enum Life {
    Alive,
    /// Exited, not yet reaped.
    Zombie,
    Gone,
}

impl PidFd {
    /// A pidfd for process `pid` (a thread group leader), or ESRCH.
    pub fn new(k: &Kernel, pid: Pid) -> SysResult<PidFd> {
        let g = k.groups.get(&pid).ok_or(Errno::ESRCH)?;
        Ok(PidFd {
            pid,
            start: g.start,
            ino: crate::vfs::new_ino(),
        })
    }

    pub fn life(&self, k: &Kernel) -> Life {
        match k.groups.get(&self.pid) {
            Some(g) if g.start == self.start => {
                if g.is_zombie() {
                    Life::Zombie
                } else {
                    Life::Alive
                }
            }
            _ => Life::Gone,
        }
    }
}

impl FileOps for PidFd {
    fn poll(&self, k: &Kernel) -> u32 {
        match self.life(k) {
            Life::Alive => 0,
            Life::Zombie => POLLIN,
            Life::Gone => POLLIN | POLLHUP,
        }
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        WAITERS.with(|w| w.add(tid, events | POLLHUP));
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        WAITERS.with(|w| w.remove(tid));
    }
    fn read(
        &self,
        _k: &Kernel,
        _f: &File,
        _dst: &crate::vfs::IoVecs,
        _off: u64,
    ) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(crate::vfs::stat_of(0, self.ino, libc::S_IFREG | 0o600, 1))
    }
    fn anon_name(&self) -> Option<String> {
        Some("anon_inode:[pidfd]".into())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
