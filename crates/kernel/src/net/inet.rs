//! AF_INET and AF_INET6: host sockets owned by the kernel, in the
//! container's network namespace. The workload reaches them only through
//! these operations: addresses are parsed by the kernel, socket options
//! pass through an allowlist, and every host call is non-blocking (the
//! kernel waits on its epoll instead).

use std::any::Any;
use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use super::{Recv, Send, SockAddr, SocketOps};
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};
use crate::vfs::IoVecs;
use crate::vfs::file::{File, FileOps, POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::vfs::perm::cap;

pub struct HostSocket {
    fd: OwnedFd,
    domain: i32,
    ty: i32,
    /// Woken by the kernel's poller, which watches the socket from its
    /// creation on (every wakeup of it is an event: epoll's edges).
    wq: Rc<WaitQueue>,
    /// SO_RCVTIMEO/SO_SNDTIMEO as set by the workload (reported back;
    /// blocking is the kernel's, so they are kept but not applied).
    timeouts: Cell<([u8; 16], [u8; 16])>,
}

fn last() -> Errno {
    Errno::from_io(&std::io::Error::last_os_error())
}

impl HostSocket {
    /// A new host socket; refuses anything but TCP and UDP.
    pub fn create(k: &Kernel, domain: i32, ty: i32, protocol: i32) -> SysResult<HostSocket> {
        let ok_proto = match ty {
            libc::SOCK_STREAM => matches!(protocol, 0 | libc::IPPROTO_TCP),
            libc::SOCK_DGRAM => matches!(protocol, 0 | libc::IPPROTO_UDP),
            _ => false,
        };
        if !ok_proto {
            return Err(Errno::EPROTONOSUPPORT);
        }
        // SAFETY: socket(2).
        let fd = unsafe {
            libc::socket(
                domain,
                ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(last());
        }
        Ok(HostSocket::wrap(
            k,
            unsafe { OwnedFd::from_raw_fd(fd) },
            domain,
            ty,
        ))
    }

    fn wrap(k: &Kernel, fd: OwnedFd, domain: i32, ty: i32) -> HostSocket {
        let wq = Rc::new(WaitQueue::new());
        k.poller.watch(fd.as_raw_fd(), &wq);
        HostSocket {
            fd,
            domain,
            ty,
            wq,
            timeouts: Cell::new(([0; 16], [0; 16])),
        }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn check_family(&self, a: &SockAddr) -> SysResult<()> {
        match (a, self.domain) {
            (SockAddr::Inet(_), libc::AF_INET) => Ok(()),
            (SockAddr::Inet(_), libc::AF_INET6) => Err(Errno::EINVAL),
            (SockAddr::Inet6(_), libc::AF_INET6) => Ok(()),
            (SockAddr::Unspec, _) => Ok(()),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    fn name_of(
        &self,
        get: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
    ) -> SysResult<SockAddr> {
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buffer of the declared size.
        if unsafe {
            get(
                self.raw(),
                &mut ss as *mut _ as *mut libc::sockaddr,
                &mut len,
            )
        } < 0
        {
            return Err(last());
        }
        let b = unsafe { std::slice::from_raw_parts(&ss as *const _ as *const u8, len as usize) };
        SockAddr::parse(b)
    }
}

/// Socket options the workload may set or read on a host socket.
fn option_allowed(level: i32, name: i32) -> bool {
    match level {
        libc::SOL_SOCKET => matches!(
            name,
            libc::SO_REUSEADDR
                | libc::SO_REUSEPORT
                | libc::SO_KEEPALIVE
                | libc::SO_BROADCAST
                | libc::SO_LINGER
                | libc::SO_RCVBUF
                | libc::SO_SNDBUF
                | libc::SO_RCVLOWAT
                | libc::SO_SNDLOWAT
                | libc::SO_OOBINLINE
                | libc::SO_ERROR
                | libc::SO_TYPE
                | libc::SO_DOMAIN
                | libc::SO_PROTOCOL
                | libc::SO_ACCEPTCONN
                | libc::SO_PRIORITY
                | libc::SO_TIMESTAMP
                | libc::SO_TIMESTAMPNS
                | libc::SO_ZEROCOPY
        ),
        libc::IPPROTO_TCP => matches!(
            name,
            libc::TCP_NODELAY
                | libc::TCP_KEEPIDLE
                | libc::TCP_KEEPINTVL
                | libc::TCP_KEEPCNT
                | libc::TCP_CORK
                | libc::TCP_DEFER_ACCEPT
                | libc::TCP_QUICKACK
                | libc::TCP_FASTOPEN
                | libc::TCP_INFO
                | libc::TCP_USER_TIMEOUT
                | libc::TCP_CONGESTION
                | libc::TCP_MAXSEG
                | libc::TCP_NOTSENT_LOWAT
                | libc::TCP_FASTOPEN_CONNECT
        ),
        libc::IPPROTO_IP => matches!(
            name,
            libc::IP_TOS
                | libc::IP_TTL
                | libc::IP_MULTICAST_TTL
                | libc::IP_MULTICAST_LOOP
                | libc::IP_MULTICAST_IF
                | libc::IP_ADD_MEMBERSHIP
                | libc::IP_DROP_MEMBERSHIP
                | libc::IP_RECVERR
                | libc::IP_PKTINFO
                | libc::IP_MTU_DISCOVER
                | libc::IP_RECVTOS
                | libc::IP_FREEBIND
                | libc::IP_BIND_ADDRESS_NO_PORT
        ),
        libc::IPPROTO_IPV6 => matches!(
            name,
            libc::IPV6_V6ONLY
                | libc::IPV6_TCLASS
                | libc::IPV6_UNICAST_HOPS
                | libc::IPV6_MULTICAST_HOPS
                | libc::IPV6_MULTICAST_LOOP
                | libc::IPV6_RECVPKTINFO
                | libc::IPV6_ADD_MEMBERSHIP
                | libc::IPV6_DROP_MEMBERSHIP
                | libc::IPV6_RECVERR
                | libc::IPV6_MTU_DISCOVER
        ),
        _ => false,
    }
}

impl FileOps for HostSocket {
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
                current: Default::default(),
                flags: 0,
                ip: Vec::new(),
            },
        )
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) };
        let r = p.revents as u32;
        r & (POLLIN | POLLOUT | POLLHUP | POLLERR | crate::vfs::file::POLLRDHUP)
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events | POLLHUP | POLLERR);
        true
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.wq.seq(mask)
    }
    /// The poller watches the socket from its creation on: every wakeup
    /// of it on the host (data, room, hangup, error) is an event.
    fn events_counted(&self) -> bool {
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        let mm = k.task_mm(tid);
        let mm = mm.borrow();
        match cmd {
            libc::FIONREAD | libc::TIOCOUTQ | 0x8905 /* SIOCATMARK */ => {
                let mut v: libc::c_int = 0;
                // SAFETY: integer-out ioctls.
                if unsafe { libc::ioctl(self.raw(), cmd as _, &mut v) } < 0 {
                    return Err(last());
                }
                mm.write_val(arg, &v)?;
                Ok(0)
            }
            libc::SIOCGIFCONF => {
                // struct ifconf { int len; char *buf; }
                let conf: [u64; 2] = mm.read_val(arg)?;
                let len = (conf[0] as i32).clamp(0, 64 * 40) as usize;
                let mut buf = vec![0u8; len];
                let mut ifc: [u64; 2] = [len as u64, if len == 0 { 0 } else { buf.as_mut_ptr() as u64 }];
                // SAFETY: ifconf pointing at our buffer.
                if unsafe { libc::ioctl(self.raw(), cmd as _, ifc.as_mut_ptr()) } < 0 {
                    return Err(last());
                }
                let got = (ifc[0] as i32).max(0) as usize;
                if conf[1] != 0 && got > 0 {
                    mm.write_bytes(conf[1], &buf[..got.min(len)])?;
                }
                mm.write_val(arg, &[got as u64 & 0xffff_ffff | (conf[0] & !0xffff_ffff), conf[1]])?;
                Ok(0)
            }
            libc::SIOCGIFADDR | libc::SIOCGIFFLAGS | libc::SIOCGIFINDEX | libc::SIOCGIFNETMASK | libc::SIOCGIFHWADDR
            | libc::SIOCGIFMTU | libc::SIOCGIFNAME | libc::SIOCGIFBRDADDR | libc::SIOCGIFDSTADDR => {
                let mut ifr: [u8; 40] = mm.read_val(arg)?;
                // SAFETY: struct ifreq is 40 bytes.
                if unsafe { libc::ioctl(self.raw(), cmd as _, ifr.as_mut_ptr()) } < 0 {
                    return Err(last());
                }
                mm.write_val(arg, &ifr)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.raw(), &mut st) } < 0 {
            return Err(last());
        }
        Ok(st)
    }
    fn anon_name(&self) -> Option<String> {
        self.stat_ino().map(|i| format!("socket:[{i}]"))
    }
    fn host_fd(&self) -> Option<i32> {
        Some(self.raw())
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

impl HostSocket {
    fn stat_ino(&self) -> Option<u64> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(self.raw(), &mut st) } == 0).then_some(st.st_ino)
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        crate::kernel::poller::unregister_fd(self.raw());
    }
}

impl SocketOps for HostSocket {
    fn domain(&self) -> i32 {
        self.domain
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }
    fn bind(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        self.check_family(addr)?;
        if let Some(p) = addr.port()
            && p != 0
            && p < 1024
            && !k.cred(tid).capable(cap::NET_BIND_SERVICE)
        {
            return Err(Errno::EACCES);
        }
        let b = addr.to_bytes();
        // SAFETY: a sockaddr we built, with its length.
        if unsafe {
            libc::bind(
                self.raw(),
                b.as_ptr() as *const libc::sockaddr,
                b.len() as u32,
            )
        } < 0
        {
            return Err(last());
        }
        Ok(())
    }
    fn listen(&self, _k: &Kernel, backlog: i32) -> SysResult<()> {
        if unsafe { libc::listen(self.raw(), backlog.clamp(0, 4096)) } < 0 {
            return Err(last());
        }
        Ok(())
    }
    fn accept(&self, k: &Kernel) -> SysResult<(Rc<dyn FileOps>, Option<SockAddr>)> {
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: accept4 into our buffer.
        let fd = unsafe {
            libc::accept4(
                self.raw(),
                &mut ss as *mut _ as *mut libc::sockaddr,
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(last());
        }
        let b = unsafe { std::slice::from_raw_parts(&ss as *const _ as *const u8, len as usize) };
        let peer = SockAddr::parse(b).ok();
        let s = HostSocket::wrap(k, unsafe { OwnedFd::from_raw_fd(fd) }, self.domain, self.ty);
        Ok((Rc::new(s), peer))
    }
    fn connect(&self, _k: &Kernel, _tid: Tid, addr: &SockAddr) -> SysResult<()> {
        self.check_family(addr)?;
        let b = addr.to_bytes();
        // SAFETY: as in bind.
        if unsafe {
            libc::connect(
                self.raw(),
                b.as_ptr() as *const libc::sockaddr,
                b.len() as u32,
            )
        } < 0
        {
            return Err(last());
        }
        Ok(())
    }
    fn connect_result(&self, _k: &Kernel) -> Option<SysResult<()>> {
        let mut e: libc::c_int = 0;
        let mut len = 4u32;
        // SAFETY: SO_ERROR into an int.
        unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut e as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        Some(if e == 0 { Ok(()) } else { Err(Errno(e)) })
    }
    fn send(&self, _k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if !m.fds.is_empty() {
            return Err(Errno::EINVAL);
        }
        // No ancillary data is passed to host sockets: a message of the
        // socket's own IP level is refused rather than dropped; other
        // levels are skipped, as Linux skips them.
        let own = if self.domain() == libc::AF_INET6 {
            libc::SOL_IPV6
        } else {
            libc::SOL_IP
        };
        if m.ip.iter().any(|c| c.level == own) {
            return Err(Errno::EINVAL);
        }
        let name = m.addr.as_ref().map(|a| a.to_bytes());
        if let Some(a) = &m.addr {
            self.check_family(a)?;
        }
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(n) = &name {
            msg.msg_name = n.as_ptr() as *mut libc::c_void;
            msg.msg_namelen = n.len() as u32;
        }
        msg.msg_iov = m.data.iovs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = m.data.iovs.len();
        let flags = (m.flags
            & (libc::MSG_OOB | libc::MSG_DONTROUTE | libc::MSG_EOR | libc::MSG_MORE))
            | libc::MSG_DONTWAIT
            | libc::MSG_NOSIGNAL;
        // SAFETY: msghdr over our iovecs and name.
        let n = unsafe { libc::sendmsg(self.raw(), &msg, flags) };
        if n < 0 {
            return Err(last());
        }
        Ok(n as usize)
    }
    fn recv(&self, _k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv> {
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut ss as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        msg.msg_iov = dst.iovs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = dst.iovs.len();
        let flags = (flags
            & (libc::MSG_OOB | libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_WAITALL))
            | libc::MSG_DONTWAIT;
        // SAFETY: msghdr over our buffers.
        let n = unsafe { libc::recvmsg(self.raw(), &mut msg, flags & !libc::MSG_WAITALL) };
        if n < 0 {
            return Err(last());
        }
        let addr = if msg.msg_namelen >= 2 {
            let b = unsafe {
                std::slice::from_raw_parts(&ss as *const _ as *const u8, msg.msg_namelen as usize)
            };
            SockAddr::parse(b).ok()
        } else {
            None
        };
        let n = n as usize;
        Ok(Recv {
            len: n.min(dst.len),
            full_len: n,
            addr,
            fds: Vec::new(),
            creds: None,
            msg_flags: msg.msg_flags,
            cmsgs: Vec::new(),
        })
    }
    fn shutdown(&self, _k: &Kernel, how: i32) -> SysResult<()> {
        if unsafe { libc::shutdown(self.raw(), how) } < 0 {
            return Err(last());
        }
        Ok(())
    }
    fn sockname(&self, _k: &Kernel) -> SysResult<SockAddr> {
        self.name_of(libc::getsockname)
    }
    fn peername(&self, _k: &Kernel) -> SysResult<SockAddr> {
        self.name_of(libc::getpeername)
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
        if !option_allowed(level, name) {
            return Err(Errno::ENOPROTOOPT);
        }
        // SAFETY: passing the workload's value bytes with their length.
        if unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                val.as_ptr() as *const libc::c_void,
                val.len() as u32,
            )
        } < 0
        {
            return Err(last());
        }
        Ok(())
    }
    fn timeout(&self, send: bool) -> Option<std::time::Duration> {
        let t = self.timeouts.get();
        let v = if send { t.1 } else { t.0 };
        let sec = i64::from_ne_bytes(v[..8].try_into().unwrap());
        let usec = i64::from_ne_bytes(v[8..].try_into().unwrap());
        if sec < 0 || !(0..1_000_000).contains(&usec) || (sec == 0 && usec == 0) {
            return None;
        }
        Some(std::time::Duration::new(sec as u64, usec as u32 * 1000))
    }

    fn getsockopt(&self, _k: &Kernel, level: i32, name: i32, len: usize) -> SysResult<Vec<u8>> {
        if level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO) {
            let t = self.timeouts.get();
            let v = if name == libc::SO_RCVTIMEO { t.0 } else { t.1 };
            return Ok(v[..len.min(16)].to_vec());
        }
        if !option_allowed(level, name) {
            return Err(Errno::ENOPROTOOPT);
        }
        let mut buf = vec![0u8; len.min(512)];
        let mut l = buf.len() as u32;
        // SAFETY: buffer of the declared length.
        if unsafe {
            libc::getsockopt(
                self.raw(),
                level,
                name,
                buf.as_mut_ptr() as *mut libc::c_void,
                &mut l,
            )
        } < 0
        {
            return Err(last());
        }
        buf.truncate(l as usize);
        Ok(buf)
    }
}
