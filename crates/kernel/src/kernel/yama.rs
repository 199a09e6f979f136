//! Yama's ptrace scope 1 ("restricted"), the default of most
//! distributions and what gVisor's kernel emulates: a process may attach
//! only to its descendants, unless the tracee named it (or any process)
//! with prctl(PR_SET_PTRACER), or the tracer has CAP_SYS_PTRACE.
//! PTRACE_TRACEME is unaffected. /proc/sys/kernel/yama/ptrace_scope
//! shows the scope.
//!
//! As Linux's security/yama: an exception belongs to the tracee's process
//! (it is kept while its leader lives: through the exit of the thread
//! that made it and the leader's exec, not a non-leader's exec, which
//! ends the old leader) and names one tracer thread (it ends with that
//! thread, and follows it when its exec makes it the leader). It is not
//! inherited by fork.

use super::{Kernel, Pid, Tid};
use crate::errno::{Errno, SysResult};

/// The scope /proc/sys/kernel/yama/ptrace_scope shows.
pub const PTRACE_SCOPE: u32 = 1;
/// prctl option: name the process that may trace this one.
pub const PR_SET_PTRACER: i32 = 0x5961_6d61;

/// A process's PR_SET_PTRACER exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ptracer {
    /// PR_SET_PTRACER_ANY: any process may attach.
    Any,
    /// This thread's process and its descendants may attach.
    Thread(Tid),
}

impl Kernel {
    /// prctl(PR_SET_PTRACER, arg): 0 clears the caller's process's
    /// exception, -1 (PR_SET_PTRACER_ANY) allows any tracer, otherwise a
    /// thread id in the caller's namespace names the tracer (EINVAL if no
    /// such thread).
    pub fn set_ptracer(&mut self, tid: Tid, arg: u64) -> SysResult<()> {
        let e = match arg {
            0 => None,
            // PR_SET_PTRACER_ANY is (unsigned long)-1; Linux also takes a
            // 32-bit -1.
            u64::MAX | 0xffff_ffff => Some(Ptracer::Any),
            pid => {
                let pid = i32::try_from(pid).map_err(|_| Errno::EINVAL)?;
                let t = self.pid_in(tid, pid).ok_or(Errno::EINVAL)?;
                if !self.tasks.contains_key(&t) || !self.pid_visible(tid, t) {
                    return Err(Errno::EINVAL);
                }
                Some(Ptracer::Thread(t))
            }
        };
        self.group_of_mut(tid).ptracer = e;
        Ok(())
    }

    /// Whether process `ancestor` is `pid` or one of its ancestors (Linux's
    /// task_is_descendant, which walks real parents by process).
    pub fn is_descendant(&self, ancestor: Pid, pid: Pid) -> bool {
        let mut p = pid;
        // The parent chain ends at the sandbox's init (its parent is no
        // group); the bound guards against a cycle.
        for _ in 0..=self.groups.len() {
            if p == ancestor {
                return true;
            }
            match self.groups.get(&p) {
                Some(g) if g.parent != p => p = g.parent,
                _ => return false,
            }
        }
        false
    }

    /// Yama's check for `tid` attaching to task `target` (scope 1).
    pub fn yama_may_attach(&self, tid: Tid, target: Tid) -> SysResult<()> {
        let me = self.task(tid).tgid;
        let Some(t) = self.tasks.get(&target) else {
            return Err(Errno::ESRCH);
        };
        if self.is_descendant(me, t.tgid)
            || self.cred(tid).capable(crate::vfs::perm::cap::SYS_PTRACE)
        {
            return Ok(());
        }
        // A tracer already attached keeps its other accesses.
        if let Some(tr) = &t.ptrace
            && self.tasks.get(&tr.tracer).is_some_and(|x| x.tgid == me)
        {
            return Ok(());
        }
        let allowed = match self.groups.get(&t.tgid).and_then(|g| g.ptracer) {
            Some(Ptracer::Any) => true,
            Some(Ptracer::Thread(p)) => self
                .tasks
                .get(&p)
                .is_some_and(|pt| self.is_descendant(pt.tgid, me)),
            None => false,
        };
        if allowed { Ok(()) } else { Err(Errno::EPERM) }
    }

    /// Thread `tid` is gone: exceptions naming it as tracer end.
    pub fn yama_thread_gone(&mut self, tid: Tid) {
        for g in self.groups.values_mut() {
            if g.ptracer == Some(Ptracer::Thread(tid)) {
                g.ptracer = None;
            }
        }
    }

    /// Thread `old` of process `tgid` exec'd and became its leader: the
    /// old leader is gone, so the process's own exception ends, as do
    /// those naming the old leader; those naming `old` follow it.
    pub fn yama_leader_replaced(&mut self, tgid: Pid, old: Tid) {
        self.yama_thread_gone(tgid);
        for g in self.groups.values_mut() {
            if g.ptracer == Some(Ptracer::Thread(old)) {
                g.ptracer = Some(Ptracer::Thread(tgid));
            }
        }
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.ptracer = None;
        }
    }
}
