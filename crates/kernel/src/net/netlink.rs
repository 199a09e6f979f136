//! AF_NETLINK, NETLINK_ROUTE only, with `--network sandbox`: the
//! workload's `ip addr`, `ip route`, getifaddrs and if_nameindex ask
//! this socket, and the sandbox's own stack answers
//! (`atoll_netstack::rtnetlink`). No host netlink socket exists; the
//! host's interfaces are never seen. A request is served when it is
//! sent: its replies wait in this socket's queue as datagrams, bounded
//! by the receive buffer as Linux bounds them (replies past it are lost
//! and the next receive fails with ENOBUFS). Messages between user
//! sockets and multicast notifications are not served (the sandbox's
//! network does not change after start).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use atoll_netstack::rtnetlink::{self, Asker};

use super::{Recv, Send, SockAddr, SocketOps};
use crate::errno::{Errno, SysResult};
use crate::kernel::netstack::NetStack;
use crate::kernel::waitq::{self, WaitQueue};
use crate::kernel::{Kernel, Tid};
use crate::vfs::IoVecs;
use crate::vfs::file::{File, FileOps, POLLIN, POLLOUT};

const SOL_NETLINK: i32 = 270;
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_DROP_MEMBERSHIP: i32 = 2;
const NETLINK_PKTINFO: i32 = 3;
const NETLINK_BROADCAST_ERROR: i32 = 4;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NETLINK_LISTEN_ALL_NSID: i32 = 8;
const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NETLINK_GET_STRICT_CHK: i32 = 12;
/// rtnetlink's multicast groups (RTNLGRP_MAX).
const GROUPS: u32 = 32;

/// net.core.{r,w}mem_default and _max, as Linux ships them.
const BUF_DEFAULT: usize = 212_992;
const BUF_MAX: usize = 212_992;
/// SOCK_MIN_RCVBUF / SNDBUF on 64-bit.
const BUF_MIN: usize = 2_304;

#[derive(Default)]
struct Opts {
    pktinfo: bool,
    broadcast_error: bool,
    no_enobufs: bool,
    listen_all_nsid: bool,
    cap_ack: bool,
    ext_ack: bool,
    strict: bool,
    rcvbuf: usize,
    sndbuf: usize,
    timeouts: ([u8; 16], [u8; 16]),
}

pub struct NetlinkSocket {
    ns: Rc<NetStack>,
    ty: i32,
    /// Bound port id (0: not bound yet).
    portid: Cell<u32>,
    /// Multicast groups joined (bit n-1: group n); nothing is ever sent
    /// to them, but `ip monitor` and others expect the subscription.
    groups: Cell<u64>,
    queue: RefCell<VecDeque<Vec<u8>>>,
    queued: Cell<usize>,
    /// Replies were lost to a full queue: the next receive says ENOBUFS.
    overrun: Cell<bool>,
    opts: RefCell<Opts>,
    /// CAP_NET_ADMIN of the opener (Linux checks the socket's opener).
    net_admin: bool,
    wq: Rc<WaitQueue>,
    ino: u64,
}

impl NetlinkSocket {
    /// A NETLINK_ROUTE socket; other netlink protocols are not offered.
    pub fn create(ns: &Rc<NetStack>, ty: i32, protocol: i32, net_admin: bool) -> SysResult<Self> {
        if ty != libc::SOCK_RAW && ty != libc::SOCK_DGRAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != libc::NETLINK_ROUTE {
            return Err(Errno::EPROTONOSUPPORT);
        }
        Ok(NetlinkSocket {
            ns: ns.clone(),
            ty,
            portid: Cell::new(0),
            groups: Cell::new(0),
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            overrun: Cell::new(false),
            opts: RefCell::new(Opts {
                rcvbuf: BUF_DEFAULT,
                sndbuf: BUF_DEFAULT,
                ..Default::default()
            }),
            net_admin,
            wq: Rc::new(WaitQueue::new()),
            ino: crate::vfs::new_ino(),
        })
    }

    /// Binds to `pid`, or (0) to a free port id: the caller's process
    /// id first, then Linux's negative rover.
    fn bind_port(&self, pid: u32, tgid: u32) -> SysResult<()> {
        let mut ports = self.ns.nl_ports.borrow_mut();
        let chosen = if pid != 0 {
            if ports.contains(&pid) {
                return Err(Errno::EADDRINUSE);
            }
            pid
        } else if tgid != 0 && !ports.contains(&tgid) {
            tgid
        } else {
            let mut p = (-4096i32) as u32;
            while ports.contains(&p) {
                p = p.wrapping_sub(1);
            }
            p
        };
        ports.insert(chosen);
        self.portid.set(chosen);
        Ok(())
    }

    fn autobind(&self, tgid: u32) -> SysResult<()> {
        if self.portid.get() == 0 {
            self.bind_port(0, tgid)?;
        }
        Ok(())
    }

    fn set_groups(&self, g: u32) {
        self.groups
            .set((self.groups.get() & !0xffff_ffff) | g as u64);
    }
}

impl Drop for NetlinkSocket {
    fn drop(&mut self) {
        let p = self.portid.get();
        if p != 0 {
            self.ns.nl_ports.borrow_mut().remove(&p);
        }
    }
}

fn int_opt(val: &[u8]) -> SysResult<i32> {
    if val.len() < 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_ne_bytes(val[..4].try_into().unwrap()))
}

fn buf_size(v: i32) -> usize {
    ((v.max(0) as usize).min(BUF_MAX) * 2).max(BUF_MIN)
}

impl FileOps for NetlinkSocket {
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
        let mut m = POLLOUT;
        if !self.queue.borrow().is_empty() || self.overrun.get() {
            m |= POLLIN;
        }
        m
    }
    fn wait(&self, k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events);
        if self.poll(k) & events != 0 {
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
            libc::FIONREAD => {
                let v = self.queue.borrow().front().map_or(0, |d| d.len()) as libc::c_int;
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

impl SocketOps for NetlinkSocket {
    fn domain(&self) -> i32 {
        libc::AF_NETLINK
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }
    fn bind(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        let SockAddr::Netlink { pid, groups } = *addr else {
            return Err(Errno::EINVAL);
        };
        let bound = self.portid.get();
        if bound != 0 && pid != 0 && pid != bound {
            return Err(Errno::EINVAL);
        }
        if bound == 0 {
            self.bind_port(pid, super::unix::creds(k, tid).pid as u32)?;
        }
        self.set_groups(groups);
        Ok(())
    }
    fn listen(&self, _k: &Kernel, _backlog: i32) -> SysResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    fn accept(&self, _k: &Kernel) -> SysResult<(Rc<dyn FileOps>, Option<SockAddr>)> {
        Err(Errno::EOPNOTSUPP)
    }
    fn connect(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()> {
        match *addr {
            SockAddr::Unspec => Ok(()),
            // Only the kernel (port 0) answers here.
            SockAddr::Netlink { pid: 0, groups: 0 } => {
                self.autobind(super::unix::creds(k, tid).pid as u32)
            }
            SockAddr::Netlink { .. } => Err(Errno::EPERM),
            _ => Err(Errno::EINVAL),
        }
    }
    fn send(&self, _k: &Kernel, m: Send<'_>) -> SysResult<usize> {
        if !m.fds.is_empty() {
            return Err(Errno::EINVAL);
        }
        match m.addr {
            None | Some(SockAddr::Netlink { pid: 0, groups: 0 }) => {}
            // Multicast from user space is not allowed on NETLINK_ROUTE
            // without CAP_NET_ADMIN; other ports are other sockets, which
            // this kernel does not route to.
            Some(SockAddr::Netlink { groups, .. }) if groups != 0 => return Err(Errno::EPERM),
            Some(SockAddr::Netlink { .. }) => return Err(Errno::ECONNREFUSED),
            Some(_) => return Err(Errno::EINVAL),
        }
        let (sndbuf, asker) = {
            let o = self.opts.borrow();
            (
                o.sndbuf,
                Asker {
                    portid: 0,
                    strict: o.strict,
                    cap_ack: o.cap_ack,
                    net_admin: self.net_admin,
                },
            )
        };
        let len = m.data.len;
        if len > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        self.autobind(m.current.pid as u32)?;
        let mut buf = vec![0u8; len];
        let got = m.data.copy_out(0, &mut buf);
        buf.truncate(got);
        let asker = Asker {
            portid: self.portid.get(),
            ..asker
        };
        let room = self.opts.borrow().rcvbuf.saturating_sub(self.queued.get());
        let (replies, lost) = rtnetlink::serve(&self.ns.ifaces(), &buf, &asker, room);
        if lost && !self.opts.borrow().no_enobufs {
            self.overrun.set(true);
        }
        if !replies.is_empty() || lost {
            let mut q = self.queue.borrow_mut();
            for r in replies {
                self.queued.set(self.queued.get() + r.len());
                q.push_back(r);
            }
            drop(q);
            self.wq.notify(POLLIN);
        }
        Ok(len)
    }
    fn recv(&self, _k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv> {
        if flags & libc::MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.overrun.replace(false) {
            return Err(Errno::ENOBUFS);
        }
        let peek = flags & libc::MSG_PEEK != 0;
        let mut q = self.queue.borrow_mut();
        let Some(d) = q.front() else {
            return Err(Errno::EAGAIN);
        };
        let n = dst.copy_in(0, &d[..d.len().min(dst.len)]);
        let full = d.len();
        if !peek {
            q.pop_front();
            self.queued.set(self.queued.get().saturating_sub(full));
        }
        Ok(Recv {
            len: n,
            full_len: full,
            addr: Some(SockAddr::Netlink { pid: 0, groups: 0 }),
            fds: Vec::new(),
            creds: None,
            msg_flags: if full > n { libc::MSG_TRUNC } else { 0 },
            cmsgs: Vec::new(),
        })
    }
    fn shutdown(&self, _k: &Kernel, _how: i32) -> SysResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    fn sockname(&self, _k: &Kernel) -> SysResult<SockAddr> {
        Ok(SockAddr::Netlink {
            pid: self.portid.get(),
            groups: self.groups.get() as u32,
        })
    }
    fn peername(&self, _k: &Kernel) -> SysResult<SockAddr> {
        // Never connected to anyone but the kernel.
        Ok(SockAddr::Netlink { pid: 0, groups: 0 })
    }
    fn setsockopt(&self, _k: &Kernel, level: i32, name: i32, val: &[u8]) -> SysResult<()> {
        let mut o = self.opts.borrow_mut();
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) => {
                let mut b = [0u8; 16];
                let n = val.len().min(16);
                b[..n].copy_from_slice(&val[..n]);
                if name == libc::SO_RCVTIMEO {
                    o.timeouts.0 = b;
                } else {
                    o.timeouts.1 = b;
                }
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => o.rcvbuf = buf_size(int_opt(val)?),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => o.sndbuf = buf_size(int_opt(val)?),
            (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE | libc::SO_SNDBUFFORCE) => {
                if !self.net_admin {
                    return Err(Errno::EPERM);
                }
                let v = ((int_opt(val)?.max(0) as usize) * 2).max(BUF_MIN);
                if name == libc::SO_RCVBUFFORCE {
                    o.rcvbuf = v;
                } else {
                    o.sndbuf = v;
                }
            }
            (libc::SOL_SOCKET, libc::SO_PASSCRED | libc::SO_TIMESTAMP) => {
                int_opt(val)?;
            }
            (SOL_NETLINK, NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP) => {
                let g = int_opt(val)? as u32;
                if g == 0 || g > GROUPS {
                    return Err(Errno::EINVAL);
                }
                let bit = 1u64 << (g - 1);
                let cur = self.groups.get();
                self.groups.set(if name == NETLINK_ADD_MEMBERSHIP {
                    cur | bit
                } else {
                    cur & !bit
                });
            }
            (SOL_NETLINK, n) => {
                let on = int_opt(val)? != 0;
                match n {
                    NETLINK_PKTINFO => o.pktinfo = on,
                    NETLINK_BROADCAST_ERROR => o.broadcast_error = on,
                    NETLINK_NO_ENOBUFS => o.no_enobufs = on,
                    NETLINK_LISTEN_ALL_NSID => o.listen_all_nsid = on,
                    NETLINK_CAP_ACK => o.cap_ack = on,
                    NETLINK_EXT_ACK => o.ext_ack = on,
                    NETLINK_GET_STRICT_CHK => o.strict = on,
                    _ => return Err(Errno::ENOPROTOOPT),
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
    fn getsockopt(&self, _k: &Kernel, level: i32, name: i32, len: usize) -> SysResult<Vec<u8>> {
        let o = self.opts.borrow();
        let int = |v: i32| Ok(v.to_ne_bytes()[..len.min(4)].to_vec());
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => int(self.ty),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(libc::AF_NETLINK),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(libc::NETLINK_ROUTE),
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => int(o.rcvbuf as i32),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => int(o.sndbuf as i32),
            (libc::SOL_SOCKET, libc::SO_ERROR) => int(if self.overrun.replace(false) {
                libc::ENOBUFS
            } else {
                0
            }),
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => Ok(o.timeouts.0[..len.min(16)].to_vec()),
            (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => Ok(o.timeouts.1[..len.min(16)].to_vec()),
            (SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS) => {
                Ok((self.groups.get() as u32).to_ne_bytes()[..len.min(4)].to_vec())
            }
            (SOL_NETLINK, n) => {
                if len < 4 {
                    return Err(Errno::EINVAL);
                }
                let v = match n {
                    NETLINK_PKTINFO => o.pktinfo,
                    NETLINK_BROADCAST_ERROR => o.broadcast_error,
                    NETLINK_NO_ENOBUFS => o.no_enobufs,
                    NETLINK_LISTEN_ALL_NSID => o.listen_all_nsid,
                    NETLINK_CAP_ACK => o.cap_ack,
                    NETLINK_EXT_ACK => o.ext_ack,
                    NETLINK_GET_STRICT_CHK => o.strict,
                    _ => return Err(Errno::ENOPROTOOPT),
                };
                int(v as i32)
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }
    fn timeout(&self, send: bool) -> Option<std::time::Duration> {
        let o = self.opts.borrow();
        let b = if send { o.timeouts.1 } else { o.timeouts.0 };
        let s = i64::from_ne_bytes(b[0..8].try_into().unwrap());
        let us = i64::from_ne_bytes(b[8..16].try_into().unwrap());
        if s <= 0 && us <= 0 {
            return None;
        }
        Some(
            std::time::Duration::from_secs(s.max(0) as u64)
                + std::time::Duration::from_micros(us.clamp(0, 999_999) as u64),
        )
    }
}
