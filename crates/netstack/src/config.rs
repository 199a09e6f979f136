//! What the stack knows of the network it serves: its links (Ethernet
//! interfaces besides its own loopback) with their addresses and routes.
//! The kernel's sandbox mode gives it none today (loopback only); tests
//! make links over an in-memory wire.

use std::net::IpAddr;

/// An address with its prefix length (`10.0.0.5/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Cidr {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// Whether `a` is inside this prefix (same family only).
    pub fn contains(&self, a: &IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(x)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                u32::from(n) & mask == u32::from(*x) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(x)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                u128::from(n) & mask == u128::from(*x) & mask
            }
            _ => false,
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a host prefix).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A route of an interface: `dst` through `gateway` (None: on-link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: Cidr,
    pub gateway: Option<IpAddr>,
}

/// One interface the stack serves besides loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub name: String,
    /// Its index in the container's namespace (kept, so `ip link` inside
    /// the sandbox shows what CNI made).
    pub index: u32,
    pub mac: [u8; 6],
    /// IP MTU.
    pub mtu: u32,
    pub addrs: Vec<Cidr>,
    pub routes: Vec<RouteConfig>,
}

/// The whole network view of a sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    pub links: Vec<LinkConfig>,
}

impl NetConfig {
    /// Every address of every link.
    pub fn local_addrs(&self) -> Vec<IpAddr> {
        self.links
            .iter()
            .flat_map(|l| l.addrs.iter().map(|c| c.addr))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(&"10.1.200.3".parse().unwrap()));
        assert!(!c.contains(&"10.2.0.1".parse().unwrap()));
        assert!(!c.contains(&"::1".parse().unwrap()));
        let h = Cidr::parse("169.254.169.254").unwrap();
        assert_eq!(h.prefix, 32);
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(&"8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains(&"fd00:ec2::254".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope/8").is_err());
        assert_eq!(
            Cidr::parse("10.1.2.3/16").unwrap().network(),
            "10.1.0.0".parse::<IpAddr>().unwrap()
        );
    }
}
