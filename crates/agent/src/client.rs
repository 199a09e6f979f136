//! The host's side of a session with the guest agent: the hybrid-vsock
//! handshake, one-shot requests, and a process session that relays the
//! caller's stdio and signals until the guest process exits.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use crate::proto::{self, FrameBuf, Request, Started};

/// Asks the VMM's vsock device for a stream to guest `port`
/// (`CONNECT <port>\n` → `OK <host port>\n`).
/// A guest that drops the request (its vsock transport not up yet) gets
/// `timeout` to answer; None waits as long as it takes.
pub fn handshake(
    mut s: UnixStream,
    port: u32,
    timeout: Option<std::time::Duration>,
) -> Result<UnixStream> {
    s.set_read_timeout(timeout)?;
    s.write_all(format!("CONNECT {port}\n").as_bytes())
        .context("vsock handshake")?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => bail!("the guest agent is not answering on vsock port {port}"),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) if line.len() < 64 => line.push(b[0]),
            Ok(_) => bail!("vsock handshake: answer too long"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("vsock handshake"),
        }
    }
    if !line.starts_with(b"OK ") {
        bail!("vsock handshake: {}", String::from_utf8_lossy(&line));
    }
    s.set_read_timeout(None)?;
    Ok(s)
}

/// Connects to the VMM's vsock socket and to the agent behind it.
pub fn connect(socket: &Path, port: u32) -> Result<UnixStream> {
    let s = UnixStream::connect(socket)
        .with_context(|| format!("the VM's socket {}", socket.display()))?;
    handshake(s, port, Some(std::time::Duration::from_secs(30)))
}

/// Sends a request that has a single answer.
pub fn request(mut s: UnixStream, req: &Request) -> Result<serde_json::Value> {
    proto::write_frame(&mut s, proto::REQUEST, &serde_json::to_vec(req)?)
        .context("sending to the guest agent")?;
    let (kind, payload) = proto::read_frame(&mut s).context("reading the guest agent's answer")?;
    match kind {
        proto::ANSWER => Ok(serde_json::from_slice(&payload)?),
        proto::FAILURE => bail!("{}", String::from_utf8_lossy(&payload)),
        k => bail!("unexpected frame {k:#x} from the guest agent"),
    }
}

/// The caller's side of a process: where its output goes, where its
/// input comes from, and the signals to forward (a signalfd).
pub struct Stdio {
    pub stdin: Option<RawFd>,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub signals: Option<RawFd>,
    /// The terminal the process's terminal stands for on this side: a
    /// SIGWINCH resizes the guest's terminal to its size instead of being
    /// forwarded.
    pub terminal: Option<RawFd>,
}

/// A terminal's window size (rows, columns), if `fd` is one.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a local winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// The RESIZE frame's payload: rows and columns, big-endian.
pub fn resize_payload((rows, cols): (u16, u16)) -> [u8; 4] {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    [r[0], r[1], c[0], c[1]]
}

fn write_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing a byte buffer to a descriptor the caller owns.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return; // a closed stdout loses the output, as for any process
        }
        data = &data[n as usize..];
    }
}

/// Starts the process `req` describes and relays until it exits. Calls
/// `started` with its guest pid; returns its wait status.
pub fn run(mut s: UnixStream, req: &Request, io: Stdio, started: impl FnOnce(i32)) -> Result<i32> {
    proto::write_frame(&mut s, proto::REQUEST, &serde_json::to_vec(req)?)
        .context("sending to the guest agent")?;
    let (kind, payload) = proto::read_frame(&mut s).context("the guest agent did not answer")?;
    match kind {
        proto::ANSWER => {
            let st: Started = serde_json::from_slice(&payload)?;
            started(st.pid);
        }
        proto::FAILURE => bail!("{}", String::from_utf8_lossy(&payload)),
        k => bail!("unexpected frame {k:#x} from the guest agent"),
    }
    let mut frames = FrameBuf::default();
    let mut stdin = io.stdin;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(fd) = stdin {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(fd) = io.signals {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: polling descriptors in a local array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io::Error::last_os_error()).context("poll");
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == s.as_raw_fd() {
                let n = match s.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context("reading from the guest agent"),
                };
                if n == 0 {
                    bail!("the guest agent closed the session before the process exited");
                }
                frames.push(&buf[..n]);
                while let Some((kind, payload)) = frames.next_frame()? {
                    match kind {
                        proto::STDOUT => write_fd(io.stdout, &payload),
                        proto::STDERR => write_fd(io.stderr, &payload),
                        proto::EXIT if payload.len() == 4 => {
                            return Ok(i32::from_be_bytes(payload[..4].try_into().unwrap()));
                        }
                        proto::FAILURE => bail!("{}", String::from_utf8_lossy(&payload)),
                        _ => {}
                    }
                }
            } else if Some(p.fd) == stdin {
                // SAFETY: reading into a local buffer.
                let n = unsafe { libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if n <= 0 {
                    proto::write_frame(&mut s, proto::STDIN_EOF, &[])?;
                    stdin = None;
                } else {
                    proto::write_frame(&mut s, proto::STDIN, &buf[..n as usize])?;
                }
            } else if Some(p.fd) == io.signals {
                // SAFETY: a signalfd read fills signalfd_siginfo structures.
                let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                let n = unsafe {
                    libc::read(
                        p.fd,
                        (&mut si as *mut libc::signalfd_siginfo).cast(),
                        std::mem::size_of::<libc::signalfd_siginfo>(),
                    )
                };
                if n as usize != std::mem::size_of::<libc::signalfd_siginfo>() {
                    continue;
                }
                if si.ssi_signo as i32 == libc::SIGWINCH
                    && let Some(t) = io.terminal
                {
                    if let Some(size) = window_size(t) {
                        proto::write_frame(&mut s, proto::RESIZE, &resize_payload(size))?;
                    }
                } else {
                    proto::write_frame(
                        &mut s,
                        proto::SIGNAL,
                        &(si.ssi_signo as i32).to_be_bytes(),
                    )?;
                }
            }
        }
    }
}

/// Blocks the signals a session forwards and returns a signalfd for them.
/// Call before starting threads, so that every thread has them blocked.
pub fn forwarded_signals() -> Result<RawFd> {
    // SAFETY: building a signal set and blocking it for this thread (and
    // the threads it starts).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCONT,
            libc::SIGWINCH,
            libc::SIGALRM,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(anyhow!("blocking signals"));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("signalfd");
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_frames_carry_rows_then_columns() {
        assert_eq!(resize_payload((24, 80)), [0, 24, 0, 80]);
        assert_eq!(resize_payload((300, 1000)), [1, 44, 3, 232]);
        // not a terminal
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(window_size(f.as_raw_fd()), None);
    }
}
