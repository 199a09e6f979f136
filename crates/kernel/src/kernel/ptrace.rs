//! ptrace between tasks of one sandbox (gVisor's kernel/ptrace.go is the
//! model): a tracee's stops (signal delivery, syscall entry and exit,
//! PTRACE_EVENT_*, group stop) park its thread in the kernel and are
//! reported to the tracer's wait; the tracer reads and changes the state
//! the kernel keeps for the stopped task (registers, memory through the
//! task's address space, its siginfo). The host's ptrace is never used
//! for this: the host thread of a stopped tracee simply is not resumed.

use super::signal::{SA_NOCLDSTOP, SIG_IGN, SigInfo};
use super::task::TaskState;
use super::{Kernel, Pid, Tid};
use crate::errno::{Errno, SysResult};
use crate::platform::Platform;

pub const PTRACE_EVENT_FORK: i32 = 1;
pub const PTRACE_EVENT_VFORK: i32 = 2;
pub const PTRACE_EVENT_CLONE: i32 = 3;
pub const PTRACE_EVENT_EXEC: i32 = 4;
pub const PTRACE_EVENT_VFORK_DONE: i32 = 5;
pub const PTRACE_EVENT_EXIT: i32 = 6;
pub const PTRACE_EVENT_STOP: i32 = 128;

pub const O_TRACESYSGOOD: u32 = 1;
pub const O_TRACEFORK: u32 = 2;
pub const O_TRACEVFORK: u32 = 4;
pub const O_TRACECLONE: u32 = 8;
pub const O_TRACEEXEC: u32 = 0x10;
pub const O_TRACEVFORKDONE: u32 = 0x20;
pub const O_TRACEEXIT: u32 = 0x40;
pub const O_TRACESECCOMP: u32 = 0x80;
pub const O_EXITKILL: u32 = 0x10_0000;
pub const O_SUSPEND_SECCOMP: u32 = 0x20_0000;
/// Every option PTRACE_SETOPTIONS accepts (others are EINVAL).
pub const O_ALL: u32 = O_TRACESYSGOOD
    | O_TRACEFORK
    | O_TRACEVFORK
    | O_TRACECLONE
    | O_TRACEEXEC
    | O_TRACEVFORKDONE
    | O_TRACEEXIT
    | O_TRACESECCOMP
    | O_EXITKILL
    | O_SUSPEND_SECCOMP;

/// si_code of SIGCHLD for a ptrace stop.
pub const CLD_TRAPPED: i32 = 4;

/// Where a stopped tracee is, which decides how it goes on when resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// Signal-delivery stop: the signal in `siginfo` is about to be
    /// delivered; the tracer decides which (if any) is.
    Signal,
    /// Syscall-enter stop: the syscall in the registers runs on resume.
    SyscallEnter,
    /// Syscall-enter stop of PTRACE_SYSEMU: the syscall never runs; the
    /// task goes on with the registers its tracer left.
    SysemuEnter,
    /// Syscall-exit stop: the result is in rax.
    SyscallExit,
    /// PTRACE_EVENT_* stop inside a syscall (fork, clone, exec): the
    /// syscall's exit path goes on after it.
    Event,
    /// PTRACE_EVENT_* stop of a syscall that then sleeps (vfork).
    EventBlocked,
    /// Group stop, or PTRACE_EVENT_STOP of PTRACE_INTERRUPT / a new
    /// auto-attached seized child.
    Group,
    /// PTRACE_EVENT_EXIT: the exit goes on after it.
    Exit,
    /// A single step's report at a signal handler's first instruction
    /// (Linux's ptrace_notify(SIGTRAP) from signal_delivered): resumed,
    /// the task goes on to user mode; a signal given is not delivered.
    HandlerStep,
}

/// A traced task's ptrace state.
#[derive(Clone)]
pub struct Tracee {
    /// The tracing task (a thread of the tracer process).
    pub tracer: Tid,
    pub seized: bool,
    pub options: u32,
    pub stop: Option<StopKind>,
    /// The wait status of the current stop until the tracer's wait takes it.
    pub report: Option<i32>,
    /// The stop's siginfo (None for a group stop: GETSIGINFO is EINVAL,
    /// which is how tracers tell a group stop from a signal stop).
    pub siginfo: Option<SigInfo>,
    pub eventmsg: u64,
    /// Resumed with PTRACE_SYSCALL: stop at the next syscall entry/exit.
    pub syscall_stops: bool,
    /// Resumed with PTRACE_SYSEMU: stop at the next syscall entry, which
    /// is not run.
    pub sysemu: bool,
    /// The signal the tracer chose at a signal-delivery stop.
    pub inject: Option<SigInfo>,
    /// PTRACE_INTERRUPT not acted on yet.
    pub interrupt: bool,
    /// The current group stop was reported and the tracer resumed the
    /// task: it runs until the next group stop.
    pub group_stop_done: bool,
    /// PTRACE_EVENT_* to stop for when the syscall in progress returns.
    pub pending_event: Option<(i32, u64)>,
    pub exit_event_done: bool,
    /// PTRACE_LISTEN: stopped, but a SIGCONT re-traps it.
    pub listening: bool,
    /// Resumed with PTRACE_SINGLESTEP: the task runs with the trap flag
    /// and stops (SIGTRAP) after one instruction, or at the exit of the
    /// syscall that instruction made.
    pub step: bool,
    /// The kernel set the trap flag for `step` (the task's own flags did
    /// not have it): cleared again from the registers the task stops with.
    pub forced_tf: bool,
    /// A step went into the platform's code (a patched syscall site's
    /// jump to its trampoline): it runs on without the trap flag to its
    /// syscall stop, whose exit then reports the step.
    pub step_paused: bool,
    /// A step the tracer just asked for has not returned to user mode
    /// yet (a patched site's `mov` is stepped then, and only then: not
    /// when a fault at the site sends the task back to its jump).
    pub step_fresh: bool,
}

impl Tracee {
    pub fn new(tracer: Tid, seized: bool, options: u32) -> Tracee {
        Tracee {
            tracer,
            seized,
            options,
            stop: None,
            report: None,
            siginfo: None,
            eventmsg: 0,
            syscall_stops: false,
            sysemu: false,
            inject: None,
            interrupt: false,
            group_stop_done: false,
            pending_event: None,
            exit_event_done: false,
            listening: false,
            step: false,
            forced_tf: false,
            step_paused: false,
            step_fresh: false,
        }
    }
}

/// How a tracer resumes a stopped tracee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    Cont,
    /// PTRACE_SYSCALL: stop at the next syscall entry and exit.
    Syscall,
    /// PTRACE_SYSEMU: stop at the next syscall entry, skipping it.
    Sysemu,
    /// PTRACE_SINGLESTEP: stop after one instruction.
    Step,
    /// PTRACE_SYSEMU_SINGLESTEP: stop after one instruction, or at the
    /// entry of the syscall it makes, which is skipped (and reports no
    /// step at its exit: the tracer saw it at its entry).
    SysemuStep,
    Detach,
}

/// The x86 trap flag: the CPU raises a debug trap after each instruction.
pub const EFLAGS_TF: u64 = 0x100;
/// si_code of a single-step trap (SIGTRAP).
pub const TRAP_TRACE: i32 = 2;
/// si_code of the SIGTRAP a single-stepped syscall instruction reports at
/// the syscall's exit (x86's user_single_step_report).
pub const TRAP_BRKPT: i32 = 1;

/// A wait status for a stop with signal `sig` and ptrace event `event`.
pub fn stop_status(sig: i32, event: i32) -> i32 {
    (event << 16) | ((sig & 0xff) << 8) | 0x7f
}

/// An exited tracee its tracer has not waited for yet.
#[derive(Clone, Copy, Debug)]
pub struct TracedExit {
    pub tid: Tid,
    pub status: i32,
    /// The whole process died and its real parent (another process)
    /// hears of it only once the tracer has (Linux's order).
    pub held: bool,
}

impl Kernel {
    pub fn traced(&self, tid: Tid) -> bool {
        self.tasks.get(&tid).is_some_and(|t| t.ptrace.is_some())
    }

    fn tracee(&mut self, tid: Tid) -> &mut Tracee {
        self.task_mut(tid).ptrace.as_mut().expect("traced")
    }

    /// The process the tracer of `tid` belongs to.
    pub fn tracer_group(&self, tid: Tid) -> Option<Pid> {
        let tr = self.task(tid).ptrace.as_ref()?.tracer;
        Some(self.tasks.get(&tr)?.tgid)
    }

    /// Parks `tid` in a ptrace stop and tells its tracer.
    pub fn ptrace_stop(&mut self, tid: Tid, kind: StopKind, status: i32, info: Option<SigInfo>) {
        let host = self.task(tid).host;
        self.platform.parked(host);
        let t = self.task_mut(tid);
        t.state = TaskState::Traced;
        let tr = t.ptrace.as_mut().expect("traced");
        tr.stop = Some(kind);
        tr.report = Some(status);
        tr.siginfo = info;
        tr.listening = false;
        self.notify_tracer(tid, CLD_TRAPPED, (status >> 8) & 0xff);
    }

    /// Wakes the tracer's waits and sends it SIGCHLD (unless it asked not
    /// to hear of stops).
    pub fn notify_tracer(&mut self, tid: Tid, code: i32, status: i32) {
        let Some(tgid) = self.tracer_group(tid) else {
            return;
        };
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        g.child_waitq.notify_all();
        let Some(&pt) = g.threads.first() else {
            return;
        };
        let act = self.task(pt).sighand.borrow().get(libc::SIGCHLD);
        if code != CLD_TRAPPED || (act.flags & SA_NOCLDSTOP == 0 && act.handler != SIG_IGN) {
            let uid = self.group_of(tid).cred.uid;
            let _ = self.send_group(tgid, SigInfo::child(code, tid, uid, status));
        }
    }

    /// Syscall-enter stop, if the tracer asked for it: true when the
    /// task stopped (the syscall runs when it is resumed).
    pub fn ptrace_syscall_enter(&mut self, tid: Tid) -> bool {
        let Some(tr) = &self.task(tid).ptrace else {
            return false;
        };
        if !tr.syscall_stops && !tr.sysemu {
            return false;
        }
        let kind = if tr.sysemu {
            StopKind::SysemuEnter
        } else {
            StopKind::SyscallEnter
        };
        let sig = self.syscall_trap_sig(tid);
        // The tracer sees -ENOSYS in rax at entry, as on Linux.
        self.task_mut(tid).regs.rax = Errno::ENOSYS.ret();
        let info = SigInfo::new(libc::SIGTRAP, sig);
        self.ptrace_stop(tid, kind, stop_status(sig, 0), Some(info));
        true
    }

    fn syscall_trap_sig(&self, tid: Tid) -> i32 {
        let tr = self.task(tid).ptrace.as_ref().expect("traced");
        if tr.options & O_TRACESYSGOOD != 0 {
            libc::SIGTRAP | 0x80
        } else {
            libc::SIGTRAP
        }
    }

    /// After a syscall finished (result in rax): its PTRACE_EVENT stop,
    /// then its syscall-exit stop. True when the task stopped.
    pub fn ptrace_syscall_exit(&mut self, tid: Tid) -> bool {
        let Some(tr) = self.task_mut(tid).ptrace.as_mut() else {
            return false;
        };
        if let Some((event, msg)) = tr.pending_event.take() {
            tr.eventmsg = msg;
            let mut info = SigInfo::new(libc::SIGTRAP, libc::SIGTRAP | (event << 8));
            info.raw[16..20].copy_from_slice(&tid.to_ne_bytes());
            self.ptrace_stop(
                tid,
                StopKind::Event,
                stop_status(libc::SIGTRAP, event),
                Some(info),
            );
            return true;
        }
        if tr.step {
            // The stepped instruction was this syscall: Linux reports the
            // step at the syscall's exit, before the next instruction.
            self.force_fault(tid, libc::SIGTRAP, TRAP_BRKPT, 0);
            return false;
        }
        if !tr.syscall_stops {
            return false;
        }
        let sig = self.syscall_trap_sig(tid);
        let info = SigInfo::new(libc::SIGTRAP, sig);
        self.ptrace_stop(tid, StopKind::SyscallExit, stop_status(sig, 0), Some(info));
        true
    }

    /// A PTRACE_EVENT of a syscall that goes to sleep (vfork): stop now;
    /// resumed, the task sleeps on (and re-runs its syscall once).
    pub fn ptrace_event_while_blocked(&mut self, tid: Tid) {
        let Some(tr) = self.task_mut(tid).ptrace.as_mut() else {
            return;
        };
        let Some((event, msg)) = tr.pending_event.take() else {
            return;
        };
        tr.eventmsg = msg;
        let info = SigInfo::new(libc::SIGTRAP, libc::SIGTRAP | (event << 8));
        self.ptrace_stop(
            tid,
            StopKind::EventBlocked,
            stop_status(libc::SIGTRAP, event),
            Some(info),
        );
    }

    /// Called on the way back to user mode (`resume`): a stop the tracee
    /// owes its tracer before a signal is dequeued. True when stopped.
    pub fn ptrace_pending_stop(&mut self, tid: Tid) -> bool {
        let tgid = self.task(tid).tgid;
        let (stopped, stop_sig) = {
            let g = &self.groups[&tgid];
            (g.stopped, g.stop_sig)
        };
        let tr = self.tracee(tid);
        let seized = tr.seized;
        if tr.interrupt {
            tr.interrupt = false;
            let (sig, info) = if stopped {
                (stop_sig, None)
            } else {
                (
                    libc::SIGTRAP,
                    Some(SigInfo::new(
                        libc::SIGTRAP,
                        libc::SIGTRAP | (PTRACE_EVENT_STOP << 8),
                    )),
                )
            };
            tr.group_stop_done = false;
            self.ptrace_stop(
                tid,
                StopKind::Group,
                stop_status(sig, PTRACE_EVENT_STOP),
                info,
            );
            return true;
        }
        if stopped && !tr.group_stop_done {
            let event = if seized { PTRACE_EVENT_STOP } else { 0 };
            self.ptrace_stop(tid, StopKind::Group, stop_status(stop_sig, event), None);
            return true;
        }
        false
    }

    /// Signal-delivery stop for `info` (never SIGKILL).
    pub fn ptrace_signal_stop(&mut self, tid: Tid, info: SigInfo) {
        let sig = info.signo();
        self.ptrace_stop(tid, StopKind::Signal, stop_status(sig, 0), Some(info));
    }

    /// PTRACE_EVENT_EXIT stop before the task exits, if asked for: true
    /// when the task stopped (its exit goes on when resumed).
    pub fn ptrace_exit_stop(&mut self, tid: Tid) -> bool {
        let Some(t) = self.tasks.get(&tid) else {
            return false;
        };
        let Some(tr) = &t.ptrace else {
            return false;
        };
        if tr.options & O_TRACEEXIT == 0 || tr.exit_event_done || t.state == TaskState::Traced {
            return false;
        }
        let status = self
            .groups
            .get(&t.tgid)
            .and_then(|g| g.group_exit)
            .unwrap_or(0);
        let tr = self.tracee(tid);
        tr.exit_event_done = true;
        tr.eventmsg = status as u32 as u64;
        let info = SigInfo::new(libc::SIGTRAP, libc::SIGTRAP | (PTRACE_EVENT_EXIT << 8));
        self.ptrace_stop(
            tid,
            StopKind::Exit,
            stop_status(libc::SIGTRAP, PTRACE_EVENT_EXIT),
            Some(info),
        );
        true
    }

    /// The registers a task runs with: a single-stepped tracee's get the
    /// trap flag (the platform returns to user mode with it, so the CPU
    /// traps after one instruction: Linux's user_enable_single_step).
    pub fn ptrace_user_regs(&mut self, tid: Tid) -> crate::arch::Regs {
        let t = self.task_mut(tid);
        let mut regs = t.regs;
        if let Some(tr) = t.ptrace.as_mut().filter(|tr| tr.step && !tr.step_paused) {
            tr.forced_tf = regs.eflags & EFLAGS_TF == 0;
            regs.eflags |= EFLAGS_TF;
        }
        regs
    }

    /// After a handler frame was set up for `tid`: a single-stepped task
    /// stops there, at the handler's first instruction, before running
    /// it (x86 Linux). True when it stopped.
    pub fn ptrace_step_into_handler(&mut self, tid: Tid) -> bool {
        if !self.task(tid).ptrace.as_ref().is_some_and(|tr| tr.step) {
            return false;
        }
        let mut info = SigInfo::new(libc::SIGTRAP, libc::SIGTRAP);
        let pid = self.pid_out(tid, tid);
        let uid = self.group_of(tid).cred.uid;
        info.raw[16..20].copy_from_slice(&pid.to_ne_bytes());
        info.raw[20..24].copy_from_slice(&uid.to_ne_bytes());
        self.ptrace_stop(
            tid,
            StopKind::HandlerStep,
            stop_status(libc::SIGTRAP, 0),
            Some(info),
        );
        true
    }

    /// `tid` returns to user mode: a single step starting at a patched
    /// syscall site's `mov` is done by the kernel (usertrap.rs) and its
    /// trap queued. True when it was.
    pub fn ptrace_step_patched_site(&mut self, tid: Tid) -> bool {
        let stepping = match self.task_mut(tid).ptrace.as_mut() {
            Some(tr) => std::mem::take(&mut tr.step_fresh) && tr.step && !tr.step_paused,
            None => false,
        };
        if !stepping || !self.usertrap_step_mov(tid) {
            return false;
        }
        self.force_fault(tid, libc::SIGTRAP, TRAP_TRACE, 0);
        true
    }

    /// A single-step trap of `tid` (just stopped) landed in a patched
    /// syscall site's trampoline or in the platform's code above the
    /// workload's addresses. Never reported there (the tracer would step
    /// the stub): true when the task is to go on, without the trap flag,
    /// to the syscall that site makes, whose exit reports the step (the
    /// site's `mov` and `syscall` are then one step).
    pub fn ptrace_step_into_platform(&mut self, tid: Tid) -> bool {
        let rip = self.task(tid).regs.rip;
        let table = self.task_mm(tid).borrow().usertrap;
        let platform = rip >= crate::arch::USER_END || super::usertrap::in_table(table, rip);
        match self.task_mut(tid).ptrace.as_mut() {
            Some(tr) if tr.step && platform => {
                tr.step_paused = true;
                true
            }
            _ => false,
        }
    }

    /// A task stopped in the kernel: the trap flag the kernel set for a
    /// single step leaves its registers (a tracer, a signal frame, a fork
    /// see the task's own flags).
    pub fn ptrace_user_stopped(&mut self, tid: Tid) {
        let t = self.task_mut(tid);
        if let Some(tr) = t.ptrace.as_mut() {
            tr.step_paused = false;
            if tr.forced_tf {
                tr.forced_tf = false;
                t.regs.eflags &= !EFLAGS_TF;
            }
        }
    }

    /// The tracer resumes a stopped tracee (PTRACE_CONT, PTRACE_SYSCALL,
    /// PTRACE_DETACH): `sig` is the signal to deliver (signal-delivery
    /// stop) or send (syscall stops); 0 for none.
    pub fn ptrace_resume(&mut self, tid: Tid, sig: i32, how: Resume) {
        let detach = how == Resume::Detach;
        let tracer_tgid = self.tracer_group(tid).unwrap_or(0);
        let uid = self
            .tracer_group(tid)
            .map(|g| self.groups[&g].cred.uid)
            .unwrap_or(0);
        let t = self.task_mut(tid);
        let stopped = t.state == TaskState::Traced;
        let tr = t.ptrace.as_mut().expect("traced");
        let kind = tr.stop.take();
        tr.report = None;
        tr.syscall_stops = how == Resume::Syscall;
        tr.sysemu = matches!(how, Resume::Sysemu | Resume::SysemuStep);
        tr.step = matches!(how, Resume::Step | Resume::SysemuStep);
        tr.step_fresh = tr.step;
        tr.step_paused = false;
        tr.listening = false;
        let siginfo = tr.siginfo.take();
        if kind == Some(StopKind::Group) {
            tr.group_stop_done = true;
        }
        if kind == Some(StopKind::Signal) && sig != 0 {
            let info = match siginfo {
                Some(i) if i.signo() == sig => i,
                _ => SigInfo::user(sig, super::signal::SI_USER, tracer_tgid, uid),
            };
            tr.inject = Some(info);
        }
        if detach {
            let inject = tr.inject.take();
            t.ptrace = None;
            if let Some(i) = inject {
                // Delivered as if sent to the task now that it is untraced.
                t.pending.push(i);
            }
        }
        if !stopped {
            return;
        }
        self.task_mut(tid).state = TaskState::InKernel;
        if sig != 0
            && matches!(
                kind,
                Some(StopKind::SyscallEnter | StopKind::SysemuEnter | StopKind::SyscallExit)
            )
        {
            let _ = self.send_task(
                tid,
                SigInfo::user(sig, super::signal::SI_USER, tracer_tgid, uid),
            );
        }
        match kind {
            Some(StopKind::SyscallEnter) => self.syscall_body(tid),
            Some(StopKind::EventBlocked) => {
                // Back to sleep; a wake-up that came while stopped was
                // kept in its syscall state, so run it once more.
                self.task_mut(tid).state = TaskState::Blocked;
                super::waitq::wake(tid);
            }
            Some(StopKind::Event) => {
                if !self.ptrace_syscall_exit(tid) {
                    self.resume(tid);
                }
            }
            _ => self.resume(tid),
        }
    }

    /// The tracer's task `tracer` exits: its tracees go free (or die,
    /// with PTRACE_O_EXITKILL).
    pub fn ptrace_tracer_exited(&mut self, tracer: Tid) {
        let tracees: Vec<Tid> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.ptrace.as_ref().is_some_and(|p| p.tracer == tracer))
            .map(|(tid, _)| *tid)
            .collect();
        for t in tracees {
            if !self.tasks.contains_key(&t) {
                continue;
            }
            let kill = self
                .task(t)
                .ptrace
                .as_ref()
                .is_some_and(|p| p.options & O_EXITKILL != 0);
            if kill {
                let tgid = self.task(t).tgid;
                self.group_exit(tgid, libc::SIGKILL);
            }
            if self.tasks.get(&t).is_some_and(|x| x.ptrace.is_some()) {
                self.ptrace_resume(t, 0, Resume::Detach);
            }
        }
    }

    /// Records the exit of a traced task for its tracer's wait. Returns
    /// whether the tracer will report it (false: the real parent does).
    pub fn ptrace_record_exit(&mut self, tid: Tid, tracer: Tid, status: i32, held: bool) -> bool {
        let Some(tgid) = self.tasks.get(&tracer).map(|t| t.tgid) else {
            return false;
        };
        let Some(g) = self.groups.get_mut(&tgid) else {
            return false;
        };
        g.traced_exits.push(TracedExit { tid, status, held });
        g.child_waitq.notify_all();
        let (code, st) = exit_code_status(status);
        let uid = g.cred.uid;
        let _ = self.send_group(tgid, SigInfo::child(code, tid, uid, st));
        true
    }

    /// The tracer waited for a held process exit: now the real parent hears of it.
    pub fn ptrace_release_held(&mut self, tgid: Pid) {
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.ptrace_held = false;
            self.tell_parent_of_exit(tgid);
        }
    }

    /// Checks that `tid` may trace `target` (a task of another process
    /// of this sandbox): Linux's ptrace_may_access with its default policy,
    /// then Yama's scope 1 (yama.rs).
    pub fn ptrace_may_attach(&self, tid: Tid, target: Tid) -> SysResult<()> {
        let t = self.tasks.get(&target).ok_or(Errno::ESRCH)?;
        let me = self.task(tid);
        if t.tgid == me.tgid {
            return Err(Errno::EPERM);
        }
        if t.ptrace.is_some() || t.exiting {
            return Err(Errno::EPERM);
        }
        let g = self.groups.get(&t.tgid).ok_or(Errno::ESRCH)?;
        if g.group_exit.is_some() {
            return Err(Errno::EPERM);
        }
        self.ptrace_may_access(tid, target)
    }

    /// Whether `tid` may inspect and change task `target` as its tracer
    /// would (Linux's ptrace_may_access in PTRACE_MODE_ATTACH: for
    /// attaching, and for /proc/PID/mem): its own process always; another
    /// if the credentials match and it is dumpable, or with
    /// CAP_SYS_PTRACE; then Yama's scope 1.
    pub fn ptrace_may_access(&self, tid: Tid, target: Tid) -> SysResult<()> {
        let t = self.tasks.get(&target).ok_or(Errno::ESRCH)?;
        if t.tgid == self.task(tid).tgid {
            return Ok(());
        }
        let g = self.groups.get(&t.tgid).ok_or(Errno::ESRCH)?;
        let mine = self.cred(tid);
        let theirs = &g.cred;
        let same = mine.uid == theirs.euid
            && mine.uid == theirs.suid
            && mine.uid == theirs.uid
            && mine.gid == theirs.egid
            && mine.gid == theirs.sgid
            && mine.gid == theirs.gid;
        let cap = mine.capable(crate::vfs::perm::cap::SYS_PTRACE);
        if !(cap || (same && g.dumpable)) {
            return Err(Errno::EPERM);
        }
        self.yama_may_attach(tid, target)
    }
}

/// si_code and si_status of SIGCHLD for an exit wait status.
pub fn exit_code_status(status: i32) -> (i32, i32) {
    use super::signal::{CLD_DUMPED, CLD_EXITED, CLD_KILLED};
    if status & 0x7f == 0 {
        (CLD_EXITED, (status >> 8) & 0xff)
    } else if status & 0x80 != 0 {
        (CLD_DUMPED, status & 0x7f)
    } else {
        (CLD_KILLED, status & 0x7f)
    }
}
