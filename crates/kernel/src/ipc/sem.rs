//! System V semaphores: semget, semop, semtimedop (with SEM_UNDO),
//! semctl.
//!
//! A semop either applies all of its operations or none; when one of them
//! cannot proceed the task sleeps on the set's wait queue and the whole
//! semop is tried again after any change to the set. SEM_UNDO adjustments
//! are kept per process and applied when it exits.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::ids::{IpcPerm, Object, PERM_SIZE};
use super::{
    IPC_64, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, Namespace,
    SEMVMX,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::TaskState;
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Pid, Tid};

const SEM_UNDO: i16 = 0x1000;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

#[derive(Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    /// Process of the last operation.
    pub pid: Pid,
}

pub struct SemSet {
    pub sems: Vec<Sem>,
    /// Last semop, seconds.
    pub otime: i64,
    pub wq: Rc<WaitQueue>,
    /// Sleeping semops: task, semaphore, whether it waits for zero (else
    /// for an increase). Entries of tasks no longer asleep are ignored.
    pub waiters: Vec<(Tid, u16, bool)>,
}

/// SEM_UNDO adjustments: process → set → adjustment per semaphore.
#[derive(Default)]
pub struct UndoLists {
    map: HashMap<Pid, BTreeMap<i32, Vec<i32>>>,
}

impl UndoLists {
    fn clear_set(&mut self, id: i32) {
        for sets in self.map.values_mut() {
            sets.remove(&id);
        }
    }

    fn clear_sem(&mut self, id: i32, num: usize) {
        for sets in self.map.values_mut() {
            if let Some(adj) = sets.get_mut(&id) {
                adj[num] = 0;
            }
        }
    }
}

/// struct sembuf.
#[derive(Clone, Copy, Debug)]
struct SemBuf {
    num: u16,
    op: i16,
    flg: i16,
}

fn parse_sops(raw: &[u8]) -> Vec<SemBuf> {
    raw.chunks_exact(6)
        .map(|c| SemBuf {
            num: u16::from_ne_bytes([c[0], c[1]]),
            op: i16::from_ne_bytes([c[2], c[3]]),
            flg: i16::from_ne_bytes([c[4], c[5]]),
        })
        .collect()
}

pub fn semget(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (key, nsems, flg) = (a[0] as i32, a[1] as i32, a[2] as i32);
    let cred = k.cred(tid);
    super::with(|ns| {
        if nsems < 0 || nsems > ns.limits.semmsl {
            return Err(Errno::EINVAL);
        }
        if let Some(id) = ns.sem.find_key(key) {
            if flg & IPC_CREAT != 0 && flg & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let o = ns.sem.get(id)?;
            o.perm.check(
                &cred,
                (flg as u32 >> 6) & 0o7 | (flg as u32 >> 3) & 0o7 | flg as u32 & 0o7,
            )?;
            if nsems as usize > o.inner.sems.len() {
                return Err(Errno::EINVAL);
            }
            return Ok(id as u64);
        }
        if key != 0 && flg & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        if nsems == 0 {
            return Err(Errno::EINVAL);
        }
        let total: usize = ns.sem.iter().map(|o| o.inner.sems.len()).sum();
        if total + nsems as usize > ns.limits.semmns as usize {
            return Err(Errno::ENOSPC);
        }
        let set = SemSet {
            sems: vec![Sem::default(); nsems as usize],
            otime: 0,
            wq: Rc::new(WaitQueue::new()),
            waiters: Vec::new(),
        };
        let max = ns.limits.semmni as u64;
        let id = ns
            .sem
            .insert(IpcPerm::new(key, flg as u32, &cred), set, max)?;
        Ok(id as u64)
    })
}

pub fn semop(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    do_semop(k, tid, a[0] as i32, a[1], a[2], None)
}

pub fn semtimedop(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let timeout = if a[3] != 0 {
        let ts: libc::timespec = k.task_mm(tid).borrow().read_val(a[3])?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    do_semop(k, tid, a[0] as i32, a[1], a[2], timeout)
}

/// Whether `tid` still sleeps in a semop on set `id`.
fn asleep_on(k: &Kernel, tid: Tid, id: i32) -> bool {
    k.tasks.get(&tid).is_some_and(|t| {
        t.state == TaskState::Blocked
            && t.blocked_on.is_some_and(|(nr, args)| {
                (nr == libc::SYS_semop as u64 || nr == libc::SYS_semtimedop as u64)
                    && args[0] as i32 == id
            })
    })
}

fn do_semop(
    k: &mut Kernel,
    tid: Tid,
    id: i32,
    sops_addr: u64,
    nsops: u64,
    timeout: Option<Duration>,
) -> SysResult<u64> {
    let semopm = super::with(|ns| ns.limits.semopm) as u64;
    if nsops < 1 {
        return Err(Errno::EINVAL);
    }
    if nsops > semopm {
        return Err(Errno::E2BIG);
    }
    let sops = parse_sops(
        &k.task_mm(tid)
            .borrow()
            .read_vec(sops_addr, nsops as usize * 6)?,
    );
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    let started = k.task(tid).sys.started;
    // First run: the deadline; later runs: the set may have gone.
    {
        let t = k.task_mut(tid);
        if !t.sys.started {
            t.sys.started = true;
            t.sys.deadline = timeout.map(|d| Instant::now() + d);
        }
    }
    let deadline = k.task(tid).sys.deadline;
    enum Outcome {
        Done,
        Wait(Rc<WaitQueue>),
    }
    let out = super::with(|ns| {
        let Namespace { sem, undo, .. } = ns;
        let o = match sem.get_mut(id) {
            Ok(o) => o,
            Err(e) => return Err(if started { Errno::EIDRM } else { e }),
        };
        let n = o.inner.sems.len();
        if sops.iter().any(|s| s.num as usize >= n) {
            return Err(Errno::EFBIG);
        }
        let alter = sops.iter().any(|s| s.op != 0);
        o.perm.check(&cred, if alter { 0o2 } else { 0o4 })?;
        // Try all operations on a copy.
        let mut vals: Vec<i32> = o.inner.sems.iter().map(|s| s.val).collect();
        let adj = undo.map.get(&pid).and_then(|m| m.get(&id));
        let mut blocked = None;
        for s in &sops {
            let v = vals[s.num as usize];
            let op = s.op as i32;
            if s.flg & SEM_UNDO != 0 {
                let cur = adj.map_or(0, |a| a[s.num as usize]);
                let next = cur - op;
                if !(-SEMVMX - 1..=SEMVMX).contains(&next) {
                    return Err(Errno::ERANGE);
                }
            }
            if op > 0 {
                if v + op > SEMVMX {
                    return Err(Errno::ERANGE);
                }
                vals[s.num as usize] = v + op;
            } else if op < 0 {
                if v + op < 0 {
                    blocked = Some((*s, false));
                    break;
                }
                vals[s.num as usize] = v + op;
            } else if v != 0 {
                blocked = Some((*s, true));
                break;
            }
        }
        o.inner.waiters.retain(|w| w.0 != tid);
        if let Some((s, zero)) = blocked {
            if s.flg as i32 & IPC_NOWAIT != 0 {
                return Err(Errno::EAGAIN);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Errno::EAGAIN);
            }
            o.inner.waiters.push((tid, s.num, zero));
            return Ok(Outcome::Wait(o.inner.wq.clone()));
        }
        // Commit.
        for (i, v) in vals.into_iter().enumerate() {
            o.inner.sems[i].val = v;
        }
        for s in &sops {
            o.inner.sems[s.num as usize].pid = pid;
        }
        o.inner.otime = super::now();
        for s in sops.iter().filter(|s| s.flg & SEM_UNDO != 0) {
            let a = undo
                .map
                .entry(pid)
                .or_default()
                .entry(id)
                .or_insert_with(|| vec![0; n]);
            a[s.num as usize] -= s.op as i32;
        }
        if alter {
            o.inner.wq.notify_all();
        }
        Ok(Outcome::Done)
    })?;
    match out {
        Outcome::Done => Ok(0),
        Outcome::Wait(wq) => {
            wq.add(tid, !0);
            Err(Errno::EBLOCK)
        }
    }
}

/// struct semid64_ds.
fn encode_ds(o: &Object<SemSet>) -> [u8; 104] {
    let mut b = [0u8; 104];
    o.perm.encode(&mut b[..PERM_SIZE]);
    b[48..56].copy_from_slice(&o.inner.otime.to_ne_bytes());
    b[64..72].copy_from_slice(&o.ctime.to_ne_bytes());
    b[80..88].copy_from_slice(&(o.inner.sems.len() as u64).to_ne_bytes());
    b
}

pub fn semctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, num, cmd, arg) = (a[0] as i32, a[1] as i32, a[2] as i32 & !IPC_64, a[3]);
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    // Tasks asleep in a semop on this set (for GETNCNT/GETZCNT).
    let asleep: Vec<Tid> = if cmd == GETNCNT || cmd == GETZCNT {
        k.tasks
            .keys()
            .copied()
            .filter(|t| asleep_on(k, *t, id))
            .collect()
    } else {
        Vec::new()
    };
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    super::with(|ns| {
        let limits = ns.limits.clone();
        match cmd {
            IPC_INFO | SEM_INFO => {
                let used_sets = ns.sem.len() as i32;
                let used_sems: usize = ns.sem.iter().map(|o| o.inner.sems.len()).sum();
                let info = [
                    limits.semmns,
                    limits.semmni,
                    limits.semmns,
                    limits.semmns,
                    limits.semmsl,
                    limits.semopm,
                    limits.semopm,
                    if cmd == SEM_INFO { used_sets } else { 20 },
                    SEMVMX,
                    if cmd == SEM_INFO {
                        used_sems as i32
                    } else {
                        SEMVMX
                    },
                ];
                let mut b = [0u8; 40];
                for (i, v) in info.iter().enumerate() {
                    b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                }
                mm.write_bytes(arg, &b)?;
                Ok(ns.sem.max_index() as u64)
            }
            SEM_STAT | SEM_STAT_ANY => {
                let o = ns.sem.by_index(id)?;
                if cmd == SEM_STAT {
                    o.perm.check(&cred, 0o4)?;
                }
                mm.write_bytes(arg, &encode_ds(o))?;
                Ok(o.id as u64)
            }
            IPC_STAT => {
                let o = ns.sem.get(id)?;
                o.perm.check(&cred, 0o4)?;
                mm.write_bytes(arg, &encode_ds(o))?;
                Ok(0)
            }
            IPC_SET => {
                let raw = mm.read_vec(arg, PERM_SIZE)?;
                let o = ns.sem.get_mut(id)?;
                o.perm.check_owner(&cred)?;
                o.perm.set_from(&raw);
                o.ctime = super::now();
                Ok(0)
            }
            IPC_RMID => {
                let o = ns.sem.get(id)?;
                o.perm.check_owner(&cred)?;
                let o = ns.sem.remove(id).expect("present");
                ns.undo.clear_set(id);
                // Sleepers wake to EIDRM.
                o.inner.wq.notify_all();
                Ok(0)
            }
            GETVAL | GETPID | GETNCNT | GETZCNT => {
                let o = ns.sem.get(id)?;
                if num < 0 || num as usize >= o.inner.sems.len() {
                    return Err(Errno::EINVAL);
                }
                o.perm.check(&cred, 0o4)?;
                let s = o.inner.sems[num as usize];
                Ok(match cmd {
                    GETVAL => s.val as u64,
                    GETPID => s.pid as u64,
                    _ => o
                        .inner
                        .waiters
                        .iter()
                        .filter(|w| {
                            w.1 as i32 == num && w.2 == (cmd == GETZCNT) && asleep.contains(&w.0)
                        })
                        .count() as u64,
                })
            }
            GETALL => {
                let o = ns.sem.get(id)?;
                o.perm.check(&cred, 0o4)?;
                let vals: Vec<u8> = o
                    .inner
                    .sems
                    .iter()
                    .flat_map(|s| (s.val as u16).to_ne_bytes())
                    .collect();
                mm.write_bytes(arg, &vals)?;
                Ok(0)
            }
            SETVAL => {
                let o = ns.sem.get_mut(id)?;
                if num < 0 || num as usize >= o.inner.sems.len() {
                    return Err(Errno::EINVAL);
                }
                o.perm.check(&cred, 0o2)?;
                let v = arg as i32;
                if !(0..=SEMVMX).contains(&v) {
                    return Err(Errno::ERANGE);
                }
                o.inner.sems[num as usize] = Sem { val: v, pid };
                o.ctime = super::now();
                o.inner.wq.notify_all();
                ns.undo.clear_sem(id, num as usize);
                Ok(0)
            }
            SETALL => {
                let o = ns.sem.get_mut(id)?;
                o.perm.check(&cred, 0o2)?;
                let n = o.inner.sems.len();
                let raw = mm.read_vec(arg, n * 2)?;
                let vals: Vec<i32> = raw
                    .chunks_exact(2)
                    .map(|c| u16::from_ne_bytes([c[0], c[1]]) as i32)
                    .collect();
                if vals.iter().any(|v| *v > SEMVMX) {
                    return Err(Errno::ERANGE);
                }
                for (s, v) in o.inner.sems.iter_mut().zip(vals) {
                    *s = Sem { val: v, pid };
                }
                o.ctime = super::now();
                o.inner.wq.notify_all();
                ns.undo.clear_set(id);
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    })
}

/// Process `pid` exited: its SEM_UNDO adjustments are applied (clamped to
/// the semaphores' range, as Linux does).
pub fn process_exited(ns: &mut Namespace, pid: Pid) {
    let Some(sets) = ns.undo.map.remove(&pid) else {
        return;
    };
    for (id, adj) in sets {
        let Ok(o) = ns.sem.get_mut(id) else {
            continue;
        };
        let mut changed = false;
        for (s, d) in o.inner.sems.iter_mut().zip(adj) {
            if d != 0 {
                s.val = (s.val + d).clamp(0, SEMVMX);
                s.pid = pid;
                changed = true;
            }
        }
        if changed {
            o.inner.wq.notify_all();
        }
    }
}
