//! The kernel's epoll: readiness of host descriptors (stdio, sockets),
//! the platform's stop notifications, forwarded host signals and the
//! control socket, all in one blocking wait.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::waitq::WaitQueue;

/// Tokens below this are the kernel's own sources; above, host fds + base.
pub const TOKEN_PLATFORM: u64 = 1;
pub const TOKEN_SIGNALS: u64 = 2;
pub const TOKEN_CONTROL: u64 = 3;
/// A link's packet socket (`--network sandbox`) has frames.
pub const TOKEN_NET: u64 = 4;
const FD_BASE: u64 = 16;
/// Control connections of exec'd processes: token = CONN_BASE + fd.
const CONN_BASE: u64 = 1 << 32;

thread_local! {
    static EPFD: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
    static QUEUES: RefCell<HashMap<i32, Weak<WaitQueue>>> = RefCell::new(HashMap::new());
}

pub struct Poller {
    epfd: i32,
}

/// Events of the kernel's own sources from one wait.
#[derive(Default)]
pub struct Ready {
    pub platform: bool,
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
        EPFD.with(|e| e.set(epfd));
        Ok(Poller { epfd })
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
    /// a waiter re-checks readiness itself before sleeping).
    pub fn register(&self, fd: i32, q: &Rc<WaitQueue>) {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64 + FD_BASE,
        };
        // SAFETY: as above.
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        QUEUES.with(|m| m.borrow_mut().insert(fd, Rc::downgrade(q)));
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
            let (token, bits) = (ev.u64, ev.events);
            match token {
                TOKEN_PLATFORM => ready.platform = true,
                TOKEN_SIGNALS => ready.signals = true,
                TOKEN_CONTROL => ready.control = true,
                TOKEN_NET => ready.net = true,
                t if t >= CONN_BASE => ready.connections.push((t - CONN_BASE) as i32),
                t if t >= FD_BASE => {
                    let fd = (t - FD_BASE) as i32;
                    if let Some(q) = QUEUES.with(|m| m.borrow().get(&fd).and_then(|w| w.upgrade()))
                    {
                        let mut poll = 0u32;
                        if bits & libc::EPOLLIN as u32 != 0 {
                            poll |= libc::POLLIN as u32;
                        }
                        if bits & libc::EPOLLOUT as u32 != 0 {
                            poll |= libc::POLLOUT as u32;
                        }
                        if bits & (libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 != 0 {
                            poll |= (libc::POLLHUP | libc::POLLIN) as u32;
                        }
                        if bits & libc::EPOLLERR as u32 != 0 {
                            poll |= libc::POLLERR as u32;
                        }
                        q.notify(poll);
                    }
                }
                _ => {}
            }
        }
        ready
    }
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
    let epfd = EPFD.with(|e| e.get());
    if epfd >= 0 {
        // SAFETY: removing a watch; errors (not watched) are harmless.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }
    QUEUES.with(|m| m.borrow_mut().remove(&fd));
}

pub fn unregister_connection(fd: i32) {
    let epfd = EPFD.with(|e| e.get());
    if epfd >= 0 {
        // SAFETY: removing a watch.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }
}
