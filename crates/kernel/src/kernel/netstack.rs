//! The sandbox's own TCP/IP stack (`--network sandbox`), as the kernel
//! holds it: one atoll-netstack [`Stack`] for the whole sandbox and the
//! wait queue of each of its sockets. Socket files (`net::stack`) act on
//! it and then [`NetStack::pump`] it; the run loop pumps it again when its
//! timers are due and when a link's packet socket has frames. A pump
//! moves packets (loopback in memory, links through their AF_PACKET
//! sockets) and wakes the tasks waiting on the sockets whose readiness
//! changed.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::FromRawFd;
use std::rc::Rc;

use atoll_netstack::device::Frames;
use atoll_netstack::{Egress, NetConfig, SockId, Stack};

use super::packet_link::{HostLink, PacketFrames};
use super::waitq::WaitQueue;

pub struct NetStack {
    stack: RefCell<Stack>,
    /// The stack may have changed since its next deadline was last asked
    /// for (`poll_at`): a syscall or a pump borrowed it mutably. Asking
    /// costs a clock read, on every round of the kernel's loop otherwise.
    touched: Cell<bool>,
    queues: RefCell<HashMap<SockId, Rc<WaitQueue>>>,
    /// The links' packet sockets, watched by the kernel's poller.
    link_fds: Vec<i32>,
    /// Egress refusals so far: (protocol, destination, rule) → count.
    refusals: RefCell<BTreeMap<(String, String, String), u64>>,
    /// Port ids of the workload's netlink sockets (`net::netlink`).
    pub nl_ports: RefCell<HashSet<u32>>,
}

/// Distinct (protocol, destination, rule) kept; later ones are counted
/// under the destination `other`.
const MAX_REFUSALS: usize = 512;

impl Default for NetStack {
    fn default() -> Self {
        Self::new(Vec::new(), Egress::default())
    }
}

impl NetStack {
    /// A stack with loopback and one Ethernet link per interface the
    /// container's init took over (none: loopback only). The stack owns
    /// the links' descriptors from here on.
    pub fn new(links: Vec<HostLink>, egress: Egress) -> NetStack {
        // Every TCP socket gets two zeroed 256 KiB buffers. glibc's
        // dynamic mmap threshold rises past that size after the first
        // one is freed, so later ones came from the heap, which calloc
        // must memset (and the heap is trimmed and grown again, each page
        // faulted in and cleared): a connection per request spent most of
        // its time zeroing half a megabyte. A fixed threshold keeps them
        // fresh mappings, already zero and touched only as far as used.
        // SAFETY: mallopt changes allocator tuning only.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
        let config = NetConfig {
            links: links.iter().map(|l| l.config.clone()).collect(),
        };
        let link_fds = links.iter().map(|l| l.fd).collect();
        let frames: Vec<Box<dyn Frames>> = links
            .iter()
            .map(|l| {
                // SAFETY: the init handed the descriptor over to the
                // kernel, which holds it only here.
                let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(l.fd) };
                Box::new(PacketFrames::new(fd, l.vnet)) as Box<dyn Frames>
            })
            .collect();
        let mut stack = Stack::new(&config, frames);
        stack.egress = egress;
        NetStack {
            stack: RefCell::new(stack),
            touched: Cell::new(true),
            queues: RefCell::new(HashMap::new()),
            link_fds,
            refusals: RefCell::new(BTreeMap::new()),
            nl_ports: RefCell::new(HashSet::new()),
        }
    }

    /// The stack, to change: its deadline is asked for again.
    pub fn stack_mut(&self) -> RefMut<'_, Stack> {
        self.touched.set(true);
        self.stack.borrow_mut()
    }

    /// The stack, to look at.
    pub fn stack(&self) -> Ref<'_, Stack> {
        self.stack.borrow()
    }

    /// The interfaces, loopback first, as rtnetlink and the SIOCGIF*
    /// ioctls show them.
    pub fn ifaces(&self) -> Vec<atoll_netstack::rtnetlink::NlIface> {
        self.stack
            .borrow()
            .ifaces
            .iter()
            .map(|f| f.view())
            .collect()
    }

    /// The links' packet sockets (readable: frames to take in).
    pub fn link_fds(&self) -> &[i32] {
        &self.link_fds
    }

    /// Ties a stack socket to the wait queue its file's waiters sit on.
    pub fn register(&self, id: SockId, wq: Rc<WaitQueue>) {
        self.queues.borrow_mut().insert(id, wq);
    }

    /// The socket's file went away: the stack closes it (a TCP connection
    /// finishes its handshake alone) and nobody waits on it any more.
    pub fn close(&self, id: SockId) {
        self.queues.borrow_mut().remove(&id);
        self.stack_mut().close(id);
        self.pump();
    }

    /// Moves packets until nothing moves, then wakes the waiters of every
    /// socket whose readiness or queues changed: with the events the
    /// change stands for (what edge-triggered epoll counts), or, for a
    /// change Linux makes no wakeup of (an ACK freeing room on a socket
    /// that had some), waking waiters without an event: they look again.
    pub fn pump(&self) {
        let woken: Vec<(Rc<WaitQueue>, u32)> = {
            let mut st = self.stack_mut();
            let out = st.poll();
            let queues = self.queues.borrow();
            out.changed
                .into_iter()
                .filter_map(|(id, events)| Some((queues.get(&id)?.clone(), events)))
                .collect()
        };
        for (wq, events) in woken {
            if events != 0 {
                wq.notify(events);
            } else {
                wq.wake_waiters(!0);
            }
        }
    }

    /// Folds the stack's fresh egress refusals into the counts; true when
    /// one is worth recording at once (durably, for a sandbox that may be
    /// killed before it can report): a destination and rule refused for
    /// the first time, or whose count reached a power of two (so a
    /// workload retrying in a loop costs log lines logarithmic in its
    /// tries).
    pub fn fold_refusals(&self) -> bool {
        let fresh = std::mem::take(&mut self.stack_mut().egress.refused);
        let mut m = self.refusals.borrow_mut();
        let mut notable = false;
        for r in fresh {
            let proto = match r.proto {
                atoll_netstack::Proto::Tcp => "tcp",
                atoll_netstack::Proto::Udp => "udp",
                atoll_netstack::Proto::Icmp => "icmp",
            };
            let dst = std::net::SocketAddr::new(r.dst, r.port).to_string();
            let mut key = (proto.to_string(), dst, r.rule);
            if m.len() >= MAX_REFUSALS && !m.contains_key(&key) {
                key.1 = "other".into();
            }
            let n = m.entry(key).or_default();
            *n += 1;
            notable |= n.is_power_of_two();
        }
        notable
    }

    /// Every connect and send the egress rules refused so far, counted by
    /// protocol, destination and rule (the audit trail's records).
    pub fn refusals(&self) -> Vec<(String, String, String, u64)> {
        self.fold_refusals();
        self.refusals
            .borrow()
            .iter()
            .map(|((p, d, r), n)| (p.clone(), d.clone(), r.clone(), *n))
            .collect()
    }

    /// When the stack's timers next need a pump; None for "as last
    /// answered" when nothing changed the stack since.
    pub fn poll_at_if_touched(&self) -> Option<Option<std::time::Instant>> {
        if !self.touched.replace(false) {
            return None;
        }
        Some(self.stack.borrow_mut().poll_at())
    }
}
