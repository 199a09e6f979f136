//! exec, signals to every process and ps at the vm level: requests to the
//! guest agent over the VMM's vsock socket in the container's state
//! directory.

use anyhow::{Result, anyhow};
use atoll_agent::client;
use atoll_agent::proto::Request;

use crate::exec::ExecOptions;
use crate::lifecycle::Runtime;
use crate::vm_level;

/// The guest agent's vsock port (atoll_vmm::AGENT_PORT).
const AGENT_PORT: u32 = 1024;
/// How long a request waits for a just-started container to be up in its
/// guest (the VMM's own boot timeout).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// How long one readiness probe waits for its answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Runtime {
    /// A connection to the agent of the guest container `id` runs in: its
    /// own VM's, or for a pod's member its sandbox's (vm_pod.rs).
    pub(crate) fn agent(&self, id: &str) -> Result<std::os::unix::net::UnixStream> {
        let vm = crate::meta::Meta::load(&self.layout, id)
            .ok()
            .and_then(|m| m.pod_sandbox)
            .unwrap_or_else(|| id.to_string());
        let sock = self.layout.vsock_socket(&vm);
        let s = crate::unixsock::connect(&sock)
            .map_err(|e| anyhow!("container {id}: its VM's socket {}: {e}", sock.display()))?;
        client::handshake(s, AGENT_PORT, Some(std::time::Duration::from_secs(30)))
            .map_err(|e| anyhow!("container {id}: {e:#}"))
    }

    /// A connection to the guest agent once container `id`'s process runs
    /// in the guest. `start` returns when the VMM starts, and the guest
    /// may still be booting (about 10 s when it is itself emulated): exec,
    /// `kill --all` and ps right after it wait for the agent to know the
    /// container, as long as the container runs on the host, up to
    /// READY_TIMEOUT.
    pub(crate) fn ready_agent(&self, id: &str) -> Result<std::os::unix::net::UnixStream> {
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let known = self.agent(id).and_then(|s| {
                // A probe left unanswered (a connection the emulated guest
                // lost) is made again on a new one, not waited for
                // without end.
                s.set_read_timeout(Some(PROBE_TIMEOUT))?;
                client::request(
                    s,
                    &Request::Ps {
                        container: id.to_string(),
                    },
                )
                .map_err(|e| anyhow!("container {id}: {e:#}"))
            });
            match known {
                Ok(_) => return self.agent(id),
                Err(e) => {
                    let running = self.load(id).is_ok_and(|(c, _)| {
                        c.status() == libcontainer::container::ContainerStatus::Running
                    });
                    if !running || std::time::Instant::now() > deadline {
                        return Err(e);
                    }
                    // In the log (the shim's, at containerd's debug level):
                    // where a slow exec waited.
                    tracing::debug!("container {id}: the guest agent is not ready yet: {e:#}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }

    /// exec into a vm-level container: the process starts in the guest,
    /// in the container's namespaces there. In the foreground atoll relays
    /// its stdio and signals and returns its exit code; detached, a relay
    /// process is left behind (its pid goes to the pid file).
    pub fn exec_vm(&self, o: &ExecOptions) -> Result<i32> {
        let prepared = self.prepare_exec(o)?;
        let setup = || -> Result<(Request, Option<Terminal>)> {
            let mut process = atoll_agent::proto::Process {
                seccomp: Some(vm_level::saved_guest_seccomp(&self.layout, &o.id)?),
                ..vm_level::agent_process(&prepared.process)
            };
            let term = if process.terminal {
                let t = Terminal::open(o)?;
                if process.console_size.is_none() {
                    process.console_size = client::window_size(t.fd());
                }
                Some(t)
            } else {
                None
            };
            let req = Request::Run {
                container: Box::new(vm_level::agent_container(&o.id, &prepared.spec)),
                process: Box::new(process),
                init: false,
            };
            Ok((req, term))
        };
        let made = setup().and_then(|(req, term)| Ok((req, term, self.ready_agent(&o.id)?)));
        self.report_exec(o, Some(&prepared.meta), &made);
        let (req, term, stream) = made?;
        let signals = client::forwarded_signals()?;
        // A detached relay makes the new terminal its controlling one, so
        // that the receiver's resizes reach it as SIGWINCH.
        let ctty = match &term {
            Some(t @ Terminal::Pty { .. }) => Some(t.fd()),
            _ => None,
        };
        let relay = move || -> i32 {
            let fd = term.as_ref().map(Terminal::fd);
            let io = client::Stdio {
                stdin: Some(fd.unwrap_or(0)),
                stdout: fd.unwrap_or(1),
                stderr: fd.unwrap_or(2),
                signals: Some(signals),
                terminal: fd,
            };
            let r = client::run(stream, &req, io, |_| {});
            drop(term);
            match r {
                Ok(st) if st & 0x7f != 0 => 128 + (st & 0x7f),
                Ok(st) => (st >> 8) & 0xff,
                Err(e) => {
                    eprintln!("atoll: error: exec in container: {e:#}");
                    255
                }
            }
        };
        if !o.detach {
            if let Some(p) = &o.pid_file {
                std::fs::write(p, std::process::id().to_string())?;
            }
            return Ok(relay());
        }
        // SAFETY: the CLI is single-threaded; the child only relays and exits.
        match unsafe { nix::unistd::fork() }.map_err(|e| anyhow!("fork: {e}"))? {
            nix::unistd::ForkResult::Child => {
                let _ = nix::unistd::setsid();
                if let Some(fd) = ctty {
                    // SAFETY: TIOCSCTTY on the terminal we hold.
                    unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
                }
                std::process::exit(relay());
            }
            nix::unistd::ForkResult::Parent { child } => {
                if let Some(p) = &o.pid_file {
                    std::fs::write(p, child.as_raw().to_string())?;
                }
                Ok(0)
            }
        }
    }

    /// `kill --all` at the vm level: every process of the container in the
    /// guest gets the signal.
    pub(crate) fn vm_signal_all(&self, id: &str, signal: i32) -> Result<()> {
        let s = self.ready_agent(id)?;
        client::request(
            s,
            &Request::Signal {
                container: id.to_string(),
                signal,
                all: true,
            },
        )
        .map(|_| ())
        .map_err(|e| anyhow!("container {id}: {e:#}"))
    }

    /// The container's processes as the guest sees them (guest pids).
    pub fn vm_processes(&self, id: &str) -> Result<Vec<i32>> {
        let s = self.ready_agent(id)?;
        let v = client::request(
            s,
            &Request::Ps {
                container: id.to_string(),
            },
        )?;
        serde_json::from_value(v).map_err(|e| anyhow!("container {id}: ps: {e}"))
    }

    /// The guest's counters (memory, boot id, uptime).
    pub fn vm_stats(&self, id: &str) -> Result<serde_json::Value> {
        let s = self.agent(id)?;
        client::request(s, &Request::Stats)
    }
}

/// The host side of an exec'd process's terminal (the guest's agent gives
/// the process a terminal of its own; this side passes bytes through, so
/// it is raw): a new pseudo-terminal whose master goes to
/// `--console-socket` (runc's protocol; the relay reads and writes its
/// slave), or the caller's own terminal, restored afterwards.
pub(crate) enum Terminal {
    /// The master is the console socket's receiver's alone: its close
    /// ends the terminal.
    Pty {
        slave: std::os::fd::OwnedFd,
    },
    Caller(libc::termios),
}

fn make_raw(fd: i32) -> Option<libc::termios> {
    // SAFETY: tcgetattr/tcsetattr on a terminal descriptor we hold.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return None;
        }
        let saved = t;
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(fd, libc::TCSANOW, &t);
        Some(saved)
    }
}

impl Terminal {
    fn open(o: &ExecOptions) -> Result<Terminal> {
        if let Some(console) = &o.console_socket {
            let p = nix::pty::openpty(None, None).map_err(|e| anyhow!("openpty: {e}"))?;
            make_raw(std::os::fd::AsRawFd::as_raw_fd(&p.slave));
            crate::control::send_console(console, &p.master)?;
            return Ok(Terminal::Pty { slave: p.slave });
        }
        if o.detach {
            return Err(anyhow!("exec -d with a terminal needs --console-socket"));
        }
        make_raw(0).map(Terminal::Caller).ok_or_else(|| {
            anyhow!("exec with a terminal needs --console-socket or a terminal on stdin")
        })
    }

    fn fd(&self) -> i32 {
        match self {
            Terminal::Pty { slave, .. } => std::os::fd::AsRawFd::as_raw_fd(slave),
            Terminal::Caller(_) => 0,
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Terminal::Caller(saved) = self {
            // SAFETY: restoring the caller's terminal settings.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
        }
    }
}
