//! Wait queues: how a task sleeps in a syscall and is woken.
//!
//! A blocking syscall registers its task on the queues of what it waits
//! for and returns [`Errno::EBLOCK`]; a notify moves the waiters to the
//! kernel's wake list and the kernel re-runs their syscall. Re-running
//! (instead of resuming a saved continuation) keeps handlers simple: they
//! are written as "try; if not ready, wait and try again".

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::Tid;
use crate::vfs::File;

thread_local! {
    /// Tasks to re-run, filled by notifies, drained by the kernel loop.
    static WAKE: RefCell<Vec<Tid>> = const { RefCell::new(Vec::new()) };
    /// Files with O_ASYNC that had an event: (file, events), drained by
    /// the kernel, which sends their owners' signals.
    static ASYNC: RefCell<Vec<(Weak<File>, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Takes the signal-driven I/O events since the last call.
pub fn take_async() -> Vec<(Weak<File>, u32)> {
    ASYNC.with(|a| std::mem::take(&mut *a.borrow_mut()))
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
    /// Files with O_ASYNC interested in these events (Linux's fasync list).
    fasync: RefCell<Vec<(Weak<File>, u32)>>,
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

    /// Signal-driven I/O: `f` gets a signal on `events` here (again
    /// registering just updates the interest).
    pub fn add_fasync(&self, f: &Rc<File>, events: u32) {
        let mut l = self.fasync.borrow_mut();
        l.retain(|(w, _)| w.strong_count() > 0);
        match l.iter_mut().find(|(w, _)| w.as_ptr() == Rc::as_ptr(f)) {
            Some(e) => e.1 = events,
            None => l.push((Rc::downgrade(f), events)),
        }
    }

    pub fn remove_fasync(&self, f: &Rc<File>) {
        self.fasync
            .borrow_mut()
            .retain(|(w, _)| w.strong_count() > 0 && w.as_ptr() != Rc::as_ptr(f));
    }

    /// Wakes every waiter interested in any of `events`.
    pub fn notify(&self, events: u32) {
        self.seq.set(self.seq.get().wrapping_add(1));
        for (w, want) in self.fasync.borrow().iter() {
            if want & events != 0 {
                ASYNC.with(|a| a.borrow_mut().push((w.clone(), events & want)));
            }
        }
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
