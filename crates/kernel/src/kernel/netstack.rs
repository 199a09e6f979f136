//! The sandbox's own TCP/IP stack (`--network sandbox`), as the kernel
//! holds it: one atoll-netstack [`Stack`] for the whole sandbox and the
//! wait queue of each of its sockets. Socket files (`net::stack`) act on
//! it and then [`NetStack::pump`] it; the run loop pumps it again when its
//! timers are due. A pump moves packets (all in memory: loopback only)
//! and wakes the tasks waiting on the sockets whose readiness changed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use atoll_netstack::{NetConfig, SockId, Stack};

use super::waitq::WaitQueue;

pub struct NetStack {
    pub stack: RefCell<Stack>,
    queues: RefCell<HashMap<SockId, Rc<WaitQueue>>>,
}

impl Default for NetStack {
    fn default() -> Self {
        Self::new()
    }
}

impl NetStack {
    /// A stack with loopback only: no link to the container's interfaces
    /// (that needs an AF_PACKET socket, not built yet).
    pub fn new() -> NetStack {
        NetStack {
            stack: RefCell::new(Stack::new(&NetConfig::default(), Vec::new())),
            queues: RefCell::new(HashMap::new()),
        }
    }

    /// Ties a stack socket to the wait queue its file's waiters sit on.
    pub fn register(&self, id: SockId, wq: Rc<WaitQueue>) {
        self.queues.borrow_mut().insert(id, wq);
    }

    /// The socket's file went away: the stack closes it (a TCP connection
    /// finishes its handshake alone) and nobody waits on it any more.
    pub fn close(&self, id: SockId) {
        self.queues.borrow_mut().remove(&id);
        self.stack.borrow_mut().close(id);
        self.pump();
    }

    /// Moves packets until nothing moves, then wakes the waiters of every
    /// socket whose readiness or queues changed.
    pub fn pump(&self) {
        let woken: Vec<(Rc<WaitQueue>, u32)> = {
            let mut st = self.stack.borrow_mut();
            let out = st.poll();
            let queues = self.queues.borrow();
            out.changed
                .into_iter()
                .filter_map(|id| {
                    let wq = queues.get(&id)?.clone();
                    Some((wq, st.readiness(id)))
                })
                .collect()
        };
        for (wq, mask) in woken {
            wq.notify(mask);
        }
    }

    /// When the stack's timers next need a pump.
    pub fn poll_at(&self) -> Option<std::time::Instant> {
        self.stack.borrow_mut().poll_at()
    }
}
