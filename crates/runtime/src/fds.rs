//! Descriptor slots for the userspace sandbox.
//!
//! libcontainer keeps only descriptors 0..3+preserve_fds open in the
//! container's init. The sandbox needs two more (its log and its control
//! socket), so atoll reserves the two slots right after the preserved ones
//! at startup, before it opens anything else (its own log file would
//! otherwise take them), and fills them at create.

use std::os::fd::{AsRawFd, RawFd};

/// Number of extra descriptors a userspace sandbox inherits.
pub const SANDBOX_FDS: i32 = 2;

/// Slots reserved at startup: enough for either level's init (a vm-level
/// init inherits `vm_level::VM_FDS`, and a tap).
pub const RESERVED_FDS: i32 = 6;

/// Makes sure `first..first+count` are open (on /dev/null, close-on-exec)
/// so nothing else lands there.
pub fn reserve(first: RawFd, count: i32) {
    for fd in first..first + count {
        // SAFETY: fcntl/dup2 on descriptor numbers we own or that are free.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) >= 0 {
                continue;
            }
            let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if n < 0 {
                continue;
            }
            if n != fd {
                libc::dup2(n, fd);
                libc::close(n);
            }
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Puts `src` at descriptor `slot`, inheritable by the container's init.
pub fn place(src: &impl AsRawFd, slot: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 onto a slot reserved for this purpose.
    if unsafe { libc::dup2(src.as_raw_fd(), slot) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
