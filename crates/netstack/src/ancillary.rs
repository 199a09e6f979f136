//! IP-level ancillary data of datagram sockets, as Linux's
//! `ip_cmsg_send` / `ip6_datagram_send_ctl` take it from sendmsg and
//! `ip_cmsg_recv` / `ip6_datagram_recv_ctl` give it to recvmsg.
//!
//! Sent: IP_TTL, IP_TOS and IP_PKTINFO (IPv4 sockets); IPV6_HOPLIMIT,
//! IPV6_TCLASS, IPV6_PKTINFO and IPV6_DONTFRAG (IPv6 sockets). Received,
//! each when its option is on: IP_PKTINFO, IP_TTL, IP_TOS; IPV6_PKTINFO,
//! IPV6_HOPLIMIT, IPV6_TCLASS. The header fields travel with the datagram
//! through [`crate::pktmeta`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Errno;
use crate::pktmeta::IpFields;
use crate::sockopt::Opts;

/// One control message: level, type and data (the part after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmsg {
    pub level: i32,
    pub ty: i32,
    pub data: Vec<u8>,
}

/// What a sendmsg's IP-level control messages ask of one datagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendAnc {
    pub fields: IpFields,
    /// Source address (IP_PKTINFO's `ipi_spec_dst`, IPV6_PKTINFO's address).
    pub src: Option<IpAddr>,
    /// Outgoing interface named by a PKTINFO message (0: any).
    pub ifindex: u32,
}

fn int(data: &[u8]) -> Result<i32, Errno> {
    let b: [u8; 4] = data.try_into().map_err(|_| libc::EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

impl SendAnc {
    /// Decodes the messages of a socket of `family`. As Linux: messages of
    /// other levels are skipped; an unknown type of the socket's own level
    /// or a bad length or value is EINVAL.
    pub fn parse<'a>(
        family: i32,
        msgs: impl IntoIterator<Item = (i32, i32, &'a [u8])>,
    ) -> Result<SendAnc, Errno> {
        let mut a = SendAnc::default();
        for (level, ty, data) in msgs {
            match (family, level) {
                (libc::AF_INET, libc::SOL_IP) => match ty {
                    libc::IP_TTL => {
                        let v = int(data)?;
                        if !(1..=255).contains(&v) {
                            return Err(libc::EINVAL);
                        }
                        a.fields.hop_limit = Some(v as u8);
                    }
                    libc::IP_TOS => {
                        let v = match data.len() {
                            4 => int(data)?,
                            1 => data[0] as i32,
                            _ => return Err(libc::EINVAL),
                        };
                        if !(0..=255).contains(&v) {
                            return Err(libc::EINVAL);
                        }
                        a.fields.class = Some(v as u8);
                    }
                    libc::IP_PKTINFO => {
                        // struct in_pktinfo: ifindex, spec_dst, addr.
                        if data.len() != 12 {
                            return Err(libc::EINVAL);
                        }
                        a.ifindex = int(&data[0..4])? as u32;
                        let spec: [u8; 4] = data[4..8].try_into().unwrap();
                        let spec = Ipv4Addr::from(spec);
                        a.src = (!spec.is_unspecified()).then_some(IpAddr::V4(spec));
                    }
                    _ => return Err(libc::EINVAL),
                },
                (libc::AF_INET6, libc::SOL_IPV6) => match ty {
                    libc::IPV6_HOPLIMIT => {
                        let v = int(data)?;
                        if !(-1..=255).contains(&v) {
                            return Err(libc::EINVAL);
                        }
                        a.fields.hop_limit = (v >= 0).then_some(v as u8);
                    }
                    libc::IPV6_TCLASS => {
                        let v = int(data)?;
                        if !(-1..=255).contains(&v) {
                            return Err(libc::EINVAL);
                        }
                        // -1 is taken as it is (class 0xff), as Linux
                        // does since its default moved before the parse.
                        a.fields.class = Some(v as u8);
                    }
                    libc::IPV6_PKTINFO => {
                        // struct in6_pktinfo: address, ifindex.
                        if data.len() < 20 {
                            return Err(libc::EINVAL);
                        }
                        let addr: [u8; 16] = data[0..16].try_into().unwrap();
                        let addr = Ipv6Addr::from(addr);
                        a.ifindex = int(&data[16..20])? as u32;
                        a.src = (!addr.is_unspecified()).then(|| match addr.to_ipv4_mapped() {
                            Some(v4) => IpAddr::V4(v4),
                            None => IpAddr::V6(addr),
                        });
                    }
                    libc::IPV6_DONTFRAG => {
                        // The stack does not fragment what it sends; the
                        // value is checked as Linux checks it.
                        if !(-1..=1).contains(&int(data)?) {
                            return Err(libc::EINVAL);
                        }
                    }
                    _ => return Err(libc::EINVAL),
                },
                _ => {}
            }
        }
        Ok(a)
    }
}

/// The control messages a datagram from `from` to local address `to`, on
/// the interface with index `ifindex`, carries to a socket of `family`
/// with options `o`; `fields` are its header fields when remembered.
pub fn received(
    o: &Opts,
    family: i32,
    from: IpAddr,
    to: Option<IpAddr>,
    ifindex: u32,
    fields: Option<IpFields>,
) -> Vec<Cmsg> {
    let hop = fields.and_then(|f| f.hop_limit).unwrap_or(64);
    let class = fields.and_then(|f| f.class).unwrap_or(0);
    let mut out = Vec::new();
    let int = |v: i32| v.to_ne_bytes().to_vec();
    if family == libc::AF_INET6 && o.recvpktinfo {
        // ip6_datagram_recv_common_ctl: an IPv4 datagram's as mapped.
        let a = match to {
            Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped(),
            Some(IpAddr::V6(v6)) => v6,
            None => Ipv6Addr::UNSPECIFIED,
        };
        let mut d = a.octets().to_vec();
        d.extend((ifindex as i32).to_ne_bytes());
        out.push(Cmsg {
            level: libc::SOL_IPV6,
            ty: libc::IPV6_PKTINFO,
            data: d,
        });
    }
    if from.is_ipv4() {
        if o.pktinfo {
            let a = match to {
                Some(IpAddr::V4(v4)) => v4,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            let mut d = (ifindex as i32).to_ne_bytes().to_vec();
            d.extend(a.octets()); // ipi_spec_dst: the local address
            d.extend(a.octets()); // ipi_addr: the header's destination
            out.push(Cmsg {
                level: libc::SOL_IP,
                ty: libc::IP_PKTINFO,
                data: d,
            });
        }
        if o.recvttl {
            out.push(Cmsg {
                level: libc::SOL_IP,
                ty: libc::IP_TTL,
                data: int(hop as i32),
            });
        }
        if o.recvtos {
            out.push(Cmsg {
                level: libc::SOL_IP,
                ty: libc::IP_TOS,
                data: vec![class],
            });
        }
    } else if family == libc::AF_INET6 {
        if o.recvhoplimit {
            out.push(Cmsg {
                level: libc::SOL_IPV6,
                ty: libc::IPV6_HOPLIMIT,
                data: int(hop as i32),
            });
        }
        if o.recvtclass {
            out.push(Cmsg {
                level: libc::SOL_IPV6,
                ty: libc::IPV6_TCLASS,
                data: int(class as i32),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Proto;

    fn i(v: i32) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn send_messages_are_checked_as_linux_checks_them() {
        let ok = SendAnc::parse(
            libc::AF_INET6,
            [
                (libc::SOL_IPV6, libc::IPV6_TCLASS, &i(-1)[..]),
                (libc::SOL_IPV6, libc::IPV6_HOPLIMIT, &i(2)[..]),
                // Another level is skipped on an IPv6 socket.
                (libc::SOL_IP, libc::IP_TTL, &i(0)[..]),
            ],
        )
        .unwrap();
        assert_eq!(
            ok.fields,
            IpFields {
                hop_limit: Some(2),
                class: Some(0xff)
            }
        );
        let bad = |f, l, t, d: &[u8]| SendAnc::parse(f, [(l, t, d)]);
        assert_eq!(
            bad(libc::AF_INET6, libc::SOL_IPV6, libc::IPV6_HOPLIMIT, &i(256)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            bad(libc::AF_INET6, libc::SOL_IPV6, libc::IPV6_TCLASS, &[1, 0]),
            Err(libc::EINVAL)
        );
        assert_eq!(
            bad(libc::AF_INET6, libc::SOL_IPV6, 9999, &i(1)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            bad(libc::AF_INET, libc::SOL_IP, libc::IP_TTL, &i(0)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            bad(libc::AF_INET, libc::SOL_IP, libc::IP_TOS, &[0x10]).map(|a| a.fields.class),
            Ok(Some(0x10))
        );
        let mut pk = i(0);
        pk.extend([127, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(
            bad(libc::AF_INET, libc::SOL_IP, libc::IP_PKTINFO, &pk).map(|a| a.src),
            Ok(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))))
        );
    }

    #[test]
    fn received_messages_follow_the_options_in_linux_order() {
        let mut o = Opts::new(Proto::Udp);
        let f = Some(IpFields {
            hop_limit: Some(2),
            class: Some(0x20),
        });
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(received(&o, libc::AF_INET6, v6, Some(v6), 1, f).is_empty());
        o.recvtclass = true;
        o.recvhoplimit = true;
        o.recvpktinfo = true;
        let got = received(&o, libc::AF_INET6, v6, Some(v6), 1, f);
        let kinds: Vec<_> = got.iter().map(|c| c.ty).collect();
        assert_eq!(
            kinds,
            [libc::IPV6_PKTINFO, libc::IPV6_HOPLIMIT, libc::IPV6_TCLASS]
        );
        assert_eq!(got[1].data, i(2));
        assert_eq!(got[2].data, i(0x20));
        // Unknown fields: Linux's defaults.
        let got = received(&o, libc::AF_INET6, v6, Some(v6), 1, None);
        assert_eq!(got[1].data, i(64));
    }
}
