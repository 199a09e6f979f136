//! What /proc shows of the IPC namespace: /proc/sysvipc/{shm,sem,msg}
//! (what `ipcs` reads) and the IPC sysctls under /proc/sys.

use std::fmt::Write as _;

use crate::arch::PAGE_SIZE;
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

impl Kernel {
    /// /proc/sysvipc/`which`, in Linux's layout.
    pub fn sysvipc_text(&self, which: &str) -> String {
        let mut s = String::new();
        super::with(|ns| match which {
            "shm" => {
                super::shm::purge(ns);
                s.push_str("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n");
                for o in ns.shm.iter() {
                    let g = &o.inner;
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}",
                        o.perm.key,
                        o.id,
                        o.perm.mode,
                        g.size,
                        g.cpid,
                        g.lpid,
                        g.nattch(),
                        o.perm.uid,
                        o.perm.gid,
                        o.perm.cuid,
                        o.perm.cgid,
                        g.atime,
                        g.dtime,
                        o.ctime,
                        g.mem.resident_pages() * PAGE_SIZE,
                        0
                    );
                }
            }
            "sem" => {
                s.push_str("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n");
                for o in ns.sem.iter() {
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}",
                        o.perm.key,
                        o.id,
                        o.perm.mode,
                        o.inner.sems.len(),
                        o.perm.uid,
                        o.perm.gid,
                        o.perm.cuid,
                        o.perm.cgid,
                        o.inner.otime,
                        o.ctime
                    );
                }
            }
            _ => {
                s.push_str("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n");
                for o in ns.msg.iter() {
                    let q = &o.inner;
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}",
                        o.perm.key,
                        o.id,
                        o.perm.mode,
                        q.cbytes,
                        q.msgs.len(),
                        q.lspid,
                        q.lrpid,
                        o.perm.uid,
                        o.perm.gid,
                        o.perm.cuid,
                        o.perm.cgid,
                        q.stime,
                        q.rtime,
                        o.ctime
                    );
                }
            }
        });
        s
    }

    /// The value of IPC sysctl `name` (a path under /proc), if it is one.
    pub fn ipc_sysctl(&self, name: &str) -> Option<String> {
        super::with(|ns| {
            let l = &ns.limits;
            Some(match name {
                "sys/kernel/shmmax" => l.shmmax.to_string(),
                "sys/kernel/shmall" => l.shmall.to_string(),
                "sys/kernel/shmmni" => l.shmmni.to_string(),
                "sys/kernel/shm_rmid_forced" => (l.shm_rmid_forced as u8).to_string(),
                "sys/kernel/sem" => {
                    format!("{}\t{}\t{}\t{}", l.semmsl, l.semmns, l.semopm, l.semmni)
                }
                "sys/kernel/msgmax" => l.msgmax.to_string(),
                "sys/kernel/msgmnb" => l.msgmnb.to_string(),
                "sys/kernel/msgmni" => l.msgmni.to_string(),
                "sys/fs/mqueue/msg_max" => l.mq_msg_max.to_string(),
                "sys/fs/mqueue/msgsize_max" => l.mq_msgsize_max.to_string(),
                "sys/fs/mqueue/queues_max" => l.mq_queues_max.to_string(),
                "sys/fs/mqueue/msg_default" => l.mq_msg_default.to_string(),
                "sys/fs/mqueue/msgsize_default" => l.mq_msgsize_default.to_string(),
                _ => return None,
            })
        })
    }

    /// Writes IPC sysctl `name` (root in the sandbox may tune its own
    /// namespace). EINVAL for values Linux refuses.
    pub fn set_ipc_sysctl(&self, name: &str, text: &[u8]) -> SysResult<()> {
        let text = std::str::from_utf8(text).map_err(|_| Errno::EINVAL)?;
        let nums: Vec<i64> = text
            .split_whitespace()
            .map(|w| w.parse::<i64>().map_err(|_| Errno::EINVAL))
            .collect::<SysResult<_>>()?;
        let one = |lo: i64, hi: i64| -> SysResult<i64> {
            match nums.as_slice() {
                [v] if (lo..=hi).contains(v) => Ok(*v),
                _ => Err(Errno::EINVAL),
            }
        };
        super::with(|ns| {
            let l = &mut ns.limits;
            match name {
                "sys/kernel/shmmax" => l.shmmax = one(0, i64::MAX)? as u64,
                "sys/kernel/shmall" => l.shmall = one(0, i64::MAX)? as u64,
                "sys/kernel/shmmni" => l.shmmni = one(0, 32768)? as u64,
                "sys/kernel/shm_rmid_forced" => {
                    l.shm_rmid_forced = one(0, 1)? == 1;
                    if l.shm_rmid_forced {
                        super::shm::purge(ns);
                    }
                }
                "sys/kernel/sem" => match nums.as_slice() {
                    [a, b, c, d]
                        if (0..=65536).contains(a)
                            && *b >= 0
                            && (0..=65536).contains(c)
                            && (0..=32768).contains(d) =>
                    {
                        l.semmsl = *a as i32;
                        l.semmns = (*b).min(i32::MAX as i64) as i32;
                        l.semopm = *c as i32;
                        l.semmni = *d as i32;
                    }
                    _ => return Err(Errno::EINVAL),
                },
                "sys/kernel/msgmax" => l.msgmax = one(0, i32::MAX as i64)? as i32,
                "sys/kernel/msgmnb" => l.msgmnb = one(0, i32::MAX as i64)? as i32,
                "sys/kernel/msgmni" => l.msgmni = one(0, 32768)? as i32,
                "sys/fs/mqueue/msg_max" => l.mq_msg_max = one(1, 65536)?,
                "sys/fs/mqueue/msgsize_max" => l.mq_msgsize_max = one(128, 16 << 20)?,
                "sys/fs/mqueue/queues_max" => l.mq_queues_max = one(0, i32::MAX as i64)? as u32,
                "sys/fs/mqueue/msg_default" => l.mq_msg_default = one(1, l.mq_msg_max)?,
                "sys/fs/mqueue/msgsize_default" => {
                    l.mq_msgsize_default = one(128, l.mq_msgsize_max)?
                }
                _ => return Err(Errno::EACCES),
            }
            Ok(())
        })
    }

    /// A process exited: SEM_UNDO adjustments, kernel.shm_rmid_forced.
    pub fn ipc_process_exited(&mut self, pid: crate::kernel::Pid) {
        super::with(|ns| {
            super::sem::process_exited(ns, pid);
            super::shm::process_exited(ns, pid);
        });
    }
}
