//! The virtio-fs device, whose queues a separate, jailed process serves
//! ([`crate::fs_server`]) over vhost-user: the VMM keeps the register
//! window and the config space (the tag), and is the protocol's frontend.
//! Guest RAM goes to the server once, before the guest runs
//! (SET_MEM_TABLE); when the driver sets DRIVER_OK, the device's thread
//! sends the negotiated features and each queue's size, addresses, KVM
//! ioeventfd (kick) and irqfd (call), and enables it. From then on the
//! server reads kicks and raises interrupts itself.
//!
//! The thread then watches the socket: if the server dies, it takes the
//! queues over and answers every request with EIO, so the guest's file
//! operations fail instead of waiting forever, and the VMM runs on.

use std::os::fd::AsRawFd;

use anyhow::{Context, Result, anyhow, bail};
use seccompiler::BpfProgram;
use vhost::vhost_user::message::VhostUserVirtioFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend, VhostUserProtocolFeatures};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryRegion};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::{Activation, DeviceThread, Irq, VIRTIO_F_VERSION_1, VirtioDevice, read_config_bytes};
use crate::fs_server::FsServer;
use crate::fs_server::backend::{MAX_QUEUE_SIZE, NUM_QUEUES};
use crate::memory::Mem;

pub struct Fs {
    tag: String,
    thread: DeviceThread,
}

impl Fs {
    /// Shares the file server's root with the guest under `tag`: waits
    /// for `server` to be confined, sends it guest RAM, and starts the
    /// device's thread under `filter`.
    pub fn new(
        tag: &str,
        mut server: FsServer,
        mem: &Mem,
        filter: Option<BpfProgram>,
    ) -> Result<Fs> {
        if tag.is_empty() || tag.len() > 36 {
            bail!("virtio-fs tag {tag:?} must be 1 to 36 bytes");
        }
        server.wait_ready()?;
        let pid = server.pid;
        let mut fe = Frontend::from_stream(server.stream, NUM_QUEUES as u64);
        let e =
            |what: &'static str| move |e| anyhow!("vhost-user {what} (file server pid {pid}): {e}");
        fe.set_owner().map_err(e("SET_OWNER"))?;
        let offered = fe.get_features().map_err(e("GET_FEATURES"))?;
        let protocol = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
        if offered & (VIRTIO_F_VERSION_1 | protocol) != VIRTIO_F_VERSION_1 | protocol {
            bail!(
                "the file server offers features {offered:#x}, without VERSION_1 or PROTOCOL_FEATURES"
            );
        }
        fe.get_protocol_features()
            .map_err(e("GET_PROTOCOL_FEATURES"))?;
        fe.set_protocol_features(VhostUserProtocolFeatures::empty())
            .map_err(e("SET_PROTOCOL_FEATURES"))?;
        let regions = mem
            .iter()
            .map(|r| {
                let fo = r
                    .file_offset()
                    .ok_or_else(|| anyhow!("guest memory is not shareable (no memfd)"))?;
                Ok(VhostUserMemoryRegionInfo {
                    guest_phys_addr: r.start_addr().raw_value(),
                    memory_size: r.len(),
                    userspace_addr: r.as_ptr() as u64,
                    mmap_offset: fo.start(),
                    mmap_handle: fo.file().as_raw_fd(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        fe.set_mem_table(&regions).map_err(e("SET_MEM_TABLE"))?;
        let thread =
            DeviceThread::spawn("virtio-fs", filter, crate::seccomp::Caps::Drop, move |a| {
                if let Err(e) = run(fe, pid, a) {
                    eprintln!("atoll-vmm: virtio-fs: {e:#}");
                }
            })?;
        Ok(Fs {
            tag: tag.to_string(),
            thread,
        })
    }
}

impl VirtioDevice for Fs {
    fn device_type(&self) -> u32 {
        26
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }
    fn queue_sizes(&self) -> Vec<u16> {
        // the high-priority queue and one request queue
        vec![MAX_QUEUE_SIZE as u16; NUM_QUEUES]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut cfg = [0u8; 40];
        cfg[..self.tag.len()].copy_from_slice(self.tag.as_bytes());
        cfg[36..40].copy_from_slice(&1u32.to_le_bytes());
        read_config_bytes(&cfg, offset, data)
    }
    fn interrupts_from_elsewhere(&self) -> bool {
        // The server writes the irqfd without setting the interrupt
        // status: it reads as "used buffers" always.
        true
    }
    fn activate(&mut self, a: Activation) -> Result<()> {
        self.thread.activate(a)
    }
}

/// The device's thread: hands the queues to the server, then waits for
/// it to hang up and answers the guest itself from then on.
fn run(mut fe: Frontend, pid: i32, mut a: Activation) -> Result<()> {
    let e = |what: &'static str| move |e| anyhow!("vhost-user {what}: {e}");
    fe.set_features(a.features | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits())
        .map_err(e("SET_FEATURES"))?;
    let hva = |gpa: u64| -> Result<u64> {
        a.mem
            .get_host_address(GuestAddress(gpa))
            .map(|p| p as u64)
            .map_err(|e| anyhow!("queue address {gpa:#x}: {e}"))
    };
    for (i, q) in a.queues.iter().enumerate() {
        if !q.ready() {
            continue;
        }
        fe.set_vring_num(i, q.size()).map_err(e("SET_VRING_NUM"))?;
        let cfg = VringConfigData {
            queue_max_size: q.max_size(),
            queue_size: q.size(),
            flags: 0,
            desc_table_addr: hva(q.desc_table())?,
            used_ring_addr: hva(q.used_ring())?,
            avail_ring_addr: hva(q.avail_ring())?,
            log_addr: None,
        };
        fe.set_vring_addr(i, &cfg).map_err(e("SET_VRING_ADDR"))?;
        fe.set_vring_base(i, q.next_avail())
            .map_err(e("SET_VRING_BASE"))?;
        fe.set_vring_call(i, &a.irq.evt)
            .map_err(e("SET_VRING_CALL"))?;
        fe.set_vring_kick(i, &a.kicks[i])
            .map_err(e("SET_VRING_KICK"))?;
        fe.set_vring_enable(i, true)
            .map_err(e("SET_VRING_ENABLE"))?;
    }
    // The server never writes to the socket unasked (no reply-ack, no
    // backend channel): any event on it is its end.
    let epoll = Epoll::new()?;
    let socket = fe.as_raw_fd();
    epoll.ctl(
        ControlOperation::Add,
        socket,
        EpollEvent::new(
            EventSet::IN | EventSet::READ_HANG_UP | EventSet::HANG_UP,
            u64::MAX,
        ),
    )?;
    let mut events = vec![EpollEvent::default(); 4];
    loop {
        match epoll.wait(-1, &mut events) {
            Ok(n) if n > 0 => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("epoll_wait: {e}")),
        }
    }
    epoll.ctl(ControlOperation::Delete, socket, EpollEvent::default())?;
    drop(fe);
    eprintln!(
        "atoll-vmm: virtio-fs: the file server (pid {pid}) is gone; the guest's file requests fail with EIO from now on"
    );
    fail_requests(&epoll, &mut a)
}

/// FUSE_FORGET and FUSE_BATCH_FORGET: requests that get no reply.
const FUSE_FORGET: u32 = 2;
const FUSE_BATCH_FORGET: u32 = 42;

/// Answers every request on the queues with EIO, for as long as the VM
/// runs. The server's progress is where the used rings say: requests it
/// took but never answered are lost (their callers wait); every later
/// one fails.
fn fail_requests(epoll: &Epoll, a: &mut Activation) -> Result<()> {
    for (i, q) in a.queues.iter_mut().enumerate() {
        if !q.ready() {
            continue;
        }
        let used: u16 = a
            .mem
            .read_obj(GuestAddress(q.used_ring()).unchecked_add(2))
            .context("reading the used ring")?;
        q.set_next_avail(used);
        q.set_next_used(used);
        epoll.ctl(
            ControlOperation::Add,
            a.kicks[i].as_raw_fd(),
            EpollEvent::new(EventSet::IN, i as u64),
        )?;
    }
    // Requests made while the server was dying, then every kick.
    for q in 0..a.queues.len() {
        fail_queue(&a.mem, &mut a.queues[q], &a.irq)?;
    }
    let mut events = vec![EpollEvent::default(); 4];
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!("epoll_wait: {e}")),
        };
        for ev in &events[..n] {
            let q = ev.data() as usize;
            let _ = a.kicks[q].read();
            fail_queue(&a.mem, &mut a.queues[q], &a.irq)?;
        }
    }
}

fn fail_queue(mem: &Mem, q: &mut Queue, irq: &Irq) -> Result<()> {
    if !q.ready() {
        return Ok(());
    }
    let mut used = false;
    while let Some(chain) = q.pop_descriptor_chain(mem) {
        let head = chain.head_index();
        // struct fuse_in_header: len, opcode, unique, ...
        let mut hdr = [0u8; 16];
        let read = chain
            .clone()
            .reader(mem)
            .ok()
            .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut hdr).ok());
        let opcode = u32::from_le_bytes(hdr[4..8].try_into().unwrap());
        let mut len = 0;
        if read.is_some() && opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET {
            // struct fuse_out_header: len, error, unique
            let mut out = [0u8; 16];
            out[0..4].copy_from_slice(&16u32.to_le_bytes());
            out[4..8].copy_from_slice(&(-libc::EIO).to_le_bytes());
            out[8..16].copy_from_slice(&hdr[8..16]);
            if let Ok(mut w) = chain.writer(mem)
                && std::io::Write::write_all(&mut w, &out).is_ok()
            {
                len = out.len() as u32;
            }
        }
        q.add_used(mem, head, len)
            .map_err(|e| anyhow!("used ring: {e:?}"))?;
        used = true;
    }
    if used {
        irq.used();
    }
    Ok(())
}
