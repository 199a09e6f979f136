//! Socket syscalls.

use std::rc::Rc;

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Kernel, Tid};
use crate::net::inet::HostSocket;
use crate::net::msg::{Cmsg, Cmsgs, LevelCmsg, MSGHDR_SIZE, MsgHdr};
use crate::net::netlink::NetlinkSocket;
use crate::net::stack::StackSocket;
use crate::net::unix::{UnixSocket, creds};
use crate::net::{Send, SockAddr, SocketOps, Ucred};
use crate::vfs::file::{POLLIN, POLLOUT};
use crate::vfs::{File, IoVecs};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "socket",
            sys_socket,
            Partial,
            "AF_UNIX in the kernel; AF_INET/AF_INET6 TCP and UDP as host sockets, or with --network sandbox on the kernel's own stack (also ICMP ping sockets), with AF_NETLINK NETLINK_ROUTE (link, address and route dumps and gets) answered from it; raw and packet refused, netlink refused in host mode; no UDP-Lite or SCTP (EPROTONOSUPPORT, as gVisor)",
        ),
        ("socketpair", sys_socketpair, Full, "AF_UNIX"),
        ("bind", sys_bind, Full, ""),
        ("listen", sys_listen, Full, ""),
        ("accept", sys_accept, Full, ""),
        ("accept4", sys_accept4, Full, ""),
        ("connect", sys_connect, Full, ""),
        ("getsockname", sys_getsockname, Full, ""),
        ("getpeername", sys_getpeername, Full, ""),
        ("sendto", sys_sendto, Full, ""),
        ("recvfrom", sys_recvfrom, Full, ""),
        (
            "sendmsg",
            sys_sendmsg,
            Partial,
            "SCM_RIGHTS and SCM_CREDENTIALS on AF_UNIX (other levels skipped, as Linux); on the sandbox stack's UDP sockets IP_TTL, IP_TOS, IP_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS, IPV6_PKTINFO, IPV6_DONTFRAG sent per datagram and IP_PKTINFO, IP_TTL, IP_TOS, IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS received (IP_RECV*/IPV6_RECV* options); a PKTINFO interface index is checked, not used to route; no IP-level ancillary data on host sockets (EINVAL)",
        ),
        ("recvmsg", sys_recvmsg, Partial, "as sendmsg"),
        ("sendmmsg", sys_sendmmsg, Full, ""),
        ("recvmmsg", sys_recvmmsg, Partial, "timeout ignored"),
        ("shutdown", sys_shutdown, Full, ""),
        (
            "setsockopt",
            sys_setsockopt,
            Partial,
            "common SOL_SOCKET/TCP/IP/IPV6 options (allowlist)",
        ),
        ("getsockopt", sys_getsockopt, Partial, "as setsockopt"),
    ]
}

fn sock(k: &Kernel, tid: Tid, fd: u64) -> SysResult<Rc<File>> {
    let f = super::fs::get_file(k, tid, fd as i32)?;
    if f.ops.socket().is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(f)
}

fn ops(f: &File) -> &dyn SocketOps {
    f.ops.socket().expect("checked by sock()")
}

fn read_addr(k: &Kernel, tid: Tid, addr: u64, len: u64) -> SysResult<SockAddr> {
    if len > 128 {
        return Err(Errno::EINVAL);
    }
    let b = k.task_mm(tid).borrow().read_vec(addr, len as usize)?;
    SockAddr::parse(&b)
}

/// Writes an address to (addr, *len_ptr) as the socket calls do.
fn write_addr(k: &Kernel, tid: Tid, a: &SockAddr, addr: u64, len_ptr: u64) -> SysResult<()> {
    if addr == 0 || len_ptr == 0 {
        return Ok(());
    }
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    let cap: u32 = mm.read_val(len_ptr)?;
    if (cap as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let b = a.to_bytes();
    let n = b.len().min(cap as usize);
    mm.write_bytes(addr, &b[..n])?;
    mm.write_val(len_ptr, &(b.len() as u32))?;
    Ok(())
}

fn sys_socket(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let domain = a[0] as i32;
    let ty = a[1] as i32 & 0xf;
    let flags = a[1] as i32 & !0xf;
    let proto = a[2] as i32;
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops: Rc<dyn crate::vfs::FileOps> = match domain {
        libc::AF_UNIX => {
            if proto != 0 && proto != libc::AF_UNIX {
                return Err(Errno::EPROTONOSUPPORT);
            }
            UnixSocket::new(ty, creds(k, tid))?
        }
        libc::AF_INET | libc::AF_INET6 => {
            if ty == libc::SOCK_RAW {
                return refused(k, tid, "raw socket");
            }
            match &k.netstack {
                Some(ns) => Rc::new(StackSocket::create(ns, domain, ty, proto)?),
                None => Rc::new(HostSocket::create(k, domain, ty, proto)?),
            }
        }
        libc::AF_PACKET => return refused(k, tid, "packet socket"),
        // NETLINK_ROUTE answered by the sandbox's stack; in host mode the
        // kernel has no netlink of its own to offer and opens none of
        // the host's.
        libc::AF_NETLINK => match &k.netstack {
            Some(ns) => {
                let admin = k.cred(tid).capable(crate::vfs::perm::cap::NET_ADMIN);
                Rc::new(NetlinkSocket::create(ns, ty, proto, admin)?)
            }
            None => return Err(Errno::EAFNOSUPPORT),
        },
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    let f = File::new(ops, libc::O_RDWR | (flags & libc::O_NONBLOCK), None);
    super::fs::install_fd(k, tid, f, flags & libc::SOCK_CLOEXEC != 0)
}

/// Raw and packet sockets: refused like the dangerous syscalls.
fn refused(k: &mut Kernel, tid: Tid, what: &str) -> SysResult<u64> {
    let nr = super::number("socket").unwrap_or(41);
    *k.stats.refused.entry(nr).or_default() += 1;
    k.log.line(&format!("refused {what} from pid {tid}"));
    Err(Errno::EPERM)
}

fn sys_socketpair(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let ty = a[1] as i32 & 0xf;
    let flags = a[1] as i32 & !0xf;
    if a[0] as i32 != libc::AF_UNIX {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (x, y) = UnixSocket::pair(ty, creds(k, tid))?;
    let fl = libc::O_RDWR | (flags & libc::O_NONBLOCK);
    let cloexec = flags & libc::SOCK_CLOEXEC != 0;
    let fx = super::fs::install_fd(k, tid, File::new(x, fl, None), cloexec)?;
    let fy = match super::fs::install_fd(k, tid, File::new(y, fl, None), cloexec) {
        Ok(v) => v,
        Err(e) => {
            let _ = k.task(tid).files.borrow_mut().remove(fx as i32);
            return Err(e);
        }
    };
    if let Err(e) = k
        .task_mm(tid)
        .borrow()
        .write_val(a[3], &[fx as i32, fy as i32])
    {
        let mut t = k.task(tid).files.borrow_mut();
        let _ = t.remove(fx as i32);
        let _ = t.remove(fy as i32);
        return Err(e);
    }
    Ok(0)
}

fn sys_bind(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let addr = read_addr(k, tid, a[1], a[2])?;
    ops(&f).bind(k, tid, &addr)?;
    Ok(0)
}

fn sys_listen(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    ops(&f).listen(k, a[1] as i32)?;
    Ok(0)
}

fn accept_common(
    k: &mut Kernel,
    tid: Tid,
    fd: u64,
    addr: u64,
    len: u64,
    flags: i32,
) -> SysResult<u64> {
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = sock(k, tid, fd)?;
    let (new, peer) = match ops(&f).accept(k) {
        Ok(v) => v,
        Err(Errno::EAGAIN) if !f.nonblocking() => {
            return sleep_or_timeout(k, tid, &f, POLLIN, false);
        }
        Err(e) => return Err(e),
    };
    let nf = File::new(new, libc::O_RDWR | (flags & libc::O_NONBLOCK), None);
    let nfd = super::fs::install_fd(k, tid, nf, flags & libc::SOCK_CLOEXEC != 0)?;
    if let Some(p) = peer {
        write_addr(k, tid, &p, addr, len)?;
    }
    Ok(nfd)
}

fn sys_accept(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    accept_common(k, tid, a[0], a[1], a[2], 0)
}

fn sys_accept4(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    accept_common(k, tid, a[0], a[1], a[2], a[3] as i32)
}

fn sys_connect(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    // A blocking connect that was started waits for its result.
    if k.task(tid).sys.started {
        if f.ops.poll(k) & (POLLOUT | crate::vfs::file::POLLERR | crate::vfs::file::POLLHUP) == 0 {
            f.ops.wait(k, tid, POLLOUT);
            return Err(Errno::EBLOCK);
        }
        return ops(&f).connect_result(k).unwrap_or(Ok(())).map(|_| 0);
    }
    let addr = read_addr(k, tid, a[1], a[2])?;
    match ops(&f).connect(k, tid, &addr) {
        Ok(()) => Ok(0),
        Err(Errno::EINPROGRESS) if !f.nonblocking() => {
            k.task_mut(tid).sys.started = true;
            f.ops.wait(k, tid, POLLOUT);
            Err(Errno::EBLOCK)
        }
        Err(Errno::EAGAIN) if !f.nonblocking() => Err(Errno::EBLOCK),
        Err(Errno::EPERM) => {
            note_egress(k);
            Err(Errno::EPERM)
        }
        Err(e) => Err(e),
    }
}

/// After a connect or send the sandbox's stack refused: a refusal worth
/// recording is written to the sandbox log at once, as the counters line
/// atoll reads at delete (the last `stats` line wins; the kernel's exit
/// writes the final one). A sandbox killed from outside, which never
/// writes that final line, so still leaves its egress refusals for the
/// audit trail.
fn note_egress(k: &mut Kernel) {
    let Some(ns) = &k.netstack else {
        return;
    };
    if ns.fold_refusals() {
        let stats = crate::kernel::control_proto::stats(k);
        k.log.line(&format!(
            "stats {}",
            serde_json::to_string(&stats).unwrap_or_default()
        ));
    }
}

fn sys_getsockname(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let n = ops(&f).sockname(k)?;
    write_addr(k, tid, &n, a[1], a[2])?;
    Ok(0)
}

fn sys_getpeername(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let n = ops(&f).peername(k)?;
    write_addr(k, tid, &n, a[1], a[2])?;
    Ok(0)
}

/// A socket call that would block: sleeps for `events`, or fails with
/// EAGAIN once the socket's timeout (SO_RCVTIMEO, SO_SNDTIMEO with
/// `send`) has passed since the call began, as Linux's sock_rcvtimeo.
pub fn sleep_or_timeout(
    k: &mut Kernel,
    tid: Tid,
    f: &Rc<File>,
    events: u32,
    send: bool,
) -> SysResult<u64> {
    if let Some(d) = f.ops.socket().and_then(|s| s.timeout(send)) {
        let t = k.task_mut(tid);
        match t.sys.deadline {
            None => t.sys.deadline = Some(crate::kernel::timer::after(d)),
            Some(at) if std::time::Instant::now() >= at => return Err(Errno::EAGAIN),
            Some(_) => {}
        }
    }
    f.ops.wait(k, tid, events);
    Err(Errno::EBLOCK)
}

/// EPIPE on a stream raises SIGPIPE (not on AF_UNIX datagrams), unless
/// MSG_NOSIGNAL.
fn epipe(k: &mut Kernel, tid: Tid, f: &File, flags: i32) -> Errno {
    let s = ops(f);
    let unix_dgram = s.domain() == libc::AF_UNIX && s.sock_type() != libc::SOCK_STREAM;
    if flags & libc::MSG_NOSIGNAL == 0 && !unix_dgram {
        let _ = k.send_task(tid, SigInfo::user(libc::SIGPIPE, 0, tid, 0));
    }
    Errno::EPIPE
}

fn do_send(k: &mut Kernel, tid: Tid, f: &Rc<File>, m: Send<'_>) -> SysResult<u64> {
    let flags = m.flags;
    let blocking = !f.nonblocking() && flags & libc::MSG_DONTWAIT == 0;
    if blocking && ops(f).sock_type() == libc::SOCK_STREAM {
        return send_whole(k, tid, f, m);
    }
    match ops(f).send(k, m) {
        Ok(n) => Ok(n as u64),
        Err(Errno::EAGAIN) if blocking => sleep_or_timeout(k, tid, f, POLLOUT, true),
        Err(Errno::EPIPE) => Err(epipe(k, tid, f, flags)),
        Err(Errno::EPERM) => {
            note_egress(k);
            Err(Errno::EPERM)
        }
        Err(e) => Err(e),
    }
}

/// A blocking stream send returns once everything is sent, sleeping for
/// room as often as needed (what was sent is kept across sleeps in
/// `sys.done`); a signal, the send timeout or the peer going ends it
/// early with the count sent.
fn send_whole(k: &mut Kernel, tid: Tid, f: &Rc<File>, m: Send<'_>) -> SysResult<u64> {
    let flags = m.flags;
    let total = m.data.len;
    let done = k.task(tid).sys.done.unwrap_or(0) as usize;
    if done > 0 && k.has_deliverable_signal(tid) {
        return Ok(done as u64);
    }
    let rest = m.data.suffix(done);
    let piece = Send {
        data: &rest,
        addr: m.addr,
        // Descriptors go with the first byte.
        fds: if done == 0 { m.fds } else { Vec::new() },
        creds: m.creds,
        current: m.current,
        flags,
        // IP-level messages go with the first byte too.
        ip: if done == 0 { m.ip } else { Vec::new() },
    };
    let done = match ops(f).send(k, piece) {
        Ok(n) => done + n,
        Err(Errno::EAGAIN) => done,
        Err(Errno::EPIPE) if done == 0 => return Err(epipe(k, tid, f, flags)),
        Err(_) if done > 0 => return Ok(done as u64),
        Err(e) => return Err(e),
    };
    if done >= total {
        return Ok(done as u64);
    }
    k.task_mut(tid).sys.done = Some(done as u64);
    match sleep_or_timeout(k, tid, f, POLLOUT, true) {
        Err(Errno::EAGAIN) if done > 0 => Ok(done as u64),
        r => r,
    }
}

fn sys_sendto(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let iov = IoVecs::single(&k.task_mm(tid).borrow(), a[1], a[2] as usize, false)?;
    let addr = if a[4] != 0 {
        Some(read_addr(k, tid, a[4], a[5])?)
    } else {
        None
    };
    let current = creds(k, tid);
    do_send(
        k,
        tid,
        &f,
        Send {
            data: &iov,
            addr,
            fds: Vec::new(),
            creds: None,
            current,
            flags: a[3] as i32,
            ip: Vec::new(),
        },
    )
}

fn sys_recvfrom(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let iov = IoVecs::single(&k.task_mm(tid).borrow(), a[1], a[2] as usize, true)?;
    let flags = a[3] as i32;
    let r = match ops(&f).recv(k, &iov, flags) {
        Ok(r) => r,
        Err(Errno::EAGAIN) if !f.nonblocking() && flags & libc::MSG_DONTWAIT == 0 => {
            return sleep_or_timeout(k, tid, &f, POLLIN, false);
        }
        Err(e) => return Err(e),
    };
    if let Some(addr) = &r.addr {
        write_addr(k, tid, addr, a[4], a[5])?;
    } else if a[5] != 0 && a[4] != 0 {
        k.task_mm(tid).borrow().write_val(a[5], &0u32)?;
    }
    Ok(if flags & libc::MSG_TRUNC != 0 {
        r.full_len
    } else {
        r.len
    } as u64)
}

fn read_msghdr(k: &Kernel, tid: Tid, addr: u64) -> SysResult<MsgHdr> {
    let b: [u8; MSGHDR_SIZE] = k.task_mm(tid).borrow().read_val(addr)?;
    Ok(MsgHdr::parse(&b))
}

/// A sendmsg's ancillary data, acted on: descriptors, checked
/// credentials, and the messages of other levels for the socket.
type Control = (Vec<Rc<File>>, Option<Ucred>, Vec<LevelCmsg>);

/// Acts on ancillary data: looks up SCM_RIGHTS descriptors and checks
/// SCM_CREDENTIALS (decoded by [`Cmsgs`]).
pub fn parse_control(k: &Kernel, tid: Tid, buf: &[u8]) -> SysResult<Control> {
    let mut fds = Vec::new();
    let mut cred = None;
    let mut ip = Vec::new();
    for msg in Cmsgs::new(buf) {
        match msg? {
            Cmsg::Level(m) => ip.push(m),
            Cmsg::Rights(nums) => {
                for fd in nums {
                    fds.push(super::fs::get_file_raw(k, tid, fd)?);
                }
            }
            Cmsg::Credentials(c) => {
                let me = creds(k, tid);
                let priv_ = k.cred(tid).capable(crate::vfs::perm::cap::SETUID);
                if !priv_ && (c.pid != me.pid || c.uid != me.uid || c.gid != me.gid) {
                    return Err(Errno::EPERM);
                }
                cred = Some(c);
            }
        }
    }
    Ok((fds, cred, ip))
}

fn sendmsg_one(k: &mut Kernel, tid: Tid, fd: u64, hdr_addr: u64, flags: i32) -> SysResult<u64> {
    let f = sock(k, tid, fd)?;
    let h = read_msghdr(k, tid, hdr_addr)?;
    let iov = super::fs::user_iovec_array(k, tid, h.iov, h.iovlen, false)?;
    let addr = if h.name != 0 && h.namelen > 0 {
        Some(read_addr(k, tid, h.name, h.namelen as u64)?)
    } else {
        None
    };
    let (fds, cred, ip) = if h.control != 0 && h.controllen > 0 {
        if h.controllen > 64 * 1024 {
            return Err(Errno::ENOBUFS);
        }
        let buf = k
            .task_mm(tid)
            .borrow()
            .read_vec(h.control, h.controllen as usize)?;
        parse_control(k, tid, &buf)?
    } else {
        (Vec::new(), None, Vec::new())
    };
    if !fds.is_empty() && ops(&f).domain() != libc::AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let current = creds(k, tid);
    do_send(
        k,
        tid,
        &f,
        Send {
            data: &iov,
            addr,
            fds,
            creds: cred,
            current,
            flags,
            ip,
        },
    )
}

fn sys_sendmsg(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    sendmsg_one(k, tid, a[0], a[1], a[2] as i32)
}

fn recvmsg_one(k: &mut Kernel, tid: Tid, fd: u64, hdr_addr: u64, flags: i32) -> SysResult<u64> {
    let f = sock(k, tid, fd)?;
    let h = read_msghdr(k, tid, hdr_addr)?;
    let iov = super::fs::user_iovec_array(k, tid, h.iov, h.iovlen, true)?;
    let r = match ops(&f).recv(k, &iov, flags) {
        Ok(r) => r,
        Err(Errno::EAGAIN) if !f.nonblocking() && flags & libc::MSG_DONTWAIT == 0 => {
            return sleep_or_timeout(k, tid, &f, POLLIN, false);
        }
        Err(e) => return Err(e),
    };
    let mm = k.task_mm(tid);
    let mut msg_flags = r.msg_flags;
    // Name.
    let mut namelen = 0u32;
    if let (Some(a), true) = (&r.addr, h.name != 0) {
        let b = a.to_bytes();
        let n = b.len().min(h.namelen as usize);
        mm.borrow().write_bytes(h.name, &b[..n])?;
        namelen = b.len() as u32;
    }
    // Ancillary data, as Linux's scm_recv: credentials first, then
    // descriptors, each truncated to the room left (MSG_CTRUNC).
    let mut control = Vec::new();
    let mut room = if h.control == 0 {
        0
    } else {
        h.controllen as usize
    };
    let cloexec = flags & libc::MSG_CMSG_CLOEXEC != 0;
    if h.control == 0 {
        if r.creds.is_some() || !r.fds.is_empty() {
            msg_flags |= libc::MSG_CTRUNC;
        }
    } else {
        if let Some(c) = r.creds {
            let data = [
                c.pid.to_ne_bytes(),
                c.uid.to_ne_bytes(),
                c.gid.to_ne_bytes(),
            ]
            .concat();
            put_cmsg(
                &mut control,
                &mut room,
                &mut msg_flags,
                libc::SOL_SOCKET,
                libc::SCM_CREDENTIALS,
                &data,
            );
        }
        if !r.fds.is_empty() {
            // scm_detach_fds: as many as fit after a header.
            let fdmax = room.saturating_sub(CMSG_HDR) / 4;
            let mut nums = Vec::new();
            for file in r.fds.iter().take(fdmax) {
                match super::fs::install_fd(k, tid, file.clone(), cloexec) {
                    Ok(n) => nums.push(n as i32),
                    Err(_) => break,
                }
            }
            if !nums.is_empty() {
                let data: Vec<u8> = nums.iter().flat_map(|n| n.to_ne_bytes()).collect();
                put_cmsg(
                    &mut control,
                    &mut room,
                    &mut msg_flags,
                    libc::SOL_SOCKET,
                    libc::SCM_RIGHTS,
                    &data,
                );
            }
            if nums.len() < r.fds.len() {
                msg_flags |= libc::MSG_CTRUNC;
            }
        }
    }
    // The protocol's own messages (IP_PKTINFO, IPV6_HOPLIMIT, ...).
    for c in &r.cmsgs {
        put_cmsg(
            &mut control,
            &mut room,
            &mut msg_flags,
            c.level,
            c.ty,
            &c.data,
        );
    }
    let m = mm.borrow();
    if !control.is_empty() {
        m.write_bytes(h.control, &control)?;
    }
    // msg_namelen (offset 8), msg_controllen (offset 40), msg_flags (offset 48).
    m.write_val(hdr_addr + 8, &namelen)?;
    m.write_val(hdr_addr + 40, &(control.len() as u64))?;
    m.write_val(hdr_addr + 48, &msg_flags)?;
    Ok(if flags & libc::MSG_TRUNC != 0 {
        r.full_len
    } else {
        r.len
    } as u64)
}

/// sizeof(struct cmsghdr).
const CMSG_HDR: usize = 16;

/// Linux's put_cmsg: a control message in the room left, truncated (with
/// MSG_CTRUNC) when it does not fit; the room shrinks by CMSG_SPACE.
fn put_cmsg(
    out: &mut Vec<u8>,
    room: &mut usize,
    flags: &mut i32,
    level: i32,
    ty: i32,
    data: &[u8],
) {
    if *room < CMSG_HDR {
        *flags |= libc::MSG_CTRUNC;
        return;
    }
    let mut len = CMSG_HDR + data.len();
    if *room < len {
        *flags |= libc::MSG_CTRUNC;
        len = *room;
    }
    out.extend_from_slice(&(len as u64).to_ne_bytes());
    out.extend_from_slice(&level.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&data[..len - CMSG_HDR]);
    let space = (CMSG_HDR + data.len()).div_ceil(8) * 8;
    let used = space.min(*room);
    out.resize(out.len() + used - len, 0);
    *room -= used;
}

fn sys_recvmsg(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    recvmsg_one(k, tid, a[0], a[1], a[2] as i32)
}

const MMSGHDR: u64 = 64;

fn sys_sendmmsg(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let n = a[2].min(1024);
    let mut done = 0;
    for i in 0..n {
        let h = a[1] + i * MMSGHDR;
        match sendmsg_one(
            k,
            tid,
            a[0],
            h,
            a[3] as i32 | if done > 0 { libc::MSG_DONTWAIT } else { 0 },
        ) {
            Ok(len) => {
                k.task_mm(tid).borrow().write_val(h + 56, &(len as u32))?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

fn sys_recvmmsg(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let n = a[2].min(1024);
    let mut done = 0;
    for i in 0..n {
        let h = a[1] + i * MMSGHDR;
        match recvmsg_one(
            k,
            tid,
            a[0],
            h,
            a[3] as i32 | if done > 0 { libc::MSG_DONTWAIT } else { 0 },
        ) {
            Ok(len) => {
                k.task_mm(tid).borrow().write_val(h + 56, &(len as u32))?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

fn sys_shutdown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    ops(&f).shutdown(k, a[1] as i32)?;
    Ok(0)
}

fn sys_setsockopt(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    if a[4] > 4096 {
        return Err(Errno::EINVAL);
    }
    let val = k.task_mm(tid).borrow().read_vec(a[3], a[4] as usize)?;
    ops(&f).setsockopt(k, a[1] as i32, a[2] as i32, &val)?;
    Ok(0)
}

fn sys_getsockopt(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = sock(k, tid, a[0])?;
    let mm = k.task_mm(tid);
    let cap: u32 = mm.borrow().read_val(a[4])?;
    if (cap as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let v = ops(&f).getsockopt(k, a[1] as i32, a[2] as i32, cap as usize)?;
    let n = v.len().min(cap as usize);
    mm.borrow().write_bytes(a[3], &v[..n])?;
    mm.borrow().write_val(a[4], &(n as u32))?;
    Ok(0)
}
