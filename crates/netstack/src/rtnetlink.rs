//! NETLINK_ROUTE answered from the stack's own state: what `ip addr`,
//! `ip link`, `ip route` and glibc's getifaddrs/if_nameindex ask a
//! kernel. Requests are untrusted bytes from the workload: every length
//! and offset is checked against the buffer before it is read, and a
//! malformed message ends the batch as Linux's `netlink_rcv_skb` does.
//! Nothing here changes state: requests that would (RTM_NEW*, DEL*,
//! SET*) are refused as Linux refuses them to a process without
//! CAP_NET_ADMIN over the namespace (EPERM), or, when the caller holds
//! it, as unsupported (EOPNOTSUPP: the sandbox's network is fixed at
//! start).

use std::net::IpAddr;

use crate::config::{Cidr, RouteConfig};
use crate::device::DevStats;

/// One interface as rtnetlink shows it.
#[derive(Clone, Debug, Default)]
pub struct NlIface {
    pub name: String,
    pub index: u32,
    /// None: loopback (ARPHRD_LOOPBACK, an all-zero address).
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub addrs: Vec<Cidr>,
    pub routes: Vec<RouteConfig>,
    pub stats: DevStats,
}

/// Who asks, and the socket options that change the answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Asker {
    /// The socket's port id: every reply carries it in nlmsg_pid.
    pub portid: u32,
    /// NETLINK_GET_STRICT_CHK: dump requests' headers are checked in
    /// full and their filters applied here.
    pub strict: bool,
    /// NETLINK_CAP_ACK: error replies carry only the request's header.
    pub cap_ack: bool,
    /// CAP_NET_ADMIN (a change request is then EOPNOTSUPP, not EPERM).
    pub net_admin: bool,
}

pub const NLMSG_HDRLEN: usize = 16;
/// Bytes of messages per reply datagram of a dump (Linux's
/// NLMSG_GOODSIZE on 4 KiB pages): readers size buffers by it.
pub const DUMP_DATAGRAM: usize = 3776;

const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_MIN_TYPE: u16 = 16;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CAPPED: u16 = 0x100;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
/// Past the last rtnetlink message type Linux knows (RTM_MAX).
const RTM_MAX: u16 = 127;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_PROMISCUITY: u16 = 30;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_CARRIER: u16 = 33;
const IFLA_MIN_MTU: u16 = 50;
const IFLA_MAX_MTU: u16 = 51;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_PREF: u16 = 20;

const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const RTM_F_CLONED: u32 = 0x200;

const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const IFF_MULTICAST: u32 = 0x1000;
const IFF_LOWER_UP: u32 = 0x10000;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request's header, as read (lengths not yet trusted).
#[derive(Clone, Copy, Debug)]
struct Hdr {
    len: u32,
    ty: u16,
    flags: u16,
    seq: u32,
}

/// One message being built.
struct Msg {
    b: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        Msg { b }
    }
    fn put(&mut self, d: &[u8]) {
        self.b.extend_from_slice(d);
    }
    fn pad(&mut self) {
        self.b.resize(align(self.b.len()), 0);
    }
    fn attr(&mut self, ty: u16, d: &[u8]) {
        self.pad();
        self.b
            .extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
        self.b.extend_from_slice(&ty.to_ne_bytes());
        self.b.extend_from_slice(d);
        self.pad();
    }
    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }
    fn u8(&mut self, ty: u16, v: u8) {
        self.attr(ty, &[v]);
    }
    fn str(&mut self, ty: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d);
    }
    fn ip(&mut self, ty: u16, a: IpAddr) {
        match a {
            IpAddr::V4(v) => self.attr(ty, &v.octets()),
            IpAddr::V6(v) => self.attr(ty, &v.octets()),
        }
    }
    fn done(mut self) -> Vec<u8> {
        self.pad();
        let n = self.b.len() as u32;
        self.b[0..4].copy_from_slice(&n.to_ne_bytes());
        self.b
    }
}

/// The attributes of a request's payload after its fixed header of
/// `fixed` bytes: (type, data) pairs; a malformed attribute ends them.
fn attrs(payload: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = align(fixed);
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[at], payload[at + 1]]) as usize;
        let ty = u16::from_ne_bytes([payload[at + 2], payload[at + 3]]) & 0x3fff;
        if len < 4 || at + len > payload.len() {
            break;
        }
        out.push((ty, &payload[at + 4..at + len]));
        at += align(len);
    }
    out
}

fn family_of(a: &IpAddr) -> u8 {
    if a.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn scope_of(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

/// The IPv4 broadcast address of an address's subnet (none for /31, /32).
fn broadcast(c: &Cidr) -> Option<IpAddr> {
    match c.addr {
        IpAddr::V4(a) if c.prefix < 31 => {
            let host = u32::MAX >> c.prefix;
            Some(IpAddr::V4((u32::from(a) | host).into()))
        }
        _ => None,
    }
}

fn link_msg(f: &NlIface, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let lo = f.mac.is_none();
    let mut m = Msg::new(RTM_NEWLINK, flags, seq, pid);
    let ty = if lo { ARPHRD_LOOPBACK } else { ARPHRD_ETHER };
    let iff = IFF_UP
        | IFF_RUNNING
        | IFF_LOWER_UP
        | if lo {
            IFF_LOOPBACK
        } else {
            IFF_BROADCAST | IFF_MULTICAST
        };
    m.put(&[AF_UNSPEC, 0]);
    m.put(&ty.to_ne_bytes());
    m.put(&(f.index as i32).to_ne_bytes());
    m.put(&iff.to_ne_bytes());
    m.put(&0u32.to_ne_bytes());
    m.str(IFLA_IFNAME, &f.name);
    m.u32(IFLA_TXQLEN, 1000);
    m.u8(
        IFLA_OPERSTATE,
        if lo { IF_OPER_UNKNOWN } else { IF_OPER_UP },
    );
    m.u8(IFLA_LINKMODE, 0);
    m.u32(IFLA_MTU, f.mtu);
    m.u32(IFLA_MIN_MTU, if lo { 0 } else { 68 });
    m.u32(IFLA_MAX_MTU, if lo { 0 } else { 65535 });
    m.u32(IFLA_GROUP, 0);
    m.u32(IFLA_PROMISCUITY, 0);
    m.u32(IFLA_NUM_TX_QUEUES, 1);
    m.u32(IFLA_NUM_RX_QUEUES, 1);
    m.u8(IFLA_CARRIER, 1);
    m.str(IFLA_QDISC, "noqueue");
    let mac = f.mac.unwrap_or([0; 6]);
    m.attr(IFLA_ADDRESS, &mac);
    m.attr(IFLA_BROADCAST, if lo { &[0; 6] } else { &[0xff; 6] });
    // rtnl_link_stats64 then rtnl_link_stats: rx/tx packets, bytes,
    // errors, dropped first; the rest (multicast, collisions, the
    // detailed error counters) the stack does not have: zero.
    let s = &f.stats;
    let head = [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        0,
        0,
        s.rx_dropped,
        s.tx_dropped,
    ];
    let mut st64 = Vec::with_capacity(24 * 8);
    let mut st32 = Vec::with_capacity(24 * 4);
    for i in 0..24 {
        let v = head.get(i).copied().unwrap_or(0);
        st64.extend_from_slice(&v.to_ne_bytes());
        st32.extend_from_slice(&(v as u32).to_ne_bytes());
    }
    m.attr(IFLA_STATS64, &st64);
    m.attr(IFLA_STATS, &st32);
    m.done()
}

fn addr_msg(f: &NlIface, c: &Cidr, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_MULTI, seq, pid);
    m.put(&[
        family_of(&c.addr),
        c.prefix,
        IFA_F_PERMANENT as u8,
        scope_of(&c.addr),
    ]);
    m.put(&f.index.to_ne_bytes());
    m.ip(IFA_ADDRESS, c.addr);
    if c.addr.is_ipv4() {
        m.ip(IFA_LOCAL, c.addr);
        // Loopback has none (Linux's 127.0.0.1/8 on lo has no brd).
        if let Some(b) = broadcast(c).filter(|_| f.mac.is_some()) {
            m.ip(IFA_BROADCAST, b);
        }
        m.str(IFA_LABEL, &f.name);
    }
    m.u32(IFA_FLAGS, IFA_F_PERMANENT);
    // ifa_cacheinfo: preferred and valid forever, no timestamps.
    let mut ci = Vec::with_capacity(16);
    for v in [u32::MAX, u32::MAX, 0, 0] {
        ci.extend_from_slice(&v.to_ne_bytes());
    }
    m.attr(IFA_CACHEINFO, &ci);
    m.done()
}

/// A route as rtnetlink shows it.
struct Rt {
    table: u8,
    proto: u8,
    scope: u8,
    ty: u8,
    dst: Cidr,
    gateway: Option<IpAddr>,
    prefsrc: Option<IpAddr>,
    oif: u32,
}

/// The routing tables Linux would hold for these interfaces: per
/// address a connected route (main) and a local route (local); the
/// links' configured routes; loopback's 127.0.0.0/8 and ::1.
fn routes(ifaces: &[NlIface]) -> Vec<Rt> {
    let mut out = Vec::new();
    for f in ifaces {
        let lo = f.mac.is_none();
        for c in &f.addrs {
            let net = Cidr::new(c.network(), c.prefix);
            let v6 = c.addr.is_ipv6();
            // Linux puts 127.0.0.0/8 in the local table only; ::1 and
            // every IPv6 prefix in main.
            if v6 || !lo {
                out.push(Rt {
                    table: RT_TABLE_MAIN,
                    proto: RTPROT_KERNEL,
                    scope: if v6 { RT_SCOPE_UNIVERSE } else { RT_SCOPE_LINK },
                    ty: RTN_UNICAST,
                    dst: net,
                    gateway: None,
                    prefsrc: (!v6).then_some(c.addr),
                    oif: f.index,
                });
            }
            let host = if v6 { 128 } else { 32 };
            let local = if lo && !v6 {
                net
            } else {
                Cidr::new(c.addr, host)
            };
            out.push(Rt {
                table: RT_TABLE_LOCAL,
                proto: RTPROT_KERNEL,
                scope: RT_SCOPE_HOST,
                ty: RTN_LOCAL,
                dst: local,
                gateway: None,
                prefsrc: (!v6).then_some(c.addr),
                oif: f.index,
            });
        }
        for r in &f.routes {
            let dst = Cidr::new(r.dst.network(), r.dst.prefix);
            // The links' routes as taken over include the connected ones
            // made from the addresses above: shown once.
            if r.gateway.is_none()
                && out
                    .iter()
                    .any(|x| x.table == RT_TABLE_MAIN && x.dst == dst && x.oif == f.index)
            {
                continue;
            }
            let prefsrc = f
                .addrs
                .iter()
                .find(|c| c.addr.is_ipv4() == r.dst.addr.is_ipv4() && c.addr.is_ipv4())
                .map(|c| c.addr);
            out.push(Rt {
                table: RT_TABLE_MAIN,
                proto: RTPROT_BOOT,
                scope: if r.gateway.is_some() {
                    RT_SCOPE_UNIVERSE
                } else {
                    RT_SCOPE_LINK
                },
                ty: RTN_UNICAST,
                dst,
                gateway: r.gateway,
                prefsrc: if r.gateway.is_some() { None } else { prefsrc },
                oif: f.index,
            });
        }
    }
    out
}

fn route_msg(r: &Rt, flags: u16, rtm_flags: u32, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWROUTE, flags, seq, pid);
    let v6 = r.dst.addr.is_ipv6();
    m.put(&[
        family_of(&r.dst.addr),
        r.dst.prefix,
        0,
        0,
        r.table,
        r.proto,
        r.scope,
        r.ty,
    ]);
    m.put(&rtm_flags.to_ne_bytes());
    m.u32(RTA_TABLE, r.table as u32);
    if r.dst.prefix > 0 {
        m.ip(RTA_DST, r.dst.addr);
    }
    if v6 {
        m.u32(RTA_PRIORITY, if r.ty == RTN_LOCAL { 0 } else { 256 });
    }
    if let Some(s) = r.prefsrc {
        m.ip(RTA_PREFSRC, s);
    }
    if let Some(g) = r.gateway {
        m.ip(RTA_GATEWAY, g);
    }
    m.u32(RTA_OIF, r.oif);
    if v6 {
        m.u8(RTA_PREF, 0);
    }
    m.done()
}

fn error_msg(h: &Hdr, req: &[u8], err: i32, a: &Asker) -> Vec<u8> {
    // An ack (0) or CAP_ACK carries the request's header only, an error
    // the whole request.
    let capped = err == 0 || a.cap_ack;
    let mut m = Msg::new(
        NLMSG_ERROR,
        if capped { NLM_F_CAPPED } else { 0 },
        h.seq,
        a.portid,
    );
    m.put(&(-err).to_ne_bytes());
    if capped {
        m.put(&req[..NLMSG_HDRLEN]);
    } else {
        m.put(req);
    }
    m.done()
}

/// Packs a dump's messages into datagrams of at most [`DUMP_DATAGRAM`]
/// bytes (a message larger than that alone in one), with NLMSG_DONE at
/// the end.
fn dump(msgs: Vec<Vec<u8>>, h: &Hdr, a: &Asker) -> Vec<Vec<u8>> {
    let mut done = Msg::new(NLMSG_DONE, NLM_F_MULTI, h.seq, a.portid);
    done.put(&0i32.to_ne_bytes());
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for m in msgs.into_iter().chain(std::iter::once(done.done())) {
        if !cur.is_empty() && cur.len() + m.len() > DUMP_DATAGRAM {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&m);
    }
    out.push(cur);
    out
}

/// Answers one request message (header checked, `req` exactly its
/// bytes): the reply datagrams, or an errno.
fn answer(ifaces: &[NlIface], h: &Hdr, req: &[u8], a: &Asker) -> Result<Vec<Vec<u8>>, i32> {
    let payload = &req[NLMSG_HDRLEN..];
    let kind = h.ty & 3;
    if h.ty > RTM_MAX {
        return Err(libc::EOPNOTSUPP);
    }
    if kind != 2 {
        // NEW, DEL, SET: Linux checks the capability first.
        return Err(if a.net_admin {
            libc::EOPNOTSUPP
        } else {
            libc::EPERM
        });
    }
    if payload.is_empty() {
        // Shorter than an rtgenmsg: Linux ignores it.
        return Ok(Vec::new());
    }
    let family = payload[0];
    let is_dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
    let want =
        |f: u8| matches!(family, AF_UNSPEC) || family == f || family == libc::AF_PACKET as u8;
    match h.ty {
        RTM_GETLINK if is_dump => {
            if a.strict && payload.len() < 16 {
                return Err(libc::EINVAL);
            }
            let msgs = ifaces
                .iter()
                .map(|f| link_msg(f, NLM_F_MULTI, h.seq, a.portid))
                .collect();
            Ok(dump(msgs, h, a))
        }
        RTM_GETLINK => {
            if payload.len() < 16 {
                return Err(libc::EINVAL);
            }
            let index = i32::from_ne_bytes(payload[4..8].try_into().unwrap());
            let name = attrs(payload, 16)
                .into_iter()
                .find(|(t, _)| *t == IFLA_IFNAME)
                .map(|(_, d)| {
                    let end = d.iter().position(|c| *c == 0).unwrap_or(d.len());
                    d[..end].to_vec()
                });
            let f = if index > 0 {
                ifaces.iter().find(|f| f.index == index as u32)
            } else if let Some(n) = &name {
                ifaces.iter().find(|f| f.name.as_bytes() == n.as_slice())
            } else {
                return Err(libc::EINVAL);
            };
            let f = f.ok_or(libc::ENODEV)?;
            Ok(vec![link_msg(f, 0, h.seq, a.portid)])
        }
        RTM_GETADDR if is_dump => {
            if a.strict && payload.len() < 8 {
                return Err(libc::EINVAL);
            }
            let only = if a.strict {
                u32::from_ne_bytes(payload[4..8].try_into().unwrap())
            } else {
                0
            };
            let mut msgs = Vec::new();
            for f in ifaces.iter().filter(|f| only == 0 || f.index == only) {
                for c in f.addrs.iter().filter(|c| want(family_of(&c.addr))) {
                    msgs.push(addr_msg(f, c, h.seq, a.portid));
                }
            }
            Ok(dump(msgs, h, a))
        }
        RTM_GETROUTE if is_dump => {
            if a.strict && payload.len() < 12 {
                return Err(libc::EINVAL);
            }
            let table = if a.strict { payload[4] } else { 0 };
            let msgs = routes(ifaces)
                .iter()
                .filter(|r| want(family_of(&r.dst.addr)))
                .filter(|r| table == 0 || r.table == table)
                .map(|r| route_msg(r, NLM_F_MULTI, 0, h.seq, a.portid))
                .collect();
            Ok(dump(msgs, h, a))
        }
        RTM_GETROUTE => {
            // `ip route get`: the route to RTA_DST, as a cloned /32.
            if payload.len() < 12 {
                return Err(libc::EINVAL);
            }
            let fam = payload[0];
            let dst = attrs(payload, 12)
                .into_iter()
                .find(|(t, _)| *t == RTA_DST)
                .and_then(|(_, d)| match (fam, d.len()) {
                    (AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(d).unwrap())),
                    (AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(d).unwrap())),
                    _ => None,
                })
                .ok_or(libc::EINVAL)?;
            let all = routes(ifaces);
            let best = all
                .iter()
                .filter(|r| r.dst.contains(&dst))
                .max_by_key(|r| (r.table == RT_TABLE_LOCAL, r.dst.prefix))
                .ok_or(libc::ENETUNREACH)?;
            let src = if best.ty == RTN_LOCAL {
                Some(dst)
            } else {
                ifaces
                    .iter()
                    .find(|f| f.index == best.oif)
                    .and_then(|f| {
                        f.addrs
                            .iter()
                            .find(|c| c.addr.is_ipv4() == dst.is_ipv4() && scope_of(&c.addr) == 0)
                    })
                    .map(|c| c.addr)
            };
            let lo = ifaces.iter().find(|f| f.mac.is_none()).map(|f| f.index);
            let r = Rt {
                table: if best.ty == RTN_LOCAL {
                    RT_TABLE_LOCAL
                } else {
                    RT_TABLE_MAIN
                },
                proto: best.proto,
                scope: RT_SCOPE_UNIVERSE,
                ty: best.ty,
                dst: Cidr::new(dst, if dst.is_ipv4() { 32 } else { 128 }),
                gateway: best.gateway,
                prefsrc: src,
                oif: if best.ty == RTN_LOCAL {
                    lo.unwrap_or(best.oif)
                } else {
                    best.oif
                },
            };
            Ok(vec![route_msg(&r, 0, RTM_F_CLONED, h.seq, a.portid)])
        }
        // Neighbours, rules, qdiscs, ...: the stack keeps none that it
        // could show faithfully.
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// Serves one sendmsg's worth of request bytes: the reply datagrams to
/// queue on the socket, in order. Like Linux, messages are taken one
/// after another while a whole header fits and its length is sane;
/// messages without NLM_F_REQUEST and control messages are skipped
/// (acked if asked); every error is an NLMSG_ERROR reply. Replies stop
/// once they fill `room` bytes (the socket's receive buffer): the second
/// value then says replies were lost (Linux's overrun, ENOBUFS).
pub fn serve(ifaces: &[NlIface], buf: &[u8], a: &Asker, room: usize) -> (Vec<Vec<u8>>, bool) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut used = 0usize;
    let mut at = 0usize;
    while buf.len() - at >= NLMSG_HDRLEN {
        if used >= room {
            return (out, true);
        }
        let b = &buf[at..];
        let h = Hdr {
            len: u32::from_ne_bytes(b[0..4].try_into().unwrap()),
            ty: u16::from_ne_bytes(b[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(b[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(b[8..12].try_into().unwrap()),
        };
        let len = h.len as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let req = &b[..len];
        if h.flags & NLM_F_REQUEST != 0 {
            let r = if h.ty < NLMSG_MIN_TYPE {
                // NLMSG_NOOP and the other control types: nothing to do.
                let _ = NLMSG_NOOP;
                Ok(Vec::new())
            } else {
                answer(ifaces, &h, req, a)
            };
            let dumped = h.ty >= NLMSG_MIN_TYPE && h.flags & NLM_F_DUMP == NLM_F_DUMP;
            let mut replies = match r {
                Ok(replies) => replies,
                Err(e) => vec![error_msg(&h, req, e, a)],
            };
            if h.flags & NLM_F_ACK != 0 && !dumped && !replies.iter().any(|r| is_error(r)) {
                replies.push(error_msg(&h, req, 0, a));
            }
            used += replies.iter().map(|r| r.len()).sum::<usize>();
            out.extend(replies);
        }
        at += align(len).min(b.len());
    }
    (out, false)
}

fn is_error(d: &[u8]) -> bool {
    d.len() >= 6 && u16::from_ne_bytes([d[4], d[5]]) == NLMSG_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifaces() -> Vec<NlIface> {
        vec![
            NlIface {
                name: "lo".into(),
                index: 1,
                mac: None,
                mtu: 65536,
                addrs: vec![
                    Cidr::parse("127.0.0.1/8").unwrap(),
                    Cidr::parse("::1/128").unwrap(),
                ],
                routes: vec![],
                stats: DevStats::default(),
            },
            NlIface {
                name: "eth0".into(),
                index: 7,
                mac: Some([2, 0, 0, 0, 0, 9]),
                mtu: 1500,
                addrs: vec![
                    Cidr::parse("10.1.2.3/24").unwrap(),
                    Cidr::parse("fd00::3/64").unwrap(),
                ],
                routes: vec![
                    RouteConfig {
                        dst: Cidr::parse("0.0.0.0/0").unwrap(),
                        gateway: Some("10.1.2.1".parse().unwrap()),
                    },
                    // The connected route, as the takeover reads it too.
                    RouteConfig {
                        dst: Cidr::parse("10.1.2.0/24").unwrap(),
                        gateway: None,
                    },
                ],
                stats: DevStats {
                    rx_packets: 5,
                    ..Default::default()
                },
            },
        ]
    }

    fn req(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Msg::new(ty, flags, seq, 0);
        m.put(body);
        m.done()
    }

    /// Splits datagrams into (type, flags, seq, pid, payload) messages.
    fn msgs(dgrams: &[Vec<u8>]) -> Vec<(u16, u16, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        for d in dgrams {
            let mut at = 0;
            while at < d.len() {
                let len = u32::from_ne_bytes(d[at..at + 4].try_into().unwrap()) as usize;
                assert!(len >= 16 && at + len <= d.len(), "bad framing");
                let ty = u16::from_ne_bytes(d[at + 4..at + 6].try_into().unwrap());
                let fl = u16::from_ne_bytes(d[at + 6..at + 8].try_into().unwrap());
                let seq = u32::from_ne_bytes(d[at + 8..at + 12].try_into().unwrap());
                let pid = u32::from_ne_bytes(d[at + 12..at + 16].try_into().unwrap());
                out.push((ty, fl, seq, pid, d[at + 16..at + len].to_vec()));
                at += align(len);
            }
        }
        out
    }

    const ASK: Asker = Asker {
        portid: 4242,
        strict: false,
        cap_ack: false,
        net_admin: false,
    };

    #[test]
    fn link_dump_lists_loopback_and_links_then_done() {
        let r = serve(
            &ifaces(),
            &req(RTM_GETLINK, 0x301, 9, &[17]),
            &ASK,
            usize::MAX,
        )
        .0;
        let m = msgs(&r);
        assert_eq!(m.len(), 3);
        for x in &m[..2] {
            assert_eq!((x.0, x.1, x.2, x.3), (RTM_NEWLINK, NLM_F_MULTI, 9, 4242));
        }
        assert_eq!((m[2].0, m[2].1), (NLMSG_DONE, NLM_F_MULTI));
        assert_eq!(m[2].4, 0i32.to_ne_bytes());
        let eth = &m[1].4;
        assert_eq!(i32::from_ne_bytes(eth[4..8].try_into().unwrap()), 7);
        let at = attrs(eth, 16);
        let get = |t| at.iter().find(|(x, _)| *x == t).unwrap().1;
        assert_eq!(get(IFLA_IFNAME), b"eth0\0");
        assert_eq!(get(IFLA_ADDRESS), [2, 0, 0, 0, 0, 9]);
        assert_eq!(get(IFLA_MTU), 1500u32.to_ne_bytes());
        let lo_flags = u32::from_ne_bytes(m[0].4[8..12].try_into().unwrap());
        assert!(lo_flags & IFF_LOOPBACK != 0 && lo_flags & IFF_UP != 0);
    }

    #[test]
    fn addr_dump_filters_by_family() {
        let all = msgs(
            &serve(
                &ifaces(),
                &req(RTM_GETADDR, 0x301, 1, &[0]),
                &ASK,
                usize::MAX,
            )
            .0,
        );
        assert_eq!(all.len(), 5);
        let v4 = msgs(
            &serve(
                &ifaces(),
                &req(RTM_GETADDR, 0x301, 1, &[AF_INET]),
                &ASK,
                usize::MAX,
            )
            .0,
        );
        assert_eq!(v4.len(), 3);
        let eth = &v4[1].4;
        assert_eq!(eth[..2], [AF_INET, 24]);
        assert_eq!(u32::from_ne_bytes(eth[4..8].try_into().unwrap()), 7);
        let at = attrs(eth, 8);
        let get = |t| at.iter().find(|(x, _)| *x == t).unwrap().1;
        assert_eq!(get(IFA_LOCAL), [10, 1, 2, 3]);
        assert_eq!(get(IFA_BROADCAST), [10, 1, 2, 255]);
        assert_eq!(get(IFA_LABEL), b"eth0\0");
        let lo = attrs(&v4[0].4, 8);
        assert!(!lo.iter().any(|(t, _)| *t == IFA_BROADCAST));
    }

    #[test]
    fn route_dump_and_get() {
        let m = msgs(
            &serve(
                &ifaces(),
                &req(RTM_GETROUTE, 0x301, 1, &[AF_INET]),
                &ASK,
                usize::MAX,
            )
            .0,
        );
        let main: Vec<_> = m
            .iter()
            .filter(|x| x.0 == RTM_NEWROUTE && x.4[4] == RT_TABLE_MAIN)
            .collect();
        // 10.1.2.0/24 connected and the default route.
        assert_eq!(main.len(), 2);
        let def = main.iter().find(|x| x.4[1] == 0).unwrap();
        let at = attrs(&def.4, 12);
        assert!(at.contains(&(RTA_GATEWAY, &[10, 1, 2, 1][..])));
        assert!(at.contains(&(RTA_OIF, &7u32.to_ne_bytes()[..])));
        // ip route get 8.8.8.8
        let mut body = vec![AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&RTA_DST.to_ne_bytes());
        body.extend_from_slice(&[8, 8, 8, 8]);
        let g = msgs(&serve(&ifaces(), &req(RTM_GETROUTE, 1, 2, &body), &ASK, usize::MAX).0);
        assert_eq!(g.len(), 1);
        let at = attrs(&g[0].4, 12);
        assert!(at.contains(&(RTA_GATEWAY, &[10, 1, 2, 1][..])));
        assert!(at.contains(&(RTA_PREFSRC, &[10, 1, 2, 3][..])));
    }

    #[test]
    fn changes_are_refused_and_errors_framed() {
        let body = [AF_INET, 24, 0, 0, 7, 0, 0, 0];
        let r = msgs(
            &serve(
                &ifaces(),
                &req(RTM_NEWADDR, 0x405, 3, &body),
                &ASK,
                usize::MAX,
            )
            .0,
        );
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].0, r[0].2, r[0].3), (NLMSG_ERROR, 3, 4242));
        assert_eq!(
            i32::from_ne_bytes(r[0].4[0..4].try_into().unwrap()),
            -libc::EPERM
        );
        // The whole request follows the error.
        assert_eq!(r[0].4.len(), 4 + 16 + body.len());
        let admin = Asker {
            net_admin: true,
            cap_ack: true,
            ..ASK
        };
        let r = msgs(
            &serve(
                &ifaces(),
                &req(RTM_NEWADDR, 0x405, 3, &body),
                &admin,
                usize::MAX,
            )
            .0,
        );
        assert_eq!(
            i32::from_ne_bytes(r[0].4[0..4].try_into().unwrap()),
            -libc::EOPNOTSUPP
        );
        assert_eq!(r[0].4.len(), 4 + 16);
        // Single get of a missing link, with and without an ack.
        let mut body = vec![0u8; 16];
        body[4..8].copy_from_slice(&99i32.to_ne_bytes());
        let r = msgs(&serve(&ifaces(), &req(RTM_GETLINK, 5, 4, &body), &ASK, usize::MAX).0);
        assert_eq!(
            i32::from_ne_bytes(r[0].4[0..4].try_into().unwrap()),
            -libc::ENODEV
        );
        body[4..8].copy_from_slice(&7i32.to_ne_bytes());
        let r = msgs(&serve(&ifaces(), &req(RTM_GETLINK, 5, 4, &body), &ASK, usize::MAX).0);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].0, r[0].1), (RTM_NEWLINK, 0));
        assert_eq!((r[1].0, r[1].1), (NLMSG_ERROR, NLM_F_CAPPED));
        assert_eq!(r[1].4[0..4], 0i32.to_ne_bytes());
    }

    #[test]
    fn malformed_batches_stop_without_reading_past_the_buffer() {
        let good = req(RTM_GETLINK, 0x301, 1, &[0]);
        // Length past the end, length under a header, a truncated header.
        for bad_len in [0u32, 15, 1000, u32::MAX] {
            let mut b = good.clone();
            b[0..4].copy_from_slice(&bad_len.to_ne_bytes());
            assert!(serve(&ifaces(), &b, &ASK, usize::MAX).0.is_empty());
        }
        assert!(serve(&ifaces(), &good[..10], &ASK, usize::MAX).0.is_empty());
        // Two requests in one buffer: both answered, in order.
        let mut two = good.clone();
        two.extend_from_slice(&req(RTM_GETADDR, 0x301, 2, &[0]));
        let m = msgs(&serve(&ifaces(), &two, &ASK, usize::MAX).0);
        assert_eq!(m.iter().filter(|x| x.0 == NLMSG_DONE).count(), 2);
        // Attributes with lying lengths are ignored.
        let mut body = vec![0u8; 16];
        body.extend_from_slice(&200u16.to_ne_bytes());
        body.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        let r = msgs(&serve(&ifaces(), &req(RTM_GETLINK, 1, 4, &body), &ASK, usize::MAX).0);
        assert_eq!(
            i32::from_ne_bytes(r[0].4[0..4].try_into().unwrap()),
            -libc::EINVAL
        );
        // Unknown types past RTM_MAX and unknown gets: EOPNOTSUPP.
        for ty in [30u16, 500] {
            let r = msgs(&serve(&ifaces(), &req(ty, 0x301, 4, &[0]), &ASK, usize::MAX).0);
            assert_eq!(
                i32::from_ne_bytes(r[0].4[0..4].try_into().unwrap()),
                -libc::EOPNOTSUPP
            );
        }
    }

    #[test]
    fn big_dumps_span_datagrams_within_the_size() {
        let mut many = ifaces();
        for i in 0..200u32 {
            many[1]
                .addrs
                .push(Cidr::new(IpAddr::V4((0x0a000000 + i).into()), 24));
        }
        let r = serve(&many, &req(RTM_GETADDR, 0x301, 1, &[0]), &ASK, usize::MAX).0;
        assert!(r.len() > 1);
        assert!(r.iter().all(|d| d.len() <= DUMP_DATAGRAM));
        let m = msgs(&r);
        assert_eq!(m.len(), 204 + 1);
        assert_eq!(m.last().unwrap().0, NLMSG_DONE);
    }

    #[test]
    fn replies_stop_at_the_receive_room() {
        let mut many = Vec::new();
        for _ in 0..1000 {
            many.extend_from_slice(&req(RTM_GETLINK, 0x301, 1, &[0]));
        }
        let (r, lost) = serve(&ifaces(), &many, &ASK, 4096);
        assert!(lost);
        let n: usize = r.iter().map(|d| d.len()).sum();
        assert!(n < 4096 + DUMP_DATAGRAM, "{n}");
        let (_, lost) = serve(&ifaces(), &many[..20 * 3], &ASK, usize::MAX);
        assert!(!lost);
    }
}
