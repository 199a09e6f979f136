//! The two seccomp filters of a systrap stub.
//!
//! - The *stub filter* is installed in the zygote and so holds for every
//!   thread of every stub process: a host syscall is allowed only from the
//!   blob and only if it is one the blob makes, with the flags and
//!   descriptors the blob uses.
//! - The *workload filter* is stacked on top by every workload thread
//!   before it first runs workload code: it leaves that thread only what
//!   the handler needs on its way to and from the kernel. What the
//!   control thread needs besides (mmap, clone, prctl, seccomp,
//!   sigaltstack, the done eventfd) is therefore out of a workload
//!   thread's reach even when it jumps into the blob with registers of
//!   its choosing.
//!
//! Both trap (SIGSYS, which the handler turns into a kernel stop) on a
//! call from outside the blob: syscall user dispatch normally stops such
//! calls first; the filter is the backstop. A call from the blob that no
//! rule allows kills the whole stub process: the blob never makes one,
//! so it is an attack.

use super::layout::*;

/// prctl option of syscall user dispatch (not in the libc crate).
pub const PR_SET_SYSCALL_USER_DISPATCH: u64 = 59;
use crate::platform::bpf::{AUDIT_ARCH_X86_64, Asm, L, OFF_ARCH, OFF_IP_HI, OFF_IP_LO, OFF_NR};
use crate::platform::bpf::{off_arg_hi, off_arg_lo};

/// One allowed call: its number and argument equalities (all must hold).
pub struct Rule {
    pub nr: i64,
    pub args: Vec<(u32, u64, &'static str)>,
    pub why: &'static str,
}

fn rule(nr: i64, args: Vec<(u32, u64, &'static str)>, why: &'static str) -> Rule {
    Rule { nr, args, why }
}

/// Calls of the handler's path to and from the kernel (every thread).
fn handoff_rules() -> Vec<Rule> {
    use libc::*;
    vec![
        rule(
            SYS_futex,
            vec![(1, FUTEX_WAIT as u64, "FUTEX_WAIT")],
            "sleeping on the thread's state word",
        ),
        rule(
            SYS_write,
            vec![(0, DOORBELL_FD, "the doorbell"), (2, 8, "8 bytes")],
            "waking a sleeping kernel",
        ),
        rule(
            SYS_sched_yield,
            vec![],
            "handing the CPU between the control thread and a thread waiting for it",
        ),
        rule(SYS_rt_sigreturn, vec![], "back to the workload"),
        rule(SYS_exit, vec![], "a thread the kernel ends"),
    ]
}

/// The stub process filter: the handoff plus the control thread's calls.
pub fn stub_rules() -> Vec<Rule> {
    use libc::*;
    let mut r = handoff_rules();
    r.extend([
        rule(
            SYS_mmap,
            vec![
                (3, MAP_FLAGS, "MAP_SHARED|MAP_FIXED"),
                (4, MEMFD, "the memory file"),
            ],
            "mapping the memory file",
        ),
        rule(SYS_munmap, vec![], "unmapping"),
        rule(SYS_mprotect, vec![], "the workload's mprotect"),
        rule(
            SYS_clone,
            vec![(0, THREAD_CLONE_FLAGS, "a thread of the stub")],
            "a new workload thread",
        ),
        rule(
            SYS_clone,
            vec![(0, SPACE_CLONE_FLAGS, "CLONE_PARENT|SIGCHLD")],
            "a new stub process (zygote)",
        ),
        rule(
            SYS_write,
            vec![(0, DONE_FD, "the done eventfd"), (2, 8, "8 bytes")],
            "a request ran",
        ),
        rule(SYS_sigaltstack, vec![], "a new thread's signal stack"),
        rule(
            SYS_prctl,
            vec![
                (0, PR_SET_SYSCALL_USER_DISPATCH, "syscall user dispatch"),
                (1, 1, "ON"),
                (2, CODE, "the blob"),
                (3, CODE_SIZE, "the blob's size"),
                (4, 0, "no selector"),
            ],
            "trapping a new thread's syscalls",
        ),
        rule(
            SYS_prctl,
            vec![
                (0, PR_SET_PDEATHSIG as u64, "PR_SET_PDEATHSIG"),
                (1, SIGKILL as u64, "SIGKILL"),
            ],
            "a stub dies with its kernel",
        ),
        rule(
            SYS_seccomp,
            vec![
                (0, SECCOMP_SET_MODE_FILTER as u64, "SET_MODE_FILTER"),
                (1, 0, "no flags"),
            ],
            "a new thread's workload filter",
        ),
    ]);
    r
}

/// The workload thread filter.
pub fn work_rules() -> Vec<Rule> {
    handoff_rules()
}

fn program(rules: &[Rule]) -> Vec<libc::sock_filter> {
    let mut a = Asm::new();
    let trap = L::Named("trap");
    let kill = L::Named("kill");
    a.load(OFF_ARCH).jeq(AUDIT_ARCH_X86_64, L::Next, kill);
    // seccomp's instruction pointer is the address after the syscall
    // instruction: inside the blob means (CODE, CODE + CODE_SIZE].
    a.load(OFF_IP_HI).jeq((CODE >> 32) as u32, L::Next, trap);
    a.load(OFF_IP_LO)
        .jgt(CODE as u32, L::Next, trap)
        .jgt((CODE + CODE_SIZE) as u32, trap, L::Next);
    for (i, r) in rules.iter().enumerate() {
        let skip = L::N(i as u32 + 1);
        a.label(L::N(i as u32));
        a.load(OFF_NR).jeq(r.nr as u32, L::Next, skip);
        for &(arg, v, _) in &r.args {
            a.load(off_arg_lo(arg)).jeq(v as u32, L::Next, skip);
            a.load(off_arg_hi(arg)).jeq((v >> 32) as u32, L::Next, skip);
        }
        a.ret(libc::SECCOMP_RET_ALLOW);
    }
    a.label(L::N(rules.len() as u32));
    a.label(kill).ret(libc::SECCOMP_RET_KILL_PROCESS);
    a.label(trap).ret(libc::SECCOMP_RET_TRAP);
    a.assemble()
}

pub fn stub_filter() -> Vec<libc::sock_filter> {
    program(&stub_rules())
}

pub fn work_filter() -> Vec<libc::sock_filter> {
    program(&work_rules())
}

/// Rules for docs/security.md: (syscall, condition, why).
pub fn describe(rules: &[Rule]) -> Vec<(&'static str, String, &'static str)> {
    rules
        .iter()
        .map(|r| {
            let c = r
                .args
                .iter()
                .map(|(a, _, label)| format!("arg{a} = {label}"))
                .collect::<Vec<_>>()
                .join(", ");
            (crate::syscalls::names::NAMES[r.nr as usize], c, r.why)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::bpf::eval;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    const TRAP: u32 = libc::SECCOMP_RET_TRAP;
    const IN: u64 = CODE + 0x80;

    #[test]
    fn calls_from_outside_the_blob_trap() {
        for p in [stub_filter(), work_filter()] {
            assert_eq!(eval(&p, libc::SYS_getpid, 0x400000, [0; 6]), TRAP);
            assert_eq!(eval(&p, libc::SYS_futex, 0x400000, [0; 6]), TRAP);
            assert_eq!(eval(&p, libc::SYS_futex, CODE, [0; 6]), TRAP);
            assert_eq!(
                eval(&p, libc::SYS_futex, CODE + CODE_SIZE + 1, [0; 6]),
                TRAP
            );
            assert_eq!(eval(&p, libc::SYS_futex, KSTATE + 8, [0; 6]), TRAP);
            assert_eq!(eval(&p, libc::SYS_futex, IN, [0; 6]), ALLOW);
        }
    }

    #[test]
    fn workload_threads_cannot_reach_the_control_calls() {
        let w = work_filter();
        let s = stub_filter();
        let mmap = [0x1000, 4096, 7, MAP_FLAGS, MEMFD, 0];
        assert_eq!(eval(&s, libc::SYS_mmap, IN, mmap), ALLOW);
        assert_eq!(eval(&w, libc::SYS_mmap, IN, mmap), KILL);
        let clone = [THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0];
        assert_eq!(eval(&s, libc::SYS_clone, IN, clone), ALLOW);
        assert_eq!(eval(&w, libc::SYS_clone, IN, clone), KILL);
        let done = [DONE_FD, 0, 8, 0, 0, 0];
        assert_eq!(eval(&s, libc::SYS_write, IN, done), ALLOW);
        assert_eq!(eval(&w, libc::SYS_write, IN, done), KILL);
        let bell = [DOORBELL_FD, 0, 8, 0, 0, 0];
        assert_eq!(eval(&w, libc::SYS_write, IN, bell), ALLOW);
        for nr in [
            libc::SYS_munmap,
            libc::SYS_mprotect,
            libc::SYS_sigaltstack,
            libc::SYS_prctl,
            libc::SYS_seccomp,
        ] {
            assert_eq!(eval(&w, nr, IN, [0; 6]), KILL, "{nr}");
        }
    }

    #[test]
    fn arguments_are_checked_in_full() {
        let s = stub_filter();
        let mmap = |flags: u64, fd: u64| eval(&s, libc::SYS_mmap, IN, [0, 4096, 7, flags, fd, 0]);
        assert_eq!(mmap(MAP_FLAGS, MEMFD), ALLOW);
        assert_eq!(mmap(MAP_FLAGS, 4), KILL);
        assert_eq!(mmap(MAP_FLAGS, MEMFD | 1 << 32), KILL);
        assert_eq!(
            mmap((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64, MEMFD),
            KILL
        );
        let clone = |f: u64| eval(&s, libc::SYS_clone, IN, [f, 0, 0, 0, 0, 0]);
        assert_eq!(clone(SPACE_CLONE_FLAGS), ALLOW);
        assert_eq!(clone(libc::SIGCHLD as u64), KILL);
        assert_eq!(clone((libc::CLONE_NEWUSER | libc::SIGCHLD) as u64), KILL);
        let sud = |off: u64| {
            eval(
                &s,
                libc::SYS_prctl,
                IN,
                [PR_SET_SYSCALL_USER_DISPATCH, 1, off, CODE_SIZE, 0, 0],
            )
        };
        assert_eq!(sud(CODE), ALLOW);
        assert_eq!(sud(0), KILL, "a dispatch range of the workload's choosing");
        assert_eq!(
            eval(
                &s,
                libc::SYS_prctl,
                IN,
                [PR_SET_SYSCALL_USER_DISPATCH, 0, 0, 0, 0, 0]
            ),
            KILL,
            "turning dispatch off"
        );
        let seccomp = |flags: u64| eval(&s, libc::SYS_seccomp, IN, [1, flags, 0, 0, 0, 0]);
        assert_eq!(seccomp(0), ALLOW);
        assert_eq!(seccomp(libc::SECCOMP_FILTER_FLAG_TSYNC), KILL);
        assert_eq!(eval(&s, libc::SYS_execve, IN, [0; 6]), KILL);
        assert_eq!(eval(&s, libc::SYS_openat, IN, [0; 6]), KILL);
        assert_eq!(eval(&s, libc::SYS_exit_group, IN, [0; 6]), KILL);
    }
}
