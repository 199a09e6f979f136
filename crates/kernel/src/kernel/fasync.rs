//! Signal-driven I/O (O_ASYNC with F_SETOWN/F_SETSIG): files register on
//! the wait queues their events are notified on (`WaitQueue::add_fasync`,
//! Linux's fasync lists); a notify records the event, and the kernel sends
//! each owner its signal once the syscall that caused it is served.

use super::signal::SigInfo;
use super::{Kernel, waitq};
use crate::vfs::file::{
    F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID, Owner, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM,
    POLLWRBAND, POLLWRNORM,
};

/// si_code of SIGPOLL signals.
const POLL_IN: i32 = 1;
const POLL_OUT: i32 = 2;
const POLL_ERR: i32 = 4;
const POLL_HUP: i32 = 6;
/// si_code of a dnotify signal (Linux's POLL_MSG), and its band bit.
const POLL_MSG: i32 = 3;
const POLLMSG: u32 = 0x400;
/// si_code of a signal the kernel sends without details.
const SI_KERNEL: i32 = 0x80;

impl Kernel {
    /// Sends the signals of the I/O events recorded since the last call.
    pub fn deliver_async_io(&mut self) {
        for (w, events) in waitq::take_async() {
            let Some(f) = w.upgrade() else {
                continue;
            };
            if f.flags.get() & libc::O_ASYNC == 0 {
                continue;
            }
            let Some(owner) = f.owner.get() else {
                continue;
            };
            // Linux's band_table: what si_band says for each reason.
            let (reason, band) = if events & POLLIN != 0 {
                (POLL_IN, POLLIN | POLLRDNORM)
            } else if events & POLLOUT != 0 {
                (POLL_OUT, POLLOUT | POLLWRNORM | POLLWRBAND)
            } else if events & POLLHUP != 0 {
                (POLL_HUP, POLLHUP | POLLERR)
            } else if events & POLLERR != 0 {
                (POLL_ERR, POLLERR)
            } else {
                continue;
            };
            let sig = f.sig.get();
            // F_SETSIG 0: plain SIGIO; else the signal with the details.
            let info = if sig == 0 {
                SigInfo::new(libc::SIGIO, SI_KERNEL)
            } else {
                let mut i = SigInfo::new(sig, reason);
                i.raw[16..24].copy_from_slice(&(band as i64).to_ne_bytes());
                i.raw[24..28].copy_from_slice(&f.async_fd.get().to_ne_bytes());
                i
            };
            self.signal_owner(owner, info);
        }
    }

    /// Sends the signals of the directories' F_NOTIFY marks that fired:
    /// F_SETSIG's signal with POLL_MSG and the descriptor, or plain SIGIO.
    pub fn deliver_dnotify(&mut self) {
        for (w, fd) in crate::vfs::dnotify::take_fired() {
            let Some(f) = w.upgrade() else {
                continue;
            };
            let Some(owner) = f.owner.get() else {
                continue;
            };
            let sig = f.sig.get();
            let info = if sig == 0 {
                SigInfo::new(libc::SIGIO, SI_KERNEL)
            } else {
                let mut i = SigInfo::new(sig, POLL_MSG);
                let band = POLLIN | POLLRDNORM | POLLMSG;
                i.raw[16..24].copy_from_slice(&(band as i64).to_ne_bytes());
                i.raw[24..28].copy_from_slice(&fd.to_ne_bytes());
                i
            };
            self.signal_owner(owner, info);
        }
    }

    /// Sends `info` to a file's owner: a thread, a process or a group.
    fn signal_owner(&mut self, owner: Owner, info: SigInfo) {
        match owner.kind {
            F_OWNER_TID => {
                let _ = self.send_task(owner.id, info);
            }
            F_OWNER_PID => {
                let _ = self.send_group(owner.id, info);
            }
            F_OWNER_PGRP => {
                let members: Vec<_> = self
                    .groups
                    .values()
                    .filter(|g| g.pgid == owner.id && !g.is_zombie())
                    .map(|g| g.tgid)
                    .collect();
                for g in members {
                    let _ = self.send_group(g, SigInfo { raw: info.raw });
                }
            }
            _ => {}
        }
    }
}
