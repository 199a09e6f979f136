//! Waiting on many files: poll, select, epoll; and eventfd, signalfd.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigSet;
use crate::kernel::timer::duration_of;
use crate::kernel::{Kernel, Tid};
use crate::vfs::epoll::{Epoll, Interest};
use crate::vfs::eventfd::{EventFd, SignalFd};
use crate::vfs::file::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, wait_mask};
use crate::vfs::{File, IoVecs};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("poll", sys_poll, Full, ""),
        ("ppoll", sys_ppoll, Full, ""),
        ("select", sys_select, Full, ""),
        ("pselect6", sys_pselect6, Full, ""),
        ("epoll_create", sys_epoll_create, Full, ""),
        ("epoll_create1", sys_epoll_create1, Full, ""),
        (
            "epoll_ctl",
            sys_epoll_ctl,
            Partial,
            "EPOLLEXCLUSIVE and EPOLLWAKEUP accepted, no effect",
        ),
        ("epoll_wait", sys_epoll_wait, Full, ""),
        ("epoll_pwait", sys_epoll_pwait, Full, ""),
        ("epoll_pwait2", sys_epoll_pwait2, Full, ""),
        ("eventfd", sys_eventfd, Full, ""),
        ("eventfd2", sys_eventfd2, Full, ""),
        ("signalfd", sys_signalfd, Full, ""),
        ("signalfd4", sys_signalfd4, Full, ""),
    ]
}

/// First run: computes the deadline from a timeout; later runs: whether
/// it passed. `None` timeout waits forever.
fn deadline(k: &mut Kernel, tid: Tid, timeout: Option<Duration>) -> bool {
    let t = k.task_mut(tid);
    if !t.sys.started {
        t.sys.started = true;
        t.sys.deadline = timeout.map(crate::kernel::timer::after);
    }
    t.sys.deadline.is_some_and(|d| Instant::now() >= d)
}

/// Writes back the time a finished ppoll/select/pselect6 had left (Linux's
/// poll_select_finish): zero once it timed out. A timeout in read-only
/// memory is left as it is, the result stands.
fn write_remaining(k: &Kernel, tid: Tid, r: &SysResult<u64>, addr: u64, timeval: bool) {
    if addr == 0 || *r == Err(Errno::EBLOCK) {
        return;
    }
    let sys = &k.task(tid).sys;
    // Not started: it failed before its deadline was set.
    let Some(d) = sys.deadline.filter(|_| sys.started) else {
        return;
    };
    let left = d.saturating_duration_since(Instant::now());
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    let _ = if timeval {
        mm.write_val(
            addr,
            &libc::timeval {
                tv_sec: left.as_secs() as i64,
                tv_usec: left.subsec_micros() as i64,
            },
        )
    } else {
        mm.write_val(
            addr,
            &libc::timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            },
        )
    };
}

/// Installs a temporary signal mask (ppoll/pselect/epoll_pwait); the old
/// one comes back when the syscall returns, or after the handler it let in.
fn swap_mask(k: &mut Kernel, tid: Tid, mask_addr: u64) -> SysResult<()> {
    if mask_addr == 0 {
        return Ok(());
    }
    let m = SigSet(k.task_mm(tid).borrow().read_val::<u64>(mask_addr)?).sanitized();
    let t = k.task_mut(tid);
    if t.saved_mask.is_none() {
        t.saved_mask = Some(t.sigmask);
    }
    t.sigmask = m;
    Ok(())
}

fn restore_mask(k: &mut Kernel, tid: Tid) {
    let t = k.task_mut(tid);
    if let Some(m) = t.saved_mask.take() {
        t.sigmask = m;
    }
}

/// Finishes a waiting syscall: restores the mask on a real result.
fn done(k: &mut Kernel, tid: Tid, r: SysResult<u64>) -> SysResult<u64> {
    if r != Err(Errno::EBLOCK) {
        restore_mask(k, tid);
    }
    r
}

fn do_poll(
    k: &mut Kernel,
    tid: Tid,
    fds_addr: u64,
    nfds: u64,
    timeout: Option<Duration>,
) -> SysResult<u64> {
    let limit = k
        .rlimit(tid, libc::RLIMIT_NOFILE)
        .rlim_cur
        .min(super::fs::NR_OPEN);
    if nfds > limit.max(1024) {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let mut pfds: Vec<libc::pollfd> = mm.borrow().read_vals(fds_addr, nfds as usize)?;
    let expired = deadline(k, tid, timeout);
    let mut ready = 0u64;
    let mut files = Vec::new();
    for p in pfds.iter_mut() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        match super::fs::get_file(k, tid, p.fd) {
            Err(_) => p.revents = POLLNVAL as i16,
            Ok(f) => {
                let want = p.events as u16 as u32 | POLLERR | POLLHUP;
                p.revents = (f.poll(k) & want) as i16;
                files.push((f, p.events as u16 as u32));
            }
        }
        if p.revents != 0 {
            ready += 1;
        }
    }
    if ready > 0 || expired || timeout == Some(Duration::ZERO) {
        let bytes: Vec<u8> = pfds
            .iter()
            .flat_map(|p| {
                let mut b = p.fd.to_ne_bytes().to_vec();
                b.extend_from_slice(&p.events.to_ne_bytes());
                b.extend_from_slice(&p.revents.to_ne_bytes());
                b
            })
            .collect();
        mm.borrow().write_bytes(fds_addr, &bytes)?;
        return Ok(ready);
    }
    for (f, ev) in files {
        f.ops.wait(k, tid, wait_mask(ev));
    }
    Err(Errno::EBLOCK)
}

fn ms_timeout(ms: i64) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn ts_timeout(k: &Kernel, tid: Tid, addr: u64) -> SysResult<Option<Duration>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: libc::timespec = k.task_mm(tid).borrow().read_val(addr)?;
    duration_of(&ts).map(Some).ok_or(Errno::EINVAL)
}

fn sys_poll(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    do_poll(k, tid, a[0], a[1], ms_timeout(a[2] as i32 as i64))
}

fn sys_ppoll(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let timeout = ts_timeout(k, tid, a[2])?;
    if a[3] != 0 && a[4] != 8 {
        return Err(Errno::EINVAL);
    }
    swap_mask(k, tid, a[3])?;
    let r = do_poll(k, tid, a[0], a[1], timeout);
    write_remaining(k, tid, &r, a[2], false);
    done(k, tid, r)
}

fn do_select(
    k: &mut Kernel,
    tid: Tid,
    nfds: u64,
    sets: [u64; 3],
    timeout: Option<Duration>,
) -> SysResult<u64> {
    if nfds > 1024 {
        return Err(Errno::EINVAL);
    }
    let words = (nfds as usize).div_ceil(64);
    let mm = k.task_mm(tid);
    let mut inp = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (i, addr) in sets.iter().enumerate() {
        if *addr != 0 && words > 0 {
            inp[i] = mm.borrow().read_vals(*addr, words)?;
        }
    }
    let expired = deadline(k, tid, timeout);
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0u64;
    let mut waits = Vec::new();
    for fd in 0..nfds as usize {
        let (w, b) = (fd / 64, 1u64 << (fd % 64));
        let want_r = inp[0][w] & b != 0;
        let want_w = inp[1][w] & b != 0;
        let want_e = inp[2][w] & b != 0;
        if !(want_r || want_w || want_e) {
            continue;
        }
        let f = super::fs::get_file(k, tid, fd as i32)?;
        let ev = f.poll(k);
        if want_r && ev & (POLLIN | POLLHUP | POLLERR) != 0 {
            out[0][w] |= b;
            count += 1;
        }
        if want_w && ev & (POLLOUT | POLLERR) != 0 {
            out[1][w] |= b;
            count += 1;
        }
        if want_e && ev & libc::POLLPRI as u32 != 0 {
            out[2][w] |= b;
            count += 1;
        }
        let mut wev = 0;
        if want_r {
            wev |= POLLIN | POLLHUP;
        }
        if want_w {
            wev |= POLLOUT;
        }
        waits.push((f, wev | POLLERR));
    }
    if count > 0 || expired || timeout == Some(Duration::ZERO) {
        for (i, addr) in sets.iter().enumerate() {
            if *addr != 0 && words > 0 {
                let bytes: Vec<u8> = out[i].iter().flat_map(|x| x.to_ne_bytes()).collect();
                mm.borrow().write_bytes(*addr, &bytes)?;
            }
        }
        return Ok(count);
    }
    for (f, ev) in waits {
        f.ops.wait(k, tid, ev);
    }
    Err(Errno::EBLOCK)
}

fn sys_select(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let timeout = if a[4] == 0 {
        None
    } else {
        let tv: libc::timeval = k.task_mm(tid).borrow().read_val(a[4])?;
        if tv.tv_sec < 0 || tv.tv_usec < 0 {
            return Err(Errno::EINVAL);
        }
        Some(Duration::new(
            tv.tv_sec as u64,
            (tv.tv_usec.min(999_999) * 1000) as u32,
        ))
    };
    let r = do_select(k, tid, a[0], [a[1], a[2], a[3]], timeout);
    write_remaining(k, tid, &r, a[4], true);
    r
}

fn sys_pselect6(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let timeout = ts_timeout(k, tid, a[4])?;
    if a[5] != 0 {
        let sm: [u64; 2] = k.task_mm(tid).borrow().read_val(a[5])?;
        if sm[0] != 0 {
            if sm[1] != 8 {
                return Err(Errno::EINVAL);
            }
            swap_mask(k, tid, sm[0])?;
        }
    }
    let r = do_select(k, tid, a[0], [a[1], a[2], a[3]], timeout);
    write_remaining(k, tid, &r, a[4], false);
    done(k, tid, r)
}

// ---------- epoll ----------

fn sys_epoll_create(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    create_epoll(k, tid, 0)
}

fn sys_epoll_create1(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[0] as i32;
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    create_epoll(k, tid, flags)
}

fn create_epoll(k: &mut Kernel, tid: Tid, flags: i32) -> SysResult<u64> {
    let f = File::new(Rc::new(Epoll::new()), libc::O_RDWR, None);
    super::fs::install_fd(k, tid, f, flags & libc::EPOLL_CLOEXEC != 0)
}

fn epoll_of(f: &File) -> SysResult<&Epoll> {
    f.ops.as_any().downcast_ref::<Epoll>().ok_or(Errno::EINVAL)
}

fn sys_epoll_ctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (epfd, op, fd) = (a[0] as i32, a[1] as i32, a[2] as i32);
    let ef = super::fs::get_file(k, tid, epfd)?;
    let target = super::fs::get_file(k, tid, fd)?;
    let ep = epoll_of(&ef)?;
    if epfd == fd || Rc::ptr_eq(&ef, &target) {
        return Err(Errno::EINVAL);
    }
    if target.dentry.as_ref().is_some_and(|d| {
        d.kind() == crate::vfs::FileType::Regular || d.kind() == crate::vfs::FileType::Directory
    }) {
        return Err(Errno::EPERM);
    }
    let ev: Option<(u32, u64)> = if op != libc::EPOLL_CTL_DEL {
        let raw: [u8; 12] = k.task_mm(tid).borrow().read_val(a[3])?;
        Some((
            u32::from_ne_bytes(raw[0..4].try_into().unwrap()),
            u64::from_ne_bytes(raw[4..12].try_into().unwrap()),
        ))
    } else {
        None
    };
    if op != libc::EPOLL_CTL_DEL {
        // The target's events so far are counted before the interest
        // notes its event count (see Interest::new).
        k.poller.sync();
    }
    let mut list = ep.interests.borrow_mut();
    let pos = list
        .iter()
        .position(|i| i.fd == fd && i.file.upgrade().is_some_and(|f| Rc::ptr_eq(&f, &target)));
    match op {
        libc::EPOLL_CTL_ADD => {
            if pos.is_some() {
                return Err(Errno::EEXIST);
            }
            if ep.would_loop(&target) {
                return Err(Errno::ELOOP);
            }
            let (events, data) = ev.unwrap();
            list.push(Interest::new(fd, &target, events, data));
        }
        libc::EPOLL_CTL_MOD => {
            let i = pos.ok_or(Errno::ENOENT)?;
            let (events, data) = ev.unwrap();
            list[i].rearm(&target, events, data);
        }
        libc::EPOLL_CTL_DEL => {
            let i = pos.ok_or(Errno::ENOENT)?;
            list.remove(i);
        }
        _ => return Err(Errno::EINVAL),
    }
    drop(list);
    // A new or re-armed interest may be ready now: waiters look again.
    if op != libc::EPOLL_CTL_DEL {
        ep.waiters.notify_all();
    }
    Ok(0)
}

fn do_epoll_wait(
    k: &mut Kernel,
    tid: Tid,
    epfd: i32,
    events: u64,
    max: i32,
    timeout: Option<Duration>,
) -> SysResult<u64> {
    if max <= 0 || max > (i32::MAX / 12) {
        return Err(Errno::EINVAL);
    }
    let ef = super::fs::get_file(k, tid, epfd)?;
    let ep = epoll_of(&ef)?;
    let expired = deadline(k, tid, timeout);
    let ready = ep.collect(k, max as usize);
    if !ready.is_empty() || expired || timeout == Some(Duration::ZERO) {
        let mut buf = Vec::with_capacity(ready.len() * 12);
        for (ev, data) in &ready {
            buf.extend_from_slice(&ev.to_ne_bytes());
            buf.extend_from_slice(&data.to_ne_bytes());
        }
        k.task_mm(tid).borrow().write_bytes(events, &buf)?;
        return Ok(ready.len() as u64);
    }
    ep.register_waits(k, tid);
    Err(Errno::EBLOCK)
}

fn sys_epoll_wait(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    do_epoll_wait(
        k,
        tid,
        a[0] as i32,
        a[1],
        a[2] as i32,
        ms_timeout(a[3] as i32 as i64),
    )
}

fn sys_epoll_pwait(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[4] != 0 && a[5] != 8 {
        return Err(Errno::EINVAL);
    }
    swap_mask(k, tid, a[4])?;
    let r = do_epoll_wait(
        k,
        tid,
        a[0] as i32,
        a[1],
        a[2] as i32,
        ms_timeout(a[3] as i32 as i64),
    );
    done(k, tid, r)
}

fn sys_epoll_pwait2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[4] != 0 && a[5] != 8 {
        return Err(Errno::EINVAL);
    }
    let timeout = ts_timeout(k, tid, a[3])?;
    swap_mask(k, tid, a[4])?;
    let r = do_epoll_wait(k, tid, a[0] as i32, a[1], a[2] as i32, timeout);
    done(k, tid, r)
}

// ---------- eventfd, signalfd ----------

fn sys_eventfd(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    create_eventfd(k, tid, a[0], 0)
}

fn sys_eventfd2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    create_eventfd(k, tid, a[0], a[1] as i32)
}

fn create_eventfd(k: &mut Kernel, tid: Tid, init: u64, flags: i32) -> SysResult<u64> {
    const EFD_SEMAPHORE: i32 = 1;
    if flags & !(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let e = EventFd::new(init as u32 as u64, flags & EFD_SEMAPHORE != 0);
    let f = File::new(Rc::new(e), libc::O_RDWR | (flags & libc::O_NONBLOCK), None);
    super::fs::install_fd(k, tid, f, flags & libc::EFD_CLOEXEC != 0)
}

fn signalfd_common(
    k: &mut Kernel,
    tid: Tid,
    fd: i32,
    mask: u64,
    size: u64,
    flags: i32,
) -> SysResult<u64> {
    if size != 8 || flags & !(libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let m = SigSet(k.task_mm(tid).borrow().read_val::<u64>(mask)?).sanitized();
    if fd != -1 {
        let f = super::fs::get_file(k, tid, fd)?;
        let s = f
            .ops
            .as_any()
            .downcast_ref::<SignalFd>()
            .ok_or(Errno::EINVAL)?;
        s.mask.set(m);
        return Ok(fd as u64);
    }
    let f = File::new(
        Rc::new(SignalFd::new(m)),
        libc::O_RDONLY | (flags & libc::O_NONBLOCK),
        None,
    );
    super::fs::install_fd(k, tid, f, flags & libc::SFD_CLOEXEC != 0)
}

fn sys_signalfd(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    signalfd_common(k, tid, a[0] as i32, a[1], a[2], 0)
}

fn sys_signalfd4(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    signalfd_common(k, tid, a[0] as i32, a[1], a[2], a[3] as i32)
}

/// read(2) on a signalfd: dequeues pending signals of the mask as
/// signalfd_siginfo records.
pub fn read_signalfd(
    k: &mut Kernel,
    tid: Tid,
    f: &Rc<File>,
    s: &SignalFd,
    iov: &IoVecs,
) -> SysResult<u64> {
    if iov.len < 128 {
        return Err(Errno::EINVAL);
    }
    let not_mask = SigSet(!s.mask.get().0);
    let mut out = Vec::new();
    while out.len() + 128 <= iov.len {
        let t = k.task_mut(tid);
        let info = match t.pending.take(not_mask) {
            Some(i) => Some(i),
            None => {
                let tgid = t.tgid;
                k.groups
                    .get_mut(&tgid)
                    .and_then(|g| g.shared_pending.take(not_mask))
            }
        };
        let Some(info) = info else {
            break;
        };
        let mut rec = [0u8; 128];
        rec[0..4].copy_from_slice(&(info.signo() as u32).to_ne_bytes());
        rec[8..12].copy_from_slice(&info.code().to_ne_bytes());
        rec[12..16].copy_from_slice(&info.raw[16..20]); // pid
        rec[16..20].copy_from_slice(&info.raw[20..24]); // uid
        rec[40..44].copy_from_slice(&info.raw[24..28]); // status / int
        out.extend_from_slice(&rec);
    }
    if out.is_empty() {
        if f.nonblocking() {
            return Err(Errno::EAGAIN);
        }
        crate::vfs::FileOps::wait(s, k, tid, POLLIN);
        return Err(Errno::EBLOCK);
    }
    iov.copy_in(0, &out);
    Ok(out.len() as u64)
}
