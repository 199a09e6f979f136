//! virtio-fs served inside the VMM with fuse-backend-rs's passthrough
//! file system, as Kata's Dragonball VMM does. The VMM is the container's
//! init: it runs in the container's mount namespace, pivoted into the
//! bundle's rootfs, so the directory it shares is that rootfs and nothing
//! else exists for it (`..` of the root is the root; the file system
//! resolves every name itself, one component at a time with O_NOFOLLOW,
//! so a symlink the guest plants is never followed on the host).

use std::os::fd::AsRawFd;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use fuse_backend_rs::transport::{Reader, VirtioFsWriter, Writer};
use seccompiler::BpfProgram;
use virtio_queue::QueueT;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::{Activation, DeviceThread, VIRTIO_F_VERSION_1, VirtioDevice, read_config_bytes};

const QUEUE_SIZE: u16 = 512;

pub struct Fs {
    tag: String,
    root: String,
    thread: DeviceThread,
}

impl Fs {
    /// Shares the directory `root` (as the VMM sees it) under `tag`; the
    /// server's thread starts here, under `filter`.
    pub fn new(tag: &str, root: &str, filter: Option<BpfProgram>) -> Result<Fs> {
        if tag.is_empty() || tag.len() > 36 {
            anyhow::bail!("virtio-fs tag {tag:?} must be 1 to 36 bytes");
        }
        let cfg = Config {
            root_dir: root.to_string(),
            // The guest is the only writer of its rootfs while it runs.
            cache_policy: CachePolicy::Auto,
            xattr: true,
            do_import: true,
            ..Default::default()
        };
        let fs = PassthroughFs::<()>::new(cfg).map_err(|e| anyhow!("virtio-fs {root}: {e}"))?;
        fs.import().map_err(|e| anyhow!("virtio-fs {root}: {e}"))?;
        let server = Arc::new(Server::new(Arc::new(fs)));
        let thread =
            DeviceThread::spawn("virtio-fs", filter, crate::seccomp::Caps::Keep, move |a| {
                if let Err(e) = serve(server, a) {
                    eprintln!("atoll-vmm: virtio-fs: {e:#}");
                }
            })?;
        Ok(Fs {
            tag: tag.to_string(),
            root: root.to_string(),
            thread,
        })
    }

    pub fn root(&self) -> &str {
        &self.root
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
        vec![QUEUE_SIZE; 2]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut cfg = [0u8; 40];
        cfg[..self.tag.len()].copy_from_slice(self.tag.as_bytes());
        cfg[36..40].copy_from_slice(&1u32.to_le_bytes());
        read_config_bytes(&cfg, offset, data)
    }
    fn activate(&mut self, a: Activation) -> Result<()> {
        self.thread.activate(a)
    }
}

fn serve(server: Arc<Server<Arc<PassthroughFs>>>, mut a: Activation) -> Result<()> {
    let epoll = Epoll::new()?;
    for (i, k) in a.kicks.iter().enumerate() {
        epoll.ctl(
            ControlOperation::Add,
            k.as_raw_fd(),
            EpollEvent::new(EventSet::IN, i as u64),
        )?;
    }
    let mem = a.mem.clone();
    let trace = std::env::var("ATOLL_VMM_TRACE").is_ok_and(|v| v.contains("fs"));
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
            let mut used = false;
            while let Some(chain) = a.queues[q].pop_descriptor_chain(&mem) {
                let head = chain.head_index();
                if trace {
                    use std::io::Read;
                    let mut h = [0u8; 40];
                    if let Ok(mut r) = Reader::from_descriptor_chain(&mem, chain.clone()) {
                        let _ = r.read_exact(&mut h);
                    }
                    eprintln!(
                        "virtio-fs: queue {q} opcode {} node {} ...",
                        u32::from_le_bytes(h[4..8].try_into().unwrap()),
                        u64::from_le_bytes(h[16..24].try_into().unwrap())
                    );
                }
                let reader = Reader::from_descriptor_chain(&mem, chain.clone());
                let writer = VirtioFsWriter::new(&mem, chain).map(Writer::VirtioFs);
                let len = match (reader, writer) {
                    (Ok(r), Ok(w)) => {
                        let r = server.handle_message(r, w, None, None);
                        if trace {
                            eprintln!("virtio-fs: queue {q} head {head}: {r:?}");
                        }
                        r.unwrap_or(0)
                    }
                    _ => 0,
                };
                let _ = a.queues[q].add_used(&mem, head, len as u32);
                used = true;
            }
            if used {
                a.irq.used();
            }
        }
    }
}
