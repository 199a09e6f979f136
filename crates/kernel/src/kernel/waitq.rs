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

/// The kinds of event counted apart, as poll bits: a notify counts once
/// in each kind it has a bit of; a look at a mask sums the kinds it has a
/// bit of. The normal-data bits go with their plain ones (Linux wakes with
/// both, and interests may name either).
const KINDS: [u32; 7] = [
    (libc::POLLIN | libc::POLLRDNORM | libc::POLLRDBAND) as u32,
    libc::POLLPRI as u32,
    (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) as u32,
    libc::POLLERR as u32,
    libc::POLLHUP as u32,
    0x2000, // POLLRDHUP
    0x400,  // POLLMSG
];

/// The waiters of one event source, each with the events it waits for.
#[derive(Default)]
pub struct WaitQueue {
    waiters: RefCell<Vec<(Tid, u32)>>,
    /// Notifies so far, one counter per kind of event ([`KINDS`]):
    /// edge-triggered epoll reports a file again after a new event of a
    /// kind it watches, even if it never saw it become unready (Linux's ET
    /// fires per wakeup, not per level transition), and not after one of
    /// another kind (ep_poll_callback drops a wakeup whose key has none of
    /// the item's events: room freed is no edge for a reader).
    seqs: [Cell<u64>; KINDS.len()],
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

    /// How many notifies this queue has had of events in `mask` (a
    /// notify of several kinds counts for each: only changes matter).
    pub fn seq(&self, mask: u32) -> u64 {
        KINDS
            .iter()
            .zip(&self.seqs)
            .filter(|(kind, _)| *kind & mask != 0)
            .fold(0u64, |acc, (_, c)| acc.wrapping_add(c.get()))
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
        for (kind, c) in KINDS.iter().zip(&self.seqs) {
            if kind & events != 0 {
                c.set(c.get().wrapping_add(1));
            }
        }
        for (w, want) in self.fasync.borrow().iter() {
            if want & events != 0 {
                ASYNC.with(|a| a.borrow_mut().push((w.clone(), events & want)));
            }
        }
        self.wake_waiters(events);
    }

    /// Wakes every waiter interested in any of `events` without counting
    /// an event: something changed that no edge-triggered watcher is told
    /// of (Linux has no wakeup there), but a waiter may look again.
    pub fn wake_waiters(&self, events: u32) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const IN: u32 = libc::POLLIN as u32;
    const OUT: u32 = libc::POLLOUT as u32;
    const HUP: u32 = libc::POLLHUP as u32;

    #[test]
    fn counts_events_by_kind() {
        let q = WaitQueue::new();
        let reader = q.seq(IN | HUP);
        q.notify(OUT);
        assert_eq!(q.seq(IN | HUP), reader, "room freed is no reader's event");
        q.notify(libc::POLLRDNORM as u32);
        assert_ne!(q.seq(IN), reader, "normal data is data");
        let writer = q.seq(libc::POLLWRNORM as u32);
        q.notify_all();
        assert_ne!(q.seq(libc::POLLWRNORM as u32), writer);
    }

    #[test]
    fn wake_without_an_event_counts_none() {
        let q = WaitQueue::new();
        q.add(7, OUT);
        let before = q.seq(!0);
        q.wake_waiters(OUT);
        assert_eq!(q.seq(!0), before);
        assert!(q.is_empty());
        assert_eq!(take_woken(), vec![7]);
    }
}
