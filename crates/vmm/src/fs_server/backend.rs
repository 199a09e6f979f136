//! The file server's side of vhost-user-fs: vhost-user-backend runs the
//! protocol (the VMM's SET_MEM_TABLE, SET_VRING_*) and the queues' event
//! loop; this serves each request popped from a queue with fuse-backend-rs's
//! passthrough file system, in the memory the VMM shared (a memfd this
//! process maps itself).

use std::io;
use std::sync::{Arc, RwLock};

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::PassthroughFs;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter, Writer};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

use crate::virtio::VIRTIO_F_VERSION_1;

/// The high-priority queue and one request queue (virtio-fs 5.11.2).
pub const NUM_QUEUES: usize = 2;
/// The largest queue the driver may set up (the in-VMM server's size).
pub const MAX_QUEUE_SIZE: usize = 512;

pub struct FsBackend {
    server: Server<Arc<PassthroughFs>>,
    mem: RwLock<GuestMemoryAtomic<GuestMemoryMmap>>,
}

impl FsBackend {
    pub fn new(fs: PassthroughFs) -> FsBackend {
        FsBackend {
            server: Server::new(Arc::new(fs)),
            mem: RwLock::new(GuestMemoryAtomic::new(GuestMemoryMmap::new())),
        }
    }

    /// Serves every request the driver has made available on `vring`.
    fn serve(&self, vring: &VringRwLock) -> io::Result<()> {
        let atomic = self.mem.read().unwrap().clone();
        let guard = atomic.memory();
        let mem: &GuestMemoryMmap = &guard;
        let mut used = false;
        loop {
            let Some(chain) = vring.get_mut().get_queue_mut().pop_descriptor_chain(mem) else {
                break;
            };
            let head = chain.head_index();
            let reader = Reader::from_descriptor_chain(mem, chain.clone());
            let writer = VirtioFsWriter::new(mem, chain).map(Writer::VirtioFs);
            // A chain the file server cannot parse is returned empty: the
            // guest's request fails rather than the server.
            let len = match (reader, writer) {
                (Ok(r), Ok(w)) => self.server.handle_message(r, w, None, None).unwrap_or(0),
                _ => 0,
            };
            vring
                .add_used(head, len as u32)
                .map_err(|e| io::Error::other(format!("used ring: {e:?}")))?;
            used = true;
        }
        if used {
            vring.signal_used_queue()?;
        }
        Ok(())
    }
}

impl VhostUserBackend for FsBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        // PROTOCOL_FEATURES: the rings start disabled and the VMM enables
        // each with SET_VRING_ENABLE once it is fully set up.
        VIRTIO_F_VERSION_1 | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        // None of the optional messages: the tag and the config space are
        // the VMM's, there is no DAX window and no second channel.
        VhostUserProtocolFeatures::empty()
    }

    fn set_event_idx(&self, _enabled: bool) {
        // VIRTIO_RING_F_EVENT_IDX is not offered (see features): every
        // used buffer interrupts, as the in-VMM server did.
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.mem.write().unwrap() = mem;
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        let vring = vrings
            .get(device_event as usize)
            .ok_or_else(|| io::Error::other(format!("no queue {device_event}")))?;
        self.serve(vring)
    }
}
