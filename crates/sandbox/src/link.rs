//! The link of `--network sandbox`: before the kernel confines itself,
//! the container's init takes over the Ethernet interfaces of the
//! container's network namespace, as gVisor's runsc does. For each one
//! it reads the MAC, MTU, addresses and routes (rtnetlink), opens an
//! AF_PACKET socket bound to it, and then removes the addresses from the
//! host's stack, so the host no longer answers for them (no ARP replies,
//! no resets for ports it does not know): the kernel's stack is the only
//! TCP/IP behind them. The kernel gets the sockets and the configuration
//! and moves frames with read and write; it never needs netlink or
//! socket(2) itself. CNI plugins keep configuring the namespace as usual.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use atoll_kernel::kernel::packet_link::HostLink;
use atoll_netstack::{Cidr, LinkConfig, RouteConfig};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// `<linux/if_packet.h>`, not in the libc crate.
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A route-netlink socket of the container's network namespace.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn new() -> std::io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request and collects its answers until the dump's end or
    /// the acknowledgement.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 1 << 16];
        loop {
            // SAFETY: recv into rx's rx.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    rx.as_mut_ptr() as *mut libc::c_void,
                    rx.len(),
                    0,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            let mut off = 0;
            while off + 16 <= n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..n])
                    .map_err(|e| std::io::Error::other(format!("rtnetlink answer: {e}")))?;
                let len = m.header.length as usize;
                if len < 16 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(std::io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::InnerMessage(i) => out.push(i),
                    _ => {}
                }
            }
        }
    }

    fn dump(&mut self, msg: RouteNetlinkMessage) -> std::io::Result<Vec<RouteNetlinkMessage>> {
        self.request(msg, NLM_F_DUMP)
    }
}

/// The address of an RTM_NEWADDR (IFA_LOCAL for IPv4: IFA_ADDRESS is the
/// peer on point-to-point links).
fn addr_of(a: &AddressMessage) -> Option<Cidr> {
    let local = a.attributes.iter().find_map(|x| match x {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = a.attributes.iter().find_map(|x| match x {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    Some(Cidr::new(local.or(addr)?, a.header.prefix_len))
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

/// A unicast route of the main table: (output interface, route).
fn route_of(r: &RouteMessage) -> Option<(u32, RouteConfig)> {
    if r.header.table != RouteHeader::RT_TABLE_MAIN || r.header.kind != RouteType::Unicast {
        return None;
    }
    let mut oif = None;
    let mut dst = None;
    let mut gateway = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Destination(d) => dst = route_ip(d),
            RouteAttribute::Gateway(g) => gateway = route_ip(g),
            _ => {}
        }
    }
    let dst = match dst {
        Some(d) => d,
        None if r.header.address_family == netlink_packet_route::AddressFamily::Inet => {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
        None if r.header.address_family == netlink_packet_route::AddressFamily::Inet6 => {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
        None => return None,
    };
    Some((
        oif?,
        RouteConfig {
            dst: Cidr::new(dst, r.header.destination_prefix_length),
            gateway,
        },
    ))
}

fn set_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: an int option on our socket.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// An AF_PACKET socket bound to interface `index` (non-blocking); whether
/// its frames carry a virtio-net header.
fn packet_socket(index: u32) -> std::io::Result<(OwnedFd, bool)> {
    // Protocol 0: nothing is queued until the bind names the interface.
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Offloads with the host: TCP segments of up to 64 KiB whose
    // checksums the host (or the peer's NIC) completes, as virtio does.
    let vnet = set_int(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, 1);
    // Frames the host's own stack sends on the interface are not ours.
    set_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
    // Room for bursts: the kernel drains the socket between workload
    // syscalls and when idle.
    set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 4 << 20);
    set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 4 << 20);
    // SAFETY: a zeroed sockaddr_ll filled in below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = index as i32;
    // SAFETY: bind with a sockaddr_ll of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, vnet))
}

/// One interface to take: its configuration and the host's addresses.
struct Taking {
    config: LinkConfig,
    host_addrs: Vec<AddressMessage>,
}

/// What the namespace's interfaces are, from rtnetlink dumps: every
/// Ethernet interface that is up (loopback is the kernel's own; tunnels
/// and down interfaces are left alone).
fn survey(nl: &mut Rtnl) -> Result<Vec<Taking>, String> {
    let dump = |nl: &mut Rtnl, m, what| nl.dump(m).map_err(|e| format!("rtnetlink {what}: {e}"));
    let links = dump(
        nl,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "links",
    )?;
    let addrs = dump(
        nl,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        "addresses",
    )?;
    let routes = dump(
        nl,
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        "routes",
    )?;
    let mut out = Vec::new();
    for l in links {
        let RouteNetlinkMessage::NewLink(l) = l else {
            continue;
        };
        let h = &l.header;
        if h.flags.contains(LinkFlags::Loopback)
            || !h.flags.contains(LinkFlags::Up)
            || h.link_layer_type != LinkLayerType::Ether
        {
            continue;
        }
        let index = h.index;
        let mut name = format!("if{index}");
        let mut mac = None;
        let mut mtu = 1500;
        for a in &l.attributes {
            match a {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::Address(m) if m.len() == 6 => {
                    mac = Some([m[0], m[1], m[2], m[3], m[4], m[5]])
                }
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        let Some(mac) = mac else {
            continue;
        };
        let host_addrs: Vec<AddressMessage> = addrs
            .iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a.clone()),
                _ => None,
            })
            .collect();
        let link_routes = routes
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(r) => route_of(r),
                _ => None,
            })
            .filter(|(oif, _)| *oif == index)
            .map(|(_, r)| r)
            .collect();
        out.push(Taking {
            config: LinkConfig {
                name,
                index,
                mac,
                mtu,
                addrs: host_addrs.iter().filter_map(addr_of).collect(),
                routes: link_routes,
            },
            host_addrs,
        });
    }
    Ok(out)
}

/// Takes over the namespace's Ethernet interfaces (see the module's
/// comment); none found is no error (the stack then has loopback only).
pub fn take_over() -> Result<Vec<HostLink>, String> {
    let mut nl = Rtnl::new().map_err(|e| format!("rtnetlink: {e}"))?;
    let taking = survey(&mut nl)?;
    let mut links = Vec::new();
    for t in &taking {
        let (fd, vnet) = packet_socket(t.config.index)
            .map_err(|e| format!("{}: packet socket: {e}", t.config.name))?;
        links.push((t.config.clone(), fd, vnet));
    }
    // Every socket is open: the host's stack lets go of the addresses
    // (and with them of the routes through the interfaces).
    for t in &taking {
        for a in &t.host_addrs {
            nl.request(RouteNetlinkMessage::DelAddress(a.clone()), NLM_F_ACK)
                .map_err(|e| {
                    let shown = addr_of(a).map(|c| c.to_string()).unwrap_or_default();
                    format!("{}: removing address {shown}: {e}", t.config.name)
                })?;
        }
    }
    Ok(links
        .into_iter()
        .map(|(config, fd, vnet)| HostLink {
            config,
            fd: fd.into_raw_fd(),
            vnet,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::AddressFamily;

    #[test]
    fn routes_of_the_main_table_with_their_interface() {
        let mut r = RouteMessage::default();
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.kind = RouteType::Unicast;
        r.header.address_family = AddressFamily::Inet;
        r.attributes = vec![
            RouteAttribute::Oif(3),
            RouteAttribute::Gateway(RouteAddress::Inet("10.0.0.1".parse().unwrap())),
        ];
        let (oif, rc) = route_of(&r).unwrap();
        assert_eq!(oif, 3);
        assert_eq!(rc.dst, Cidr::parse("0.0.0.0/0").unwrap());
        assert_eq!(rc.gateway, Some("10.0.0.1".parse().unwrap()));
        r.header.table = 255;
        assert!(route_of(&r).is_none(), "the local table is not routed");
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.kind = RouteType::Multicast;
        assert!(route_of(&r).is_none());
    }

    #[test]
    fn ipv4_addresses_are_the_local_end() {
        let mut a = AddressMessage::default();
        a.header.prefix_len = 30;
        a.attributes = vec![
            AddressAttribute::Address("10.9.0.2".parse().unwrap()),
            AddressAttribute::Local("10.9.0.1".parse().unwrap()),
        ];
        assert_eq!(addr_of(&a), Some(Cidr::parse("10.9.0.1/30").unwrap()));
        a.attributes.remove(1);
        assert_eq!(addr_of(&a), Some(Cidr::parse("10.9.0.2/30").unwrap()));
    }
}
