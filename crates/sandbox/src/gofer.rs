//! Starting the gofer: a separate process, forked from the container's
//! init before the kernel confines itself, so it keeps the container's
//! rootfs as its root while the kernel gives its own up.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The gofer's process id and the kernel's end of its socket.
pub struct Gofer {
    pub pid: i32,
    pub sock: OwnedFd,
}

/// Starts the gofer; `offer` are the mounts (destinations) it prepares for
/// the kernel's direct access (see `atoll_gofer::direct`); `readonly_root`:
/// the rootfs is an overlay's lower layer, never written.
pub fn start(
    filter: &seccompiler::BpfProgram,
    offer: &[Vec<u8>],
    readonly_root: bool,
) -> Result<Gofer, String> {
    let mut fds = [0i32; 2];
    // SAFETY: socketpair fills fds.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(format!("gofer socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors we own.
    let (kernel_end, gofer_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the container's init is single-threaded here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork gofer: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(kernel_end);
        run_gofer(gofer_end, filter, offer, readonly_root);
    }
    drop(gofer_end);
    Ok(Gofer {
        pid,
        sock: kernel_end,
    })
}

static mut REPORT_FD: i32 = -1;

fn run_gofer(
    sock: OwnedFd,
    filter: &seccompiler::BpfProgram,
    offer: &[Vec<u8>],
    readonly_root: bool,
) -> ! {
    crate::confine::set_name(c"atoll-gofer");
    // SAFETY: process-wide setup of the gofer child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // `kill --all` and the like target the workload, not the gofer.
        for sig in 1..32 {
            if sig != libc::SIGKILL
                && sig != libc::SIGSTOP
                && sig != libc::SIGSEGV
                && sig != libc::SIGBUS
            {
                libc::signal(sig, libc::SIG_IGN);
            }
        }
        // No network: an empty network namespace of its own.
        libc::unshare(libc::CLONE_NEWNET);
        // Only its socket stays open (as fd 3).
        if sock.as_raw_fd() != 3 {
            libc::dup2(sock.as_raw_fd(), 3);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        // The container's stderr, kept until the gofer is confined, to
        // report a failure there.
        REPORT_FD = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 4);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 3 {
            libc::close(null);
        }
    }
    std::mem::forget(sock);
    let fail = |e: String| -> ! {
        let m = format!("atoll: gofer: {e}\n");
        // SAFETY: writing a buffer to the kept stderr, then exiting.
        unsafe {
            libc::write(REPORT_FD, m.as_ptr() as *const libc::c_void, m.len());
            libc::_exit(1)
        }
    };
    if readonly_root {
        // The rootfs mount of the container's namespace (not the host's
        // directory, not the bind mounts on it) becomes read-only: the
        // clone donated to the kernel is made from it and inherits that,
        // and the gofer's own opens of it fail with EROFS too, so neither
        // a subverted kernel nor the gofer can write the bundle's files.
        // SAFETY: mount(2) with static strings; the gofer still holds
        // CAP_SYS_ADMIN in the container's mount namespace.
        // The mount's other flags are kept (a remount that dropped a
        // locked one would be refused).
        let r = unsafe {
            let mut sv: libc::statvfs = std::mem::zeroed();
            let mut keep = 0;
            if libc::statvfs(c"/".as_ptr(), &mut sv) == 0 {
                for (st, ms) in [
                    (libc::ST_NOSUID, libc::MS_NOSUID),
                    (libc::ST_NODEV, libc::MS_NODEV),
                    (libc::ST_NOEXEC, libc::MS_NOEXEC),
                    (libc::ST_NOATIME, libc::MS_NOATIME),
                    (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                    (libc::ST_RELATIME, libc::MS_RELATIME),
                ] {
                    if sv.f_flag & st != 0 {
                        keep |= ms;
                    }
                }
            }
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
                std::ptr::null(),
            )
        };
        if r != 0 {
            fail(format!(
                "read-only rootfs for the overlay: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let mut server = atoll_gofer::FileServer::new(std::path::Path::new("/"))
        .unwrap_or_else(|e| fail(format!("opening the rootfs: {e}")));
    // Mounts that cannot be cloned (a file bind mount, no privilege) stay
    // behind the gofer.
    let _ = server.offer_mounts(offer);
    crate::confine::confine_gofer(filter).unwrap_or_else(|e| fail(e));
    // SAFETY: our own descriptor.
    unsafe { libc::close(REPORT_FD) };
    atoll_gofer::serve::serve(&server, 3);
    unsafe { libc::_exit(0) }
}
