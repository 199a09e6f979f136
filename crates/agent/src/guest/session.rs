//! One host connection: a request, and for a process its stdio relay
//! until it exits.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use atoll_agent::proto::{self, FrameBuf, Request, Started};

use super::container;

fn answer(s: &mut UnixStream, v: &serde_json::Value) {
    let _ = proto::write_frame(s, proto::ANSWER, v.to_string().as_bytes());
}

fn failure(s: &mut UnixStream, msg: &str) {
    let _ = proto::write_frame(s, proto::FAILURE, msg.as_bytes());
}

/// "what: errno N" from the child becomes "what: <description>".
fn describe(e: &io::Error) -> String {
    let m = e.to_string();
    if let Some((what, n)) = m.rsplit_once(": errno ")
        && let Ok(n) = n.parse::<i32>()
    {
        return format!("{what}: {}", io::Error::from_raw_os_error(n));
    }
    m
}

pub fn serve(mut s: UnixStream) {
    let req = match proto::read_frame(&mut s) {
        Ok((proto::REQUEST, p)) => match serde_json::from_slice::<Request>(&p) {
            Ok(r) => r,
            Err(e) => return failure(&mut s, &format!("bad request: {e}")),
        },
        other => {
            super::sys::log(&format!(
                "a session ended before its request: {:?}",
                other.map(|(kind, p)| (kind, p.len()))
            ));
            return;
        }
    };
    // Where a session got to, when a request seems lost.
    super::sys::log(&format!("request: {}", req.what()));
    match req {
        Request::Run {
            container: c,
            process,
            init,
        } => {
            super::sys::trace("run request");
            if let Some(n) = &c.network
                && let Err(e) = super::net::configure(n)
            {
                return failure(&mut s, &format!("the guest's network: {e}"));
            }
            let child = match container::run(&c, &process, init) {
                Ok(ch) => ch,
                Err(e) => return failure(&mut s, &describe(&e)),
            };
            let pid = child.pid;
            super::sys::trace("process started");
            answer(&mut s, &serde_json::to_value(Started { pid }).unwrap());
            let status = relay(&mut s, child);
            super::sys::log(&format!("pid {pid} exited: {status:?}"));
            if init {
                container::init_exited(&c.id, pid);
                // SAFETY: flushing the guest's caches to the shares.
                unsafe { libc::sync() };
            }
            if let Some(st) = status {
                let _ = proto::write_frame(&mut s, proto::EXIT, &st.to_be_bytes());
            }
        }
        Request::Signal {
            container: id,
            signal,
            all,
        } => {
            let r = signal_container(&id, signal, all);
            match r {
                Ok(()) => answer(&mut s, &serde_json::json!({})),
                Err(e) => failure(&mut s, &e.to_string()),
            }
        }
        Request::Ps { container: id } => match container::pids(&id) {
            Ok(p) => answer(&mut s, &serde_json::json!(p)),
            Err(e) => failure(&mut s, &e.to_string()),
        },
        Request::Stats => answer(&mut s, &stats()),
    }
}

fn signal_container(id: &str, sig: i32, all: bool) -> io::Result<()> {
    let pids = if all {
        container::pids(id)?
    } else {
        vec![container::init_pid(id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("container {id} is not running"),
            )
        })?]
    };
    for pid in pids {
        // SAFETY: kill with a pid and a signal number.
        if unsafe { libc::kill(pid, sig) } < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn stats() -> serde_json::Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    serde_json::json!({
        "mem_total_kib": field("MemTotal:"),
        "mem_available_kib": field("MemAvailable:"),
        "boot_id": std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim(),
        "uptime": std::fs::read_to_string("/proc/uptime").unwrap_or_default().split_whitespace().next().unwrap_or("").to_string(),
    })
}

fn set_nonblock(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: reading into a local buffer.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
}

/// Relays until the process exits; returns its wait status (None if the
/// host went away first, after killing the process).
fn relay(s: &mut UnixStream, child: container::Child) -> Option<i32> {
    let container::Child {
        pid,
        stdin,
        stdout,
        stderr,
        exit,
        pty,
    } = child;
    let mut stdin: Option<OwnedFd> = stdin;
    let mut outs: Vec<(OwnedFd, u8)> = vec![(stdout, proto::STDOUT)];
    if let Some(e) = stderr {
        outs.push((e, proto::STDERR));
    }
    for (fd, _) in &outs {
        set_nonblock(fd.as_raw_fd());
    }
    let mut frames = FrameBuf::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut host_open = true;
    let mut status: Option<i32> = None;
    let mut relayed = false;
    loop {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        if host_open {
            fds.push(libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if status.is_none() {
            fds.push(libc::pollfd {
                fd: exit.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for (fd, _) in &outs {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if outs.is_empty() && status.is_some() {
            return status;
        }
        // After the exit, what is still buffered is read; a lingering
        // writer (a background child) does not hold the exit up.
        let timeout = if status.is_some() { 100 } else { -1 };
        // SAFETY: polling a local array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return status;
        }
        if n == 0 {
            return status;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == s.as_raw_fd() {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        host_open = false;
                        if status.is_none() {
                            // Nobody is listening any more.
                            // SAFETY: kill with a pid and a signal number.
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                    Ok(n) => {
                        frames.push(&buf[..n]);
                        while let Ok(Some((kind, payload))) = frames.next_frame() {
                            match kind {
                                proto::STDIN => {
                                    let fd = stdin
                                        .as_ref()
                                        .map(|f| f.as_raw_fd())
                                        .or(pty.as_ref().map(|f| f.as_raw_fd()));
                                    if let Some(fd) = fd {
                                        write_all(fd, &payload);
                                    }
                                }
                                proto::STDIN_EOF => {
                                    stdin = None;
                                }
                                proto::SIGNAL if payload.len() == 4 => {
                                    let sig = i32::from_be_bytes(payload[..4].try_into().unwrap());
                                    // SAFETY: kill with a pid and a signal number.
                                    unsafe { libc::kill(pid, sig) };
                                }
                                proto::RESIZE if payload.len() == 4 => {
                                    if let Some(m) = &pty {
                                        let ws = libc::winsize {
                                            ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                                            ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                                            ws_xpixel: 0,
                                            ws_ypixel: 0,
                                        };
                                        // SAFETY: setting a terminal's window size.
                                        unsafe {
                                            libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws)
                                        };
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
            } else if p.fd == exit.as_raw_fd() {
                let mut b = [0u8; 4];
                if read_fd(exit.as_raw_fd(), &mut b) == 4 {
                    status = Some(i32::from_be_bytes(b));
                }
            } else if let Some(i) = outs.iter().position(|(fd, _)| fd.as_raw_fd() == p.fd) {
                let n = read_fd(p.fd, &mut buf);
                if n > 0 {
                    if !relayed {
                        relayed = true;
                        super::sys::trace("first output relayed");
                    }
                    if host_open && proto::write_frame(s, outs[i].1, &buf[..n as usize]).is_err() {
                        host_open = false;
                    }
                } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                    // EOF, or a terminal whose slave side closed (EIO).
                    outs.remove(i);
                }
            }
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing a local buffer.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}
