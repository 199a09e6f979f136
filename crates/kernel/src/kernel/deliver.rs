//! Sending and delivering signals; job control.

use super::signal::{
    CLD_CONTINUED, CLD_STOPPED, DefaultAction, FrameSetup, SA_NOCLDSTOP, SA_NODEFER, SA_ONSTACK,
    SA_RESETHAND, SA_SIGINFO, SIG_DFL, SIG_IGN, SigAction, SigInfo, SigSet, default_action,
    is_stop_signal, setup_frame,
};
use super::task::TaskState;
use super::{Kernel, Pid, Tid, waitq};
use crate::errno::{Errno, SysResult};
use crate::platform::Platform;

impl Kernel {
    /// Whether `sig` would be discarded right away for this group.
    fn ignored(&self, tgid: Pid, sig: i32) -> bool {
        let Some(g) = self.groups.get(&tgid) else {
            return true;
        };
        let Some(&t) = g.threads.first() else {
            return true;
        };
        // A tracer hears of every signal but SIGKILL, even ignored ones
        // (Linux's sig_ignored).
        if g.threads.iter().any(|t| self.task(*t).ptrace.is_some()) {
            return false;
        }
        let act = self.task(t).sighand.borrow().get(sig);
        let blocked = g.threads.iter().all(|t| self.task(*t).sigmask.has(sig));
        if blocked {
            return false;
        }
        act.handler == SIG_IGN
            || (act.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }

    /// Makes `tid` notice a newly pending signal: wake it if it sleeps,
    /// stop it if it runs.
    pub fn kick(&mut self, tid: Tid) {
        let t = self.task(tid);
        match t.state {
            TaskState::Blocked => waitq::wake(tid),
            TaskState::Running => {
                let h = t.host;
                self.platform.interrupt(h);
            }
            _ => {}
        }
    }

    /// Real-time signals queue one entry per send: past RLIMIT_SIGPENDING
    /// queued in the process, more are refused with EAGAIN (Linux counts
    /// per user; the bound is what matters: the queue cannot grow without
    /// limit).
    fn may_queue(&self, tgid: Pid, sig: i32) -> SysResult<()> {
        if sig < 32 {
            return Ok(());
        }
        let Some(g) = self.groups.get(&tgid) else {
            return Ok(());
        };
        let limit = g.rlimits[libc::RLIMIT_SIGPENDING as usize].rlim_cur;
        let queued = g.shared_pending.queue.len()
            + g.threads
                .iter()
                .filter_map(|t| self.tasks.get(t))
                .map(|t| t.pending.queue.len())
                .sum::<usize>();
        if queued as u64 >= limit {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Linux's prepare_signal: a stop signal discards pending SIGCONTs,
    /// SIGCONT discards pending stop signals (of the process and of each
    /// of its threads, before any resumes) and ends a group stop.
    fn prepare_signal(&mut self, tgid: Pid, sig: i32) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        let drop: &[i32] = if is_stop_signal(sig) {
            &[libc::SIGCONT]
        } else if sig == libc::SIGCONT {
            &[libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU]
        } else {
            return;
        };
        for s in drop {
            g.shared_pending.remove(*s);
        }
        for t in g.threads.clone() {
            if let Some(t) = self.tasks.get_mut(&t) {
                for s in drop {
                    t.pending.remove(*s);
                }
            }
        }
        if sig == libc::SIGCONT {
            self.group_continue(tgid);
        }
    }

    /// Sends a signal to a thread group (kill(2)).
    pub fn send_group(&mut self, tgid: Pid, info: SigInfo) -> SysResult<()> {
        let sig = info.signo();
        let Some(g) = self.groups.get(&tgid) else {
            return Err(Errno::ESRCH);
        };
        if g.is_zombie() || sig == 0 {
            return Ok(());
        }
        // A pid namespace's init (the sandbox's, a pod container's) only
        // receives signals it handles (or blocks: a blocked signal is never
        // ignored, its handler may change).
        if super::pidns::local(tgid) == 1 && info.code() <= 0 {
            let t = self.task(g.threads[0]);
            if t.sighand.borrow().get(sig).handler == SIG_DFL
                && !t.sigmask.has(sig)
                && !t.sigwait.has(sig)
            {
                return Ok(());
            }
        }
        if sig == libc::SIGKILL {
            self.group_exit(tgid, libc::SIGKILL);
            return Ok(());
        }
        self.prepare_signal(tgid, sig);
        if self.ignored(tgid, sig) {
            return Ok(());
        }
        self.may_queue(tgid, sig)?;
        let info = self.siginfo_for(tgid, info);
        let g = self.groups.get_mut(&tgid).unwrap();
        g.shared_pending.push(info);
        crate::vfs::eventfd::signal_queued();
        let threads = g.threads.clone();
        // Prefer a thread that does not block it.
        let target = threads
            .iter()
            .copied()
            .find(|t| !self.task(*t).sigmask.has(sig) || self.task(*t).sigwait.has(sig));
        if let Some(t) = target {
            self.kick(t);
        }
        Ok(())
    }

    /// Sends a signal to one thread (tgkill(2), faults).
    pub fn send_task(&mut self, tid: Tid, info: SigInfo) -> SysResult<()> {
        let sig = info.signo();
        let tgid = self.tasks.get(&tid).ok_or(Errno::ESRCH)?.tgid;
        if sig == 0 {
            return Ok(());
        }
        if sig == libc::SIGKILL {
            self.group_exit(tgid, libc::SIGKILL);
            return Ok(());
        }
        self.prepare_signal(tgid, sig);
        if super::pidns::local(tgid) == 1
            && info.code() <= 0
            && self.task(tid).sighand.borrow().get(sig).handler == SIG_DFL
            && !self.task(tid).sigmask.has(sig)
            && !self.task(tid).sigwait.has(sig)
        {
            return Ok(());
        }
        if self.ignored(tgid, sig) {
            return Ok(());
        }
        self.may_queue(tgid, sig)?;
        let info = self.siginfo_for(tid, info);
        self.task_mut(tid).pending.push(info);
        crate::vfs::eventfd::signal_queued();
        if !self.task(tid).sigmask.has(sig) || self.task(tid).sigwait.has(sig) {
            self.kick(tid);
        }
        Ok(())
    }

    /// A synchronous fault: delivered to the faulting thread even if
    /// blocked or ignored (Linux's force_sig_fault).
    pub fn force_fault(&mut self, tid: Tid, signo: i32, code: i32, addr: u64) {
        // File pages come in on first touch; past a file's end is SIGBUS.
        let Some((signo, code)) = self.page_fault(tid, signo, code, addr) else {
            return;
        };
        let t = self.task_mut(tid);
        let blocked = t.sigmask.has(signo);
        let info = if signo == libc::SIGTRAP {
            SigInfo::new(signo, code)
        } else {
            SigInfo::fault(signo, code, addr)
        };
        t.pending.push(info);
        let mut hand = t.sighand.borrow_mut();
        if blocked || hand.get(signo).handler == SIG_IGN {
            hand.set(signo, SigAction::default());
        }
        drop(hand);
        t.sigmask.remove(signo);
    }

    /// Whether a blocked syscall of `tid` must end because of a signal:
    /// a deliverable signal is pending, the syscall has not already
    /// moved data (a partly done write returns its count instead, as in
    /// Linux; its handler sees the signal with
    /// [`Kernel::has_deliverable_signal`]), and the event it waited for has
    /// not already happened (a woken futex waiter returns 0, a PI waiter
    /// handed the lock owns it, a vfork parent whose child exec'd returns
    /// the child: the signal is delivered on the way out).
    pub fn signal_pending(&self, tid: Tid) -> bool {
        let sys = &self.task(tid).sys;
        !sys.woken && sys.done.is_none_or(|d| d == 0) && self.has_deliverable_signal(tid)
    }

    /// A signal is pending that `tid` does not block.
    pub fn has_deliverable_signal(&self, tid: Tid) -> bool {
        let t = self.task(tid);
        let g = &self.groups[&t.tgid];
        t.pending.has_deliverable(t.sigmask) || g.shared_pending.has_deliverable(t.sigmask)
    }

    pub fn dequeue_signal(&mut self, tid: Tid) -> Option<SigInfo> {
        let t = self.tasks.get_mut(&tid)?;
        let mask = t.sigmask;
        if let Some(i) = t.pending.take(mask) {
            return Some(i);
        }
        let tgid = t.tgid;
        self.groups.get_mut(&tgid)?.shared_pending.take(mask)
    }

    /// Builds the handler frame and sets the mask for the handler.
    pub fn setup_signal_frame(&mut self, tid: Tid, info: SigInfo, act: SigAction) -> SysResult<()> {
        self.callee_saved(tid);
        let sig = info.signo();
        let host = self.task(tid).host;
        let fpu = self
            .platform
            .get_fpu(host)
            .map_err(|e| Errno::from_io(&e))?;
        let t = self.tasks.get_mut(&tid).unwrap();
        let old_mask = t.saved_mask.take().unwrap_or(t.sigmask);
        let setup = FrameSetup {
            handler: act.handler,
            restorer: act.restorer,
            siginfo: info,
            old_mask,
            altstack: t.altstack,
            use_altstack: act.flags & SA_ONSTACK != 0,
        };
        let mm = t.mm.clone();
        let mut regs = t.regs;
        setup_frame(&mm.borrow(), &mut regs, &fpu, &setup)?;
        if act.flags & SA_SIGINFO == 0 {
            regs.rsi = 0;
            regs.rdx = 0;
        }
        let t = self.tasks.get_mut(&tid).unwrap();
        t.regs = regs;
        let mut mask = SigSet(t.sigmask.0 | act.mask);
        if act.flags & SA_NODEFER == 0 {
            mask.add(sig);
        }
        t.sigmask = mask.sanitized();
        if act.flags & SA_RESETHAND != 0 {
            t.sighand.borrow_mut().set(sig, SigAction::default());
        }
        Ok(())
    }

    /// Job control stop of a whole thread group.
    pub fn group_stop(&mut self, tgid: Pid, sig: i32) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        if g.stopped {
            return;
        }
        g.stopped = true;
        g.stop_sig = sig;
        g.continued_report = false;
        let threads = g.threads.clone();
        let parent = g.parent;
        // Traced threads report the stop to their tracer (ptrace.rs); the
        // real parent hears of it unless it is that tracer.
        let mut parent_traces = false;
        for &t in &threads {
            let tracer = self.tracer_group(t);
            let task = self.task_mut(t);
            if let Some(p) = task.ptrace.as_mut() {
                p.group_stop_done = false;
                parent_traces |= tracer == Some(parent);
            }
            if task.state == TaskState::Running {
                let h = task.host;
                self.platform.interrupt(h);
            }
        }
        if parent_traces {
            return;
        }
        self.groups.get_mut(&tgid).unwrap().stop_report = Some(sig);
        self.notify_parent(tgid, parent, CLD_STOPPED, sig);
    }

    pub fn group_continue(&mut self, tgid: Pid) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        if !g.stopped {
            return;
        }
        g.stopped = false;
        g.stop_report = None;
        g.continued_report = true;
        let threads = g.threads.clone();
        let parent = g.parent;
        for t in threads {
            if self.task(t).state == TaskState::JobStopped {
                self.task_mut(t).state = TaskState::InKernel;
                self.resume(t);
            } else if let Some(p) = self.task_mut(t).ptrace.as_mut()
                && p.listening
            {
                // PTRACE_LISTEN: the end of the group stop re-traps it.
                p.listening = false;
                p.stop = Some(super::ptrace::StopKind::Group);
                p.siginfo = None;
                let st =
                    super::ptrace::stop_status(libc::SIGTRAP, super::ptrace::PTRACE_EVENT_STOP);
                p.report = Some(st);
                self.notify_tracer(t, super::ptrace::CLD_TRAPPED, libc::SIGTRAP);
            }
        }
        self.notify_parent(tgid, parent, CLD_CONTINUED, libc::SIGCONT);
    }

    /// SIGCHLD for a stop or continue (unless the parent asked not to).
    fn notify_parent(&mut self, child: Pid, parent: Pid, code: i32, status: i32) {
        let Some(pg) = self.groups.get(&parent) else {
            return;
        };
        let Some(&pt) = pg.threads.first() else {
            return;
        };
        let act = self.task(pt).sighand.borrow().get(libc::SIGCHLD);
        let q = pg.child_waitq.clone();
        q.notify_all();
        if act.flags & SA_NOCLDSTOP == 0 {
            let uid = self.groups[&child].cred.uid;
            let _ = self.send_group(parent, SigInfo::child(code, child, uid, status));
        }
    }

    /// Host signals sent to the kernel process (atoll kill) go to the
    /// workload's init, as if from outside the sandbox.
    pub fn forward_host_signals(&mut self) {
        loop {
            let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one siginfo from our signalfd.
            let n = unsafe {
                libc::read(
                    self.signal_fd,
                    &mut si as *mut _ as *mut libc::c_void,
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n <= 0 {
                return;
            }
            let sig = si.ssi_signo as i32;
            self.log.line(&format!(
                "forwarding host signal {sig} to the workload's init"
            ));
            let _ = self.send_group(1, SigInfo::user(sig, super::signal::SI_USER, 0, 0));
        }
    }

    /// ITIMER_REAL (and alarm) expired, due at `due`: a periodic one
    /// goes on from then (periods missed while the kernel was busy are
    /// dropped, one signal stands for them, as Linux's it_real_fn).
    pub fn itimer_fired(&mut self, pid: Pid, due: std::time::Instant) {
        let Some(g) = self.groups.get_mut(&pid) else {
            return;
        };
        let interval = g.itimer_real_interval;
        if !interval.is_zero() {
            let (next, _) = super::timer::forward(due, interval, std::time::Instant::now());
            self.timers
                .arm(next, super::timer::TimerAction::ItimerReal(pid));
        }
        let _ = self.send_group(pid, SigInfo::new(libc::SIGALRM, super::signal::SI_KERNEL));
    }

    /// A POSIX timer due at `due` expired: a periodic one goes on from
    /// then, the periods it missed are its overrun count.
    pub fn posix_timer_fired(&mut self, pid: Pid, id: i32, due: std::time::Instant) {
        let Some(g) = self.groups.get_mut(&pid) else {
            return;
        };
        let Some(t) = g.posix_timers.get_mut(&id) else {
            return;
        };
        let (signo, value, interval, target) = (t.signo, t.value, t.interval, t.target_tid);
        let mut overrun = 0;
        if !interval.is_zero() {
            let (next, missed) = super::timer::forward(due, interval, std::time::Instant::now());
            overrun = missed.min(i32::MAX as u64) as i32;
            t.overrun = overrun;
            self.timers
                .arm(next, super::timer::TimerAction::Posix(pid, id));
        } else {
            t.overrun = 0;
        }
        if signo == 0 {
            return;
        }
        let info = SigInfo::timer(signo, id, overrun, value);
        let _ = match target {
            Some(tid) if self.tasks.contains_key(&tid) => self.send_task(tid, info),
            _ => self.send_group(pid, info),
        };
    }
}
