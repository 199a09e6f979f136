//! virtio-net backed by a tap device, Kata's and Firecracker's model. The
//! runtime creates the tap in the pod's network namespace and hands the
//! VMM its open descriptor: the VMM needs no CAP_NET_ADMIN and reaches no
//! network but that one tap (it opens no socket). The tap speaks the
//! virtio-net header (IFF_VNET_HDR, 12 bytes: the runtime set both), so
//! frames pass through as they are, header included: checksum offload and
//! TSO work both ways, the kernel on either side finishing what the other
//! left (the tap is told at activation which offloads the guest accepts).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use anyhow::{Result, anyhow};
use seccompiler::BpfProgram;
use virtio_queue::{Queue, QueueT, Reader, Writer};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::{Activation, DeviceThread, Irq, VIRTIO_F_VERSION_1, VirtioDevice, read_config_bytes};
use crate::memory::Mem;

/// The guest may send frames with partial checksums, and accepts them.
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
pub const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
/// The guest accepts TCP segments of up to 64 KiB (v4, v6).
pub const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
pub const VIRTIO_NET_F_GUEST_TSO6: u64 = 1 << 8;
/// The guest may send TCP segments of up to 64 KiB (v4, v6).
pub const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;
pub const VIRTIO_NET_F_HOST_TSO6: u64 = 1 << 12;
/// Descriptor chains may sit in an indirect table: a 64 KiB receive
/// buffer (19 pages) then takes one ring slot, not 19.
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
/// The device's config space has the MTU (virtio 1.x, 5.1.3).
pub const VIRTIO_NET_F_MTU: u64 = 1 << 3;
/// The device's config space has the MAC address.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// `struct virtio_net_hdr_v1`: what precedes every frame in the queues.
const HDR_LEN: usize = 12;
const QUEUE_SIZE: u16 = 256;
const RXQ: usize = 0;
const TXQ: usize = 1;
/// Largest frame with its header: a 64 KiB TSO segment, its Ethernet
/// and VLAN headers, with room to spare.
const MAX_FRAME: usize = 128 * 1024;

/// What the guest's interface is: the tap's descriptor (non-blocking is
/// set here), the MAC and MTU of the pod's interface.
pub struct NetConfig {
    pub tap: File,
    pub mac: [u8; 6],
    pub mtu: u16,
}

pub struct Net {
    mac: [u8; 6],
    mtu: u16,
    thread: DeviceThread,
}

impl Net {
    /// The device's thread starts here, under `filter`.
    pub fn new(cfg: NetConfig, filter: Option<BpfProgram>) -> Result<Net> {
        // SAFETY: fcntl on the descriptor we own.
        unsafe {
            let fd = cfg.tap.as_raw_fd();
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
                return Err(anyhow!("tap: {}", std::io::Error::last_os_error()));
            }
        }
        let tap = cfg.tap;
        let thread =
            DeviceThread::spawn("virtio-net", filter, crate::seccomp::Caps::Drop, move |a| {
                if let Err(e) = Worker::new(a, tap).and_then(|mut w| w.run()) {
                    eprintln!("atoll-vmm: virtio-net: {e:#}");
                }
            })?;
        Ok(Net {
            mac: cfg.mac,
            mtu: cfg.mtu,
            thread,
        })
    }
}

/// The config space: mac, status, max_virtqueue_pairs, mtu.
fn config(mac: [u8; 6], mtu: u16) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[..6].copy_from_slice(&mac);
    // (status is only read with VIRTIO_NET_F_STATUS: the link is up)
    c[8..10].copy_from_slice(&1u16.to_le_bytes());
    c[10..12].copy_from_slice(&mtu.to_le_bytes());
    c
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        1
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
            | VIRTIO_NET_F_MAC
            | VIRTIO_NET_F_MTU
            | VIRTIO_NET_F_CSUM
            | VIRTIO_NET_F_GUEST_CSUM
            | VIRTIO_NET_F_GUEST_TSO4
            | VIRTIO_NET_F_GUEST_TSO6
            | VIRTIO_NET_F_HOST_TSO4
            | VIRTIO_NET_F_HOST_TSO6
            | VIRTIO_RING_F_INDIRECT_DESC
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE; 2]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&config(self.mac, self.mtu), offset, data)
    }
    fn activate(&mut self, a: Activation) -> Result<()> {
        self.thread.activate(a)
    }
}

const TOK_RX: u64 = 0;
const TOK_TX: u64 = 1;
const TOK_TAP: u64 = 2;

struct Worker {
    mem: Mem,
    queues: Vec<Queue>,
    kicks: Vec<vmm_sys_util::eventfd::EventFd>,
    irq: Irq,
    tap: File,
    epoll: Epoll,
    /// A frame read from the tap that found no receive buffer yet.
    pending: Option<Vec<u8>>,
    /// The tap may have more frames (it is polled edge-triggered).
    tap_readable: bool,
    buf: Vec<u8>,
}

impl Worker {
    fn new(a: Activation, tap: File) -> Result<Worker> {
        // What the tap may hand the guest: only what its driver accepted
        // (the tap's kernel completes checksums and segments the rest).
        let offloads = tap_offloads(a.features);
        // SAFETY: TUNSETOFFLOAD takes its flags by value.
        if unsafe {
            libc::ioctl(
                tap.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                offloads as libc::c_ulong,
            )
        } < 0
        {
            return Err(anyhow!(
                "tap offloads {offloads:#x}: {}",
                std::io::Error::last_os_error()
            ));
        }
        let epoll = Epoll::new()?;
        for (tok, fd, ev) in [
            (TOK_RX, a.kicks[RXQ].as_raw_fd(), EventSet::IN),
            (TOK_TX, a.kicks[TXQ].as_raw_fd(), EventSet::IN),
            (
                TOK_TAP,
                tap.as_raw_fd(),
                EventSet::IN | EventSet::EDGE_TRIGGERED,
            ),
        ] {
            epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(ev, tok))?;
        }
        Ok(Worker {
            mem: a.mem,
            queues: a.queues,
            kicks: a.kicks,
            irq: a.irq,
            tap,
            epoll,
            pending: None,
            tap_readable: true,
            buf: vec![0u8; MAX_FRAME],
        })
    }

    fn run(&mut self) -> Result<()> {
        let mut events = vec![EpollEvent::default(); 4];
        loop {
            let n = match self.epoll.wait(-1, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow!("epoll_wait: {e}")),
            };
            for ev in &events[..n] {
                match ev.data() {
                    TOK_RX => {
                        let _ = self.kicks[RXQ].read();
                    }
                    TOK_TX => {
                        let _ = self.kicks[TXQ].read();
                        self.process_tx();
                    }
                    _ => self.tap_readable = true,
                }
            }
            // New receive buffers, or new frames: either may let frames in.
            self.process_rx();
        }
    }

    /// Guest frames to the tap. A frame the tap refuses (its queue is
    /// full, or it is down) is dropped, as a NIC drops on a full ring.
    fn process_tx(&mut self) {
        let mem = self.mem.clone();
        let mut used = false;
        while let Some(chain) = self.queues[TXQ].pop_descriptor_chain(&mem) {
            let head = chain.head_index();
            if let Ok(mut r) = Reader::new(&mem, chain) {
                let len = r.available_bytes();
                if (HDR_LEN..=MAX_FRAME).contains(&len) {
                    // header and frame in one write, as the tap reads them
                    let mut frame = vec![0u8; len];
                    if r.read_exact(&mut frame).is_ok() {
                        let _ = (&self.tap).write(&frame);
                    }
                }
            }
            let _ = self.queues[TXQ].add_used(&mem, head, 0);
            used = true;
        }
        if used {
            self.irq.used();
        }
    }

    /// Tap frames into the guest's receive buffers, while both last.
    fn process_rx(&mut self) {
        let mem = self.mem.clone();
        let mut used = false;
        loop {
            let frame = match self.pending.take() {
                Some(f) => f,
                None if self.tap_readable => match (&self.tap).read(&mut self.buf) {
                    Ok(n) if n >= HDR_LEN => {
                        // num_buffers (the tap leaves it): the frame is in
                        // one buffer
                        self.buf[10..12].copy_from_slice(&1u16.to_le_bytes());
                        self.buf[..n].to_vec()
                    }
                    Ok(n) if n > 0 => continue,
                    // EAGAIN (drained), or the tap is gone
                    _ => {
                        self.tap_readable = false;
                        break;
                    }
                },
                None => break,
            };
            let Some(chain) = self.queues[RXQ].pop_descriptor_chain(&mem) else {
                // The guest's next RX kick brings buffers.
                self.pending = Some(frame);
                break;
            };
            let head = chain.head_index();
            // A buffer too small for the frame: the frame is dropped.
            let len = match Writer::new(&mem, chain) {
                Ok(mut w) if w.available_bytes() >= frame.len() => {
                    w.write_all(&frame).map(|_| frame.len()).unwrap_or(0)
                }
                _ => 0,
            };
            let _ = self.queues[RXQ].add_used(&mem, head, len as u32);
            used = true;
        }
        if used {
            self.irq.used();
        }
    }
}

/// TUNSETOFFLOAD's flags for the features the driver accepted.
fn tap_offloads(features: u64) -> u32 {
    let mut f = 0;
    if features & VIRTIO_NET_F_GUEST_CSUM != 0 {
        f |= libc::TUN_F_CSUM;
        if features & VIRTIO_NET_F_GUEST_TSO4 != 0 {
            f |= libc::TUN_F_TSO4;
        }
        if features & VIRTIO_NET_F_GUEST_TSO6 != 0 {
            f |= libc::TUN_F_TSO6;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_space_has_the_mac_one_queue_pair_and_the_mtu() {
        let c = config([2, 0, 0, 0, 0, 9], 1450);
        assert_eq!(&c[..6], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(u16::from_le_bytes([c[8], c[9]]), 1);
        assert_eq!(u16::from_le_bytes([c[10], c[11]]), 1450);
    }

    #[test]
    fn the_tap_offloads_only_what_the_guest_accepted() {
        assert_eq!(tap_offloads(VIRTIO_F_VERSION_1), 0);
        // TSO without checksum offload is not a combination the tap takes
        assert_eq!(tap_offloads(VIRTIO_NET_F_GUEST_TSO4), 0);
        assert_eq!(
            tap_offloads(VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4),
            libc::TUN_F_CSUM | libc::TUN_F_TSO4
        );
        assert_eq!(
            tap_offloads(
                VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6
            ),
            libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6
        );
    }
}
