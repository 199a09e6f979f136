//! ITIMER_VIRTUAL and ITIMER_PROF: interval timers on a process's CPU time
//! (user time, and user plus system time, as cputime.rs accounts them),
//! raising SIGVTALRM and SIGPROF.
//!
//! CPU time is not an event the kernel sees: a task running workload code
//! makes no stop until its next syscall. So while a CPU timer is armed the
//! process is looked at again every CHECK_EVERY of wall time at most (and
//! whenever it reads or sets a timer); a timer expires at the first look
//! at or past its deadline, so it is late by up to CHECK_EVERY (Linux's
//! granularity is a scheduler tick, 1 to 10 ms).

use std::time::Duration;

use super::signal::{SI_KERNEL, SigInfo};
use super::timer::{TimerAction, after};
use super::{Kernel, Pid};

/// How often a process with an armed CPU timer is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

/// One CPU timer: a deadline in the process's CPU time, and the interval
/// it is re-armed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuItimer {
    pub deadline: Option<Duration>,
    pub interval: Duration,
}

/// Index of `which` (ITIMER_VIRTUAL or ITIMER_PROF) in a group's timers.
fn slot(which: i32) -> usize {
    if which == libc::ITIMER_VIRTUAL { 0 } else { 1 }
}

impl Kernel {
    /// The CPU time `which` counts for process `pid`.
    fn itimer_clock(&self, pid: Pid, which: i32) -> Duration {
        let t = self.process_cpu(pid);
        if which == libc::ITIMER_VIRTUAL {
            t.user
        } else {
            t.total()
        }
    }

    /// getitimer: (time left, interval).
    pub fn cpu_itimer_get(&mut self, pid: Pid, which: i32) -> (Duration, Duration) {
        self.cpu_itimers_check(pid);
        let Some(g) = self.groups.get(&pid) else {
            return Default::default();
        };
        let t = g.cpu_itimers[slot(which)];
        let left = match t.deadline {
            // A timer due and not yet seen reads as about to fire.
            Some(d) => d
                .saturating_sub(self.itimer_clock(pid, which))
                .max(Duration::from_micros(1)),
            None => Duration::ZERO,
        };
        (left, t.interval)
    }

    /// setitimer: arms (or with a zero value disarms) the timer.
    pub fn cpu_itimer_set(&mut self, pid: Pid, which: i32, value: Duration, interval: Duration) {
        let now = self.itimer_clock(pid, which);
        let Some(g) = self.groups.get_mut(&pid) else {
            return;
        };
        g.cpu_itimers[slot(which)] = CpuItimer {
            deadline: (!value.is_zero()).then(|| now + value),
            interval,
        };
        self.cpu_itimers_check(pid);
    }

    /// Fires the process's expired CPU timers and schedules the next look.
    pub fn cpu_itimers_check(&mut self, pid: Pid) {
        let mut fire = Vec::new();
        let mut next: Option<Duration> = None;
        for which in [libc::ITIMER_VIRTUAL, libc::ITIMER_PROF] {
            let now = self.itimer_clock(pid, which);
            let Some(g) = self.groups.get_mut(&pid) else {
                return;
            };
            if g.is_zombie() {
                return;
            }
            let t = &mut g.cpu_itimers[slot(which)];
            let Some(d) = t.deadline else {
                continue;
            };
            if now >= d {
                fire.push(which);
                t.deadline = if t.interval.is_zero() {
                    None
                } else {
                    // One signal per expiry seen, as Linux's overrun-less
                    // itimers: the next deadline is after now.
                    let mut n = d + t.interval;
                    if n <= now {
                        n = now + t.interval;
                    }
                    Some(n)
                };
            }
            if let Some(d) = t.deadline {
                let left = d.saturating_sub(now);
                next = Some(next.map_or(left, |x: Duration| x.min(left)));
            }
        }
        match next {
            // CPU time runs no faster than wall time per thread: a look
            // when the deadline could first be reached, at most a check
            // interval away.
            Some(left) => self.timers.arm(
                after(left.clamp(Duration::from_micros(100), CHECK_EVERY)),
                TimerAction::CpuItimers(pid),
            ),
            None => self.timers.cancel(&TimerAction::CpuItimers(pid)),
        }
        for which in fire {
            let sig = if which == libc::ITIMER_VIRTUAL {
                libc::SIGVTALRM
            } else {
                libc::SIGPROF
            };
            let info = SigInfo::new(sig, SI_KERNEL);
            let _ = match self.cpu_user(pid, sig) {
                Some(tid) => self.send_task(tid, info),
                None => self.send_group(pid, info),
            };
        }
    }

    /// The thread a CPU timer's signal goes to: as Linux, which raises it
    /// on the thread running when the tick finds it expired, the thread
    /// of the process running workload code now (the longest running if
    /// several), else the one that ran last; only threads that do not
    /// block it (None: let group delivery choose).
    fn cpu_user(&self, pid: Pid, sig: i32) -> Option<super::Tid> {
        let g = self.groups.get(&pid)?;
        let cand = g
            .threads
            .iter()
            .filter_map(|t| self.tasks.get(t))
            .filter(|t| !t.sigmask.has(sig));
        let running = cand
            .clone()
            .filter_map(|t| t.cpu_time.app_since.map(|s| (s, t.tid)))
            .min();
        if let Some((_, tid)) = running {
            return Some(tid);
        }
        cand.filter_map(|t| t.cpu_time.app_until.map(|u| (u, t.tid)))
            .max()
            .map(|(_, tid)| tid)
    }
}
