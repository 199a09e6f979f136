//! The file server process end to end, without KVM: this test is the
//! guest's driver. It forks the server under its real seccomp filter (a
//! violation kills it), hands it guest RAM and two queues through the
//! VMM's virtio-fs device (the vhost-user frontend, under its thread's
//! real filter), and makes FUSE requests by writing descriptors into the
//! rings and kicking. Then it kills the server and sees the VMM answer
//! with EIO.
//!
//! `harness = false`: the server is forked, which the VMM does only while
//! it has one thread, and libtest runs tests on threads of its own.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use atoll_vmm::fs_server;
use atoll_vmm::memory::{self, Mem};
use atoll_vmm::seccomp::Filters;
use atoll_vmm::virtio::{Activation, Irq, VIRTIO_F_VERSION_1, VirtioDevice, fs::Fs};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

const QSIZE: u16 = 16;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;

/// One split virtqueue as a driver sees it.
struct Ring {
    desc: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    seen_used: u16,
    buf: u64,
}

impl Ring {
    fn new(base: u64) -> Ring {
        Ring {
            desc: base,
            avail: base + 16 * QSIZE as u64,
            used: base + 0x1000,
            next_desc: 0,
            avail_idx: 0,
            seen_used: 0,
            buf: base + 0x10_0000,
        }
    }

    fn queue(&self) -> Queue {
        let mut q = Queue::new(QSIZE).unwrap();
        q.set_size(QSIZE);
        q.set_desc_table_address(Some(self.desc as u32), Some((self.desc >> 32) as u32));
        q.set_avail_ring_address(Some(self.avail as u32), Some((self.avail >> 32) as u32));
        q.set_used_ring_address(Some(self.used as u32), Some((self.used >> 32) as u32));
        q.set_ready(true);
        q
    }

    fn write_desc(&self, mem: &Mem, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.desc + 16 * i as u64;
        mem.write_obj(addr, GuestAddress(d)).unwrap();
        mem.write_obj(len, GuestAddress(d + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
        mem.write_obj(next, GuestAddress(d + 14)).unwrap();
    }

    /// Makes `request` available with a 4 KiB reply buffer; returns the
    /// reply buffer's address.
    fn push(&mut self, mem: &Mem, request: &[u8]) -> u64 {
        let (h, r) = (self.next_desc % QSIZE, (self.next_desc + 1) % QSIZE);
        self.next_desc += 2;
        let out = self.buf + 0x2000 * h as u64;
        let reply = out + 0x1000;
        mem.write_slice(request, GuestAddress(out)).unwrap();
        mem.write_slice(&[0u8; 64], GuestAddress(reply)).unwrap();
        self.write_desc(mem, h, out, request.len() as u32, DESC_F_NEXT, r);
        self.write_desc(mem, r, reply, 0x1000, DESC_F_WRITE, 0);
        mem.write_obj(
            h,
            GuestAddress(self.avail + 4 + 2 * (self.avail_idx % QSIZE) as u64),
        )
        .unwrap();
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(self.avail + 2))
            .unwrap();
        reply
    }

    /// Waits for the next used buffer; returns its length.
    fn wait_used(&mut self, mem: &Mem, what: &str) -> u32 {
        let t = Instant::now();
        loop {
            let idx: u16 = mem.read_obj(GuestAddress(self.used + 2)).unwrap();
            if idx != self.seen_used {
                let e = self.used + 4 + 8 * (self.seen_used % QSIZE) as u64;
                self.seen_used = self.seen_used.wrapping_add(1);
                return mem.read_obj(GuestAddress(e + 4)).unwrap();
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{what}: no reply in 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn request(opcode: u32, unique: u64, nodeid: u64, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(((40 + body.len()) as u32).to_le_bytes());
    r.extend(opcode.to_le_bytes());
    r.extend(unique.to_le_bytes());
    r.extend(nodeid.to_le_bytes());
    r.extend([0u8; 16]); // uid, gid, pid, extension length, padding
    r.extend(body);
    r
}

/// (error, unique) of the reply at `addr`.
fn reply(mem: &Mem, addr: u64) -> (i32, u64) {
    (
        mem.read_obj(GuestAddress(addr + 4)).unwrap(),
        mem.read_obj(GuestAddress(addr + 8)).unwrap(),
    )
}

fn status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the file server switches uids, which needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "hi").unwrap();
    // A descriptor of this process's the server must not inherit.
    let secret = std::fs::File::open("/proc/self/status").unwrap();
    let filters = Filters::compile(false).unwrap();
    let mem = memory::create(memory::MIN_MEM_MIB).unwrap();
    let server = fs_server::spawn(
        dir.path().to_str().unwrap(),
        Some(filters.fs_server.clone()),
    )
    .unwrap();
    let pid = server.pid;
    let mut fs = Fs::new("test", server, &mem, Some(filters.fs.clone())).unwrap();

    // Confined once ready: its filter on every thread, no_new_privs, the
    // kept capabilities at most, none of this process's descriptors.
    let st = status(pid);
    assert_eq!(field(&st, "Seccomp:"), "2", "{st}");
    assert_eq!(field(&st, "NoNewPrivs:"), "1");
    let eff = u64::from_str_radix(&field(&st, "CapEff:"), 16).unwrap();
    assert_eq!(eff & !fs_server::KEPT_CAPS, 0, "CapEff {eff:#x}");
    assert_eq!(field(&st, "CapInh:"), "0000000000000000");
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let st = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
        assert_eq!(
            field(&st, "Seccomp:"),
            "2",
            "a thread without the filter: {st}"
        );
    }
    let secret_link = std::fs::read_link(format!("/proc/self/fd/{}", secret.as_raw_fd())).unwrap();
    for f in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let l = std::fs::read_link(f.unwrap().path()).unwrap();
        assert_ne!(l, secret_link, "the server inherited the test's descriptor");
    }

    // The driver sets the queues up (DRIVER_OK).
    let mut rings = [Ring::new(0x40_0000), Ring::new(0x80_0000)];
    let kicks: Vec<EventFd> = (0..2)
        .map(|_| EventFd::new(libc::EFD_NONBLOCK).unwrap())
        .collect();
    let kick = |q: usize| kicks[q].write(1).unwrap();
    let irq = Irq {
        status: Arc::new(AtomicU32::new(0)),
        evt: Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap()),
    };
    fs.activate(Activation {
        mem: mem.clone(),
        queues: rings.iter().map(Ring::queue).collect(),
        kicks: kicks.iter().map(|k| k.try_clone().unwrap()).collect(),
        irq: irq.clone(),
        features: VIRTIO_F_VERSION_1,
    })
    .unwrap();
    let q = &mut rings[1];

    // FUSE_INIT (26), protocol 7.31.
    let mut init = Vec::new();
    for v in [7u32, 31, 0x20000, 0] {
        init.extend(v.to_le_bytes());
    }
    let r = q.push(&mem, &request(26, 1, 0, &init));
    kick(1);
    let n = q.wait_used(&mem, "init");
    assert!(n >= 16, "init reply of {n} bytes");
    assert_eq!(reply(&mem, r), (0, 1));
    assert!(irq.evt.read().is_ok(), "the server raised the interrupt");

    // FUSE_LOOKUP (1) of a file the test made: the size is the file's.
    let r = q.push(&mem, &request(1, 2, 1, b"hello\0"));
    kick(1);
    q.wait_used(&mem, "lookup");
    assert_eq!(reply(&mem, r), (0, 2));
    let size: u64 = mem.read_obj(GuestAddress(r + 16 + 40 + 8)).unwrap();
    assert_eq!(size, 2);

    // FUSE_MKDIR (9): the write lands in the shared directory.
    let mut mkdir = Vec::new();
    mkdir.extend(0o755u32.to_le_bytes());
    mkdir.extend(0u32.to_le_bytes());
    mkdir.extend(b"made\0");
    let r = q.push(&mem, &request(9, 3, 1, &mkdir));
    kick(1);
    q.wait_used(&mem, "mkdir");
    assert_eq!(reply(&mem, r), (0, 3));
    assert!(dir.path().join("made").is_dir());

    // `..` of the root (a guest's forged lookup: its kernel never sends
    // one) is refused or is the root itself, never the directory above.
    let r = q.push(&mem, &request(1, 4, 1, b"..\0"));
    kick(1);
    q.wait_used(&mem, "lookup ..");
    let (err, _) = reply(&mem, r);
    if err == 0 {
        let ino: u64 = mem.read_obj(GuestAddress(r + 16 + 40)).unwrap();
        let root = std::fs::metadata(dir.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(ino, root.ino(), "lookup of .. in the root left the root");
    }

    // The server killed: the VMM's device answers EIO, and goes on.
    // SAFETY: kill and waitpid of the child this test forked.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut ws = 0;
        libc::waitpid(pid, &mut ws, 0);
        assert!(libc::WIFSIGNALED(ws) && libc::WTERMSIG(ws) == libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(200));
    for unique in [5, 6] {
        let r = q.push(&mem, &request(1, unique, 1, b"hello\0"));
        kick(1);
        q.wait_used(&mem, "lookup after the server died");
        assert_eq!(reply(&mem, r), (-libc::EIO, unique));
    }
    println!(
        "fs_server: ok (server pid {pid}: confined, served init, lookup, mkdir; EIO once killed)"
    );
}
