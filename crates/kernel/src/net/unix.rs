//! AF_UNIX sockets, entirely inside the kernel: stream, datagram and
//! seqpacket; socketpair; binding to paths (a socket file in the sandbox's
//! file system) and abstract names (the sandbox's own namespace);
//! SCM_RIGHTS and SCM_CREDENTIALS.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use super::{Recv, Send, SockAddr, SocketOps, Ucred};
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};
use crate::vfs::IoVecs;
use crate::vfs::file::{File, FileOps, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLWRBAND};
use crate::vfs::inode::FileType;

/// Bytes a socket may hold unread before senders block.
const RCVBUF: usize = 256 * 1024;

struct Msg {
    data: Vec<u8>,
    /// Read position (streams consume messages piecewise).
    pos: usize,
    fds: Vec<Rc<File>>,
    creds: Ucred,
    from: Option<SockAddr>,
}

pub struct UnixSocket {
    ty: i32,
    me: Weak<UnixSocket>,
    rq: RefCell<VecDeque<Msg>>,
    queued: Cell<usize>,
    wq: WaitQueue,
    name: RefCell<Option<SockAddr>>,
    bound_id: Cell<Option<(u64, u64)>>,
    peer: RefCell<Option<Weak<UnixSocket>>>,
    /// Had a peer once (stream/seqpacket): its loss means end of file.
    was_connected: Cell<bool>,
    listen: RefCell<Option<(usize, VecDeque<Rc<UnixSocket>>)>>,
    shut_rd: Cell<bool>,
    shut_wr: Cell<bool>,
    passcred: Cell<bool>,
    /// Credentials of the process that created (or connected) it: SO_PEERCRED.
    creds: Cell<Ucred>,
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
            shut_rd: Cell::new(false),
            shut_wr: Cell::new(false),
            passcred: Cell::new(false),
            creds: Cell::new(creds),
            ino: crate::vfs::new_ino(),
        }))
    }

    /// A connected pair (socketpair).
    pub fn pair(ty: i32, creds: Ucred) -> SysResult<(Rc<UnixSocket>, Rc<UnixSocket>)> {
        let a = UnixSocket::new(ty, creds)?;
        let b = UnixSocket::new(ty, creds)?;
        a.link(&b);
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

    fn push(&self, m: Msg) {
        self.queued.set(self.queued.get() + m.data.len() - m.pos);
        self.rq.borrow_mut().push_back(m);
        self.wq.notify(POLLIN);
    }

    fn has_room(&self, n: usize) -> bool {
        self.queued.get() == 0 || self.queued.get() + n <= RCVBUF
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
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if let Some(p) = self.peer() {
            p.wq.notify(POLLIN | POLLOUT | POLLHUP);
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
        let creds = self.creds.get();
        self.send(
            k,
            Send {
                data: src,
                addr: None,
                fds: Vec::new(),
                creds,
                flags: 0,
            },
        )
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        let mut r = 0;
        if let Some((_, q)) = self.listen.borrow().as_ref() {
            return if q.is_empty() { 0 } else { POLLIN };
        }
        // Linux's unix_poll: both directions shut is a hangup, a shut
        // read side reads end of file.
        if self.shut_rd.get() && self.shut_wr.get() {
            r |= POLLHUP;
        }
        if self.shut_rd.get() {
            r |= POLLIN | POLLRDHUP;
        }
        if !self.rq.borrow().is_empty() {
            r |= POLLIN;
        }
        let peer = self.peer();
        if self.connection_oriented() && self.was_connected.get() && peer.is_none() {
            r |= POLLIN | POLLHUP | POLLRDHUP;
        }
        match &peer {
            Some(p) if p.has_room(1) => r |= POLLOUT | POLLWRBAND,
            None if !self.connection_oriented() => r |= POLLOUT | POLLWRBAND,
            _ => {}
        }
        r
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events | POLLHUP);
        // Writers wait for room at the peer.
        if let Some(p) = self.peer() {
            p.wq.add(tid, POLLIN | POLLOUT | POLLHUP);
        }
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn event_seq(&self) -> u64 {
        self.wq.seq()
    }
    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        match cmd {
            libc::FIONREAD => {
                let n = if self.ty == libc::SOCK_STREAM {
                    self.queued.get()
                } else {
                    self.rq.borrow().front().map_or(0, |m| m.data.len())
                } as i32;
                k.task_mm(tid).borrow().write_val(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
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

    fn listen(&self, _k: &Kernel, backlog: i32) -> SysResult<()> {
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
        Ok(())
    }

    fn accept(&self, _k: &Kernel) -> SysResult<(Rc<dyn FileOps>, Option<SockAddr>)> {
        let mut l = self.listen.borrow_mut();
        let (_, q) = l.as_mut().ok_or(Errno::EINVAL)?;
        let s = q.pop_front().ok_or(Errno::EAGAIN)?;
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
        // The server side of the new connection, queued for accept.
        let server = UnixSocket::new(self.ty, target.creds.get())?;
        *server.name.borrow_mut() = target.name.borrow().clone();
        self.creds.set(creds_of(k, tid));
        self.link(&server);
        q.push_back(server);
        drop(l);
        target.wq.notify(POLLIN);
        Ok(())
    }

    fn send(&self, k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if self.shut_wr.get() {
            return Err(Errno::EPIPE);
        }
        let target = match (&m.addr, self.connection_oriented()) {
            (Some(a), false) => Self::lookup(k, k.current.get(), a)?,
            (_, true) => match self.peer() {
                Some(p) => p,
                None if self.was_connected.get() => return Err(Errno::EPIPE),
                None => return Err(Errno::ENOTCONN),
            },
            (None, false) => match self.peer() {
                Some(p) => p,
                None if self.peer.borrow().is_some() => return Err(Errno::ECONNREFUSED),
                None => return Err(Errno::ENOTCONN),
            },
        };
        if target.shut_rd.get() {
            return Err(Errno::EPIPE);
        }
        let len = m.data.len;
        if len > RCVBUF && self.ty != libc::SOCK_STREAM {
            return Err(Errno::EMSGSIZE);
        }
        if !target.has_room(if self.ty == libc::SOCK_STREAM { 1 } else { len }) {
            return Err(Errno::EAGAIN);
        }
        let take = if self.ty == libc::SOCK_STREAM {
            len.min(RCVBUF.saturating_sub(target.queued.get()).max(1))
        } else {
            len
        };
        let mut data = vec![0u8; take];
        m.data.copy_out(0, &mut data);
        if self.name.borrow().is_none() && !self.connection_oriented() && target.passcred.get() {
            self.autobind();
        }
        target.push(Msg {
            data,
            pos: 0,
            fds: m.fds,
            creds: m.creds,
            from: self.name.borrow().clone(),
        });
        Ok(take)
    }

    fn recv(&self, _k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv> {
        let peek = flags & libc::MSG_PEEK != 0;
        let mut q = self.rq.borrow_mut();
        if q.is_empty() {
            let eof = self.shut_rd.get()
                || (self.connection_oriented()
                    && self.was_connected.get()
                    && self.peer().is_none());
            if eof {
                return Ok(Recv::default());
            }
            if self.connection_oriented() && !self.was_connected.get() {
                return Err(Errno::ENOTCONN);
            }
            return Err(Errno::EAGAIN);
        }
        let mut out = Recv::default();
        if self.ty == libc::SOCK_STREAM {
            // Bytes across messages, but not past a message carrying
            // descriptors (they arrive with the first byte of their message).
            let mut done = 0;
            let mut i = 0;
            while i < q.len() && done < dst.len {
                if i > 0 && !q[i].fds.is_empty() {
                    break;
                }
                let m = &mut q[i];
                let avail = m.data.len() - m.pos;
                let n = avail.min(dst.len - done);
                dst.copy_in(done, &m.data[m.pos..m.pos + n]);
                done += n;
                if i == 0 && out.fds.is_empty() && !peek {
                    out.fds = std::mem::take(&mut m.fds);
                    out.creds = Some(m.creds);
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
            out.creds = Some(m_ref.creds);
            if n < m_ref.data.len() {
                out.msg_flags |= libc::MSG_TRUNC;
            }
            if let Some(m) = m {
                self.queued.set(self.queued.get() - m.data.len());
                out.fds = m.fds;
            }
        }
        drop(q);
        if let Some(p) = self.peer() {
            p.wq.notify(POLLOUT);
        }
        self.wq.notify(POLLOUT);
        if !self.passcred.get() {
            out.creds = None;
        }
        Ok(out)
    }

    fn shutdown(&self, _k: &Kernel, how: i32) -> SysResult<()> {
        if self.connection_oriented() && self.peer().is_none() {
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

    fn setsockopt(&self, _k: &Kernel, level: i32, name: i32, val: &[u8]) -> SysResult<()> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        let v = val
            .get(..4)
            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        match name {
            libc::SO_PASSCRED => self.passcred.set(v != 0),
            libc::SO_RCVBUF
            | libc::SO_SNDBUF
            | libc::SO_REUSEADDR
            | libc::SO_RCVTIMEO
            | libc::SO_SNDTIMEO
            | libc::SO_KEEPALIVE
            | libc::SO_LINGER
            | libc::SO_PASSSEC
            | libc::SO_RCVLOWAT => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn getsockopt(&self, _k: &Kernel, level: i32, name: i32, _len: usize) -> SysResult<Vec<u8>> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        match name {
            libc::SO_TYPE => int(self.ty),
            libc::SO_DOMAIN => int(libc::AF_UNIX),
            libc::SO_PROTOCOL | libc::SO_ERROR => int(0),
            libc::SO_ACCEPTCONN => int(self.listen.borrow().is_some() as i32),
            libc::SO_PASSCRED => int(self.passcred.get() as i32),
            libc::SO_RCVBUF | libc::SO_SNDBUF => int(RCVBUF as i32),
            libc::SO_PEERCRED => {
                let c = self.peer().map(|p| p.creds.get()).ok_or(Errno::ENOTCONN)?;
                let mut v = c.pid.to_ne_bytes().to_vec();
                v.extend_from_slice(&c.uid.to_ne_bytes());
                v.extend_from_slice(&c.gid.to_ne_bytes());
                Ok(v)
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }
}

pub fn creds(k: &Kernel, tid: Tid) -> Ucred {
    creds_of(k, tid)
}
