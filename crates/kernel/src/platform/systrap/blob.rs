//! The systrap blob: the only code besides the workload's own that runs in
//! a stub process. It is copied into the memory file and mapped read+exec
//! at [`CODE`] in every stub (sealed with `mseal` where the host has it).
//!
//! Entry points:
//! - `zygote_entry`: the zygote (forked from the kernel before it confined
//!   itself) unmaps everything but the blob, the stub's pages and the
//!   host vDSO, then serves control requests.
//! - `ctl_wait`: the control loop of a stub's main thread. It executes
//!   the syscalls the kernel lists on the read-only request page (mmap,
//!   munmap, mprotect of the memory file; clone of a workload thread or,
//!   in the zygote, of a new stub process), writes their results, and
//!   rings the done eventfd.
//! - `space_init` / `thread_init`: where those clones start.
//! - `handler`: the handler of SIGSYS (a workload syscall, raised by
//!   syscall user dispatch or, as a backstop, by the seccomp filter),
//!   of synchronous faults and of the interrupt signal.
//!
//! # Safety argument
//!
//! The workload shares the address space with this code, can jump into
//! it with any registers and can write every writable page of the stub.
//! What keeps it contained:
//! 1. Nothing of the kernel is mapped in a stub: only the memory file's
//!    pages the kernel chose, the blob and the host vDSO.
//! 2. The blob is read-only and sealed; the control requests and each
//!    thread's stack description are on pages the stub maps read-only,
//!    and the seccomp filters (below) refuse every call that could remap
//!    them.
//! 3. Every host syscall of a stub passes two filters: the stub process
//!    filter (every thread: only the calls this blob makes, with their
//!    fixed flags and descriptors, and only from the blob) and, on each
//!    workload thread, a second one that leaves it futex, rt_sigreturn,
//!    sched_yield, exit and the doorbell only. mmap, clone, prctl and
//!    seccomp are therefore reachable by the control thread alone, which
//!    runs no workload code, takes no signal, uses no stack and reads its
//!    instructions from the read-only request page.
//! 4. Whatever the workload writes into a slot is its own registers as
//!    far as the kernel is concerned: the kernel copies it once and never
//!    follows a pointer from there without bounds-checking it against the
//!    thread's own area.
//! 5. A thread that tampers with the handler's frame, its slot or its
//!    signal mask can only crash its own stub process: faults inside the
//!    handler happen with every signal blocked, and a blocked synchronous
//!    signal kills the process.
//!
//! The code uses general-purpose registers only (no SIMD), so the
//! workload's FPU state is never touched here; it travels in the signal
//! frame, which the kernel reads and writes through its own mapping.

use super::layout::*;

std::arch::global_asm!(
    ".pushsection .text.atoll_systrap, \"ax\"",
    ".p2align 12",
    ".globl atoll_systrap_start",
    "atoll_systrap_start:",

    // ---- zygote: %r12..%r13 is the host vDSO block to keep (or empty).
    ".globl atoll_systrap_zygote",
    "atoll_systrap_zygote:",
    "mov $11, %eax",                // munmap(0, STUB_BASE)
    "xor %edi, %edi",
    "movabs ${code}, %rsi",
    "syscall",
    "mov $11, %eax",                // munmap(STUB_REGION_END, r12 - END)
    "movabs ${region_end}, %rdi",
    "mov %r12, %rsi",
    "sub %rdi, %rsi",
    "jbe 1f",
    "syscall",
    "1:",
    "mov $11, %eax",                // munmap(r13, TASK_SIZE_MAX - r13)
    "mov %r13, %rdi",
    "movabs ${task_size_max}, %rsi",
    "sub %rdi, %rsi",
    "jbe 1f",
    "syscall",
    "1:",
    "xor %r14d, %r14d",
    "jmp atoll_systrap_ctl_wait",

    // ---- a new stub process (clone in the zygote): %r12 = memory-file
    // offset of its control pages.
    "atoll_systrap_space_init:",
    "mov $9, %eax",
    "movabs ${ctl_req}, %rdi",
    "mov ${ctl_req_size}, %esi",
    "mov ${prot_r}, %edx",
    "mov ${map_flags}, %r10d",
    "mov ${memfd}, %r8d",
    "mov %r12, %r9",
    "syscall",
    "movabs ${ctl_req}, %rdi",
    "cmp %rdi, %rax",
    "jne 9f",
    "mov $9, %eax",
    "movabs ${ctl_res}, %rdi",
    "mov ${ctl_res_size}, %esi",
    "mov ${prot_rw}, %edx",
    "mov ${map_flags}, %r10d",
    "mov ${memfd}, %r8d",
    "lea {ctl_req_size}(%r12), %r9",
    "syscall",
    "movabs ${ctl_res}, %rdi",
    "cmp %rdi, %rax",
    "jne 9f",
    "mov $157, %eax",               // prctl(PR_SET_PDEATHSIG, SIGKILL)
    "mov $1, %edi",
    "mov $9, %esi",
    "syscall",
    "xor %r14d, %r14d",
    "jmp atoll_systrap_ctl_wait",
    "9:",
    "mov $60, %eax",                // exit(1): the kernel sees the stub die
    "mov $1, %edi",
    "syscall",
    "ud2",

    // ---- the control loop. %r14 = sequence number last served.
    ".globl atoll_systrap_ctl_wait",
    "atoll_systrap_ctl_wait:",
    "movabs ${ctl_req}, %r15",
    "movabs ${kstate}, %rbx",
    "mov {ks_spin}(%rbx), %ecx",
    "cmp $200000, %ecx",
    "jbe 1f",
    "mov $200000, %ecx",
    "1:",
    "mov (%r15), %rax",
    "cmp %r14, %rax",
    "jne 3f",
    "mov %ecx, %edx",               // sched_yield(): a workload thread of
    "mov $24, %eax",                // this process waiting on this CPU for
    "syscall",                      // the answer runs at once
    "mov %edx, %ecx",
    "sub $16, %ecx",
    "jae 1b",
    "movabs ${ctl_res}, %rbx",      // sleep: announce, re-check, wait
    "movl $1, {res_sleeping}(%rbx)",
    "mfence",
    "mov (%r15), %rax",
    "cmp %r14, %rax",
    "jne 2f",
    "mov $202, %eax",               // futex(&seq, FUTEX_WAIT, seq, NULL)
    "mov %r15, %rdi",
    "xor %esi, %esi",
    "mov %r14d, %edx",
    "xor %r10d, %r10d",
    "syscall",
    "2:",
    "movl $0, {res_sleeping}(%rbx)",
    "jmp atoll_systrap_ctl_wait",
    "3:",
    "mov %rax, %r14",
    "mov {req_count}(%r15), %r13",
    "cmp ${ctl_cap}, %r13",
    "jbe 4f",
    "mov ${ctl_cap}, %r13",
    "4:",
    "lea {req_entries}(%r15), %rbx",
    "movabs ${ctl_results}, %rbp",
    "5:",
    "test %r13, %r13",
    "jz 7f",
    "mov 0(%rbx), %rax",
    "mov 8(%rbx), %rdi",
    "mov 16(%rbx), %rsi",
    "mov 24(%rbx), %rdx",
    "mov 32(%rbx), %r10",
    "mov 40(%rbx), %r8",
    "mov 48(%rbx), %r9",
    "mov 56(%rbx), %r12",
    "mov %rax, %r15",
    "syscall",
    // A clone child starts here too, possibly after the kernel already
    // wrote its next request: it decides from registers only (the number
    // in %r15, the flags in %rdi, which syscall preserves).
    "test %rax, %rax",
    "jnz 6f",
    "cmp $56, %r15",
    "jne 6f",
    "cmp ${thread_flags}, %rdi",
    "je atoll_systrap_thread_init",
    "jmp atoll_systrap_space_init",
    "6:",
    "mov %rax, (%rbp)",
    "add ${entry_size}, %rbx",
    "add $8, %rbp",
    "sub $1, %r13",
    "jmp 5b",
    "7:",
    "movabs ${ctl_res}, %rax",
    "mov %r14, {res_done}(%rax)",
    "mov $1, %eax",                 // write(DONE_FD, &1, 8)
    "mov ${done_fd}, %edi",
    "movabs ${ks_one}, %rsi",
    "mov $8, %edx",
    "syscall",
    "jmp atoll_systrap_ctl_wait",

    // ---- a new workload thread: %r12 = its area. Runs with every signal
    // blocked (inherited from the control thread) and no stack.
    "atoll_systrap_thread_init:",
    "mov $131, %eax",               // sigaltstack(&ro.stack, NULL)
    "lea {area_ro}(%r12), %rdi",
    "xor %esi, %esi",
    "syscall",
    "test %rax, %rax",
    "jnz 9f",
    "mov $157, %eax",               // prctl(PR_SET_SYSCALL_USER_DISPATCH, ON, CODE, CODE_SIZE, NULL)
    "mov $59, %edi",
    "mov $1, %esi",
    "movabs ${code}, %rdx",
    "mov ${code_size}, %r10d",
    "xor %r8d, %r8d",
    "syscall",
    "test %rax, %rax",
    "jnz 9f",
    "wrgsbase %r12",
    "mov $317, %eax",               // seccomp(SET_MODE_FILTER, 0, &workload filter)
    "mov $1, %edi",
    "xor %esi, %esi",
    "lea atoll_systrap_work_fprog(%rip), %rdx",
    "syscall",
    "test %rax, %rax",
    "jnz 9f",
    // A frame to enter the workload through, as if returning from a
    // handler: zeroed, user segments, this thread's altstack, no signal
    // blocked, no FPU image (the host then starts from the init state,
    // unless the kernel gives one: see the run path).
    "atoll_systrap_new_frame:",
    "lea {area_size}(%r12), %rsp",
    "sub ${frame_size}, %rsp",
    "mov %rsp, %rdi",
    "mov ${frame_size}, %ecx",
    "xor %eax, %eax",
    "rep stosb",
    "lea 8(%rsp), %r13",
    "movq ${uc_flags}, {uc_flags_off}(%r13)",
    "mov {area_ro}+0(%r12), %rax",
    "mov %rax, {uc_stack}+0(%r13)",
    "mov {area_ro}+8(%r12), %rax",
    "mov %rax, {uc_stack}+8(%r13)",
    "mov {area_ro}+16(%r12), %rax",
    "mov %rax, {uc_stack}+16(%r13)",
    "movw $0x33, {uc_cs}(%r13)",
    "movw $0x2b, {uc_ss}(%r13)",
    "xor %r14d, %r14d",
    "jmp 20f",
    "9:",
    "ud2",

    // ---- the signal handler: %rdi = signo, %rsi = siginfo, %rdx = ucontext.
    // Every signal is blocked while it runs; it runs on this thread's
    // altstack, which gives its area (the workload cannot move it).
    ".globl atoll_systrap_handler",
    "atoll_systrap_handler:",
    "mov %rsp, %r12",
    "and $-{area_size}, %r12",
    "mov %rdx, %r13",
    "cmp ${sig_interrupt}, %edi",
    "jne 10f",
    // An interrupt that caught the thread in this code: the thread is on
    // its way to or from the kernel, which sees it at the next stop.
    "mov {uc_rip}(%r13), %rax",
    "movabs ${code}, %rcx",
    "sub %rcx, %rax",
    "cmp ${code_size}, %rax",
    "jae 10f",
    "movl $1, {slot_interrupt}(%r12)",
    // On the patched path's way back to the workload: start that over,
    // so the interrupt is reported before the thread leaves the stub.
    "mov {uc_rip}(%r13), %rax",
    "lea atoll_systrap_pret_begin(%rip), %rcx",
    "cmp %rcx, %rax",
    "jb 14f",
    "lea atoll_systrap_pret_end(%rip), %rcx",
    "cmp %rcx, %rax",
    "ja 14f",
    "lea atoll_systrap_pret_begin(%rip), %rcx",
    "mov %rcx, {uc_rip}(%r13)",
    "14:",
    "ret",
    "10:",
    // Save the workload's registers into the slot.
    "mov {uc_r15}(%r13), %rax", "mov %rax, {slot_regs}+{r_r15}(%r12)",
    "mov {uc_r14}(%r13), %rax", "mov %rax, {slot_regs}+{r_r14}(%r12)",
    "mov {uc_r13}(%r13), %rax", "mov %rax, {slot_regs}+{r_r13}(%r12)",
    "mov {uc_r12}(%r13), %rax", "mov %rax, {slot_regs}+{r_r12}(%r12)",
    "mov {uc_rbp}(%r13), %rax", "mov %rax, {slot_regs}+{r_rbp}(%r12)",
    "mov {uc_rbx}(%r13), %rax", "mov %rax, {slot_regs}+{r_rbx}(%r12)",
    "mov {uc_r11}(%r13), %rax", "mov %rax, {slot_regs}+{r_r11}(%r12)",
    "mov {uc_r10}(%r13), %rax", "mov %rax, {slot_regs}+{r_r10}(%r12)",
    "mov {uc_r9}(%r13), %rax", "mov %rax, {slot_regs}+{r_r9}(%r12)",
    "mov {uc_r8}(%r13), %rax", "mov %rax, {slot_regs}+{r_r8}(%r12)",
    "mov {uc_rax}(%r13), %rax", "mov %rax, {slot_regs}+{r_rax}(%r12)",
    "mov {uc_rcx}(%r13), %rax", "mov %rax, {slot_regs}+{r_rcx}(%r12)",
    "mov {uc_rdx}(%r13), %rax", "mov %rax, {slot_regs}+{r_rdx}(%r12)",
    "mov {uc_rsi}(%r13), %rax", "mov %rax, {slot_regs}+{r_rsi}(%r12)",
    "mov {uc_rdi}(%r13), %rax", "mov %rax, {slot_regs}+{r_rdi}(%r12)",
    "mov {uc_rip}(%r13), %rax", "mov %rax, {slot_regs}+{r_rip}(%r12)",
    "mov {uc_eflags}(%r13), %rax", "mov %rax, {slot_regs}+{r_eflags}(%r12)",
    "mov {uc_rsp}(%r13), %rax", "mov %rax, {slot_regs}+{r_rsp}(%r12)",
    "rdfsbase %rax", "mov %rax, {slot_regs}+{r_fs_base}(%r12)",
    "mov %r13, {slot_frame}(%r12)",
    "movl ${path_signal}, {slot_path}(%r12)",
    "xor %r14d, %r14d",
    "mov %edi, {slot_signo}(%r12)",
    "mov 8(%rsi), %eax",
    "mov %eax, {slot_code}(%r12)",
    "mov 16(%rsi), %rax",
    "mov %rax, {slot_addr}(%r12)",
    "cmp $31, %edi",                // SIGSYS
    "jne 11f",
    // A syscall: its number (rolled back into rax by the host) goes to
    // orig_rax and rax says -ENOSYS, as at a ptrace syscall stop. A call
    // of another ABI (int 0x80) gets a number no table has.
    "mov {uc_rax}(%r13), %rax",
    "cmpl ${audit_arch}, 28(%rsi)",
    "je 12f",
    "mov $-1, %rax",
    "12:",
    "mov %rax, {slot_regs}+{r_orig_rax}(%r12)",
    "movq $-38, {slot_regs}+{r_rax}(%r12)",
    "mov ${st_syscall}, %eax",
    "jmp 13f",
    "11:",
    "movq $-1, {slot_regs}+{r_orig_rax}(%r12)",
    "mov ${st_fault}, %eax",
    "cmp ${sig_interrupt}, %edi",
    "jne 13f",
    "mov ${st_interrupted}, %eax",
    "13:",
    "movl $0, {slot_interrupt}(%r12)",
    "xchg %eax, {slot_state}(%r12)", // publish (a full barrier)
    "movabs ${kstate}, %rbx",
    "cmpl $0, {ks_sleeping}(%rbx)",
    "je 20f",
    "mov $1, %eax",                 // write(DOORBELL_FD, &1, 8)
    "mov ${doorbell_fd}, %edi",
    "movabs ${ks_one}, %rsi",
    "mov $8, %edx",
    "syscall",

    // ---- wait for the kernel's answer: %r12 = area, %r13 = frame.
    // Spin while the kernel runs on another CPU, then sleep on the state
    // word (announce, re-check, wait: no lost wake-up).
    "20:",
    "movabs ${kstate}, %rbx",
    "rdpid %rax",
    "and $0xfff, %eax",
    "cmp {ks_cpu}(%rbx), %eax",
    "je 22f",
    "mov {ks_spin}(%rbx), %ecx",
    "cmp $200000, %ecx",
    "jbe 21f",
    "mov $200000, %ecx",
    "21:",
    "mov {slot_state}(%r12), %eax",
    "cmp ${st_reply}, %eax",
    "jae 24f",
    "mov {slot_nospin}(%r12), %edx",
    "test %edx, %edx",
    "jnz 28f",
    "pause",
    "sub $1, %ecx",
    "jae 21b",
    "jmp 22f",
    "28:",
    "mov $64, %esi",                // NOSPIN_CTL: the kernel waits for this
    "cmp ${nospin_ctl}, %edx",      // process's control thread: yield to
    "je 43f",                       // it, watch the word
    "mov $16, %esi",                // NOSPIN_BLOCKED: yield a while (a
    "cmp ${nospin_blocked}, %edx",  // halted vCPU's wake-up), watch
    "jne 22f",                      // anything else: sleep now
    "43:",
    "mov %ecx, %edx",
    "mov $24, %eax",                // sched_yield() (keeps %rsi)
    "syscall",
    "mov %edx, %ecx",
    "sub %esi, %ecx",
    "jae 21b",
    "22:",
    "movl $1, {slot_sleeping}(%r12)",
    "mfence",
    "mov {slot_state}(%r12), %edx",
    "cmp ${st_reply}, %edx",
    "jae 23f",
    "mov $202, %eax",               // futex(&state, FUTEX_WAIT, state, NULL)
    "lea {slot_state}(%r12), %rdi",
    "xor %esi, %esi",
    "xor %r10d, %r10d",
    "syscall",
    "jmp 22b",
    "23:",
    "mov %edx, %eax",
    "24:",
    "cmpl $0, {slot_sleeping}(%r12)", // (no write, no transfer, if unset)
    "je 42f",
    "movl $0, {slot_sleeping}(%r12)",
    "42:",
    "cmp ${st_run}, %eax",
    "je 25f",
    "cmp ${st_xsave}, %eax",
    "je 27f",
    "cmp ${st_exit}, %eax",
    "jne 9b",
    "mov $60, %eax",                // exit(0): this thread only
    "xor %edi, %edi",
    "syscall",
    "ud2",
    "27:",
    // The kernel needs the FPU state of a thread stopped on the patched
    // path, where it is still live in the registers.
    "mov ${xsave_mask_lo}, %eax",   // every component but AMX's tile data
    "mov $-1, %edx",
    "xsave64 {area_fpu}(%r12)",
    "mov ${st_ack}, %eax",
    "xchg %eax, {slot_state}(%r12)",
    "jmp 20b",
    "25:",
    "test %r14d, %r14d",
    "jz 30f",
    // Stopped on the patched path and to run with the trap flag (a
    // single step): popf would trap on the stub's next instruction, iret
    // traps after the workload's first one. So return through a new
    // frame (the kernel gave the FPU image the patched path keeps live).
    "testl $0x100, {slot_regs}+{r_eflags}(%r12)",
    "jz atoll_systrap_pret_begin",
    "jmp atoll_systrap_new_frame",
    "30:",
    // Run: the slot's registers into the frame, then rt_sigreturn.
    "mov {slot_regs}+{r_r15}(%r12), %rax", "mov %rax, {uc_r15}(%r13)",
    "mov {slot_regs}+{r_r14}(%r12), %rax", "mov %rax, {uc_r14}(%r13)",
    "mov {slot_regs}+{r_r13}(%r12), %rax", "mov %rax, {uc_r13}(%r13)",
    "mov {slot_regs}+{r_r12}(%r12), %rax", "mov %rax, {uc_r12}(%r13)",
    "mov {slot_regs}+{r_rbp}(%r12), %rax", "mov %rax, {uc_rbp}(%r13)",
    "mov {slot_regs}+{r_rbx}(%r12), %rax", "mov %rax, {uc_rbx}(%r13)",
    "mov {slot_regs}+{r_r11}(%r12), %rax", "mov %rax, {uc_r11}(%r13)",
    "mov {slot_regs}+{r_r10}(%r12), %rax", "mov %rax, {uc_r10}(%r13)",
    "mov {slot_regs}+{r_r9}(%r12), %rax", "mov %rax, {uc_r9}(%r13)",
    "mov {slot_regs}+{r_r8}(%r12), %rax", "mov %rax, {uc_r8}(%r13)",
    "mov {slot_rax}(%r12), %rax", "mov %rax, {uc_rax}(%r13)",
    "mov {slot_regs}+{r_rcx}(%r12), %rax", "mov %rax, {uc_rcx}(%r13)",
    "mov {slot_regs}+{r_rdx}(%r12), %rax", "mov %rax, {uc_rdx}(%r13)",
    "mov {slot_regs}+{r_rsi}(%r12), %rax", "mov %rax, {uc_rsi}(%r13)",
    "mov {slot_regs}+{r_rdi}(%r12), %rax", "mov %rax, {uc_rdi}(%r13)",
    "mov {slot_regs}+{r_rip}(%r12), %rax", "mov %rax, {uc_rip}(%r13)",
    "mov {slot_regs}+{r_eflags}(%r12), %rax", "mov %rax, {uc_eflags}(%r13)",
    "mov {slot_regs}+{r_rsp}(%r12), %rax", "mov %rax, {uc_rsp}(%r13)",
    "mov {slot_regs}+{r_fs_base}(%r12), %rax", "wrfsbase %rax",
    "cmpl $0, {slot_fpu_dirty}(%r12)",
    "je 26f",
    "movl $0, {slot_fpu_dirty}(%r12)",
    "lea {area_fpu}(%r12), %rax",
    "mov %rax, {uc_fpstate}(%r13)",
    "26:",
    "mov %r13, %rsp",
    ".globl atoll_systrap_restorer",
    "atoll_systrap_restorer:",
    "mov $15, %eax",                // rt_sigreturn
    "syscall",
    "ud2",

    // ---- a patched call site's trampoline jumps here: %eax = syscall
    // number, %rcx = the address after the site; every other register is
    // the workload's; %gs is this thread's area. No signal is raised.
    ".globl atoll_systrap_syshandler",
    "atoll_systrap_syshandler:",
    // Each word is written only when it differs from what the slot holds
    // (the registers the stub last returned with, or last saved): a cache
    // line of the slot that stays unwritten stays shared with the
    // kernel's CPU, which then reads it without a transfer, and the
    // kernel writes back only what it changed (see `resume`). %rax is
    // not saved: at a syscall stop it is -ENOSYS, which the kernel knows,
    // and the result comes back in the state word's line (SLOT_RAX).
    // %r11 is free as scratch: a syscall leaves the flags in it.
    "mov %rsp, %r11",
    "mov %gs:{area_ro}+{ro_alt_top}, %rsp",
    "pushfq",                       // first: the compares change the flags
    "cmpq %r11, %gs:{slot_regs}+{r_rsp}", "je 41f", "movq %r11, %gs:{slot_regs}+{r_rsp}", "41:",
    "pop %r11",
    "cmpq %r11, %gs:{slot_regs}+{r_eflags}", "je 41f", "movq %r11, %gs:{slot_regs}+{r_eflags}", "41:",
    "cmpq %r11, %gs:{slot_regs}+{r_r11}", "je 41f", "movq %r11, %gs:{slot_regs}+{r_r11}", "41:",
    "cmpq %rcx, %gs:{slot_regs}+{r_rip}", "je 41f", "movq %rcx, %gs:{slot_regs}+{r_rip}", "41:",
    "cmpq %rcx, %gs:{slot_regs}+{r_rcx}", "je 41f", "movq %rcx, %gs:{slot_regs}+{r_rcx}", "41:",
    "cmpq %rax, %gs:{slot_regs}+{r_orig_rax}", "je 41f", "movq %rax, %gs:{slot_regs}+{r_orig_rax}", "41:",
    "cmpq %r15, %gs:{slot_regs}+{r_r15}", "je 41f", "movq %r15, %gs:{slot_regs}+{r_r15}", "41:",
    "cmpq %r14, %gs:{slot_regs}+{r_r14}", "je 41f", "movq %r14, %gs:{slot_regs}+{r_r14}", "41:",
    "cmpq %r13, %gs:{slot_regs}+{r_r13}", "je 41f", "movq %r13, %gs:{slot_regs}+{r_r13}", "41:",
    "cmpq %r12, %gs:{slot_regs}+{r_r12}", "je 41f", "movq %r12, %gs:{slot_regs}+{r_r12}", "41:",
    "cmpq %rbp, %gs:{slot_regs}+{r_rbp}", "je 41f", "movq %rbp, %gs:{slot_regs}+{r_rbp}", "41:",
    "cmpq %rbx, %gs:{slot_regs}+{r_rbx}", "je 41f", "movq %rbx, %gs:{slot_regs}+{r_rbx}", "41:",
    "cmpq %r10, %gs:{slot_regs}+{r_r10}", "je 41f", "movq %r10, %gs:{slot_regs}+{r_r10}", "41:",
    "cmpq %r9, %gs:{slot_regs}+{r_r9}", "je 41f", "movq %r9, %gs:{slot_regs}+{r_r9}", "41:",
    "cmpq %r8, %gs:{slot_regs}+{r_r8}", "je 41f", "movq %r8, %gs:{slot_regs}+{r_r8}", "41:",
    "cmpq %rdx, %gs:{slot_regs}+{r_rdx}", "je 41f", "movq %rdx, %gs:{slot_regs}+{r_rdx}", "41:",
    "cmpq %rsi, %gs:{slot_regs}+{r_rsi}", "je 41f", "movq %rsi, %gs:{slot_regs}+{r_rsi}", "41:",
    "cmpq %rdi, %gs:{slot_regs}+{r_rdi}", "je 41f", "movq %rdi, %gs:{slot_regs}+{r_rdi}", "41:",
    "rdfsbase %rcx",
    "cmpq %rcx, %gs:{slot_regs}+{r_fs_base}", "je 41f", "movq %rcx, %gs:{slot_regs}+{r_fs_base}", "41:",
    "movl ${path_patched}, %gs:{slot_path}",
    "rdgsbase %r12",
    "xor %r13d, %r13d",
    "mov $1, %r14d",
    "mov ${st_syscall}, %eax",
    "jmp 13b",

    // ---- back to the workload from a patched site. An interrupt that
    // lands anywhere from here to the final jump restarts this sequence
    // (see the handler), so it is never lost.
    ".globl atoll_systrap_pret_begin",
    "atoll_systrap_pret_begin:",
    "mov %gs:{area_ro}+{ro_alt_top}, %rsp",
    "cmpl $0, %gs:{slot_fpu_dirty}",
    "je 29f",
    "movl $0, %gs:{slot_fpu_dirty}",
    "mov ${xsave_mask_lo}, %eax",   // as the xsave above
    "mov $-1, %edx",
    "xrstor64 %gs:{area_fpu}",
    "29:",
    "cmpl $0, %gs:{slot_interrupt}",
    "jne 28f",
    "mov %gs:{slot_regs}+{r_fs_base}, %rax",
    "wrfsbase %rax",
    "pushq %gs:{slot_regs}+{r_eflags}",
    "andq $-257, (%rsp)",           // never TF here (it goes by a frame)
    "popfq",
    "mov %gs:{slot_regs}+{r_r15}, %r15",
    "mov %gs:{slot_regs}+{r_r14}, %r14",
    "mov %gs:{slot_regs}+{r_r13}, %r13",
    "mov %gs:{slot_regs}+{r_r12}, %r12",
    "mov %gs:{slot_regs}+{r_rbp}, %rbp",
    "mov %gs:{slot_regs}+{r_rbx}, %rbx",
    "mov %gs:{slot_regs}+{r_r11}, %r11",
    "mov %gs:{slot_regs}+{r_r10}, %r10",
    "mov %gs:{slot_regs}+{r_r9}, %r9",
    "mov %gs:{slot_regs}+{r_r8}, %r8",
    "mov %gs:{slot_rax}, %rax",
    "mov %gs:{slot_regs}+{r_rcx}, %rcx",
    "mov %gs:{slot_regs}+{r_rdx}, %rdx",
    "mov %gs:{slot_regs}+{r_rsi}, %rsi",
    "mov %gs:{slot_regs}+{r_rdi}, %rdi",
    "mov %gs:{slot_regs}+{r_rsp}, %rsp",
    ".globl atoll_systrap_pret_end",
    "atoll_systrap_pret_end:",
    "jmp *%gs:{slot_regs}+{r_rip}",
    "28:",
    // Interrupted on the way out: report it, with the registers the
    // thread was about to run with.
    "rdgsbase %r12",
    "xor %r13d, %r13d",
    "mov $1, %r14d",
    "mov ${st_interrupted}, %eax",
    "jmp 13b",

    // ---- read-only data: the workload threads' seccomp program.
    ".p2align 3",
    ".globl atoll_systrap_work_fprog",
    "atoll_systrap_work_fprog:",
    ".short 0",                     // len, filled in by the kernel
    ".short 0, 0, 0",
    ".quad 0",                      // filter pointer, filled in
    ".globl atoll_systrap_work_filter",
    "atoll_systrap_work_filter:",
    ".globl atoll_systrap_end",
    "atoll_systrap_end:",
    ".popsection",
    code = const CODE,
    code_size = const CODE_SIZE,
    region_end = const STUB_REGION_END,
    task_size_max = const crate::arch::TASK_SIZE_MAX,
    kstate = const KSTATE,
    ks_sleeping = const KS_SLEEPING,
    ks_cpu = const KS_CPU,
    ks_spin = const KS_SPIN,
    ks_one = const KSTATE + KS_ONE,
    ctl_req = const CTL_REQ,
    ctl_req_size = const CTL_REQ_SIZE,
    ctl_res = const CTL_RES,
    ctl_res_size = const CTL_RES_SIZE,
    ctl_results = const CTL_RES + RES_RESULTS,
    res_done = const RES_DONE,
    res_sleeping = const RES_SLEEPING,
    req_count = const REQ_COUNT,
    req_entries = const REQ_ENTRIES,
    entry_size = const ENTRY_SIZE,
    ctl_cap = const CTL_CAP,
    prot_r = const libc::PROT_READ,
    prot_rw = const libc::PROT_READ | libc::PROT_WRITE,
    map_flags = const MAP_FLAGS,
    memfd = const MEMFD,
    done_fd = const DONE_FD,
    doorbell_fd = const DOORBELL_FD,
    thread_flags = const THREAD_CLONE_FLAGS,
    area_size = const AREA_SIZE,
    area_ro = const AREA_RO,
    area_fpu = const AREA_FPU,
    xsave_mask_lo = const super::XSAVE_MASK_LO,
    frame_size = const FRAME_SIZE,
    uc_flags = const UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
    uc_flags_off = const uc::FLAGS,
    uc_stack = const uc::STACK,
    uc_cs = const uc::CS,
    uc_ss = const uc::SS,
    uc_r8 = const uc::R8,
    uc_r9 = const uc::R9,
    uc_r10 = const uc::R10,
    uc_r11 = const uc::R11,
    uc_r12 = const uc::R12,
    uc_r13 = const uc::R13,
    uc_r14 = const uc::R14,
    uc_r15 = const uc::R15,
    uc_rdi = const uc::RDI,
    uc_rsi = const uc::RSI,
    uc_rbp = const uc::RBP,
    uc_rbx = const uc::RBX,
    uc_rdx = const uc::RDX,
    uc_rax = const uc::RAX,
    uc_rcx = const uc::RCX,
    uc_rsp = const uc::RSP,
    uc_rip = const uc::RIP,
    uc_eflags = const uc::EFLAGS,
    uc_fpstate = const uc::FPSTATE,
    slot_state = const SLOT_STATE,
    slot_sleeping = const SLOT_SLEEPING,
    slot_interrupt = const SLOT_INTERRUPT,
    slot_fpu_dirty = const SLOT_FPU_DIRTY,
    slot_frame = const SLOT_FRAME,
    slot_signo = const SLOT_SIGNO,
    slot_code = const SLOT_CODE,
    slot_addr = const SLOT_ADDR,
    slot_regs = const SLOT_REGS,
    slot_path = const SLOT_PATH,
    slot_nospin = const SLOT_NOSPIN,
    slot_rax = const SLOT_RAX,
    nospin_ctl = const NOSPIN_CTL,
    nospin_blocked = const NOSPIN_BLOCKED,
    path_signal = const PATH_SIGNAL,
    path_patched = const PATH_PATCHED,
    ro_alt_top = const RO_ALT_TOP,
    st_xsave = const ST_XSAVE,
    st_ack = const ST_ACK,
    r_r15 = const regs::R15,
    r_r14 = const regs::R14,
    r_r13 = const regs::R13,
    r_r12 = const regs::R12,
    r_rbp = const regs::RBP,
    r_rbx = const regs::RBX,
    r_r11 = const regs::R11,
    r_r10 = const regs::R10,
    r_r9 = const regs::R9,
    r_r8 = const regs::R8,
    r_rax = const regs::RAX,
    r_rcx = const regs::RCX,
    r_rdx = const regs::RDX,
    r_rsi = const regs::RSI,
    r_rdi = const regs::RDI,
    r_orig_rax = const regs::ORIG_RAX,
    r_rip = const regs::RIP,
    r_eflags = const regs::EFLAGS,
    r_rsp = const regs::RSP,
    r_fs_base = const regs::FS_BASE,
    sig_interrupt = const SIG_INTERRUPT,
    audit_arch = const AUDIT_ARCH_X86_64,
    st_syscall = const ST_SYSCALL,
    st_fault = const ST_FAULT,
    st_interrupted = const ST_INTERRUPTED,
    st_reply = const ST_REPLY,
    st_run = const ST_RUN,
    st_exit = const ST_EXIT,
    options(att_syntax)
);

/// Room for the frame a new thread enters the workload through:
/// `pretcode` plus a `struct ucontext`, 16-byte aligned.
const FRAME_SIZE: u64 = (8 + uc::SIZE).next_multiple_of(16);
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

unsafe extern "C" {
    static atoll_systrap_start: u8;
    static atoll_systrap_zygote: u8;
    static atoll_systrap_handler: u8;
    static atoll_systrap_restorer: u8;
    static atoll_systrap_syshandler: u8;
    static atoll_systrap_work_fprog: u8;
    static atoll_systrap_work_filter: u8;
    static atoll_systrap_end: u8;
}

/// Where the blob's entry points land at [`CODE`] in a stub.
#[derive(Clone, Copy, Debug)]
pub struct BlobLayout {
    pub zygote: u64,
    pub handler: u64,
    pub restorer: u64,
    /// Where patched call sites' trampolines jump.
    pub syshandler: u64,
    /// The workload filter's `sock_fprog` and instructions.
    pub work_fprog: u64,
    pub work_filter: u64,
}

fn addr(sym: &u8) -> u64 {
    sym as *const u8 as u64
}

/// The blob as it must be copied to [`MF_CODE`], with the workload
/// filter `filter` appended, and its layout at [`CODE`].
pub fn image(filter: &[libc::sock_filter]) -> (Vec<u8>, BlobLayout) {
    // SAFETY: the symbols delimit the blob in our own text section.
    let (code, layout) = unsafe {
        let start = addr(&atoll_systrap_start);
        let end = addr(&atoll_systrap_end);
        let code = std::slice::from_raw_parts(start as *const u8, (end - start) as usize).to_vec();
        let at = |s: &u8| CODE + (addr(s) - start);
        (
            code,
            BlobLayout {
                zygote: at(&atoll_systrap_zygote),
                handler: at(&atoll_systrap_handler),
                restorer: at(&atoll_systrap_restorer),
                syshandler: at(&atoll_systrap_syshandler),
                work_fprog: at(&atoll_systrap_work_fprog),
                work_filter: at(&atoll_systrap_work_filter),
            },
        )
    };
    let mut image = code;
    let fprog = (layout.work_fprog - CODE) as usize;
    image[fprog..fprog + 2].copy_from_slice(&(filter.len() as u16).to_ne_bytes());
    image[fprog + 8..fprog + 16].copy_from_slice(&layout.work_filter.to_ne_bytes());
    for f in filter {
        image.extend_from_slice(&f.code.to_ne_bytes());
        image.push(f.jt);
        image.push(f.jf);
        image.extend_from_slice(&f.k.to_ne_bytes());
    }
    assert!(
        image.len() as u64 <= CODE_SIZE,
        "systrap blob exceeds its pages"
    );
    (image, layout)
}
