//! The stack's devices: loopback (in memory) and links (Ethernet frames
//! moved through [`Frames`]). Links are exercised by tests over an
//! in-memory wire; the AF_PACKET socket that would tie a link to the
//! container's interfaces is not built yet.
//!
//! Frames from a link are untrusted input: whatever their virtio header
//! claims, they are length-checked here and parsed by smoltcp's checked
//! wire types; checksums the host did not vouch for are verified here.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet,
    checksum,
};

/// `struct virtio_net_hdr` (PACKET_VNET_HDR): offloads between the stack
/// and the host, ahead of every frame on a link that has it.
pub const VNET_HDR_LEN: usize = 10;
const VNET_F_NEEDS_CSUM: u8 = 1;
const VNET_F_DATA_VALID: u8 = 2;
const VNET_GSO_NONE: u8 = 0;
const VNET_GSO_TCPV4: u8 = 1;
const VNET_GSO_TCPV6: u8 = 4;

/// The largest frame a link hands over (a 64 KiB GSO packet plus headers).
pub const MAX_FRAME: usize = 65536 + 14 + VNET_HDR_LEN + 64;

/// Where a link's frames come from and go to.
pub trait Frames {
    /// Receives one frame (behind its virtio header when [`Frames::vnet`])
    /// into `buf`; None when nothing is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Sends one frame (with its virtio header when [`Frames::vnet`]);
    /// false when the host queue is full (the stack sends it again later).
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Whether frames carry a virtio header (checksum and segmentation
    /// offload with the host).
    fn vnet(&self) -> bool;
}

/// Counters of one interface (/proc/net/dev).
#[derive(Clone, Copy, Debug, Default)]
pub struct DevStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
}

/// Loopback: what is sent is received, in order, inside the kernel.
pub struct LoopDevice {
    pub queue: VecDeque<Vec<u8>>,
    pub stats: DevStats,
    pub mtu: usize,
}

impl LoopDevice {
    pub fn new() -> LoopDevice {
        LoopDevice {
            queue: VecDeque::new(),
            stats: DevStats::default(),
            // Linux shows lo's MTU as 65536, but an IPv4 packet's length
            // field stops at 65535: a 65536-byte segment would be sent with
            // a wrapped length and dropped on receive, stalling every bulk
            // transfer over loopback.
            mtu: 65535,
        }
    }
}

impl Default for LoopDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl phy::Device for LoopDevice {
    type RxToken<'a> = LoopRx;
    type TxToken<'a> = LoopTx<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        // As Linux's loopback: nothing crosses a wire, nothing to check.
        c.checksum = ChecksumCapabilities::ignored();
        c
    }

    fn receive(&mut self, _now: Instant) -> Option<(LoopRx, LoopTx<'_>)> {
        let buffer = self.queue.pop_front()?;
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += buffer.len() as u64;
        let meta = crate::pktmeta::on_receive(&buffer);
        Some((
            LoopRx { buffer, meta },
            LoopTx {
                queue: &mut self.queue,
                stats: &mut self.stats,
                meta: PacketMeta::default(),
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx {
            queue: &mut self.queue,
            stats: &mut self.stats,
            meta: PacketMeta::default(),
        })
    }
}

pub struct LoopRx {
    buffer: Vec<u8>,
    meta: PacketMeta,
}

impl phy::RxToken for LoopRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.buffer)
    }

    fn meta(&self) -> PacketMeta {
        self.meta
    }
}

pub struct LoopTx<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    stats: &'a mut DevStats,
    meta: PacketMeta,
}

impl phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        crate::pktmeta::on_transmit(self.meta, &mut buf);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        self.queue.push_back(buf);
        r
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

/// An Ethernet link over [`Frames`].
pub struct LinkDevice<F: Frames> {
    pub frames: F,
    /// IP MTU of the interface.
    pub mtu: usize,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    pub stats: DevStats,
}

impl<F: Frames> LinkDevice<F> {
    pub fn new(frames: F, mtu: usize) -> LinkDevice<F> {
        LinkDevice {
            frames,
            mtu: mtu.clamp(576, 65535),
            rx_buf: vec![0u8; MAX_FRAME],
            tx_buf: Vec::with_capacity(MAX_FRAME),
            stats: DevStats::default(),
        }
    }
}

impl<F: Frames> phy::Device for LinkDevice<F> {
    type RxToken<'a>
        = LinkRx<'a>
    where
        F: 'a;
    type TxToken<'a>
        = LinkTx<'a, F>
    where
        F: 'a;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.mtu + 14;
        // Transport checksums are checked here on receive (unless the host
        // vouched for them); TCP's are left to the host on send when it
        // takes offloads, which also lets it cut big segments (GSO).
        let mut cs = ChecksumCapabilities::default();
        cs.ipv4 = Checksum::Both;
        cs.udp = Checksum::Tx;
        cs.icmpv4 = Checksum::Tx;
        cs.icmpv6 = Checksum::Tx;
        cs.tcp = if self.frames.vnet() {
            Checksum::None
        } else {
            Checksum::Tx
        };
        c.checksum = cs;
        if self.frames.vnet() {
            // 64 KiB segments, cut to the MSS by the host.
            // IPv4 only: smoltcp 0.14 hands an IPv6 packet's transmit
            // token no metadata (so no segment size) and drops an IPv6
            // packet above the MTU, which stalled IPv6 TCP on such links.
            c.segmentation.tcpv4 = NonZeroUsize::new(65535 - 14);
        }
        c
    }

    fn receive(&mut self, _now: Instant) -> Option<(LinkRx<'_>, LinkTx<'_, F>)> {
        loop {
            let n = self.frames.recv(&mut self.rx_buf)?;
            let (start, trusted) = if self.frames.vnet() {
                if n < VNET_HDR_LEN {
                    self.stats.rx_dropped += 1;
                    continue;
                }
                let flags = self.rx_buf[0];
                (
                    VNET_HDR_LEN,
                    flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID) != 0,
                )
            } else {
                (0, false)
            };
            let frame = &self.rx_buf[start..n];
            if frame.len() < 14 || (!trusted && !checksums_ok(frame)) {
                self.stats.rx_dropped += 1;
                continue;
            }
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += frame.len() as u64;
            let meta = match ip_of_frame(frame) {
                Some(ip) => crate::pktmeta::on_receive(ip),
                None => PacketMeta::default(),
            };
            return Some((
                LinkRx {
                    frame: &self.rx_buf[start..n],
                    meta,
                },
                LinkTx {
                    frames: &mut self.frames,
                    buf: &mut self.tx_buf,
                    stats: &mut self.stats,
                    meta: PacketMeta::default(),
                },
            ));
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<LinkTx<'_, F>> {
        Some(LinkTx {
            frames: &mut self.frames,
            buf: &mut self.tx_buf,
            stats: &mut self.stats,
            meta: PacketMeta::default(),
        })
    }
}

pub struct LinkRx<'a> {
    frame: &'a [u8],
    meta: PacketMeta,
}

impl phy::RxToken for LinkRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }

    fn meta(&self) -> PacketMeta {
        self.meta
    }
}

/// The IP packet in an Ethernet frame (IPv4 or IPv6, untagged).
fn ip_of_frame(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    matches!(ethertype, 0x0800 | 0x86dd).then(|| &frame[14..])
}

fn ip_of_frame_mut(frame: &mut [u8]) -> Option<&mut [u8]> {
    ip_of_frame(frame)?;
    Some(&mut frame[14..])
}

pub struct LinkTx<'a, F: Frames> {
    frames: &'a mut F,
    buf: &'a mut Vec<u8>,
    stats: &'a mut DevStats,
    meta: PacketMeta,
}

impl<F: Frames> phy::TxToken for LinkTx<'_, F> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let vnet = self.frames.vnet();
        let head = if vnet { VNET_HDR_LEN } else { 0 };
        self.buf.clear();
        self.buf.resize(head + len, 0);
        let r = f(&mut self.buf[head..]);
        if let Some(ip) = ip_of_frame_mut(&mut self.buf[head..]) {
            crate::pktmeta::on_transmit(self.meta, ip);
        }
        let gso = self.meta.segmentation_offload_size.map(|s| s.get());
        if vnet {
            let mut hdr = [0u8; VNET_HDR_LEN];
            prepare_offload(&mut self.buf[head..], gso, &mut hdr);
            self.buf[..VNET_HDR_LEN].copy_from_slice(&hdr);
        }
        if self.frames.send(self.buf) {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += len as u64;
        } else {
            self.stats.tx_dropped += 1;
        }
        r
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

/// Where a frame's IP packet and its transport header are.
struct Parsed {
    ethertype: EthernetProtocol,
    ip_start: usize,
    l4_start: usize,
    l4_len: usize,
    proto: IpProtocol,
}

fn parse(frame: &[u8]) -> Option<Parsed> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ethertype = eth.ethertype();
    let ip_start = 14;
    match ethertype {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(&frame[ip_start..]).ok()?;
            if ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let hl = ip.header_len() as usize;
            let total = ip.total_len() as usize;
            Some(Parsed {
                ethertype,
                ip_start,
                l4_start: ip_start + hl,
                l4_len: total.checked_sub(hl)?,
                proto: ip.next_header(),
            })
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(&frame[ip_start..]).ok()?;
            Some(Parsed {
                ethertype,
                ip_start,
                l4_start: ip_start + 40,
                l4_len: ip.payload_len() as usize,
                proto: ip.next_header(),
            })
        }
        _ => None,
    }
}

fn pseudo(frame: &[u8], p: &Parsed) -> Option<u16> {
    let ip = &frame[p.ip_start..];
    Some(match p.ethertype {
        EthernetProtocol::Ipv4 => {
            let src = Ipv4Address::from_octets(ip.get(12..16)?.try_into().ok()?);
            let dst = Ipv4Address::from_octets(ip.get(16..20)?.try_into().ok()?);
            checksum::pseudo_header_v4(&src, &dst, p.proto, p.l4_len as u32)
        }
        _ => {
            let src = Ipv6Address::from_octets(ip.get(8..24)?.try_into().ok()?);
            let dst = Ipv6Address::from_octets(ip.get(24..40)?.try_into().ok()?);
            checksum::pseudo_header_v6(&src, &dst, p.proto, p.l4_len as u32)
        }
    })
}

/// Whether the TCP, UDP or ICMP checksum of a received frame holds (true
/// for anything else: smoltcp checks the rest or drops it).
pub fn checksums_ok(frame: &[u8]) -> bool {
    let Some(p) = parse(frame) else {
        return true;
    };
    let Some(l4) = frame.get(p.l4_start..p.l4_start + p.l4_len) else {
        return true;
    };
    let with_pseudo = match p.proto {
        IpProtocol::Tcp => true,
        // A zero UDP checksum means "none" over IPv4.
        IpProtocol::Udp
            if p.ethertype == EthernetProtocol::Ipv4 && l4.len() >= 8 && l4[6..8] == [0, 0] =>
        {
            return true;
        }
        IpProtocol::Udp => true,
        IpProtocol::Icmpv6 => true,
        IpProtocol::Icmp => false,
        _ => return true,
    };
    let sum = if with_pseudo {
        let Some(ph) = pseudo(frame, &p) else {
            return false;
        };
        checksum::combine(&[ph, checksum::data(l4)])
    } else {
        checksum::data(l4)
    };
    sum == 0xffff
}

/// Fills the virtio header of an outgoing frame and leaves TCP's checksum
/// for the host: the field gets the pseudo-header sum, the header says
/// where to finish it, and a segment longer than the MSS is marked for
/// segmentation (`gso` is the MSS smoltcp asked for).
fn prepare_offload(frame: &mut [u8], gso: Option<u16>, hdr: &mut [u8; VNET_HDR_LEN]) {
    let Some(p) = parse(frame) else {
        return;
    };
    if p.proto != IpProtocol::Tcp || frame.len() < p.l4_start + 20 {
        return;
    }
    let Some(ph) = pseudo(frame, &p) else {
        return;
    };
    frame[p.l4_start + 16..p.l4_start + 18].copy_from_slice(&ph.to_be_bytes());
    hdr[0] = VNET_F_NEEDS_CSUM;
    let th_len = ((frame[p.l4_start + 12] >> 4) as usize) * 4;
    let payload = p.l4_len.saturating_sub(th_len);
    match gso {
        Some(mss) if payload > mss as usize => {
            hdr[1] = if p.ethertype == EthernetProtocol::Ipv4 {
                VNET_GSO_TCPV4
            } else {
                VNET_GSO_TCPV6
            };
            hdr[2..4].copy_from_slice(&((p.l4_start + th_len) as u16).to_le_bytes());
            hdr[4..6].copy_from_slice(&mss.to_le_bytes());
        }
        _ => hdr[1] = VNET_GSO_NONE,
    }
    hdr[6..8].copy_from_slice(&(p.l4_start as u16).to_le_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_le_bytes());
}
