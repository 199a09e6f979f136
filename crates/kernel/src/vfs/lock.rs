//! File locks: flock(2) locks (per open file description) and POSIX
//! record locks (fcntl F_SETLK: per process; F_OFD_SETLK: per open file
//! description). Locks are the sandbox's own: they coordinate the
//! workload's processes, not processes outside the sandbox.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::file::File;
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

type InodeId = (u64, u64);

/// Who holds a lock: a process (POSIX) or an open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    Process(i32),
    File(usize),
}

#[derive(Clone, Copy, Debug)]
struct Range {
    owner: Owner,
    start: u64,
    /// Exclusive end; u64::MAX for "to end of file".
    end: u64,
    write: bool,
    pid: i32,
}

#[derive(Default)]
struct InodeLocks {
    flock_shared: Vec<usize>,
    flock_excl: Option<usize>,
    ranges: Vec<Range>,
    waiters: Rc<WaitQueue>,
}

thread_local! {
    static LOCKS: RefCell<HashMap<InodeId, InodeLocks>> = RefCell::new(HashMap::new());
}

fn file_id(f: &File) -> usize {
    f as *const File as usize
}

/// What locks are keyed by: the file's inode, or for files without a
/// path (pipes, sockets) the object behind them, which every descriptor
/// and every process sharing it sees.
pub fn lock_id(f: &File) -> InodeId {
    match &f.dentry {
        Some(d) => d.inode.id(),
        None => (u64::MAX, Rc::as_ptr(&f.ops) as *const () as usize as u64),
    }
}

fn inode_of(f: &File) -> SysResult<InodeId> {
    Ok(lock_id(f))
}

pub fn flock(k: &mut Kernel, tid: Tid, f: &Rc<File>, op: i32) -> SysResult<u64> {
    let id = inode_of(f)?;
    let me = file_id(f);
    let nb = op & libc::LOCK_NB != 0;
    let op = op & !libc::LOCK_NB;
    LOCKS
        .with(|l| {
            let mut l = l.borrow_mut();
            let e = l.entry(id).or_default();
            e.flock_shared.retain(|x| *x != me);
            if e.flock_excl == Some(me) {
                e.flock_excl = None;
            }
            match op {
                libc::LOCK_UN => {
                    e.waiters.notify_all();
                    Ok(0)
                }
                libc::LOCK_SH => {
                    if e.flock_excl.is_some() {
                        return block(e, tid, nb);
                    }
                    e.flock_shared.push(me);
                    Ok(0)
                }
                libc::LOCK_EX => {
                    if e.flock_excl.is_some() || !e.flock_shared.is_empty() {
                        return block(e, tid, nb);
                    }
                    e.flock_excl = Some(me);
                    Ok(0)
                }
                _ => Err(Errno::EINVAL),
            }
        })
        .inspect(|_| {
            let _ = k;
        })
}

fn block(e: &mut InodeLocks, tid: Tid, nb: bool) -> SysResult<u64> {
    if nb {
        return Err(Errno::EAGAIN);
    }
    e.waiters.add(tid, !0);
    Err(Errno::EBLOCK)
}

/// struct flock (x86_64).
#[repr(C)]
#[derive(Clone, Copy)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
}
unsafe impl crate::mm::usercopy::Pod for Flock {}

pub fn fcntl_lock(k: &mut Kernel, tid: Tid, f: &Rc<File>, cmd: i32, arg: u64) -> SysResult<u64> {
    let id = inode_of(f)?;
    let mm = k.task_mm(tid);
    let fl: Flock = mm.borrow().read_val(arg)?;
    let tgid = k.task(tid).tgid;
    let ofd = matches!(
        cmd,
        libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW
    );
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let owner = if ofd {
        Owner::File(file_id(f))
    } else {
        Owner::Process(tgid)
    };
    let base: i64 = match fl.l_whence as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => f.pos.get() as i64,
        libc::SEEK_END => f
            .ops
            .size(k)
            .map(|s| s as i64)
            .or_else(|| f.stat(k).ok().map(|s| s.st_size))
            .unwrap_or(0),
        _ => return Err(Errno::EINVAL),
    };
    let mut start = base.checked_add(fl.l_start).ok_or(Errno::EOVERFLOW)?;
    let mut len = fl.l_len;
    if len < 0 {
        // Linux: a range reaching below 0 is EINVAL (this also rules out
        // negating i64::MIN).
        start = start
            .checked_add(len)
            .filter(|s| *s >= 0)
            .ok_or(Errno::EINVAL)?;
        len = -len;
    }
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let start = start as u64;
    let end = if len == 0 {
        u64::MAX
    } else {
        start.saturating_add(len as u64)
    };
    let write = fl.l_type as i32 == libc::F_WRLCK;
    if write && !f.writable() && fl.l_type as i32 != libc::F_UNLCK {
        return Err(Errno::EBADF);
    }
    if fl.l_type as i32 == libc::F_RDLCK && !f.readable() {
        return Err(Errno::EBADF);
    }
    let conflict = |e: &InodeLocks| -> Option<Range> {
        e.ranges
            .iter()
            .find(|r| r.owner != owner && r.start < end && start < r.end && (write || r.write))
            .copied()
    };
    LOCKS.with(|l| {
        let mut l = l.borrow_mut();
        let e = l.entry(id).or_default();
        match cmd {
            libc::F_GETLK | libc::F_OFD_GETLK => {
                let mut out = fl;
                match conflict(e) {
                    Some(r) => {
                        out.l_type = if r.write {
                            libc::F_WRLCK
                        } else {
                            libc::F_RDLCK
                        } as i16;
                        out.l_whence = libc::SEEK_SET as i16;
                        out.l_start = r.start as i64;
                        out.l_len = if r.end == u64::MAX {
                            0
                        } else {
                            (r.end - r.start) as i64
                        };
                        out.l_pid = if matches!(r.owner, Owner::File(_)) {
                            -1
                        } else {
                            r.pid
                        };
                    }
                    None => out.l_type = libc::F_UNLCK as i16,
                }
                mm.borrow().write_val(arg, &out)?;
                Ok(0)
            }
            _ => {
                let unlock = fl.l_type as i32 == libc::F_UNLCK;
                if !unlock && conflict(e).is_some() {
                    let wait = matches!(cmd, libc::F_SETLKW | libc::F_OFD_SETLKW);
                    if !wait {
                        return Err(Errno::EAGAIN);
                    }
                    e.waiters.add(tid, !0);
                    return Err(Errno::EBLOCK);
                }
                // Cut [start, end) out of our own locks, then add the new one.
                let mut kept = Vec::new();
                for r in e.ranges.drain(..) {
                    if r.owner != owner || r.end <= start || end <= r.start {
                        kept.push(r);
                        continue;
                    }
                    if r.start < start {
                        kept.push(Range { end: start, ..r });
                    }
                    if r.end > end {
                        kept.push(Range { start: end, ..r });
                    }
                }
                if !unlock {
                    kept.push(Range {
                        owner,
                        start,
                        end,
                        write,
                        pid: tgid,
                    });
                }
                e.ranges = kept;
                e.waiters.notify_all();
                Ok(0)
            }
        }
    })
}

/// Drops every lock held through `f` (its last descriptor closed).
pub fn release_file(f: &File) {
    let id = lock_id(f);
    let me = file_id(f);
    // A file dropped while the kernel's thread is being torn down finds
    // the lock table gone: there is nothing left to release then.
    let _ = LOCKS.try_with(|l| {
        if let Some(e) = l.borrow_mut().get_mut(&id) {
            e.flock_shared.retain(|x| *x != me);
            if e.flock_excl == Some(me) {
                e.flock_excl = None;
            }
            e.ranges.retain(|r| r.owner != Owner::File(me));
            e.waiters.notify_all();
        }
    });
}

/// POSIX semantics: closing any descriptor of a file drops the process's
/// record locks on it; so does exiting.
pub fn release_process(tgid: i32, inode: Option<InodeId>) {
    let _ = LOCKS.try_with(|l| {
        let mut l = l.borrow_mut();
        for (id, e) in l.iter_mut() {
            if inode.is_some_and(|i| i != *id) {
                continue;
            }
            let before = e.ranges.len();
            e.ranges.retain(|r| r.owner != Owner::Process(tgid));
            if e.ranges.len() != before {
                e.waiters.notify_all();
            }
        }
    });
}
