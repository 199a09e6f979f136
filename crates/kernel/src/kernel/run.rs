//! The event loop: every workload stop comes here, is served, and the
//! thread is resumed (or parked, or ended).

use std::time::{Duration, Instant};

use super::signal::{DefaultAction, SA_RESTART, SIG_DFL, SIG_IGN, default_action};
use super::task::TaskState;
use super::timer::TimerAction;
use super::usertrap::PatchedFault;
use super::{Kernel, Tid, waitq};
use crate::arch::{SYSCALL_INSN_LEN, syscall_args};
use crate::errno::Errno;
use crate::platform::{Platform, Stop};
use crate::syscalls;
use crate::vfs::hostfs::news_from_outside;

/// How an interrupted blocking syscall reports the interruption.
fn interrupt_errno(nr: u64, args: &[u64; 6]) -> Errno {
    const FUTEX_LOCK_PI: u64 = 6;
    const FUTEX_LOCK_PI2: u64 = 13;
    match nr as i64 {
        // Taking a PI lock never fails with EINTR: it is tried again after
        // the handler (Linux's futex_lock_pi).
        libc::SYS_futex if matches!(args[1] & 127, FUTEX_LOCK_PI | FUTEX_LOCK_PI2) => {
            Errno::ERESTARTNOINTR
        }
        libc::SYS_nanosleep
        | libc::SYS_clock_nanosleep
        | libc::SYS_poll
        | libc::SYS_ppoll
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2
        | libc::SYS_rt_sigtimedwait
        | libc::SYS_rt_sigsuspend
        | libc::SYS_pause => Errno::ERESTARTNOHAND,
        // Never restarted after a handler (signal(7)), and EINTR after a
        // stop and SIGCONT even without one: System V IPC waits.
        libc::SYS_semop | libc::SYS_semtimedop | libc::SYS_msgsnd | libc::SYS_msgrcv => {
            Errno::EINTR
        }
        // fork never fails with EINTR (a clone backing off at the pids
        // limit is simply tried again after the handler).
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_fork | libc::SYS_vfork => {
            Errno::ERESTARTNOINTR
        }
        // An exec waiting for its other threads' PTRACE_EVENT_EXIT stops
        // only gives way to a fatal signal (Linux's de_thread): after a
        // handler it goes on waiting.
        libc::SYS_execve | libc::SYS_execveat => Errno::ERESTARTNOINTR,
        _ => Errno::ERESTARTSYS,
    }
}

/// Stops served before the kernel looks at timers and host events again.
const STOPS_PER_ROUND: usize = 64;

/// How often a busy kernel checks host signals, its control socket and
/// host descriptors.
const HOST_POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

/// How long an idle kernel polls for the next stop before it sleeps.
const SPIN_WINDOW: std::time::Duration = std::time::Duration::from_micros(50);

thread_local! {
    /// Counts the syscalls the kernel started or re-ran (see [`serving`]).
    static SERVING: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// Which syscall the kernel is serving: it moves at every syscall it
/// starts or re-runs (never 0), so a value read during one identifies it
/// (attributes a file system read during this syscall, see hostfs.rs).
pub fn serving() -> u64 {
    SERVING.with(|s| s.get())
}

pub(super) fn next_serving() {
    SERVING.with(|s| s.set(s.get() + 1));
}

/// Syscalls whose handlers neither read nor change the caller's
/// callee-saved registers (rbx, rbp, r12-r15) and start no task from
/// them: the hot ones of file, memory, time and wait work. Their stops
/// leave those registers in the platform (a loop's counter lives there:
/// on systrap, not reading that cache line saves 60-100 ns a syscall).
/// A signal frame or a tracer that needs them fetches them
/// (`Kernel::callee_saved`).
pub(super) fn keeps_callee_saved(nr: u64) -> bool {
    nr < 512 && KEEPS_CALLEE_SAVED[nr as usize / 64] & (1 << (nr % 64)) != 0
}

const KEEPS_CALLEE_SAVED: [u64; 8] = {
    let nrs = [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_open,
        libc::SYS_close,
        libc::SYS_stat,
        libc::SYS_fstat,
        libc::SYS_lstat,
        libc::SYS_poll,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_mprotect,
        libc::SYS_munmap,
        libc::SYS_brk,
        libc::SYS_ioctl,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_access,
        libc::SYS_pipe,
        libc::SYS_select,
        libc::SYS_sched_yield,
        libc::SYS_madvise,
        libc::SYS_dup,
        libc::SYS_dup2,
        libc::SYS_nanosleep,
        libc::SYS_getpid,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_fcntl,
        libc::SYS_getcwd,
        libc::SYS_readlink,
        libc::SYS_gettimeofday,
        libc::SYS_getuid,
        libc::SYS_getgid,
        libc::SYS_geteuid,
        libc::SYS_getegid,
        libc::SYS_getppid,
        libc::SYS_getpgrp,
        libc::SYS_gettid,
        libc::SYS_time,
        libc::SYS_futex,
        libc::SYS_getdents64,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_epoll_wait,
        libc::SYS_openat,
        libc::SYS_newfstatat,
        libc::SYS_readlinkat,
        libc::SYS_faccessat,
        libc::SYS_pselect6,
        libc::SYS_ppoll,
        libc::SYS_epoll_pwait,
        libc::SYS_dup3,
        libc::SYS_pipe2,
        libc::SYS_getrandom,
        libc::SYS_statx,
        libc::SYS_faccessat2,
    ];
    let mut bits = [0u64; 8];
    let mut i = 0;
    while i < nrs.len() {
        bits[nrs[i] as usize / 64] |= 1 << (nrs[i] % 64);
        i += 1;
    }
    bits
};

pub(super) fn is_restart(e: Errno) -> bool {
    matches!(e.0, 512..=516)
}

impl Kernel {
    /// Serves the sandbox until the last task has exited; returns the
    /// init's wait status.
    pub fn run(&mut self) -> i32 {
        let mut last_host_poll = Instant::now();
        // The clock as the last round ended, when it served something.
        let mut busy_until: Option<Instant> = None;
        loop {
            if self.tasks.is_empty() {
                return self.init_status.unwrap_or(0);
            }
            // Timers and control requests served below are operations of
            // their own too.
            next_serving();
            self.served_at = None;
            let mut busy = false;
            for tid in waitq::take_woken() {
                busy = true;
                self.retry(tid);
            }
            // A bounded batch: busy tasks (a fork bomb, a spinning loop of
            // cheap syscalls) stop again as soon as they are served, and
            // must not keep timers, host signals (a forwarded SIGTERM) and
            // host descriptors from being looked at.
            for _ in 0..STOPS_PER_ROUND {
                let Some((host, stop)) = self.platform.poll_stop() else {
                    break;
                };
                busy = true;
                self.on_stop(host, stop);
            }
            for (pid, status) in self.platform.take_foreign_exits() {
                self.on_foreign_exit(pid, status);
            }
            // A round that served a syscall read the clock as it
            // finished (a fraction of a microsecond ago): that reading
            // serves here too, one clock read fewer per syscall.
            // So did the round before an idle one (the thread it served
            // is on its way back): one more clock read fewer per syscall
            // of a thread that makes them in a loop, for timers seen at
            // most that round (a fraction of a microsecond) late.
            let served = self.served_at.take();
            let now = match (served, busy_until.take()) {
                (Some(t), _) if busy => t,
                (_, Some(t)) if !busy => t,
                _ => Instant::now(),
            };
            for (due, a) in self.timers.expired(now) {
                busy = true;
                // Time passed for the workload: a change made outside
                // meanwhile is to be seen (see `news_from_outside`).
                news_from_outside();
                self.fire_timer(a, due);
            }
            self.arm_netstack_timer();
            let timeout = if busy || waitq::has_woken() {
                // While busy, host events are looked at once per
                // HOST_POLL_EVERY, not on every round (a host syscall per
                // served workload syscall otherwise).
                if now.duration_since(last_host_poll) < HOST_POLL_EVERY {
                    // Straight on to the next round: its reading, if it
                    // is idle, is this one (taken as the last syscall
                    // finished, with only expired timers fired since).
                    busy_until = served.filter(|_| busy);
                    continue;
                }
                Some(Duration::ZERO)
            } else {
                // Idle: wait for the next stop without sleeping for a
                // while (a sleeping kernel costs a wake-up per stop), as
                // long as no timer is due and host events get a look.
                // Then sleep until the next deadline, to the nanosecond.
                let t = self.timers.timeout(now);
                let left = HOST_POLL_EVERY.saturating_sub(now.duration_since(last_host_poll));
                if t == Some(Duration::ZERO) || left.is_zero() {
                    Some(Duration::ZERO)
                } else {
                    let window = SPIN_WINDOW.min(left).min(t.unwrap_or(SPIN_WINDOW));
                    if self.platform.spin(window) || !self.platform.prepare_sleep() {
                        // A stop arrived while spinning or going to sleep.
                        continue;
                    }
                    self.timers.timeout(Instant::now())
                }
            };
            let ready = self.poller.wait(timeout);
            if timeout != Some(Duration::ZERO) {
                // The whole sandbox waited: for a host event, a timer, a
                // host signal, perhaps news of a change made outside.
                news_from_outside();
            }
            self.platform.after_wait(ready.platform);
            // Memory freed while stubs that mapped it were dying, now
            // mapped by none (see `MemoryFile::defer_release`).
            self.mf
                .release_retired_through(self.platform.reaped_through());
            last_host_poll = Instant::now();
            if ready.signals {
                news_from_outside();
                self.forward_host_signals();
            }
            if ready.control {
                self.serve_control();
            }
            if ready.net
                && let Some(n) = &self.netstack
            {
                n.pump();
            }
            for c in ready.connections {
                super::control_proto::connection_ready(self, c);
            }
        }
    }

    fn on_stop(&mut self, host: i32, stop: Stop) {
        let Some(&tid) = self.host_tids.get(&host) else {
            return;
        };
        if stop == Stop::Gone {
            // The host thread vanished under us (OOM killer, host kill):
            // the process dies as if by SIGKILL.
            self.host_tids.remove(&host);
            let tgid = self.task(tid).tgid;
            self.group_exit(tgid, libc::SIGKILL);
            if self.tasks.contains_key(&tid) {
                self.exit_task(tid);
            }
            return;
        }
        if stop == Stop::Syscall && self.lean_syscall(tid, host) {
            return;
        }
        // A plain syscall of an untraced task leaves the callee-saved
        // registers where the platform keeps them (`callee_saved`).
        let partial = self.platform.get_regs_partial(host).filter(|r| {
            stop == Stop::Syscall
                && keeps_callee_saved(r.orig_rax)
                && self.task(tid).ptrace.is_none()
        });
        let regs = match partial.map_or_else(|| self.platform.get_regs(host), Ok) {
            Ok(r) => r,
            Err(_) => {
                let tgid = self.task(tid).tgid;
                self.group_exit(tgid, libc::SIGKILL);
                return;
            }
        };
        let t = self.task_mut(tid);
        t.regs = regs;
        t.callee_partial = partial.is_some();
        t.state = TaskState::InKernel;
        let tgid = t.tgid;
        let exiting = t.exiting;
        self.ptrace_user_stopped(tid);
        let dying = exiting || self.groups[&tgid].group_exit.is_some();
        if dying {
            // Killed (SIGKILL, its init gone) after this stop was collected:
            // the syscall must not run (a dying fork bomb would fork on).
            self.resume(tid);
            return;
        }
        match stop {
            Stop::Syscall => {
                if self.config.syscall_patching && self.platform.patchable_stop(host) {
                    let nr = self.task(tid).regs.orig_rax;
                    self.try_patch(tid, nr);
                }
                self.syscall(tid)
            }
            Stop::Fault {
                signo: signo @ (libc::SIGILL | libc::SIGSEGV),
                code,
                addr,
            } => match self.usertrap_fault(tid, signo) {
                PatchedFault::Rewound => self.resume(tid),
                PatchedFault::Syscall => self.syscall(tid),
                PatchedFault::No => {
                    self.force_fault(tid, signo, code, addr);
                    self.resume(tid);
                }
            },
            Stop::Fault {
                signo: libc::SIGTRAP,
                code: super::ptrace::TRAP_TRACE,
                ..
            } if self.ptrace_step_into_platform(tid) => self.resume(tid),
            Stop::Fault { signo, code, addr } => {
                self.force_fault(tid, signo, code, addr);
                self.resume(tid);
            }
            Stop::Interrupted | Stop::Gone => self.resume(tid),
        }
    }

    /// Makes the task's callee-saved registers (rbx, rbp, r12-r15) the
    /// ones it stopped with, after a stop that left them in the platform
    /// (see `keeps_callee_saved`). Whatever reads or writes a task's whole
    /// register set calls this first: signal frames, ptrace requests.
    pub fn callee_saved(&mut self, tid: Tid) {
        let Some(t) = self.tasks.get(&tid) else {
            return;
        };
        if !t.callee_partial {
            return;
        }
        let host = t.host;
        if let Ok(r) = self.platform.get_regs(host) {
            let t = self.task_mut(tid);
            (t.regs.r15, t.regs.r14, t.regs.r13) = (r.r15, r.r14, r.r13);
            (t.regs.r12, t.regs.rbp, t.regs.rbx) = (r.r12, r.rbp, r.rbx);
        }
        self.task_mut(tid).callee_partial = false;
    }

    fn syscall(&mut self, tid: Tid) {
        self.stats.syscalls += 1;
        if self.ptrace_syscall_enter(tid) {
            return;
        }
        self.syscall_body(tid);
    }

    /// Runs the syscall in the task's registers (after its tracer's
    /// syscall-enter stop, which may have changed them: a number of -1
    /// skips the syscall, rax is then its result).
    pub fn syscall_body(&mut self, tid: Tid) {
        next_serving();
        let (nr, mut args) = syscall_args(&self.task(tid).regs);
        if nr == u64::MAX {
            let rax = self.task(tid).regs.rax;
            self.complete(tid, nr, args, Ok(rax));
            return;
        }
        // Pids a pod container's process names are its namespace's
        // (pidns.rs): kernel-wide from here on, also when re-run.
        let r = match self.pids_in(tid, nr, &mut args) {
            Ok(()) => syscalls::dispatch(self, tid, nr, args),
            Err(e) => Err(e),
        };
        self.complete(tid, nr, args, r);
    }

    /// Finishes a syscall with result `r`.
    pub fn complete(&mut self, tid: Tid, nr: u64, args: [u64; 6], r: Result<u64, Errno>) {
        if self.config.strace {
            self.strace(tid, nr, &args, &r);
        }
        if !self.tasks.contains_key(&tid) {
            return;
        }
        match r {
            Err(Errno::EBLOCK) => {
                let host = self.task(tid).host;
                self.platform.parked(host);
                let t = self.task_mut(tid);
                t.state = TaskState::Blocked;
                t.blocked_on = Some((nr, args));
                if let Some(d) = t.sys.deadline {
                    self.timers.arm(d, TimerAction::Wake(tid));
                }
                // A vfork parent reports PTRACE_EVENT_VFORK before it
                // sleeps until the child lets go.
                self.ptrace_event_while_blocked(tid);
                // A signal that came while this syscall's stop waited for
                // the kernel found the task still running (its kick was
                // lost): it interrupts the sleep now, as if sent after.
                if self.task(tid).state == TaskState::Blocked && self.has_deliverable_signal(tid) {
                    waitq::wake(tid);
                }
                return;
            }
            Err(Errno::ENORESUME) => return,
            _ => {}
        }
        if nr == libc::SYS_futex as u64 {
            self.futexes.forget(tid);
        }
        self.timers.cancel(&TimerAction::Wake(tid));
        let t = self.task_mut(tid);
        t.sys = Default::default();
        t.blocked_on = None;
        t.sigwait = super::signal::SigSet::EMPTY;
        let r = r.map(|v| self.pid_result(tid, nr, &args, v));
        let t = self.task_mut(tid);
        match r {
            Err(Errno::EJUSTRETURN) => {}
            Ok(v) => t.regs.rax = v,
            Err(e) => {
                t.regs.rax = e.ret();
                if is_restart(e) {
                    t.restart = Some(e);
                }
            }
        }
        if self.ptrace_syscall_exit(tid) {
            return;
        }
        self.resume(tid);
    }

    /// Re-runs a blocked syscall whose task was woken (or interrupts it
    /// if a signal is pending).
    pub fn retry(&mut self, tid: Tid) {
        let Some(t) = self.tasks.get(&tid) else {
            return;
        };
        if t.state != TaskState::Blocked {
            return;
        }
        let (nr, args) = t.blocked_on.expect("blocked task has a syscall");
        next_serving();
        let tgid = t.tgid;
        let exiting = t.exiting
            || self
                .groups
                .get(&tgid)
                .is_some_and(|g| g.group_exit.is_some());
        let interrupted = t.ptrace.as_ref().is_some_and(|p| p.interrupt);
        if exiting || self.signal_pending(tid) || interrupted {
            self.task_mut(tid).state = TaskState::InKernel;
            // A read that has bytes to show for its wait returns them.
            let partial = if exiting {
                None
            } else {
                syscalls::fs::read_interrupted(self, tid, nr, args)
            };
            let r = partial.ok_or_else(|| interrupt_errno(nr, &args));
            self.complete(tid, nr, args, r);
            return;
        }
        self.task_mut(tid).state = TaskState::InKernel;
        let r = syscalls::dispatch(self, tid, nr, args);
        self.complete(tid, nr, args, r);
    }

    /// Returns a task to user mode: acts on group exit and job control,
    /// delivers one pending signal, applies syscall restart, and resumes.
    pub fn resume(&mut self, tid: Tid) {
        loop {
            let Some(t) = self.tasks.get(&tid) else {
                return;
            };
            let tgid = t.tgid;
            let g = &self.groups[&tgid];
            if t.exiting || g.group_exit.is_some() {
                self.exit_task(tid);
                return;
            }
            let traced = t.ptrace.is_some();
            let injected = if traced {
                // A traced task owes its tracer a stop first (group stop,
                // PTRACE_INTERRUPT); a signal its tracer chose at a
                // signal-delivery stop is delivered without another stop.
                if self.ptrace_pending_stop(tid) {
                    return;
                }
                self.task_mut(tid)
                    .ptrace
                    .as_mut()
                    .and_then(|p| p.inject.take())
            } else {
                if g.stopped {
                    self.task_mut(tid).state = TaskState::JobStopped;
                    return;
                }
                None
            };
            let info = match injected {
                Some(i) => {
                    // Blocked now: it stays pending (Linux requeues it).
                    if self.task(tid).sigmask.has(i.signo()) {
                        self.task_mut(tid).pending.push(i);
                        continue;
                    }
                    i
                }
                None => {
                    let Some(info) = self.dequeue_signal(tid) else {
                        break;
                    };
                    if traced && info.signo() != libc::SIGKILL {
                        self.ptrace_signal_stop(tid, info);
                        return;
                    }
                    info
                }
            };
            let sig = info.signo();
            if sig == libc::SIGKILL {
                self.group_exit(tgid, libc::SIGKILL);
                continue;
            }
            let act = self.task(tid).sighand.borrow().get(sig);
            if act.handler == SIG_IGN {
                continue;
            }
            if act.handler == SIG_DFL {
                // The sandbox's init ignores what it does not handle.
                if super::pidns::local(tgid) == 1 && info.code() <= 0 {
                    continue;
                }
                match default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        self.group_stop(tgid, sig);
                        continue;
                    }
                    DefaultAction::Terminate => {
                        self.group_exit(tgid, sig);
                        continue;
                    }
                    DefaultAction::CoreDump => {
                        self.group_exit(tgid, sig | 0x80);
                        continue;
                    }
                }
            }
            self.apply_restart(tid, Some(act.flags & SA_RESTART != 0));
            if self.setup_signal_frame(tid, info, act).is_err() {
                // Cannot build a frame: SIGSEGV with the default action.
                self.group_exit(tgid, libc::SIGSEGV | 0x80);
                continue;
            }
            if traced && self.ptrace_step_into_handler(tid) {
                return;
            }
            break;
        }
        self.apply_restart(tid, None);
        if self.ptrace_step_patched_site(tid) {
            // The step's trap is pending: report it.
            return self.resume(tid);
        }
        self.return_to_user(tid);
    }

    /// The task runs on in user mode with its registers (plus the trap
    /// flag of a single step): the end of `resume`, once nothing is left
    /// to deliver.
    pub(super) fn return_to_user(&mut self, tid: Tid) {
        let regs = self.ptrace_user_regs(tid);
        let t = self.task_mut(tid);
        let host = t.host;
        t.state = TaskState::Running;
        if self.platform.set_regs(host, &regs).is_err() || self.platform.resume(host).is_err() {
            let tgid = self.task(tid).tgid;
            self.group_exit(tgid, libc::SIGKILL);
            if self.tasks.contains_key(&tid) {
                self.exit_task(tid);
            }
        }
    }

    /// Restart logic for a syscall that returned ERESTART*: `handler` is
    /// Some(sa_restart) when a handler is about to run, None otherwise.
    fn apply_restart(&mut self, tid: Tid, handler: Option<bool>) {
        let t = self.task_mut(tid);
        let Some(e) = t.restart.take() else {
            return;
        };
        // A tracer that changed the result (at a syscall-exit stop) decides:
        // only a result that is still the restart code restarts.
        if t.regs.rax != e.ret() {
            return;
        }
        let restart = match (e, handler) {
            (Errno::ERESTARTNOINTR, _) => true,
            (_, None) => true,
            (Errno::ERESTARTSYS, Some(sa_restart)) => sa_restart,
            _ => false,
        };
        if restart {
            t.regs.rax = t.regs.orig_rax;
            t.regs.rip -= SYSCALL_INSN_LEN;
        } else {
            t.regs.rax = Errno::EINTR.ret();
        }
    }

    /// Acts on a timer that was due at `due`.
    fn fire_timer(&mut self, a: TimerAction, due: Instant) {
        match a {
            TimerAction::Wake(tid) => waitq::wake(tid),
            TimerAction::ItimerReal(pid) => self.itimer_fired(pid, due),
            TimerAction::CpuItimers(pid) => self.cpu_itimers_check(pid),
            TimerAction::Posix(pid, id) => self.posix_timer_fired(pid, id, due),
            TimerAction::TimerFd(id) => crate::vfs::timerfd::fired(self, id, due),
            TimerAction::NetStack => {
                if let Some(n) = &self.netstack {
                    n.pump();
                }
            }
        }
    }

    /// Keeps the stack's next deadline in the timer queue, so TCP timers
    /// run while every task sleeps.
    fn arm_netstack_timer(&mut self) {
        let Some(n) = &self.netstack else {
            return;
        };
        let Some(at) = n.poll_at_if_touched() else {
            return;
        };
        if self.timers.deadline(&TimerAction::NetStack) != at {
            match at {
                Some(t) => self.timers.arm(t, TimerAction::NetStack),
                None => self.timers.cancel(&TimerAction::NetStack),
            }
        }
    }

    /// A host child that is not a stub exited (the gofer). The sandbox
    /// serves on, as Linux does when a file server goes away: what needs
    /// the gofer fails with EIO from now on (direct file access, tmpfs,
    /// pipes and sockets keep working), and the workload decides.
    fn on_foreign_exit(&mut self, pid: i32, status: i32) {
        if Some(pid) == self.config.gofer_pid {
            self.log.line(&format!(
                "gofer (pid {pid}) exited with status {status:#x}: file operations that need it fail with EIO from now on"
            ));
        }
    }
}
