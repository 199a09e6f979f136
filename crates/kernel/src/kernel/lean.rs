//! The lean path of a syscall stop. A plain syscall (`keeps_callee_saved`:
//! reads, writes, stats, opens, maps, polls, id getters) of an untraced
//! task that is not on its way out is served, and the task resumed, by
//! this one function instead of the general path's on_stop → syscall →
//! dispatch → complete → resume. That path asks at every step about
//! tracers, group exit, job control, restarts, pending signals and timers,
//! each a map lookup of its own: ~15 lookups and several copies of the
//! register set, about half of a cheap syscall's whole round trip on
//! systrap (a stand-in that answered getppid in the platform itself took
//! 345 ns against 665 ns; docs/architecture.md).
//!
//! What stays the same: the handler runs through `syscalls::dispatch`
//! (CPU time, the spec's seccomp profile, signals the syscall caused), and
//! every outcome that is not a plain result goes on through the general
//! path from where this one stands, as if it had come that way: a block,
//! a restart, a signal to deliver, a group exit or a job stop.

use super::run::{is_restart, keeps_callee_saved, next_serving};
use super::signal::SigSet;
use super::task::TaskState;
use super::{Kernel, Tid};
use crate::arch::syscall_args;
use crate::errno::Errno;
use crate::platform::{Platform, ThreadId};
use crate::syscalls;

impl Kernel {
    /// Serves the syscall stop of `tid` (host thread `host`) when it is a
    /// plain one of an untraced task that is not on its way out: true.
    /// False, with nothing done, for the general path to serve it.
    pub(super) fn lean_syscall(&mut self, tid: Tid, host: ThreadId) -> bool {
        if self.config.strace {
            return false;
        }
        // A platform that keeps no register set of its own (ptrace) has
        // no partial one: it takes the general path.
        let Some(regs) = self.platform.get_regs_partial(host) else {
            return false;
        };
        if !keeps_callee_saved(regs.orig_rax)
            || self.config.syscall_patching && self.platform.patchable_stop(host)
        {
            return false;
        }
        let Some(t) = self.tasks.get_mut(&tid) else {
            return false;
        };
        if t.ptrace.is_some()
            || t.exiting
            || self
                .groups
                .get(&t.tgid)
                .is_none_or(|g| g.group_exit.is_some())
        {
            return false;
        }
        t.regs = regs;
        t.callee_partial = true;
        t.state = TaskState::InKernel;
        self.stats.syscalls += 1;
        next_serving();
        let (nr, mut args) = syscall_args(&regs);
        // A pid the task cannot name fails before dispatch: no kernel
        // time to account then (`entered` None), as on the general path.
        let (r, entered) = match self.pids_in(tid, nr, &mut args) {
            Ok(()) => {
                let (r, at) = syscalls::dispatch_unaccounted(self, tid, nr, args);
                (r, Some(at))
            }
            Err(e) => (Err(e), None),
        };
        let account = |k: &mut Kernel, resumes: bool| {
            if let Some(at) = entered {
                syscalls::account_leave(k, tid, at, resumes);
            }
        };
        let v = match r {
            Ok(v) => self.pid_result(tid, nr, &args, v),
            Err(e)
                if !is_restart(e)
                    && !matches!(e, Errno::EBLOCK | Errno::ENORESUME | Errno::EJUSTRETURN) =>
            {
                e.ret()
            }
            // Blocked, restarted, gone, or a result already in place:
            // the general path takes it from here.
            _ => {
                let resumes = !matches!(r, Err(Errno::EBLOCK) | Err(Errno::ENORESUME));
                account(self, resumes);
                self.complete(tid, nr, args, r);
                return true;
            }
        };
        if nr == libc::SYS_futex as u64 {
            self.futexes.forget(tid);
        }
        // No wake-up timer to cancel: only a syscall that blocked armed one
        // (`complete`), and this one did not.
        let Some(t) = self.tasks.get_mut(&tid) else {
            account(self, true);
            return true;
        };
        t.sys = Default::default();
        t.blocked_on = None;
        t.sigwait = SigSet::EMPTY;
        t.regs.rax = v;
        let quiet = !t.exiting
            && t.restart.is_none()
            && t.ptrace.is_none()
            && !t.pending.has_deliverable(t.sigmask)
            && self.groups.get(&t.tgid).is_some_and(|g| {
                g.group_exit.is_none() && !g.stopped && !g.shared_pending.has_deliverable(t.sigmask)
            });
        if quiet {
            // What `resume` would end with: nothing to deliver, no restart,
            // no tracer to step for. The task's time in the kernel ends
            // once it runs again (its answer does not wait for the clock).
            self.return_to_user(tid);
            account(self, true);
        } else {
            account(self, true);
            self.resume(tid);
        }
        true
    }
}
