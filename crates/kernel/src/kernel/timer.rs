//! Timers: deadlines of sleeping syscalls, interval timers, POSIX timers
//! and timerfds, in one ordered queue the event loop sleeps on.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::{Pid, Tid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// A blocked syscall's deadline: wake the task, it checks the clock.
    Wake(Tid),
    /// ITIMER_REAL / alarm of a thread group.
    ItimerReal(Pid),
    /// A look at a process's ITIMER_VIRTUAL and ITIMER_PROF.
    CpuItimers(Pid),
    /// A POSIX timer (timer_create) of a thread group.
    Posix(Pid, i32),
    /// A timerfd (by id).
    TimerFd(u64),
    /// The sandbox's TCP/IP stack has timers due (retransmits, delayed
    /// ACKs, TIME-WAIT).
    NetStack,
}

#[derive(Default)]
pub struct Timers {
    queue: BTreeMap<(Instant, u64), TimerAction>,
    seq: u64,
    /// foldhash, not SipHash: every served syscall looks here (it
    /// cancels its task's wake-up timer).
    by_action: HashMap<TimerActionKey, (Instant, u64), foldhash::fast::RandomState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TimerActionKey {
    Wake(Tid),
    ItimerReal(Pid),
    CpuItimers(Pid),
    Posix(Pid, i32),
    TimerFd(u64),
    NetStack,
}

fn key_of(a: &TimerAction) -> TimerActionKey {
    match a {
        TimerAction::Wake(t) => TimerActionKey::Wake(*t),
        TimerAction::ItimerReal(p) => TimerActionKey::ItimerReal(*p),
        TimerAction::CpuItimers(p) => TimerActionKey::CpuItimers(*p),
        TimerAction::Posix(p, i) => TimerActionKey::Posix(*p, *i),
        TimerAction::TimerFd(i) => TimerActionKey::TimerFd(*i),
        TimerAction::NetStack => TimerActionKey::NetStack,
    }
}

impl Timers {
    /// Arms `action` at `at`, replacing an earlier arming of the same action.
    pub fn arm(&mut self, at: Instant, action: TimerAction) {
        self.cancel(&action);
        self.seq += 1;
        let k = (at, self.seq);
        self.by_action.insert(key_of(&action), k);
        self.queue.insert(k, action);
    }

    pub fn cancel(&mut self, action: &TimerAction) {
        if let Some(k) = self.by_action.remove(&key_of(action)) {
            self.queue.remove(&k);
        }
    }

    /// When `action` fires, if armed.
    pub fn deadline(&self, action: &TimerAction) -> Option<Instant> {
        self.by_action.get(&key_of(action)).map(|k| k.0)
    }

    /// Removes and returns every action due by `now`, with when it was
    /// due (periodic timers count their next period from it).
    pub fn expired(&mut self, now: Instant) -> Vec<(Instant, TimerAction)> {
        let mut out = Vec::new();
        while let Some((&k, _)) = self.queue.iter().next() {
            if k.0 > now {
                break;
            }
            let a = self.queue.remove(&k).unwrap();
            self.by_action.remove(&key_of(&a));
            out.push((k.0, a));
        }
        out
    }

    /// Time until the next deadline (zero if one is due), or None when no
    /// timer is armed. Not rounded: the event loop sleeps with nanosecond
    /// resolution, so a workload's 20 µs nanosleep (the Go runtime's
    /// scheduler sleeps that long) is not stretched to a millisecond.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.queue
            .keys()
            .next()
            .map(|(at, _)| at.saturating_duration_since(now))
    }
}

/// The instant `d` from now. Workload timeouts can be as long as they like
/// (centuries): past what an Instant holds, the deadline is a hundred
/// years away, which is never for the sandbox. Never panics.
pub fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

/// The next expiry of a periodic timer that was due at `due`: the first
/// period boundary after `now`, counted from `due` (Linux's
/// hrtimer_forward: periods do not drift by how late the kernel got to the
/// timer), and how many periods were missed on the way (overruns).
pub fn forward(due: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    let iv = interval.as_nanos().max(1);
    let behind = now.saturating_duration_since(due).as_nanos();
    let missed = behind / iv;
    let next = u64::try_from((missed + 1) * iv)
        .ok()
        .and_then(|ns| due.checked_add(Duration::from_nanos(ns)))
        .unwrap_or_else(|| after(interval));
    (next, u64::try_from(missed).unwrap_or(u64::MAX))
}

/// A timespec as a Duration (EINVAL for negative or out-of-range fields).
pub fn duration_of(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub fn timespec_of(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_keeps_sub_millisecond_deadlines() {
        let mut t = Timers::default();
        let now = Instant::now();
        assert_eq!(t.timeout(now), None);
        t.arm(now + Duration::from_micros(20), TimerAction::Wake(7));
        assert_eq!(t.timeout(now), Some(Duration::from_micros(20)));
        t.arm(now + Duration::from_micros(5), TimerAction::Wake(8));
        assert_eq!(t.timeout(now), Some(Duration::from_micros(5)));
        // A deadline already past is due now.
        assert_eq!(
            t.timeout(now + Duration::from_millis(1)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            t.expired(now + Duration::from_micros(10)),
            [(now + Duration::from_micros(5), TimerAction::Wake(8))]
        );
        assert_eq!(t.timeout(now), Some(Duration::from_micros(20)));
    }

    #[test]
    fn periods_count_from_when_the_timer_was_due() {
        let due = Instant::now();
        let ms = Duration::from_millis;
        // Served 3 ms late: the next period still ends 10 ms after `due`.
        assert_eq!(forward(due, ms(10), due + ms(3)), (due + ms(10), 0));
        // Served 25 ms late: two periods missed, the next ends at 30 ms.
        assert_eq!(forward(due, ms(10), due + ms(25)), (due + ms(30), 2));
        // Exactly on a boundary: the next one.
        assert_eq!(forward(due, ms(10), due + ms(10)), (due + ms(20), 1));
    }
}
