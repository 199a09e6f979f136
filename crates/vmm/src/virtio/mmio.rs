//! The virtio-mmio transport (version 2): the register window the driver
//! programs, and the switch to the device's own thread at DRIVER_OK.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Result, anyhow};
use kvm_ioctls::{IoEventAddress, VmFd};
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::{Activation, Irq, VirtioDevice};
use crate::memory::Mem;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const VENDOR: u32 = 0x4c4f_5441; // "ATOL"

const STATUS_ACKNOWLEDGE: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;
const STATUS_FAILED: u32 = 0x80;

const QUEUE_NOTIFY: u64 = 0x50;

pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: Mem,
    queues: Vec<Queue>,
    kicks: Vec<EventFd>,
    irq: Irq,
    status: u32,
    features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    activated: bool,
    config_generation: u32,
}

impl MmioTransport {
    /// Registers the device's queue kicks (ioeventfds) and interrupt
    /// (irqfd) with KVM.
    pub fn new(
        vm: &VmFd,
        mem: Mem,
        device: Box<dyn VirtioDevice>,
        base: u64,
        irq_line: u32,
    ) -> Result<MmioTransport> {
        let sizes = device.queue_sizes();
        let mut queues = Vec::new();
        let mut kicks = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            queues.push(Queue::new(*size).map_err(|e| anyhow!("virtio queue: {e:?}"))?);
            let evt = EventFd::new(libc::EFD_NONBLOCK)?;
            vm.register_ioevent(&evt, &IoEventAddress::Mmio(base + QUEUE_NOTIFY), i as u32)
                .map_err(|e| anyhow!("KVM_IOEVENTFD: {e}"))?;
            kicks.push(evt);
        }
        let evt = EventFd::new(libc::EFD_NONBLOCK)?;
        vm.register_irqfd(&evt, irq_line)
            .map_err(|e| anyhow!("KVM_IRQFD: {e}"))?;
        Ok(MmioTransport {
            device,
            mem,
            queues,
            kicks,
            irq: Irq {
                status: Arc::new(AtomicU32::new(0)),
                evt: Arc::new(evt),
            },
            status: 0,
            features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            activated: false,
            config_generation: 0,
        })
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        if self.activated {
            return None;
        }
        self.queues.get_mut(self.queue_sel as usize)
    }

    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= 0x100 {
            self.device.read_config(offset - 0x100, data);
            return;
        }
        if data.len() != 4 {
            data.fill(0);
            return;
        }
        let v = match offset {
            0x00 => MAGIC,
            0x04 => VERSION,
            0x08 => self.device.device_type(),
            0x0c => VENDOR,
            0x10 => {
                let f = self.device.features();
                match self.features_sel {
                    0 => f as u32,
                    1 => (f >> 32) as u32,
                    _ => 0,
                }
            }
            0x34 => self
                .device
                .queue_sizes()
                .get(self.queue_sel as usize)
                .map(|s| *s as u32)
                .unwrap_or(0),
            0x44 => self
                .queues
                .get(self.queue_sel as usize)
                .map(|q| q.ready() as u32)
                .unwrap_or(self.activated as u32),
            0x60 => {
                let s = self.irq.status.load(Ordering::SeqCst);
                if self.device.interrupts_from_elsewhere() {
                    s | Irq::USED_BUFFER
                } else {
                    s
                }
            }
            0x70 => self.status,
            // No shared memory regions (no DAX window): length and base
            // read as all ones.
            0xb0..=0xbc => u32::MAX,
            0xfc => self.config_generation,
            _ => 0,
        };
        data.copy_from_slice(&v.to_le_bytes());
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= 0x100 || data.len() != 4 {
            return; // no writable config space
        }
        let v = u32::from_le_bytes(data.try_into().unwrap());
        match offset {
            0x14 => self.features_sel = v,
            0x20 => {
                let offered = self.device.features();
                match self.driver_features_sel {
                    0 => {
                        self.driver_features =
                            (self.driver_features & !0xffff_ffff) | (u64::from(v) & offered)
                    }
                    1 => {
                        self.driver_features =
                            (self.driver_features & 0xffff_ffff) | ((u64::from(v) << 32) & offered)
                    }
                    _ => {}
                }
            }
            0x24 => self.driver_features_sel = v,
            0x30 => self.queue_sel = v,
            0x38 => {
                if let Some(q) = self.queue() {
                    q.set_size(v as u16)
                }
            }
            0x44 => {
                if let Some(q) = self.queue() {
                    q.set_ready(v == 1)
                }
            }
            0x64 => {
                self.irq.status.fetch_and(!v, Ordering::SeqCst);
            }
            0x70 => self.set_status(v),
            0x80 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_desc_table_address(Some(v), None)),
            0x84 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_desc_table_address(None, Some(v))),
            0x90 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_avail_ring_address(Some(v), None)),
            0x94 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_avail_ring_address(None, Some(v))),
            0xa0 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_used_ring_address(Some(v), None)),
            0xa4 => self
                .queue()
                .into_iter()
                .for_each(|q| q.set_used_ring_address(None, Some(v))),
            _ => {}
        }
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            // Reset. A running device is not stopped (the guest only resets
            // devices when it is going down, and the VM goes with it).
            self.status = 0;
            return;
        }
        if v & STATUS_FEATURES_OK != 0 && self.driver_features & super::VIRTIO_F_VERSION_1 == 0 {
            // Only modern drivers are served.
            self.status = v & !STATUS_FEATURES_OK;
            return;
        }
        self.status = v;
        let ready = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
        if v & ready == ready && !self.activated {
            let event_idx = self.driver_features & super::VIRTIO_RING_F_EVENT_IDX != 0;
            if self
                .queues
                .iter()
                .any(|q| q.ready() && !q.is_valid(&self.mem))
            {
                self.status |= STATUS_FAILED;
                return;
            }
            // The device owns the queues from now on.
            let mut queues = std::mem::take(&mut self.queues);
            for q in &mut queues {
                q.set_event_idx(event_idx);
            }
            // (KVM keeps its own reference to the ioeventfds.)
            let kicks = std::mem::take(&mut self.kicks);
            let a = Activation {
                mem: self.mem.clone(),
                queues,
                kicks,
                irq: self.irq.clone(),
                features: self.driver_features,
            };
            match self.device.activate(a) {
                Ok(()) => self.activated = true,
                Err(e) => {
                    eprintln!(
                        "atoll-vmm: virtio device {}: {e:#}",
                        self.device.device_type()
                    );
                    self.status |= STATUS_FAILED;
                }
            }
        }
    }
}
