//! epoll: interest lists over open files, level- and edge-triggered.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Weak;

use super::file::{File, FileOps, POLLERR, POLLHUP, POLLIN};
use crate::errno::SysResult;
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub const EPOLLET: u32 = 1 << 31;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;

/// The poll bits an interest of `events` (epoll_ctl's) is told of: its
/// own, and errors and hangups always (ep_insert adds them).
fn watched(events: u32) -> u32 {
    (events & 0xffff) | POLLERR | POLLHUP
}

pub struct Interest {
    pub fd: i32,
    pub file: Weak<File>,
    pub events: u32,
    pub data: u64,
    /// Edge-triggered: readiness already reported (or found by the add)
    /// with no event of the file since.
    pub reported: Cell<u32>,
    /// One-shot that fired: disabled until EPOLL_CTL_MOD.
    pub disabled: Cell<bool>,
    /// The file's event counter when last collected, added or modified
    /// (edge-triggered).
    pub seen_seq: Cell<u64>,
    /// Edge-triggered: looked at since the add or the last modify (the
    /// readiness the add found is reported by the first look).
    pub looked: Cell<bool>,
}

impl Interest {
    /// A new interest in `file` (EPOLL_CTL_ADD). Events the file had
    /// before count as none: Linux's add looks at the readiness then
    /// (reported by the first wait), and queues an edge only for what
    /// happens after.
    pub fn new(fd: i32, file: &std::rc::Rc<File>, events: u32, data: u64) -> Interest {
        Interest {
            fd,
            file: std::rc::Rc::downgrade(file),
            events,
            data,
            reported: Cell::new(0),
            disabled: Cell::new(false),
            seen_seq: Cell::new(file.ops.event_seq(watched(events))),
            looked: Cell::new(false),
        }
    }

    /// The poll bits this interest is told of.
    fn want(&self) -> u32 {
        watched(self.events)
    }

    /// EPOLL_CTL_MOD: as a new add with the file's present readiness.
    pub fn rearm(&mut self, file: &File, events: u32, data: u64) {
        self.events = events;
        self.data = data;
        self.reported.set(0);
        self.disabled.set(false);
        self.seen_seq.set(file.ops.event_seq(watched(events)));
        self.looked.set(false);
    }

    /// Edge-triggered: whether there is an edge to report: the file had
    /// an event of a watched kind since the last look (more data on a
    /// still-readable socket is a new edge, as in Linux; room freed is
    /// none for a reader), or has ready bits not reported yet (the
    /// readiness the add found; files that count no events).
    fn has_edge(&self, ready: u32, seq: u64) -> bool {
        ready != 0 && (seq != self.seen_seq.get() || ready & !self.reported.get() != 0)
    }
}

#[derive(Default)]
pub struct Epoll {
    pub interests: RefCell<Vec<Interest>>,
    /// Waiters in epoll_wait (or polling the epoll file): an interest
    /// added or changed may be ready at once.
    pub waiters: WaitQueue,
    ino: u64,
}

impl Epoll {
    pub fn new() -> Epoll {
        Epoll {
            interests: RefCell::new(Vec::new()),
            waiters: WaitQueue::new(),
            ino: super::new_ino(),
        }
    }

    /// Ready events, up to `max`, updating edge and one-shot state.
    pub fn collect(&self, k: &Kernel, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        if self.has_edge_triggered() {
            // Host descriptors' events wait in the host's epoll until read:
            // counted now, an event that already happened is not taken for
            // a new one at the next wait (Linux's callbacks are immediate).
            k.poller.sync();
        }
        let mut list = self.interests.borrow_mut();
        list.retain(|i| i.file.strong_count() > 0);
        for i in list.iter() {
            if out.len() >= max {
                break;
            }
            if i.disabled.get() {
                continue;
            }
            let Some(f) = i.file.upgrade() else {
                continue;
            };
            let want = i.want();
            if i.events & EPOLLET != 0
                && i.looked.get()
                && f.ops.events_counted()
                && f.ops.event_seq(want) == i.seen_seq.get()
            {
                // No event since the last look, and the file has no rise
                // of readiness without one: no edge. What it reported then
                // stays its `reported` (a readiness that fell since only
                // makes that a superset, which hides no later edge: those
                // come with events).
                continue;
            }
            let ready = f.poll(k) & want;
            if i.events & EPOLLET != 0 {
                i.looked.set(true);
                let mut seq = f.ops.event_seq(want);
                if seq == i.seen_seq.get() && ready & !i.reported.get() != 0 {
                    // Readiness came with no event counted yet: the host's
                    // report of it (data arriving since the sync above) is
                    // taken now, as part of this edge, not as a new one at
                    // the next wait. An edge is reported, so the wait
                    // returns: reports handed to files looked at before
                    // are seen by the next one.
                    k.poller.sync();
                    seq = f.ops.event_seq(want);
                }
                let edge = i.has_edge(ready, seq);
                i.reported.set(ready);
                i.seen_seq.set(seq);
                if !edge {
                    continue;
                }
                // The whole readiness, as Linux's re-poll of a queued item.
                out.push((ready, i.data));
            } else if ready != 0 {
                out.push((ready, i.data));
            } else {
                continue;
            }
            if i.events & EPOLLONESHOT != 0 {
                i.disabled.set(true);
            }
        }
        out
    }

    /// Readiness without consuming edges (poll of an epoll fd, also from
    /// an epoll it is nested in).
    fn any_ready(&self, k: &Kernel) -> bool {
        if self.has_edge_triggered() {
            // As collect: host descriptors' events that already happened
            // are counted before edges are looked for, so a poller sees
            // what the epoll_wait would report.
            k.poller.sync();
        }
        self.interests.borrow().iter().any(|i| {
            !i.disabled.get()
                && i.file.upgrade().is_some_and(|f| {
                    let ready = f.poll(k) & i.want();
                    if i.events & EPOLLET != 0 {
                        i.has_edge(ready, f.ops.event_seq(i.want()))
                    } else {
                        ready != 0
                    }
                })
        })
    }

    fn has_edge_triggered(&self) -> bool {
        self.interests
            .borrow()
            .iter()
            .any(|i| i.events & EPOLLET != 0)
    }

    pub fn register_waits(&self, k: &Kernel, tid: Tid) {
        self.waiters.add(tid, !0);
        for i in self.interests.borrow().iter() {
            if let Some(f) = i.file.upgrade() {
                // Edge interests must see the transition, so wait for any change.
                let ev = if i.events & EPOLLET != 0 {
                    !0
                } else {
                    super::file::wait_mask(i.events & 0xffff)
                };
                f.ops.wait(k, tid, ev);
            }
        }
    }
}

/// How deep epoll files may nest in each other (Linux's EP_MAX_NESTS).
const EP_MAX_NESTS: usize = 4;

impl Epoll {
    /// Whether watching `to` from this epoll would make a cycle or nest
    /// epolls deeper than Linux allows (ep_loop_check: ELOOP).
    pub fn would_loop(&self, to: &File) -> bool {
        match to.ops.as_any().downcast_ref::<Epoll>() {
            Some(e) => self.reaches_or_deep(e, 1),
            None => false,
        }
    }

    /// `e` at nesting `level` below self: true if it is self, contains
    /// self, or has epolls nested past EP_MAX_NESTS.
    fn reaches_or_deep(&self, e: &Epoll, level: usize) -> bool {
        if std::ptr::eq(self, e) || level > EP_MAX_NESTS {
            return true;
        }
        e.interests.borrow().iter().any(|i| {
            i.file.upgrade().is_some_and(|f| {
                f.ops
                    .as_any()
                    .downcast_ref::<Epoll>()
                    .is_some_and(|inner| self.reaches_or_deep(inner, level + 1))
            })
        })
    }
}

impl FileOps for Epoll {
    fn poll(&self, k: &Kernel) -> u32 {
        if self.any_ready(k) { POLLIN } else { 0 }
    }
    fn wait(&self, k: &Kernel, tid: Tid, _events: u32) -> bool {
        self.register_waits(k, tid);
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.waiters.remove(tid);
    }
    /// An epoll's events are its interests' (Linux's ep_poll_callback
    /// wakes the epoll's own pollers on every event of a watched file),
    /// and its changes (epoll_ctl): an edge-triggered epoll watching this
    /// one sees an edge for each.
    fn event_seq(&self, mask: u32) -> u64 {
        let mut seq = self.waiters.seq(mask);
        if mask & POLLIN != 0 {
            for i in self.interests.borrow().iter() {
                if let Some(f) = i.file.upgrade().filter(|_| !i.disabled.get()) {
                    seq = seq.wrapping_add(f.ops.event_seq(i.want()));
                }
            }
        }
        seq
    }
    fn anon_name(&self) -> Option<String> {
        Some("anon_inode:[eventpoll]".into())
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(0, self.ino, libc::S_IFREG | 0o600, 1))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
