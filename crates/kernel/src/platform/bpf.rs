//! A tiny classic-BPF assembler for the platforms' stub filters, and an
//! interpreter for their unit tests.
//!
//! The stub filters are written as raw BPF rather than with seccompiler
//! or libseccomp because they must test `seccomp_data.instruction_pointer`
//! (a call is allowed only from the platform's own code), which neither
//! library can express.

use std::collections::HashMap;

/// Offsets into `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub const OFF_IP_LO: u32 = 8;
pub const OFF_IP_HI: u32 = 12;
pub fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
pub fn off_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// A jump target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum L {
    /// The next instruction.
    Next,
    Named(&'static str),
    /// Numbered labels for generated code.
    N(u32),
}

enum Item {
    Stmt(u16, u32),
    Jump(u16, u32, L, L),
    Label(L),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    pub fn label(&mut self, l: L) -> &mut Self {
        self.items.push(Item::Label(l));
        self
    }

    /// A = the 32-bit word at `off` of seccomp_data.
    pub fn load(&mut self, off: u32) -> &mut Self {
        self.items.push(Item::Stmt(
            (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            off,
        ));
        self
    }

    pub fn ret(&mut self, k: u32) -> &mut Self {
        self.items
            .push(Item::Stmt((libc::BPF_RET | libc::BPF_K) as u16, k));
        self
    }

    /// if A == k goto t else goto f
    pub fn jeq(&mut self, k: u32, t: L, f: L) -> &mut Self {
        self.jump(libc::BPF_JEQ, k, t, f)
    }

    /// if A >= k goto t else goto f (unsigned)
    pub fn jge(&mut self, k: u32, t: L, f: L) -> &mut Self {
        self.jump(libc::BPF_JGE, k, t, f)
    }

    /// if A > k goto t else goto f (unsigned)
    pub fn jgt(&mut self, k: u32, t: L, f: L) -> &mut Self {
        self.jump(libc::BPF_JGT, k, t, f)
    }

    /// if A & k goto t else goto f
    pub fn jset(&mut self, k: u32, t: L, f: L) -> &mut Self {
        self.jump(libc::BPF_JSET, k, t, f)
    }

    fn jump(&mut self, op: u32, k: u32, t: L, f: L) -> &mut Self {
        self.items.push(Item::Jump(
            (libc::BPF_JMP | op | libc::BPF_K) as u16,
            k,
            t,
            f,
        ));
        self
    }

    /// The program; panics on an undefined label or a jump too long for
    /// classic BPF (the filters here are small and fixed: a unit test
    /// assembles each).
    pub fn assemble(&self) -> Vec<libc::sock_filter> {
        let mut at = HashMap::new();
        let mut n = 0usize;
        for it in &self.items {
            match it {
                Item::Label(l) => {
                    assert!(at.insert(*l, n).is_none(), "label {l:?} defined twice");
                }
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for it in &self.items {
            let pc = out.len();
            let dist = |l: &L| -> u8 {
                let to = match l {
                    L::Next => pc + 1,
                    l => *at.get(l).unwrap_or_else(|| panic!("undefined label {l:?}")),
                };
                assert!(to > pc, "backward jump to {l:?}");
                u8::try_from(to - pc - 1).expect("BPF jump too long")
            };
            match it {
                Item::Label(_) => {}
                Item::Stmt(code, k) => out.push(libc::sock_filter {
                    code: *code,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Item::Jump(code, k, t, f) => out.push(libc::sock_filter {
                    code: *code,
                    jt: dist(t),
                    jf: dist(f),
                    k: *k,
                }),
            }
        }
        out
    }
}

/// Runs `prog` on a syscall (unit tests of the filters).
pub fn eval(prog: &[libc::sock_filter], nr: i64, ip: u64, args: [u64; 6]) -> u32 {
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
        match (f.code & 0x07) as u32 {
            libc::BPF_LD => {
                let k = f.k as usize;
                a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                pc += 1;
            }
            libc::BPF_JMP => {
                let cond = match (f.code & 0xf0) as u32 {
                    libc::BPF_JEQ => a == f.k,
                    libc::BPF_JGE => a >= f.k,
                    libc::BPF_JGT => a > f.k,
                    libc::BPF_JSET => a & f.k != 0,
                    _ => panic!("op"),
                };
                pc += 1 + if cond { f.jt } else { f.jf } as usize;
            }
            libc::BPF_RET => return f.k,
            _ => panic!("class"),
        }
    }
}
