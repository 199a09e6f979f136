//! ptrace(2): requests of a tracer on tasks of the same sandbox. The
//! mechanism (stops, reports, resuming) is kernel/ptrace.rs; here are the
//! requests, which read and change the state the kernel keeps for a
//! stopped tracee. Nothing here reaches the host's ptrace.

use super::{Handler, Status};
use crate::arch::{Regs, USER_END, regs_words};
use crate::errno::{Errno, SysResult};
use crate::kernel::ptrace::{O_ALL, Resume, StopKind, Tracee};
use crate::kernel::signal::{SigInfo, SigSet};
use crate::kernel::task::TaskState;
use crate::kernel::{Kernel, Tid};
use crate::platform::{FpuState, Platform};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    vec![(
        "ptrace",
        sys_ptrace,
        Status::Partial,
        "between tasks of the sandbox, Yama scope 1; no hardware breakpoints (EIO)",
    )]
}

const TRACEME: u64 = 0;
const PEEKTEXT: u64 = 1;
const PEEKDATA: u64 = 2;
const PEEKUSR: u64 = 3;
const POKETEXT: u64 = 4;
const POKEDATA: u64 = 5;
const POKEUSR: u64 = 6;
const CONT: u64 = 7;
const KILL: u64 = 8;
const GETREGS: u64 = 12;
const SETREGS: u64 = 13;
const GETFPREGS: u64 = 14;
const SETFPREGS: u64 = 15;
const ATTACH: u64 = 16;
const DETACH: u64 = 17;
const SINGLESTEP: u64 = 9;
const SYSCALL: u64 = 24;
const SYSEMU: u64 = 31;
const SYSEMU_SINGLESTEP: u64 = 32;
const SETOPTIONS: u64 = 0x4200;
const GETEVENTMSG: u64 = 0x4201;
const GETSIGINFO: u64 = 0x4202;
const SETSIGINFO: u64 = 0x4203;
const GETREGSET: u64 = 0x4204;
const SETREGSET: u64 = 0x4205;
const SEIZE: u64 = 0x4206;
const INTERRUPT: u64 = 0x4207;
const LISTEN: u64 = 0x4208;
const PEEKSIGINFO: u64 = 0x4209;
const GETSIGMASK: u64 = 0x420a;
const SETSIGMASK: u64 = 0x420b;

const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;
const NT_X86_XSTATE: u64 = 0x202;

/// Size of `struct user_regs_struct`.
const REGS_SIZE: usize = std::mem::size_of::<Regs>();
/// Size of `struct user_fpregs_struct` (the legacy FXSAVE area).
const FPREGS_SIZE: usize = 512;
/// offsetof(struct user, u_debugreg) and sizeof(struct user) on x86_64.
const DEBUGREG_OFF: u64 = 848;
const USER_SIZE: u64 = 912;

fn sys_ptrace(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (req, pid, addr, data) = (a[0], a[1] as i32, a[2], a[3]);
    match req {
        TRACEME => return traceme(k, tid),
        ATTACH | SEIZE => return attach(k, tid, pid, req == SEIZE, addr, data),
        _ => {}
    }
    // Every other request names a tracee of the caller's; all but these
    // three need it stopped.
    let stopped_needed = !matches!(req, KILL | INTERRUPT);
    let target = tracee_of(k, tid, pid, stopped_needed)?;
    // Its registers, whole, for the requests that read or set them.
    k.callee_saved(target);
    match req {
        PEEKTEXT | PEEKDATA => {
            let mut w = [0u8; 8];
            k.task_mm(target)
                .borrow()
                .read_bytes(addr, &mut w)
                .map_err(|_| Errno::EIO)?;
            k.task_mm(tid).borrow().write_bytes(data, &w)?;
            Ok(0)
        }
        POKETEXT | POKEDATA => poke(k, target, addr, data),
        PEEKUSR => {
            let v = peek_user(k, target, addr)?;
            k.task_mm(tid).borrow().write_val(data, &v)?;
            Ok(0)
        }
        POKEUSR => poke_user(k, target, addr, data),
        CONT | SYSCALL | DETACH | SYSEMU | SYSEMU_SINGLESTEP | SINGLESTEP => {
            let sig = valid_sig(data)?;
            let how = match req {
                CONT => Resume::Cont,
                SYSCALL => Resume::Syscall,
                SYSEMU => Resume::Sysemu,
                SYSEMU_SINGLESTEP => Resume::SysemuStep,
                SINGLESTEP => Resume::Step,
                _ => Resume::Detach,
            };
            k.ptrace_resume(target, sig, how);
            Ok(0)
        }
        KILL => {
            let tgid = k.task(target).tgid;
            k.group_exit(tgid, libc::SIGKILL);
            Ok(0)
        }
        GETREGS => {
            let words = regs_words(&k.task(target).regs);
            k.task_mm(tid).borrow().write_val(data, &words)?;
            Ok(0)
        }
        SETREGS => {
            let words: [u64; REGS_SIZE / 8] = k.task_mm(tid).borrow().read_val(data)?;
            let mut regs = k.task(target).regs;
            set_words(&mut regs, &words);
            set_regs(k, target, regs)
        }
        GETFPREGS => {
            let fpu = get_fpu(k, target)?;
            k.task_mm(tid)
                .borrow()
                .write_bytes(data, &fpu.0[..FPREGS_SIZE])?;
            Ok(0)
        }
        SETFPREGS => {
            let mut buf = [0u8; FPREGS_SIZE];
            k.task_mm(tid).borrow().read_bytes(data, &mut buf)?;
            set_fpregs(k, target, &buf, 0)
        }
        GETREGSET => get_regset(k, tid, target, addr, data),
        SETREGSET => set_regset(k, tid, target, addr, data),
        SETOPTIONS => {
            let opts = u32::try_from(data).map_err(|_| Errno::EINVAL)?;
            if opts & !O_ALL != 0 {
                return Err(Errno::EINVAL);
            }
            tracee(k, target).options = opts;
            Ok(0)
        }
        GETEVENTMSG => {
            let msg = tracee(k, target).eventmsg;
            k.task_mm(tid).borrow().write_val(data, &msg)?;
            Ok(0)
        }
        GETSIGINFO => {
            let info = tracee(k, target).siginfo.ok_or(Errno::EINVAL)?;
            k.task_mm(tid).borrow().write_bytes(data, &info.raw)?;
            Ok(0)
        }
        SETSIGINFO => {
            let mut info = SigInfo::new(0, 0);
            k.task_mm(tid).borrow().read_bytes(data, &mut info.raw)?;
            let tr = tracee(k, target);
            if tr.siginfo.is_none() {
                return Err(Errno::EINVAL);
            }
            tr.siginfo = Some(info);
            Ok(0)
        }
        PEEKSIGINFO => peek_siginfo(k, tid, target, addr, data),
        GETSIGMASK => {
            if addr != 8 {
                return Err(Errno::EINVAL);
            }
            let mask = k.task(target).sigmask.0;
            k.task_mm(tid).borrow().write_val(data, &mask)?;
            Ok(0)
        }
        SETSIGMASK => {
            if addr != 8 {
                return Err(Errno::EINVAL);
            }
            let mask: u64 = k.task_mm(tid).borrow().read_val(data)?;
            k.task_mut(target).sigmask = SigSet(mask).sanitized();
            Ok(0)
        }
        INTERRUPT => {
            if !tracee(k, target).seized {
                return Err(Errno::EIO);
            }
            if k.task(target).state != TaskState::Traced {
                tracee(k, target).interrupt = true;
                k.kick(target);
            }
            Ok(0)
        }
        LISTEN => {
            let tr = tracee(k, target);
            if !tr.seized || tr.stop != Some(StopKind::Group) {
                return Err(Errno::EIO);
            }
            // Not in a ptrace stop any more (requests fail with ESRCH)
            // until the end of the group stop re-traps it.
            tr.listening = true;
            tr.stop = None;
            tr.report = None;
            Ok(0)
        }
        // The hardware breakpoint requests: not offered.
        _ => Err(Errno::EIO),
    }
}

fn tracee(k: &mut Kernel, t: Tid) -> &mut Tracee {
    k.task_mut(t).ptrace.as_mut().expect("checked tracee")
}

fn valid_sig(data: u64) -> SysResult<i32> {
    if data > 64 {
        return Err(Errno::EIO);
    }
    Ok(data as i32)
}

/// `pid` is a task the caller's process traces (and stopped, if asked).
fn tracee_of(k: &Kernel, tid: Tid, pid: Tid, stopped: bool) -> SysResult<Tid> {
    let t = k.tasks.get(&pid).ok_or(Errno::ESRCH)?;
    let tr = t.ptrace.as_ref().ok_or(Errno::ESRCH)?;
    if k.tasks.get(&tr.tracer).map(|x| x.tgid) != Some(k.task(tid).tgid) {
        return Err(Errno::ESRCH);
    }
    if stopped && (t.state != TaskState::Traced || tr.stop.is_none()) {
        return Err(Errno::ESRCH);
    }
    Ok(pid)
}

fn traceme(k: &mut Kernel, tid: Tid) -> SysResult<u64> {
    if k.task(tid).ptrace.is_some() {
        return Err(Errno::EPERM);
    }
    let parent = k.group_of(tid).parent;
    let tracer = k
        .groups
        .get(&parent)
        .and_then(|g| {
            if g.threads.contains(&parent) {
                Some(parent)
            } else {
                g.threads.first().copied()
            }
        })
        .ok_or(Errno::EPERM)?;
    k.task_mut(tid).ptrace = Some(Box::new(Tracee::new(tracer, false, 0)));
    Ok(0)
}

fn attach(k: &mut Kernel, tid: Tid, pid: Tid, seize: bool, addr: u64, data: u64) -> SysResult<u64> {
    let mut options = 0;
    if seize {
        if addr != 0 {
            return Err(Errno::EIO);
        }
        options = u32::try_from(data).map_err(|_| Errno::EIO)?;
        if options & !O_ALL != 0 {
            return Err(Errno::EIO);
        }
    }
    k.ptrace_may_attach(tid, pid)?;
    let tgid = k.task(tid).tgid;
    let uid = k.cred(tid).uid;
    let t = k.task_mut(pid);
    t.ptrace = Some(Box::new(Tracee::new(tid, seize, options)));
    if t.state == TaskState::JobStopped {
        // A stopped task becomes a traced one in the same stop, reported
        // to its new tracer (Linux's JOBCTL_TRAP_STOP on attach).
        t.state = TaskState::InKernel;
        k.resume(pid);
    }
    if !seize {
        // Sent by the kernel (Linux's SEND_SIG_PRIV): it stops even a pid
        // namespace's init, which ignores what other tasks send it.
        let mut info = SigInfo::new(libc::SIGSTOP, crate::kernel::signal::SI_KERNEL);
        info.raw[16..20].copy_from_slice(&tgid.to_ne_bytes());
        info.raw[20..24].copy_from_slice(&uid.to_ne_bytes());
        k.send_task(pid, info)?;
    }
    Ok(0)
}

/// PTRACE_PEEKSIGINFO's flag: the process's pending signals instead of
/// the thread's.
const PEEKSIGINFO_SHARED: u32 = 1;

/// PEEKSIGINFO: copies up to `nr` queued siginfos of the tracee, from
/// the `off`th on, in the order they were queued (`struct
/// ptrace_peeksiginfo_args` at `args`); the number copied. A fault after
/// some were copied still returns that count, as Linux does.
fn peek_siginfo(k: &mut Kernel, tid: Tid, target: Tid, args: u64, data: u64) -> SysResult<u64> {
    let (off, flags, nr): (u64, u32, i32) = {
        let raw: [u8; 16] = k.task_mm(tid).borrow().read_val(args)?;
        (
            u64::from_ne_bytes(raw[..8].try_into().unwrap()),
            u32::from_ne_bytes(raw[8..12].try_into().unwrap()),
            i32::from_ne_bytes(raw[12..].try_into().unwrap()),
        )
    };
    if flags & !PEEKSIGINFO_SHARED != 0 || nr < 0 {
        return Err(Errno::EINVAL);
    }
    let queue = if flags & PEEKSIGINFO_SHARED != 0 {
        &k.group_of(target).shared_pending.queue
    } else {
        &k.task(target).pending.queue
    };
    // Bounded by the queue's length, whatever `nr` says.
    let infos: Vec<SigInfo> = usize::try_from(off)
        .map(|o| queue.iter().skip(o).take(nr as usize).copied().collect())
        .unwrap_or_default();
    let mm = k.task_mm(tid);
    let size = std::mem::size_of_val(&SigInfo::new(0, 0).raw) as u64;
    let mut done = 0u64;
    for info in &infos {
        let at = data.saturating_add(done * size);
        if let Err(e) = mm.borrow().write_bytes(at, &info.raw) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        done += 1;
    }
    Ok(done)
}

/// POKEDATA: a word into the tracee's memory. A write-protected private
/// mapping gets the tracee's own copy of the page first (Linux's
/// FOLL_FORCE copy-on-write), so a file's shared pages, the ones every
/// other process mapping the file sees, are never written; shared
/// mappings that are not writable, and anything outside the workload's
/// own mappings (the platform's stub pages) are refused.
fn poke(k: &mut Kernel, target: Tid, addr: u64, data: u64) -> SysResult<u64> {
    let end = addr.checked_add(8).ok_or(Errno::EIO)?;
    let mm = k.task_mm(target);
    let mut m = mm.borrow_mut();
    let mut writable = true;
    let mut pos = addr;
    while pos < end {
        let v = m.find(pos).ok_or(Errno::EIO)?;
        if v.prot & libc::PROT_WRITE == 0 {
            if v.shared || v.prot & libc::PROT_READ == 0 && v.prot & libc::PROT_EXEC == 0 {
                return Err(Errno::EIO);
            }
            writable = false;
        }
        pos = v.end;
    }
    let bytes = data.to_ne_bytes();
    if writable {
        m.write_bytes(addr, &bytes).map_err(|_| Errno::EIO)?;
        return Ok(0);
    }
    let (p0, p1) = (
        crate::arch::page_down(addr),
        crate::arch::page_up(end).ok_or(Errno::EIO)?,
    );
    m.privatize(&mut k.platform, p0, p1)
        .map_err(|_| Errno::EIO)?;
    m.write_force(addr, &bytes).map_err(|_| Errno::EIO)?;
    Ok(0)
}

fn peek_user(k: &Kernel, target: Tid, off: u64) -> SysResult<u64> {
    if !off.is_multiple_of(8) || off >= USER_SIZE {
        return Err(Errno::EIO);
    }
    if (off as usize) < REGS_SIZE {
        let regs = k.task(target).regs;
        return Ok(regs_words(&regs)[off as usize / 8]);
    }
    // The debug registers and the rest of struct user: nothing set.
    Ok(0)
}

fn poke_user(k: &mut Kernel, target: Tid, off: u64, data: u64) -> SysResult<u64> {
    if !off.is_multiple_of(8) || off >= USER_SIZE {
        return Err(Errno::EIO);
    }
    if (off as usize) < REGS_SIZE {
        let mut regs = k.task(target).regs;
        let mut words = regs_words(&regs);
        words[off as usize / 8] = data;
        set_words(&mut regs, &words);
        return set_regs(k, target, regs);
    }
    if off >= DEBUGREG_OFF {
        // Hardware breakpoints are not offered: only zero is accepted.
        return if data == 0 { Ok(0) } else { Err(Errno::EIO) };
    }
    Err(Errno::EIO)
}

fn set_words(r: &mut Regs, w: &[u64; REGS_SIZE / 8]) {
    // SAFETY: as in regs_words.
    *r = unsafe { std::mem::transmute_copy(w) };
}

/// Flags a tracer may change (Linux's FLAG_MASK without TF: no
/// single-stepping on the platform's threads).
const EFLAGS_USER: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4000 | 0x10000 | 0x40000;

/// Installs registers a tracer wrote, checked as Linux's putreg does:
/// segment selectors stay the task's (a selector the host would refuse
/// kills the platform thread), fs/gs bases stay in the workload's half,
/// eflags only changes in user flags.
fn set_regs(k: &mut Kernel, target: Tid, mut new: Regs) -> SysResult<u64> {
    let old = k.task(target).regs;
    if new.cs != old.cs || new.ss != old.ss {
        return Err(Errno::EIO);
    }
    new.ds = old.ds;
    new.es = old.es;
    new.fs = old.fs;
    new.gs = old.gs;
    if new.fs_base >= USER_END || new.gs_base >= USER_END {
        return Err(Errno::EIO);
    }
    new.eflags = (old.eflags & !EFLAGS_USER) | (new.eflags & EFLAGS_USER);
    k.task_mut(target).regs = new;
    Ok(0)
}

fn get_fpu(k: &mut Kernel, target: Tid) -> SysResult<FpuState> {
    let host = k.task(target).host;
    let fpu = k.platform.get_fpu(host).map_err(|e| Errno::from_io(&e))?;
    if fpu.0.len() < FPREGS_SIZE {
        return Err(Errno::EIO);
    }
    Ok(fpu)
}

/// Writes `buf` over the FPU state at `off` (legacy area or XSAVE).
fn set_fpregs(k: &mut Kernel, target: Tid, buf: &[u8], off: usize) -> SysResult<u64> {
    let mut fpu = get_fpu(k, target)?;
    let end = off.checked_add(buf.len()).ok_or(Errno::EINVAL)?;
    if end > fpu.0.len() {
        return Err(Errno::EINVAL);
    }
    let old_mxcsr = u32::from_ne_bytes(fpu.0[24..28].try_into().unwrap());
    fpu.0[off..end].copy_from_slice(buf);
    // MXCSR's reserved bits would make the host refuse the whole state.
    let mxcsr = u32::from_ne_bytes(fpu.0[24..28].try_into().unwrap());
    if mxcsr & !0xffff != 0 {
        fpu.0[24..28].copy_from_slice(&old_mxcsr.to_ne_bytes());
        return Err(Errno::EINVAL);
    }
    let host = k.task(target).host;
    k.platform.set_fpu(host, &fpu).map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

fn read_iov(k: &Kernel, tid: Tid, iov: u64) -> SysResult<(u64, u64)> {
    let v: [u64; 2] = k.task_mm(tid).borrow().read_val(iov)?;
    Ok((v[0], v[1]))
}

fn get_regset(k: &mut Kernel, tid: Tid, target: Tid, nt: u64, iov: u64) -> SysResult<u64> {
    let (base, len) = read_iov(k, tid, iov)?;
    let bytes: Vec<u8> = match nt {
        NT_PRSTATUS => {
            let regs = k.task(target).regs;
            regs_words(&regs)
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect()
        }
        NT_PRFPREG => get_fpu(k, target)?.0[..FPREGS_SIZE].to_vec(),
        NT_X86_XSTATE => get_fpu(k, target)?.0,
        _ => return Err(Errno::EINVAL),
    };
    let n = (len as usize).min(bytes.len());
    let mm = k.task_mm(tid);
    mm.borrow().write_bytes(base, &bytes[..n])?;
    mm.borrow().write_val(iov + 8, &(n as u64))?;
    Ok(0)
}

fn set_regset(k: &mut Kernel, tid: Tid, target: Tid, nt: u64, iov: u64) -> SysResult<u64> {
    let (base, len) = read_iov(k, tid, iov)?;
    match nt {
        NT_PRSTATUS => {
            let n = (len as usize).min(REGS_SIZE);
            let mut words = regs_words(&k.task(target).regs);
            let mut raw: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            k.task_mm(tid).borrow().read_bytes(base, &mut raw[..n])?;
            for (i, w) in words.iter_mut().enumerate() {
                *w = u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
            }
            let mut regs = k.task(target).regs;
            set_words(&mut regs, &words);
            set_regs(k, target, regs)
        }
        NT_PRFPREG | NT_X86_XSTATE => {
            let max = if nt == NT_PRFPREG {
                FPREGS_SIZE
            } else {
                get_fpu(k, target)?.0.len()
            };
            let n = (len as usize).min(max);
            let mut buf = vec![0u8; n];
            k.task_mm(tid).borrow().read_bytes(base, &mut buf)?;
            set_fpregs(k, target, &buf, 0)
        }
        _ => Err(Errno::EINVAL),
    }
}
