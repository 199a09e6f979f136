//! The stub: the only code that ever runs in a stub process besides the
//! workload's own. It lives in one page of the memory file mapped at
//! [`STUB_BASE`] in every stub, and offers the kernel three entry points:
//! a batch loop that executes a list of injected syscalls, a single
//! injected syscall, and thread exit. Each ends in `int3`, which stops the
//! stub for the kernel (ptrace).
//!
//! A stub process starts as a fork of the kernel; [`child_setup`] maps the
//! stub page, drops every inherited resource, and jumps to the stub entry,
//! which unmaps the rest of the address space and traps.

use crate::arch::{STUB_BASE, STUB_DATA, STUB_DATA_SIZE, STUB_END, TASK_SIZE_MAX};
use crate::platform::child::{drop_all_capabilities, unregister_rseq};

/// One injected syscall in the batch buffer (layout shared with the asm).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct BatchEntry {
    pub nr: u64,
    pub args: [u64; 6],
    pub result: i64,
}

pub const BATCH_CAPACITY: usize = STUB_DATA_SIZE as usize / std::mem::size_of::<BatchEntry>();

std::arch::global_asm!(
    ".pushsection .text.atoll_stub, \"ax\"",
    ".p2align 12",
    ".globl atoll_stub_start",
    "atoll_stub_start:",
    // Entry: unmap everything below and above the stub but the host vDSO
    // block in [%r12, %r13) (empty: both TASK_SIZE_MAX), then trap.
    "mov $11, %eax",
    "xor %edi, %edi",
    "movabs ${stub_base}, %rsi",
    "syscall",
    "mov $11, %eax",
    "movabs ${stub_end}, %rdi",
    "mov %r12, %rsi",
    "sub %rdi, %rsi",
    "jbe 1f",
    "syscall",
    "1:",
    "mov $11, %eax",
    "mov %r13, %rdi",
    "movabs ${task_size_max}, %rsi",
    "sub %rdi, %rsi",
    "jbe 1f",
    "syscall",
    "1:",
    "int3",
    // Batch: %rbx points at BatchEntry[%r12].
    ".globl atoll_stub_batch",
    "atoll_stub_batch:",
    "1:",
    "test %r12, %r12",
    "jz 2f",
    "mov 0(%rbx), %rax",
    "mov 8(%rbx), %rdi",
    "mov 16(%rbx), %rsi",
    "mov 24(%rbx), %rdx",
    "mov 32(%rbx), %r10",
    "mov 40(%rbx), %r8",
    "mov 48(%rbx), %r9",
    ".globl atoll_stub_batch_syscall",
    "atoll_stub_batch_syscall:",
    "syscall",
    "mov %rax, 56(%rbx)",
    "add $64, %rbx",
    "dec %r12",
    "jmp 1b",
    "2:",
    "int3",
    // Single: registers already hold the syscall.
    ".globl atoll_stub_single",
    "atoll_stub_single:",
    "syscall",
    "int3",
    // Thread exit.
    ".globl atoll_stub_exit",
    "atoll_stub_exit:",
    "mov $60, %eax",
    "xor %edi, %edi",
    "syscall",
    "ud2",
    ".globl atoll_stub_end",
    "atoll_stub_end:",
    ".popsection",
    stub_base = const STUB_BASE,
    stub_end = const STUB_END,
    task_size_max = const TASK_SIZE_MAX,
    options(att_syntax)
);

unsafe extern "C" {
    static atoll_stub_start: u8;
    static atoll_stub_batch: u8;
    static atoll_stub_batch_syscall: u8;
    static atoll_stub_single: u8;
    static atoll_stub_exit: u8;
    static atoll_stub_end: u8;
}

/// Addresses of the stub's entry points, in a stub process.
#[derive(Clone, Copy, Debug)]
pub struct StubLayout {
    pub entry: u64,
    pub batch: u64,
    pub batch_syscall: u64,
    pub single: u64,
    pub single_syscall: u64,
    pub exit: u64,
    pub code_len: u64,
}

fn addr(sym: &u8) -> u64 {
    sym as *const u8 as u64
}

/// The stub code bytes and where each entry point lands at [`STUB_BASE`].
pub fn code() -> (&'static [u8], StubLayout) {
    // SAFETY: the symbols delimit the stub's code in our own text section.
    unsafe {
        let start = addr(&atoll_stub_start);
        let end = addr(&atoll_stub_end);
        let bytes = std::slice::from_raw_parts(start as *const u8, (end - start) as usize);
        let at = |s: &u8| STUB_BASE + (addr(s) - start);
        let layout = StubLayout {
            entry: STUB_BASE,
            batch: at(&atoll_stub_batch),
            batch_syscall: at(&atoll_stub_batch_syscall),
            single: at(&atoll_stub_single),
            single_syscall: at(&atoll_stub_single),
            exit: at(&atoll_stub_exit),
            code_len: end - start,
        };
        (bytes, layout)
    }
}

/// What the forked child needs, captured before fork (no allocation after).
pub struct ChildArgs {
    pub memfd: i32,
    pub code_offset: u64,
    pub data_offset: u64,
    pub sync_fd: i32,
    /// The stub's seccomp filter (sock_fprog), installed just before the jump.
    pub filter: *const libc::sock_fprog,
    /// The host vDSO, moved to `VDSO_AT` for the workload; success is
    /// reported in the last word of the data slot.
    pub vdso: Option<crate::platform::vdso::HostVdso>,
}

/// Where in its data slot the zygote says it moved the vDSO.
pub const VDSO_MOVED_AT: u64 = STUB_DATA_SIZE - 8;

/// Runs in the forked child. Async-signal-safe: raw syscalls only.
///
/// # Safety
/// Must be called only in a freshly forked child of a single-threaded parent.
pub unsafe fn child_setup(a: &ChildArgs) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"atoll-stub".as_ptr());
        // Wait until the kernel has attached (PTRACE_SEIZE).
        let mut b = 0u8;
        while libc::read(a.sync_fd, &mut b as *mut u8 as *mut libc::c_void, 1) < 0 {}
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        unregister_rseq();
        // The memory file becomes fd 3; nothing else stays open.
        const MEMFD: i32 = 3;
        if a.memfd != MEMFD {
            libc::dup2(a.memfd, MEMFD);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        for fd in 0..3 {
            libc::close(fd);
        }
        let prot_rx = libc::PROT_READ | libc::PROT_EXEC;
        let flags = libc::MAP_SHARED | libc::MAP_FIXED;
        let r1 = libc::mmap(
            STUB_BASE as *mut libc::c_void,
            crate::arch::STUB_CODE_SIZE as usize,
            prot_rx,
            flags,
            MEMFD,
            a.code_offset as i64,
        );
        let r2 = libc::mmap(
            STUB_DATA as *mut libc::c_void,
            STUB_DATA_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            MEMFD,
            a.data_offset as i64,
        );
        if r1 == libc::MAP_FAILED || r2 == libc::MAP_FAILED {
            libc::_exit(125);
        }
        let keep = match a.vdso {
            Some(v) if v.relocate_raw() => {
                *((STUB_DATA + VDSO_MOVED_AT) as *mut u64) = 1;
                v.kept()
            }
            _ => (TASK_SIZE_MAX, TASK_SIZE_MAX),
        };
        drop_all_capabilities();
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if libc::syscall(libc::SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, a.filter) != 0 {
            libc::_exit(126);
        }
        std::arch::asm!(
            "jmp *{}",
            in(reg) STUB_BASE,
            in("r12") keep.0,
            in("r13") keep.1,
            options(noreturn, att_syntax)
        );
    }
}
