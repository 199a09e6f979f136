//! What a stub process forked from the kernel does before it runs the
//! platform's code: raw syscalls only (it runs between fork and the jump,
//! where only async-signal-safe calls are allowed).

unsafe extern "C" {
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// Unregisters glibc's rseq area of the forked thread, before the
/// kernel's memory disappears from the stub (the host kernel would
/// otherwise write the cpu id into unmapped memory).
///
/// # Safety
/// Async-signal-safe; call only in a freshly forked child.
pub unsafe fn unregister_rseq() {
    unsafe {
        if __rseq_size > 0 {
            let tp: u64;
            std::arch::asm!("mov %fs:0, {}", out(reg) tp, options(att_syntax, nostack));
            let area = (tp as isize + __rseq_offset) as u64;
            libc::syscall(libc::SYS_rseq, area, __rseq_size.max(32), 1, 0x5305_3053u32);
        }
    }
}

/// Empties every capability set of the calling process: bounding (needs
/// CAP_SETPCAP, so first), ambient, then effective/permitted/inheritable.
/// Raw syscalls only (runs in a forked child).
///
/// # Safety
/// Async-signal-safe; affects the calling process only.
pub unsafe fn drop_all_capabilities() {
    unsafe {
        for cap in 0..64 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut h = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let d = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr());
    }
}
