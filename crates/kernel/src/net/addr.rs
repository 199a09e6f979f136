//! Socket addresses from workload memory: parsed and checked here, so no
//! length or family mistake reaches a host socket.

use crate::errno::{Errno, SysResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// AF_UNIX: a path, an abstract name (leading NUL dropped), or unnamed.
    UnixPath(Vec<u8>),
    UnixAbstract(Vec<u8>),
    UnixUnnamed,
    /// AF_INET / AF_INET6, kept as the raw sockaddr bytes for the host.
    Inet(Vec<u8>),
    Inet6(Vec<u8>),
    /// AF_UNSPEC (disconnect a datagram socket).
    Unspec,
    /// AF_NETLINK: a port id (0: the kernel) and multicast groups.
    Netlink {
        pid: u32,
        groups: u32,
    },
}

/// sizeof(struct sockaddr_nl).
pub const SOCKADDR_NL: usize = 12;

const SUN_PATH: usize = 108;

impl SockAddr {
    /// Parses `b` (a sockaddr of `b.len()` bytes).
    pub fn parse(b: &[u8]) -> SysResult<SockAddr> {
        if b.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let family = u16::from_ne_bytes([b[0], b[1]]) as i32;
        match family {
            libc::AF_UNSPEC => Ok(SockAddr::Unspec),
            libc::AF_UNIX => {
                let path = &b[2..];
                if path.len() > SUN_PATH {
                    return Err(Errno::EINVAL);
                }
                if path.is_empty() {
                    return Ok(SockAddr::UnixUnnamed);
                }
                if path[0] == 0 {
                    return Ok(SockAddr::UnixAbstract(path[1..].to_vec()));
                }
                let end = path.iter().position(|c| *c == 0).unwrap_or(path.len());
                if end == 0 {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::UnixPath(path[..end].to_vec()))
            }
            libc::AF_INET => {
                if b.len() < std::mem::size_of::<libc::sockaddr_in>() {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Inet(
                    b[..std::mem::size_of::<libc::sockaddr_in>()].to_vec(),
                ))
            }
            libc::AF_INET6 => {
                if b.len() < std::mem::size_of::<libc::sockaddr_in6>() {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Inet6(
                    b[..std::mem::size_of::<libc::sockaddr_in6>()].to_vec(),
                ))
            }
            libc::AF_NETLINK => {
                if b.len() < SOCKADDR_NL {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Netlink {
                    pid: u32::from_ne_bytes(b[4..8].try_into().unwrap()),
                    groups: u32::from_ne_bytes(b[8..12].try_into().unwrap()),
                })
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// The sockaddr bytes as the workload reads them back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let unix = |rest: &[u8]| {
            let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
            v.extend_from_slice(rest);
            v
        };
        match self {
            SockAddr::UnixPath(p) => {
                let mut r = p.clone();
                r.push(0);
                unix(&r)
            }
            SockAddr::UnixAbstract(n) => {
                let mut r = vec![0u8];
                r.extend_from_slice(n);
                unix(&r)
            }
            SockAddr::UnixUnnamed => unix(&[]),
            SockAddr::Inet(b) | SockAddr::Inet6(b) => b.clone(),
            SockAddr::Unspec => (libc::AF_UNSPEC as u16).to_ne_bytes().to_vec(),
            SockAddr::Netlink { pid, groups } => {
                let mut v = vec![0u8; SOCKADDR_NL];
                v[0..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
                v[4..8].copy_from_slice(&pid.to_ne_bytes());
                v[8..12].copy_from_slice(&groups.to_ne_bytes());
                v
            }
        }
    }

    /// TCP/UDP port of an inet address (network byte order decoded).
    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::Inet(b) | SockAddr::Inet6(b) => Some(u16::from_be_bytes([b[2], b[3]])),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses() {
        let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(b"/tmp/s\0junk");
        assert_eq!(
            SockAddr::parse(&b).unwrap(),
            SockAddr::UnixPath(b"/tmp/s".to_vec())
        );
        let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(b"\0name");
        assert_eq!(
            SockAddr::parse(&a).unwrap(),
            SockAddr::UnixAbstract(b"name".to_vec())
        );
        assert_eq!(SockAddr::parse(&a[..2]).unwrap(), SockAddr::UnixUnnamed);
        let mut long = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        long.extend_from_slice(&[b'a'; 200]);
        assert_eq!(SockAddr::parse(&long), Err(Errno::EINVAL));
    }

    #[test]
    fn bad_families_and_lengths() {
        assert_eq!(SockAddr::parse(&[]), Err(Errno::EINVAL));
        let b = (libc::AF_PACKET as u16).to_ne_bytes();
        assert_eq!(SockAddr::parse(&b), Err(Errno::EAFNOSUPPORT));
        let b = (libc::AF_INET as u16).to_ne_bytes();
        assert_eq!(SockAddr::parse(&b), Err(Errno::EINVAL));
        let b = (libc::AF_NETLINK as u16).to_ne_bytes();
        assert_eq!(SockAddr::parse(&b), Err(Errno::EINVAL));
    }

    #[test]
    fn netlink_addresses_round_trip() {
        let a = SockAddr::Netlink { pid: 77, groups: 5 };
        let b = a.to_bytes();
        assert_eq!(b.len(), SOCKADDR_NL);
        assert_eq!(SockAddr::parse(&b).unwrap(), a);
    }
}
