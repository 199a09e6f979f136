//! AF_INET and AF_INET6 sockets served by the sandbox's own TCP/IP stack
//! (`--network sandbox`): no host socket exists for them. Each file is
//! one socket of the kernel's [`NetStack`]; every call acts on the stack
//! and then pumps it, so loopback traffic is delivered (and its readers
//! and writers woken) before the call returns. Blocking is the syscall
//! layer's: calls that would block return EAGAIN and the task waits on
//! the file's queue, which the pump notifies.

use std::any::Any;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::rc::Rc;

use atoll_netstack::{Proto, SockId};

use super::{Recv, Send, SockAddr, SocketOps};
use crate::errno::{Errno, SysResult};
use crate::kernel::netstack::NetStack;
use crate::kernel::waitq::{self, WaitQueue};
use crate::kernel::{Kernel, Tid};
use crate::vfs::IoVecs;
use crate::vfs::file::{File, FileOps, POLLERR, POLLHUP};
use crate::vfs::perm::cap;

pub struct StackSocket {
    ns: Rc<NetStack>,
    id: SockId,
    domain: i32,
    ty: i32,
    wq: Rc<WaitQueue>,
    ino: u64,
    /// SO_RCVTIMEO/SO_SNDTIMEO as set (reported back; blocking is the
    /// kernel's, as for host sockets).
    timeouts: std::cell::Cell<([u8; 16], [u8; 16])>,
}

/// The workload's memory as the stack's byte source and sink.
struct Iov<'a>(&'a IoVecs);

impl atoll_netstack::Source for Iov<'_> {
    fn len(&self) -> usize {
        self.0.len
    }
    fn read_at(&self, at: usize, out: &mut [u8]) -> usize {
        self.0.copy_out(at, out)
    }
}

impl atoll_netstack::Sink for Iov<'_> {
    fn len(&self) -> usize {
        self.0.len
    }
    fn write_at(&self, at: usize, data: &[u8]) -> usize {
        self.0.copy_in(at, data)
    }
}

fn errno(e: i32) -> Errno {
    Errno(e)
}

/// A parsed inet sockaddr as a std address.
fn to_std(a: &SockAddr) -> Option<SocketAddr> {
    match a {
        SockAddr::Inet(b) if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        SockAddr::Inet6(b) if b.len() >= 28 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes(b[4..8].try_into().ok()?);
            let ip: [u8; 16] = b[8..24].try_into().ok()?;
            let scope = u32::from_ne_bytes(b[24..28].try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// A std address as the sockaddr the workload reads back.
fn from_std(a: SocketAddr) -> SockAddr {
    match a {
        SocketAddr::V4(v) => {
            let mut b = vec![0u8; std::mem::size_of::<libc::sockaddr_in>()];
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v.port().to_be_bytes());
            b[4..8].copy_from_slice(&v.ip().octets());
            SockAddr::Inet(b)
        }
        SocketAddr::V6(v) => {
            let mut b = vec![0u8; std::mem::size_of::<libc::sockaddr_in6>()];
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v.port().to_be_bytes());
            b[4..8].copy_from_slice(&v.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v.ip().octets());
            b[24..28].copy_from_slice(&v.scope_id().to_ne_bytes());
            SockAddr::Inet6(b)
        }
    }
}

impl StackSocket {
    /// A new socket of the stack: TCP, UDP or ICMP echo (raw sockets
    /// are refused by the caller).
    pub fn create(
        ns: &Rc<NetStack>,
        domain: i32,
        ty: i32,
        protocol: i32,
    ) -> SysResult<StackSocket> {
        let proto = match ty {
            libc::SOCK_STREAM if matches!(protocol, 0 | libc::IPPROTO_TCP) => Proto::Tcp,
            libc::SOCK_DGRAM if matches!(protocol, 0 | libc::IPPROTO_UDP) => Proto::Udp,
            // Ping sockets (what ping uses without CAP_NET_RAW): every
            // group may open them, as with the `0 2147483647`
            // net.ipv4.ping_group_range container runtimes set.
            libc::SOCK_DGRAM
                if (domain == libc::AF_INET && protocol == libc::IPPROTO_ICMP)
                    || (domain == libc::AF_INET6 && protocol == libc::IPPROTO_ICMPV6) =>
            {
                Proto::Icmp
            }
            _ => return Err(Errno::EPROTONOSUPPORT),
        };
        let id = ns.stack_mut().socket(domain, proto).map_err(errno)?;
        Ok(StackSocket::wrap(ns, id, domain, ty))
    }

    fn wrap(ns: &Rc<NetStack>, id: SockId, domain: i32, ty: i32) -> StackSocket {
        let wq = Rc::new(WaitQueue::new());
        ns.register(id, wq.clone());
        StackSocket {
            ns: ns.clone(),
            id,
            domain,
            ty,
            wq,
            ino: crate::vfs::new_ino(),
            timeouts: std::cell::Cell::new(([0; 16], [0; 16])),
        }
    }

    /// The address of a bind, connect or sendto, checked against the
    /// socket's family as Linux does.
    fn addr_of(&self, a: &SockAddr) -> SysResult<SocketAddr> {
        match (a, self.domain) {
            (SockAddr::Inet(_), libc::AF_INET) | (SockAddr::Inet6(_), libc::AF_INET6) => {
                to_std(a).ok_or(Errno::EINVAL)
            }
            (SockAddr::Inet(_), libc::AF_INET6) => Err(Errno::EINVAL),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// Runs `f` on the stack, then pumps it.
    fn with<R>(&self, f: impl FnOnce(&mut atoll_netstack::Stack) -> R) -> R {
        let r = f(&mut self.ns.stack_mut());
        self.ns.pump();
        r
    }
}

impl Drop for StackSocket {
    fn drop(&mut self) {
        self.ns.close(self.id);
    }
}

impl FileOps for StackSocket {
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
                creds: Default::default(),
                current: Default::default(),
                flags: 0,
                ip: Vec::new(),
            },
        )
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        self.ns.stack_mut().readiness(self.id)
    }
    fn wait(&self, k: &Kernel, tid: Tid, events: u32) -> bool {
        // An edge-triggered epoll waits for any change (`!0`), not for a
        // level: it has just looked at readiness and the notify count
        // itself. Checking the level here woke it at once whenever the
        // socket was merely writable, and it went straight back to
        // sleep: a busy loop for every idle keep-alive connection.
        let edge = events == !0;
        let events = events | POLLHUP | POLLERR;
        self.wq.add(tid, events);
        // The call that is about to block may itself have made the socket
        // ready (its pump delivered a loopback handshake): no notify will
        // come for that, so the task is run again at once.
        if !edge && self.poll(k) & events != 0 {
            waitq::wake(tid);
        }
        true
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.wq.seq(mask)
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        match cmd {
            libc::FIONREAD | libc::TIOCOUTQ => {
                let (rx, tx) = self.ns.stack_mut().queues(self.id).map_err(errno)?;
                let v = if cmd == libc::FIONREAD { rx } else { tx };
                let v = v.min(i32::MAX as usize) as libc::c_int;
                k.task_mm(tid).borrow().write_val(arg, &v)?;
                Ok(0)
            }
            c if super::ifreq::is_ifreq(c) => {
                super::ifreq::ioctl(k, tid, &self.ns.ifaces(), c, arg)
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
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SocketOps for StackSocket {
    fn domain(&self) -> i32 {
        self.domain
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }
    fn bind(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        let a = self.addr_of(addr)?;
        if a.port() != 0 && a.port() < 1024 && !k.cred(tid).capable(cap::NET_BIND_SERVICE) {
            return Err(Errno::EACCES);
        }
        self.with(|s| s.bind(self.id, a)).map_err(errno)
    }
    fn listen(&self, _k: &Kernel, backlog: i32) -> SysResult<()> {
        self.with(|s| s.listen(self.id, backlog)).map_err(errno)
    }
    fn accept(&self, _k: &Kernel) -> SysResult<(Rc<dyn FileOps>, Option<SockAddr>)> {
        let (nid, peer) = self.with(|s| s.accept(self.id)).map_err(errno)?;
        let new = StackSocket::wrap(&self.ns, nid, self.domain, self.ty);
        Ok((Rc::new(new), Some(from_std(peer))))
    }
    fn connect(&self, _k: &Kernel, _tid: Tid, addr: &SockAddr) -> SysResult<()> {
        let to = match addr {
            SockAddr::Unspec => None,
            a => Some(self.addr_of(a)?),
        };
        self.with(|s| s.connect(self.id, to)).map_err(errno)
    }
    fn connect_result(&self, _k: &Kernel) -> Option<SysResult<()>> {
        let r = self.ns.stack_mut().connect_result(self.id)?;
        Some(r.map_err(errno))
    }
    fn send(&self, _k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if !m.fds.is_empty() {
            return Err(Errno::EINVAL);
        }
        let to = match &m.addr {
            Some(a) => Some(self.addr_of(a)?),
            None => None,
        };
        let anc = atoll_netstack::ancillary::SendAnc::parse(
            self.domain(),
            m.ip.iter().map(|c| (c.level, c.ty, &c.data[..])),
        )
        .map_err(errno)?;
        self.with(|s| s.send_with(self.id, &Iov(m.data), to, m.flags, &anc))
            .map_err(errno)
    }
    fn recv(&self, _k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv> {
        let r = self
            .with(|s| s.recv(self.id, &Iov(dst), flags))
            .map_err(errno)?;
        Ok(Recv {
            len: r.len,
            full_len: r.full_len,
            addr: r.from.map(from_std),
            fds: Vec::new(),
            creds: None,
            msg_flags: if r.truncated { libc::MSG_TRUNC } else { 0 },
            cmsgs: r
                .cmsgs
                .into_iter()
                .map(|c| crate::net::msg::LevelCmsg {
                    level: c.level,
                    ty: c.ty,
                    data: c.data,
                })
                .collect(),
        })
    }
    fn shutdown(&self, _k: &Kernel, how: i32) -> SysResult<()> {
        self.with(|s| s.shutdown(self.id, how)).map_err(errno)
    }
    fn sockname(&self, _k: &Kernel) -> SysResult<SockAddr> {
        let a = self.ns.stack_mut().sockname(self.id).map_err(errno)?;
        Ok(from_std(a))
    }
    fn peername(&self, _k: &Kernel) -> SysResult<SockAddr> {
        let a = self.ns.stack_mut().peername(self.id).map_err(errno)?;
        Ok(from_std(a))
    }
    fn setsockopt(&self, _k: &Kernel, level: i32, name: i32, val: &[u8]) -> SysResult<()> {
        if level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO) {
            let mut t = self.timeouts.get();
            let mut b = [0u8; 16];
            let n = val.len().min(16);
            b[..n].copy_from_slice(&val[..n]);
            if name == libc::SO_RCVTIMEO {
                t.0 = b;
            } else {
                t.1 = b;
            }
            self.timeouts.set(t);
            return Ok(());
        }
        self.with(|s| s.setsockopt(self.id, level, name, val))
            .map_err(errno)
    }
    fn getsockopt(&self, _k: &Kernel, level: i32, name: i32, len: usize) -> SysResult<Vec<u8>> {
        if level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO) {
            let t = self.timeouts.get();
            let v = if name == libc::SO_RCVTIMEO { t.0 } else { t.1 };
            return Ok(v[..len.min(16)].to_vec());
        }
        let mut v = self
            .ns
            .stack_mut()
            .getsockopt(self.id, level, name)
            .map_err(errno)?;
        v.truncate(len);
        Ok(v)
    }
}
