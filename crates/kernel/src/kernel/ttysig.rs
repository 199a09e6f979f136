//! Signals a terminal raises (Linux's kill_pgrp from the tty layer): the
//! interrupt, quit and suspend characters, window size changes and hangups.
//! The terminal code runs with a shared borrow of the kernel (file reads,
//! writes, closes), so it queues them here and the kernel sends them once
//! the syscall that raised them is served.

use std::cell::RefCell;

use super::signal::SigInfo;
use super::{Kernel, Pid};

/// si_code of a signal the kernel sends without details.
const SI_KERNEL: i32 = 0x80;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every process of a process group.
    Pgrp(Pid),
    /// One process (a session leader on hangup).
    Process(Pid),
}

thread_local! {
    static QUEUED: RefCell<Vec<(Target, i32)>> = const { RefCell::new(Vec::new()) };
}

/// Queues `sig` for `target`.
pub fn raise(target: Target, sig: i32) {
    QUEUED.with(|q| q.borrow_mut().push((target, sig)));
}

impl Kernel {
    /// Sends the terminal signals queued since the last call.
    pub fn deliver_tty_signals(&mut self) {
        let queued = QUEUED.with(|q| std::mem::take(&mut *q.borrow_mut()));
        for (target, sig) in queued {
            let members: Vec<Pid> = match target {
                Target::Process(p) => vec![p],
                Target::Pgrp(pg) => self
                    .groups
                    .values()
                    .filter(|g| g.pgid == pg && !g.is_zombie())
                    .map(|g| g.tgid)
                    .collect(),
            };
            for g in members {
                let _ = self.send_group(g, SigInfo::new(sig, SI_KERNEL));
            }
        }
    }
}
