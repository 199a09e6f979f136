//! ITIMER_VIRTUAL and ITIMER_PROF: interval timers on a process's CPU time
//! (user time, and user plus system time, as cputime.rs accounts them),
//! raising SIGVTALRM and SIGPROF.
//!
//! CPU time is not an event the kernel sees: a task running workload code
//! makes no stop until its next syscall. So while a CPU timer is armed the
//! process is looked at again when its CPU time can first reach the
//! deadline (every CHECK_EVERY of wall time at most, and whenever it reads
//! or sets a timer). Each thread running workload code or being served in
//! the kernel adds one second of CPU time per second of wall time
//! (cputime.rs), so with N threads running the deadline comes N times
//! sooner than with one: the next look is the time left divided by the
//! threads running now. Between looks a thread
//! may start running, so a timer can still be late by a fraction of the
//! time left (Linux's granularity is a scheduler tick, 4 ms at HZ=250).

use std::time::Duration;

use super::signal::{SI_KERNEL, SigInfo};
use super::task::TaskState;
use super::timer::{TimerAction, after};
use super::{Kernel, Pid};

/// How often a process with an armed CPU timer is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

/// How soon a timer still due after firing fires again: Linux's tick at
/// HZ=250.
const CATCH_UP: Duration = Duration::from_millis(4);

/// When to look at a process again whose CPU timer is `left` from its
/// deadline while `running` of its threads run workload code: when the
/// deadline can first be reached at that rate, at least 100 us (a look
/// costs a timer wake-up) and at most CHECK_EVERY (a thread may start
/// running meanwhile) away.
fn next_look(left: Duration, running: u32) -> Duration {
    (left / running.max(1)).clamp(Duration::from_micros(100), CHECK_EVERY)
}

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
                // The next deadline one interval on, even if that is
                // already past (a late look): as Linux's check_cpu_itimer,
                // which fires once per look and so catches up over the
                // next looks instead of dropping expiries.
                t.deadline = (!t.interval.is_zero()).then(|| d + t.interval);
            }
            if let Some(d) = t.deadline {
                let left = d.saturating_sub(now);
                next = Some(next.map_or(left, |x: Duration| x.min(left)));
            }
        }
        match next {
            // Still due after firing (a late look): the next expiry a
            // tick later, as Linux catches up one expiry per tick; not at
            // once, where it would find the thread that took this one
            // still in its handler with the signal blocked.
            Some(left) if left.is_zero() => self
                .timers
                .arm(after(CATCH_UP), TimerAction::CpuItimers(pid)),
            // A look when the running threads can first reach the
            // deadline (next_look).
            Some(left) => self.timers.arm(
                after(next_look(left, self.threads_running(pid))),
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

    /// How many of the process's threads gain CPU time now: those running
    /// workload code (user time) or stopped in the kernel (system time
    /// once served), not those asleep in a syscall or stopped. At least
    /// one: a process whose threads all sleep gains CPU time no faster
    /// than one thread once one of them wakes.
    fn threads_running(&self, pid: Pid) -> u32 {
        let Some(g) = self.groups.get(&pid) else {
            return 1;
        };
        let n = g
            .threads
            .iter()
            .filter_map(|t| self.tasks.get(t))
            .filter(|t| matches!(t.state, TaskState::Running | TaskState::InKernel))
            .count();
        (n as u32).max(1)
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
        // A thread that has the signal pending already is still to take
        // it (the platform has yet to interrupt it): another running one
        // takes this one, as Linux's wants_signal passes over threads
        // with signals pending.
        let running = cand
            .clone()
            .filter_map(|t| {
                let s = t.cpu_time.app_since?;
                Some((t.pending.set.has(sig), s, t.tid))
            })
            .min()
            .map(|(_, s, tid)| (s, tid));
        if let Some((_, tid)) = running {
            return Some(tid);
        }
        cand.filter_map(|t| t.cpu_time.app_until.map(|u| (u, t.tid)))
            .max()
            .map(|(_, tid)| tid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_look_comes_sooner_with_more_threads_running() {
        let ms = Duration::from_millis;
        // One thread: the deadline is the time left away.
        assert_eq!(next_look(ms(8), 1), ms(8));
        // Four threads use 8 ms of CPU time in 2 ms of wall time.
        assert_eq!(next_look(ms(8), 4), ms(2));
        // Never further than a check interval, never busier than 100 us.
        assert_eq!(next_look(ms(500), 2), CHECK_EVERY);
        assert_eq!(next_look(Duration::ZERO, 1), Duration::from_micros(100));
        assert_eq!(next_look(ms(1), 0), ms(1));
    }
}
