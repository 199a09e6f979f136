//! A process's stdio as containerd hands it over: paths of FIFOs it has
//! already opened for reading (stdout, stderr) and writing (stdin), or a
//! terminal.
//!
//! - stdout/stderr without a terminal: the FIFOs themselves become the
//!   process's descriptors (nothing to copy, nothing lost when the shim is
//!   busy; the reader sees EOF when the container's last writer exits).
//!   `file://PATH` log URIs are appended to.
//! - stdin: a pipe, fed from the FIFO by a thread, so `CloseIO` can close
//!   the process's stdin even while containerd still holds the FIFO.
//! - terminal: atoll sends the pty master over a console socket; threads
//!   copy stdin FIFO → master and master → stdout FIFO; `ResizePty` sets
//!   the master's window size.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The stdio of one process, as containerd names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Set once every output copy of a process has finished.
#[derive(Default)]
pub struct Done {
    left: Mutex<usize>,
    cv: Condvar,
}

impl Done {
    fn add(&self) {
        *self.left.lock().unwrap() += 1;
    }
    fn finish(&self) {
        let mut n = self.left.lock().unwrap();
        *n = n.saturating_sub(1);
        self.cv.notify_all();
    }
    /// Waits until every copy is done or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.left.lock().unwrap();
        while *n > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            n = self.cv.wait_timeout(n, deadline - now).unwrap().0;
        }
        true
    }
}

/// What the shim keeps of a running process's stdio.
#[derive(Default)]
pub struct ProcIo {
    /// Writer toward the process's stdin (pipe) or the terminal; `None`
    /// once closed.
    stdin: Arc<Mutex<Option<File>>>,
    /// The terminal's master side.
    console: Option<File>,
    pub output: Arc<Done>,
}

impl ProcIo {
    /// `CloseIO`: the process reads EOF on stdin (a terminal has no EOF to
    /// give; its input is just not fed any more).
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap().take();
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(console) = &self.console else {
            bail!("the process has no terminal");
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
        if unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(std::io::Error::last_os_error()).context("resizing the terminal");
        }
        Ok(())
    }
}

/// The descriptors and socket for an atoll invocation that starts a process.
pub struct Prepared {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    console: Option<(tempfile::TempDir, UnixListener)>,
    paths: StdioPaths,
    io: ProcIo,
    stdin_fifo: Option<String>,
}

impl Prepared {
    /// Path of the console socket to pass as `--console-socket`.
    pub fn console_socket(&self) -> Option<PathBuf> {
        self.console
            .as_ref()
            .map(|(d, _)| d.path().join("console.sock"))
    }

    /// After atoll succeeded: picks up the terminal (if any), starts the
    /// copies, and returns what the shim keeps.
    pub fn finish(mut self) -> Result<ProcIo> {
        if let Some(fifo) = self.stdin_fifo.take() {
            spawn_stdin_copy(fifo, self.io.stdin.clone());
        }
        let Some((_dir, listener)) = self.console.take() else {
            return Ok(self.io);
        };
        let master = receive_master(&listener)?;
        if !self.paths.stdin.is_empty() {
            let w = master.try_clone().context("terminal")?;
            *self.io.stdin.lock().unwrap() = Some(w);
            spawn_stdin_copy(self.paths.stdin.clone(), self.io.stdin.clone());
        }
        if !self.paths.stdout.is_empty() {
            let out = open_output(&self.paths.stdout)?;
            let r = master.try_clone().context("terminal")?;
            let done = self.io.output.clone();
            done.add();
            std::thread::spawn(move || {
                copy_output(r, out);
                done.finish();
            });
        }
        self.io.console = Some(master);
        Ok(self.io)
    }
}

/// Opens the descriptors a process will get (before atoll runs).
pub fn prepare(paths: &StdioPaths) -> Result<Prepared> {
    let mut p = Prepared {
        stdin: None,
        stdout: None,
        stderr: None,
        console: None,
        paths: paths.clone(),
        io: ProcIo::default(),
        stdin_fifo: None,
    };
    if paths.terminal {
        let dir = tempfile::Builder::new()
            .prefix("atoll-pty-")
            .tempdir()
            .context("console socket directory")?;
        let listener =
            UnixListener::bind(dir.path().join("console.sock")).context("console socket")?;
        p.console = Some((dir, listener));
        return Ok(p);
    }
    if !paths.stdin.is_empty() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stdin pipe")?;
        p.stdin = Some(r);
        *p.io.stdin.lock().unwrap() = Some(File::from(w));
        p.stdin_fifo = Some(paths.stdin.clone());
    }
    if !paths.stdout.is_empty() {
        p.stdout = Some(open_output(&paths.stdout)?.into());
    }
    if !paths.stderr.is_empty() {
        p.stderr = Some(open_output(&paths.stderr)?.into());
    }
    Ok(p)
}

/// Opens an output destination for writing: a FIFO containerd reads, or a
/// `file://` URI.
pub fn open_output(uri: &str) -> Result<File> {
    if let Some(path) = uri.strip_prefix("file://") {
        return std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("log file {path}"));
    }
    if let Some(scheme) = uri.split_once("://").map(|(s, _)| s) {
        bail!(
            "stdio URI scheme {scheme:?} is not supported by atoll's shim (use a FIFO or file://)"
        );
    }
    // A FIFO refuses a non-blocking writer (ENXIO) until its reader is
    // there; containerd opens the reading side before it asks for the task,
    // so this only waits when it is slow.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(uri)
        {
            Ok(f) => {
                set_blocking(&f)?;
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("opening {uri}")),
        }
    }
}

fn set_blocking(f: &File) -> Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error()).context("fcntl");
        }
    }
    Ok(())
}

/// Feeds the process's stdin from containerd's FIFO until EOF (containerd
/// closed it) or until `CloseIO` took the writer away.
fn spawn_stdin_copy(fifo: String, writer: Arc<Mutex<Option<File>>>) {
    std::thread::spawn(move || {
        // Blocks until containerd opens the writing side (it already has).
        let Ok(mut input) = File::open(&fifo) else {
            writer.lock().unwrap().take();
            return;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut w = writer.lock().unwrap();
            match w.as_mut() {
                Some(f) => {
                    if f.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                None => return,
            }
        }
        // EOF from containerd: the process sees EOF too (a terminal keeps
        // its master for output).
        let mut w = writer.lock().unwrap();
        if let Some(f) = w.as_ref()
            && !is_tty(f)
        {
            w.take();
        }
    });
}

fn is_tty(f: &File) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(f.as_raw_fd()) == 1 }
}

/// Copies terminal output until the terminal closes (EIO once every slave
/// descriptor is gone).
fn copy_output(mut from: File, mut to: File) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Receives the pty master atoll (libcontainer) sent over the console
/// socket. atoll has exited successfully by now, so the connection and its
/// message are already queued.
fn receive_master(listener: &UnixListener) -> Result<File> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(anyhow!("no terminal arrived on the console socket: {e}")),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the terminal")?;
    for c in msg.cmsgs().context("receiving the terminal")? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            for extra in &fds[1..] {
                // SAFETY: received descriptors are ours to close.
                unsafe { libc::close(*extra) };
            }
            // SAFETY: a freshly received descriptor, owned from here on.
            return Ok(unsafe { File::from_raw_fd(*fd) });
        }
    }
    bail!("the console socket message carried no terminal")
}

/// Path for a process's atoll log (`--log`), inside the bundle.
pub fn log_path(bundle: &Path, name: &str) -> PathBuf {
    bundle.join(format!("{name}-atoll-log.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_pipe_closes_on_close_io() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits(0o600).unwrap()).unwrap();
        let paths = StdioPaths {
            stdin: fifo.to_str().unwrap().into(),
            ..Default::default()
        };
        let mut p = prepare(&paths).unwrap();
        let reader = p.stdin.take().unwrap();
        let io = p.finish().unwrap();
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"hello").unwrap();
        let mut r = File::from(reader);
        let mut got = [0u8; 5];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        io.close_stdin();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap(); // EOF although the FIFO is open
        assert!(rest.is_empty());
    }

    #[test]
    fn outputs_fifo_file_and_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits(0o600).unwrap()).unwrap();
        let f2 = fifo.clone();
        let reader = std::thread::spawn(move || std::fs::read(f2).unwrap());
        let mut w = open_output(fifo.to_str().unwrap()).unwrap();
        w.write_all(b"out").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), b"out");
        let log = dir.path().join("log");
        open_output(&format!("file://{}", log.display()))
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"x");
        let e = open_output("binary:///bin/logger").unwrap_err().to_string();
        assert!(e.contains("binary"), "{e}");
    }
}
