//! UDP and ICMP echo ("ping") sockets: one smoltcp socket per interface
//! (and per address, for a family-restricted wildcard), datagrams routed
//! out of the right one, received from any.

use std::net::{IpAddr, SocketAddr};

use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::Errno;
use crate::stack::{Proto, Sink, SockId, Source, St, Stack, from_ip, to_ip};
use crate::tcp::Received;

/// The largest UDP payload over IPv4 (65535 - 20 - 8).
const UDP_MAX: usize = 65507;

impl Stack {
    /// Creates the smoltcp sockets of a bound datagram socket.
    pub(crate) fn open_dgram(&mut self, id: SockId) -> Result<(), Errno> {
        let s = self.sock(id)?;
        if !matches!(s.st, St::Idle) {
            return Ok(());
        }
        let (proto, local, dual, opts) = (
            s.proto,
            s.local,
            s.family == libc::AF_INET6 && !s.opts.v6only,
            s.opts.clone(),
        );
        let (rx, tx) = opts.udp_buffers();
        let slots_rx = (rx / 512).clamp(16, 1024);
        let slots_tx = (tx / 512).clamp(16, 1024);
        let eps = if proto == Proto::Icmp {
            // Echo replies match by identifier, on every interface.
            (0..self.ifaces.len()).map(|i| (i, None)).collect()
        } else {
            let ip = crate::stack::unmap(local.ip());
            self.endpoints(ip, dual && ip.is_unspecified())
        };
        let mut slots = Vec::new();
        for (i, addr) in eps {
            let h = match proto {
                Proto::Udp => {
                    let mut u = udp::Socket::new(
                        udp::PacketBuffer::new(
                            vec![udp::PacketMetadata::EMPTY; slots_rx],
                            vec![0u8; rx],
                        ),
                        udp::PacketBuffer::new(
                            vec![udp::PacketMetadata::EMPTY; slots_tx],
                            vec![0u8; tx],
                        ),
                    );
                    u.set_hop_limit(opts.ttl);
                    if u.bind(IpListenEndpoint {
                        addr,
                        port: local.port(),
                    })
                    .is_err()
                    {
                        continue;
                    }
                    self.ifaces[i].set.add(u)
                }
                _ => {
                    let mut u = icmp::Socket::new(
                        icmp::PacketBuffer::new(
                            vec![icmp::PacketMetadata::EMPTY; 64],
                            vec![0u8; 64 * 1024],
                        ),
                        icmp::PacketBuffer::new(
                            vec![icmp::PacketMetadata::EMPTY; 64],
                            vec![0u8; 64 * 1024],
                        ),
                    );
                    u.set_hop_limit(opts.ttl);
                    if u.bind(icmp::Endpoint::Ident(local.port())).is_err() {
                        continue;
                    }
                    self.ifaces[i].set.add(u)
                }
            };
            slots.push((i, addr, h));
        }
        self.sock_mut(id)?.st = St::Dgram { slots, peer: None };
        Ok(())
    }

    fn ensure_dgram(&mut self, id: SockId) -> Result<(), Errno> {
        if matches!(self.sock(id)?.st, St::Idle) {
            if self.sock(id)?.proto == Proto::Icmp && !self.sock(id)?.bound {
                // A ping socket's "port" is its echo identifier.
                let ident = self.next_ident;
                self.next_ident = self.next_ident.wrapping_add(1).max(1);
                let wild = self.sock(id)?.local.ip();
                let b = crate::ports::Binding {
                    id,
                    addr: wild,
                    v4: true,
                    v6: true,
                    reuseaddr: false,
                    reuseport: false,
                    listening: false,
                };
                let port = self
                    .ports
                    .bind(Proto::Icmp, ident, b.clone())
                    .or_else(|_| self.ports.bind(Proto::Icmp, 0, b))?;
                let s = self.sock_mut(id)?;
                s.local = SocketAddr::new(wild, port);
                s.bound = true;
            } else {
                self.autobind(id)?;
            }
            self.open_dgram(id)?;
        }
        Ok(())
    }

    pub(crate) fn connect_dgram(
        &mut self,
        id: SockId,
        to: Option<SocketAddr>,
    ) -> Result<(), Errno> {
        let Some(to) = to else {
            if let St::Dgram { peer, .. } = &mut self.sock_mut(id)?.st {
                *peer = None;
            }
            return Ok(());
        };
        let dst = self.destination(id, to)?;
        self.route(&dst.ip()).ok_or(libc::ENETUNREACH)?;
        self.ensure_dgram(id)?;
        if let St::Dgram { peer, .. } = &mut self.sock_mut(id)?.st {
            *peer = Some(dst);
        }
        self.settle(id);
        Ok(())
    }

    pub(crate) fn send_dgram(
        &mut self,
        id: SockId,
        src: &dyn Source,
        to: Option<SocketAddr>,
        _flags: i32,
        anc: &crate::ancillary::SendAnc,
    ) -> Result<usize, Errno> {
        let s = self.sock(id)?;
        if s.shut_wr {
            return Err(libc::EPIPE);
        }
        let peer = match &s.st {
            St::Dgram { peer, .. } => *peer,
            _ => None,
        };
        let (proto, broadcast) = (s.proto, s.opts.broadcast);
        let dst = match to {
            Some(t) => self.destination(id, t)?,
            None => peer.ok_or(libc::EDESTADDRREQ)?,
        };
        let len = src.len();
        if proto == Proto::Udp && len > UDP_MAX {
            return Err(libc::EMSGSIZE);
        }
        if dst.ip().is_unspecified() {
            return Err(libc::EINVAL);
        }
        let is_bcast = matches!(dst.ip(), IpAddr::V4(v) if v.is_broadcast())
            || self.ifaces.iter().skip(1).any(|f| {
                f.addrs.iter().any(|c| {
                    c.addr.is_ipv4()
                        && c.prefix < 31
                        && c.contains(&dst.ip())
                        && match (c.network(), dst.ip()) {
                            (IpAddr::V4(n), IpAddr::V4(d)) => {
                                u32::from(d) | (u32::MAX << (32 - c.prefix)) == u32::MAX
                                    && u32::from(n) != u32::from(d)
                            }
                            _ => false,
                        }
                })
            });
        if is_bcast && !broadcast {
            return Err(libc::EACCES);
        }
        let i = self.route(&dst.ip()).ok_or(libc::ENETUNREACH)?;
        if i != 0 {
            self.egress.check(dst.ip(), dst.port(), proto)?;
        }
        // A source a PKTINFO message names must be the sandbox's own, and
        // on a link that link's (no spoofed source leaves the sandbox); a
        // named interface must exist.
        if anc.ifindex != 0 && !self.ifaces.iter().any(|f| f.index == anc.ifindex) {
            return Err(libc::ENODEV);
        }
        if let Some(a) = anc.src {
            let ok = if i == 0 {
                self.is_local(&a)
            } else {
                self.ifaces[i].addrs.iter().any(|c| c.addr == a)
            };
            // Linux: an IPv4 source that is not local leaves no route
            // (ENETUNREACH); IPV6_PKTINFO checks the address (EINVAL).
            if !ok {
                return Err(if a.is_ipv4() {
                    libc::ENETUNREACH
                } else {
                    libc::EINVAL
                });
            }
        }
        self.ensure_dgram(id)?;
        let src_ip = anc.src.or_else(|| self.source_for(i, &dst.ip()));
        let s = self.sock(id)?;
        let St::Dgram { slots, .. } = &s.st else {
            return Err(libc::EINVAL);
        };
        // The smoltcp socket on that interface whose address is the
        // source (or the wildcard).
        let slot = slots
            .iter()
            .find(|(si, a, _)| *si == i && (a.is_none() || src_ip.map(to_ip) == *a))
            .or_else(|| slots.iter().find(|(si, _, _)| *si == i))
            .map(|(_, a, h)| (*a, *h))
            .ok_or(libc::EINVAL)?;
        let mut data = vec![0u8; len];
        let n = src.read_at(0, &mut data);
        data.truncate(n);
        match proto {
            Proto::Udp => {
                let local = slot.0.or(src_ip.map(to_ip));
                let meta = udp::UdpMetadata {
                    endpoint: IpEndpoint::new(to_ip(dst.ip()), dst.port()),
                    local_address: local,
                    // IPv6 packets get their fields armed below instead.
                    meta: if dst.is_ipv6() {
                        Default::default()
                    } else {
                        crate::pktmeta::for_send(anc.fields)
                    },
                };
                let u = self.ifaces[i].set.get_mut::<udp::Socket>(slot.1);
                if data.len() > u.payload_send_capacity() {
                    return Err(libc::EMSGSIZE);
                }
                u.send_slice(&data, meta).map_err(|e| match e {
                    udp::SendError::BufferFull => libc::EAGAIN,
                    udp::SendError::Unaddressable => libc::EINVAL,
                })?;
                if dst.is_ipv6() && !anc.fields.is_empty() {
                    // smoltcp gives IPv6 packets no metadata on the way
                    // out: the fields are armed for this datagram, which
                    // leaves now.
                    let sport = self.sock(id)?.local.port();
                    crate::pktmeta::arm_v6(anc.fields, sport, dst.port());
                    self.flush_egress(i);
                    crate::pktmeta::disarm();
                }
            }
            _ => {
                // An echo request: the kernel sets the identifier (and
                // smoltcp the checksum), as Linux's ping sockets do.
                let v6 = dst.is_ipv6();
                let want = if v6 { 128 } else { 8 };
                if data.len() < 8 || data[0] != want || data[1] != 0 {
                    return Err(libc::EINVAL);
                }
                let ident = self.sock(id)?.local.port();
                data[4..6].copy_from_slice(&ident.to_be_bytes());
                let u = self.ifaces[i].set.get_mut::<icmp::Socket>(slot.1);
                u.send_slice(&data, to_ip(dst.ip())).map_err(|e| match e {
                    icmp::SendError::BufferFull => libc::EAGAIN,
                    icmp::SendError::Unaddressable => libc::EINVAL,
                })?;
            }
        }
        self.settle(id);
        Ok(n)
    }

    pub(crate) fn recv_dgram(
        &mut self,
        id: SockId,
        dst: &dyn Sink,
        flags: i32,
    ) -> Result<Received, Errno> {
        let s = self.sock(id)?;
        let (family, v6only, proto, shut_rd) = (s.family, s.opts.v6only, s.proto, s.shut_rd);
        let opts = s.opts.clone();
        let (slots, peer) = match &s.st {
            St::Dgram { slots, peer } => (slots.clone(), *peer),
            _ => {
                return if shut_rd {
                    Ok(Received::default())
                } else {
                    Err(libc::EAGAIN)
                };
            }
        };
        if shut_rd {
            return Ok(Received::default());
        }
        let peek = flags & libc::MSG_PEEK != 0;
        for (i, _, h) in slots {
            loop {
                let got = match proto {
                    Proto::Udp => {
                        let ifindex = self.ifaces[i].index;
                        let u = self.ifaces[i].set.get_mut::<udp::Socket>(h);
                        let Ok((data, meta)) = u.peek() else {
                            break;
                        };
                        let from = SocketAddr::new(from_ip(meta.endpoint.addr), meta.endpoint.port);
                        let wanted = match from.ip() {
                            IpAddr::V4(_) => family == libc::AF_INET || !v6only,
                            IpAddr::V6(_) => family == libc::AF_INET6,
                        } && peer.is_none_or(|p| p == from);
                        if !wanted {
                            let _ = u.recv();
                            continue;
                        }
                        let full = data.len();
                        let n = dst.write_at(0, data);
                        let cmsgs = crate::ancillary::received(
                            &opts,
                            family,
                            from.ip(),
                            meta.local_address.map(from_ip),
                            ifindex,
                            crate::pktmeta::received(meta.meta),
                        );
                        if !peek {
                            let _ = u.recv();
                        }
                        (n, full, from, cmsgs)
                    }
                    _ => {
                        let u = self.ifaces[i].set.get_mut::<icmp::Socket>(h);
                        let mut buf = vec![0u8; 65536];
                        if !u.can_recv() {
                            break;
                        }
                        let Ok((n, addr)) = u.recv_slice(&mut buf) else {
                            break;
                        };
                        let from = from_ip(addr);
                        // Only echo replies of the socket's family reach a
                        // ping socket (loopback also shows it the request).
                        let reply = if from.is_ipv4() { 0 } else { 129 };
                        if n < 8 || buf[0] != reply || (family == libc::AF_INET) != from.is_ipv4() {
                            continue;
                        }
                        let full = n;
                        let c = dst.write_at(0, &buf[..n]);
                        (c, full, SocketAddr::new(from, 0), Vec::new())
                    }
                };
                self.settle(id);
                let (len, full_len, from, cmsgs) = got;
                return Ok(Received {
                    len,
                    full_len,
                    from: Some(self.shown(family, from)),
                    truncated: full_len > len,
                    cmsgs,
                });
            }
        }
        Err(libc::EAGAIN)
    }
}
