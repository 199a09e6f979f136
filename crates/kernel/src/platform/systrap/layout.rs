//! Where everything of the systrap platform lives: in every stub's
//! address space, in the kernel's memory file, and inside the pages the
//! kernel shares with a stub. The assembly in [`super::blob`] and the Rust
//! in [`super`] both take their offsets from here.
//!
//! A stub's address space, from [`STUB_BASE`] (= the workload's
//! `USER_END`) up:
//!
//! ```text
//! CODE      R-X  the blob: handler, control loop, thread start, filters    shared by all stubs
//! KSTATE    R--  the kernel's hints: sleeping flag, its CPU, spin budget    shared by all stubs
//! CTL_REQ   R--  this stub's control requests (written by the kernel only)  per stub process
//! CTL_RES   RW-  results of those requests (untrusted)                      per stub process
//! AREAS          one 32 KiB area per workload thread, 32 KiB aligned:
//!   +0x0000 SLOT  RW-  state word, registers, fault info   (untrusted)
//!   +0x1000 FPU   RW-  XSAVE image the kernel hands in
//!   +0x2000 RO    R--  the thread's sigaltstack description
//!   +0x3000 guard  (never mapped)
//!   +0x4000 ALT   RW-  16 KiB signal stack (handler frames live here)
//! ```
//!
//! Everything writable by a stub is writable by every workload thread of
//! that stub process, so the kernel copies what it reads from there once
//! and treats it as the workload's own data; what the stub code must be
//! able to trust (control requests, the stack description, the seccomp
//! program) sits on pages the stub maps read-only and cannot remap.

use crate::arch::{PAGE_SIZE, STUB_BASE};

/// The blob's code and read-only data.
pub const CODE: u64 = STUB_BASE;
pub const CODE_SIZE: u64 = 4 * PAGE_SIZE;
pub const KSTATE: u64 = CODE + CODE_SIZE;
pub const CTL_REQ: u64 = STUB_BASE + 0x10000;
pub const CTL_REQ_SIZE: u64 = 4 * PAGE_SIZE;
pub const CTL_RES: u64 = CTL_REQ + CTL_REQ_SIZE;
pub const CTL_RES_SIZE: u64 = PAGE_SIZE;
/// Workload thread areas.
pub const AREAS: u64 = STUB_BASE + 0x10_0000;
pub const AREA_SIZE: u64 = 0x8000;
/// Most threads one stub process (one workload address space) may have.
pub const MAX_AREAS: u64 = 8192;
pub const STUB_REGION_END: u64 = AREAS + MAX_AREAS * AREA_SIZE;

/// Offsets inside an area.
pub const AREA_SLOT: u64 = 0;
pub const AREA_FPU: u64 = 0x1000;
pub const AREA_RO: u64 = 0x2000;
pub const AREA_ALT: u64 = 0x4000;
pub const ALT_SIZE: u64 = AREA_SIZE - AREA_ALT;

/// Memory-file offsets (the platform's reserved region at the start).
pub const MF_CODE: u64 = 0;
pub const MF_KSTATE: u64 = CODE_SIZE;
/// Control pages and thread areas are carved out of the rest in units
/// of one area.
pub const MF_POOL: u64 = 0x10000;
/// The whole reserved region (sparse: only touched pages cost memory).
pub const REGION_SIZE: u64 = 1 << 30;

/// Descriptors every stub holds (nothing else is open in a stub).
pub const MEMFD: u64 = 3;
/// Eventfd a stub writes to wake a sleeping kernel (anyone may ring it;
/// a spurious ring costs the kernel one wake-up).
pub const DOORBELL_FD: u64 = 4;
/// Eventfd a stub's control thread writes after it ran a request; only
/// control threads may write it (the workload threads' filter refuses),
/// so it is the kernel's proof that a request, an unmap above all, took
/// effect.
pub const DONE_FD: u64 = 5;

/// KSTATE page fields.
pub const KS_SLEEPING: u64 = 0;
pub const KS_CPU: u64 = 4;
pub const KS_SPIN: u64 = 8;
/// The constant 1, the value written to the eventfds.
pub const KS_ONE: u64 = 16;

/// CTL_REQ fields: sequence number (the futex word: its low half), entry
/// count, entries.
pub const REQ_SEQ: u64 = 0;
pub const REQ_COUNT: u64 = 8;
pub const REQ_ENTRIES: u64 = 64;
/// One request entry: syscall number, six arguments, and a value the
/// control thread hands a clone child in %r12.
pub const ENTRY_SIZE: u64 = 64;
pub const CTL_CAP: u64 = (CTL_REQ_SIZE - REQ_ENTRIES) / ENTRY_SIZE;
/// CTL_RES fields.
pub const RES_DONE: u64 = 0;
pub const RES_SLEEPING: u64 = 8;
pub const RES_RESULTS: u64 = 64;
/// Set by the zygote (which runs no workload code) once it moved the vDSO.
pub const RES_VDSO_MOVED: u64 = 16;

/// SLOT fields.
pub const SLOT_STATE: u64 = 0;
pub const SLOT_SLEEPING: u64 = 4;
pub const SLOT_INTERRUPT: u64 = 8;
pub const SLOT_FPU_DIRTY: u64 = 12;
/// Address of the handler's ucontext (the signal frame on ALT).
pub const SLOT_FRAME: u64 = 16;
/// How the thread entered the stub: [`PATH_SIGNAL`] or [`PATH_PATCHED`].
pub const SLOT_PATH: u64 = 40;
/// How a thread waiting in the stub waits, set by the kernel: 0 spins
/// while the kernel runs on another CPU, then sleeps; the NOSPIN_*
/// values yield first; any other value (a workload that wrote its own
/// slot) sleeps at once.
pub const SLOT_NOSPIN: u64 = 44;
/// The kernel waits for this process's control thread: yield to it
/// (`ks_spin / 64` yields), then sleep.
pub const NOSPIN_CTL: u32 = 2;
/// The thread's syscall blocks: yield for about as long as a wake-up of
/// a halted vCPU costs (`ks_spin / 16` yields, ~20 µs), then sleep. A
/// short block (a pipe's reader whose writer answers at once, a lock
/// held briefly) then ends without that wake-up; a long one costs at
/// most the same again in CPU time (a yielding thread leaves its CPU to
/// any other runnable thread).
pub const NOSPIN_BLOCKED: u32 = 3;
pub const SLOT_SIGNO: u64 = 24;
pub const SLOT_CODE: u64 = 28;
pub const SLOT_ADDR: u64 = 32;
/// The %rax a thread goes back to the workload with (the syscall's
/// result), written by the kernel on every resume. It lives on the state
/// word's cache line, not in the register block: a syscall whose other
/// registers stay as they were then moves one line between the CPUs each
/// way, the one the handoff moves anyway. The block's rax word is only
/// read for a stop through the signal handler (see `collect`).
pub const SLOT_RAX: u64 = 48;
/// `struct user_regs_struct`, as ptrace has it. Its first six words (r15,
/// r14, r13, r12, rbp, rbx: what a function call preserves) fill the
/// slot's second cache line alone (80..128): the kernel leaves that line
/// in the slot at a syscall stop (see `collect`).
pub const SLOT_REGS: u64 = 80;

/// RO fields: the `stack_t` for sigaltstack, and the top of the signal
/// stack (the patched path's private stack).
pub const RO_STACK: u64 = 0;
pub const RO_ALT_TOP: u64 = 24;

/// A stop through the SIGSYS handler (its frame holds the FPU state) or
/// through a patched call site (the FPU state is live in the thread).
pub const PATH_SIGNAL: u32 = 0;
pub const PATH_PATCHED: u32 = 1;

/// Thread states (the SLOT_STATE word). Below [`ST_REPLY`] the thread
/// waits in the stub; from there on the kernel has answered.
pub const ST_SYSCALL: u32 = 1;
pub const ST_FAULT: u32 = 2;
pub const ST_INTERRUPTED: u32 = 3;
/// A new thread that has not run yet.
pub const ST_NEW: u32 = 4;
/// A command ran; the thread waits again.
pub const ST_ACK: u32 = 5;
pub const ST_REPLY: u32 = 16;
/// Run the workload with the registers in the slot.
pub const ST_RUN: u32 = 16;
/// End the thread.
pub const ST_EXIT: u32 = 17;
/// Save the live FPU state into the FPU page (patched path), then ACK.
pub const ST_XSAVE: u32 = 18;

/// `struct user_regs_struct` offsets.
pub mod regs {
    pub const R15: u64 = 0;
    pub const R14: u64 = 8;
    pub const R13: u64 = 16;
    pub const R12: u64 = 24;
    pub const RBP: u64 = 32;
    pub const RBX: u64 = 40;
    pub const R11: u64 = 48;
    pub const R10: u64 = 56;
    pub const R9: u64 = 64;
    pub const R8: u64 = 72;
    pub const RAX: u64 = 80;
    pub const RCX: u64 = 88;
    pub const RDX: u64 = 96;
    pub const RSI: u64 = 104;
    pub const RDI: u64 = 112;
    pub const ORIG_RAX: u64 = 120;
    pub const RIP: u64 = 128;
    pub const CS: u64 = 136;
    pub const EFLAGS: u64 = 144;
    pub const RSP: u64 = 152;
    pub const SS: u64 = 160;
    pub const FS_BASE: u64 = 168;
    pub const GS_BASE: u64 = 176;
}

/// x86_64 `struct ucontext` offsets (kernel layout: `struct sigcontext`
/// at 40).
pub mod uc {
    pub const FLAGS: u64 = 0;
    pub const STACK: u64 = 16;
    const MC: u64 = 40;
    pub const R8: u64 = MC;
    pub const R9: u64 = MC + 8;
    pub const R10: u64 = MC + 16;
    pub const R11: u64 = MC + 24;
    pub const R12: u64 = MC + 32;
    pub const R13: u64 = MC + 40;
    pub const R14: u64 = MC + 48;
    pub const R15: u64 = MC + 56;
    pub const RDI: u64 = MC + 64;
    pub const RSI: u64 = MC + 72;
    pub const RBP: u64 = MC + 80;
    pub const RBX: u64 = MC + 88;
    pub const RDX: u64 = MC + 96;
    pub const RAX: u64 = MC + 104;
    pub const RCX: u64 = MC + 112;
    pub const RSP: u64 = MC + 120;
    pub const RIP: u64 = MC + 128;
    pub const EFLAGS: u64 = MC + 136;
    pub const CS: u64 = MC + 144;
    pub const SS: u64 = MC + 150;
    pub const FPSTATE: u64 = MC + 184;
    pub const SIGMASK: u64 = MC + 256;
    pub const SIZE: u64 = SIGMASK + 8;
}

/// `uc_flags` of the frames the stub builds itself: restore SS from the
/// frame (the host's own frames carry the same).
pub const UC_SIGCONTEXT_SS: u64 = 2;
pub const UC_STRICT_RESTORE_SS: u64 = 4;

/// Clone flags of a new workload thread (made by its stub's control
/// thread) and of a new stub process (made by the zygote; the child
/// becomes the kernel's, so the kernel reaps it).
pub const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;
pub const SPACE_CLONE_FLAGS: u64 = (libc::CLONE_PARENT | libc::SIGCHLD) as u64;
pub const MAP_FLAGS: u64 = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;

/// The host signal that stops a running workload thread for the kernel.
pub const SIG_INTERRUPT: i32 = libc::SIGCHLD;

/// The thread area at index `i` of a stub's address space.
pub fn area_addr(i: u64) -> u64 {
    AREAS + i * AREA_SIZE
}

const _: () = {
    assert!(KSTATE + PAGE_SIZE <= CTL_REQ);
    assert!(CTL_RES + CTL_RES_SIZE <= AREAS);
    assert!(AREAS.is_multiple_of(AREA_SIZE));
    assert!(SLOT_REGS + 27 * 8 <= PAGE_SIZE);
    assert!(SLOT_REGS >= 64 && (SLOT_REGS + 6 * 8).is_multiple_of(64));
    assert!(MF_KSTATE + PAGE_SIZE <= MF_POOL);
    assert!(CTL_REQ_SIZE + CTL_RES_SIZE <= AREA_SIZE);
    assert!(STUB_REGION_END <= crate::platform::vdso::VDSO_AT);
};
