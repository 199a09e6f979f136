//! Signal syscalls.

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{
    DefaultAction, SI_QUEUE, SI_TKILL, SI_USER, SIG_DFL, SIG_IGN, SS_DISABLE, SS_ONSTACK,
    SigAction, SigInfo, SigSet, default_action, restore_frame,
};
use crate::kernel::{Kernel, Pid, Tid};
use crate::platform::Platform;
use crate::vfs::perm::cap;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("rt_sigaction", sys_rt_sigaction, Full, ""),
        ("rt_sigprocmask", sys_rt_sigprocmask, Full, ""),
        ("rt_sigreturn", sys_rt_sigreturn, Full, ""),
        ("sigaltstack", sys_sigaltstack, Full, ""),
        ("kill", sys_kill, Full, ""),
        ("tkill", sys_tkill, Full, ""),
        ("tgkill", sys_tgkill, Full, ""),
        ("rt_sigqueueinfo", sys_rt_sigqueueinfo, Full, ""),
        ("rt_tgsigqueueinfo", sys_rt_tgsigqueueinfo, Full, ""),
        ("rt_sigpending", sys_rt_sigpending, Full, ""),
        ("rt_sigsuspend", sys_rt_sigsuspend, Full, ""),
        ("rt_sigtimedwait", sys_rt_sigtimedwait, Full, ""),
        ("pause", sys_pause, Full, ""),
    ]
}

fn valid(sig: u64) -> SysResult<i32> {
    if (1..=64).contains(&sig) {
        Ok(sig as i32)
    } else {
        Err(Errno::EINVAL)
    }
}

fn sys_rt_sigaction(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let sig = valid(a[0])?;
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let hand = k.task(tid).sighand.clone();
    let old = hand.borrow().get(sig);
    if a[1] != 0 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut new: SigAction = mm.borrow().read_val(a[1])?;
        new.mask = SigSet(new.mask).sanitized().0;
        hand.borrow_mut().set(sig, new);
        // A signal that is now ignored is discarded from every queue.
        if new.handler == SIG_IGN
            || (new.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
        {
            let tgid = k.task(tid).tgid;
            let threads = k.groups[&tgid].threads.clone();
            for t in threads {
                k.task_mut(t).pending.remove(sig);
            }
            k.groups.get_mut(&tgid).unwrap().shared_pending.remove(sig);
        }
    }
    if a[2] != 0 {
        mm.borrow().write_val(a[2], &old)?;
    }
    Ok(0)
}

fn sys_rt_sigprocmask(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let old = k.task(tid).sigmask;
    if a[1] != 0 {
        let set = SigSet(mm.borrow().read_val::<u64>(a[1])?);
        let new = match a[0] as i32 {
            libc::SIG_BLOCK => SigSet(old.0 | set.0),
            libc::SIG_UNBLOCK => SigSet(old.0 & !set.0),
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        k.task_mut(tid).sigmask = new.sanitized();
    }
    if a[2] != 0 {
        mm.borrow().write_val(a[2], &old.0)?;
    }
    Ok(0)
}

fn sys_rt_sigreturn(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let host = k.task(tid).host;
    let fpu_size = k.platform.get_fpu(host).map(|f| f.0.len()).unwrap_or(576);
    let mut regs = k.task(tid).regs;
    let restored = match restore_frame(&mm.borrow(), &mut regs, fpu_size) {
        Ok(r) => r,
        Err(_) => {
            let tgid = k.task(tid).tgid;
            k.group_exit(tgid, libc::SIGSEGV | 0x80);
            return Err(Errno::EJUSTRETURN);
        }
    };
    if let Some(f) = &restored.fpu {
        let _ = k.platform.set_fpu(host, f);
    }
    let t = k.task_mut(tid);
    t.regs = regs;
    t.sigmask = restored.mask;
    let (sp, flags, size) = restored.altstack;
    if flags & SS_DISABLE == 0 && size >= 2048 {
        t.altstack.sp = sp;
        t.altstack.size = size;
        t.altstack.flags = 0;
    }
    Err(Errno::EJUSTRETURN)
}

fn sys_sigaltstack(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let t = k.task(tid);
    let cur = t.altstack;
    let on = cur.on_stack(t.regs.rsp);
    if a[1] != 0 {
        let flags = if on {
            SS_ONSTACK
        } else if cur.size == 0 {
            SS_DISABLE
        } else {
            cur.flags
        };
        let mut buf = [0u8; 24];
        buf[0..8].copy_from_slice(&cur.sp.to_ne_bytes());
        buf[8..12].copy_from_slice(&flags.to_ne_bytes());
        buf[16..24].copy_from_slice(&cur.size.to_ne_bytes());
        mm.borrow().write_bytes(a[1], &buf)?;
    }
    if a[0] != 0 {
        let buf = mm.borrow().read_vec(a[0], 24)?;
        let sp = u64::from_ne_bytes(buf[0..8].try_into().unwrap());
        let flags = i32::from_ne_bytes(buf[8..12].try_into().unwrap());
        let size = u64::from_ne_bytes(buf[16..24].try_into().unwrap());
        if on {
            return Err(Errno::EPERM);
        }
        if flags & !(SS_DISABLE | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        let t = k.task_mut(tid);
        if flags & SS_DISABLE != 0 {
            t.altstack = Default::default();
        } else {
            if size < 2048 {
                return Err(Errno::ENOMEM);
            }
            t.altstack.sp = sp;
            t.altstack.size = size;
            t.altstack.flags = 0;
        }
    }
    Ok(0)
}

/// kill(2) permission: privileged, or the sender's uid matches the target's.
fn may_signal(k: &Kernel, tid: Tid, target: Pid) -> bool {
    let c = k.cred(tid);
    if c.capable(cap::KILL) {
        return true;
    }
    let tc = &k.groups[&target].cred;
    [c.uid, c.euid]
        .iter()
        .any(|u| *u == tc.uid || *u == tc.suid)
}

fn sys_kill(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let pid = a[0] as i32;
    let sig = a[1] as i32;
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let me = k.task(tid).tgid;
    let uid = k.cred(tid).uid;
    let targets: Vec<Pid> = match pid {
        p if p > 0 => vec![p],
        0 => {
            let pg = k.groups[&me].pgid;
            k.groups
                .values()
                .filter(|g| g.pgid == pg && !g.is_zombie())
                .map(|g| g.tgid)
                .collect()
        }
        // Every process it can see but its namespace's init and itself.
        -1 => k
            .groups
            .values()
            .filter(|g| {
                k.pid_visible(tid, g.tgid)
                    && g.tgid != k.ns_init(k.pidns(tid))
                    && g.tgid != me
                    && !g.is_zombie()
            })
            .map(|g| g.tgid)
            .collect(),
        p => k
            .groups
            .values()
            .filter(|g| g.pgid == -p && !g.is_zombie())
            .map(|g| g.tgid)
            .collect(),
    };
    let mut sent = 0;
    let mut denied = false;
    for t in &targets {
        if !k.groups.contains_key(t) {
            continue;
        }
        if !may_signal(k, tid, *t) {
            denied = true;
            continue;
        }
        k.send_group(*t, SigInfo::user(sig, SI_USER, me, uid))?;
        sent += 1;
    }
    if sent > 0 {
        Ok(0)
    } else if denied {
        Err(Errno::EPERM)
    } else {
        Err(Errno::ESRCH)
    }
}

fn task_signal(
    k: &mut Kernel,
    tid: Tid,
    tgid: Option<Pid>,
    target: Tid,
    sig: u64,
) -> SysResult<u64> {
    if !(0..=64).contains(&sig) || target <= 0 {
        return Err(Errno::EINVAL);
    }
    let t = k.tasks.get(&target).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != t.tgid) {
        return Err(Errno::ESRCH);
    }
    let tg = t.tgid;
    if !may_signal(k, tid, tg) {
        return Err(Errno::EPERM);
    }
    let me = k.task(tid).tgid;
    let uid = k.cred(tid).uid;
    k.send_task(target, SigInfo::user(sig as i32, SI_TKILL, me, uid))?;
    Ok(0)
}

fn sys_tkill(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    task_signal(k, tid, None, a[0] as i32, a[1])
}

fn sys_tgkill(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    task_signal(k, tid, Some(a[0] as i32), a[1] as i32, a[2])
}

fn queued_info(k: &Kernel, tid: Tid, sig: i32, addr: u64, to_self: bool) -> SysResult<SigInfo> {
    let raw: [u8; 128] = k.task_mm(tid).borrow().read_val(addr)?;
    let mut info = SigInfo { raw };
    if info.code() >= 0 && !to_self {
        return Err(Errno::EPERM);
    }
    info.raw[0..4].copy_from_slice(&sig.to_ne_bytes());
    let _ = SI_QUEUE;
    Ok(info)
}

fn sys_rt_sigqueueinfo(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let sig = valid(a[1])?;
    let target = a[0] as i32;
    let info = queued_info(k, tid, sig, a[2], target == k.task(tid).tgid)?;
    if !k.groups.contains_key(&target) {
        return Err(Errno::ESRCH);
    }
    k.send_group(target, info)?;
    Ok(0)
}

fn sys_rt_tgsigqueueinfo(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let sig = valid(a[2])?;
    let target = a[1] as i32;
    let info = queued_info(k, tid, sig, a[3], target == tid)?;
    let t = k.tasks.get(&target).ok_or(Errno::ESRCH)?;
    if t.tgid != a[0] as i32 {
        return Err(Errno::ESRCH);
    }
    k.send_task(target, info)?;
    Ok(0)
}

fn sys_rt_sigpending(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = k.task(tid);
    let set = t.pending.set.0 | k.groups[&t.tgid].shared_pending.set.0;
    let set = set & t.sigmask.0;
    k.task_mm(tid).borrow().write_val(a[0], &set)?;
    Ok(0)
}

fn sys_rt_sigsuspend(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(k.task_mm(tid).borrow().read_val::<u64>(a[0])?).sanitized();
    let t = k.task_mut(tid);
    if t.saved_mask.is_none() {
        t.saved_mask = Some(t.sigmask);
    }
    t.sigmask = mask;
    Err(Errno::EBLOCK)
}

fn sys_pause(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Err(Errno::EBLOCK)
}

fn sys_rt_sigtimedwait(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    let set = SigSet(mm.borrow().read_val::<u64>(a[0])?).sanitized();
    let not_set = SigSet(!set.0);
    let t = k.task_mut(tid);
    let found = match t.pending.take(not_set) {
        Some(i) => Some(i),
        None => {
            let tgid = t.tgid;
            k.groups
                .get_mut(&tgid)
                .unwrap()
                .shared_pending
                .take(not_set)
        }
    };
    if let Some(info) = found {
        k.task_mut(tid).sigwait = SigSet::EMPTY;
        if a[1] != 0 {
            mm.borrow().write_bytes(a[1], &info.raw)?;
        }
        return Ok(info.signo() as u64);
    }
    let t = k.task(tid);
    if !t.sys.started {
        let deadline = if a[2] != 0 {
            let ts: libc::timespec = mm.borrow().read_val(a[2])?;
            let d = crate::kernel::timer::duration_of(&ts).ok_or(Errno::EINVAL)?;
            if d.is_zero() {
                return Err(Errno::EAGAIN);
            }
            Some(std::time::Instant::now() + d)
        } else {
            None
        };
        let t = k.task_mut(tid);
        t.sys.started = true;
        t.sys.deadline = deadline;
    } else if t
        .sys
        .deadline
        .is_some_and(|d| std::time::Instant::now() >= d)
    {
        k.task_mut(tid).sigwait = SigSet::EMPTY;
        return Err(Errno::EAGAIN);
    }
    k.task_mut(tid).sigwait = set;
    Err(Errno::EBLOCK)
}
