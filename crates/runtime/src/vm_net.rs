//! The vm level's network, Kata's tc-redirect model. The pod's network
//! namespace (the spec's, joined by path: CNI's) has an interface with
//! the pod's address, typically CNI's veth `eth0`. At create, atoll, in
//! that namespace:
//! - reads the interface's MAC, MTU, IPv4 addresses and routes, which the
//!   guest agent gives the guest's eth0 (same MAC: the peer's neighbour
//!   entries stay right);
//! - makes a tap device (`tap0_atoll`, with virtio-net headers; not
//!   persistent: it goes when its last descriptor does, that is with the
//!   VMM) whose descriptor the VMM inherits as its virtio-net backend;
//! - joins the two with an ingress qdisc on each and a u32 filter
//!   whose mirred action redirects every frame arriving on one out of the
//!   other. The veth keeps its address on the host side (CNI's view stays
//!   true) but its own stack sees none of the pod's traffic.
//!
//! The VMM never needs CAP_NET_ADMIN. Delete (and a failed create)
//! removes the veth's side (remove_state → [`teardown`]); the tap's side
//! goes with the tap.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use atoll_agent::netlink::{self, Socket};
use atoll_agent::proto::{Address, Address6, Network, Route, Route6};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

/// The tap's name in the pod's network namespace (one VM per pod).
pub const TAP_NAME: &str = "tap0_atoll";
/// Priority of atoll's tc filters (so that only they are removed where
/// the ingress qdisc was not atoll's).
pub const FILTER_PRIO: u16 = 0xa70;
/// Where create records what to undo, in the container's atoll directory.
pub const RECORD_FILE: &str = "vm-net.json";

/// The network namespace the spec joins by path, if any.
pub fn netns_path(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)?
        .path()
        .clone()
}

/// The namespace must exist and be a network namespace: checked before
/// create makes any state.
pub fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = netns_path(spec) {
        open_netns(&p)?;
    }
    Ok(())
}

fn open_netns(p: &Path) -> Result<File> {
    let f = File::open(p)
        .map_err(|e| anyhow!("isolation level vm: network namespace {}: {e}", p.display()))?;
    // SAFETY: NS_GET_NSTYPE on an open descriptor.
    let t = unsafe {
        libc::ioctl(f.as_raw_fd(), 0xb703 /* NS_GET_NSTYPE */)
    };
    if t != libc::CLONE_NEWNET {
        bail!(
            "isolation level vm: {} is not a network namespace",
            p.display()
        );
    }
    Ok(f)
}

/// What create undoes at delete.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    pub netns: PathBuf,
    /// The pod's interface.
    pub interface: String,
    /// Whether atoll made its ingress qdisc (else only atoll's filters
    /// are removed from it).
    pub qdisc_made: bool,
}

/// The guest's interface: the tap for the VMM, what the agent configures.
pub struct Prepared {
    pub tap: File,
    pub guest: Network,
    pub record: Record,
}

/// An interface of the pod's namespace as getifaddrs and ioctls see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Iface {
    pub name: String,
    pub index: i32,
    pub mac: [u8; 6],
    pub addresses: Vec<Address>,
    /// Its IPv6 addresses but the link-local ones (the guest derives the
    /// same from the same MAC).
    pub addresses6: Vec<Address6>,
}

/// The pod's interface among the namespace's: `eth0` if there is one,
/// else the first (by index) with an IPv4 address; loopback never.
pub fn choose(ifaces: &[Iface]) -> Option<&Iface> {
    let candidates: Vec<&Iface> = ifaces
        .iter()
        .filter(|i| i.name != "lo" && i.name != TAP_NAME)
        .collect();
    candidates
        .iter()
        .find(|i| i.name == "eth0")
        .or_else(|| {
            candidates
                .iter()
                .filter(|i| !i.addresses.is_empty())
                .min_by_key(|i| i.index)
        })
        .copied()
}

/// The IPv4 routes of `/proc/net/route` through interface `name`. The
/// prefixes of the interface's own addresses are left out: the guest's
/// kernel adds them with the addresses.
pub fn parse_routes(text: &str, name: &str, own: &[Address]) -> Vec<Route> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.swap_bytes()))
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[0] != name {
            continue;
        }
        let (Some(dst), Some(gw), Some(mask)) = (hex(f[1]), hex(f[2]), hex(f[7])) else {
            continue;
        };
        let flags = u32::from_str_radix(f[3], 16).unwrap_or(0);
        if flags & libc::RTF_UP as u32 == 0 {
            continue;
        }
        let prefix = u32::from(mask).leading_ones() as u8;
        let gateway = (flags & libc::RTF_GATEWAY as u32 != 0).then_some(gw);
        let connected = gateway.is_none()
            && own
                .iter()
                .any(|a| a.prefix == prefix && mask_of(a.addr, prefix) == dst);
        if !connected {
            out.push(Route {
                dst,
                prefix,
                gateway,
            });
        }
    }
    out
}

/// The IPv6 routes of `/proc/net/ipv6_route` through interface `name`
/// (every table: the kernel's local and multicast ones are left out by
/// their flags and prefixes), without the link-local prefix and the
/// prefixes of the interface's own addresses, which the guest's kernel
/// makes itself.
pub fn parse_routes6(text: &str, name: &str, own: &[Address6]) -> Vec<Route6> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    const RTF_CACHE: u32 = 0x0100_0000;
    const RTF_LOCAL: u32 = 0x8000_0000;
    let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[9] != name {
            continue;
        }
        let (Some(dst), Some(prefix), Some(gw), Ok(flags)) = (
            addr(f[0]),
            u8::from_str_radix(f[1], 16).ok().filter(|p| *p <= 128),
            addr(f[4]),
            u32::from_str_radix(f[8], 16),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & (RTF_CACHE | RTF_LOCAL) != 0 {
            continue;
        }
        let link_local = (dst.segments()[0] & 0xffc0) == 0xfe80;
        let multicast = dst.segments()[0] >> 8 == 0xff;
        let gateway = (flags & RTF_GATEWAY != 0).then_some(gw);
        let connected = gateway.is_none()
            && own
                .iter()
                .any(|a| a.prefix == prefix && mask6_of(a.addr, prefix) == dst);
        if !(link_local || multicast || connected) {
            out.push(Route6 {
                dst,
                prefix,
                gateway,
            });
        }
    }
    out
}

fn mask6_of(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let m = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    Ipv6Addr::from(u128::from(a) & m)
}

fn mask_of(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let m = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ipv4Addr::from(u32::from(a) & m)
}

/// The interfaces of the calling thread's network namespace.
fn interfaces() -> Result<Vec<Iface>> {
    let mut out: Vec<Iface> = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list that is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getifaddrs");
    }
    let mut p = list;
    while !p.is_null() {
        // SAFETY: p is an entry of the list getifaddrs made.
        let a = unsafe { &*p };
        p = a.ifa_next;
        if a.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a C string of the list.
        let name = unsafe { std::ffi::CStr::from_ptr(a.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let at = match out.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                out.push(Iface {
                    name,
                    index: 0,
                    mac: [0; 6],
                    addresses: Vec::new(),
                    addresses6: Vec::new(),
                });
                out.len() - 1
            }
        };
        // SAFETY: ifa_addr (and ifa_netmask for AF_INET) point to
        // sockaddrs of the family they say.
        unsafe {
            match (*a.ifa_addr).sa_family as i32 {
                libc::AF_PACKET => {
                    let ll = &*(a.ifa_addr as *const libc::sockaddr_ll);
                    out[at].index = ll.sll_ifindex;
                    if ll.sll_halen == 6 {
                        out[at].mac.copy_from_slice(&ll.sll_addr[..6]);
                    }
                }
                libc::AF_INET if !a.ifa_netmask.is_null() => {
                    let sin = &*(a.ifa_addr as *const libc::sockaddr_in);
                    let mask = &*(a.ifa_netmask as *const libc::sockaddr_in);
                    out[at].addresses.push(Address {
                        addr: Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                        prefix: u32::from_be(mask.sin_addr.s_addr).leading_ones() as u8,
                    });
                }
                libc::AF_INET6 if !a.ifa_netmask.is_null() => {
                    let sin = &*(a.ifa_addr as *const libc::sockaddr_in6);
                    let mask = &*(a.ifa_netmask as *const libc::sockaddr_in6);
                    let addr = Ipv6Addr::from(sin.sin6_addr.s6_addr);
                    if (addr.segments()[0] & 0xffc0) != 0xfe80 {
                        out[at].addresses6.push(Address6 {
                            addr,
                            prefix: u128::from_be_bytes(mask.sin6_addr.s6_addr).leading_ones()
                                as u8,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(out)
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
        r.ifr_name[i] = b as libc::c_char;
    }
    r
}

fn mtu_of(name: &str) -> Result<u32> {
    // SAFETY: a datagram socket for the ioctl, closed by OwnedFd.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(std::io::Error::last_os_error()).context("socket");
    }
    // SAFETY: s was just created.
    let s = unsafe { std::os::fd::OwnedFd::from_raw_fd(s) };
    let mut r = ifreq(name);
    // SAFETY: SIOCGIFMTU fills the ifreq.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFMTU, &mut r) } < 0 {
        return Err(std::io::Error::last_os_error()).context(format!("{name}: its MTU"));
    }
    // SAFETY: SIOCGIFMTU set the union's mtu.
    Ok(unsafe { r.ifr_ifru.ifru_mtu } as u32)
}

/// Opens `/dev/net/tun` as a new tap device named [`TAP_NAME`], with no
/// packet information and virtio-net's 12-byte header on every frame (the
/// VMM passes frames and headers through, offloads included). Returns it
/// and its ifindex.
fn make_tap() -> Result<(File, i32)> {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| anyhow!("/dev/net/tun: {e}"))?;
    let mut r = ifreq(TAP_NAME);
    r.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    // SAFETY: TUNSETIFF with an ifreq naming the device.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut r) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EBUSY) {
            bail!("a tap device {TAP_NAME} is in use there already (another VM in this namespace)");
        }
        bail!("creating tap device {TAP_NAME}: {e}");
    }
    let hdr: libc::c_int = 12; // struct virtio_net_hdr_v1
    // SAFETY: TUNSETVNETHDRSZ reads an int.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr) } < 0 {
        bail!(
            "tap device {TAP_NAME}: virtio-net header size: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: if_nametoindex with a NUL-terminated name.
    let idx = unsafe { libc::if_nametoindex(c"tap0_atoll".as_ptr()) } as i32;
    if idx == 0 {
        bail!("tap device {TAP_NAME}: no index");
    }
    Ok((tun, idx))
}

/// Runs `f` on a thread of its own inside the network namespace `ns`
/// (setns affects only the calling thread).
fn in_netns<T: Send + 'static>(
    ns: File,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::spawn(move || -> Result<T> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the pod's network namespace")?;
        f()
    })
    .join()
    .map_err(|_| anyhow!("the network setup thread panicked"))?
}

/// Makes the guest's network for a vm-level container whose spec joins a
/// network namespace by path: None if it joins none, or the namespace has
/// no interface but loopback (the guest then has only its loopback).
pub fn prepare(spec: &Spec) -> Result<Option<Prepared>> {
    let Some(path) = netns_path(spec) else {
        return Ok(None);
    };
    let ns = open_netns(&path)?;
    let p = path.clone();
    in_netns(ns, move || {
        let all = interfaces().context("the pod's interfaces")?;
        let Some(i) = choose(&all).cloned() else {
            return Ok(None);
        };
        let mtu = mtu_of(&i.name)?;
        let routes = std::fs::read_to_string("/proc/thread-self/net/route")
            .map(|t| parse_routes(&t, &i.name, &i.addresses))
            .unwrap_or_default();
        // (no such file when IPv6 is disabled in the namespace's kernel)
        let routes6 = std::fs::read_to_string("/proc/thread-self/net/ipv6_route")
            .map(|t| parse_routes6(&t, &i.name, &i.addresses6))
            .unwrap_or_default();
        let (tap, tap_idx) = make_tap()?;
        let s = Socket::open().context("netlink")?;
        netlink::link_up(&s, tap_idx, None, Some(mtu))
            .map_err(|e| anyhow!("tap device {TAP_NAME}: up, mtu {mtu}: {e}"))?;
        let qdisc_made = match netlink::add_ingress_qdisc(&s, i.index) {
            Ok(()) => true,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => bail!("{}: ingress qdisc: {e}", i.name),
        };
        let record = Record {
            netns: p,
            interface: i.name.clone(),
            qdisc_made,
        };
        let joined = (|| -> Result<()> {
            netlink::add_redirect(&s, i.index, FILTER_PRIO, tap_idx)
                .map_err(|e| anyhow!("{}: tc redirect to {TAP_NAME}: {e}", i.name))?;
            netlink::add_ingress_qdisc(&s, tap_idx)
                .map_err(|e| anyhow!("{TAP_NAME}: ingress qdisc: {e}"))?;
            netlink::add_redirect(&s, tap_idx, FILTER_PRIO, i.index)
                .map_err(|e| anyhow!("{TAP_NAME}: tc redirect to {}: {e}", i.name))
        })();
        if let Err(e) = joined {
            undo(&s, &record, i.index);
            return Err(e);
        }
        Ok(Some(Prepared {
            tap,
            guest: Network {
                name: i.name.clone(),
                mac: i.mac,
                mtu,
                addresses: i.addresses.clone(),
                routes,
                addresses6: i.addresses6.clone(),
                routes6,
            },
            record,
        }))
    })
    .map_err(|e| anyhow!("isolation level vm: network: {e:#}"))
}

fn undo(s: &Socket, r: &Record, index: i32) {
    if r.qdisc_made {
        let _ = netlink::del_ingress_qdisc(s, index);
    } else {
        let _ = netlink::del_filters(s, index, FILTER_PRIO);
    }
}

/// Removes what [`prepare`] added to the pod's interface, if its
/// namespace and interface are still there (best effort: CNI may have
/// removed them first).
pub fn teardown(r: &Record) {
    let Ok(ns) = File::open(&r.netns) else {
        return;
    };
    let r = r.clone();
    let _ = in_netns(ns, move || {
        let name = std::ffi::CString::new(r.interface.clone())?;
        // SAFETY: if_nametoindex with a NUL-terminated name.
        let idx = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if idx > 0 {
            undo(&Socket::open()?, &r, idx);
        }
        Ok(())
    });
}

/// Saves the record in `dir` (the container's atoll directory).
pub fn save(dir: &Path, r: &Record) -> Result<()> {
    std::fs::write(dir.join(RECORD_FILE), serde_json::to_vec(r)?)
        .with_context(|| format!("writing {}", dir.join(RECORD_FILE).display()))
}

/// Tears down what the record in `dir` says, if there is one.
pub fn teardown_recorded(dir: &Path) {
    if let Ok(b) = std::fs::read(dir.join(RECORD_FILE))
        && let Ok(r) = serde_json::from_slice::<Record>(&b)
    {
        teardown(&r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, index: i32, addrs: &[(&str, u8)]) -> Iface {
        Iface {
            name: name.into(),
            index,
            mac: [2, 0, 0, 0, 0, index as u8],
            addresses: addrs
                .iter()
                .map(|(a, p)| Address {
                    addr: a.parse().unwrap(),
                    prefix: *p,
                })
                .collect(),
            addresses6: Vec::new(),
        }
    }

    #[test]
    fn ipv6_routes_through_the_interface_without_link_local_local_or_connected_ones() {
        // /proc/net/ipv6_route: dst len src len next-hop metric ref use
        // flags dev (the main, local and multicast tables together).
        let text = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd770000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fd770000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fd880000000000000000000000000000 30 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fd770000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd990000000000000000000000000001 00000400 00000001 00000000 00000003     eth1
fd660000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000000     eth0
";
        let own = [Address6 {
            addr: "fd77::2".parse().unwrap(),
            prefix: 64,
        }];
        assert_eq!(
            parse_routes6(text, "eth0", &own),
            vec![
                Route6 {
                    dst: Ipv6Addr::UNSPECIFIED,
                    prefix: 0,
                    gateway: Some("fd77::1".parse().unwrap()),
                },
                Route6 {
                    dst: "fd88::".parse().unwrap(),
                    prefix: 48,
                    gateway: Some("fe80::1".parse().unwrap()),
                },
            ]
        );
    }

    #[test]
    fn the_pods_interface_is_eth0_or_the_first_with_an_address() {
        let lo = iface("lo", 1, &[("127.0.0.1", 8)]);
        let a = iface("net1", 3, &[]);
        let b = iface("veth9", 4, &[("10.0.0.2", 24)]);
        let e = iface("eth0", 5, &[]);
        assert_eq!(
            choose(&[lo.clone(), a.clone(), b.clone()]).unwrap().name,
            "veth9"
        );
        assert_eq!(choose(&[lo.clone(), b, e]).unwrap().name, "eth0");
        // Loopback only (a new namespace): no interface for the guest.
        assert_eq!(choose(std::slice::from_ref(&lo)), None);
        assert_eq!(choose(&[lo, a]), None);
    }

    #[test]
    fn routes_through_the_interface_without_its_connected_prefix() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t0000A8C0\t0100580A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
eth1\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let own = [Address {
            addr: "10.88.0.5".parse().unwrap(),
            prefix: 24,
        }];
        let r = parse_routes(text, "eth0", &own);
        assert_eq!(
            r,
            vec![
                Route {
                    dst: Ipv4Addr::UNSPECIFIED,
                    prefix: 0,
                    gateway: Some("10.88.0.1".parse().unwrap()),
                },
                Route {
                    dst: "192.168.0.0".parse().unwrap(),
                    prefix: 16,
                    gateway: Some("10.88.0.1".parse().unwrap()),
                },
            ]
        );
    }

    #[test]
    fn a_missing_namespace_is_one_line_before_anything_is_made() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "network", "path": "/nonexistent/netns"}]}
        }))
        .unwrap();
        let e = check(&spec).unwrap_err().to_string();
        assert!(
            e.contains("network namespace /nonexistent/netns") && !e.contains('\n'),
            "{e}"
        );
        let e = prepare(&spec).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/netns"), "{e}");
        // Not a network namespace.
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "network", "path": "/proc/self/ns/uts"}]}
        }))
        .unwrap();
        let e = check(&spec).unwrap_err().to_string();
        assert!(e.contains("is not a network namespace"), "{e}");
    }

    /// A network namespace held by a bind mount, as `ip netns add` and
    /// CNI make them, with a veth pair: `eth0` inside (the pod's side,
    /// 10.77.0.2/24 and fd77::2/64, default routes via 10.77.0.1 and
    /// fd77::1), `peer0` beside it.
    struct TestNs {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl TestNs {
        fn new() -> Option<TestNs> {
            let run = |args: &[&str]| {
                std::process::Command::new(args[0])
                    .args(&args[1..])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            // SAFETY: geteuid has no arguments.
            if unsafe { libc::geteuid() } != 0
                || !Path::new("/dev/net/tun").exists()
                || !run(&["ip", "-V"])
                || !run(&["tc", "-V"])
            {
                eprintln!("skipped: needs root, /dev/net/tun, ip and tc");
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ns");
            File::create(&path).unwrap();
            let p = path.to_str().unwrap().to_string();
            assert!(run(&["unshare", &format!("--net={p}"), "true"]));
            let ns = TestNs { _dir: dir, path };
            let nsarg = format!("--net={p}");
            for cmd in [
                "ip link add eth0 type veth peer name peer0",
                "ip addr add 10.77.0.2/24 dev eth0",
                "ip link set eth0 up",
                "ip link set peer0 up",
                "ip route add default via 10.77.0.1",
                "ip -6 addr add fd77::2/64 dev eth0 nodad",
                "ip -6 route add default via fd77::1",
            ] {
                let mut a = vec!["nsenter", nsarg.as_str()];
                a.extend(cmd.split(' '));
                assert!(run(&a), "{cmd}");
            }
            Some(ns)
        }

        fn sh(&self, cmd: &str) -> String {
            let out = std::process::Command::new("nsenter")
                .arg(format!("--net={}", self.path.display()))
                .args(["sh", "-c", cmd])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        fn spec(&self) -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.2.0",
                "root": {"path": "rootfs"},
                "linux": {"namespaces": [{"type": "network", "path": self.path}]}
            }))
            .unwrap()
        }
    }

    impl Drop for TestNs {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn the_tap_is_joined_to_the_pods_interface_and_undone() {
        let Some(ns) = TestNs::new() else { return };
        let p = prepare(&ns.spec()).unwrap().expect("an interface");
        assert_eq!(p.guest.name, "eth0");
        assert_eq!(p.guest.mtu, 1500);
        assert_eq!(
            p.guest.addresses,
            vec![Address {
                addr: "10.77.0.2".parse().unwrap(),
                prefix: 24
            }]
        );
        assert_eq!(
            p.guest.routes,
            vec![Route {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                gateway: Some("10.77.0.1".parse().unwrap())
            }]
        );
        assert_eq!(
            p.guest.addresses6,
            vec![Address6 {
                addr: "fd77::2".parse().unwrap(),
                prefix: 64
            }]
        );
        assert_eq!(
            p.guest.routes6,
            vec![Route6 {
                dst: Ipv6Addr::UNSPECIFIED,
                prefix: 0,
                gateway: Some("fd77::1".parse().unwrap())
            }]
        );
        let mac = ns.sh("cat /sys/class/net/eth0/address");
        let want: Vec<String> = p.guest.mac.iter().map(|b| format!("{b:02x}")).collect();
        // (sysfs is the test's own namespace's: read the MAC with ip)
        let link = ns.sh("ip -o link show eth0");
        assert!(link.contains(&want.join(":")), "{link} {mac}");
        // The tap is up with the veth's MTU; each side redirects to the
        // other.
        let tap = ns.sh("ip -o link show tap0_atoll");
        assert!(tap.contains("mtu 1500") && tap.contains(",UP"), "{tap}");
        // It carries virtio-net headers (the VMM passes them through).
        let d = ns.sh("ip -d link show tap0_atoll");
        assert!(d.contains("vnet_hdr on") && d.contains("pi off"), "{d}");
        let f = ns.sh("tc filter show dev eth0 ingress");
        assert!(
            f.contains("u32") && f.contains("Egress Redirect to device tap0_atoll"),
            "{f}"
        );
        let f = ns.sh("tc filter show dev tap0_atoll ingress");
        assert!(f.contains("Egress Redirect to device eth0"), "{f}");
        // One VM per namespace: a second tap of that name is refused.
        let e = prepare(&ns.spec()).err().unwrap().to_string();
        assert!(
            e.contains("in use there already") && !e.contains('\n'),
            "{e}"
        );
        // The first attempt's qdisc stays: the second undid only itself.
        assert!(
            ns.sh("tc filter show dev eth0 ingress")
                .contains("tap0_atoll")
        );
        // The VMM's exit closes the tap: it goes, with its qdisc.
        drop(p.tap);
        assert_eq!(ns.sh("ip -o link show tap0_atoll"), "");
        // Delete removes the veth's side.
        teardown(&p.record);
        let q = ns.sh("tc qdisc show dev eth0");
        assert!(!q.contains("ingress"), "{q}");
        assert_eq!(ns.sh("tc filter show dev eth0 ingress"), "");
    }

    #[test]
    fn a_namespace_with_only_loopback_gives_no_interface() {
        let Some(ns) = TestNs::new() else { return };
        ns.sh("ip link del eth0");
        assert!(prepare(&ns.spec()).unwrap().is_none());
        assert_eq!(ns.sh("ip -o link show tap0_atoll"), "");
    }
}
