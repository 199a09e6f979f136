//! A copy out of a host file's pages that survives the file shrinking
//! under it.
//!
//! The kernel reads large host files through a window of the file mapped
//! into its own address space (`vfs::hostwindow`), a memory copy where a
//! `preadv` would be a host syscall. A page of that window past the file's
//! end raises SIGBUS when touched, and the file can shrink at any time:
//! something outside the sandbox may truncate it. A SIGBUS in the kernel
//! must not end the kernel, and so every copy out of a window goes through
//! [`copy`], which a fault stops instead (gVisor's `safecopy` answers the
//! same need the same way).
//!
//! Safety argument:
//! - [`copy`] is one `rep movsb` in assembly (`atoll_safecopy_movs`). The
//!   handler installed by [`install`] for SIGBUS and SIGSEGV takes a
//!   fault as the copy's only when the host raised it (not a `kill`),
//!   *at that instruction*, on the source bytes the copy had left (a
//!   fault on the destination is a kernel bug, never a short copy). Then
//!   it moves the instruction pointer to
//!   `atoll_safecopy_fault`, which returns what was left to copy (RCX:
//!   `rep movsb` is restartable, so at a fault RCX, RSI and RDI tell
//!   exactly how far it got). Nothing else of the interrupted state is
//!   touched, and the copy holds no lock and owns no resource a jump out
//!   of it could leak.
//! - Any other fault goes to the handler that was there before (the
//!   standard library's stack-overflow handler, libFuzzer's), as if this
//!   one did not exist: a fault anywhere else in the kernel is the crash
//!   it was. Once the kernel is confined (`confined`), such a fault ends
//!   it by its own signal instead (that handler would need
//!   `rt_sigaction`, which the kernel's filter refuses by killing it),
//!   and a SIGBUS or SIGSEGV sent with `kill` is ignored.
//! - The handler only reads and writes the interrupted context it is
//!   given: it is async-signal-safe.
//! - The caller must pass a destination it owns (`len` writable bytes)
//!   and a source that is readable or a mapping of a file whose pages may
//!   fault; the copy never writes past `dst + len`.
//! - The handler is installed before the kernel confines itself (its
//!   filter does not allow `rt_sigaction`), once per process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

std::arch::global_asm!(
    ".pushsection .text.atoll_safecopy,\"ax\",@progbits",
    ".globl atoll_safecopy",
    ".type atoll_safecopy,@function",
    "atoll_safecopy:",
    "    mov rcx, rdx",
    ".globl atoll_safecopy_movs",
    "atoll_safecopy_movs:",
    "    rep movsb",
    "    xor eax, eax",
    "    ret",
    ".globl atoll_safecopy_fault",
    "atoll_safecopy_fault:",
    "    mov rax, rcx",
    "    ret",
    ".size atoll_safecopy, . - atoll_safecopy",
    ".popsection",
);

unsafe extern "C" {
    /// Copies `len` bytes from `src` to `dst`; returns how many were left
    /// when a fault stopped it (0: all copied).
    fn atoll_safecopy(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static atoll_safecopy_movs: u8;
    static atoll_safecopy_fault: u8;
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The kernel confined itself (see `confined`).
static CONFINED: AtomicBool = AtomicBool::new(false);
/// The disposition before ours: its handler (or SIG_DFL) and flags, per
/// signal (SIGBUS, SIGSEGV).
static PREVIOUS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static PREVIOUS_FLAGS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

fn slot(sig: i32) -> usize {
    if sig == libc::SIGBUS { 0 } else { 1 }
}

extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the host passes this SA_SIGINFO handler a valid ucontext.
    unsafe {
        let uc = uc as *mut libc::ucontext_t;
        let gregs = &mut (*uc).uc_mcontext.gregs;
        // A fault the host raised (not a kill(2): si_code > 0), at the
        // copy's instruction, on the bytes left of its source: the
        // copy's. A fault on its destination is a bug of the kernel's,
        // never taken for a short copy.
        let raised = (*info).si_code > 0;
        let src = gregs[libc::REG_RSI as usize] as usize;
        let left = gregs[libc::REG_RCX as usize] as usize;
        let at = (*info).si_addr() as usize;
        if raised
            && gregs[libc::REG_RIP as usize] as usize == &raw const atoll_safecopy_movs as usize
            && at >= src
            && at - src < left
        {
            gregs[libc::REG_RIP as usize] = &raw const atoll_safecopy_fault as usize as i64;
            return;
        }
        if CONFINED.load(Ordering::Relaxed) {
            if !raised {
                // Sent, not raised: nothing to run again. Ignored, as the
                // host cannot make this confined kernel take the default
                // action (SIGKILL ends it).
                return;
            }
            // The confined kernel may not change dispositions, which the
            // handler before ours (the standard library's) would do to
            // die by this signal, and its filter would kill it for that
            // instead. The same end, told truthfully: return with the
            // signal blocked, and the fault that comes again is the
            // host's to deliver with its default action (a blocked
            // synchronous fault is forced: unblocked, SIG_DFL).
            libc::sigaddset(&mut (*uc).uc_sigmask, sig);
            return;
        }
        let i = slot(sig);
        let prev = PREVIOUS[i].load(Ordering::Relaxed);
        let flags = PREVIOUS_FLAGS[i].load(Ordering::Relaxed) as i32;
        if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(prev);
                f(sig, info, uc as *mut libc::c_void);
            } else {
                let f: extern "C" fn(i32) = std::mem::transmute(prev);
                f(sig);
            }
            return;
        }
        // No handler before ours: the default action, which for these
        // signals ends the process (returning faults again, then dies).
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Installs the fault handler for this process (idempotent). Before the
/// kernel confines itself.
pub fn install() -> std::io::Result<()> {
    // One installer at a time: two racing ones would each take the other's
    // handler for the one before ours, and a chained fault would call
    // itself without end.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    for sig in [libc::SIGBUS, libc::SIGSEGV] {
        // SAFETY: reading and setting this process's dispositions.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if old.sa_sigaction == handler as *const () as usize {
                // Ours already: recorded as the one before ours, a
                // chained fault would call itself without end.
                continue;
            }
            PREVIOUS[slot(sig)].store(old.sa_sigaction, Ordering::Relaxed);
            PREVIOUS_FLAGS[slot(sig)].store(old.sa_flags as usize, Ordering::Relaxed);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            // On the stack-overflow handler's alternate stack where the
            // thread has one: the previous handler may need it.
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

/// The process confined itself: a fault outside a copy ends it by that
/// signal at once, instead of going to the handler before ours.
pub fn confined() {
    CONFINED.store(true, Ordering::Relaxed);
}

/// Whether [`copy`] may be used on memory that can fault.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Copies `dst.len()` bytes from `src` into `dst`. `Err(n)`: a fault in
/// the source stopped it after `n` bytes.
///
/// # Safety
/// `src` must be `dst.len()` bytes of readable memory or of a file mapping
/// whose pages may fault, and [`install`] must have run.
pub unsafe fn copy(dst: &mut [u8], src: *const u8) -> Result<(), usize> {
    debug_assert!(installed());
    // SAFETY: dst is ours for its length; the caller vouches for src.
    let left = unsafe { atoll_safecopy(dst.as_mut_ptr(), src, dst.len()) };
    if left == 0 {
        Ok(())
    } else {
        Err(dst.len() - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_copy_from_a_truncated_mapping_stops_at_the_fault() {
        install().unwrap();
        let f = tempfile_of(3 * 4096);
        let fd = f.as_raw_fd();
        // SAFETY: a private test mapping of our own file.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } as *const u8;
        assert_ne!(base as *mut libc::c_void, libc::MAP_FAILED);
        let mut buf = vec![0u8; 3 * 4096];
        // SAFETY: the mapping is 3 pages of the file.
        unsafe { copy(&mut buf, base) }.unwrap();
        assert!(buf.iter().all(|&b| b == 0x5a));
        // The file shrinks to 1.5 pages: the copy reads the first two
        // pages (the second one's tail as zeros) and stops at the third.
        assert_eq!(unsafe { libc::ftruncate(fd, 4096 + 2048) }, 0);
        let mut buf = vec![0u8; 3 * 4096];
        assert_eq!(unsafe { copy(&mut buf, base) }, Err(2 * 4096));
        assert!(buf[..4096 + 2048].iter().all(|&b| b == 0x5a));
        assert!(buf[4096 + 2048..].iter().all(|&b| b == 0));
        // From an offset inside the missing page: nothing at all.
        let mut buf = vec![0u8; 100];
        assert_eq!(unsafe { copy(&mut buf, base.add(2 * 4096 + 8)) }, Err(0));
        unsafe { libc::munmap(base as *mut libc::c_void, 3 * 4096) };
    }

    #[test]
    fn a_fault_on_the_destination_is_not_a_short_copy() {
        // A copy into memory the kernel may not write is a kernel bug: the
        // process must die by SIGSEGV, not see a short copy. In a child,
        // which only copies and exits.
        install().unwrap();
        // SAFETY: a page of our own, made inaccessible; the child only
        // makes the copy and exits.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            assert_ne!(page as *mut libc::c_void, libc::MAP_FAILED);
            let src = [0x5au8; 64];
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                // Its death leaves no core file behind.
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                let dst = std::slice::from_raw_parts_mut(page, 64);
                let code = match copy(dst, src.as_ptr()) {
                    Ok(()) => 10,
                    Err(_) => 11,
                };
                libc::_exit(code);
            }
            let status = crate::testing::wait_child(pid);
            libc::munmap(page as *mut libc::c_void, 4096);
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
                "the child was not killed by SIGSEGV: status {status:#x}"
            );
        }
    }

    fn tempfile_of(len: usize) -> std::fs::File {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!(
            "atoll-safecopy-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(&vec![0x5a; len]).unwrap();
        f
    }
}
