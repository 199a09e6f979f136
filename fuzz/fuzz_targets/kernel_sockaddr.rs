//! Socket addresses from workload memory (bind, connect, sendto, sendmsg):
//! `SockAddr::parse` is the only gate between the workload's bytes and a
//! host socket call, so it must never panic, and what it accepts must be
//! well formed for its family and read back (getsockname) as itself.
#![no_main]

use atoll_kernel::net::SockAddr;
use libfuzzer_sys::fuzz_target;

/// sizeof(sun_path).
const SUN_PATH: usize = 108;

fuzz_target!(|data: &[u8]| {
    let Ok(addr) = SockAddr::parse(data) else {
        return;
    };
    let family = |b: &[u8]| u16::from_ne_bytes([b[0], b[1]]) as i32;
    match &addr {
        SockAddr::UnixPath(p) => {
            assert!(!p.is_empty() && p.len() <= SUN_PATH && !p.contains(&0));
        }
        SockAddr::UnixAbstract(n) => assert!(n.len() < SUN_PATH),
        SockAddr::UnixUnnamed | SockAddr::Unspec => {}
        SockAddr::Inet(b) => {
            assert_eq!(b.len(), std::mem::size_of::<libc::sockaddr_in>());
            assert_eq!(family(b), libc::AF_INET);
        }
        SockAddr::Inet6(b) => {
            assert_eq!(b.len(), std::mem::size_of::<libc::sockaddr_in6>());
            assert_eq!(family(b), libc::AF_INET6);
        }
        SockAddr::Netlink { .. } => assert_eq!(family(data), libc::AF_NETLINK),
    }
    assert_eq!(
        addr.port().is_some(),
        matches!(addr, SockAddr::Inet(_) | SockAddr::Inet6(_))
    );
    let back = addr.to_bytes();
    match &addr {
        // Linux too hands back 2 + 108 + 1 bytes for a full, unterminated
        // sun_path, which is then too long to bind or connect to.
        SockAddr::UnixPath(p) if p.len() == SUN_PATH => {}
        _ => assert_eq!(SockAddr::parse(&back).as_ref(), Ok(&addr)),
    }
});
