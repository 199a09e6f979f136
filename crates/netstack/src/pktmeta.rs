//! The IP header fields of single datagrams that smoltcp does not carry to
//! or from its sockets: the hop limit (IPv4 TTL) and the traffic class
//! (IPv4 TOS) of a received UDP datagram, for IP_RECVTTL / IP_RECVTOS /
//! IPV6_RECVHOPLIMIT / IPV6_RECVTCLASS, and the ones a sendmsg asked for
//! with IP_TTL / IP_TOS / IPV6_HOPLIMIT / IPV6_TCLASS control messages.
//!
//! smoltcp passes a packet id (`PacketMeta::id`) from a device's receive
//! token to the socket's datagram metadata, and from a datagram's metadata
//! to the device's transmit token. The devices read the fields of every
//! received UDP packet into a ring under a fresh id; a send that asks for
//! fields records them under a fresh id, and the device writes them into
//! the packet's header when it goes out. A datagram that stayed queued for
//! longer than the ring remembers falls back to the defaults (hop limit 64,
//! class 0): a wrong-but-plausible value, never another datagram's.
//!
//! The stack runs on one thread (the application kernel's), so the rings
//! are thread-local: a test thread gets its own.

use std::cell::{Cell, RefCell};

use smoltcp::phy::PacketMeta;

/// Datagrams remembered in each direction.
const RING: usize = 4096;

/// What smoltcp did not carry: the header fields of one datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpFields {
    /// Hop limit (IPv6) or TTL (IPv4).
    pub hop_limit: Option<u8>,
    /// Traffic class (IPv6) or TOS (IPv4), ECN bits included.
    pub class: Option<u8>,
}

impl IpFields {
    pub fn is_empty(&self) -> bool {
        self.hop_limit.is_none() && self.class.is_none()
    }
}

struct Ring {
    slots: Vec<(u32, IpFields)>,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: vec![(0, IpFields::default()); RING],
        }
    }
    fn put(&mut self, id: u32, f: IpFields) {
        self.slots[id as usize % RING] = (id, f);
    }
    fn get(&self, id: u32) -> Option<IpFields> {
        let (at, f) = self.slots[id as usize % RING];
        (id != 0 && at == id).then_some(f)
    }
}

thread_local! {
    /// Fields for the next IPv6 UDP packet between two ports (see
    /// [`arm_v6`]).
    static ARMED: Cell<Option<(IpFields, u16, u16)>> = const { Cell::new(None) };
    static NEXT: Cell<u32> = const { Cell::new(0) };
    static RX: RefCell<Ring> = RefCell::new(Ring::new());
    static TX: RefCell<Ring> = RefCell::new(Ring::new());
}

/// A fresh id, never 0 (0 is "no fields").
fn next_id() -> u32 {
    NEXT.with(|n| {
        let id = n.get().wrapping_add(1).max(1);
        n.set(id);
        id
    })
}

fn meta_with(id: u32) -> PacketMeta {
    let mut m = PacketMeta::default();
    m.id = id;
    m
}

/// The metadata for a datagram to send with `f` (default metadata when
/// it asks for nothing).
pub fn for_send(f: IpFields) -> PacketMeta {
    if f.is_empty() {
        return PacketMeta::default();
    }
    let id = next_id();
    TX.with(|r| r.borrow_mut().put(id, f));
    meta_with(id)
}

/// The fields a received datagram with metadata `m` had, if remembered.
pub fn received(m: PacketMeta) -> Option<IpFields> {
    RX.with(|r| r.borrow().get(m.id))
}

/// The metadata for a received IP packet (`ip` starts at its IP header):
/// for a UDP datagram its fields are remembered under a fresh id.
pub fn on_receive(ip: &[u8]) -> PacketMeta {
    let Some((proto, hop, class)) = header_fields(ip) else {
        return PacketMeta::default();
    };
    if proto != UDP {
        return PacketMeta::default();
    }
    let id = next_id();
    RX.with(|r| {
        r.borrow_mut().put(
            id,
            IpFields {
                hop_limit: Some(hop),
                class: Some(class),
            },
        )
    });
    meta_with(id)
}

/// smoltcp hands a transmit token the metadata of IPv4 packets only. For
/// an IPv6 datagram the stack arms the fields for the next UDP packet
/// from port `sport` to `dport`, makes the interface send at once, and
/// disarms ([`disarm`]) after.
pub fn arm_v6(f: IpFields, sport: u16, dport: u16) {
    ARMED.with(|a| a.set(Some((f, sport, dport))));
}

pub fn disarm() {
    ARMED.with(|a| a.set(None));
}

/// The armed fields, if `ip` is the IPv6 UDP packet they are for.
fn armed_for(ip: &[u8]) -> Option<IpFields> {
    let (f, sport, dport) = ARMED.with(|a| a.get())?;
    if ip.len() < 48 || ip[0] >> 4 != 6 || ip[6] != UDP {
        return None;
    }
    let ports = (
        u16::from_be_bytes([ip[40], ip[41]]),
        u16::from_be_bytes([ip[42], ip[43]]),
    );
    (ports == (sport, dport)).then(|| {
        disarm();
        f
    })
}

/// Writes the fields a send asked for (metadata `m`, or armed) into the
/// outgoing IP packet `ip`; the IPv4 header checksum is recomputed.
pub fn on_transmit(m: PacketMeta, ip: &mut [u8]) {
    let f = if m.id == 0 {
        armed_for(ip)
    } else {
        TX.with(|r| r.borrow().get(m.id))
    };
    let Some(f) = f else {
        return;
    };
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0xf) as usize * 4).clamp(20, ip.len());
            if let Some(c) = f.class {
                ip[1] = c;
            }
            if let Some(h) = f.hop_limit {
                ip[8] = h;
            }
            ip[10] = 0;
            ip[11] = 0;
            let sum = !smoltcp::wire::checksum::data(&ip[..ihl]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        Some(6) if ip.len() >= 40 => {
            if let Some(c) = f.class {
                // Version (4 bits), class (8), flow label (20).
                ip[0] = 0x60 | (c >> 4);
                ip[1] = (ip[1] & 0x0f) | (c << 4);
            }
            if let Some(h) = f.hop_limit {
                ip[7] = h;
            }
        }
        _ => {}
    }
}

const UDP: u8 = 17;

/// (next protocol, hop limit, class) of an IPv4 or IPv6 header.
fn header_fields(ip: &[u8]) -> Option<(u8, u8, u8)> {
    match ip.first()? >> 4 {
        4 if ip.len() >= 20 => Some((ip[9], ip[8], ip[1])),
        6 if ip.len() >= 40 => Some((ip[6], ip[7], (ip[0] << 4) | (ip[1] >> 4))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ttl: u8, tos: u8) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[1] = tos;
        p[8] = ttl;
        p[9] = UDP;
        p
    }

    #[test]
    fn received_fields_come_back_by_id() {
        let m = on_receive(&v4(7, 0x28));
        assert_eq!(
            received(m),
            Some(IpFields {
                hop_limit: Some(7),
                class: Some(0x28)
            })
        );
        // TCP is not remembered.
        let mut tcp = v4(7, 0);
        tcp[9] = 6;
        assert_eq!(received(on_receive(&tcp)), None);
        assert_eq!(received(PacketMeta::default()), None);
    }

    #[test]
    fn a_datagram_older_than_the_ring_gets_nothing_not_another_ones_fields() {
        let m = on_receive(&v4(1, 1));
        for _ in 0..RING {
            on_receive(&v4(2, 2));
        }
        assert_eq!(received(m), None);
    }

    #[test]
    fn sent_fields_are_written_with_a_valid_ipv4_checksum() {
        let m = for_send(IpFields {
            hop_limit: Some(3),
            class: Some(0xb8),
        });
        let mut p = v4(64, 0);
        on_transmit(m, &mut p);
        assert_eq!((p[8], p[1]), (3, 0xb8));
        assert_eq!(smoltcp::wire::checksum::data(&p[..20]), 0xffff);
        assert_eq!(
            received(on_receive(&p)),
            Some(IpFields {
                hop_limit: Some(3),
                class: Some(0xb8)
            })
        );
    }

    #[test]
    fn armed_fields_go_to_the_next_packet_between_the_ports_only() {
        let f = IpFields {
            hop_limit: Some(9),
            class: None,
        };
        let v6 = |sport: u16| {
            let mut p = vec![0u8; 48];
            p[0] = 0x60;
            p[6] = UDP;
            p[7] = 64;
            p[40..42].copy_from_slice(&sport.to_be_bytes());
            p[42..44].copy_from_slice(&53u16.to_be_bytes());
            p
        };
        arm_v6(f, 1000, 53);
        let mut other = v6(1001);
        on_transmit(PacketMeta::default(), &mut other);
        assert_eq!(other[7], 64);
        let mut p = v6(1000);
        on_transmit(PacketMeta::default(), &mut p);
        assert_eq!(p[7], 9);
        let mut next = v6(1000);
        on_transmit(PacketMeta::default(), &mut next);
        assert_eq!(next[7], 64, "used once");
    }

    #[test]
    fn ipv6_class_spans_two_bytes() {
        let m = for_send(IpFields {
            hop_limit: Some(2),
            class: Some(0xab),
        });
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[1] = 0x05; // flow label bits kept
        p[6] = UDP;
        p[7] = 64;
        on_transmit(m, &mut p);
        assert_eq!((p[0], p[1], p[7]), (0x6a, 0xb5, 2));
        assert_eq!(header_fields(&p), Some((UDP, 2, 0xab)));
        assert!(for_send(IpFields::default()).id == 0);
    }
}
