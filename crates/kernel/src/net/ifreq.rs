//! The SIOCGIF* ioctls (`ifconfig`, `hostname -i`, old C code) on the
//! sockets of the sandbox's stack, answered from its interfaces. The
//! sandbox's network is fixed at start, so every SIOCS* (and route)
//! ioctl is refused: EPERM to a caller without CAP_NET_ADMIN, as Linux
//! answers it, EOPNOTSUPP to one with it.

use std::net::IpAddr;

use atoll_netstack::Cidr;
use atoll_netstack::rtnetlink::NlIface;

use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

/// sizeof(struct ifreq) and of its name.
pub const IFREQ: usize = 40;
const IFNAMSIZ: usize = 16;

const SIOCGIFNAME: u64 = 0x8910;
const SIOCGIFCONF: u64 = 0x8912;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCGIFADDR: u64 = 0x8915;
const SIOCGIFBRDADDR: u64 = 0x8919;
const SIOCGIFNETMASK: u64 = 0x891b;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCGIFHWADDR: u64 = 0x8927;
const SIOCGIFINDEX: u64 = 0x8933;
const SIOCGIFTXQLEN: u64 = 0x8942;

/// The ioctls that change interfaces or routes.
const SETTERS: &[u64] = &[
    0x890b, // SIOCADDRT
    0x890c, // SIOCDELRT
    0x8914, // SIOCSIFFLAGS
    0x8916, // SIOCSIFADDR
    0x8918, // SIOCSIFDSTADDR
    0x891a, // SIOCSIFBRDADDR
    0x891c, // SIOCSIFNETMASK
    0x891e, // SIOCSIFMETRIC
    0x8922, // SIOCSIFMTU
    0x8923, // SIOCSIFNAME
    0x8924, // SIOCSIFHWADDR
    0x8936, // SIOCDIFADDR
    0x8937, // SIOCSIFHWBROADCAST
    0x8943, // SIOCSIFTXQLEN
    0x8971, // SIOCSIFMAP
];

const IFF_UP: u16 = 0x1;
const IFF_BROADCAST: u16 = 0x2;
const IFF_LOOPBACK: u16 = 0x8;
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;

/// Whether `cmd` is one of the interface ioctls served here.
pub fn is_ifreq(cmd: u64) -> bool {
    matches!(
        cmd,
        SIOCGIFNAME
            | SIOCGIFCONF
            | SIOCGIFFLAGS
            | SIOCGIFADDR
            | SIOCGIFBRDADDR
            | SIOCGIFNETMASK
            | SIOCGIFMTU
            | SIOCGIFHWADDR
            | SIOCGIFINDEX
            | SIOCGIFTXQLEN
    ) || SETTERS.contains(&cmd)
}

fn sockaddr_in(a: Option<IpAddr>) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    if let Some(IpAddr::V4(v)) = a {
        b[4..8].copy_from_slice(&v.octets());
    }
    b
}

fn v4(f: &NlIface) -> Option<&Cidr> {
    f.addrs.iter().find(|c| c.addr.is_ipv4())
}

fn mask(prefix: u8) -> IpAddr {
    let m = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    IpAddr::V4(m.into())
}

/// The name in an ifreq (Linux cuts it at IFNAMSIZ - 1).
fn name_of(req: &[u8; IFREQ]) -> &[u8] {
    let n = &req[..IFNAMSIZ - 1];
    &n[..n.iter().position(|c| *c == 0).unwrap_or(n.len())]
}

/// One ifreq ioctl (not SIOCGIFCONF): `req` is the caller's ifreq, the
/// answer is written into it.
pub fn ifreq(
    ifaces: &[NlIface],
    cmd: u64,
    net_admin: bool,
    req: &mut [u8; IFREQ],
) -> SysResult<()> {
    if SETTERS.contains(&cmd) {
        return Err(if net_admin {
            Errno::EOPNOTSUPP
        } else {
            Errno::EPERM
        });
    }
    if cmd == SIOCGIFNAME {
        let index = i32::from_ne_bytes(req[16..20].try_into().unwrap());
        let f = ifaces
            .iter()
            .find(|f| f.index as i32 == index)
            .ok_or(Errno::ENODEV)?;
        req[..IFNAMSIZ].fill(0);
        let n = f.name.len().min(IFNAMSIZ - 1);
        req[..n].copy_from_slice(&f.name.as_bytes()[..n]);
        return Ok(());
    }
    let name = name_of(req);
    let f = ifaces
        .iter()
        .find(|f| f.name.as_bytes() == name)
        .ok_or(Errno::ENODEV)?;
    let data = &mut req[16..];
    data.fill(0);
    let lo = f.mac.is_none();
    match cmd {
        SIOCGIFINDEX => data[..4].copy_from_slice(&(f.index as i32).to_ne_bytes()),
        SIOCGIFFLAGS => {
            let fl = IFF_UP
                | IFF_RUNNING
                | if lo {
                    IFF_LOOPBACK
                } else {
                    IFF_BROADCAST | IFF_MULTICAST
                };
            data[..2].copy_from_slice(&fl.to_ne_bytes());
        }
        SIOCGIFMTU => data[..4].copy_from_slice(&(f.mtu as i32).to_ne_bytes()),
        SIOCGIFTXQLEN => data[..4].copy_from_slice(&1000i32.to_ne_bytes()),
        SIOCGIFHWADDR => {
            let ty: u16 = if lo { 772 } else { 1 };
            data[..2].copy_from_slice(&ty.to_ne_bytes());
            data[2..8].copy_from_slice(&f.mac.unwrap_or([0; 6]));
        }
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR => {
            let c = v4(f).ok_or(Errno::EADDRNOTAVAIL)?;
            let a = match cmd {
                SIOCGIFADDR => Some(c.addr),
                SIOCGIFNETMASK => Some(mask(c.prefix)),
                // The subnet's broadcast, as rtnetlink shows it (none on
                // loopback, /31 and /32).
                _ => match c.addr {
                    IpAddr::V4(v) if !lo && c.prefix < 31 => {
                        Some(IpAddr::V4((u32::from(v) | (u32::MAX >> c.prefix)).into()))
                    }
                    _ => None,
                },
            };
            data[..16].copy_from_slice(&sockaddr_in(a));
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(())
}

/// SIOCGIFCONF: one ifreq per IPv4 address, at most `room` bytes of
/// them (whole entries only).
pub fn ifconf(ifaces: &[NlIface], room: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for f in ifaces {
        for c in f.addrs.iter().filter(|c| c.addr.is_ipv4()) {
            if out.len() + IFREQ > room {
                return out;
            }
            let mut r = [0u8; IFREQ];
            let n = f.name.len().min(IFNAMSIZ - 1);
            r[..n].copy_from_slice(&f.name.as_bytes()[..n]);
            r[16..32].copy_from_slice(&sockaddr_in(Some(c.addr)));
            out.extend_from_slice(&r);
        }
    }
    out
}

/// Serves `cmd` on `arg` in the caller's memory.
pub fn ioctl(k: &Kernel, tid: Tid, ifaces: &[NlIface], cmd: u64, arg: u64) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    if cmd == SIOCGIFCONF {
        // struct ifconf { int ifc_len; union { char *buf; ... }; }
        let conf: [u64; 2] = mm.read_val(arg)?;
        let len = conf[0] as i32;
        if conf[1] == 0 {
            // Sizing call: how many bytes a full answer takes.
            let n = ifconf(ifaces, usize::MAX).len() as i32;
            mm.write_val(arg, &n)?;
            return Ok(0);
        }
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let b = ifconf(ifaces, len as usize);
        mm.write_bytes(conf[1], &b)?;
        mm.write_val(arg, &(b.len() as i32))?;
        return Ok(0);
    }
    let net_admin = k.cred(tid).capable(crate::vfs::perm::cap::NET_ADMIN);
    let mut req: [u8; IFREQ] = mm.read_val(arg)?;
    ifreq(ifaces, cmd, net_admin, &mut req)?;
    mm.write_bytes(arg, &req)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifaces() -> Vec<NlIface> {
        vec![
            NlIface {
                name: "lo".into(),
                index: 1,
                mtu: 65536,
                addrs: vec![Cidr::parse("127.0.0.1/8").unwrap()],
                ..Default::default()
            },
            NlIface {
                name: "eth0".into(),
                index: 3,
                mac: Some([2, 1, 2, 3, 4, 5]),
                mtu: 1450,
                addrs: vec![
                    Cidr::parse("fd00::2/64").unwrap(),
                    Cidr::parse("10.0.3.2/24").unwrap(),
                ],
                ..Default::default()
            },
        ]
    }

    fn named(n: &str) -> [u8; IFREQ] {
        let mut r = [0u8; IFREQ];
        r[..n.len()].copy_from_slice(n.as_bytes());
        r
    }

    #[test]
    fn gets_answer_from_the_interfaces() {
        let l = ifaces();
        let mut r = named("eth0");
        ifreq(&l, SIOCGIFINDEX, false, &mut r).unwrap();
        assert_eq!(r[16..20], 3i32.to_ne_bytes());
        let mut r = named("eth0");
        ifreq(&l, SIOCGIFADDR, false, &mut r).unwrap();
        assert_eq!(r[20..24], [10, 0, 3, 2]);
        ifreq(&l, SIOCGIFNETMASK, false, &mut r).unwrap();
        assert_eq!(r[20..24], [255, 255, 255, 0]);
        ifreq(&l, SIOCGIFBRDADDR, false, &mut r).unwrap();
        assert_eq!(r[20..24], [10, 0, 3, 255]);
        ifreq(&l, SIOCGIFMTU, false, &mut r).unwrap();
        assert_eq!(r[16..20], 1450i32.to_ne_bytes());
        ifreq(&l, SIOCGIFHWADDR, false, &mut r).unwrap();
        assert_eq!(r[16..24], [1, 0, 2, 1, 2, 3, 4, 5]);
        let mut r = named("lo");
        ifreq(&l, SIOCGIFFLAGS, false, &mut r).unwrap();
        let fl = u16::from_ne_bytes([r[16], r[17]]);
        assert_eq!(fl & (IFF_UP | IFF_LOOPBACK), IFF_UP | IFF_LOOPBACK);
        let mut r = [0u8; IFREQ];
        r[16..20].copy_from_slice(&3i32.to_ne_bytes());
        ifreq(&l, SIOCGIFNAME, false, &mut r).unwrap();
        assert_eq!(name_of(&r), b"eth0");
    }

    #[test]
    fn bad_names_missing_addresses_and_setters_fail() {
        let l = ifaces();
        let mut r = [b'x'; IFREQ];
        assert_eq!(ifreq(&l, SIOCGIFINDEX, false, &mut r), Err(Errno::ENODEV));
        let mut r = [0u8; IFREQ];
        r[16..20].copy_from_slice(&9i32.to_ne_bytes());
        assert_eq!(ifreq(&l, SIOCGIFNAME, false, &mut r), Err(Errno::ENODEV));
        let six = vec![NlIface {
            name: "v6".into(),
            index: 2,
            mac: Some([0; 6]),
            addrs: vec![Cidr::parse("fd00::1/64").unwrap()],
            ..Default::default()
        }];
        let mut r = named("v6");
        assert_eq!(
            ifreq(&six, SIOCGIFADDR, false, &mut r),
            Err(Errno::EADDRNOTAVAIL)
        );
        let mut r = named("eth0");
        assert_eq!(ifreq(&l, 0x8922, false, &mut r), Err(Errno::EPERM));
        assert_eq!(ifreq(&l, 0x8922, true, &mut r), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn ifconf_lists_whole_entries_within_room() {
        let l = ifaces();
        assert_eq!(ifconf(&l, usize::MAX).len(), 2 * IFREQ);
        let one = ifconf(&l, IFREQ + 10);
        assert_eq!(one.len(), IFREQ);
        assert_eq!(name_of(one[..IFREQ].try_into().unwrap()), b"lo");
        assert!(ifconf(&l, 39).is_empty());
    }
}
