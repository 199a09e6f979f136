//! A minimal rtnetlink client: requests built by hand, each acknowledged
//! (NLM_F_ACK) before the next. Used on the host to join the pod's
//! interface and the VM's tap (tc ingress + mirred redirect) and in the
//! guest to give eth0 the pod's addresses and routes. Small on purpose:
//! the few messages the vm level sends, no dump parsing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_NEWQDISC: u16 = 36;
pub const RTM_DELQDISC: u16 = 37;
pub const RTM_NEWTFILTER: u16 = 44;
pub const RTM_DELTFILTER: u16 = 45;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;

/// The ingress qdisc's parent and handle (`tc qdisc add dev X ingress`).
pub const TC_H_INGRESS: u32 = 0xffff_fff1;
pub const INGRESS_HANDLE: u32 = 0xffff_0000;
/// ETH_P_ALL in network byte order, as tcm_info's low half wants it.
const ETH_P_ALL_BE: u32 = 0x0300;

/// A message under construction: header, fixed part, attributes.
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    pub fn new(typ: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&typ.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        buf.extend_from_slice(fixed);
        pad(&mut buf);
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    pub fn attr(&mut self, typ: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    pub fn begin(&mut self, typ: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(typ | 0x8000).to_ne_bytes()); // NLA_F_NESTED
        self
    }

    pub fn end(&mut self) -> &mut Msg {
        let at = self.nests.pop().expect("end without begin");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    pub fn bytes(&mut self) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        &self.buf
    }
}

fn pad(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

/// A NETLINK_ROUTE socket of the calling thread's network namespace.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open() -> io::Result<Socket> {
        // SAFETY: plain socket creation; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is ours.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends `m` and waits for its acknowledgement: the kernel's error.
    pub fn call(&self, m: &mut Msg) -> io::Result<()> {
        let b = m.bytes();
        // SAFETY: sending our buffer on our socket (to the kernel: no
        // address needed on a netlink socket that is not bound elsewhere).
        let n = unsafe { libc::send(self.0.as_raw_fd(), b.as_ptr().cast(), b.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut r = [0u8; 4096];
        loop {
            // SAFETY: receiving into our buffer.
            let n = unsafe { libc::recv(self.0.as_raw_fd(), r.as_mut_ptr().cast(), r.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            if n >= 20 && u16::from_ne_bytes([r[4], r[5]]) == NLMSG_ERROR {
                let err = i32::from_ne_bytes(r[16..20].try_into().unwrap());
                return if err == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-err))
                };
            }
            // (anything else is not the answer to this request)
        }
    }
}

/// `struct tcmsg`: family, ifindex, handle, parent, info.
fn tcmsg(ifindex: i32, handle: u32, parent: u32, info: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4]; // family AF_UNSPEC and padding
    b.extend_from_slice(&ifindex.to_ne_bytes());
    b.extend_from_slice(&handle.to_ne_bytes());
    b.extend_from_slice(&parent.to_ne_bytes());
    b.extend_from_slice(&info.to_ne_bytes());
    b
}

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
const TC_ACT_STOLEN: i32 = 4;
const TCA_EGRESS_REDIR: i32 = 1;

/// `tc qdisc add dev IFINDEX ingress` (exclusive: EEXIST if the device
/// has one already).
pub fn add_ingress_qdisc(s: &Socket, ifindex: i32) -> io::Result<()> {
    let mut m = Msg::new(
        RTM_NEWQDISC,
        NLM_F_CREATE | NLM_F_EXCL,
        &tcmsg(ifindex, INGRESS_HANDLE, TC_H_INGRESS, 0),
    );
    m.attr(TCA_KIND, b"ingress\0");
    s.call(&mut m)
}

/// `tc qdisc del dev IFINDEX ingress` (its filters go with it).
pub fn del_ingress_qdisc(s: &Socket, ifindex: i32) -> io::Result<()> {
    let mut m = Msg::new(
        RTM_DELQDISC,
        0,
        &tcmsg(ifindex, INGRESS_HANDLE, TC_H_INGRESS, 0),
    );
    s.call(&mut m)
}

/// `tc filter add dev FROM ingress prio PRIO protocol all u32 match u8 0
/// 0 action mirred egress redirect dev TO`: every frame arriving on FROM
/// leaves by TO. (u32 rather than matchall, as Kata: kernels without
/// cls_matchall have it.)
pub fn add_redirect(s: &Socket, from: i32, prio: u16, to: i32) -> io::Result<()> {
    let info = (u32::from(prio) << 16) | ETH_P_ALL_BE;
    let mut m = Msg::new(
        RTM_NEWTFILTER,
        NLM_F_CREATE | NLM_F_EXCL,
        &tcmsg(from, 0, INGRESS_HANDLE, info),
    );
    // struct tc_u32_sel: flags, offshift, nkeys, pad, offmask, off,
    // offoff, hoff, hmask; then one tc_u32_key (mask, val, off, offmask)
    // that every frame matches.
    let mut sel = vec![TC_U32_TERMINAL, 0, 1, 0];
    sel.extend_from_slice(&[0u8; 12]);
    sel.extend_from_slice(&[0u8; 16]);
    // struct tc_mirred: index, capab, action, refcnt, bindcnt, eaction,
    // ifindex.
    let mut parms = Vec::new();
    for v in [0i32, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, to] {
        parms.extend_from_slice(&v.to_ne_bytes());
    }
    m.attr(TCA_KIND, b"u32\0")
        .begin(TCA_OPTIONS)
        .attr(TCA_U32_SEL, &sel)
        .begin(TCA_U32_ACT)
        .begin(1)
        .attr(TCA_ACT_KIND, b"mirred\0")
        .begin(TCA_ACT_OPTIONS)
        .attr(TCA_MIRRED_PARMS, &parms)
        .end()
        .end()
        .end()
        .end();
    s.call(&mut m)
}

/// Removes the ingress filters of priority PRIO on IFINDEX.
pub fn del_filters(s: &Socket, ifindex: i32, prio: u16) -> io::Result<()> {
    let info = (u32::from(prio) << 16) | ETH_P_ALL_BE;
    let mut m = Msg::new(RTM_DELTFILTER, 0, &tcmsg(ifindex, 0, INGRESS_HANDLE, info));
    s.call(&mut m)
}

/// `struct ifinfomsg`.
fn ifinfomsg(ifindex: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4]; // family, pad, type
    b.extend_from_slice(&ifindex.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;

/// Sets a link's name (if given), MTU (if given) and brings it up.
pub fn link_up(s: &Socket, ifindex: i32, name: Option<&str>, mtu: Option<u32>) -> io::Result<()> {
    let up = libc::IFF_UP as u32;
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(ifindex, up, up));
    if let Some(n) = name {
        let mut b = n.as_bytes().to_vec();
        b.push(0);
        m.attr(IFLA_IFNAME, &b);
    }
    if let Some(mtu) = mtu {
        m.attr(IFLA_MTU, &mtu.to_ne_bytes());
    }
    s.call(&mut m)
}

/// Sets a link's name and MTU without bringing it up (a link must be down
/// to be renamed).
pub fn link_set(s: &Socket, ifindex: i32, name: Option<&str>, mtu: Option<u32>) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(ifindex, 0, 0));
    if let Some(n) = name {
        let mut b = n.as_bytes().to_vec();
        b.push(0);
        m.attr(IFLA_IFNAME, &b);
    }
    if let Some(mtu) = mtu {
        m.attr(IFLA_MTU, &mtu.to_ne_bytes());
    }
    s.call(&mut m)
}

const IFA_LOCAL: u16 = 2;
const IFA_ADDRESS: u16 = 1;

/// `ip addr add ADDR/PREFIX dev IFINDEX` (IPv4).
pub fn add_addr4(s: &Socket, ifindex: i32, addr: [u8; 4], prefix: u8) -> io::Result<()> {
    // struct ifaddrmsg: family, prefixlen, flags, scope, index
    let mut f = vec![libc::AF_INET as u8, prefix, 0, 0];
    f.extend_from_slice(&(ifindex as u32).to_ne_bytes());
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &f);
    m.attr(IFA_LOCAL, &addr).attr(IFA_ADDRESS, &addr);
    s.call(&mut m)
}

const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;

/// `ip -6 addr add ADDR/PREFIX dev IFINDEX nodad`: the address is the
/// pod's already (its veth's, whose stack no longer sees the link), so
/// duplicate address detection would only delay it.
pub fn add_addr6(s: &Socket, ifindex: i32, addr: [u8; 16], prefix: u8) -> io::Result<()> {
    let mut f = vec![libc::AF_INET6 as u8, prefix, IFA_F_NODAD as u8, 0];
    f.extend_from_slice(&(ifindex as u32).to_ne_bytes());
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &f);
    m.attr(IFA_ADDRESS, &addr)
        .attr(IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
    s.call(&mut m)
}

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

/// `ip route add DST/PREFIX [via GW] dev IFINDEX` (IPv4): a route with a
/// gateway has universe scope, one without is on the link.
pub fn add_route4(
    s: &Socket,
    ifindex: i32,
    dst: [u8; 4],
    prefix: u8,
    gateway: Option<[u8; 4]>,
) -> io::Result<()> {
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
    // scope, type, flags
    let scope = if gateway.is_some() {
        RT_SCOPE_UNIVERSE
    } else {
        RT_SCOPE_LINK
    };
    let mut f = vec![
        libc::AF_INET as u8,
        prefix,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        scope,
        RTN_UNICAST,
    ];
    f.extend_from_slice(&0u32.to_ne_bytes());
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &f);
    if prefix > 0 {
        m.attr(RTA_DST, &dst);
    }
    if let Some(gw) = gateway {
        m.attr(RTA_GATEWAY, &gw);
    }
    m.attr(RTA_OIF, &(ifindex as u32).to_ne_bytes());
    s.call(&mut m)
}

/// `ip -6 route add DST/PREFIX [via GW] dev IFINDEX` (IPv6 routes have
/// universe scope either way).
pub fn add_route6(
    s: &Socket,
    ifindex: i32,
    dst: [u8; 16],
    prefix: u8,
    gateway: Option<[u8; 16]>,
) -> io::Result<()> {
    let mut f = vec![
        libc::AF_INET6 as u8,
        prefix,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ];
    f.extend_from_slice(&0u32.to_ne_bytes());
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &f);
    if prefix > 0 {
        m.attr(RTA_DST, &dst);
    }
    if let Some(gw) = gateway {
        m.attr(RTA_GATEWAY, &gw);
    }
    m.attr(RTA_OIF, &(ifindex as u32).to_ne_bytes());
    s.call(&mut m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_the_nested_flag() {
        let mut m = Msg::new(RTM_NEWTFILTER, 0, &[0u8; 20]);
        m.begin(2).attr(1, b"ab\0").end();
        let b = m.bytes().to_vec();
        assert_eq!(
            u32::from_ne_bytes(b[..4].try_into().unwrap()) as usize,
            b.len()
        );
        // header 16, tcmsg 20, nest header 4, attr 4 + 3 padded to 8
        assert_eq!(b.len(), 16 + 20 + 4 + 8);
        let nest = &b[36..];
        assert_eq!(u16::from_ne_bytes([nest[0], nest[1]]), 4 + 8);
        assert_eq!(u16::from_ne_bytes([nest[2], nest[3]]), 2 | 0x8000);
        assert_eq!(u16::from_ne_bytes([nest[4], nest[5]]), 7);
    }
}
