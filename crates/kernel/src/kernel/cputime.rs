//! CPU-time accounting of tasks, as gVisor's Sentry does it: a task's user
//! time is the wall time it spends running workload code (from the end of
//! one syscall to the start of the next), its system time the time the
//! kernel spends serving its syscalls. Host CPU clocks cannot be used:
//! Linux gives one thread's clock only to threads of its own process, and
//! stub threads are not the kernel's. Under host CPU contention the wall
//! time of a running task is an upper bound of its CPU time.

use std::time::{Duration, Instant};

use super::{Kernel, Pid, Tid};

/// User and system time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Times {
    pub user: Duration,
    pub sys: Duration,
}

impl Times {
    pub fn total(&self) -> Duration {
        self.user + self.sys
    }

    pub fn add(&mut self, o: Times) {
        self.user += o.user;
        self.sys += o.sys;
    }
}

/// One task's account, and the CPUs it may run on.
#[derive(Clone, Debug, Default)]
pub struct TaskCpu {
    pub times: Times,
    /// Running workload code since then (None: in the kernel or asleep).
    pub app_since: Option<Instant>,
    /// When it last stopped running workload code (who used the CPU
    /// lately, for CPU timers' signals).
    pub app_until: Option<Instant>,
    /// sched_setaffinity's mask (None: every CPU of the sandbox); kept
    /// across fork and exec as Linux keeps it.
    pub affinity: Option<u64>,
    /// Scheduling attributes (setpriority, sched_setscheduler), per
    /// thread, inherited by children and kept across exec, as Linux's.
    /// The kernel records and reports them; the host schedules the stub
    /// threads as it schedules them all.
    pub sched: Sched,
}

/// A thread's scheduling attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sched {
    /// Nice value, -20..=19.
    pub nice: i32,
    /// SCHED_OTHER, SCHED_BATCH or SCHED_IDLE (realtime policies are
    /// refused).
    pub policy: i32,
    /// SCHED_RESET_ON_FORK: children start with SCHED_OTHER and a
    /// non-negative nice value, without the flag.
    pub reset_on_fork: bool,
}

impl Sched {
    /// What a child created by clone starts with.
    pub fn for_child(self) -> Sched {
        if !self.reset_on_fork {
            return self;
        }
        Sched {
            nice: self.nice.max(0),
            policy: libc::SCHED_OTHER,
            reset_on_fork: false,
        }
    }
}

impl TaskCpu {
    /// A task that starts running workload code now.
    pub fn running() -> TaskCpu {
        TaskCpu {
            times: Times::default(),
            app_since: Some(Instant::now()),
            app_until: None,
            affinity: None,
            sched: Sched::default(),
        }
    }

    /// The task stopped in the kernel at `now`.
    pub fn enter_kernel(&mut self, now: Instant) {
        if let Some(s) = self.app_since.take() {
            self.times.user += now.saturating_duration_since(s);
            self.app_until = Some(now);
        }
    }

    /// The kernel served it from `entered` to `now`; `resumes` when it
    /// goes back to workload code (not when it sleeps or is gone).
    pub fn leave_kernel(&mut self, entered: Instant, now: Instant, resumes: bool) {
        self.times.sys += now.saturating_duration_since(entered);
        if resumes {
            self.app_since = Some(now);
        }
    }

    /// Times so far, counting a stretch of workload code still running.
    pub fn snapshot(&self, now: Instant) -> Times {
        let mut t = self.times;
        if let Some(s) = self.app_since {
            t.user += now.saturating_duration_since(s);
        }
        t
    }
}

/// A process's account beyond its live threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupCpu {
    /// Threads of the process that have exited.
    pub exited_threads: Times,
    /// Children (and their descendants) the process has reaped.
    pub reaped_children: Times,
}

impl Kernel {
    /// CPU time of one thread.
    pub fn thread_cpu(&self, tid: Tid) -> Times {
        self.tasks
            .get(&tid)
            .map(|t| t.cpu_time.snapshot(Instant::now()))
            .unwrap_or_default()
    }

    /// CPU time of a process: its live and exited threads.
    pub fn process_cpu(&self, tgid: Pid) -> Times {
        let Some(g) = self.groups.get(&tgid) else {
            return Times::default();
        };
        let mut t = g.children_cpu.exited_threads;
        for tid in &g.threads {
            t.add(self.thread_cpu(*tid));
        }
        t
    }

    /// CPU time of a process's reaped children.
    pub fn children_cpu(&self, tgid: Pid) -> Times {
        self.groups
            .get(&tgid)
            .map(|g| g.children_cpu.reaped_children)
            .unwrap_or_default()
    }
}
