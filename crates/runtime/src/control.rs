//! Client side of a userspace sandbox's control socket: exec into the
//! sandbox, list its processes, read its counters.
//!
//! An exec'd process lives inside the application kernel, not on the host,
//! so atoll stands in for it on the host: a proxy process that forwards
//! signals to it and exits with its status. Container managers (containerd's
//! shims, conmon) watch that proxy exactly as they would watch runc's
//! exec'd process.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

fn connect(path: &Path) -> Result<UnixStream> {
    // Long state roots + 64-char ids exceed sun_path (Docker, CRI).
    crate::unixsock::connect(path).with_context(|| {
        format!(
            "control socket {} (is the sandbox running?)",
            path.display()
        )
    })
}

/// Sends `req` with `fds` attached (SCM_RIGHTS).
fn send_with_fds(s: &UnixStream, req: &Value, fds: &[RawFd]) -> Result<()> {
    let mut line = req.to_string();
    line.push('\n');
    let mut iov = libc::iovec {
        iov_base: line.as_ptr() as *mut libc::c_void,
        iov_len: line.len(),
    };
    let mut cbuf = vec![0u8; unsafe { libc::CMSG_SPACE((fds.len() * 4) as u32) } as usize];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = cbuf.len();
        // SAFETY: building one SCM_RIGHTS message in our buffer.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * 4) as u32) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(c) as *mut RawFd,
                fds.len(),
            );
        }
    }
    // SAFETY: sendmsg with a fully initialised header.
    if unsafe { libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error()).context("sending to the control socket");
    }
    Ok(())
}

/// Connects to `path` and sends `req` with `fds`.
pub fn connect_and_send(path: &Path, req: &Value, fds: &[RawFd]) -> Result<UnixStream> {
    let s = connect(path)?;
    send_with_fds(&s, req, fds)?;
    Ok(s)
}

/// Reads one JSON reply line from `s`.
pub fn read_reply(s: &UnixStream) -> Result<Value> {
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .context("reading the control reply")?;
    if line.is_empty() {
        bail!("the sandbox closed the control connection");
    }
    serde_json::from_str(&line).context("control reply is not JSON")
}

/// One request, one JSON reply (ps, stats, kill_all).
pub fn request(path: &Path, req: &Value) -> Result<Value> {
    request_with_timeout(path, req, None)
}

/// [`request`], giving up after `timeout` without a reply (a frozen or
/// wedged sandbox must not hang a metrics scrape or a delete).
pub fn request_with_timeout(
    path: &Path,
    req: &Value,
    timeout: Option<std::time::Duration>,
) -> Result<Value> {
    let s = connect(path)?;
    s.set_read_timeout(timeout)?;
    s.set_write_timeout(timeout)?;
    send_with_fds(&s, req, &[])?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .context("reading the control reply")?;
    let v: Value = serde_json::from_str(&line).context("control reply is not JSON")?;
    if let Some(e) = v.get("error") {
        bail!("sandbox: {}", e.as_str().unwrap_or("error"));
    }
    Ok(v)
}

/// A process started inside a sandbox.
pub struct ExecSession {
    conn: UnixStream,
    reader: BufReader<UnixStream>,
    pub pid: i32,
}

/// Starts `req` (an `exec` request) with `stdio` as its standard streams.
pub fn start_exec(path: &Path, req: &Value, stdio: [RawFd; 3]) -> Result<ExecSession> {
    let conn = connect(path)?;
    start_on(conn, req, stdio)
}

/// Sends `req` (exec, or a pod container's start) with `stdio` on `conn`
/// and reads the process's pid.
pub fn start_on(conn: UnixStream, req: &Value, stdio: [RawFd; 3]) -> Result<ExecSession> {
    send_with_fds(&conn, req, &stdio)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("reading the exec reply")?;
    if line.is_empty() {
        bail!("the sandbox closed the control connection");
    }
    let v: Value = serde_json::from_str(&line).context("exec reply is not JSON")?;
    if let Some(e) = v.get("error") {
        bail!("{}", e.as_str().unwrap_or("exec failed"));
    }
    let pid = v
        .get("pid")
        .and_then(|p| p.as_i64())
        .ok_or_else(|| anyhow!("exec reply has no pid"))? as i32;
    Ok(ExecSession { conn, reader, pid })
}

impl ExecSession {
    pub fn signal(&mut self, sig: i32) -> Result<()> {
        let mut line = serde_json::json!({"op": "signal", "sig": sig}).to_string();
        line.push('\n');
        self.conn
            .write_all(line.as_bytes())
            .context("forwarding a signal")
    }

    /// Forwards the caller's signals to the process until it exits;
    /// returns its wait status (or None if the sandbox went away).
    pub fn proxy(mut self) -> Option<i32> {
        let mut set = nix::sys::signal::SigSet::empty();
        for s in crate::wait::FORWARDED {
            set.add(*s);
            // A handler, not the default: a pid namespace's init (a pod
            // container's proxy is one) is sent no signal it leaves at
            // the default. Blocked, it is read from the signalfd anyway.
            // SAFETY: installing a handler that does nothing.
            unsafe {
                let _ = nix::sys::signal::sigaction(
                    *s,
                    &nix::sys::signal::SigAction::new(
                        nix::sys::signal::SigHandler::Handler(ignore_signal),
                        nix::sys::signal::SaFlags::SA_RESTART,
                        nix::sys::signal::SigSet::empty(),
                    ),
                );
            }
        }
        let _ = set.thread_block();
        let sfd = nix::sys::signalfd::SignalFd::with_flags(
            &set,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        )
        .ok()?;
        let conn_fd = self.conn.as_raw_fd();
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: conn_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                continue;
            }
            if fds[1].revents & libc::POLLIN != 0
                && let Ok(Some(si)) = sfd.read_signal()
            {
                let _ = self.signal(si.ssi_signo as i32);
            }
            if fds[0].revents != 0 {
                let mut line = String::new();
                match self.reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {
                        if let Ok(v) = serde_json::from_str::<Value>(&line)
                            && let Some(st) = v.get("exit").and_then(|e| e.as_i64())
                        {
                            return Some(st as i32);
                        }
                    }
                }
            }
        }
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Wait status → exit code (128+N for signal N).
pub fn exit_code(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

/// Exits this process the way the sandboxed process ended: same exit
/// code, or death by the same signal (so a container manager watching
/// the proxy sees what happened inside).
pub fn exit_like(status: Option<i32>) -> ! {
    match status {
        Some(st) if st & 0x7f != 0 => {
            let sig = st & 0x7f;
            // SAFETY: restoring the default action and raising the signal on ourselves.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::raise(sig);
            }
            std::process::exit(128 + sig)
        }
        Some(st) => std::process::exit((st >> 8) & 0xff),
        None => std::process::exit(255),
    }
}

/// Sends a terminal's master side to a console socket (runc's protocol:
/// one SCM_RIGHTS message).
pub fn send_console(path: &Path, master: &impl AsRawFd) -> Result<()> {
    let s =
        UnixStream::connect(path).with_context(|| format!("console socket {}", path.display()))?;
    send_with_fds(
        &s,
        &Value::String("/dev/ptmx".into()),
        &[master.as_raw_fd()],
    )
}
