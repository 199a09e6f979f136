//! Socket options: kept per Linux socket with Linux's defaults and value
//! rules, applied to its smoltcp sockets where smoltcp has the knob
//! (Nagle, keep-alive, timeouts, hop limits, buffer sizes at creation).

use smoltcp::socket::tcp;
use smoltcp::time::Duration as SDuration;

use crate::Errno;
use crate::stack::{Proto, SockId, St, Stack};

/// Linux's defaults (net.ipv4.tcp_rmem/wmem middle values, rmem_default).
const TCP_RCVBUF_DEFAULT: usize = 131072;
const TCP_SNDBUF_DEFAULT: usize = 16384;
const UDP_BUF_DEFAULT: usize = 212992;
/// What the stack actually gives a TCP socket unless told otherwise: big
/// enough for a fast bulk transfer through one kernel thread.
pub const TCP_BUFFER: usize = 256 * 1024;
pub const UDP_BUFFER: usize = 256 * 1024;
const BUF_MIN: usize = 4096;
/// How long received data may wait for its ACK (see Opts::delayed_ack).
const ACK_DELAY: SDuration = SDuration::from_millis(10);
const BUF_MAX: usize = 8 << 20;

#[derive(Clone, Debug)]
pub struct Opts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    /// SO_LINGER: Some(seconds) when on.
    pub linger: Option<i32>,
    /// SO_RCVBUF/SO_SNDBUF as set (None: default).
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    pub rcvlowat: i32,
    pub priority: i32,
    pub oobinline: bool,
    pub timestamp: bool,
    pub nodelay: bool,
    pub cork: bool,
    pub keepidle: u32,
    pub keepintvl: u32,
    pub keepcnt: u32,
    pub user_timeout: u32,
    pub defer_accept: i32,
    pub quickack: bool,
    /// Whether received data is acknowledged after a delay (the default,
    /// as Linux outside quickack mode) or at once: TCP_QUICKACK set to 1
    /// turns the delay off, set to 0 on again. Linux leaves quickack mode
    /// again by itself once traffic turns interactive, so programs that
    /// want it set it after every read; here it stays until cleared,
    /// which only ever acknowledges sooner than Linux.
    pub delayed_ack: bool,
    pub fastopen: i32,
    pub maxseg: i32,
    pub notsent_lowat: u32,
    pub syncnt: i32,
    pub linger2: i32,
    pub window_clamp: i32,
    pub congestion: &'static str,
    pub ttl: Option<u8>,
    pub tos: i32,
    pub v6only: bool,
    pub recverr: bool,
    pub pktinfo: bool,
    pub recvtos: bool,
    pub recvttl: bool,
    pub mtu_discover: i32,
    pub freebind: bool,
    pub bind_no_port: bool,
    pub mcast_ttl: i32,
    pub mcast_loop: bool,
    pub mcast_if: [u8; 4],
    pub tclass: i32,
    pub unicast_hops: i32,
    pub mcast_hops: i32,
    pub recvpktinfo: bool,
    pub recvhoplimit: bool,
    pub recvtclass: bool,
}

impl Opts {
    pub fn new(_proto: Proto) -> Opts {
        Opts {
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            broadcast: false,
            linger: None,
            rcvbuf: None,
            sndbuf: None,
            rcvlowat: 1,
            priority: 0,
            oobinline: false,
            timestamp: false,
            nodelay: false,
            cork: false,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            user_timeout: 0,
            defer_accept: 0,
            quickack: true,
            delayed_ack: true,
            fastopen: 0,
            maxseg: 536,
            notsent_lowat: u32::MAX,
            syncnt: 6,
            linger2: 60,
            window_clamp: 0,
            congestion: "cubic",
            ttl: None,
            tos: 0,
            v6only: false,
            recverr: false,
            pktinfo: false,
            recvtos: false,
            recvttl: false,
            mtu_discover: 0,
            freebind: false,
            bind_no_port: false,
            mcast_ttl: 1,
            mcast_loop: true,
            mcast_if: [0; 4],
            tclass: 0,
            unicast_hops: -1,
            mcast_hops: 1,
            recvpktinfo: false,
            recvhoplimit: false,
            recvtclass: false,
        }
    }

    /// Buffer sizes of a new TCP smoltcp socket.
    pub fn tcp_buffers(&self) -> (usize, usize) {
        (
            self.rcvbuf.unwrap_or(TCP_BUFFER),
            self.sndbuf.unwrap_or(TCP_BUFFER),
        )
    }

    pub fn udp_buffers(&self) -> (usize, usize) {
        (
            self.rcvbuf.unwrap_or(UDP_BUFFER),
            self.sndbuf.unwrap_or(UDP_BUFFER),
        )
    }

    /// Applies what smoltcp can do to one of its TCP sockets.
    pub fn apply_tcp(&self, t: &mut tcp::Socket) {
        t.set_nagle_enabled(!self.nodelay && !self.cork);
        // smoltcp's delayed ACK waits ACK_DELAY (Linux: at least 40 ms,
        // TCP_DELACK_MIN; smoltcp's own default is kept: a write-write-
        // read exchange with Nagle on stalls 10 ms a round trip instead of
        // Linux's 40+).
        t.set_ack_delay(self.delayed_ack.then_some(ACK_DELAY));
        t.set_hop_limit(self.ttl.filter(|t| *t > 0));
        if self.keepalive {
            t.set_keep_alive(Some(SDuration::from_secs(self.keepidle.max(1) as u64)));
        } else {
            t.set_keep_alive(None);
        }
        // A dead peer: TCP_USER_TIMEOUT, or keep-alive probes unanswered.
        let timeout = if self.user_timeout > 0 {
            Some(SDuration::from_millis(self.user_timeout as u64))
        } else if self.keepalive {
            Some(SDuration::from_secs(
                self.keepidle as u64 + self.keepintvl as u64 * self.keepcnt as u64,
            ))
        } else {
            None
        };
        t.set_timeout(timeout);
    }
}

fn int(val: &[u8]) -> Result<i32, Errno> {
    if val.len() < 4 {
        return Err(libc::EINVAL);
    }
    Ok(i32::from_ne_bytes(val[..4].try_into().unwrap()))
}

/// An int option value; a single byte is accepted as Linux does for some.
fn int_or_byte(val: &[u8]) -> Result<i32, Errno> {
    match val.len() {
        0 => Err(libc::EINVAL),
        1..=3 => Ok(val[0] as i32),
        _ => int(val),
    }
}

fn i(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn clamp_buf(v: i32) -> usize {
    (v.max(0) as usize).clamp(BUF_MIN, BUF_MAX)
}

impl Stack {
    pub fn setsockopt(
        &mut self,
        id: SockId,
        level: i32,
        name: i32,
        val: &[u8],
    ) -> Result<(), Errno> {
        let s = self.sock_mut(id)?;
        let proto = s.proto;
        let o = &mut s.opts;
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => o.reuseaddr = int(val)? != 0,
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => o.reuseport = int(val)? != 0,
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => o.keepalive = int(val)? != 0,
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => o.broadcast = int(val)? != 0,
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                if val.len() < 8 {
                    return Err(libc::EINVAL);
                }
                let on = i32::from_ne_bytes(val[..4].try_into().unwrap());
                let secs = i32::from_ne_bytes(val[4..8].try_into().unwrap());
                o.linger = (on != 0).then_some(secs.max(0));
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_RCVBUFFORCE) => {
                o.rcvbuf = Some(clamp_buf(int(val)?))
            }
            (libc::SOL_SOCKET, libc::SO_SNDBUF | libc::SO_SNDBUFFORCE) => {
                o.sndbuf = Some(clamp_buf(int(val)?))
            }
            (libc::SOL_SOCKET, libc::SO_RCVLOWAT) => o.rcvlowat = int(val)?.max(1),
            (libc::SOL_SOCKET, libc::SO_SNDLOWAT) => return Err(libc::ENOPROTOOPT),
            (libc::SOL_SOCKET, libc::SO_PRIORITY) => o.priority = int(val)?,
            (libc::SOL_SOCKET, libc::SO_OOBINLINE) => o.oobinline = int(val)? != 0,
            (libc::SOL_SOCKET, libc::SO_TIMESTAMP | libc::SO_TIMESTAMPNS) => {
                o.timestamp = int(val)? != 0
            }
            (libc::SOL_SOCKET, libc::SO_ZEROCOPY) => {}
            (libc::SOL_SOCKET, libc::SO_DONTROUTE) => {}
            (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => {
                // Binding to a device: only the sandbox's own interfaces.
                let name = val.split(|b| *b == 0).next().unwrap_or(&[]);
                if !name.is_empty() && !self.ifaces.iter().any(|f| f.name.as_bytes() == name) {
                    return Err(libc::ENODEV);
                }
            }
            (libc::SOL_SOCKET, libc::SO_TYPE | libc::SO_DOMAIN | libc::SO_PROTOCOL)
            | (libc::SOL_SOCKET, libc::SO_ERROR | libc::SO_ACCEPTCONN) => {
                return Err(libc::ENOPROTOOPT);
            }
            (libc::IPPROTO_TCP, _) if proto != Proto::Tcp => return Err(libc::ENOPROTOOPT),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => o.nodelay = int(val)? != 0,
            (libc::IPPROTO_TCP, libc::TCP_CORK) => o.cork = int(val)? != 0,
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => {
                let v = int(val)?;
                if !(1..=32767).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.keepidle = v as u32;
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => {
                let v = int(val)?;
                if !(1..=32767).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.keepintvl = v as u32;
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => {
                let v = int(val)?;
                if !(1..=127).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.keepcnt = v as u32;
            }
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => {
                let v = int(val)?;
                if v < 0 {
                    return Err(libc::EINVAL);
                }
                o.user_timeout = v as u32;
            }
            (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) => o.defer_accept = int(val)?.max(0),
            (libc::IPPROTO_TCP, libc::TCP_QUICKACK) => {
                o.quickack = int(val)? != 0;
                o.delayed_ack = !o.quickack;
            }
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN) => o.fastopen = int(val)?,
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT) => {}
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
                let v = int(val)?;
                if v != 0 && !(88..=32767).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.maxseg = v;
            }
            (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => o.notsent_lowat = int(val)? as u32,
            (libc::IPPROTO_TCP, libc::TCP_SYNCNT) => {
                let v = int(val)?;
                if !(1..=127).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.syncnt = v;
            }
            (libc::IPPROTO_TCP, libc::TCP_LINGER2) => o.linger2 = int(val)?,
            (libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP) => o.window_clamp = int(val)?.max(0),
            (libc::IPPROTO_TCP, libc::TCP_CONGESTION) => {
                let name = val.split(|b| *b == 0).next().unwrap_or(&[]);
                o.congestion = match name {
                    b"cubic" => "cubic",
                    b"reno" => "reno",
                    _ => return Err(libc::ENOENT),
                };
            }
            (libc::IPPROTO_TCP, libc::TCP_INFO) => return Err(libc::ENOPROTOOPT),
            (libc::IPPROTO_IP, libc::IP_TTL) => {
                let v = int_or_byte(val)?;
                if !(-1..=255).contains(&v) || v == 0 {
                    return Err(libc::EINVAL);
                }
                o.ttl = (v > 0).then_some(v as u8);
            }
            (libc::IPPROTO_IP, libc::IP_TOS) => o.tos = int_or_byte(val)? & 0xff,
            (libc::IPPROTO_IP, libc::IP_RECVERR) => o.recverr = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => o.pktinfo = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_RECVTOS) => o.recvtos = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_RECVTTL) => o.recvttl = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER) => {
                let v = int(val)?;
                if !(0..=5).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.mtu_discover = v;
            }
            (libc::IPPROTO_IP, libc::IP_FREEBIND) => o.freebind = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT) => {
                o.bind_no_port = int_or_byte(val)? != 0
            }
            (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) => o.mcast_ttl = int_or_byte(val)?,
            (libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP) => o.mcast_loop = int_or_byte(val)? != 0,
            (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) => {
                if val.len() < 4 {
                    return Err(libc::EINVAL);
                }
                o.mcast_if.copy_from_slice(&val[..4]);
            }
            (libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP | libc::IP_DROP_MEMBERSHIP) => {
                // Multicast groups are not joined on the links.
                return Err(libc::ENODEV);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => {
                if s.family != libc::AF_INET6 {
                    return Err(libc::ENOPROTOOPT);
                }
                if s.bound {
                    return Err(libc::EINVAL);
                }
                o.v6only = int(val)? != 0;
            }
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => o.tclass = int(val)?,
            (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => {
                let v = int(val)?;
                if !(-1..=255).contains(&v) {
                    return Err(libc::EINVAL);
                }
                o.unicast_hops = v;
                o.ttl = (v > 0).then_some(v as u8);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS) => o.mcast_hops = int(val)?,
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP) => o.mcast_loop = int(val)? != 0,
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO) => o.recvpktinfo = int(val)? != 0,
            (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) => o.recvhoplimit = int(val)? != 0,
            (libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS) => o.recvtclass = int(val)? != 0,
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => o.recverr = int(val)? != 0,
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER) => o.mtu_discover = int(val)?,
            (libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP | libc::IPV6_DROP_MEMBERSHIP) => {
                return Err(libc::ENODEV);
            }
            _ => return Err(libc::ENOPROTOOPT),
        }
        self.reapply(id);
        Ok(())
    }

    /// Applies the options to the socket's live smoltcp sockets.
    fn reapply(&mut self, id: SockId) {
        let Some(s) = self.socks.get(&id) else {
            return;
        };
        let opts = s.opts.clone();
        let hop = opts.ttl;
        match &s.st {
            St::Tcp(c) => {
                opts.apply_tcp(self.ifaces[c.slot.0].set.get_mut::<tcp::Socket>(c.slot.1));
            }
            St::Listen(l) => {
                let slots: Vec<_> = l
                    .pools
                    .iter()
                    .flat_map(|(i, _, p)| p.iter().map(move |h| (*i, *h)))
                    .chain(l.embryos.iter().copied())
                    .chain(l.queue.iter().copied())
                    .collect();
                for (i, h) in slots {
                    opts.apply_tcp(self.ifaces[i].set.get_mut::<tcp::Socket>(h));
                }
            }
            St::Dgram { slots, .. } => {
                let slots = slots.clone();
                for (i, _, h) in slots {
                    match self.ifaces[i].set.get_mut::<smoltcp::socket::Socket>(h) {
                        smoltcp::socket::Socket::Udp(u) => u.set_hop_limit(hop),
                        smoltcp::socket::Socket::Icmp(u) => u.set_hop_limit(hop),
                        _ => {}
                    }
                }
            }
            St::Idle => {}
        }
    }

    pub fn getsockopt(&mut self, id: SockId, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let listening = self.is_listening(id);
        let err = if (level, name) == (libc::SOL_SOCKET, libc::SO_ERROR) {
            self.take_error(id)?.unwrap_or(0)
        } else {
            0
        };
        let info = if (level, name) == (libc::IPPROTO_TCP, libc::TCP_INFO) {
            Some(self.tcp_info(id)?)
        } else {
            None
        };
        let s = self.sock(id)?;
        let o = &s.opts;
        let b = |v: bool| i(v as i32);
        Ok(match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => i(match s.proto {
                Proto::Tcp => libc::SOCK_STREAM,
                _ => libc::SOCK_DGRAM,
            }),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => i(s.family),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => i(match s.proto {
                Proto::Tcp => libc::IPPROTO_TCP,
                Proto::Udp => libc::IPPROTO_UDP,
                Proto::Icmp if s.family == libc::AF_INET6 => libc::IPPROTO_ICMPV6,
                Proto::Icmp => libc::IPPROTO_ICMP,
            }),
            (libc::SOL_SOCKET, libc::SO_ERROR) => i(err),
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => b(listening),
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => b(o.reuseaddr),
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => b(o.reuseport),
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => b(o.keepalive),
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => b(o.broadcast),
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                let mut v = i(o.linger.is_some() as i32);
                v.extend(i(o.linger.unwrap_or(0)));
                v
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => i(match (o.rcvbuf, s.proto) {
                (Some(v), _) => (v * 2) as i32,
                (None, Proto::Tcp) => TCP_RCVBUF_DEFAULT as i32,
                (None, _) => UDP_BUF_DEFAULT as i32,
            }),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => i(match (o.sndbuf, s.proto) {
                (Some(v), _) => (v * 2) as i32,
                (None, Proto::Tcp) => TCP_SNDBUF_DEFAULT as i32,
                (None, _) => UDP_BUF_DEFAULT as i32,
            }),
            (libc::SOL_SOCKET, libc::SO_RCVLOWAT) => i(o.rcvlowat),
            (libc::SOL_SOCKET, libc::SO_SNDLOWAT) => i(1),
            (libc::SOL_SOCKET, libc::SO_PRIORITY) => i(o.priority),
            (libc::SOL_SOCKET, libc::SO_OOBINLINE) => b(o.oobinline),
            (libc::SOL_SOCKET, libc::SO_TIMESTAMP | libc::SO_TIMESTAMPNS) => b(o.timestamp),
            (libc::SOL_SOCKET, libc::SO_ZEROCOPY | libc::SO_DONTROUTE) => i(0),
            (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => Vec::new(),
            (libc::IPPROTO_TCP, _) if s.proto != Proto::Tcp => return Err(libc::ENOPROTOOPT),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => b(o.nodelay),
            (libc::IPPROTO_TCP, libc::TCP_CORK) => b(o.cork),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => i(o.keepidle as i32),
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => i(o.keepintvl as i32),
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => i(o.keepcnt as i32),
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => i(o.user_timeout as i32),
            (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) => i(o.defer_accept),
            (libc::IPPROTO_TCP, libc::TCP_QUICKACK) => b(o.quickack),
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN) => i(o.fastopen),
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT) => i(0),
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => i(o.maxseg),
            (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => i(o.notsent_lowat as i32),
            (libc::IPPROTO_TCP, libc::TCP_SYNCNT) => i(o.syncnt),
            (libc::IPPROTO_TCP, libc::TCP_LINGER2) => i(o.linger2),
            (libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP) => i(o.window_clamp),
            (libc::IPPROTO_TCP, libc::TCP_CONGESTION) => {
                let mut v = o.congestion.as_bytes().to_vec();
                v.resize(16, 0);
                v
            }
            (libc::IPPROTO_TCP, libc::TCP_INFO) => info.unwrap_or_default(),
            (libc::IPPROTO_IP, _) if s.family != libc::AF_INET && s.family != libc::AF_INET6 => {
                return Err(libc::ENOPROTOOPT);
            }
            (libc::IPPROTO_IP, libc::IP_TTL) => i(o.ttl.map(|t| t as i32).unwrap_or(64)),
            (libc::IPPROTO_IP, libc::IP_TOS) => i(o.tos),
            (libc::IPPROTO_IP, libc::IP_RECVERR) => b(o.recverr),
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => b(o.pktinfo),
            (libc::IPPROTO_IP, libc::IP_RECVTOS) => b(o.recvtos),
            (libc::IPPROTO_IP, libc::IP_RECVTTL) => b(o.recvttl),
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER) => i(o.mtu_discover),
            (libc::IPPROTO_IP, libc::IP_FREEBIND) => b(o.freebind),
            (libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT) => b(o.bind_no_port),
            (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) => i(o.mcast_ttl),
            (libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP) => b(o.mcast_loop),
            (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) => o.mcast_if.to_vec(),
            (libc::IPPROTO_IP, libc::IP_MTU) => return Err(libc::ENOTCONN),
            (libc::IPPROTO_IPV6, _) if s.family != libc::AF_INET6 => {
                return Err(libc::ENOPROTOOPT);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => b(o.v6only),
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => i(o.tclass),
            (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => i(if o.unicast_hops < 0 {
                64
            } else {
                o.unicast_hops
            }),
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS) => i(o.mcast_hops),
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP) => b(o.mcast_loop),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO) => b(o.recvpktinfo),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) => b(o.recvhoplimit),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS) => b(o.recvtclass),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => b(o.recverr),
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER) => i(o.mtu_discover),
            _ => return Err(libc::ENOPROTOOPT),
        })
    }

    /// struct tcp_info (the fields tools read: state, MSS, RTT, queues).
    fn tcp_info(&mut self, id: SockId) -> Result<Vec<u8>, Errno> {
        let s = self.sock(id)?;
        let mut v = vec![0u8; 232];
        let (state, rxq, txq) = match &s.st {
            St::Tcp(c) => {
                let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                (
                    crate::stack::linux_state(t.state()),
                    t.recv_queue(),
                    t.send_queue(),
                )
            }
            St::Listen(l) => (10, l.queue.len(), 0),
            _ => (7, 0, 0),
        };
        v[0] = state;
        // tcpi_rto (offset 8) 200 ms, tcpi_snd_mss/rcv_mss (16, 20).
        v[8..12].copy_from_slice(&200_000u32.to_ne_bytes());
        v[16..20].copy_from_slice(&1448u32.to_ne_bytes());
        v[20..24].copy_from_slice(&1448u32.to_ne_bytes());
        // tcpi_unacked (24) ~ bytes queued; tcpi_rcv_space (96).
        v[24..28].copy_from_slice(&(txq as u32).to_ne_bytes());
        v[96..100].copy_from_slice(&(rxq as u32).to_ne_bytes());
        Ok(v)
    }
}
