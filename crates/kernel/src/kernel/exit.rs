//! Exit: of threads, of processes, and waiting for children.

use std::rc::Rc;

use super::signal::{CLD_DUMPED, CLD_EXITED, CLD_KILLED, SA_NOCLDWAIT, SIG_IGN, SigInfo};
use super::task::TaskState;
use super::timer::TimerAction;
use super::{Kernel, Pid, Tid, waitq};
use crate::errno::{Errno, SysResult};
use crate::platform::Platform;

/// A wait status word for exit code `code`.
pub fn exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

/// Exit code of the sandbox for an init wait status: the code, or
/// 128+N when killed by signal N (what `atoll run` reports).
pub fn exit_code_of(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

impl Kernel {
    /// exit_group / fatal signal: every thread of `tgid` exits with `status`.
    pub fn group_exit(&mut self, tgid: Pid, status: i32) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        if g.group_exit.is_some() || g.is_zombie() {
            return;
        }
        g.group_exit = Some(status);
        g.stopped = false;
        let threads = g.threads.clone();
        for t in threads {
            let Some(task) = self.tasks.get_mut(&t) else {
                continue;
            };
            task.exiting = true;
            match task.state {
                TaskState::Running => {
                    let h = task.host;
                    self.platform.interrupt(h);
                }
                TaskState::Blocked | TaskState::JobStopped => self.exit_task(t),
                TaskState::Traced => {
                    // A fatal signal ends the ptrace stop; the exit then
                    // stops at PTRACE_EVENT_EXIT if the tracer asked.
                    if let Some(tr) = task.ptrace.as_mut() {
                        tr.stop = None;
                        tr.report = None;
                    }
                    task.state = TaskState::InKernel;
                    self.exit_task(t)
                }
                // The task in the kernel exits when it returns to user mode.
                TaskState::InKernel => {}
            }
        }
    }

    /// A thread ends: its host thread goes, and the process with it if it
    /// was the last one.
    pub fn exit_task(&mut self, tid: Tid) {
        // PTRACE_O_TRACEEXIT: the tracer sees the task before it goes.
        if self.ptrace_exit_stop(tid) {
            return;
        }
        // Robust futexes first: the list lives in memory that goes with
        // the task; then its PI locks with waiters go to the first waiter.
        self.exit_robust_list(tid);
        self.exit_pi_state_list(tid);
        let Some(t) = self.tasks.remove(&tid) else {
            return;
        };
        self.host_tids.remove(&t.host);
        self.yama_thread_gone(tid);
        self.futexes.forget(tid);
        self.timers.cancel(&TimerAction::Wake(tid));
        // CLONE_CHILD_CLEARTID: zero the tid word and wake a joiner.
        if t.clear_child_tid != 0 && Rc::strong_count(&t.mm) > 1 {
            let key = {
                let mm = t.mm.borrow();
                if mm.write_val(t.clear_child_tid, &0u32).is_ok() {
                    super::futex::key_of(&mm, t.clear_child_tid)
                } else {
                    None
                }
            };
            if let Some(key) = key {
                self.futex_wake(key, 1, !0);
            }
        }
        if let Some(p) = t.vfork_parent
            && let Some(pt) = self.tasks.get_mut(&p)
        {
            pt.sys.woken = true;
            waitq::wake(p);
        }
        let space = t.mm.borrow().space;
        let last_user = Rc::strong_count(&t.mm) == 1;
        let host = t.host;
        let tgid = t.tgid;
        let cpu = t.cpu_time.snapshot(std::time::Instant::now());
        let tracer = t.ptrace.as_ref().map(|p| p.tracer);
        // The address space's memory is freed after its stub is killed
        // (below): freed memory waits for the stubs killed before it
        // (`MemoryFile::defer_release`).
        let mm = t.mm.clone();
        drop(t);
        self.ptrace_tracer_exited(tid);
        if let Some(tracer) = tracer {
            if tid == tgid {
                // The process's exit is the tracer's to hear of first
                // (group_died), once every thread is gone.
                if let Some(g) = self.groups.get_mut(&tgid) {
                    g.leader_tracer = Some(tracer);
                }
            } else {
                let status = self
                    .groups
                    .get(&tgid)
                    .and_then(|g| g.group_exit)
                    .unwrap_or(0);
                self.ptrace_record_exit(tid, tracer, status, false);
            }
        }
        if last_user {
            self.platform.drop_space(space);
        } else {
            self.platform.drop_thread(host);
        }
        drop(mm);
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        g.children_cpu.exited_threads.add(cpu);
        g.threads.retain(|x| *x != tid);
        // The children this thread created: Linux's parent is the thread.
        let children = g.children.clone();
        let kids: Vec<Pid> = children
            .into_iter()
            .filter(|c| self.groups.get(c).is_some_and(|cg| cg.parent_thread == tid))
            .collect();
        let uid = self.groups[&tgid].cred.uid;
        let g = self.groups.get_mut(&tgid).unwrap();
        if g.threads.is_empty() {
            self.group_died(tgid);
        } else if let [last] = g.threads[..] {
            // An exec waiting for the other threads to go goes on.
            let execing = self.tasks.get(&last).is_some_and(|t| {
                t.state == TaskState::Blocked
                    && t.blocked_on.is_some_and(|(nr, _)| {
                        nr == libc::SYS_execve as u64 || nr == libc::SYS_execveat as u64
                    })
            });
            if execing {
                self.task_mut(last).sys.woken = true;
                super::waitq::wake(last);
            }
        }
        self.parent_thread_exited(tgid, uid, &kids);
    }

    /// A thread of `tgid` (uid `uid`) exited: the children it created
    /// (`kids`) go to another thread of its process (group_died gave them
    /// to the reaper if none is left), and those that asked for
    /// PR_SET_PDEATHSIG get their signal (Linux's forget_original_parent).
    fn parent_thread_exited(&mut self, tgid: Pid, uid: u32, kids: &[Pid]) {
        let heir = self
            .groups
            .get(&tgid)
            .and_then(|g| g.threads.first().copied());
        for &c in kids {
            let Some(cg) = self.groups.get_mut(&c) else {
                continue;
            };
            if let Some(h) = heir {
                cg.parent_thread = h;
            }
            let sigs: Vec<i32> = cg
                .threads
                .iter()
                .filter_map(|t| self.tasks.get(t))
                .map(|t| t.pdeath_signal)
                .filter(|s| *s != 0)
                .collect();
            for sig in sigs {
                let info = SigInfo::user(sig, super::signal::SI_USER, tgid, uid);
                let _ = self.send_group(c, info);
            }
        }
    }

    /// The last thread of `tgid` exited: it becomes a zombie for its
    /// parent, its children go to the sandbox's init.
    fn group_died(&mut self, tgid: Pid) {
        // Its POSIX record locks go with it; pidfds see it exit; its
        // SEM_UNDO adjustments, shm_rmid_forced.
        crate::vfs::lock::release_process(tgid, None);
        super::pidfd::process_exited();
        self.ipc_process_exited(tgid);
        // A session leader's exit hangs up its controlling terminal.
        if self.groups[&tgid].sid == tgid {
            crate::vfs::pty::session_ended(tgid);
        }
        let (status, parent, children) = {
            let g = self.groups.get_mut(&tgid).unwrap();
            let status = g.group_exit.unwrap_or(0);
            g.zombie = Some(status);
            (status, g.parent, std::mem::take(&mut g.children))
        };
        if tgid == 1 {
            self.init_status = Some(status);
            self.log.line(&format!(
                "init exited with status {}: stopping the sandbox",
                exit_code_of(status)
            ));
            // Like the death of a pid namespace's init: everyone goes.
            let others: Vec<Pid> = self.groups.keys().copied().filter(|p| *p != 1).collect();
            for p in others {
                self.group_exit(p, libc::SIGKILL);
            }
            self.groups.remove(&1);
            return;
        }
        // Orphans go to their pid namespace's init (which reaps them if it
        // waits); a pod container's init that dies takes its namespace
        // with it (pod.rs), so its orphans have no one (and vanish).
        let ns_init = self.ns_init(super::pidns::ns_of(tgid));
        let reaper = if ns_init == tgid { 0 } else { ns_init };
        for c in children {
            if let Some(cg) = self.groups.get_mut(&c) {
                cg.parent = reaper;
                cg.parent_thread = reaper;
            }
            if let Some(rg) = self.groups.get_mut(&reaper) {
                rg.children.push(c);
                rg.child_waitq.notify_all();
            } else if let Some(cg) = self.groups.get(&c)
                && cg.is_zombie()
            {
                self.groups.remove(&c);
            }
        }
        // Exited tracees this process had not waited for: a process
        // held for it goes to its real parent now.
        let held: Vec<Tid> = std::mem::take(&mut self.groups.get_mut(&tgid).unwrap().traced_exits)
            .into_iter()
            .filter(|e| e.held)
            .map(|e| e.tid)
            .collect();
        for h in held {
            self.ptrace_release_held(h);
        }
        // A traced process: a tracer other than the parent hears of the
        // exit first; the parent once the tracer has waited for it.
        let leader_tracer = self.groups[&tgid].leader_tracer;
        if let Some(tr) = leader_tracer
            && self.tasks.get(&tr).is_some_and(|t| t.tgid != parent)
            && self.ptrace_record_exit(tgid, tr, status, true)
        {
            self.groups.get_mut(&tgid).unwrap().ptrace_held = true;
            return;
        }
        self.tell_parent_of_exit(tgid);
    }

    /// Tells the parent of dead process `tgid`, or lets it vanish if
    /// nobody will wait (processes started by `atoll exec` report to
    /// their control connection).
    pub fn tell_parent_of_exit(&mut self, tgid: Pid) {
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        let (status, parent, exit_signal) = (g.zombie.unwrap_or(0), g.parent, g.exit_signal);
        let Some(pg) = self.groups.get(&parent) else {
            super::control_proto::exec_exited(self, tgid, status);
            self.groups.remove(&tgid);
            return;
        };
        let pt = pg.threads.first().copied();
        let auto_reap = match pt {
            Some(pt) => {
                let a = self.task(pt).sighand.borrow().get(libc::SIGCHLD);
                a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0
            }
            None => true,
        };
        pg.child_waitq.notify_all();
        if exit_signal > 0 && pt.is_some() {
            let code = if status & 0x7f == 0 {
                CLD_EXITED
            } else if status & 0x80 != 0 {
                CLD_DUMPED
            } else {
                CLD_KILLED
            };
            let st = if code == CLD_EXITED {
                (status >> 8) & 0xff
            } else {
                status & 0x7f
            };
            let uid = self.groups[&tgid].cred.uid;
            let mut info = SigInfo::child(code, tgid, uid, st);
            info.raw[0..4].copy_from_slice(&exit_signal.to_ne_bytes());
            let _ = self.send_group(parent, info);
        }
        if auto_reap {
            self.release(tgid, false);
        }
    }

    /// Removes a zombie a wait collected: its times and its waited-for
    /// children's count as the parent's children's (RUSAGE_CHILDREN).
    pub fn reap(&mut self, child: Pid) {
        self.release(child, true);
    }

    /// Removes a zombie; `waited`: its times go to the parent's children's
    /// (an auto-reaped child's never do: getrusage(2) counts only the
    /// children waited for).
    fn release(&mut self, child: Pid, waited: bool) {
        super::pidfd::process_exited();
        if let Some(g) = self.groups.remove(&child)
            && let Some(pg) = self.groups.get_mut(&g.parent)
        {
            pg.children.retain(|c| *c != child);
            if !waited {
                return;
            }
            pg.children_cpu
                .reaped_children
                .add(g.children_cpu.exited_threads);
            pg.children_cpu
                .reaped_children
                .add(g.children_cpu.reaped_children);
        }
    }

    /// wait4/waitid: a child of `tid`'s process in a reportable state.
    /// Returns it, or None with WNOHANG; EBLOCK to sleep.
    pub fn wait_child(&mut self, tid: Tid, sel: WaitSel, opts: i32) -> SysResult<Option<Waited>> {
        let tgid = self.task(tid).tgid;
        let my_pgid = self.groups[&tgid].pgid;
        let children = self.groups[&tgid].children.clone();
        let matching: Vec<Pid> = children
            .into_iter()
            .filter(|c| {
                let Some(g) = self.groups.get(c) else {
                    return false;
                };
                // A child this process traces is waited for whatever its
                // exit signal (Linux 4.7's "assume __WALL if the child is
                // traced"), also once dead.
                let tracer = match self.tasks.get(c) {
                    Some(t) => t.ptrace.as_ref().map(|p| p.tracer),
                    None => g.leader_tracer,
                };
                let traced = tracer.and_then(|t| self.tasks.get(&t)).map(|t| t.tgid) == Some(tgid);
                let all = opts & libc::__WALL != 0 || traced;
                // __WNOTHREAD: only the children this thread created.
                if opts & libc::__WNOTHREAD != 0 && g.parent_thread != tid {
                    return false;
                }
                let clone_child = g.exit_signal != libc::SIGCHLD;
                if !all && (clone_child != (opts & libc::__WCLONE != 0)) {
                    return false;
                }
                match sel {
                    WaitSel::Any => true,
                    WaitSel::Pid(p) => *c == p,
                    WaitSel::Pgid(pg) => g.pgid == if pg == 0 { my_pgid } else { pg },
                }
            })
            .collect();
        // Tasks this process traces (any thread of it: Linux's do_wait
        // looks at every thread's tracees), live or exited.
        let sel_ok = |t: Tid, pgid: Option<Pid>| match sel {
            WaitSel::Any => true,
            WaitSel::Pid(p) => t == p,
            WaitSel::Pgid(pg) => pgid == Some(if pg == 0 { my_pgid } else { pg }),
        };
        let tracees: Vec<Tid> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.ptrace.is_some())
            .map(|(tid, _)| *tid)
            .filter(|t| self.tracer_group(*t) == Some(tgid))
            .filter(|t| sel_ok(*t, self.groups.get(&self.task(*t).tgid).map(|g| g.pgid)))
            .collect();
        let exits: Vec<super::ptrace::TracedExit> = self.groups[&tgid]
            .traced_exits
            .iter()
            .copied()
            .filter(|e| sel_ok(e.tid, self.groups.get(&e.tid).map(|g| g.pgid)))
            .collect();
        if let Some(e) = exits.first()
            && opts & libc::WEXITED != 0
        {
            let e = *e;
            if opts & libc::WNOWAIT == 0 {
                self.groups
                    .get_mut(&tgid)
                    .unwrap()
                    .traced_exits
                    .retain(|x| x.tid != e.tid);
                if e.held {
                    self.ptrace_release_held(e.tid);
                }
            }
            let (code, _) = super::ptrace::exit_code_status(e.status);
            return Ok(Some(Waited {
                pid: e.tid,
                status: e.status,
                code,
                cpu: Default::default(),
            }));
        }
        for t in &tracees {
            let report = self.task(*t).ptrace.as_ref().and_then(|p| p.report);
            if let Some(status) = report {
                if opts & libc::WNOWAIT == 0 {
                    self.task_mut(*t).ptrace.as_mut().unwrap().report = None;
                }
                return Ok(Some(Waited {
                    pid: *t,
                    status,
                    code: super::ptrace::CLD_TRAPPED,
                    cpu: Default::default(),
                }));
            }
        }
        // Without WEXITED a zombie is nothing to wait for (Linux's
        // wait_consider_task): only live children keep a wait from ECHILD.
        if tracees.is_empty()
            && exits.is_empty()
            && (matching.is_empty()
                || (opts & libc::WEXITED == 0
                    && matching.iter().all(|c| self.groups[c].is_zombie())))
        {
            return Err(Errno::ECHILD);
        }
        for c in &matching {
            let g = &self.groups[c];
            if let Some(status) = g.zombie
                && opts & libc::WEXITED != 0
                && !g.ptrace_held
            {
                let code = if status & 0x7f == 0 {
                    CLD_EXITED
                } else if status & 0x80 != 0 {
                    CLD_DUMPED
                } else {
                    CLD_KILLED
                };
                let mut cpu = self.process_cpu(*c);
                cpu.add(self.children_cpu(*c));
                if opts & libc::WNOWAIT == 0 {
                    self.reap(*c);
                }
                return Ok(Some(Waited {
                    pid: *c,
                    status,
                    code,
                    cpu,
                }));
            }
        }
        for c in &matching {
            let mut cpu = self.process_cpu(*c);
            cpu.add(self.children_cpu(*c));
            let g = self.groups.get_mut(c).unwrap();
            if opts & libc::WUNTRACED != 0
                && let Some(sig) = g.stop_report
            {
                if opts & libc::WNOWAIT == 0 {
                    g.stop_report = None;
                }
                return Ok(Some(Waited {
                    pid: *c,
                    status: (sig << 8) | 0x7f,
                    code: super::signal::CLD_STOPPED,
                    cpu,
                }));
            }
            if opts & libc::WCONTINUED != 0 && g.continued_report {
                if opts & libc::WNOWAIT == 0 {
                    g.continued_report = false;
                }
                return Ok(Some(Waited {
                    pid: *c,
                    status: 0xffff,
                    code: super::signal::CLD_CONTINUED,
                    cpu,
                }));
            }
        }
        if opts & libc::WNOHANG != 0 {
            return Ok(None);
        }
        let q = self.groups[&tgid].child_waitq.clone();
        q.add(tid, !0);
        Err(Errno::EBLOCK)
    }
}

/// A child a wait reports.
#[derive(Clone, Copy, Debug)]
pub struct Waited {
    pub pid: Pid,
    /// The wait status word.
    pub status: i32,
    /// si_code (CLD_EXITED, ...).
    pub code: i32,
    /// Its CPU time and its reaped children's (wait4's rusage).
    pub cpu: super::cputime::Times,
}

/// Which children a wait is for.
#[derive(Clone, Copy, Debug)]
pub enum WaitSel {
    Any,
    Pid(Pid),
    /// Process group (0: the caller's).
    Pgid(Pid),
}
