//! The stubs' seccomp filter: a stub may execute a host syscall only from
//! the stub page (the kernel's injection path) and only the few calls that
//! path makes, with the arguments it uses. Workload syscalls are stopped by
//! `PTRACE_SYSEMU` before seccomp runs, so the filter never sees them; if a
//! platform bug ever resumed a workload thread into a real syscall, the
//! instruction pointer would lie outside the stub page and the whole stub
//! process would be killed.
//!
//! Written as raw classic BPF rather than with seccompiler or libseccomp:
//! neither can match on `seccomp_data.instruction_pointer`, which is the
//! point of this filter. It is small, fixed and unit-tested below.

use crate::arch::{PAGE_SIZE, STUB_BASE};

/// Clone flags of a new stub thread (see `PtracePlatform::new_thread`).
pub const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;
/// Clone flags of a new stub process forked from the zygote: the new
/// process becomes the kernel's child, like the zygote.
pub const SPACE_CLONE_FLAGS: u64 = (libc::CLONE_PARENT | libc::SIGCHLD) as u64;
/// The only mmap flags and descriptor the stub uses: the memory file,
/// shared, at a fixed address.
pub const MAP_FLAGS: u64 = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
pub const MEMFD_IN_STUB: u64 = 3;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// A jump target while assembling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Next,
    Kill,
}

enum Insn {
    Load(u32),
    /// if A == k goto t else goto f
    Eq(u32, Target, Target),
    /// if A >= k goto t else goto f
    Ge(u32, Target, Target),
    Ret(u32),
}

/// The syscalls a stub may make and, per syscall, the conditions on the
/// low 32 bits of its arguments (all must hold; alternatives are separate
/// entries for the same number).
fn rules() -> Vec<(i64, Vec<(u32, u32)>)> {
    vec![
        (
            libc::SYS_mmap,
            vec![(3, MAP_FLAGS as u32), (4, MEMFD_IN_STUB as u32)],
        ),
        (libc::SYS_munmap, vec![]),
        (libc::SYS_mprotect, vec![]),
        (libc::SYS_clone, vec![(0, THREAD_CLONE_FLAGS as u32)]),
        (libc::SYS_clone, vec![(0, SPACE_CLONE_FLAGS as u32)]),
        (libc::SYS_exit, vec![]),
    ]
}

fn program() -> Vec<Insn> {
    let ip_hi = (STUB_BASE >> 32) as u32;
    let ip_lo = STUB_BASE as u32;
    let mut p = vec![
        Insn::Load(OFF_ARCH),
        Insn::Eq(AUDIT_ARCH_X86_64, Target::Next, Target::Kill),
        // The instruction pointer (just past the syscall instruction) must
        // lie in the stub's code page.
        Insn::Load(OFF_IP_HI),
        Insn::Eq(ip_hi, Target::Next, Target::Kill),
        Insn::Load(OFF_IP_LO),
        Insn::Ge(ip_lo, Target::Next, Target::Kill),
        Insn::Ge(ip_lo + PAGE_SIZE as u32, Target::Kill, Target::Next),
    ];
    // Each rule: load nr; if nr != rule's nr skip the rule; check each
    // argument (mismatch skips the rest of the rule); all matched: allow.
    for (nr, conds) in rules() {
        let len = 2 + 2 * conds.len() + 1;
        p.push(Insn::Load(OFF_NR));
        p.push(Insn::Eq(nr as u32, Target::Next, Target::Next));
        // Patched below: the false branch skips the rest of this rule.
        let mut body = Vec::new();
        for (arg, val) in conds {
            body.push(Insn::Load(off_arg_lo(arg)));
            body.push(Insn::Eq(val, Target::Next, Target::Next));
        }
        body.push(Insn::Ret(libc::SECCOMP_RET_ALLOW));
        debug_assert_eq!(2 + body.len(), len);
        p.extend(body);
    }
    p.push(Insn::Ret(libc::SECCOMP_RET_KILL_PROCESS));
    p
}

/// The filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub fn stub_filter() -> Vec<libc::sock_filter> {
    let insns = program();
    let n = insns.len();
    // The final instruction kills.
    let kill_at = n - 1;
    // Rule boundaries: for every `Eq` that follows a Load(OFF_NR) or a
    // Load(arg) inside a rule, the false branch goes to the start of the
    // next rule, i.e. the next Load(OFF_NR) or the final kill.
    let mut rule_end = vec![kill_at; n];
    let mut next_rule = kill_at;
    for i in (0..n).rev() {
        rule_end[i] = next_rule;
        if let Insn::Load(OFF_NR) = insns[i] {
            next_rule = i;
        }
    }
    let in_rules = insns
        .iter()
        .position(|i| matches!(i, Insn::Load(OFF_NR)))
        .unwrap_or(n);
    let jump = |from: usize, t: Target, fallback: usize| -> u8 {
        let to = match t {
            Target::Next => fallback,
            Target::Kill => kill_at,
        };
        let d = to - from - 1;
        u8::try_from(d).expect("stub filter jump too long")
    };
    let mut out = Vec::with_capacity(n);
    for (i, insn) in insns.iter().enumerate() {
        let f = match *insn {
            Insn::Load(off) => bpf_stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, off),
            Insn::Eq(k, t, f) | Insn::Ge(k, t, f) => {
                let op = if matches!(insn, Insn::Eq(..)) {
                    libc::BPF_JEQ
                } else {
                    libc::BPF_JGE
                };
                let (jt, jf) = if i >= in_rules {
                    // Inside a rule: true continues, false skips the rule.
                    (jump(i, t, i + 1), jump(i, f, rule_end[i]))
                } else {
                    (jump(i, t, i + 1), jump(i, f, i + 1))
                };
                bpf_jump((libc::BPF_JMP | op | libc::BPF_K) as u16, k, jt, jf)
            }
            Insn::Ret(k) => bpf_stmt((libc::BPF_RET | libc::BPF_K) as u16, k),
        };
        out.push(f);
    }
    out
}

fn bpf_stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The stub filter's rules for docs/security.md: (syscall, condition).
pub fn describe() -> Vec<(&'static str, String)> {
    let name = |nr: i64| crate::syscalls::names::NAMES[nr as usize];
    rules()
        .into_iter()
        .map(|(nr, conds)| {
            let c = conds
                .iter()
                .map(|(a, v)| format!("arg{a} = {v:#x}"))
                .collect::<Vec<_>>()
                .join(", ");
            (name(nr), c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the subset the filter uses.
    fn eval(prog: &[libc::sock_filter], nr: i64, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
        data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_ne_bytes());
        data[8..16].copy_from_slice(&ip.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let mut a = 0u32;
        let mut pc = 0usize;
        loop {
            let f = prog[pc];
            let class = f.code & 0x07;
            match class as u32 {
                libc::BPF_LD => {
                    let k = f.k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                libc::BPF_JMP => {
                    let cond = match (f.code & 0xf0) as u32 {
                        libc::BPF_JEQ => a == f.k,
                        libc::BPF_JGE => a >= f.k,
                        _ => panic!("op"),
                    };
                    pc += 1 + if cond { f.jt } else { f.jf } as usize;
                }
                libc::BPF_RET => return f.k,
                _ => panic!("class"),
            }
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    #[test]
    fn only_the_stub_page_may_make_syscalls() {
        let p = stub_filter();
        let ip = STUB_BASE + 0x40;
        assert_eq!(eval(&p, libc::SYS_munmap, ip, [0; 6]), ALLOW);
        assert_eq!(eval(&p, libc::SYS_munmap, 0x400000, [0; 6]), KILL);
        assert_eq!(
            eval(&p, libc::SYS_munmap, STUB_BASE + PAGE_SIZE, [0; 6]),
            KILL
        );
        assert_eq!(eval(&p, libc::SYS_munmap, STUB_BASE - 1, [0; 6]), KILL);
        assert_eq!(eval(&p, libc::SYS_getpid, ip, [0; 6]), KILL);
        assert_eq!(eval(&p, libc::SYS_openat, ip, [0; 6]), KILL);
        assert_eq!(eval(&p, libc::SYS_exit, ip, [0; 6]), ALLOW);
    }

    #[test]
    fn arguments_are_checked() {
        let p = stub_filter();
        let ip = STUB_BASE + 0x40;
        let map = |flags: u64, fd: u64| eval(&p, libc::SYS_mmap, ip, [0, 4096, 7, flags, fd, 0]);
        assert_eq!(map(MAP_FLAGS, 3), ALLOW);
        assert_eq!(map(MAP_FLAGS, 4), KILL);
        assert_eq!(
            map((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64, 3),
            KILL
        );
        let clone = |flags: u64| eval(&p, libc::SYS_clone, ip, [flags, 0, 0, 0, 0, 0]);
        assert_eq!(clone(THREAD_CLONE_FLAGS), ALLOW);
        assert_eq!(clone(SPACE_CLONE_FLAGS), ALLOW);
        assert_eq!(clone(libc::SIGCHLD as u64), KILL);
        assert_eq!(clone((libc::CLONE_NEWUSER | libc::SIGCHLD) as u64), KILL);
    }
}
