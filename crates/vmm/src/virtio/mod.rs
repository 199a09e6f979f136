//! virtio devices over the MMIO transport. Each device runs its queues on
//! a thread of its own (virtio-fs: a process of its own, see
//! [`crate::fs_server`]), woken by KVM ioeventfds (the vCPU never leaves the
//! kernel for a queue kick) and interrupting the guest through irqfds.
//! The thread starts with the VM, before the guest runs, and confines
//! itself (its seccomp filter) before it waits for the queues, which the
//! transport hands it when the driver sets DRIVER_OK: no thread is ever
//! started by a guest action.

pub mod fs;
pub mod mmio;
pub mod net;
pub mod vsock;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};

use anyhow::{Result, anyhow};
use seccompiler::BpfProgram;
use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::Mem;

pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// The interrupt line of one device.
#[derive(Clone)]
pub struct Irq {
    pub status: Arc<AtomicU32>,
    pub evt: Arc<EventFd>,
}

impl Irq {
    pub const USED_BUFFER: u32 = 1;
    pub const CONFIG_CHANGE: u32 = 2;

    /// Tells the guest that buffers were used.
    pub fn used(&self) {
        self.status.fetch_or(Self::USED_BUFFER, Ordering::SeqCst);
        let _ = self.evt.write(1);
    }
}

/// What a device gets when the driver sets DRIVER_OK.
pub struct Activation {
    pub mem: Mem,
    pub queues: Vec<Queue>,
    /// One per queue: signalled when the driver kicks that queue.
    pub kicks: Vec<EventFd>,
    pub irq: Irq,
    pub features: u64,
}

/// A device's queue thread, waiting for its queues.
pub struct DeviceThread(Option<mpsc::Sender<Activation>>);

impl DeviceThread {
    /// Starts thread `name` under `filter` (with the process's
    /// capabilities or none, `caps`); it runs `serve` with the
    /// queues once the driver has set the device up (and ends without
    /// running it if the device is dropped first).
    pub fn spawn(
        name: &str,
        filter: Option<BpfProgram>,
        caps: crate::seccomp::Caps,
        serve: impl FnOnce(Activation) + Send + 'static,
    ) -> Result<DeviceThread> {
        let (tx, rx) = mpsc::channel();
        crate::seccomp::spawn(name.to_string(), filter, caps, move || {
            if let Ok(a) = rx.recv() {
                serve(a)
            }
        })?;
        Ok(DeviceThread(Some(tx)))
    }

    /// Hands the queues over (from the vCPU thread that saw DRIVER_OK).
    pub fn activate(&mut self, a: Activation) -> Result<()> {
        let tx = self
            .0
            .take()
            .ok_or_else(|| anyhow!("the device was activated twice"))?;
        tx.send(a)
            .map_err(|_| anyhow!("the device's thread has ended"))
    }
}

pub trait VirtioDevice: Send {
    /// virtio device id (19 vsock, 26 fs, 1 net).
    fn device_type(&self) -> u32;
    fn features(&self) -> u64;
    fn queue_sizes(&self) -> Vec<u16>;
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Whether another process raises the device's interrupts (writing
    /// its irqfd, as a vhost-user backend does) without setting the
    /// interrupt status: the status then always reads "used buffers",
    /// and the guest's driver looks at its queues on every interrupt
    /// (the line is the device's own, so it is never someone else's).
    fn interrupts_from_elsewhere(&self) -> bool {
        false
    }
    /// Starts serving the queues (on the device's own thread: see
    /// [`DeviceThread`]).
    fn activate(&mut self, a: Activation) -> Result<()>;
}

/// Copies `src`'s bytes at `offset` into `data` (config space reads).
pub fn read_config_bytes(src: &[u8], offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = src.get(offset as usize + i).copied().unwrap_or(0);
    }
}
