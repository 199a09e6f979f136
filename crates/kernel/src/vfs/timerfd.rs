//! timerfd: a file that becomes readable when a timer expires.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::file::{File, FileOps, POLLIN};
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::timer::TimerAction;
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub struct TimerFd {
    pub id: u64,
    pub clock: i32,
    pub expirations: Cell<u64>,
    pub interval: Cell<Duration>,
    pub wq: WaitQueue,
}

thread_local! {
    static TIMERFDS: RefCell<HashMap<u64, Weak<TimerFd>>> = RefCell::new(HashMap::new());
    static NEXT: Cell<u64> = const { Cell::new(1) };
}

impl TimerFd {
    pub fn new(clock: i32) -> Rc<TimerFd> {
        let id = NEXT.with(|n| {
            let v = n.get();
            n.set(v + 1);
            v
        });
        let t = Rc::new(TimerFd {
            id,
            clock,
            expirations: Cell::new(0),
            interval: Cell::new(Duration::ZERO),
            wq: WaitQueue::new(),
        });
        TIMERFDS.with(|m| m.borrow_mut().insert(id, Rc::downgrade(&t)));
        t
    }

    /// Arms (or disarms with `value` zero) the timer.
    pub fn set(&self, k: &mut Kernel, value: Duration, interval: Duration) {
        self.expirations.set(0);
        self.interval.set(interval);
        if value.is_zero() {
            k.timers.cancel(&TimerAction::TimerFd(self.id));
        } else {
            k.timers.arm(
                crate::kernel::timer::after(value),
                TimerAction::TimerFd(self.id),
            );
        }
    }

    /// Time left until the next expiry.
    pub fn remaining(&self, k: &Kernel) -> Duration {
        k.timers
            .deadline(&TimerAction::TimerFd(self.id))
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }
}

/// The kernel's timer queue says timerfd `id` expired.
/// The timerfd `id`, due at `due`, expired: a periodic one goes on from
/// then and counts the periods it missed as expirations too (Linux's
/// timerfd_tmrproc with hrtimer_forward).
pub fn fired(k: &mut Kernel, id: u64, due: std::time::Instant) {
    let Some(t) = TIMERFDS.with(|m| m.borrow().get(&id).and_then(|w| w.upgrade())) else {
        TIMERFDS.with(|m| m.borrow_mut().remove(&id));
        return;
    };
    t.expirations.set(t.expirations.get() + 1);
    let iv = t.interval.get();
    if !iv.is_zero() {
        let (next, missed) = crate::kernel::timer::forward(due, iv, std::time::Instant::now());
        t.expirations
            .set(t.expirations.get().saturating_add(missed));
        k.timers.arm(next, TimerAction::TimerFd(id));
    }
    t.wq.notify(POLLIN);
}

impl FileOps for TimerFd {
    fn plain_poll(&self) -> bool {
        true
    }
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        if dst.len < 8 {
            return Err(Errno::EINVAL);
        }
        let n = self.expirations.get();
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        self.expirations.set(0);
        Ok(dst.copy_in(0, &n.to_ne_bytes()))
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        if self.expirations.get() > 0 {
            POLLIN
        } else {
            0
        }
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
        Some("anon_inode:[timerfd]".into())
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(0, self.id, libc::S_IFREG | 0o600, 1))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
