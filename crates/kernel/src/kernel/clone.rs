//! fork, vfork and clone: new tasks and processes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::signal::{SigQueue, SigSet};
use super::task::{Task, TaskState, ThreadGroup};
use super::waitq::WaitQueue;
use super::{Kernel, Tid};
use crate::errno::{Errno, SysResult};
use crate::platform::Platform;

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x01000000;
pub const CLONE_NEWCGROUP: u64 = 0x02000000;
pub const CLONE_NEWUTS: u64 = 0x04000000;
pub const CLONE_NEWIPC: u64 = 0x08000000;
pub const CLONE_NEWUSER: u64 = 0x10000000;
pub const CLONE_NEWPID: u64 = 0x20000000;
pub const CLONE_NEWNET: u64 = 0x40000000;
pub const CLONE_IO: u64 = 0x80000000;
pub const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
pub const NAMESPACE_FLAGS: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

pub struct CloneArgs {
    pub flags: u64,
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    pub exit_signal: i32,
}

impl Kernel {
    /// Creates a task from `parent` as clone(2) says; returns the child tid.
    pub fn do_clone(&mut self, parent: Tid, a: &CloneArgs) -> SysResult<Tid> {
        let f = a.flags;
        if f & NAMESPACE_FLAGS != 0 {
            // New namespaces are not offered inside the sandbox.
            return Err(Errno::EPERM);
        }
        if (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0)
            || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0)
        {
            return Err(Errno::EINVAL);
        }
        if f & CLONE_PIDFD != 0 {
            return Err(Errno::EINVAL);
        }
        // The new thread's FS base must be a user address (arch_prctl).
        if f & CLONE_SETTLS != 0 && a.tls >= crate::arch::USER_END {
            return Err(Errno::EPERM);
        }
        let p = self.task(parent);
        let ptgid = p.tgid;
        // RLIMIT_NPROC (the pids cgroup limits the stubs too).
        self.nproc_allows(parent)?;
        let tid = self.alloc_pid_in(super::pidns::ns_of(parent))?;
        let p = self.task(parent);
        let (p_mm, p_host, p_regs) = (p.mm.clone(), p.host, p.regs);
        let (p_files, p_fs, p_sighand) = (p.files.clone(), p.fs.clone(), p.sighand.clone());
        let (p_mask, p_altstack, p_comm) = (p.sigmask, p.altstack, p.comm.clone());
        let (p_affinity, p_sched) = (p.cpu_time.affinity, p.cpu_time.sched.for_child());
        let mm = if f & CLONE_VM != 0 {
            p_mm
        } else {
            let child = p_mm
                .borrow()
                .fork(&mut self.platform)
                .map_err(|e| Errno::from_io(&e))?;
            Rc::new(RefCell::new(child))
        };
        let space = mm.borrow().space;
        let host = match self.platform.new_thread(space) {
            Ok(h) => h,
            Err(e) => {
                if f & CLONE_VM == 0 {
                    self.platform.drop_space(space);
                }
                return Err(if e.raw_os_error() == Some(libc::EAGAIN) {
                    Errno::EAGAIN
                } else {
                    Errno::ENOMEM
                });
            }
        };
        if let Ok(fpu) = self.platform.get_fpu(p_host) {
            let _ = self.platform.set_fpu(host, &fpu);
        }
        let mut regs = p_regs;
        regs.rax = 0;
        if a.stack != 0 {
            regs.rsp = a.stack;
        }
        if f & CLONE_SETTLS != 0 {
            regs.fs_base = a.tls;
        }
        let files = if f & CLONE_FILES != 0 {
            p_files
        } else {
            Rc::new(RefCell::new(p_files.borrow().clone()))
        };
        let fs = if f & CLONE_FS != 0 {
            p_fs
        } else {
            Rc::new(RefCell::new(p_fs.borrow().clone()))
        };
        let sighand = if f & CLONE_SIGHAND != 0 {
            p_sighand
        } else {
            let h = p_sighand.borrow().clone();
            let h = Rc::new(RefCell::new(h));
            // clone3's CLONE_CLEAR_SIGHAND: handlers back to the default
            // (ignored signals stay ignored), as exec does.
            if f & CLONE_CLEAR_SIGHAND != 0 {
                h.borrow_mut().reset_for_exec();
            }
            h
        };
        let tgid = if f & CLONE_THREAD != 0 { ptgid } else { tid };
        let task = Task {
            tid,
            tgid,
            host,
            regs,
            callee_partial: false,
            mm: mm.clone(),
            files,
            fs,
            sighand,
            sigmask: p_mask,
            saved_mask: None,
            pending: SigQueue::default(),
            sigwait: SigSet::EMPTY,
            altstack: if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
                Default::default()
            } else {
                p_altstack
            },
            state: TaskState::InKernel,
            clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 {
                a.child_tid
            } else {
                0
            },
            robust_list: 0,
            blocked_on: None,
            sys: Default::default(),
            restart: None,
            vfork_parent: (f & CLONE_VFORK != 0).then_some(parent),
            comm: p_comm,
            exiting: false,
            cpu_time: super::cputime::TaskCpu {
                affinity: p_affinity,
                sched: p_sched,
                ..super::cputime::TaskCpu::running()
            },
            started: Instant::now(),
            ptrace: None,
            pdeath_signal: 0,
        };
        if f & CLONE_THREAD != 0 {
            self.groups.get_mut(&ptgid).unwrap().threads.push(tid);
        } else {
            let pg = &self.groups[&ptgid];
            let (parent_pid, parent_thread) = if f & CLONE_PARENT != 0 {
                (pg.parent, pg.parent_thread)
            } else {
                (ptgid, parent)
            };
            let g = ThreadGroup {
                tgid,
                parent: parent_pid,
                parent_thread,
                pgid: pg.pgid,
                sid: pg.sid,
                threads: vec![tid],
                children: Vec::new(),
                cred: pg.cred.clone(),
                rlimits: pg.rlimits,
                shared_pending: SigQueue::default(),
                exit_signal: a.exit_signal,
                group_exit: None,
                zombie: None,
                stopped: false,
                stop_report: None,
                stop_sig: 0,
                continued_report: false,
                traced_exits: Vec::new(),
                ptrace_held: false,
                leader_tracer: None,
                child_waitq: Rc::new(WaitQueue::new()),
                exe: pg.exe.clone(),
                cmdline: pg.cmdline.clone(),
                environ: pg.environ.clone(),
                start: Instant::now(),
                children_cpu: Default::default(),
                personality: pg.personality,
                subreaper: false,
                dumpable: pg.dumpable,
                ptracer: None,
                itimer_real_interval: Default::default(),
                cpu_itimers: Default::default(),
                posix_timers: Default::default(),
                container: pg.container,
            };
            self.groups.insert(tgid, g);
            if let Some(ppg) = self.groups.get_mut(&parent_pid) {
                ppg.children.push(tgid);
            }
        }
        self.tasks.insert(tid, task);
        self.host_tids.insert(host, tid);
        if f & CLONE_PARENT_SETTID != 0 {
            let _ = self
                .task_mm(parent)
                .borrow()
                .write_val(a.parent_tid, &(self.pid_out(parent, tid) as u32));
        }
        if f & CLONE_CHILD_SETTID != 0 {
            let _ = mm
                .borrow()
                .write_val(a.child_tid, &(self.pid_out(tid, tid) as u32));
        }
        self.ptrace_clone(parent, tid, f, a.exit_signal);
        self.resume(tid);
        Ok(tid)
    }

    /// PTRACE_O_TRACEFORK/VFORK/CLONE (or CLONE_PTRACE): the new task is
    /// traced by its parent's tracer from its first instruction, and the
    /// parent stops for the event when its syscall returns.
    fn ptrace_clone(&mut self, parent: Tid, child: Tid, f: u64, exit_signal: i32) {
        use super::ptrace::*;
        use super::signal::SigInfo;
        const CLONE_PTRACE: u64 = 0x2000;
        const CLONE_UNTRACED: u64 = 0x0080_0000;
        let Some(tr) = self.task(parent).ptrace.as_deref() else {
            return;
        };
        let (event, opt) = if f & CLONE_VFORK != 0 {
            (PTRACE_EVENT_VFORK, O_TRACEVFORK)
        } else if exit_signal != libc::SIGCHLD {
            (PTRACE_EVENT_CLONE, O_TRACECLONE)
        } else {
            (PTRACE_EVENT_FORK, O_TRACEFORK)
        };
        let traced = f & CLONE_UNTRACED == 0 && (tr.options & opt != 0 || f & CLONE_PTRACE != 0);
        if !traced {
            return;
        }
        let (tracer, seized, options) = (tr.tracer, tr.seized, tr.options);
        let report = tr.options & opt != 0;
        let mut new = Tracee::new(tracer, seized, options);
        if seized {
            new.interrupt = true;
        }
        let c = self.task_mut(child);
        if !seized {
            c.pending
                .push(SigInfo::new(libc::SIGSTOP, super::signal::SI_USER));
        }
        c.ptrace = Some(Box::new(new));
        if report {
            let p = self.task_mut(parent).ptrace.as_mut().expect("traced");
            p.pending_event = Some((event, child as u64));
        }
    }
}
