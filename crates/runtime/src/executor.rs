//! What the container's init becomes once libcontainer has set it up
//! (namespaces, cgroup, rootfs, capabilities): the workload itself for the
//! native level, the application kernel for the userspace level.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use crate::level::Isolation;

/// Entry point of the userspace level, provided by the binary that links
/// the application kernel (keeps this crate free of the kernel).
pub type SandboxEntry = fn(&SandboxLaunch) -> Result<(), String>;

/// Everything the application kernel needs, captured before the fork into
/// the container's init.
#[derive(Clone)]
pub struct SandboxLaunch {
    /// The bundle's own spec: the workload's user, capabilities, seccomp
    /// profile and rlimits are applied by the kernel, virtually.
    pub spec: Spec,
    pub id: String,
    /// Where the kernel creates its control socket (exec, ps).
    pub control_socket: std::path::PathBuf,
    pub options: SandboxOptions,
}

/// A tenant's egress rules as the sandbox's stack enforces them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressOptions {
    /// (cidr, ports, protocol) as the policy wrote them (validated there).
    pub allow: Vec<(String, String, String)>,
    pub deny: Vec<(String, String, String)>,
    /// The node's own addresses, refused unless an allow rule at least as
    /// specific admits them (filled in by create, on the host's side).
    pub node: Vec<std::net::IpAddr>,
}

/// Debug switches for the sandbox and the descriptors it inherits.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    /// Log every workload syscall with decoded arguments (`--strace`).
    pub strace: bool,
    /// Sandbox log file (kernel messages, strace, refused syscalls);
    /// default: sandbox.log in atoll's state directory of the container.
    pub log_file: Option<std::path::PathBuf>,
    /// Attempt this host syscall after confinement (tests of the filter).
    pub debug_confinement: Option<String>,
    /// The platform (`--platform`; resolved with the annotation and the
    /// config file by create).
    pub platform: Option<String>,
    /// Who serves AF_INET sockets (`--network`; resolved with the
    /// annotation and the config file by create): host or sandbox.
    pub network: Option<String>,
    /// Where rootfs writes go (`--overlay`; resolved with the annotation
    /// and the config file by create): none or root:memory.
    pub overlay: Option<String>,
    /// The network namespace atoll create runs in (st_dev, st_ino): a
    /// container still in it shares the node's, whose interfaces the
    /// sandbox must never take over.
    pub runtime_netns: Option<(u64, u64)>,
    /// With `--network sandbox`: the tenant's network policy (None: the
    /// tenant has none; the stack then refuses only cloud metadata).
    pub egress: Option<EgressOptions>,
    /// Filled in by create: the descriptor numbers, in the init, of the
    /// sandbox log and the control socket, and how many descriptors from
    /// 3 on belong to the workload (--preserve-fds).
    pub log_fd: Option<i32>,
    pub control_fd: Option<i32>,
    pub preserved_fds: i32,
}

#[derive(Clone)]
pub struct AtollExecutor {
    pub level: Isolation,
    pub new_keyring: bool,
    pub sandbox: Option<(SandboxEntry, SandboxLaunch)>,
    /// At the native level: the container's seccomp filter and the
    /// capabilities to end with, applied right before the workload's exec
    /// (the init's and every exec'd process's; see seccomp_filter.rs).
    pub confinement: Option<crate::confinement::Confinement>,
    /// At the vm level: the VMM entry and what it boots.
    pub vm: Option<(crate::vm_level::VmEntry, crate::vm_level::VmLaunch)>,
    /// At the userspace level, for a pod's container that joins its
    /// sandbox's kernel: the descriptor (in the init) of its control
    /// connection; the init is the container's proxy (pod.rs).
    pub pod_member: Option<i32>,
    /// At the vm level, for a pod's container that runs in its sandbox's
    /// VM: the descriptor (in the init) of its connection to the guest
    /// agent and the request that starts it; the init is its proxy
    /// (vm_pod.rs).
    pub vm_member: Option<(i32, atoll_agent::proto::Request)>,
}

impl AtollExecutor {
    pub fn native(new_keyring: bool) -> AtollExecutor {
        AtollExecutor {
            level: Isolation::Native,
            new_keyring,
            sandbox: None,
            confinement: None,
            vm: None,
            pod_member: None,
            vm_member: None,
        }
    }
}

/// Gives the container a session keyring of its own (runc does this unless
/// `--no-new-keyring`), so it cannot read keys of whoever started it. The
/// default seccomp profile denies keyctl; then the keyring is unreachable
/// anyway and the EPERM is not an error.
fn join_new_keyring() -> Result<(), ExecutorError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = c"_ses.atoll";
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::EACCES) => {}
            _ => {
                return Err(ExecutorError::Other(format!(
                    "joining a new session keyring: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Rust's runtime ignores SIGPIPE in every Rust program (atoll too) and an
/// ignored disposition survives execve, so without this the container's
/// process would start with SIGPIPE ignored where runc's starts with the
/// default: `yes | head -1` would see EPIPE instead of dying quietly.
/// Signals the caller of the runtime ignored stay ignored, as with runc.
pub fn restore_sigpipe() {
    // SAFETY: setting a disposition to SIG_DFL installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// libcontainer 0.7 points stdio that was /dev/null at the container's
/// /dev/null, but opens it read-only, so writes to stdout and stderr fail
/// with EBADF (runc opens it read-write). Reopen it read-write.
pub fn fix_dev_null_stdio() {
    // SAFETY: fstat/open/dup2 on the standard descriptors of this process.
    unsafe {
        for fd in 0..3 {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 || st.st_mode & libc::S_IFMT != libc::S_IFCHR {
                continue;
            }
            if st.st_rdev != libc::makedev(1, 3) {
                continue;
            }
            if libc::fcntl(fd, libc::F_GETFL) & libc::O_ACCMODE == libc::O_RDWR {
                continue;
            }
            let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if n >= 0 {
                libc::dup2(n, fd);
                libc::close(n);
            }
        }
    }
}

impl Executor for AtollExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        fix_dev_null_stdio();
        if self.new_keyring {
            join_new_keyring()?;
        }
        match (&self.level, &self.sandbox) {
            (Isolation::Userspace, _) if self.pod_member.is_some() => {
                let fd = self.pod_member.unwrap_or(-1);
                crate::control::exit_like(run_pod_member(fd))
            }
            (Isolation::Userspace, Some((entry, launch))) => {
                if let Err(e) = entry(launch) {
                    // Past create nobody reads libcontainer's error
                    // channel: say it where a pod member's error goes.
                    eprintln!("atoll: error: starting the application kernel: {e}");
                    std::process::exit(127);
                }
                // The kernel exits the process itself with the workload's status.
                std::process::exit(0)
            }
            (Isolation::Userspace, None) => Err(ExecutorError::Other(
                "userspace level selected but no application kernel is linked".into(),
            )),
            (Isolation::Vm, _) if self.vm_member.is_some() => {
                let (fd, req) = self.vm_member.clone().unwrap();
                crate::control::exit_like(run_vm_member(fd, &req))
            }
            (Isolation::Vm, _) => match &self.vm {
                Some((entry, launch)) => {
                    if let Err(e) = entry(launch) {
                        eprintln!("atoll: error: starting the VM: {e}");
                        std::process::exit(127);
                    }
                    // The VMM exits the process itself with the guest
                    // process's status.
                    std::process::exit(0)
                }
                None => Err(ExecutorError::Other(
                    "vm level selected but no VMM is linked".into(),
                )),
            },
            (Isolation::Native, _) => {
                restore_sigpipe();
                // Last: after the keyring (keyctl is not in the default
                // profile), before the exec.
                if let Some(c) = &self.confinement {
                    c.apply()?;
                }
                DefaultExecutor {}.exec(spec)
            }
        }
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        match self.level {
            // The workload's binary is resolved by the application kernel
            // inside the sandbox, not by the host.
            Isolation::Userspace | Isolation::Vm => Ok(()),
            Isolation::Native => DefaultExecutor {}.validate(&with_default_path(spec)),
        }
    }
}

/// A pod container's init at start: asks the pod's kernel over the
/// connection at `fd` to start the container's process with this
/// process's stdio (the shim's pipes, or the terminal libcontainer set
/// up), then stands in for it until it exits. Never returns an error:
/// what the kernel refuses is printed and becomes the exit status.
fn run_pod_member(fd: i32) -> Option<i32> {
    use std::os::fd::FromRawFd;
    // SAFETY: the runtime placed the connection at this descriptor for us.
    let conn = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    let req = serde_json::json!({"op": "start"});
    match crate::control::start_on(conn, &req, [0, 1, 2]) {
        Ok(session) => session.proxy(),
        Err(e) => {
            eprintln!("atoll: error: starting the container in its pod: {e:#}");
            // As a shell reports a command that could not run.
            Some(127 << 8)
        }
    }
}

/// A pod container's init at the vm level, at start: asks the guest agent
/// over the connection at `fd` (made and checked by create) to start the
/// container in the pod's VM, then relays this process's stdio (the
/// shim's pipes, or the terminal libcontainer set up) and the signals it
/// receives until the container's process exits, and exits as it did.
/// What the agent refuses is printed and becomes the exit status.
fn run_vm_member(fd: i32, req: &atoll_agent::proto::Request) -> Option<i32> {
    use atoll_agent::client;
    use std::os::fd::FromRawFd;
    // SAFETY: the runtime placed the connection at this descriptor for us.
    let conn = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    let terminal =
        matches!(req, atoll_agent::proto::Request::Run { process, .. } if process.terminal);
    if terminal {
        // The guest's terminal does the line discipline: this side passes
        // bytes through.
        // SAFETY: tcgetattr/tcsetattr on our own stdin.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
    let run = || -> anyhow::Result<i32> {
        let signals = client::forwarded_signals()?;
        let io = client::Stdio {
            stdin: Some(0),
            stdout: 1,
            stderr: 2,
            signals: Some(signals),
            terminal: terminal.then_some(0),
        };
        client::run(conn, req, io, |_| {})
    };
    match run() {
        Ok(status) => Some(status),
        Err(e) => {
            eprintln!("atoll: error: starting the container in its pod's VM: {e:#}");
            // As a shell reports a command that could not run.
            Some(127 << 8)
        }
    }
}

/// libcontainer refuses a process whose environment has no PATH, even to
/// run `/pause`; runc does not (execvp falls back to a default search
/// path). Validate as if the usual default were set; the process's own
/// environment is left as the spec says. (Found with CRI: a pause image
/// without Env.)
fn with_default_path(spec: &Spec) -> std::borrow::Cow<'_, Spec> {
    let Some(p) = spec.process() else {
        return std::borrow::Cow::Borrowed(spec);
    };
    let env = p.env().clone().unwrap_or_default();
    if env.iter().any(|e| e.starts_with("PATH=")) {
        return std::borrow::Cow::Borrowed(spec);
    }
    let mut p = p.clone();
    let mut env = env;
    env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    p.set_env(Some(env));
    let mut s = spec.clone();
    s.set_process(Some(p));
    std::borrow::Cow::Owned(s)
}
