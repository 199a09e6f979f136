//! x86_64 specifics: registers, the syscall ABI, and address-space limits.

/// The general registers as ptrace exposes them (`struct user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// Words in `Regs` (`struct user_regs_struct`: 27 u64s).
pub const REG_WORDS: usize = std::mem::size_of::<Regs>() / 8;

/// `Regs` as its words, in ptrace's order.
pub fn regs_words(r: &Regs) -> [u64; REG_WORDS] {
    // SAFETY: user_regs_struct is 27 u64s, repr(C).
    unsafe { std::mem::transmute(*r) }
}

/// The `Regs` of these words.
pub fn words_regs(w: [u64; REG_WORDS]) -> Regs {
    // SAFETY: as in regs_words.
    unsafe { std::mem::transmute(w) }
}

pub const PAGE_SIZE: u64 = 4096;

/// Where the platform's stub code and data live in every stub process:
/// above everything the workload can map ([`USER_END`]) and below the
/// host's vDSO, which sits near the top of the address space (the stack
/// region the host randomizes within the top 16 GiB).
pub const STUB_BASE: u64 = 0x7ff0_0000_0000;
pub const STUB_CODE_SIZE: u64 = PAGE_SIZE;
/// Per-process data pages of the stub (the batch of injected syscalls).
pub const STUB_DATA: u64 = STUB_BASE + STUB_CODE_SIZE;
pub const STUB_DATA_SIZE: u64 = 4 * PAGE_SIZE;
pub const STUB_END: u64 = STUB_DATA + STUB_DATA_SIZE;
/// Highest user address on x86_64 with 4-level paging.
pub const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
/// The workload's address space ends where the stub region begins.
pub const USER_END: u64 = STUB_BASE;
/// Lowest mappable address (vm.mmap_min_addr on Debian).
pub const USER_START: u64 = 0x10000;

pub fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(page_down)
}

/// Syscall number and arguments from registers at a syscall stop.
pub fn syscall_args(r: &Regs) -> (u64, [u64; 6]) {
    (r.orig_rax, [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9])
}

/// Length of the `syscall` instruction: a restarted syscall re-executes it.
pub const SYSCALL_INSN_LEN: u64 = 2;
