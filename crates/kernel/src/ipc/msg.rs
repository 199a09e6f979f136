//! System V message queues: msgget, msgsnd, msgrcv, msgctl.

use std::collections::VecDeque;
use std::rc::Rc;

use super::ids::{IpcPerm, Object, PERM_SIZE};
use super::{IPC_64, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT};
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Pid, Tid};

const MSG_NOERROR: i32 = 0o10000;
const MSG_EXCEPT: i32 = 0o20000;
const MSG_COPY: i32 = 0o40000;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;

/// CAP_SYS_RESOURCE: raising msg_qbytes past msgmnb.
const CAP_SYS_RESOURCE: u32 = 24;

pub struct Message {
    pub mtype: i64,
    pub data: Vec<u8>,
}

pub struct Queue {
    pub msgs: VecDeque<Message>,
    pub cbytes: u64,
    pub qbytes: u64,
    pub lspid: Pid,
    pub lrpid: Pid,
    pub stime: i64,
    pub rtime: i64,
    pub wq: Rc<WaitQueue>,
}

pub fn msgget(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (key, flg) = (a[0] as i32, a[1] as i32);
    let cred = k.cred(tid);
    super::with(|ns| {
        if let Some(id) = ns.msg.find_key(key) {
            if flg & IPC_CREAT != 0 && flg & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let o = ns.msg.get(id)?;
            o.perm.check(
                &cred,
                (flg as u32 >> 6) & 0o7 | (flg as u32 >> 3) & 0o7 | flg as u32 & 0o7,
            )?;
            return Ok(id as u64);
        }
        if key != 0 && flg & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        let q = Queue {
            msgs: VecDeque::new(),
            cbytes: 0,
            qbytes: ns.limits.msgmnb as u64,
            lspid: 0,
            lrpid: 0,
            stime: 0,
            rtime: 0,
            wq: Rc::new(WaitQueue::new()),
        };
        let max = ns.limits.msgmni as u64;
        let id = ns
            .msg
            .insert(IpcPerm::new(key, flg as u32, &cred), q, max)?;
        Ok(id as u64)
    })
}

pub fn msgsnd(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, msgp, size, flg) = (a[0] as i32, a[1], a[2] as i64, a[3] as i32);
    let msgmax = super::with(|ns| ns.limits.msgmax) as i64;
    if size < 0 || size > msgmax || id < 0 {
        return Err(Errno::EINVAL);
    }
    let (mtype, data) = {
        let mm = k.task_mm(tid);
        let mm = mm.borrow();
        let mtype: i64 = mm.read_val(msgp)?;
        (mtype, mm.read_vec(msgp + 8, size as usize)?)
    };
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    let started = std::mem::replace(&mut k.task_mut(tid).sys.started, true);
    let wait = super::with(|ns| {
        let o = match ns.msg.get_mut(id) {
            Ok(o) => o,
            Err(e) => return Err(if started { Errno::EIDRM } else { e }),
        };
        o.perm.check(&cred, 0o2)?;
        let q = &mut o.inner;
        if q.cbytes + size as u64 > q.qbytes || q.msgs.len() as u64 + 1 > q.qbytes {
            if flg & IPC_NOWAIT != 0 {
                return Err(Errno::EAGAIN);
            }
            return Ok(Some(q.wq.clone()));
        }
        q.cbytes += size as u64;
        q.msgs.push_back(Message { mtype, data });
        q.lspid = pid;
        q.stime = super::now();
        q.wq.notify_all();
        Ok(None)
    })?;
    match wait {
        None => Ok(0),
        Some(wq) => {
            wq.add(tid, !0);
            Err(Errno::EBLOCK)
        }
    }
}

/// The index of the message msgrcv takes for `msgtyp`.
fn pick(msgs: &VecDeque<Message>, msgtyp: i64, except: bool) -> Option<usize> {
    if msgtyp == 0 {
        return (!msgs.is_empty()).then_some(0);
    }
    if msgtyp > 0 {
        return msgs.iter().position(|m| (m.mtype == msgtyp) != except);
    }
    // The lowest type not above |msgtyp|, first of its type.
    let limit = msgtyp.unsigned_abs();
    let mut best: Option<(usize, i64)> = None;
    for (i, m) in msgs.iter().enumerate() {
        if (m.mtype as u64) <= limit && best.is_none_or(|(_, t)| m.mtype < t) {
            best = Some((i, m.mtype));
        }
    }
    best.map(|(i, _)| i)
}

pub fn msgrcv(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, msgp, size, msgtyp, flg) = (a[0] as i32, a[1], a[2] as i64, a[3] as i64, a[4] as i32);
    if size < 0 || id < 0 {
        return Err(Errno::EINVAL);
    }
    if flg & MSG_COPY != 0 && (flg & MSG_EXCEPT != 0 || flg & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL);
    }
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    let started = std::mem::replace(&mut k.task_mut(tid).sys.started, true);
    let mm = k.task_mm(tid);
    let got = super::with(|ns| {
        let o = match ns.msg.get_mut(id) {
            Ok(o) => o,
            Err(e) => return Err(if started { Errno::EIDRM } else { e }),
        };
        o.perm.check(&cred, 0o4)?;
        let q = &mut o.inner;
        let idx = if flg & MSG_COPY != 0 {
            (msgtyp >= 0 && (msgtyp as usize) < q.msgs.len()).then_some(msgtyp as usize)
        } else {
            pick(&q.msgs, msgtyp, flg & MSG_EXCEPT != 0)
        };
        let Some(i) = idx else {
            if flg & IPC_NOWAIT != 0 || flg & MSG_COPY != 0 {
                return Err(Errno::ENOMSG);
            }
            return Ok(Err(q.wq.clone()));
        };
        let m = &q.msgs[i];
        if m.data.len() as i64 > size {
            if flg & MSG_NOERROR == 0 {
                return Err(Errno::E2BIG);
            }
            // A copy must fit whole, even with MSG_NOERROR.
            if flg & MSG_COPY != 0 {
                return Err(Errno::EINVAL);
            }
        }
        let n = (m.data.len() as i64).min(size) as usize;
        {
            let mm = mm.borrow();
            mm.write_val(msgp, &m.mtype)?;
            mm.write_bytes(msgp + 8, &m.data[..n])?;
        }
        if flg & MSG_COPY == 0 {
            let m = q.msgs.remove(i).expect("picked");
            q.cbytes -= m.data.len() as u64;
            q.lrpid = pid;
            q.rtime = super::now();
            q.wq.notify_all();
        }
        Ok(Ok(n as u64))
    })?;
    match got {
        Ok(n) => Ok(n),
        Err(wq) => {
            wq.add(tid, !0);
            Err(Errno::EBLOCK)
        }
    }
}

/// struct msqid64_ds.
fn encode_ds(o: &Object<Queue>) -> [u8; 120] {
    let mut b = [0u8; 120];
    o.perm.encode(&mut b[..PERM_SIZE]);
    let q = &o.inner;
    b[48..56].copy_from_slice(&q.stime.to_ne_bytes());
    b[56..64].copy_from_slice(&q.rtime.to_ne_bytes());
    b[64..72].copy_from_slice(&o.ctime.to_ne_bytes());
    b[72..80].copy_from_slice(&q.cbytes.to_ne_bytes());
    b[80..88].copy_from_slice(&(q.msgs.len() as u64).to_ne_bytes());
    b[88..96].copy_from_slice(&q.qbytes.to_ne_bytes());
    b[96..100].copy_from_slice(&q.lspid.to_ne_bytes());
    b[100..104].copy_from_slice(&q.lrpid.to_ne_bytes());
    b
}

pub fn msgctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32 & !IPC_64, a[2]);
    let cred = k.cred(tid);
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    super::with(|ns| {
        let l = ns.limits.clone();
        match cmd {
            IPC_INFO | MSG_INFO => {
                let (pool, map, tql) = if cmd == MSG_INFO {
                    let msgs: usize = ns.msg.iter().map(|o| o.inner.msgs.len()).sum();
                    let bytes: u64 = ns.msg.iter().map(|o| o.inner.cbytes).sum();
                    (ns.msg.len() as i32, msgs as i32, bytes as i32)
                } else {
                    (
                        (l.msgmni as i64 * l.msgmnb as i64 / 1024) as i32,
                        l.msgmnb,
                        l.msgmnb,
                    )
                };
                let vals = [pool, map, l.msgmax, l.msgmnb, l.msgmni, 16, tql];
                let mut b = [0u8; 32];
                for (i, v) in vals.iter().enumerate() {
                    b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                }
                b[28..30].copy_from_slice(&0xffffu16.to_ne_bytes());
                mm.write_bytes(buf, &b)?;
                Ok(ns.msg.max_index() as u64)
            }
            MSG_STAT | MSG_STAT_ANY => {
                let o = ns.msg.by_index(id)?;
                if cmd == MSG_STAT {
                    o.perm.check(&cred, 0o4)?;
                }
                mm.write_bytes(buf, &encode_ds(o))?;
                Ok(o.id as u64)
            }
            IPC_STAT => {
                let o = ns.msg.get(id)?;
                o.perm.check(&cred, 0o4)?;
                mm.write_bytes(buf, &encode_ds(o))?;
                Ok(0)
            }
            IPC_SET => {
                let raw = mm.read_vec(buf, 120)?;
                let qbytes = u64::from_ne_bytes(raw[88..96].try_into().unwrap());
                let o = ns.msg.get_mut(id)?;
                o.perm.check_owner(&cred)?;
                if qbytes > l.msgmnb as u64 && !cred.capable(CAP_SYS_RESOURCE) {
                    return Err(Errno::EPERM);
                }
                o.perm.set_from(&raw[..PERM_SIZE]);
                o.inner.qbytes = qbytes;
                o.ctime = super::now();
                // More room may let senders in.
                o.inner.wq.notify_all();
                Ok(0)
            }
            IPC_RMID => {
                ns.msg.get(id)?.perm.check_owner(&cred)?;
                let o = ns.msg.remove(id).expect("present");
                o.inner.wq.notify_all();
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(types: &[i64]) -> VecDeque<Message> {
        types
            .iter()
            .map(|t| Message {
                mtype: *t,
                data: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn msgtyp_selects_like_linux() {
        let m = q(&[3, 1, 2, 1]);
        assert_eq!(pick(&m, 0, false), Some(0));
        assert_eq!(pick(&m, 2, false), Some(2));
        assert_eq!(pick(&m, 3, true), Some(1));
        assert_eq!(pick(&m, -2, false), Some(1));
        assert_eq!(pick(&m, -3, false), Some(1));
        assert_eq!(pick(&m, 5, false), None);
        assert_eq!(pick(&q(&[]), 0, false), None);
    }
}
