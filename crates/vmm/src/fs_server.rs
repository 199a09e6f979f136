//! The virtio-fs file server: a process of its own, forked from the VMM
//! before the VMM has any thread, device or guest, and jailed before the
//! guest runs. It serves the guest's FUSE requests with fuse-backend-rs's
//! passthrough file system over vhost-user ([`backend`]), the protocol
//! Cloud Hypervisor and Kata speak to virtiofsd: the VMM sends it guest
//! RAM (a memfd), the queues' addresses, and the KVM ioeventfd and irqfd
//! of each queue; from then on the guest's requests and the server's
//! replies never pass through the VMM.
//!
//! What the server can reach is what it was forked with and keeps: the
//! VMM is the container's init, pivoted into the bundle's rootfs, so `/`
//! is that rootfs and nothing else exists by path; it keeps no descriptor
//! of the VMM's but its vhost-user socket, the readiness pipe and stderr
//! (no /dev/kvm, no VM or vCPU descriptor, no tap, no vsock socket); it
//! holds only the capabilities acting for the guest's users takes
//! ([`KEPT_CAPS`]); no_new_privs and its own seccomp filter (every thread,
//! [`crate::seccomp::Role::FsServer`]); it dies with the VMM (a parent
//! death signal, and its socket's EOF ends it too).
//!
//! A VMM whose server has died sees its socket hang up and answers the
//! guest's requests itself with EIO ([`crate::virtio::fs`]): the guest
//! gets errors, the VMM goes on.

pub mod backend;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use seccompiler::BpfProgram;
use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// The process's name (comm), which the tests look for.
pub const NAME: &str = "atoll-fs";

/// The capabilities the server keeps of the VMM's (the runtime's
/// `vm_level::VMM_CAPS` gives the reason for each): CHOWN, DAC_OVERRIDE,
/// DAC_READ_SEARCH, FOWNER, FSETID, SETGID, SETUID. Everything else goes
/// from its effective, permitted, inheritable, ambient and (where it may)
/// bounding sets.
/// (Bits 0-4, 6 and 7: 0xdf, include/uapi/linux/capability.h.)
pub const KEPT_CAPS: u64 = 0xdf;

/// The VMM's handle on its file server.
pub struct FsServer {
    pub pid: i32,
    /// The vhost-user socket (the VMM is the frontend).
    pub stream: UnixStream,
    /// Readable once the server is confined ("ok") or has failed (why).
    ready: File,
}

impl FsServer {
    /// Waits until the server is confined, or returns why it could not
    /// start.
    pub fn wait_ready(&mut self) -> Result<()> {
        let mut s = String::new();
        self.ready
            .read_to_string(&mut s)
            .context("the file server's readiness")?;
        match s.trim_end() {
            "ok" => Ok(()),
            "" => bail!(
                "the file server (pid {}) ended before it was ready",
                self.pid
            ),
            why => bail!("the file server: {why}"),
        }
    }
}

/// Forks the file server for directory `root` (as this process sees it),
/// to run under `filter` (None: unconfined, for tests of the protocol
/// only). Must be called while this process has a single thread: the
/// child goes on to run Rust code (the file system, the vhost-user
/// daemon), which a fork of a multi-threaded process may deadlock in.
pub fn spawn(root: &str, filter: Option<BpfProgram>) -> Result<FsServer> {
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
        });
    if threads.as_deref() != Some("1") {
        bail!(
            "the file server must be forked by a single-threaded VMM (threads: {})",
            threads.unwrap_or_else(|| "unknown".into())
        );
    }
    // The vhost-user connection. vhost-user-backend accepts it from a
    // listening socket only, so the VMM listens on an abstract name (no
    // file in the rootfs, which may be read-only and is the guest's) and
    // connects before the fork: the connection is the first in the
    // listener's queue, which the server accepts once and closes, and
    // whose peer it checks is the VMM (see `peer_is`).
    let mut rnd = [0u8; 8];
    // SAFETY: getrandom into a local buffer of its length.
    if unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), rnd.len(), 0) } != rnd.len() as isize {
        bail!("getrandom: {}", std::io::Error::last_os_error());
    }
    let name = format!(
        "atoll-fs-{}-{:016x}",
        std::process::id(),
        u64::from_ne_bytes(rnd)
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr).context("the file server's socket")?;
    let stream = UnixStream::connect_addr(&addr).context("the file server's socket")?;
    let (ready_r, ready_w) = pipe()?;
    let root = root.to_string();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the process has one thread (checked above); the child only
    // runs `child`, which never returns.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => child(&root, listener, ready_w, filter, parent),
        pid => Ok(FsServer {
            pid,
            stream,
            ready: File::from(ready_r),
        }),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into a two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The server process: jails itself, says whether it could on `ready`,
/// serves until the VMM hangs up and exits.
fn child(
    root: &str,
    listener: UnixListener,
    ready: OwnedFd,
    filter: Option<BpfProgram>,
    parent: i32,
) -> ! {
    let mut ready = File::from(ready);
    let mut daemon = match jail_and_start(root, listener, &ready, filter, parent) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            // SAFETY: ends the child without running the VMM's exit paths.
            unsafe { libc::_exit(1) }
        }
    };
    let _ = ready.write_all(b"ok\n");
    drop(ready);
    // Until the VMM hangs up (or dies: the death signal).
    let code = match daemon.wait() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            1
        }
    };
    // SAFETY: as above.
    unsafe { libc::_exit(code) }
}

fn jail_and_start(
    root: &str,
    listener: UnixListener,
    ready: &File,
    filter: Option<BpfProgram>,
    parent: i32,
) -> Result<VhostUserDaemon<Arc<backend::FsBackend>>> {
    // SAFETY: prctl and signal-mask calls on this process only.
    unsafe {
        // Dies with the VMM, even if the VMM is killed before its socket
        // closes (and if the VMM is already gone, at once).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let comm = std::ffi::CString::new(NAME).unwrap();
        libc::prctl(libc::PR_SET_NAME, comm.as_ptr());
        // The VMM blocks the signals it forwards to the guest; the server
        // forwards nothing and takes the default action of each.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    close_all_but(&[2, listener.as_raw_fd(), ready.as_raw_fd()])?;
    let fs = PassthroughFs::<()>::new(Config {
        root_dir: root.to_string(),
        // The guest is the only writer of its rootfs while it runs.
        cache_policy: CachePolicy::Auto,
        xattr: true,
        do_import: true,
        ..Default::default()
    })
    .map_err(|e| anyhow!("{root}: {e}"))?;
    fs.import().map_err(|e| anyhow!("{root}: {e}"))?;
    keep_only_caps(KEPT_CAPS)?;
    let backend = Arc::new(backend::FsBackend::new(fs));
    // Starts the queues' worker thread.
    let mut daemon = VhostUserDaemon::new(
        NAME.to_string(),
        backend,
        GuestMemoryAtomic::new(GuestMemoryMmap::new()),
    )
    .map_err(|e| anyhow!("vhost-user daemon: {e}"))?;
    // Accepts the VMM's connection (queued before the fork) and starts
    // the thread that handles its messages; the listener goes with
    // `listener` at the end of this statement.
    let sockets = socket_fds();
    daemon
        .start(&mut Listener::from(listener))
        .map_err(|e| anyhow!("vhost-user connection: {e}"))?;
    peer_is(&sockets, parent)?;
    // The filter goes on every thread at once (TSYNC): the two the daemon
    // started have only handled the VMM's messages so far, which precede
    // the guest (the VMM waits for "ok" before any vCPU runs). Sets
    // no_new_privs.
    if let Some(f) = filter {
        seccompiler::apply_filter_all_threads(&f)
            .map_err(|e| anyhow!("installing the seccomp filter: {e}"))?;
    }
    Ok(daemon)
}

/// This process's descriptors that are sockets.
fn socket_fds() -> Vec<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Checks that the connection the daemon accepted (the one socket not in
/// `before`) is the VMM's: the abstract name is reachable by any process
/// of the network namespace, and one that connected between the VMM's
/// `listen` and `connect` would be first in the queue. The server then
/// ends before it serves anything (and the VMM's start fails).
fn peer_is(before: &[RawFd], vmm: i32) -> Result<()> {
    let new: Vec<RawFd> = socket_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    let [fd] = new[..] else {
        bail!("vhost-user connection: {} new sockets, not 1", new.len());
    };
    // SAFETY: ucred is plain old data; getsockopt fills it, its length
    // given.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED into a ucred of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        bail!("SO_PEERCRED: {}", std::io::Error::last_os_error());
    }
    if cred.pid != vmm {
        bail!(
            "the vhost-user connection is from pid {}, not the VMM ({vmm})",
            cred.pid
        );
    }
    Ok(())
}

/// Closes every descriptor but `keep` (close_range over the gaps).
fn close_all_but(keep: &[RawFd]) -> Result<()> {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from = 0u32;
    for k in keep.into_iter().map(|k| k as u32).chain([u32::MAX]) {
        if k > from {
            // SAFETY: closes descriptors of this process nothing will use:
            // everything of the VMM's the server has no need for.
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0) };
            if r < 0 {
                bail!("close_range: {}", std::io::Error::last_os_error());
            }
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

/// Keeps only `keep` (of those it has) in the process's effective and
/// permitted sets; empties the inheritable and ambient sets and drops
/// the rest from the bounding set where CAP_SETPCAP allows.
fn keep_only_caps(keep: u64) -> Result<()> {
    let mut d = crate::seccomp::capget().map_err(|e| anyhow!("capget: {e}"))?;
    // SAFETY: prctl calls on this process's capability sets; failures
    // (no CAP_SETPCAP: the bounding set stays) are harmless.
    unsafe {
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(40);
        for cap in 0..=last.min(63) {
            if keep & (1 << cap) == 0 {
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    for (i, w) in d.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        w.permitted &= k;
        w.effective = w.permitted;
        w.inheritable = 0;
    }
    crate::seccomp::capset(&d).map_err(|e| anyhow!("capset: {e}"))?;
    Ok(())
}
