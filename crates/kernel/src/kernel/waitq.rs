//! Wait queues: how a task sleeps in a syscall and is woken.
//!
//! A blocking syscall registers its task on the queues of what it waits
//! for and returns [`Errno::EBLOCK`]; a notify moves the waiters to the
//! kernel's wake list and the kernel re-runs their syscall. Re-running
//! (instead of resuming a saved continuation) keeps handlers simple: they
//! are written as "try; if not ready, wait and try again".

use std::cell::{Cell, RefCell};

use super::Tid;

thread_local! {
    /// Tasks to re-run, filled by notifies, drained by the kernel loop.
    static WAKE: RefCell<Vec<Tid>> = const { RefCell::new(Vec::new()) };
}

/// Takes the tasks woken since the last call.
pub fn take_woken() -> Vec<Tid> {
    WAKE.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

/// Wakes one task directly (timers, signals).
pub fn wake(tid: Tid) {
    WAKE.with(|w| w.borrow_mut().push(tid));
}

pub fn has_woken() -> bool {
    WAKE.with(|w| !w.borrow().is_empty())
}

/// The waiters of one event source, each with the events it waits for.
#[derive(Default)]
pub struct WaitQueue {
    waiters: RefCell<Vec<(Tid, u32)>>,
    /// Notifies so far: edge-triggered epoll reports a file again after a
    /// new event even if it never saw it become unready (Linux's ET fires
    /// per arrival, not per level transition).
    seq: Cell<u64>,
}

impl WaitQueue {
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// Registers `tid` for `events` (poll bits; !0 for anything).
    pub fn add(&self, tid: Tid, events: u32) {
        let mut w = self.waiters.borrow_mut();
        if let Some(e) = w.iter_mut().find(|(t, _)| *t == tid) {
            e.1 |= events;
        } else {
            w.push((tid, events));
        }
    }

    pub fn remove(&self, tid: Tid) {
        self.waiters.borrow_mut().retain(|(t, _)| *t != tid);
    }

    /// How many notifies this queue has had.
    pub fn seq(&self) -> u64 {
        self.seq.get()
    }

    /// Wakes every waiter interested in any of `events`.
    pub fn notify(&self, events: u32) {
        self.seq.set(self.seq.get().wrapping_add(1));
        let mut w = self.waiters.borrow_mut();
        w.retain(|(t, want)| {
            if want & events != 0 {
                wake(*t);
                false
            } else {
                true
            }
        });
    }

    pub fn notify_all(&self) {
        self.notify(!0);
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }
}
