//! Clocks, sleeps and timers.

use std::time::{Duration, Instant};

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::PosixTimer;
use crate::kernel::timer::{TimerAction, after, duration_of, timespec_of};
use crate::kernel::{Kernel, Tid};
use crate::vfs::File;
use crate::vfs::timerfd::TimerFd;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("clock_gettime", sys_clock_gettime, Full, ""),
        ("clock_getres", sys_clock_getres, Full, ""),
        ("gettimeofday", sys_gettimeofday, Full, ""),
        ("time", sys_time, Full, ""),
        ("nanosleep", sys_nanosleep, Full, ""),
        ("clock_nanosleep", sys_clock_nanosleep, Full, ""),
        ("alarm", sys_alarm, Full, ""),
        (
            "setitimer",
            sys_setitimer,
            Full,
            "ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU time (wall time its threads run workload code), looked at when the running threads can reach the deadline; signals go to a running thread",
        ),
        ("getitimer", sys_getitimer, Full, ""),
        (
            "timer_create",
            sys_timer_create,
            Partial,
            "SIGEV_NONE/SIGNAL/THREAD_ID",
        ),
        ("timer_settime", sys_timer_settime, Full, ""),
        ("timer_gettime", sys_timer_gettime, Full, ""),
        ("timer_getoverrun", sys_timer_getoverrun, Full, ""),
        ("timer_delete", sys_timer_delete, Full, ""),
        ("timerfd_create", sys_timerfd_create, Full, ""),
        (
            "timerfd_settime",
            sys_timerfd_settime,
            Partial,
            "TFD_TIMER_ABSTIME as relative to now",
        ),
        ("timerfd_gettime", sys_timerfd_gettime, Full, ""),
    ]
}

/// The CPU time a CPU-time clock id names, as Linux decodes it
/// (posix-cpu-timers): CLOCK_PROCESS/THREAD_CPUTIME_ID, or the encoding
/// of clock_getcpuclockid/pthread_getcpuclockid: `~pid << 3 | perthread
/// << 2 | which` (which: 0 PROF, 1 VIRT, 2 SCHED). A thread clock is
/// readable only within the caller's process; a process clock names the
/// caller's process or a process id (a thread group leader).
fn cpu_clock(k: &Kernel, tid: Tid, clk: i32) -> SysResult<Duration> {
    let (pid, thread, which) = match clk {
        libc::CLOCK_PROCESS_CPUTIME_ID => (0, false, 2),
        libc::CLOCK_THREAD_CPUTIME_ID => (0, true, 2),
        c if c < 0 => (!(c >> 3), c & 4 != 0, c & 3),
        _ => return Err(Errno::EINVAL),
    };
    if which == 3 {
        return Err(Errno::EINVAL);
    }
    let me = k.task(tid);
    let times = if thread {
        let target = if pid == 0 { tid } else { pid };
        match k.tasks.get(&target) {
            Some(t) if t.tgid == me.tgid => k.thread_cpu(target),
            _ => return Err(Errno::EINVAL),
        }
    } else {
        // A process id, or the caller's own thread id.
        let tgid = match pid {
            0 => me.tgid,
            p if k.groups.contains_key(&p) => p,
            p if p == tid => me.tgid,
            _ => return Err(Errno::EINVAL),
        };
        k.process_cpu(tgid)
    };
    Ok(if which == 1 {
        times.user
    } else {
        times.total()
    })
}

pub fn read_clock(k: &Kernel, tid: Tid, clk: i32) -> SysResult<libc::timespec> {
    let host_clk = match clk {
        libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_REALTIME_COARSE
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI
        | libc::CLOCK_REALTIME_ALARM
        | libc::CLOCK_BOOTTIME_ALARM => clk,
        _ => return cpu_clock(k, tid, clk).map(timespec_of),
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills ts.
    if unsafe { libc::clock_gettime(host_clk, &mut ts) } < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

fn sys_clock_gettime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let ts = read_clock(k, tid, a[0] as i32)?;
    k.task_mm(tid).borrow().write_val(a[1], &ts)?;
    Ok(0)
}

fn sys_clock_getres(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    read_clock(k, tid, a[0] as i32)?;
    if a[1] != 0 {
        let coarse = matches!(
            a[0] as i32,
            libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE
        );
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: if coarse { 4_000_000 } else { 1 },
        };
        k.task_mm(tid).borrow().write_val(a[1], &ts)?;
    }
    Ok(0)
}

fn sys_gettimeofday(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let ts = read_clock(k, tid, libc::CLOCK_REALTIME)?;
    if a[0] != 0 {
        let tv = libc::timeval {
            tv_sec: ts.tv_sec,
            tv_usec: ts.tv_nsec / 1000,
        };
        k.task_mm(tid).borrow().write_val(a[0], &tv)?;
    }
    if a[1] != 0 {
        k.task_mm(tid).borrow().write_val(a[1], &[0i32; 2])?;
    }
    Ok(0)
}

fn sys_time(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let ts = read_clock(k, tid, libc::CLOCK_REALTIME)?;
    if a[0] != 0 {
        k.task_mm(tid).borrow().write_val(a[0], &ts.tv_sec)?;
    }
    Ok(ts.tv_sec as u64)
}

/// Sleeps until the deadline set on the first run.
fn sleep_until(
    k: &mut Kernel,
    tid: Tid,
    first: impl FnOnce(&Kernel) -> SysResult<Instant>,
) -> SysResult<u64> {
    let t = k.task(tid);
    if !t.sys.started {
        let deadline = first(k)?;
        let t = k.task_mut(tid);
        t.sys.started = true;
        t.sys.deadline = Some(deadline);
    }
    let t = k.task(tid);
    if t.sys.deadline.is_some_and(|d| Instant::now() >= d) {
        return Ok(0);
    }
    Err(Errno::EBLOCK)
}

fn rel(k: &Kernel, tid: Tid, addr: u64) -> SysResult<Duration> {
    let ts: libc::timespec = k.task_mm(tid).borrow().read_val(addr)?;
    duration_of(&ts).ok_or(Errno::EINVAL)
}

fn sys_nanosleep(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    sleep_until(k, tid, |k| Ok(after(rel(k, tid, a[0])?)))
}

fn sys_clock_nanosleep(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let clk = a[0] as i32;
    // No sleeping on a thread's CPU clock (Linux's posix_cpu_nsleep).
    if clk == libc::CLOCK_THREAD_CPUTIME_ID || (clk < 0 && clk & 4 != 0) {
        return Err(Errno::EINVAL);
    }
    let abs = a[1] as i32 & libc::TIMER_ABSTIME != 0;
    sleep_until(k, tid, |k| {
        let d = rel(k, tid, a[2])?;
        if abs {
            let now = read_clock(k, tid, clk)?;
            let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
            Ok(after(d.saturating_sub(now)))
        } else {
            Ok(after(d))
        }
    })
}

fn itimer_remaining(k: &Kernel, pid: i32) -> Duration {
    k.timers
        .deadline(&TimerAction::ItimerReal(pid))
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or_default()
}

fn sys_alarm(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let pid = k.task(tid).tgid;
    let left = itimer_remaining(k, pid);
    let old = left.as_secs()
        + u64::from(left.subsec_nanos() >= 500_000_000 || (left.as_secs() == 0 && !left.is_zero()));
    k.group_of_mut(tid).itimer_real_interval = Duration::ZERO;
    if a[0] == 0 {
        k.timers.cancel(&TimerAction::ItimerReal(pid));
    } else {
        k.timers.arm(
            after(Duration::from_secs(a[0])),
            TimerAction::ItimerReal(pid),
        );
    }
    Ok(old)
}

fn tv(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: d.subsec_micros() as i64,
    }
}

fn from_tv(t: &libc::timeval) -> SysResult<Duration> {
    if t.tv_sec < 0 || !(0..1_000_000).contains(&t.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000))
}

fn sys_getitimer(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let pid = k.task(tid).tgid;
    let v = match a[0] as i32 {
        libc::ITIMER_REAL => libc::itimerval {
            it_interval: tv(k.groups[&pid].itimer_real_interval),
            it_value: tv(itimer_remaining(k, pid)),
        },
        w @ (libc::ITIMER_VIRTUAL | libc::ITIMER_PROF) => {
            let (left, interval) = k.cpu_itimer_get(pid, w);
            libc::itimerval {
                it_interval: tv(interval),
                it_value: tv(left),
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    k.task_mm(tid).borrow().write_val(a[1], &v)?;
    Ok(0)
}

fn sys_setitimer(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let pid = k.task(tid).tgid;
    let which = a[0] as i32;
    if !matches!(
        which,
        libc::ITIMER_REAL | libc::ITIMER_VIRTUAL | libc::ITIMER_PROF
    ) {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    if a[2] != 0 {
        let old = if which == libc::ITIMER_REAL {
            libc::itimerval {
                it_interval: tv(k.groups[&pid].itimer_real_interval),
                it_value: tv(itimer_remaining(k, pid)),
            }
        } else {
            let (left, interval) = k.cpu_itimer_get(pid, which);
            libc::itimerval {
                it_interval: tv(interval),
                it_value: tv(left),
            }
        };
        mm.borrow().write_val(a[2], &old)?;
    }
    if a[1] != 0 && which != libc::ITIMER_REAL {
        let new: libc::itimerval = mm.borrow().read_val(a[1])?;
        let value = from_tv(&new.it_value)?;
        let interval = from_tv(&new.it_interval)?;
        k.cpu_itimer_set(pid, which, value, interval);
    }
    if a[1] != 0 && which == libc::ITIMER_REAL {
        let new: libc::itimerval = mm.borrow().read_val(a[1])?;
        let value = from_tv(&new.it_value)?;
        let interval = from_tv(&new.it_interval)?;
        k.group_of_mut(tid).itimer_real_interval = interval;
        if value.is_zero() {
            k.timers.cancel(&TimerAction::ItimerReal(pid));
        } else {
            k.timers.arm(after(value), TimerAction::ItimerReal(pid));
        }
    }
    Ok(0)
}

/// Timers one process may have (Linux's limit is memory; this one keeps
/// the kernel's bounded).
const MAX_POSIX_TIMERS: usize = 1 << 16;

fn sys_timer_create(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let clock = a[0] as i32;
    read_clock(k, tid, clock)?;
    let mm = k.task_mm(tid);
    let (signo, value, target) = if a[1] == 0 {
        (libc::SIGALRM, None, None)
    } else {
        // struct sigevent: value(8), signo(4), notify(4), tid(4)
        let ev = mm.borrow().read_vec(a[1], 24)?;
        let value = u64::from_ne_bytes(ev[0..8].try_into().unwrap());
        let signo = i32::from_ne_bytes(ev[8..12].try_into().unwrap());
        let notify = i32::from_ne_bytes(ev[12..16].try_into().unwrap());
        let ntid = i32::from_ne_bytes(ev[16..20].try_into().unwrap());
        match notify {
            libc::SIGEV_NONE => (0, Some(value), None),
            libc::SIGEV_SIGNAL => (signo, Some(value), None),
            4 /* SIGEV_THREAD_ID */ => (signo, Some(value), Some(ntid)),
            _ => return Err(Errno::EINVAL),
        }
    };
    if signo != 0 && !(1..=64).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    let g = k.group_of_mut(tid);
    // A bound on what one process can make the kernel hold.
    if g.posix_timers.len() >= MAX_POSIX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let id = match g.posix_timers.last_key_value() {
        None => 0,
        Some((&last, _)) if last < i32::MAX => last + 1,
        _ => (0..).find(|i| !g.posix_timers.contains_key(i)).unwrap(),
    };
    g.posix_timers.insert(
        id,
        PosixTimer {
            clock,
            signo,
            value: value.unwrap_or(id as u64),
            target_tid: target,
            interval: Duration::ZERO,
            overrun: 0,
        },
    );
    mm.borrow().write_val(a[2], &id)?;
    Ok(0)
}

fn timer_get(k: &Kernel, tid: Tid, id: i32) -> SysResult<(Duration, Duration)> {
    let pid = k.task(tid).tgid;
    let t = k.groups[&pid].posix_timers.get(&id).ok_or(Errno::EINVAL)?;
    let left = k
        .timers
        .deadline(&TimerAction::Posix(pid, id))
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or_default();
    Ok((t.interval, left))
}

fn its(interval: Duration, value: Duration) -> libc::itimerspec {
    libc::itimerspec {
        it_interval: timespec_of(interval),
        it_value: timespec_of(value),
    }
}

fn sys_timer_settime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let id = a[0] as i32;
    let (oi, ov) = timer_get(k, tid, id)?;
    let mm = k.task_mm(tid);
    let new: libc::itimerspec = mm.borrow().read_val(a[2])?;
    let mut value = duration_of(&new.it_value).ok_or(Errno::EINVAL)?;
    let interval = duration_of(&new.it_interval).ok_or(Errno::EINVAL)?;
    let pid = k.task(tid).tgid;
    if a[1] as i32 & libc::TIMER_ABSTIME != 0 && !value.is_zero() {
        let clock = k.groups[&pid].posix_timers[&id].clock;
        let now = read_clock(k, tid, clock)?;
        value = value
            .saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
            .max(Duration::from_nanos(1));
    }
    k.group_of_mut(tid)
        .posix_timers
        .get_mut(&id)
        .unwrap()
        .interval = interval;
    if value.is_zero() {
        k.timers.cancel(&TimerAction::Posix(pid, id));
    } else {
        k.timers.arm(after(value), TimerAction::Posix(pid, id));
    }
    if a[3] != 0 {
        mm.borrow().write_val(a[3], &its(oi, ov))?;
    }
    Ok(0)
}

fn sys_timer_gettime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (i, v) = timer_get(k, tid, a[0] as i32)?;
    k.task_mm(tid).borrow().write_val(a[1], &its(i, v))?;
    Ok(0)
}

fn sys_timer_getoverrun(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    timer_get(k, tid, a[0] as i32)?;
    Ok(0)
}

fn sys_timer_delete(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let id = a[0] as i32;
    let pid = k.task(tid).tgid;
    k.group_of_mut(tid)
        .posix_timers
        .remove(&id)
        .ok_or(Errno::EINVAL)?;
    k.timers.cancel(&TimerAction::Posix(pid, id));
    Ok(0)
}

fn sys_timerfd_create(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let clock = a[0] as i32;
    if !matches!(
        clock,
        libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_BOOTTIME_ALARM
    ) {
        return Err(Errno::EINVAL);
    }
    let flags = a[1] as i32;
    if flags & !(libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let t = TimerFd::new(clock);
    let f = File::new(t, libc::O_RDWR | (flags & libc::O_NONBLOCK), None);
    super::fs::install_fd(k, tid, f, flags & libc::TFD_CLOEXEC != 0)
}

fn timerfd_of(k: &Kernel, tid: Tid, fd: i32) -> SysResult<std::rc::Rc<File>> {
    let f = super::fs::get_file(k, tid, fd)?;
    if f.ops.as_any().downcast_ref::<TimerFd>().is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

fn sys_timerfd_settime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = timerfd_of(k, tid, a[0] as i32)?;
    let t = f.ops.as_any().downcast_ref::<TimerFd>().unwrap();
    let mm = k.task_mm(tid);
    let new: libc::itimerspec = mm.borrow().read_val(a[2])?;
    let mut value = duration_of(&new.it_value).ok_or(Errno::EINVAL)?;
    let interval = duration_of(&new.it_interval).ok_or(Errno::EINVAL)?;
    if a[3] != 0 {
        let old = its(t.interval.get(), t.remaining(k));
        mm.borrow().write_val(a[3], &old)?;
    }
    if a[1] as i32 & libc::TFD_TIMER_ABSTIME != 0 && !value.is_zero() {
        let now = read_clock(k, tid, t.clock)?;
        value = value
            .saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
            .max(Duration::from_nanos(1));
    }
    t.set(k, value, interval);
    Ok(0)
}

fn sys_timerfd_gettime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = timerfd_of(k, tid, a[0] as i32)?;
    let t = f.ops.as_any().downcast_ref::<TimerFd>().unwrap();
    let v = its(t.interval.get(), t.remaining(k));
    k.task_mm(tid).borrow().write_val(a[1], &v)?;
    Ok(0)
}
