//! The XSAVE image of a workload thread's FPU state, as both platforms
//! keep it and signal frames carry it.
//!
//! Some components the host enables only for a process that asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`): those CPUID says extended feature
//! disable (XFD) covers, today AMX's tile data (8 KiB). Linux leaves them
//! out of a process's signal frames until it asks, and the kernel serves
//! no such request, so for a workload they stay in their initial state:
//! the platforms neither save nor restore them (a restore of a component
//! XFD arms would fault) and the image is the size of Linux's frames.

/// The XSAVE features enabled on this host (XCR0).
pub fn xcr0() -> u64 {
    // SAFETY: xgetbv(0) is available wherever XSAVE is (OSXSAVE, which
    // x86-64 Linux always sets on CPUs with XSAVE, and which systrap's
    // `supported` checks).
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

/// The enabled components XFD covers (Linux's dynamic features).
pub fn dynamic_features() -> u64 {
    let xcr0 = xcr0();
    (2..63)
        .filter(|&i| xcr0 & (1u64 << i) != 0)
        .filter(|&i| core::arch::x86_64::__cpuid_count(0xD, i).ecx & 4 != 0)
        .fold(0, |m, i| m | 1u64 << i)
}

/// The dynamic features the platforms know to leave out: AMX's tile
/// data. systrap's `supported` refuses a CPU with others.
pub const DYNAMIC_KNOWN: u64 = 1 << 18;

/// The XSAVE components of a thread's FPU image: XCR0 less the dynamic
/// features (Linux's default features of a process).
pub fn user_features() -> u64 {
    xcr0() & !dynamic_features()
}

/// Bytes of the standard-format XSAVE image of `user_features`: the end
/// of its last component (CPUID leaf 0xD gives each one's offset and
/// size), as Linux sizes a process's signal frames. CPUID's own total
/// counts the dynamic features too: on a Sapphire Rapids host 11,008
/// bytes with AMX's tile data against the 2,816 of its signal frames.
pub fn xsave_size() -> usize {
    let features = user_features();
    (2..63)
        .filter(|&i| features & (1u64 << i) != 0)
        .map(|i| {
            let r = core::arch::x86_64::__cpuid_count(0xD, i);
            (r.ebx + r.eax) as usize
        })
        .fold(576, usize::max)
}

/// Bytes of the XSAVE image of every enabled feature (CPUID leaf 0xD,
/// EBX): what ptrace's `NT_X86_XSTATE` regset is, and the only size its
/// `PTRACE_SETREGSET` takes.
pub fn full_size() -> usize {
    (core::arch::x86_64::__cpuid_count(0xD, 0).ebx as usize).max(576)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image is what Linux puts in this process's own signal frames:
    /// the same size, the same features.
    #[test]
    fn the_image_is_the_size_of_linux_signal_frames() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEEN: AtomicU64 = AtomicU64::new(0);
        static FEATURES: AtomicU64 = AtomicU64::new(0);
        extern "C" fn handler(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
            // SAFETY: the kernel passes a ucontext whose fpregs point at
            // the frame's XSAVE image with its software bytes at 464.
            unsafe {
                let uc = uc as *const libc::ucontext_t;
                let fp = (*uc).uc_mcontext.fpregs as *const u8;
                let size = (fp.add(480) as *const u32).read_unaligned();
                let features = (fp.add(472) as *const u64).read_unaligned();
                SEEN.store(size as u64, Ordering::SeqCst);
                FEATURES.store(features, Ordering::SeqCst);
            }
        }
        // SAFETY: a handler for SIGUSR2 in this test process, then raise.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
            libc::raise(libc::SIGUSR2);
        }
        assert_eq!(SEEN.load(Ordering::SeqCst), xsave_size() as u64);
        assert_eq!(FEATURES.load(Ordering::SeqCst), user_features());
        assert!(full_size() >= xsave_size());
    }
}
