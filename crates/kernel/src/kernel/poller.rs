//! The kernel's epoll: readiness of host descriptors (stdio, sockets),
//! the platform's stop notifications, forwarded host signals and the
//! control socket, all in one blocking wait.
//!
//! Host descriptors sit in epolls of their own (edge-triggered), nested
//! in the main one: the host reports one event per wakeup of a descriptor
//! (data arriving, room freed, a state change), which is what an
//! edge-triggered epoll of the workload must see, one for one. Keeping
//! them apart lets [`Poller::sync`] take the host's pending reports at any
//! moment without reading (and having to keep) the kernel's own events.
//!
//! Each descriptor is watched twice, for input in one epoll and for room
//! to write in another: the host's report carries the descriptor's whole
//! readiness, not what woke it, but its epoll queues an item only for a
//! wakeup of a kind the item watches (ep_poll_callback's key check). So a
//! report of the input epoll is an input event, one of the output epoll
//! an output event, and the workload's edge-triggered readers are not
//! told of room freed (nor writers of data arriving).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::waitq::WaitQueue;

/// Tokens below this are the kernel's own sources; above, host fds + base.
pub const TOKEN_SIGNALS: u64 = 2;
pub const TOKEN_CONTROL: u64 = 3;
/// A link's packet socket (`--network sandbox`) has frames.
pub const TOKEN_NET: u64 = 4;
/// The host descriptors' epolls have reports.
const TOKEN_FILES: u64 = 5;
const TOKEN_FILES_OUT: u64 = 6;
/// The platform's wakeup descriptors: token = PLATFORM_BASE + their index
/// in `Platform::wakeup_fds` (below 32).
const PLATFORM_BASE: u64 = 1 << 16;
/// Control connections of exec'd processes: token = CONN_BASE + fd.
const CONN_BASE: u64 = 1 << 32;

/// The token of the platform's wakeup descriptor number `i`.
pub fn platform_token(i: usize) -> u64 {
    assert!(i < 32, "at most 32 platform wakeup descriptors");
    PLATFORM_BASE + i as u64
}

thread_local! {
    static EPFD: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
    /// The host descriptors' epolls: input, output (see the module's doc).
    static FILES_EPFD: std::cell::Cell<[i32; 2]> = const { std::cell::Cell::new([-1, -1]) };
    static QUEUES: RefCell<HashMap<i32, Weak<WaitQueue>>> = RefCell::new(HashMap::new());
}

pub struct Poller {
    epfd: i32,
    /// The host descriptors' epolls (edge-triggered), input and output,
    /// watched by `epfd`.
    files: [i32; 2],
}

/// Events of the kernel's own sources from one wait.
#[derive(Default)]
pub struct Ready {
    /// Bit i: the platform's wakeup descriptor number i was readable.
    pub platform: u32,
    pub signals: bool,
    pub control: bool,
    /// Frames wait on a link of the kernel's network stack.
    pub net: bool,
    pub connections: Vec<i32>,
}

impl Poller {
    pub fn new() -> std::io::Result<Poller> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut files = [-1; 2];
        for f in files.iter_mut() {
            // SAFETY: as above.
            *f = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if *f < 0 {
                let e = std::io::Error::last_os_error();
                for fd in [epfd, files[0]] {
                    if fd >= 0 {
                        // SAFETY: closing descriptors just made.
                        unsafe { libc::close(fd) };
                    }
                }
                return Err(e);
            }
        }
        EPFD.with(|e| e.set(epfd));
        FILES_EPFD.with(|e| e.set(files));
        let p = Poller { epfd, files };
        p.add_source(files[0], TOKEN_FILES)?;
        p.add_source(files[1], TOKEN_FILES_OUT)?;
        Ok(p)
    }

    /// Watches one of the kernel's own descriptors (level-triggered).
    pub fn add_source(&self, fd: i32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: valid epoll fd and event.
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches a host descriptor for a file's wait queue (edge-triggered:
    /// a waiter re-checks readiness itself before sleeping). The host
    /// reports the descriptor's readiness at the add as an event of its
    /// own, which reaches `q` later; callers that count events (epoll's
    /// edges) use [`Poller::watch`] instead.
    pub fn register(&self, fd: i32, q: &Rc<WaitQueue>) {
        register_fd(fd, q);
    }

    /// Watches a host descriptor from its creation on, before the workload
    /// can wait for it, so that every later wakeup of it is one event of
    /// `q` (its `seq`): the host's report of the add is taken at once, and
    /// an edge-triggered epoll of the workload added later never takes it
    /// for a new event. Not for a waiter between its check and its wait:
    /// other queues' events are handed out too.
    pub fn watch(&self, fd: i32, q: &Rc<WaitQueue>) {
        self.register(fd, q);
        self.sync();
    }

    /// Hands the host descriptors' pending reports to their wait queues
    /// now, without waiting (Linux runs a file's wakeup callbacks when the
    /// event happens; the host's reports wait in its epoll until read).
    /// An edge-triggered epoll_wait calls it first, so that an event that
    /// already happened is counted before readiness is looked at, not
    /// taken for a new one after. Callers are at the start of a syscall:
    /// a waiter woken here looks again anyway.
    pub fn sync(&self) {
        sync_files(self.files);
    }

    /// Watches a control connection (level-triggered).
    pub fn add_connection(&self, fd: i32) {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: CONN_BASE + fd as u64,
        };
        // SAFETY: valid epoll fd and event.
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }

    /// Waits up to `timeout` (None: forever) with nanosecond resolution
    /// (epoll_pwait2; on hosts before Linux 5.11, epoll_wait with the
    /// timeout rounded up to a millisecond); notifies file queues and
    /// returns which kernel sources are ready.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> Ready {
        let mut events: [libc::epoll_event; 64] = unsafe { std::mem::zeroed() };
        let n = epoll_wait_ns(self.epfd, &mut events, timeout);
        let mut ready = Ready::default();
        for ev in events.iter().take(n.max(0) as usize) {
            let token = ev.u64;
            match token {
                t if (PLATFORM_BASE..PLATFORM_BASE + 32).contains(&t) => {
                    ready.platform |= 1 << (t - PLATFORM_BASE)
                }
                TOKEN_SIGNALS => ready.signals = true,
                TOKEN_CONTROL => ready.control = true,
                TOKEN_NET => ready.net = true,
                TOKEN_FILES | TOKEN_FILES_OUT => self.sync(),
                t if t >= CONN_BASE => ready.connections.push((t - CONN_BASE) as i32),
                _ => {}
            }
        }
        ready
    }
}

/// poll(2) bits of a host readiness report (epoll's and poll's bits have
/// the same values): a peer's hangup is also readable.
fn poll_bits(bits: u32) -> u32 {
    let has = |b: i32| bits & b as u32 != 0;
    let mut poll = 0u32;
    if has(libc::EPOLLIN) {
        poll |= libc::POLLIN as u32;
    }
    if has(libc::EPOLLOUT) {
        poll |= libc::POLLOUT as u32;
    }
    if has(libc::EPOLLHUP | libc::EPOLLRDHUP) {
        poll |= (libc::POLLHUP | libc::POLLIN) as u32;
    }
    if has(libc::EPOLLERR) {
        poll |= libc::POLLERR as u32;
    }
    poll
}

thread_local! {
    static NO_PWAIT2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One epoll wait with a timeout of nanosecond resolution.
fn epoll_wait_ns(
    epfd: i32,
    events: &mut [libc::epoll_event; 64],
    timeout: Option<std::time::Duration>,
) -> i32 {
    if !NO_PWAIT2.with(|c| c.get()) {
        let ts = timeout.map(super::timer::timespec_of);
        let tp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the buffer holds 64 events; tp is null or a timespec;
        // no signal mask (null), as epoll_wait.
        let n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                epfd,
                events.as_mut_ptr(),
                64,
                tp,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        } as i32;
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
            return n;
        }
        NO_PWAIT2.with(|c| c.set(true));
    }
    let ms = timeout.map_or(-1, |d| {
        d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
    });
    // SAFETY: the buffer holds 64 events.
    unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 64, ms) }
}

/// Stops watching a host descriptor (its file is closing).
pub fn unregister_fd(fd: i32) {
    for epfd in FILES_EPFD.with(|e| e.get()) {
        if epfd >= 0 {
            // SAFETY: removing a watch; errors (not watched) are harmless.
            unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        }
    }
    QUEUES.with(|m| m.borrow_mut().remove(&fd));
}

/// [`Poller::register`] for files that reach no `Kernel` where they
/// start watching.
fn register_fd(fd: i32, q: &Rc<WaitQueue>) {
    let files = FILES_EPFD.with(|e| e.get());
    let kinds = [
        libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI,
        libc::EPOLLOUT,
    ];
    for (epfd, kind) in files.into_iter().zip(kinds) {
        let mut ev = libc::epoll_event {
            events: (kind | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: a valid epoll fd (or -1: EBADF) and event; a descriptor
        // the host cannot watch (a regular file) just never reports.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
    QUEUES.with(|m| m.borrow_mut().insert(fd, Rc::downgrade(q)));
}

/// [`Poller::watch`] for files that reach no `Kernel` where they start
/// counting events (the same rules: not between a check and a wait).
pub fn watch_fd(fd: i32, q: &Rc<WaitQueue>) {
    register_fd(fd, q);
    sync_files(FILES_EPFD.with(|e| e.get()));
}

/// Hands pending host reports to their queues (see [`Poller::sync`]).
fn sync_files(files: [i32; 2]) {
    let mut events: [libc::epoll_event; 64] = unsafe { std::mem::zeroed() };
    for (epfd, kind) in files.into_iter().zip([!(libc::POLLOUT as u32), !0]) {
        if epfd < 0 {
            continue;
        }
        loop {
            // SAFETY: epoll_wait into a local array, no wait.
            let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 64, 0) };
            let n = n.max(0) as usize;
            for e in &events[..n] {
                let (fd, bits) = (e.u64 as i32, e.events);
                if let Some(q) = QUEUES.with(|m| m.borrow().get(&fd).and_then(|w| w.upgrade())) {
                    // The input epoll's report says nothing of room to
                    // write (the bit is the level, not the wakeup).
                    q.notify(poll_bits(bits) & kind);
                }
            }
            if n < events.len() {
                break;
            }
        }
    }
}

pub fn unregister_connection(fd: i32) {
    let epfd = EPFD.with(|e| e.get());
    if epfd >= 0 {
        // SAFETY: removing a watch.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }
}
