//! POSIX message queues: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify, mq_getsetattr.
//!
//! A queue is named in the namespace and opened as a file: its descriptor
//! polls readable while messages wait and writable while there is room,
//! and reads as the status line Linux's mqueue files show.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::task::TaskState;
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Pid, Tid};
use crate::vfs::file::{File, FileOps, POLLIN, POLLOUT};
use crate::vfs::iov::IoVecs;
use crate::vfs::perm::{Cred, cap};

const MQ_PRIO_MAX: u64 = 32768;
/// Limits that even CAP_SYS_RESOURCE cannot pass (HARD_MSGMAX, HARD_MSGSIZEMAX).
const HARD_MSGMAX: i64 = 65536;
const HARD_MSGSIZEMAX: i64 = 16 << 20;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SI_MESGQ: i32 = -3;
const POLLRDNORM: u32 = 0x40;
const POLLWRNORM: u32 = 0x100;

/// Queue names of the namespace.
#[derive(Default)]
pub struct Names {
    map: BTreeMap<Vec<u8>, Rc<MQueue>>,
}

/// A registration for notification (mq_notify).
#[derive(Clone, Copy)]
struct Notify {
    pid: Pid,
    kind: i32,
    signo: i32,
    value: u64,
}

pub struct MQueue {
    ino: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    maxmsg: i64,
    msgsize: i64,
    /// Messages by priority (highest first), in arrival order within one.
    msgs: RefCell<Vec<(u32, Vec<u8>)>>,
    bytes: Cell<u64>,
    wq: WaitQueue,
    notify: RefCell<Option<Notify>>,
    /// Tasks asleep in mq_timedreceive (a notification is only sent when
    /// nobody waits to receive).
    receivers: RefCell<Vec<Tid>>,
}

impl MQueue {
    fn may(&self, cred: &Cred, want: u32) -> bool {
        let granted = if cred.fsuid == self.uid {
            self.mode >> 6
        } else if cred.in_group(self.gid) {
            self.mode >> 3
        } else {
            self.mode
        } & 0o7;
        want & !granted == 0 || cred.capable(cap::DAC_OVERRIDE)
    }

    fn status(&self) -> String {
        let n = self.notify.borrow();
        let (kind, signo, pid) = match *n {
            Some(x) => (
                x.kind,
                if x.kind == SIGEV_SIGNAL { x.signo } else { 0 },
                x.pid,
            ),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            self.bytes.get(),
            kind,
            signo,
            pid
        )
    }
}

/// An open queue.
pub struct MqFile {
    q: Rc<MQueue>,
    name: Vec<u8>,
}

impl FileOps for MqFile {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        let s = self.q.status();
        let b = s.as_bytes();
        if off as usize >= b.len() {
            return Ok(0);
        }
        Ok(dst.copy_in(0, &b[off as usize..]))
    }
    fn seekable(&self) -> bool {
        true
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        let n = self.q.msgs.borrow().len() as i64;
        let mut r = 0;
        if n > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if n < self.q.maxmsg {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.q.wq.add(tid, events);
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.q.wq.remove(tid);
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.q.wq.seq(mask)
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mut st = crate::vfs::stat_of(0, self.q.ino, libc::S_IFREG | self.q.mode, 1);
        st.st_uid = self.q.uid;
        st.st_gid = self.q.gid;
        st.st_size = self.q.status().len() as i64;
        Ok(st)
    }
    fn anon_name(&self) -> Option<String> {
        Some(format!("/{}", String::from_utf8_lossy(&self.name)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The queue behind descriptor `fd` (EBADF for other files).
fn queue_of(k: &Kernel, tid: Tid, fd: i32) -> SysResult<(Rc<File>, Rc<MQueue>)> {
    let f = k.task(tid).files.borrow().get(fd)?;
    let q = f
        .ops
        .as_any()
        .downcast_ref::<MqFile>()
        .ok_or(Errno::EBADF)?
        .q
        .clone();
    Ok((f, q))
}

/// A queue name as the syscall takes it (glibc strips the leading '/').
fn check_name(name: &[u8]) -> SysResult<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.contains(&b'/') || name == b"." || name == b".." {
        return Err(Errno::EACCES);
    }
    Ok(())
}

pub fn mq_open(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (oflag, mode, attr) = (a[1] as i32, a[2] as u32, a[3]);
    let name = k.read_path(tid, a[0])?;
    check_name(&name)?;
    let acc = oflag & libc::O_ACCMODE;
    if acc == libc::O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    let cred = k.cred(tid);
    let umask = k.task(tid).fs.borrow().umask;
    let want = match acc {
        libc::O_RDONLY => 0o4,
        libc::O_WRONLY => 0o2,
        _ => 0o6,
    };
    let attr = if attr != 0 && oflag & libc::O_CREAT != 0 {
        let v: [i64; 8] = k.task_mm(tid).borrow().read_val(attr)?;
        Some((v[1], v[2]))
    } else {
        None
    };
    let q = super::with(|ns| {
        if let Some(q) = ns.mq.map.get(&name) {
            if oflag & libc::O_CREAT != 0 && oflag & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if !q.may(&cred, want) {
                return Err(Errno::EACCES);
            }
            return Ok(q.clone());
        }
        if oflag & libc::O_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        let l = &ns.limits;
        let privileged = cred.capable(cap::SYS_RESOURCE);
        if ns.mq.map.len() as u32 >= l.mq_queues_max && !privileged {
            return Err(Errno::ENOSPC);
        }
        let (maxmsg, msgsize) = attr.unwrap_or((l.mq_msg_default, l.mq_msgsize_default));
        if maxmsg <= 0 || msgsize <= 0 {
            return Err(Errno::EINVAL);
        }
        let (cap_msg, cap_size) = if privileged {
            (HARD_MSGMAX, HARD_MSGSIZEMAX)
        } else {
            (l.mq_msg_max, l.mq_msgsize_max)
        };
        if maxmsg > cap_msg || msgsize > cap_size {
            return Err(Errno::EINVAL);
        }
        let q = Rc::new(MQueue {
            ino: crate::vfs::new_ino(),
            uid: cred.fsuid,
            gid: cred.fsgid,
            mode: mode & !umask & 0o777,
            maxmsg,
            msgsize,
            msgs: RefCell::new(Vec::new()),
            bytes: Cell::new(0),
            wq: WaitQueue::new(),
            notify: RefCell::new(None),
            receivers: RefCell::new(Vec::new()),
        });
        ns.mq.map.insert(name.clone(), q.clone());
        Ok(q)
    })?;
    let flags = acc | (oflag & libc::O_NONBLOCK);
    let f = File::new(Rc::new(MqFile { q, name }), flags, None);
    let limit = k.rlimit(tid, libc::RLIMIT_NOFILE).rlim_cur;
    let fd = k
        .task(tid)
        .files
        .borrow_mut()
        .alloc(f, oflag & libc::O_CLOEXEC != 0, 0, limit)?;
    Ok(fd as u64)
}

pub fn mq_unlink(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let name = k.read_path(tid, a[0])?;
    check_name(&name)?;
    let cred = k.cred(tid);
    super::with(|ns| {
        let q = ns.mq.map.get(&name).ok_or(Errno::ENOENT)?;
        // The queue directory is sticky: only the owner removes a queue.
        if cred.fsuid != q.uid && !cred.capable(cap::FOWNER) {
            return Err(Errno::EACCES);
        }
        ns.mq.map.remove(&name);
        Ok(0)
    })
}

/// The deadline of an absolute CLOCK_REALTIME timeout, checked only when
/// the call would block (Linux's order): EINVAL for a bad timespec.
fn deadline(k: &mut Kernel, tid: Tid, abs: u64) -> SysResult<Option<Instant>> {
    if abs == 0 {
        return Ok(None);
    }
    let t = k.task(tid);
    if t.sys.started {
        return Ok(t.sys.deadline);
    }
    let ts: libc::timespec = k.task_mm(tid).borrow().read_val(abs)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let now = crate::vfs::now();
    let want = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let have = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
    let d = Instant::now() + want.saturating_sub(have);
    let t = k.task_mut(tid);
    t.sys.started = true;
    t.sys.deadline = Some(d);
    Ok(Some(d))
}

/// Blocks the task on the queue, or says why it cannot.
fn block(k: &mut Kernel, tid: Tid, f: &File, q: &MQueue, abs: u64) -> SysResult<u64> {
    if f.nonblocking() {
        return Err(Errno::EAGAIN);
    }
    let d = deadline(k, tid, abs)?;
    k.task_mut(tid).sys.started = true;
    if d.is_some_and(|d| Instant::now() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    q.wq.add(tid, !0);
    Err(Errno::EBLOCK)
}

pub fn mq_timedsend(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, ptr, len, prio, abs) = (a[0] as i32, a[1], a[2], a[3], a[4]);
    let (f, q) = queue_of(k, tid, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if len as i64 > q.msgsize {
        return Err(Errno::EMSGSIZE);
    }
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let data = k.task_mm(tid).borrow().read_vec(ptr, len as usize)?;
    if q.msgs.borrow().len() as i64 >= q.maxmsg {
        return block(k, tid, &f, &q, abs);
    }
    let was_empty = q.msgs.borrow().is_empty();
    {
        let mut m = q.msgs.borrow_mut();
        let at = m
            .iter()
            .position(|(p, _)| *p < prio as u32)
            .unwrap_or(m.len());
        m.insert(at, (prio as u32, data));
    }
    q.bytes.set(q.bytes.get() + len);
    q.wq.notify(POLLIN | POLLRDNORM);
    if was_empty {
        notify(k, tid, &q);
    }
    Ok(0)
}

/// A message arrived in an empty queue: the registered process is told,
/// unless someone is already waiting to receive it; the registration goes.
fn notify(k: &mut Kernel, tid: Tid, q: &MQueue) {
    let waiting = q.receivers.borrow().iter().any(|r| {
        k.tasks.get(r).is_some_and(|t| {
            t.state == TaskState::Blocked
                && t.blocked_on
                    .is_some_and(|(nr, _)| nr == libc::SYS_mq_timedreceive as u64)
        })
    });
    if waiting {
        return;
    }
    let Some(n) = q.notify.borrow_mut().take() else {
        return;
    };
    if n.kind == SIGEV_SIGNAL {
        let pid = k.task(tid).tgid;
        let uid = k.cred(tid).uid;
        let mut info = SigInfo::user(n.signo, SI_MESGQ, pid, uid);
        info.raw[24..32].copy_from_slice(&n.value.to_ne_bytes());
        let _ = k.send_group(n.pid, info);
    }
}

pub fn mq_timedreceive(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, ptr, len, prio_ptr, abs) = (a[0] as i32, a[1], a[2], a[3], a[4]);
    let (f, q) = queue_of(k, tid, fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if (len as i64) < q.msgsize {
        return Err(Errno::EMSGSIZE);
    }
    q.receivers.borrow_mut().retain(|t| *t != tid);
    if q.msgs.borrow().is_empty() {
        let r = block(k, tid, &f, &q, abs);
        if r == Err(Errno::EBLOCK) {
            q.receivers.borrow_mut().push(tid);
        }
        return r;
    }
    let (prio, data) = q.msgs.borrow()[0].clone();
    {
        let mm = k.task_mm(tid);
        let mm = mm.borrow();
        mm.write_bytes(ptr, &data)?;
        if prio_ptr != 0 {
            mm.write_val(prio_ptr, &prio)?;
        }
    }
    q.msgs.borrow_mut().remove(0);
    q.bytes.set(q.bytes.get() - data.len() as u64);
    q.wq.notify(POLLOUT | POLLWRNORM);
    Ok(data.len() as u64)
}

pub fn mq_notify(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, sevp) = (a[0] as i32, a[1]);
    let (_, q) = queue_of(k, tid, fd)?;
    let pid = k.task(tid).tgid;
    if sevp == 0 {
        let mut n = q.notify.borrow_mut();
        if n.is_some_and(|n| n.pid == pid) {
            *n = None;
        }
        return Ok(0);
    }
    // struct sigevent: value (8), signo (4), notify (4), ...
    let raw: [u8; 16] = k.task_mm(tid).borrow().read_val(sevp)?;
    let value = u64::from_ne_bytes(raw[0..8].try_into().unwrap());
    let signo = i32::from_ne_bytes(raw[8..12].try_into().unwrap());
    let kind = i32::from_ne_bytes(raw[12..16].try_into().unwrap());
    match kind {
        SIGEV_NONE => {}
        SIGEV_SIGNAL if (1..=64).contains(&signo) => {}
        // SIGEV_THREAD needs a netlink notification socket.
        _ => return Err(Errno::EINVAL),
    }
    let mut n = q.notify.borrow_mut();
    if n.is_some() {
        return Err(Errno::EBUSY);
    }
    *n = Some(Notify {
        pid,
        kind,
        signo,
        value,
    });
    Ok(0)
}

pub fn mq_getsetattr(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, new, old) = (a[0] as i32, a[1], a[2]);
    let (f, q) = queue_of(k, tid, fd)?;
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    let newattr: Option<[i64; 8]> = if new != 0 {
        Some(mm.read_val(new)?)
    } else {
        None
    };
    if newattr.is_some_and(|v| v[0] & !(libc::O_NONBLOCK as i64) != 0) {
        return Err(Errno::EINVAL);
    }
    if old != 0 {
        let flags = (f.flags.get() & libc::O_NONBLOCK) as i64;
        let cur = q.msgs.borrow().len() as i64;
        let v: [i64; 8] = [flags, q.maxmsg, q.msgsize, cur, 0, 0, 0, 0];
        mm.write_val(old, &v)?;
    }
    if let Some(v) = newattr {
        let fl = f.flags.get() & !libc::O_NONBLOCK;
        f.flags.set(fl | (v[0] as i32 & libc::O_NONBLOCK));
    }
    Ok(0)
}

/// Names of the queues (a listing of /dev/mqueue).
pub fn names() -> Vec<Vec<u8>> {
    super::with(|ns| ns.mq.map.keys().cloned().collect())
}
