//! AF_UNIX sockets, entirely inside the kernel: stream, datagram and
//! seqpacket; socketpair; binding to paths (a socket file in the sandbox's
//! file system) and abstract names (the sandbox's own namespace);
//! SCM_RIGHTS and SCM_CREDENTIALS.
//!
//! Memory is accounted as Linux's af_unix does it: every message a socket
//! sends is charged to the sender's send buffer (its bytes plus a fixed
//! overhead, like an skb's truesize) until the receiver has read it, and a
//! sender blocks (or gets EAGAIN) while its charge reaches SO_SNDBUF. A
//! datagram receiver that is not the sender's peer also refuses more than
//! net.unix.max_dgram_qlen queued datagrams.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::{Recv, Send, SockAddr, SocketOps, Ucred};
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};
use crate::vfs::IoVecs;
use crate::vfs::file::{File, FileOps, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLWRBAND};
use crate::vfs::inode::FileType;

/// net.core.wmem_default / wmem_max (and the rmem ones).
const BUF_DEFAULT: usize = 212_992;
const BUF_MAX: usize = 212_992;
/// SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF.
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;
/// What a message costs beyond its bytes (an skb's truesize overhead).
const MSG_OVERHEAD: usize = 576;
/// Largest piece one stream send queues as one message.
const STREAM_CHUNK: usize = 32_768 + 3_712;
/// net.unix.max_dgram_qlen.
const MAX_DGRAM_QLEN: usize = 10;
/// Credentials a message carries when none were attached at send time
/// (pid 0, the overflow uid and gid).
const NOBODY: Ucred = Ucred {
    pid: 0,
    uid: 65534,
    gid: 65534,
};

/// A message's charge on its sender's send buffer, returned when the
/// message is read or dropped.
struct Charge {
    sender: Weak<UnixSocket>,
    truesize: usize,
    data: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(s) = self.sender.upgrade() {
            s.wmem.set(s.wmem.get().saturating_sub(self.truesize));
            s.outq.set(s.outq.get().saturating_sub(self.data));
            s.wq.notify(POLLOUT);
        }
    }
}

struct Msg {
    data: Vec<u8>,
    /// Read position (streams consume messages piecewise).
    pos: usize,
    fds: Vec<Rc<File>>,
    /// Attached when sender or receiver had SO_PASSCRED at send time, or
    /// the sender gave SCM_CREDENTIALS.
    creds: Option<Ucred>,
    from: Option<SockAddr>,
    _charge: Charge,
}

pub struct UnixSocket {
    ty: i32,
    me: Weak<UnixSocket>,
    rq: RefCell<VecDeque<Msg>>,
    /// Unread bytes in `rq`.
    queued: Cell<usize>,
    wq: WaitQueue,
    name: RefCell<Option<SockAddr>>,
    bound_id: Cell<Option<(u64, u64)>>,
    peer: RefCell<Option<Weak<UnixSocket>>>,
    /// Had a peer once (stream/seqpacket): its loss means end of file.
    was_connected: Cell<bool>,
    listen: RefCell<Option<(usize, VecDeque<Rc<UnixSocket>>)>>,
    /// Queued on a listener, not yet accepted.
    embryo: Cell<bool>,
    shut_rd: Cell<bool>,
    shut_wr: Cell<bool>,
    passcred: Cell<bool>,
    /// Credentials of the process that made the socket.
    creds: Cell<Ucred>,
    /// SO_PEERCRED: set at socketpair, listen, connect and accept.
    peer_cred: Cell<Option<Ucred>>,
    /// Pending error (sk_err): ECONNRESET when a peer closed with unread data.
    err: Cell<i32>,
    sndbuf: Cell<usize>,
    rcvbuf: Cell<usize>,
    /// Bytes charged for sent messages not yet read (truesize), and their data.
    wmem: Cell<usize>,
    outq: Cell<usize>,
    linger: Cell<[i32; 2]>,
    timeouts: Cell<[Option<Duration>; 2]>,
    /// Plain SOL_SOCKET flags the socket only stores (SO_KEEPALIVE, ...).
    flags: RefCell<HashMap<i32, i32>>,
    ino: u64,
}

thread_local! {
    static BY_INODE: RefCell<HashMap<(u64, u64), Weak<UnixSocket>>> = RefCell::new(HashMap::new());
    static ABSTRACT: RefCell<HashMap<Vec<u8>, Weak<UnixSocket>>> = RefCell::new(HashMap::new());
    static AUTOBIND: Cell<u32> = const { Cell::new(0) };
}

fn creds_of(k: &Kernel, tid: Tid) -> Ucred {
    let t = k.task(tid);
    let c = &k.groups[&t.tgid].cred;
    Ucred {
        pid: t.tgid,
        uid: c.euid,
        gid: c.egid,
    }
}

/// A struct timeval as a timeout (None: no timeout).
fn timeval_timeout(v: &[u8]) -> SysResult<Option<Duration>> {
    if v.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_ne_bytes(v[..8].try_into().unwrap());
    let usec = i64::from_ne_bytes(v[8..16].try_into().unwrap());
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 || (sec == 0 && usec == 0) {
        return Ok(None);
    }
    Ok(Some(Duration::new(sec as u64, usec as u32 * 1000)))
}

fn timeval_bytes(t: Option<Duration>) -> Vec<u8> {
    let (s, us) = t.map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_micros() as i64));
    [s.to_ne_bytes(), us.to_ne_bytes()].concat()
}

impl UnixSocket {
    pub fn new(ty: i32, creds: Ucred) -> SysResult<Rc<UnixSocket>> {
        if !matches!(
            ty,
            libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET
        ) {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        Ok(Rc::new_cyclic(|me| UnixSocket {
            ty,
            me: me.clone(),
            rq: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            wq: WaitQueue::new(),
            name: RefCell::new(None),
            bound_id: Cell::new(None),
            peer: RefCell::new(None),
            was_connected: Cell::new(false),
            listen: RefCell::new(None),
            embryo: Cell::new(false),
            shut_rd: Cell::new(false),
            shut_wr: Cell::new(false),
            passcred: Cell::new(false),
            creds: Cell::new(creds),
            peer_cred: Cell::new(None),
            err: Cell::new(0),
            sndbuf: Cell::new(BUF_DEFAULT),
            rcvbuf: Cell::new(BUF_DEFAULT),
            wmem: Cell::new(0),
            outq: Cell::new(0),
            linger: Cell::new([0, 0]),
            timeouts: Cell::new([None, None]),
            flags: RefCell::new(HashMap::new()),
            ino: crate::vfs::new_ino(),
        }))
    }

    /// A connected pair (socketpair).
    pub fn pair(ty: i32, creds: Ucred) -> SysResult<(Rc<UnixSocket>, Rc<UnixSocket>)> {
        let a = UnixSocket::new(ty, creds)?;
        let b = UnixSocket::new(ty, creds)?;
        a.link(&b);
        a.peer_cred.set(Some(creds));
        b.peer_cred.set(Some(creds));
        Ok((a, b))
    }

    fn link(&self, other: &Rc<UnixSocket>) {
        *self.peer.borrow_mut() = Some(Rc::downgrade(other));
        *other.peer.borrow_mut() = Some(self.me.clone());
        self.was_connected.set(true);
        other.was_connected.set(true);
    }

    fn peer(&self) -> Option<Rc<UnixSocket>> {
        self.peer.borrow().as_ref().and_then(|w| w.upgrade())
    }

    fn connection_oriented(&self) -> bool {
        self.ty != libc::SOCK_DGRAM
    }

    /// Takes the pending error (sock_error).
    fn take_err(&self) -> Option<Errno> {
        match self.err.replace(0) {
            0 => None,
            e => Some(Errno(e)),
        }
    }

    /// Linux's unix_writable: room in the send buffer.
    fn writable(&self) -> bool {
        self.listen.borrow().is_none() && self.wmem.get() * 4 <= self.sndbuf.get()
    }

    /// Finds the socket bound at `addr`.
    fn lookup(k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<Rc<UnixSocket>> {
        match addr {
            SockAddr::UnixAbstract(n) => ABSTRACT
                .with(|m| m.borrow().get(n).and_then(|w| w.upgrade()))
                .ok_or(Errno::ECONNREFUSED),
            SockAddr::UnixPath(p) => {
                let d = k.lookup(tid, p, true)?;
                if d.kind() != FileType::Socket {
                    return Err(Errno::ECONNREFUSED);
                }
                let st = d.inode.stat(k)?;
                crate::vfs::perm::Cred::may_access(&k.cred(tid), &st, crate::vfs::perm::MAY_WRITE)?;
                BY_INODE
                    .with(|m| m.borrow().get(&d.inode.id()).and_then(|w| w.upgrade()))
                    .ok_or(Errno::ECONNREFUSED)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Queues a message from `sender` (charged to its send buffer).
    fn push(&self, sender: &UnixSocket, data: Vec<u8>, fds: Vec<Rc<File>>, creds: Option<Ucred>) {
        let truesize = data.len() + MSG_OVERHEAD;
        sender.wmem.set(sender.wmem.get() + truesize);
        sender.outq.set(sender.outq.get() + data.len());
        self.queued.set(self.queued.get() + data.len());
        let from = sender.name.borrow().clone();
        self.rq.borrow_mut().push_back(Msg {
            _charge: Charge {
                sender: sender.me.clone(),
                truesize,
                data: data.len(),
            },
            data,
            pos: 0,
            fds,
            creds,
            from,
        });
        self.wq.notify(POLLIN);
    }

    fn autobind(&self) {
        let n = AUTOBIND.with(|c| {
            let v = c.get();
            c.set(v + 1);
            v
        });
        let name = format!("{n:05x}").into_bytes();
        ABSTRACT.with(|m| m.borrow_mut().insert(name.clone(), self.me.clone()));
        *self.name.borrow_mut() = Some(SockAddr::UnixAbstract(name));
    }

    /// The credentials a message gets at send time (unix_maybe_add_creds).
    fn creds_for(&self, target: &UnixSocket, m: &Send<'_>) -> Option<Ucred> {
        if m.creds.is_some() {
            return m.creds;
        }
        (self.passcred.get() || target.passcred.get()).then_some(m.current)
    }

    fn send_stream(&self, m: Send<'_>) -> SysResult<usize> {
        if let Some(e) = self.take_err() {
            return Err(e);
        }
        let peer = self.peer();
        if m.addr.is_some() {
            return Err(if peer.is_some() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        let Some(peer) = peer else {
            return Err(if self.was_connected.get() {
                Errno::EPIPE
            } else {
                Errno::ENOTCONN
            });
        };
        if self.shut_wr.get() || peer.shut_rd.get() {
            return Err(Errno::EPIPE);
        }
        let creds = self.creds_for(&peer, &m);
        let len = m.data.len;
        let mut fds = m.fds;
        let mut sent = 0;
        while sent < len {
            // A send waits (or fails) only when the buffer is full before a
            // piece; what was sent so far is the answer then.
            if self.wmem.get() >= self.sndbuf.get() {
                if sent > 0 {
                    break;
                }
                return Err(Errno::EAGAIN);
            }
            let size = (len - sent)
                .min((self.sndbuf.get() / 2).saturating_sub(64).max(1))
                .min(STREAM_CHUNK);
            let mut data = vec![0u8; size];
            m.data.copy_out(sent, &mut data);
            peer.push(self, data, std::mem::take(&mut fds), creds);
            sent += size;
        }
        Ok(sent)
    }

    fn send_dgram(&self, k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if let Some(e) = self.take_err() {
            return Err(e);
        }
        let seqpacket = self.ty == libc::SOCK_SEQPACKET;
        let target = match (&m.addr, seqpacket) {
            // A seqpacket socket ignores an address (Linux clears it).
            (_, true) => match self.peer() {
                Some(p) => p,
                None if self.was_connected.get() => return Err(Errno::EPIPE),
                None => return Err(Errno::ENOTCONN),
            },
            (Some(a), false) => Self::lookup(k, k.current.get(), a)?,
            (None, false) => match self.peer() {
                Some(p) => p,
                None if self.peer.borrow().is_some() => return Err(Errno::ECONNREFUSED),
                None => return Err(Errno::ENOTCONN),
            },
        };
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if self.shut_wr.get() {
            return Err(Errno::EPIPE);
        }
        let len = m.data.len;
        if len > self.sndbuf.get().saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        if self.wmem.get() >= self.sndbuf.get() {
            return Err(Errno::EAGAIN);
        }
        if target.shut_rd.get() {
            return Err(Errno::EPIPE);
        }
        let peers_each_other = target
            .peer()
            .is_some_and(|p| std::ptr::eq(Rc::as_ptr(&p), self));
        if !peers_each_other && target.rq.borrow().len() > MAX_DGRAM_QLEN {
            // Woken when the receiver reads.
            target.wq.add(k.current.get(), POLLOUT);
            return Err(Errno::EAGAIN);
        }
        if self.name.borrow().is_none() && !seqpacket && target.passcred.get() {
            self.autobind();
        }
        let creds = self.creds_for(&target, &m);
        let mut data = vec![0u8; len];
        m.data.copy_out(0, &mut data);
        target.push(self, data, m.fds, creds);
        Ok(len)
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        // A stream or seqpacket peer hangs up; unread data here (or a
        // connection never accepted) resets it (unix_release_sock).
        if let Some(p) = self.peer()
            && self.connection_oriented()
        {
            p.shut_rd.set(true);
            p.shut_wr.set(true);
            if !self.rq.borrow().is_empty() || self.embryo.get() {
                p.err.set(libc::ECONNRESET);
            }
            p.wq.notify(POLLIN | POLLOUT | POLLHUP | POLLRDHUP | POLLERR);
        } else if let Some(p) = self.peer() {
            p.wq.notify(POLLOUT);
        }
        if let Some(id) = self.bound_id.get() {
            BY_INODE.with(|m| m.borrow_mut().remove(&id));
        }
        if let Some(SockAddr::UnixAbstract(n)) = self.name.borrow().as_ref() {
            ABSTRACT.with(|m| {
                let mut m = m.borrow_mut();
                if m.get(n).is_some_and(|w| w.strong_count() == 0) {
                    m.remove(n);
                }
            });
        }
    }
}

impl FileOps for UnixSocket {
    fn read(&self, k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        self.recv(k, dst, 0).map(|r| r.len)
    }
    fn write(&self, k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        self.send(
            k,
            Send {
                data: src,
                addr: None,
                fds: Vec::new(),
                creds: None,
                current: creds_of(k, k.current.get()),
                flags: 0,
                ip: Vec::new(),
            },
        )
    }
    fn writes_whole(&self) -> bool {
        self.ty == libc::SOCK_STREAM
    }
    fn fasync(&self, file: &Rc<File>, on: bool) {
        if on {
            self.wq.add_fasync(file, POLLIN | POLLHUP | POLLERR);
        } else {
            self.wq.remove_fasync(file);
        }
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        let mut r = 0;
        if self.err.get() != 0 {
            r |= POLLERR;
        }
        if self.shut_rd.get() && self.shut_wr.get() {
            r |= POLLHUP;
        }
        if self.shut_rd.get() {
            r |= POLLIN | POLLRDHUP;
        }
        if let Some((_, q)) = self.listen.borrow().as_ref() {
            if !q.is_empty() {
                r |= POLLIN;
            }
            return r;
        }
        if !self.rq.borrow().is_empty() {
            r |= POLLIN;
        }
        let peer = self.peer();
        // A connection-oriented socket that is not connected (never was,
        // or its peer went) is hung up.
        if self.connection_oriented() && peer.is_none() {
            r |= POLLHUP;
        }
        let mut writable = self.writable();
        if writable
            && self.ty != libc::SOCK_STREAM
            && let Some(p) = &peer
            && !p
                .peer()
                .is_some_and(|pp| std::ptr::eq(Rc::as_ptr(&pp), self))
            && p.rq.borrow().len() > MAX_DGRAM_QLEN
        {
            writable = false;
        }
        if writable {
            r |= POLLOUT | POLLWRBAND;
        }
        r
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events | POLLHUP | POLLERR);
        // Datagram writers may wait for room in the peer's queue.
        if let Some(p) = self.peer() {
            p.wq.add(tid, POLLOUT | POLLHUP);
        }
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.wq.seq(mask)
    }
    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        let n = match cmd {
            // SIOCINQ: unread bytes (a stream), the next datagram's size.
            libc::FIONREAD => {
                if self.listen.borrow().is_some() {
                    return Err(Errno::EINVAL);
                }
                if self.ty == libc::SOCK_STREAM {
                    self.queued.get()
                } else {
                    self.rq.borrow().front().map_or(0, |m| m.data.len() - m.pos)
                }
            }
            // SIOCOUTQ: bytes sent and not yet read by the peer.
            libc::TIOCOUTQ => {
                if self.listen.borrow().is_some() {
                    return Err(Errno::EINVAL);
                }
                self.outq.get()
            }
            // Network device requests work on any socket (glibc's
            // if_nametoindex asks an AF_UNIX one): with the sandbox's
            // stack they answer from it, else there is no such device.
            c if super::ifreq::is_ifreq(c) && k.netstack.is_some() => {
                let ifaces = k
                    .netstack
                    .as_ref()
                    .map(|ns| ns.ifaces())
                    .unwrap_or_default();
                return super::ifreq::ioctl(k, tid, &ifaces, c, arg);
            }
            0x8910..=0x8970 => return Err(Errno::ENODEV),
            _ => return Err(Errno::ENOTTY),
        };
        k.task_mm(tid).borrow().write_val(arg, &(n as i32))?;
        Ok(0)
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(crate::vfs::stat_of(0, self.ino, libc::S_IFSOCK | 0o777, 1))
    }
    fn anon_name(&self) -> Option<String> {
        Some(format!("socket:[{}]", self.ino))
    }
    fn socket(&self) -> Option<&dyn SocketOps> {
        Some(self)
    }
    fn fs_magic(&self) -> i64 {
        crate::vfs::file::SOCKFS_MAGIC
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SocketOps for UnixSocket {
    fn domain(&self) -> i32 {
        libc::AF_UNIX
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn bind(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        if self.name.borrow().is_some() {
            return Err(Errno::EINVAL);
        }
        match addr {
            SockAddr::UnixUnnamed => {
                self.autobind();
                Ok(())
            }
            SockAddr::UnixAbstract(n) => {
                let taken =
                    ABSTRACT.with(|m| m.borrow().get(n).is_some_and(|w| w.strong_count() > 0));
                if taken {
                    return Err(Errno::EADDRINUSE);
                }
                ABSTRACT.with(|m| m.borrow_mut().insert(n.clone(), self.me.clone()));
                *self.name.borrow_mut() = Some(addr.clone());
                Ok(())
            }
            SockAddr::UnixPath(p) => {
                // The socket file is a real entry in the sandbox's file system.
                let (dir, name) = k.lookup_parent_at(tid, crate::vfs::lookup::AT_FDCWD, p)?;
                if dir.inode.lookup(k, &name).is_ok() {
                    return Err(Errno::EADDRINUSE);
                }
                if dir.mount.readonly {
                    return Err(Errno::EROFS);
                }
                let cred = k.cred(tid);
                cred.may_access(
                    &dir.inode.stat(k)?,
                    crate::vfs::perm::MAY_WRITE | crate::vfs::perm::MAY_EXEC,
                )?;
                let umask = k.task(tid).fs.borrow().umask;
                dir.inode
                    .mknod(k, &name, libc::S_IFSOCK | (0o777 & !umask), 0, &cred)?;
                let node = dir.inode.lookup(k, &name)?;
                let id = node.id();
                BY_INODE.with(|m| m.borrow_mut().insert(id, self.me.clone()));
                self.bound_id.set(Some(id));
                *self.name.borrow_mut() = Some(addr.clone());
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn listen(&self, k: &Kernel, backlog: i32) -> SysResult<()> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.peer.borrow().is_some() {
            return Err(Errno::EINVAL);
        }
        if self.name.borrow().is_none() {
            self.autobind();
        }
        let backlog = backlog.clamp(1, 4096) as usize;
        let mut l = self.listen.borrow_mut();
        match l.as_mut() {
            Some(x) => x.0 = backlog,
            None => *l = Some((backlog, VecDeque::new())),
        }
        // A listener's peer credentials are its own (unix_listen).
        self.peer_cred.set(Some(creds_of(k, k.current.get())));
        Ok(())
    }

    fn accept(&self, _k: &Kernel) -> SysResult<(Rc<dyn FileOps>, Option<SockAddr>)> {
        let mut l = self.listen.borrow_mut();
        let (_, q) = l.as_mut().ok_or(Errno::EINVAL)?;
        let s = q.pop_front().ok_or(Errno::EAGAIN)?;
        s.embryo.set(false);
        let peer_name = s
            .peer()
            .and_then(|p| p.name.borrow().clone())
            .or(Some(SockAddr::UnixUnnamed));
        Ok((s, peer_name))
    }

    fn connect(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        if !self.connection_oriented() {
            if *addr == SockAddr::Unspec {
                *self.peer.borrow_mut() = None;
                return Ok(());
            }
            let target = Self::lookup(k, tid, addr)?;
            if target.ty != self.ty {
                return Err(Errno::EPROTOTYPE);
            }
            *self.peer.borrow_mut() = Some(Rc::downgrade(&target));
            return Ok(());
        }
        if self.peer.borrow().is_some() {
            return Err(Errno::EISCONN);
        }
        if self.listen.borrow().is_some() {
            return Err(Errno::EINVAL);
        }
        let target = Self::lookup(k, tid, addr)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        let mut l = target.listen.borrow_mut();
        let Some((backlog, q)) = l.as_mut() else {
            return Err(Errno::ECONNREFUSED);
        };
        if q.len() >= *backlog {
            // Wait for the listener to accept (EAGAIN → the caller waits).
            target.wq.add(tid, POLLOUT);
            return Err(Errno::EAGAIN);
        }
        // The server side of the new connection, queued for accept: it
        // inherits the listener's SO_PASSCRED and its peer credentials
        // are the connecting process's; ours are the listener's.
        let me = creds_of(k, tid);
        let server = UnixSocket::new(self.ty, target.creds.get())?;
        *server.name.borrow_mut() = target.name.borrow().clone();
        server.passcred.set(target.passcred.get());
        server.peer_cred.set(Some(me));
        server.embryo.set(true);
        self.creds.set(me);
        self.peer_cred.set(target.peer_cred.get());
        self.link(&server);
        q.push_back(server);
        drop(l);
        target.wq.notify(POLLIN);
        Ok(())
    }

    fn send(&self, k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if self.ty == libc::SOCK_STREAM {
            self.send_stream(m)
        } else {
            self.send_dgram(k, m)
        }
    }

    fn recv(&self, _k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv> {
        let peek = flags & libc::MSG_PEEK != 0;
        let mut q = self.rq.borrow_mut();
        if q.is_empty() {
            drop(q);
            if let Some(e) = self.take_err() {
                return Err(e);
            }
            let eof = self.shut_rd.get()
                || (self.connection_oriented()
                    && self.was_connected.get()
                    && self.peer().is_none());
            if eof {
                return Ok(Recv::default());
            }
            if self.connection_oriented() && !self.was_connected.get() {
                return Err(if self.ty == libc::SOCK_STREAM {
                    Errno::EINVAL
                } else {
                    Errno::ENOTCONN
                });
            }
            return Err(Errno::EAGAIN);
        }
        let mut out = Recv::default();
        let mut creds = None;
        if self.ty == libc::SOCK_STREAM {
            // Bytes across messages, but not past a message carrying
            // descriptors (they arrive with the first byte of their
            // message), nor across different credentials.
            let mut done = 0;
            let mut i = 0;
            while i < q.len() && (done < dst.len || i == 0) {
                // Never glue a message with descriptors to another, nor
                // messages of different writers when credentials are asked.
                if i > 0
                    && (!q[i].fds.is_empty()
                        || !out.fds.is_empty()
                        || (self.passcred.get() && q[i].creds != q[0].creds))
                {
                    break;
                }
                let m = &mut q[i];
                let avail = m.data.len() - m.pos;
                let n = avail.min(dst.len - done);
                dst.copy_in(done, &m.data[m.pos..m.pos + n]);
                done += n;
                if i == 0 {
                    creds = Some(m.creds);
                    out.fds = if peek {
                        m.fds.clone()
                    } else {
                        std::mem::take(&mut m.fds)
                    };
                }
                if !peek {
                    m.pos += n;
                }
                i += 1;
            }
            if !peek {
                while q.front().is_some_and(|m| m.pos >= m.data.len()) {
                    q.pop_front();
                }
                self.queued.set(self.queued.get() - done);
            }
            out.len = done;
            out.full_len = done;
        } else {
            let m = if peek { None } else { q.pop_front() };
            let m_ref = m.as_ref().unwrap_or_else(|| q.front().unwrap());
            let n = m_ref.data.len().min(dst.len);
            dst.copy_in(0, &m_ref.data[..n]);
            out.len = n;
            out.full_len = m_ref.data.len();
            out.addr = m_ref.from.clone();
            creds = Some(m_ref.creds);
            if n < m_ref.data.len() {
                out.msg_flags |= libc::MSG_TRUNC;
            }
            match m {
                Some(mut m) => {
                    self.queued.set(self.queued.get() - m.data.len());
                    out.fds = std::mem::take(&mut m.fds);
                }
                None => out.fds = m_ref.fds.clone(),
            }
        }
        drop(q);
        if let Some(p) = self.peer() {
            p.wq.notify(POLLOUT);
        }
        self.wq.notify(POLLOUT);
        if self.passcred.get() {
            out.creds = Some(creds.flatten().unwrap_or(NOBODY));
        }
        Ok(out)
    }

    fn shutdown(&self, _k: &Kernel, how: i32) -> SysResult<()> {
        if self.connection_oriented() && self.peer().is_none() && !self.was_connected.get() {
            return Err(Errno::ENOTCONN);
        }
        match how {
            libc::SHUT_RD => self.shut_rd.set(true),
            libc::SHUT_WR => self.shut_wr.set(true),
            libc::SHUT_RDWR => {
                self.shut_rd.set(true);
                self.shut_wr.set(true);
            }
            _ => return Err(Errno::EINVAL),
        }
        // A stream peer's shutdown is the mirror image (unix_shutdown).
        if let Some(p) = self.peer()
            && self.connection_oriented()
        {
            if self.shut_wr.get() {
                p.shut_rd.set(true);
            }
            if self.shut_rd.get() {
                p.shut_wr.set(true);
            }
            p.wq.notify(POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
        }
        self.wq.notify(POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
        Ok(())
    }

    fn sockname(&self, _k: &Kernel) -> SysResult<SockAddr> {
        Ok(self.name.borrow().clone().unwrap_or(SockAddr::UnixUnnamed))
    }

    fn peername(&self, _k: &Kernel) -> SysResult<SockAddr> {
        let p = self.peer().ok_or(Errno::ENOTCONN)?;
        let n = p.name.borrow().clone();
        Ok(n.unwrap_or(SockAddr::UnixUnnamed))
    }

    fn setsockopt(&self, k: &Kernel, level: i32, name: i32, val: &[u8]) -> SysResult<()> {
        if level != libc::SOL_SOCKET {
            // AF_UNIX has no protocol-level options.
            return Err(Errno::EOPNOTSUPP);
        }
        let int = || -> SysResult<i32> {
            val.get(..4)
                .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                .ok_or(Errno::EINVAL)
        };
        let admin = || {
            k.cred(k.current.get())
                .capable(crate::vfs::perm::cap::NET_ADMIN)
        };
        match name {
            libc::SO_PASSCRED => self.passcred.set(int()? != 0),
            libc::SO_SNDBUF | libc::SO_SNDBUFFORCE => {
                if name == libc::SO_SNDBUFFORCE && !admin() {
                    return Err(Errno::EPERM);
                }
                let v = int()? as u32 as usize;
                let v = if name == libc::SO_SNDBUF {
                    v.min(BUF_MAX)
                } else {
                    v.min(i32::MAX as usize / 2)
                };
                self.sndbuf.set((v * 2).max(MIN_SNDBUF));
                // More room may let blocked writers go.
                self.wq.notify(POLLOUT);
            }
            libc::SO_RCVBUF | libc::SO_RCVBUFFORCE => {
                if name == libc::SO_RCVBUFFORCE && !admin() {
                    return Err(Errno::EPERM);
                }
                let v = int()? as u32 as usize;
                let v = if name == libc::SO_RCVBUF {
                    v.min(BUF_MAX)
                } else {
                    v.min(i32::MAX as usize / 2)
                };
                self.rcvbuf.set((v * 2).max(MIN_RCVBUF));
            }
            libc::SO_LINGER => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_ne_bytes(val[..4].try_into().unwrap());
                let secs = i32::from_ne_bytes(val[4..8].try_into().unwrap());
                self.linger
                    .set([(on != 0) as i32, if on != 0 { secs } else { 0 }]);
            }
            libc::SO_RCVTIMEO | libc::SO_SNDTIMEO => {
                let t = timeval_timeout(val)?;
                let mut all = self.timeouts.get();
                all[(name == libc::SO_SNDTIMEO) as usize] = t;
                self.timeouts.set(all);
            }
            libc::SO_RCVLOWAT => {
                let v = int()?;
                self.flags.borrow_mut().insert(name, v.max(1));
            }
            libc::SO_REUSEADDR
            | libc::SO_REUSEPORT
            | libc::SO_KEEPALIVE
            | libc::SO_OOBINLINE
            | libc::SO_BROADCAST
            | libc::SO_DONTROUTE
            | libc::SO_PASSSEC
            | libc::SO_TIMESTAMP
            | libc::SO_NO_CHECK => {
                let v = (int()? != 0) as i32;
                self.flags.borrow_mut().insert(name, v);
            }
            libc::SO_PRIORITY => {
                let v = int()?;
                if !(0..=6).contains(&v) && !admin() {
                    return Err(Errno::EPERM);
                }
                self.flags.borrow_mut().insert(name, v);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn getsockopt(&self, _k: &Kernel, level: i32, name: i32, _len: usize) -> SysResult<Vec<u8>> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        match name {
            libc::SO_TYPE => int(self.ty),
            libc::SO_DOMAIN => int(libc::AF_UNIX),
            libc::SO_PROTOCOL => int(0),
            libc::SO_ERROR => int(self.err.replace(0)),
            libc::SO_ACCEPTCONN => int(self.listen.borrow().is_some() as i32),
            libc::SO_PASSCRED => int(self.passcred.get() as i32),
            libc::SO_SNDBUF => int(self.sndbuf.get() as i32),
            libc::SO_RCVBUF => int(self.rcvbuf.get() as i32),
            libc::SO_LINGER => {
                let [on, secs] = self.linger.get();
                Ok([on.to_ne_bytes(), secs.to_ne_bytes()].concat())
            }
            libc::SO_RCVTIMEO | libc::SO_SNDTIMEO => Ok(timeval_bytes(
                self.timeouts.get()[(name == libc::SO_SNDTIMEO) as usize],
            )),
            libc::SO_RCVLOWAT => int(*self.flags.borrow().get(&name).unwrap_or(&1)),
            libc::SO_SNDLOWAT => int(1),
            libc::SO_REUSEADDR
            | libc::SO_REUSEPORT
            | libc::SO_KEEPALIVE
            | libc::SO_OOBINLINE
            | libc::SO_BROADCAST
            | libc::SO_DONTROUTE
            | libc::SO_PASSSEC
            | libc::SO_TIMESTAMP
            | libc::SO_NO_CHECK
            | libc::SO_PRIORITY => int(*self.flags.borrow().get(&name).unwrap_or(&0)),
            libc::SO_PEERCRED => {
                // Unset: pid 0 and ids -1 (cred_to_ucred of no credentials).
                let c = self.peer_cred.get().unwrap_or(Ucred {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                });
                let mut v = c.pid.to_ne_bytes().to_vec();
                v.extend_from_slice(&c.uid.to_ne_bytes());
                v.extend_from_slice(&c.gid.to_ne_bytes());
                Ok(v)
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn timeout(&self, send: bool) -> Option<Duration> {
        self.timeouts.get()[send as usize]
    }
}

pub fn creds(k: &Kernel, tid: Tid) -> Ucred {
    creds_of(k, tid)
}
