//! TCP and the calls every socket has (bind, connect, send, recv,
//! shutdown), with Linux's answers in every state.

use std::net::{IpAddr, SocketAddr};

use smoltcp::socket::tcp;
use smoltcp::time::Duration as SDuration;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::Errno;
use crate::ports::Binding;
use crate::stack::{Conn, Listener, Proto, Sink, SockId, Source, St, Stack, from_ip, to_ip, unmap};

/// How long a connect keeps sending SYNs (Linux: 6 retries, ~127 s).
const CONNECT_TIMEOUT: SDuration = SDuration::from_secs(127);

/// What a receive got.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes copied.
    pub len: usize,
    /// The datagram's whole length (MSG_TRUNC).
    pub full_len: usize,
    pub from: Option<SocketAddr>,
    pub truncated: bool,
    /// IP-level control messages the socket's options ask for
    /// (IP_PKTINFO, IPV6_HOPLIMIT, ...), in Linux's order.
    pub cmsgs: Vec<crate::ancillary::Cmsg>,
}

impl Stack {
    fn binding(&self, id: SockId, addr: IpAddr) -> Result<Binding, Errno> {
        let s = self.sock(id)?;
        let (v4, v6) = match (s.family, addr) {
            (libc::AF_INET, _) => (true, false),
            (_, IpAddr::V4(_)) => (true, false),
            (_, IpAddr::V6(a)) if a.is_unspecified() => (!s.opts.v6only, true),
            (_, IpAddr::V6(_)) => (false, true),
        };
        Ok(Binding {
            id,
            addr,
            v4,
            v6,
            reuseaddr: s.opts.reuseaddr,
            reuseport: s.opts.reuseport,
            listening: false,
        })
    }

    /// bind(2). `addr` is of the socket's family (the kernel checked).
    pub fn bind(&mut self, id: SockId, addr: SocketAddr) -> Result<(), Errno> {
        let s = self.sock(id)?;
        if s.bound || !matches!(s.st, St::Idle) {
            return Err(libc::EINVAL);
        }
        let (family, proto, v6only, freebind) = (s.family, s.proto, s.opts.v6only, s.opts.freebind);
        let ip = if family == libc::AF_INET6 {
            let u = unmap(addr.ip());
            if u.is_ipv4() && v6only {
                return Err(libc::EINVAL);
            }
            u
        } else {
            addr.ip()
        };
        let multicast = match ip {
            IpAddr::V4(v) => v.is_multicast() || v.is_broadcast(),
            IpAddr::V6(v) => v.is_multicast(),
        };
        let bindable = ip.is_unspecified()
            || self.is_local(&ip)
            || (multicast && proto == Proto::Udp)
            || freebind;
        if !bindable {
            return Err(libc::EADDRNOTAVAIL);
        }
        let b = self.binding(id, ip)?;
        let port = self.ports.bind(proto, addr.port(), b)?;
        let s = self.sock_mut(id)?;
        s.local = SocketAddr::new(ip, port);
        s.bound = true;
        if proto != Proto::Tcp {
            self.open_dgram(id)?;
        }
        Ok(())
    }

    /// Binds an unbound socket to an ephemeral port on the wildcard.
    pub(crate) fn autobind(&mut self, id: SockId) -> Result<(), Errno> {
        let s = self.sock(id)?;
        if s.bound {
            return Ok(());
        }
        let wild = s.local.ip();
        let proto = s.proto;
        let b = self.binding(id, wild)?;
        let port = self.ports.bind(proto, 0, b)?;
        let s = self.sock_mut(id)?;
        s.local = SocketAddr::new(wild, port);
        s.bound = true;
        Ok(())
    }

    pub(crate) fn new_tcp(
        &mut self,
        i: usize,
        opts: &crate::sockopt::Opts,
    ) -> smoltcp::iface::SocketHandle {
        let (rx, tx) = opts.tcp_buffers();
        let mut t = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; tx]),
        );
        opts.apply_tcp(&mut t);
        self.ifaces[i].set.add(t)
    }

    /// listen(2).
    pub fn listen(&mut self, id: SockId, backlog: i32) -> Result<(), Errno> {
        let s = self.sock(id)?;
        if s.proto != Proto::Tcp {
            return Err(libc::EOPNOTSUPP);
        }
        // Linux caps the backlog at net.core.somaxconn (4096).
        let backlog = (backlog.clamp(0, 4096) as usize).max(1);
        match &s.st {
            St::Listen(_) => {
                if let St::Listen(l) = &mut self.sock_mut(id)?.st {
                    l.backlog = backlog;
                }
                return Ok(());
            }
            St::Idle => {}
            _ => return Err(libc::EINVAL),
        }
        if s.shut_rd || s.shut_wr {
            return Err(libc::EINVAL);
        }
        self.autobind(id)?;
        let s = self.sock(id)?;
        let (local, dual) = (s.local, s.family == libc::AF_INET6 && !s.opts.v6only);
        self.ports.listen(Proto::Tcp, local.port(), id)?;
        let eps = self.endpoints(unmap(local.ip()), dual && local.ip().is_unspecified());
        let mut pools = Vec::new();
        for (i, addr) in eps {
            pools.push((i, addr, Vec::new()));
        }
        self.sock_mut(id)?.st = St::Listen(Listener {
            backlog,
            pools,
            embryos: Vec::new(),
            queue: Default::default(),
        });
        self.listeners.push(id);
        self.refill_listeners();
        Ok(())
    }

    /// Keeps every listener's pools of LISTEN sockets full, and moves
    /// sockets that left LISTEN along: handshakes in progress, then
    /// connections waiting for accept (or, if the peer's family is not
    /// the listener's, reset).
    pub(crate) fn refill_listeners(&mut self) {
        let now = self.now();
        for id in self.listeners.clone() {
            let Some(s) = self.socks.get_mut(&id) else {
                continue;
            };
            let (family, v6only) = (s.family, s.opts.v6only);
            let opts = s.opts.clone();
            let port = s.local.port();
            let St::Listen(l) = &mut s.st else {
                continue;
            };
            let mut moved = Vec::new();
            for (i, _, pool) in &mut l.pools {
                pool.retain(|h| {
                    let st = self.ifaces[*i].set.get::<tcp::Socket>(*h).state();
                    if st == tcp::State::Listen {
                        true
                    } else {
                        moved.push((*i, *h));
                        false
                    }
                });
            }
            l.embryos.extend(moved);
            let mut keep = Vec::new();
            let mut back = Vec::new();
            for (i, h) in std::mem::take(&mut l.embryos) {
                let t = self.ifaces[i].set.get_mut::<tcp::Socket>(h);
                match t.state() {
                    tcp::State::SynReceived => keep.push((i, h)),
                    // A reset handshake goes back to LISTEN.
                    tcp::State::Listen => back.push((i, h)),
                    tcp::State::Closed | tcp::State::TimeWait => {
                        self.orphans.push(((i, h), now));
                    }
                    _ => {
                        let fam_ok = match t.remote_endpoint().map(|e| from_ip(e.addr)) {
                            Some(IpAddr::V4(_)) => family == libc::AF_INET || !v6only,
                            Some(IpAddr::V6(_)) => family == libc::AF_INET6,
                            None => false,
                        };
                        if fam_ok {
                            l.queue.push_back((i, h));
                        } else {
                            t.abort();
                            self.orphans.push(((i, h), now));
                        }
                    }
                }
            }
            l.embryos = keep;
            for (i, h) in back {
                if let Some(p) = l.pools.iter_mut().find(|p| p.0 == i) {
                    p.2.push(h);
                }
            }
            // Refill while the backlog has room.
            let busy = l.queue.len() + l.embryos.len();
            let room = l.backlog.saturating_sub(busy);
            let target = room.clamp(0, LISTEN_POOL);
            let mut need = Vec::new();
            for (pi, (i, addr, pool)) in l.pools.iter().enumerate() {
                for _ in pool.len()..target {
                    need.push((pi, *i, *addr));
                }
            }
            if need.is_empty() {
                continue;
            }
            let mut made = Vec::new();
            for (pi, i, addr) in need {
                let h = self.new_tcp(i, &opts);
                let t = self.ifaces[i].set.get_mut::<tcp::Socket>(h);
                if t.listen(IpListenEndpoint { addr, port }).is_ok() {
                    made.push((pi, h));
                } else {
                    self.ifaces[i].set.remove(h);
                }
            }
            if let Some(St::Listen(l)) = self.socks.get_mut(&id).map(|s| &mut s.st) {
                for (pi, h) in made {
                    l.pools[pi].2.push(h);
                }
            }
        }
    }

    /// accept(2): the oldest established connection.
    pub fn accept(&mut self, id: SockId) -> Result<(SockId, SocketAddr), Errno> {
        self.refill_listeners();
        let s = self.sock_mut(id)?;
        let (family, opts) = (s.family, s.opts.clone());
        let St::Listen(l) = &mut s.st else {
            return Err(libc::EINVAL);
        };
        let slot = l.queue.pop_front().ok_or(libc::EAGAIN)?;
        self.settle(id);
        let t = self.ifaces[slot.0].set.get::<tcp::Socket>(slot.1);
        let state = t.state();
        let local = t
            .local_endpoint()
            .map(|e| SocketAddr::new(from_ip(e.addr), e.port));
        let peer = t
            .remote_endpoint()
            .map(|e| SocketAddr::new(from_ip(e.addr), e.port));
        let nid = self.socket(family, Proto::Tcp)?;
        let now = self.now();
        let n = self.sock_mut(nid)?;
        n.opts = opts;
        if let Some(l) = local {
            n.local = l;
        }
        n.st = St::Tcp(Conn {
            slot,
            connecting: false,
            last: state,
            done: false,
            started: now,
        });
        self.settle(nid);
        self.refill_listeners();
        let peer = peer.ok_or(libc::ECONNABORTED)?;
        Ok((nid, self.shown(family, peer)))
    }

    /// connect(2): TCP starts a handshake (EINPROGRESS); datagram
    /// sockets set their peer. `None` (AF_UNSPEC) disconnects.
    pub fn connect(&mut self, id: SockId, to: Option<SocketAddr>) -> Result<(), Errno> {
        let s = self.sock(id)?;
        if s.proto != Proto::Tcp {
            return self.connect_dgram(id, to);
        }
        let Some(to) = to else {
            return Err(libc::EAFNOSUPPORT);
        };
        match &s.st {
            St::Idle => {}
            St::Tcp(c) if c.connecting => return Err(libc::EALREADY),
            St::Tcp(c) if c.done => {
                // A failed attempt: start over.
            }
            St::Tcp(_) => return Err(libc::EISCONN),
            St::Listen(_) => return Err(libc::EISCONN),
            St::Dgram { .. } => return Err(libc::EINVAL),
        }
        let dst = self.destination(id, to)?;
        if dst.ip().is_unspecified() {
            // Linux connects to the unspecified address as to loopback.
            return self.connect(
                id,
                Some(SocketAddr::new(
                    if dst.is_ipv4() {
                        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
                    } else {
                        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                    },
                    dst.port(),
                )),
            );
        }
        let i = self.route(&dst.ip()).ok_or(libc::ENETUNREACH)?;
        if i != 0 {
            self.egress.check(dst.ip(), dst.port(), Proto::Tcp)?;
        }
        self.autobind(id)?;
        let s = self.sock(id)?;
        let local_ip = if s.local.ip().is_unspecified() {
            self.source_for(i, &dst.ip()).ok_or(libc::EADDRNOTAVAIL)?
        } else {
            unmap(s.local.ip())
        };
        if local_ip.is_ipv4() != dst.is_ipv4() {
            return Err(libc::ENETUNREACH);
        }
        let port = s.local.port();
        let opts = s.opts.clone();
        // A previous failed attempt's socket goes.
        if let St::Tcp(c) = std::mem::replace(&mut self.sock_mut(id)?.st, St::Idle) {
            self.ifaces[c.slot.0].set.remove(c.slot.1);
        }
        let h = self.new_tcp(i, &opts);
        let cx = {
            let f = &mut self.ifaces[i];
            let t = f.set.get_mut::<tcp::Socket>(h);
            t.set_timeout(Some(CONNECT_TIMEOUT));
            t.connect(
                f.iface.context(),
                IpEndpoint::new(to_ip(dst.ip()), dst.port()),
                IpListenEndpoint {
                    addr: Some(to_ip(local_ip)),
                    port,
                },
            )
        };
        if cx.is_err() {
            self.ifaces[i].set.remove(h);
            return Err(libc::EADDRNOTAVAIL);
        }
        let now = self.now();
        let s = self.sock_mut(id)?;
        s.err = None;
        s.st = St::Tcp(Conn {
            slot: (i, h),
            connecting: true,
            last: tcp::State::SynSent,
            done: false,
            started: now,
        });
        self.settle(id);
        Err(libc::EINPROGRESS)
    }

    /// The address a connect or send goes to, for this socket's family
    /// (IPv4-mapped addresses of an IPv6 socket become IPv4).
    pub(crate) fn destination(&self, id: SockId, to: SocketAddr) -> Result<SocketAddr, Errno> {
        let s = self.sock(id)?;
        let ip = unmap(to.ip());
        if s.family == libc::AF_INET6 && ip.is_ipv4() && s.opts.v6only {
            return Err(libc::ENETUNREACH);
        }
        if s.family == libc::AF_INET && !ip.is_ipv4() {
            return Err(libc::EAFNOSUPPORT);
        }
        Ok(SocketAddr::new(ip, to.port()))
    }

    /// After a blocking connect woke: its result, or None while the
    /// handshake goes on.
    pub fn connect_result(&mut self, id: SockId) -> Option<Result<(), Errno>> {
        self.observe(id);
        let s = self.socks.get_mut(&id)?;
        match &s.st {
            St::Tcp(c) if c.connecting => None,
            St::Tcp(c) if c.done => Some(Err(s.err.take().unwrap_or(libc::ECONNREFUSED))),
            _ => Some(Ok(())),
        }
    }

    /// Follows a connection's smoltcp state: a handshake's end, a reset,
    /// a refused or timed-out connect.
    pub(crate) fn observe(&mut self, id: SockId) {
        let now = self.now();
        let Some(s) = self.socks.get_mut(&id) else {
            return;
        };
        let St::Tcp(c) = &mut s.st else {
            return;
        };
        let t = self.ifaces[c.slot.0].set.get_mut::<tcp::Socket>(c.slot.1);
        let st = t.state();
        if c.connecting {
            match st {
                tcp::State::SynSent | tcp::State::SynReceived => {}
                tcp::State::Closed | tcp::State::TimeWait => {
                    c.connecting = false;
                    c.done = true;
                    s.err = Some(if now - c.started >= CONNECT_TIMEOUT {
                        libc::ETIMEDOUT
                    } else {
                        libc::ECONNREFUSED
                    });
                }
                _ => {
                    c.connecting = false;
                    // The handshake is over: the socket's own timeouts.
                    s.opts.apply_tcp(t);
                }
            }
        } else if st == tcp::State::Closed && !c.done {
            c.done = true;
            if !matches!(
                c.last,
                tcp::State::TimeWait | tcp::State::LastAck | tcp::State::Closing
            ) {
                s.err = Some(libc::ECONNRESET);
            }
        }
        c.last = st;
    }

    /// send(2) and friends. `to` is ignored by connected TCP.
    pub fn send(
        &mut self,
        id: SockId,
        src: &dyn Source,
        to: Option<SocketAddr>,
        flags: i32,
    ) -> Result<usize, Errno> {
        self.send_with(id, src, to, flags, &crate::ancillary::SendAnc::default())
    }

    /// sendmsg(2) with IP-level control messages (decoded by
    /// [`crate::ancillary::SendAnc::parse`]); TCP ignores them, as Linux's
    /// does but for the ones it does not take at all.
    pub fn send_with(
        &mut self,
        id: SockId,
        src: &dyn Source,
        to: Option<SocketAddr>,
        flags: i32,
        anc: &crate::ancillary::SendAnc,
    ) -> Result<usize, Errno> {
        let s = self.sock(id)?;
        if s.proto != Proto::Tcp {
            return self.send_dgram(id, src, to, flags, anc);
        }
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        self.observe(id);
        let s = self.sock_mut(id)?;
        let c = match &s.st {
            St::Tcp(c) => c,
            _ => return Err(libc::EPIPE),
        };
        if c.connecting {
            return Err(libc::EAGAIN);
        }
        if c.done {
            return Err(s.err.take().unwrap_or(libc::EPIPE));
        }
        if s.shut_wr {
            return Err(libc::EPIPE);
        }
        let slot = c.slot;
        let t = self.ifaces[slot.0].set.get_mut::<tcp::Socket>(slot.1);
        if !t.may_send() {
            return Err(libc::EPIPE);
        }
        let mut done = 0;
        while done < src.len() {
            let n = t
                .send(|buf| {
                    let n = src.read_at(done, buf);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            done += n;
        }
        if done == 0 && !src.is_empty() {
            return Err(libc::EAGAIN);
        }
        self.settle(id);
        Ok(done)
    }

    /// recv(2) and friends (MSG_PEEK, MSG_TRUNC for datagrams).
    pub fn recv(&mut self, id: SockId, dst: &dyn Sink, flags: i32) -> Result<Received, Errno> {
        let s = self.sock(id)?;
        if s.proto != Proto::Tcp {
            return self.recv_dgram(id, dst, flags);
        }
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EINVAL);
        }
        self.observe(id);
        let s = self.sock_mut(id)?;
        let c = match &s.st {
            St::Tcp(c) => c,
            _ => return Err(libc::ENOTCONN),
        };
        if c.connecting {
            return Err(libc::EAGAIN);
        }
        if s.shut_rd {
            return Ok(Received::default());
        }
        let (slot, done) = (c.slot, c.done);
        let t = self.ifaces[slot.0].set.get_mut::<tcp::Socket>(slot.1);
        if t.can_recv() && !dst.is_empty() {
            let n = if flags & libc::MSG_PEEK != 0 {
                let mut tmp = vec![0u8; dst.len().min(t.recv_queue())];
                let n = t.peek_slice(&mut tmp).unwrap_or(0);
                dst.write_at(0, &tmp[..n])
            } else {
                let mut got = 0;
                while got < dst.len() {
                    let n = t
                        .recv(|buf| {
                            let n = dst.write_at(got, buf);
                            (n, n)
                        })
                        .unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            };
            self.settle(id);
            return Ok(Received {
                len: n,
                full_len: n,
                ..Default::default()
            });
        }
        if dst.is_empty() && t.may_recv() {
            return Ok(Received::default());
        }
        if done {
            let s = self.sock_mut(id)?;
            return match s.err.take() {
                Some(e) => Err(e),
                None => Ok(Received::default()),
            };
        }
        if !t.may_recv() {
            return Ok(Received::default());
        }
        Err(libc::EAGAIN)
    }

    /// shutdown(2).
    pub fn shutdown(&mut self, id: SockId, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(libc::EINVAL);
        }
        let (rd, wr) = (how != libc::SHUT_WR, how != libc::SHUT_RD);
        self.observe(id);
        let s = self.sock_mut(id)?;
        match &mut s.st {
            St::Idle => return Err(libc::ENOTCONN),
            St::Listen(_) => {
                if rd {
                    // A listener shut down stops accepting (accept: EINVAL).
                    let now = self.now();
                    let s = self.sock_mut(id)?;
                    if let St::Listen(l) = std::mem::replace(&mut s.st, St::Idle) {
                        for (i, _, pool) in l.pools {
                            for h in pool {
                                self.ifaces[i].set.remove(h);
                            }
                        }
                        for (i, h) in l.embryos.into_iter().chain(l.queue) {
                            self.ifaces[i].set.get_mut::<tcp::Socket>(h).abort();
                            self.orphans.push(((i, h), now));
                        }
                    }
                    self.listeners.retain(|l| *l != id);
                    let s = self.sock_mut(id)?;
                    s.shut_rd = true;
                    s.shut_wr = true;
                }
            }
            St::Tcp(c) => {
                if c.done && !c.connecting && s.err.is_none() && c.last == tcp::State::Closed {
                    // Already over: nothing to shut.
                }
                let slot = c.slot;
                if wr && !s.shut_wr {
                    s.shut_wr = true;
                    let t = self.ifaces[slot.0].set.get_mut::<tcp::Socket>(slot.1);
                    t.close();
                    let st = t.state();
                    if let St::Tcp(c) = &mut self.sock_mut(id)?.st {
                        c.last = st;
                    }
                }
                if rd {
                    self.sock_mut(id)?.shut_rd = true;
                }
            }
            St::Dgram { peer, .. } => {
                if peer.is_none() {
                    return Err(libc::ENOTCONN);
                }
                s.shut_rd |= rd;
                s.shut_wr |= wr;
            }
        }
        Ok(())
    }
}

/// How many LISTEN sockets wait per (interface, address) of a listener;
/// refilled after every packet, so a burst of SYNs finds one each.
const LISTEN_POOL: usize = 4;
