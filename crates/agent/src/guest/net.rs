//! The guest's network: loopback always; the pod's interface when the
//! host gave one (virtio-net on a tap joined to the pod's veth). The
//! device is found by the MAC the host gave it, renamed to the host
//! side's name, and given the pod's MTU, IPv4 addresses and routes:
//! the guest then is the pod's network endpoint, as with runc.

use std::io;

use atoll_agent::netlink::{self, Socket};
use atoll_agent::proto::Network;

/// The ifindex of the interface whose MAC is `mac`.
fn by_mac(mac: &[u8; 6]) -> io::Result<(i32, String)> {
    let want = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    for e in std::fs::read_dir("/sys/class/net")?.flatten() {
        let dir = e.path();
        let addr = std::fs::read_to_string(dir.join("address")).unwrap_or_default();
        if addr.trim() == want {
            let idx = std::fs::read_to_string(dir.join("ifindex"))?;
            let idx = idx
                .trim()
                .parse()
                .map_err(|_| io::Error::other("ifindex"))?;
            return Ok((idx, e.file_name().to_string_lossy().into_owned()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no network interface with MAC {want} (is virtio_net loaded?)"),
    ))
}

/// Brings `lo` up (its ifindex is always 1).
pub fn loopback_up() -> io::Result<()> {
    netlink::link_up(&Socket::open()?, 1, None, None)
}

/// Gives the pod's interface its name, MTU, addresses and routes.
pub fn configure(n: &Network) -> io::Result<()> {
    let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    // The virtio-net driver, loaded now rather than at boot (a second
    // load is a no-op); its probe makes the interface before it returns.
    super::init::load_modules("load-net");
    let s = Socket::open()?;
    let (idx, name) = by_mac(&n.mac)?;
    let rename = (!n.name.is_empty() && n.name != name).then_some(n.name.as_str());
    netlink::link_set(&s, idx, rename, Some(n.mtu))
        .map_err(|e| ctx(&format!("{name}: name {rename:?}, mtu {}", n.mtu), e))?;
    netlink::link_up(&s, idx, None, None).map_err(|e| ctx(&format!("{name}: up"), e))?;
    for a in &n.addresses {
        match netlink::add_addr4(&s, idx, a.addr.octets(), a.prefix) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(ctx(&format!("address {}/{}", a.addr, a.prefix), e));
            }
            _ => {}
        }
    }
    // Routes on the link first: a gateway must be reachable when its
    // route goes in. (The addresses' own prefixes are there already.)
    let mut routes = n.routes.clone();
    routes.sort_by_key(|r| r.gateway.is_some());
    for r in &routes {
        match netlink::add_route4(
            &s,
            idx,
            r.dst.octets(),
            r.prefix,
            r.gateway.map(|g| g.octets()),
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                return Err(ctx(&format!("route {}/{}{via}", r.dst, r.prefix), e));
            }
            _ => {}
        }
    }
    for a in &n.addresses6 {
        match netlink::add_addr6(&s, idx, a.addr.octets(), a.prefix) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(ctx(&format!("address {}/{}", a.addr, a.prefix), e));
            }
            _ => {}
        }
    }
    let mut routes6 = n.routes6.clone();
    routes6.sort_by_key(|r| r.gateway.is_some());
    for r in &routes6 {
        match netlink::add_route6(
            &s,
            idx,
            r.dst.octets(),
            r.prefix,
            r.gateway.map(|g| g.octets()),
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                return Err(ctx(&format!("route {}/{}{via}", r.dst, r.prefix), e));
            }
            _ => {}
        }
    }
    super::sys::log(&format!(
        "network: {} ({name}) mtu {}, {} addresses, {} routes",
        if n.name.is_empty() { &name } else { &n.name },
        n.mtu,
        n.addresses.len() + n.addresses6.len(),
        n.routes.len() + n.routes6.len()
    ));
    Ok(())
}
