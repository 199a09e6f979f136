//! Signals: sets, actions, pending queues, and x86_64 signal frames.

use std::collections::VecDeque;

use crate::arch::Regs;
use crate::errno::{Errno, SysResult};
use crate::mm::AddressSpace;
use crate::platform::FpuState;

pub const NSIG: usize = 64;
pub const SIGKILL: i32 = libc::SIGKILL;
pub const SIGSTOP: i32 = libc::SIGSTOP;

/// A signal mask: bit (n-1) for signal n.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    pub fn bit(sig: i32) -> u64 {
        1u64 << (sig - 1)
    }
    pub fn has(self, sig: i32) -> bool {
        (1..=NSIG as i32).contains(&sig) && self.0 & Self::bit(sig) != 0
    }
    pub fn add(&mut self, sig: i32) {
        self.0 |= Self::bit(sig);
    }
    pub fn remove(&mut self, sig: i32) {
        self.0 &= !Self::bit(sig);
    }
    /// SIGKILL and SIGSTOP can never be blocked.
    pub fn sanitized(self) -> SigSet {
        SigSet(self.0 & !(Self::bit(SIGKILL) | Self::bit(SIGSTOP)))
    }
}

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// The kernel's struct sigaction (x86_64 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
unsafe impl crate::mm::usercopy::Pod for SigAction {}

#[derive(Clone)]
pub struct SigHandlers {
    pub actions: [SigAction; NSIG],
}

impl Default for SigHandlers {
    fn default() -> Self {
        SigHandlers {
            actions: [SigAction::default(); NSIG],
        }
    }
}

impl SigHandlers {
    pub fn get(&self, sig: i32) -> SigAction {
        self.actions[(sig - 1) as usize]
    }
    pub fn set(&mut self, sig: i32, a: SigAction) {
        self.actions[(sig - 1) as usize] = a;
    }
    /// exec: handlers reset to default, ignored stays ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
}

/// What a signal does when its handler is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => DefaultAction::Ignore,
        libc::SIGCONT => DefaultAction::Continue,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => DefaultAction::Stop,
        libc::SIGQUIT
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGSEGV
        | libc::SIGXCPU
        | libc::SIGXFSZ
        | libc::SIGSYS => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

pub fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// A queued signal with its siginfo (128 bytes, as the kernel passes it).
#[derive(Clone, Copy)]
pub struct SigInfo {
    pub raw: [u8; 128],
}

impl SigInfo {
    pub fn new(signo: i32, code: i32) -> SigInfo {
        let mut raw = [0u8; 128];
        raw[0..4].copy_from_slice(&signo.to_ne_bytes());
        raw[8..12].copy_from_slice(&code.to_ne_bytes());
        SigInfo { raw }
    }
    pub fn signo(&self) -> i32 {
        i32::from_ne_bytes(self.raw[0..4].try_into().unwrap())
    }
    pub fn code(&self) -> i32 {
        i32::from_ne_bytes(self.raw[8..12].try_into().unwrap())
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.raw[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put64(&mut self, off: usize, v: u64) {
        self.raw[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    /// kill(2)-style: sender pid and uid.
    pub fn user(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put32(16, pid as u32);
        s.put32(20, uid);
        s
    }
    /// SIGCHLD: child pid, uid, status, times.
    pub fn child(code: i32, pid: i32, uid: u32, status: i32) -> SigInfo {
        let mut s = SigInfo::user(libc::SIGCHLD, code, pid, uid);
        s.put32(24, status as u32);
        s
    }
    /// Faults: the address.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put64(16, addr);
        s
    }
    /// POSIX timers: timer id, overrun, value.
    pub fn timer(signo: i32, id: i32, overrun: i32, value: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, libc::SI_TIMER);
        s.put32(16, id as u32);
        s.put32(20, overrun as u32);
        s.put64(24, value);
        s
    }
    pub fn pid(&self) -> i32 {
        i32::from_ne_bytes(self.raw[16..20].try_into().unwrap())
    }
}

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// Pending signals of a task or a thread group. Standard signals are
/// queued once; real-time signals queue every instance.
#[derive(Default, Clone)]
pub struct SigQueue {
    pub set: SigSet,
    pub queue: VecDeque<SigInfo>,
}

impl SigQueue {
    pub fn push(&mut self, info: SigInfo) {
        let sig = info.signo();
        if sig < 32 && self.set.has(sig) {
            return;
        }
        self.set.add(sig);
        self.queue.push_back(info);
    }

    /// Takes the next signal not in `blocked` (synchronous ones first,
    /// then lowest number).
    pub fn take(&mut self, blocked: SigSet) -> Option<SigInfo> {
        let deliverable = self.set.0 & !blocked.0;
        if deliverable == 0 {
            return None;
        }
        let sync = SigSet::bit(libc::SIGSEGV)
            | SigSet::bit(libc::SIGBUS)
            | SigSet::bit(libc::SIGILL)
            | SigSet::bit(libc::SIGTRAP)
            | SigSet::bit(libc::SIGFPE)
            | SigSet::bit(libc::SIGSYS)
            | SigSet::bit(SIGKILL);
        let pick = if deliverable & sync != 0 {
            deliverable & sync
        } else {
            deliverable
        };
        let sig = pick.trailing_zeros() as i32 + 1;
        let pos = self.queue.iter().position(|i| i.signo() == sig)?;
        let info = self.queue.remove(pos).unwrap();
        if !self.queue.iter().any(|i| i.signo() == sig) {
            self.set.remove(sig);
        }
        Some(info)
    }

    pub fn remove(&mut self, sig: i32) {
        self.queue.retain(|i| i.signo() != sig);
        self.set.remove(sig);
    }

    pub fn has_deliverable(&self, blocked: SigSet) -> bool {
        self.set.0 & !blocked.0 != 0
    }
}

/// sigaltstack state.
#[derive(Clone, Copy, Debug, Default)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;

impl AltStack {
    pub fn on_stack(&self, rsp: u64) -> bool {
        self.flags & SS_DISABLE == 0 && self.size > 0 && rsp > self.sp && rsp <= self.sp + self.size
    }
}

// ---- signal frame (struct rt_sigframe on x86_64) ----

const SIGCONTEXT_SIZE: u64 = 256;
const UC_OFF: u64 = 8; // after pretcode
const UC_STACK_OFF: u64 = UC_OFF + 16;
const UC_MCONTEXT_OFF: u64 = UC_OFF + 40;
const UC_SIGMASK_OFF: u64 = UC_MCONTEXT_OFF + SIGCONTEXT_SIZE;
const INFO_OFF: u64 = UC_SIGMASK_OFF + 8;
const FRAME_SIZE: u64 = INFO_OFF + 128;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const UC_FP_XSTATE: u64 = 1;

fn sigcontext_bytes(
    r: &Regs,
    mask: u64,
    fpstate: u64,
    trapno: u64,
    err: u64,
    cr2: u64,
) -> [u8; 256] {
    let mut b = [0u8; 256];
    let words: [u64; 18] = [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip, r.eflags,
    ];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    // cs, gs, fs, ss (u16 each)
    b[144..146].copy_from_slice(&(r.cs as u16).to_ne_bytes());
    b[146..148].copy_from_slice(&(r.gs as u16).to_ne_bytes());
    b[148..150].copy_from_slice(&(r.fs as u16).to_ne_bytes());
    b[150..152].copy_from_slice(&(r.ss as u16).to_ne_bytes());
    for (i, w) in [err, trapno, mask, cr2, fpstate].iter().enumerate() {
        let o = 152 + i * 8;
        b[o..o + 8].copy_from_slice(&w.to_ne_bytes());
    }
    b
}

/// Where the frame goes and what the handler starts with.
pub struct FrameSetup {
    pub handler: u64,
    pub restorer: u64,
    pub siginfo: SigInfo,
    pub old_mask: SigSet,
    pub altstack: AltStack,
    pub use_altstack: bool,
}

/// Builds an rt_sigframe on the user stack and points the registers at
/// the handler. Returns EFAULT if the stack cannot be written (the
/// caller then kills the task with SIGSEGV, as Linux does).
pub fn setup_frame(
    mm: &AddressSpace,
    regs: &mut Regs,
    fpu: &FpuState,
    f: &FrameSetup,
) -> SysResult<()> {
    let nested = f.altstack.on_stack(regs.rsp);
    let entering =
        f.use_altstack && !nested && f.altstack.flags & SS_DISABLE == 0 && f.altstack.size > 0;
    let mut sp = if entering {
        f.altstack.sp + f.altstack.size
    } else {
        regs.rsp.wrapping_sub(128) // red zone
    };
    let xsize = fpu.0.len() as u64;
    sp = sp.wrapping_sub(xsize + 4) & !63;
    let fp_addr = sp;
    sp = sp.wrapping_sub(FRAME_SIZE);
    sp = ((sp + 8) & !15) - 8;
    let frame = sp;
    // A frame that would overflow the alternate stack is not built: the
    // thread dies of SIGSEGV (Linux's get_sigframe), rather than write
    // below the stack it chose.
    if (nested || entering) && !f.altstack.on_stack(frame) {
        return Err(Errno::EFAULT);
    }

    // fpstate with the software bytes that say "XSAVE format follows".
    let mut fp = fpu.0.clone();
    if fp.len() >= 512 {
        let xfeatures = if fp.len() >= 520 {
            u64::from_ne_bytes(fp[512..520].try_into().unwrap())
        } else {
            3
        };
        fp[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_ne_bytes());
        fp[468..472].copy_from_slice(&((xsize + 4) as u32).to_ne_bytes());
        fp[472..480].copy_from_slice(&xfeatures.to_ne_bytes());
        fp[480..484].copy_from_slice(&(xsize as u32).to_ne_bytes());
    }
    fp.extend_from_slice(&FP_XSTATE_MAGIC2.to_ne_bytes());
    mm.write_bytes(fp_addr, &fp)?;

    let mut buf = vec![0u8; FRAME_SIZE as usize];
    buf[0..8].copy_from_slice(&f.restorer.to_ne_bytes());
    buf[UC_OFF as usize..UC_OFF as usize + 8].copy_from_slice(&UC_FP_XSTATE.to_ne_bytes());
    let st = UC_STACK_OFF as usize;
    buf[st..st + 8].copy_from_slice(&f.altstack.sp.to_ne_bytes());
    let ss_flags = if f.altstack.on_stack(regs.rsp) {
        SS_ONSTACK
    } else if f.altstack.size == 0 {
        SS_DISABLE
    } else {
        f.altstack.flags
    };
    buf[st + 8..st + 12].copy_from_slice(&ss_flags.to_ne_bytes());
    buf[st + 16..st + 24].copy_from_slice(&f.altstack.size.to_ne_bytes());
    let (trapno, err, cr2) = match f.siginfo.signo() {
        libc::SIGSEGV | libc::SIGBUS => (
            14,
            0,
            u64::from_ne_bytes(f.siginfo.raw[16..24].try_into().unwrap()),
        ),
        _ => (0, 0, 0),
    };
    let sc = sigcontext_bytes(regs, f.old_mask.0, fp_addr, trapno, err, cr2);
    buf[UC_MCONTEXT_OFF as usize..UC_MCONTEXT_OFF as usize + 256].copy_from_slice(&sc);
    buf[UC_SIGMASK_OFF as usize..UC_SIGMASK_OFF as usize + 8]
        .copy_from_slice(&f.old_mask.0.to_ne_bytes());
    buf[INFO_OFF as usize..INFO_OFF as usize + 128].copy_from_slice(&f.siginfo.raw);
    mm.write_bytes(frame, &buf)?;

    regs.rsp = frame;
    regs.rip = f.handler;
    regs.rdi = f.siginfo.signo() as u64;
    regs.rsi = frame + INFO_OFF;
    regs.rdx = frame + UC_OFF;
    regs.rax = 0;
    regs.eflags &= !(0x100 | 0x400); // TF, DF
    Ok(())
}

/// What rt_sigreturn restores.
pub struct Restored {
    pub mask: SigSet,
    pub fpu: Option<FpuState>,
    pub altstack: (u64, i32, u64),
}

/// rt_sigreturn: the frame sits just below the stack pointer (the
/// handler's `ret` popped pretcode).
pub fn restore_frame(mm: &AddressSpace, regs: &mut Regs, fpu_size: usize) -> SysResult<Restored> {
    let frame = regs.rsp.wrapping_sub(8);
    let buf = mm
        .read_vec(frame, FRAME_SIZE as usize)
        .map_err(|_| Errno::EFAULT)?;
    let w = |off: usize| u64::from_ne_bytes(buf[off..off + 8].try_into().unwrap());
    let sc = UC_MCONTEXT_OFF as usize;
    let old = *regs;
    regs.r8 = w(sc);
    regs.r9 = w(sc + 8);
    regs.r10 = w(sc + 16);
    regs.r11 = w(sc + 24);
    regs.r12 = w(sc + 32);
    regs.r13 = w(sc + 40);
    regs.r14 = w(sc + 48);
    regs.r15 = w(sc + 56);
    regs.rdi = w(sc + 64);
    regs.rsi = w(sc + 72);
    regs.rbp = w(sc + 80);
    regs.rbx = w(sc + 88);
    regs.rdx = w(sc + 96);
    regs.rax = w(sc + 104);
    regs.rcx = w(sc + 112);
    regs.rsp = w(sc + 120);
    regs.rip = w(sc + 128);
    // Only the user-changeable flags (CF PF AF ZF SF TF DF OF, AC).
    const FIX: u64 = 0x0004_0dd5;
    regs.eflags = (old.eflags & !FIX) | (w(sc + 136) & FIX);
    regs.cs = old.cs;
    regs.ss = old.ss;
    regs.orig_rax = u64::MAX;
    let fp_addr = w(sc + 184);
    let fpu = if fp_addr != 0 {
        Some(FpuState(
            mm.read_vec(fp_addr, fpu_size).map_err(|_| Errno::EFAULT)?,
        ))
    } else {
        None
    };
    let mask = SigSet(w(UC_SIGMASK_OFF as usize)).sanitized();
    let st = UC_STACK_OFF as usize;
    let altstack = (
        w(st),
        i32::from_ne_bytes(buf[st + 8..st + 12].try_into().unwrap()),
        w(st + 16),
    );
    Ok(Restored {
        mask,
        fpu,
        altstack,
    })
}
