//! atoll's virtual machine monitor for the `vm` level: one KVM guest per
//! pod, booting Debian's `vmlinux` straight into 64-bit mode with atoll's
//! guest agent as `/init`. Devices are virtio-mmio windows described to
//! the guest in ACPI (vsock for the agent, virtio-fs for the rootfs,
//! virtio-net on a tap for the pod's network) and a
//! 16550 serial console that is quiet unless asked for.
//!
//! Threads: one per vCPU (exits for the serial port and the virtio
//! register windows), one per virtio device (queues, woken by ioeventfds),
//! and the caller's (the agent session). Each confines itself with its
//! role's seccomp filter ([`seccomp`]) before the guest runs: the vCPUs
//! wait for the others. The virtio-fs queues are served by another
//! process, the file server ([`fs_server`]), forked first, before any of
//! these threads exists, and confined before the guest runs too; once it
//! is forked the VMM keeps no capability.

pub mod acpi;
pub mod boot;
pub mod cpu;
pub mod fs_server;
pub mod layout;
pub mod memory;
pub mod seccomp;
pub mod serial;
pub mod virtio;

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vmm_sys_util::eventfd::EventFd;

use crate::layout::*;
use crate::virtio::mmio::MmioTransport;

/// The vsock port the guest agent listens on.
pub const AGENT_PORT: u32 = 1024;
/// The guest's vsock CID (each VM has its own device, so every guest can
/// use the same).
pub const GUEST_CID: u64 = 3;

/// Kernel command line: serial console, reboot by triple fault (the VMM
/// sees KVM_EXIT_SHUTDOWN), no PCI and no PS/2 probing; then Kata's
/// boot-time options: the TSC trusted as stable (no clocksource watchdog;
/// the guest's clock is kvm-clock), no check that the timer interrupt
/// arrives, expedited RCU grace periods, no self-tests of the crypto
/// algorithms as they register, and one 16550 probed rather than four.
/// Measured in the test VM: the guest's boot to its agent took 30% less
/// (8.7 and 7.9 s against 12.1 and 11.8 s under nested emulation).
pub const BASE_CMDLINE: &str = "console=ttyS0 reboot=t panic=-1 pci=off \
     i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd nomodeset \
     tsc=reliable no_timer_check rcupdate.rcu_expedited=1 cryptomgr.notests 8250.nr_uarts=1";

/// What the VM is made of.
pub struct VmConfig {
    /// An open /dev/kvm.
    pub kvm: File,
    /// The uncompressed kernel (`vmlinux` ELF) and the initramfs.
    pub kernel: File,
    pub initrd: File,
    /// Appended to [`BASE_CMDLINE`].
    pub cmdline: String,
    pub mem_mib: u64,
    pub vcpus: u8,
    /// Where the guest console goes (None: only kept for error reports).
    pub console: Option<Box<dyn Write + Send>>,
    /// Host-side socket for vsock connections from other processes
    /// (`atoll exec`).
    pub vsock_listener: Option<UnixListener>,
    /// A directory shared with the guest over virtio-fs: (tag, path).
    pub share: Option<(String, String)>,
    /// The guest's network interface (a tap the runtime made in the
    /// pod's network namespace); None: the guest has only loopback.
    pub net: Option<virtio::net::NetConfig>,
    /// The threads' seccomp filters (None: unconfined, for tests of the
    /// device model only).
    pub seccomp: Option<seccomp::Filters>,
}

/// Why the guest stopped.
#[derive(Debug)]
pub enum Stop {
    /// The guest rebooted or triple-faulted (its agent's normal way out).
    Shutdown,
    /// KVM could not run the guest.
    Failed(String),
}

/// Counters of the VM's life.
#[derive(Default)]
pub struct Stats {
    /// Exits to the VMM (I/O and MMIO accesses, shutdown).
    pub exits: AtomicU64,
    pub io_exits: AtomicU64,
    pub mmio_exits: AtomicU64,
}

/// The exits that reach userspace, by device.
struct Bus {
    serial: Mutex<serial::Console>,
    mmio: Vec<(u64, Mutex<MmioTransport>)>,
}

impl Bus {
    fn io_in(&self, port: u16, data: &mut [u8]) {
        match port {
            p if (SERIAL_PORT..SERIAL_PORT + 8).contains(&p) && data.len() == 1 => {
                data[0] = self.serial.lock().unwrap().read((p - SERIAL_PORT) as u8);
            }
            // No CMOS clock: reads of 0 make rtc_cmos give up at once
            // (0xff would have it poll the update-in-progress bit).
            0x70 | 0x71 => data.fill(0),
            _ => data.fill(0xff),
        }
    }

    fn io_out(&self, port: u16, data: &[u8]) {
        if (SERIAL_PORT..SERIAL_PORT + 8).contains(&port) && data.len() == 1 {
            let _ = self
                .serial
                .lock()
                .unwrap()
                .write((port - SERIAL_PORT) as u8, data[0]);
        }
    }

    fn mmio(&self, addr: u64) -> Option<(u64, &Mutex<MmioTransport>)> {
        self.mmio
            .iter()
            .find(|(base, _)| (*base..*base + VIRTIO_MMIO_SIZE).contains(&addr))
            .map(|(base, t)| (addr - base, t))
    }
}

/// A running VM.
pub struct Vm {
    pub stats: Arc<Stats>,
    pub console_tail: serial::Tail,
    pub started: Instant,
    trace: bool,
    stopped: mpsc::Receiver<Stop>,
    connector: Option<(virtio::vsock::Connector, EventFd)>,
    // Kept for the VM's lifetime.
    _vm: Arc<VmFd>,
    _mem: memory::Mem,
}

impl Vm {
    /// Builds the VM and starts its vCPUs.
    pub fn start(cfg: VmConfig) -> Result<Vm> {
        let started = Instant::now();
        let tr = std::env::var("ATOLL_VMM_TRACE").is_ok_and(|v| v.contains("boot"));
        if tr {
            // (The host's uptime, to place the VMM's start among other
            // timings.)
            let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
            eprintln!(
                "vmm: starting at host uptime {}",
                up.split(' ').next().unwrap_or("?")
            );
        }
        let mark = |what: &str| {
            if tr {
                eprintln!("vmm: {what} at {:.3}s", started.elapsed().as_secs_f64());
            }
        };
        let filters = cfg.seccomp;
        // The file server first, while this process has one thread (it is
        // forked, and a fork copies only the calling thread). It gets the
        // capabilities; the VMM's threads (this one, and every thread it
        // starts) have no use for them from here on.
        let fs_server = match &cfg.share {
            Some((_, root)) => Some(
                fs_server::spawn(root, filters.as_ref().map(|f| f.fs_server.clone()))
                    .context("starting the file server")?,
            ),
            None => None,
        };
        if filters.is_some() {
            seccomp::drop_thread_caps().context("the VMM thread")?;
        }
        mark("file server forked");
        // Guest RAM first, and the kernel and initramfs copied into it on
        // other threads while this one builds the VM and its devices
        // (under the test VM's emulation the copy is the slowest step).
        let mem = memory::create(cfg.mem_mib)?;
        let mut cmdline = format!("{BASE_CMDLINE} {}", cfg.cmdline);
        if tr {
            cmdline.push_str(" atoll.boottrace");
        }
        let loader = {
            let (mem, kernel, initrd) = (mem.clone(), cfg.kernel, cfg.initrd);
            std::thread::Builder::new()
                .name("loader".into())
                .spawn(move || boot::load(&mem, &kernel, &initrd, cmdline.trim()))
                .context("the loader thread")?
        };
        mark("memory mapped");
        // SAFETY: the caller hands over an open /dev/kvm.
        let kvm = unsafe { Kvm::from_raw_fd(cfg.kvm.into_raw_fd()) };
        if kvm.get_api_version() != 12 {
            bail!(
                "/dev/kvm speaks KVM API version {}, not 12",
                kvm.get_api_version()
            );
        }
        let vm = kvm.create_vm().map_err(|e| anyhow!("KVM_CREATE_VM: {e}"))?;
        vm.set_tss_address(KVM_TSS_ADDRESS)
            .map_err(|e| anyhow!("KVM_SET_TSS_ADDR: {e}"))?;
        vm.create_irq_chip()
            .map_err(|e| anyhow!("KVM_CREATE_IRQCHIP: {e}"))?;
        vm.create_pit2(kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        })
        .map_err(|e| anyhow!("KVM_CREATE_PIT2: {e}"))?;
        memory::register(&vm, &mem)?;
        mark("vm created");

        // Devices.
        let serial_irq = EventFd::new(libc::EFD_NONBLOCK)?;
        vm.register_irqfd(&serial_irq, SERIAL_IRQ)
            .map_err(|e| anyhow!("KVM_IRQFD: {e}"))?;
        let tail = serial::Tail::default();
        // Tracing the boot: the guest agent's trace of its own steps
        // (`atoll.boottrace`) comes out on the console, shown on stderr.
        let echo = match cfg.console {
            _ if tr => Some(Box::new(std::io::stderr()) as Box<dyn Write + Send>),
            c => c,
        };
        let console = serial::new(
            serial_irq,
            serial::ConsoleOut {
                echo,
                tail: tail.clone(),
            },
        );
        let mut devices: Vec<Box<dyn virtio::VirtioDevice>> = Vec::new();
        let (vsock, connector, wake) = virtio::vsock::Vsock::new(
            GUEST_CID,
            cfg.vsock_listener,
            filters.as_ref().map(|f| f.vsock.clone()),
        )?;
        devices.push(Box::new(vsock));
        if let (Some((tag, _)), Some(server)) = (&cfg.share, fs_server) {
            devices.push(Box::new(virtio::fs::Fs::new(
                tag,
                server,
                &mem,
                filters.as_ref().map(|f| f.fs.clone()),
            )?));
            mark("file server ready");
        }
        if let Some(net) = cfg.net {
            devices.push(Box::new(virtio::net::Net::new(
                net,
                filters.as_ref().map(|f| f.net.clone()),
            )?));
        }
        let mut mmio = Vec::new();
        let mut described = Vec::new();
        for (i, d) in devices.into_iter().enumerate() {
            let base = VIRTIO_MMIO_BASE + i as u64 * VIRTIO_MMIO_SIZE;
            let irq = VIRTIO_IRQ_BASE + i as u32;
            mmio.push((
                base,
                Mutex::new(MmioTransport::new(&vm, mem.clone(), d, base, irq)?),
            ));
            described.push(acpi::MmioDevice {
                base,
                size: VIRTIO_MMIO_SIZE,
                irq,
            });
        }
        let bus = Arc::new(Bus {
            serial: Mutex::new(console),
            mmio,
        });

        mark("devices made");
        // Boot.
        let loaded = loader
            .join()
            .map_err(|_| anyhow!("the loader thread panicked"))??;
        mark("kernel and initramfs loaded");
        acpi::write(&mem, cfg.vcpus, &described)?;
        cpu::write_boot_tables(&mem)?;

        let vm = Arc::new(vm);
        let stats = Arc::new(Stats::default());
        let (tx, stopped) = mpsc::channel();
        let mut vcpus = Vec::new();
        for id in 0..cfg.vcpus {
            let vcpu = vm
                .create_vcpu(u64::from(id))
                .map_err(|e| anyhow!("KVM_CREATE_VCPU: {e}"))?;
            cpu::setup(&kvm, &vcpu, id, cfg.vcpus, loaded.entry)?;
            vcpus.push(vcpu);
        }
        // Each vCPU thread confines itself, then waits until this thread
        // has too: the guest runs only once every thread is confined.
        let mut go = Vec::new();
        for (id, vcpu) in vcpus.into_iter().enumerate() {
            let bus = bus.clone();
            let stats = stats.clone();
            let tx = tx.clone();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            go.push(go_tx);
            seccomp::spawn(
                format!("vcpu{id}"),
                filters.as_ref().map(|f| f.vcpu.clone()),
                seccomp::Caps::Drop,
                move || {
                    if go_rx.recv().is_err() {
                        return; // the VM was given up before it ran
                    }
                    let stop = run_vcpu(vcpu, &bus, &stats);
                    let _ = tx.send(stop);
                },
            )
            .context("vCPU thread")?;
        }
        if let Some(f) = filters.as_ref().and_then(|f| f.vmm.as_ref()) {
            seccomp::apply(f).context("the VMM thread")?;
        }
        for g in go {
            let _ = g.send(());
        }
        mark("vCPUs started");
        Ok(Vm {
            stats,
            console_tail: tail,
            started,
            trace: tr,
            stopped,
            connector: Some((connector, wake)),
            _vm: vm,
            _mem: mem,
        })
    }

    /// Opens a stream to a guest vsock port (the handshake of the hybrid
    /// vsock protocol is done here).
    pub fn connect(&self, port: u32) -> Result<UnixStream> {
        let (conn, wake) = self
            .connector
            .as_ref()
            .ok_or_else(|| anyhow!("the VM has no vsock device"))?;
        let (ours, theirs) = UnixStream::pair()?;
        conn.send(theirs)
            .map_err(|_| anyhow!("the vsock device has stopped"))?;
        wake.write(1)?;
        // The first requests may be lost while the guest's vsock driver
        // comes up: a short timeout, and the caller tries again.
        atoll_agent::client::handshake(ours, port, Some(std::time::Duration::from_secs(1)))
    }

    /// With ATOLL_VMM_TRACE=boot: `what` and the time since the VMM
    /// started, on stderr.
    pub fn trace(&self, what: &str) {
        if self.trace {
            eprintln!(
                "vmm: {what} at {:.3}s",
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// Waits until the guest stops.
    pub fn wait(&self) -> Stop {
        self.stopped
            .recv()
            .unwrap_or_else(|_| Stop::Failed("vCPU threads are gone".into()))
    }

    /// Whether the guest has stopped (without waiting).
    pub fn try_stopped(&self) -> Option<Stop> {
        self.stopped.try_recv().ok()
    }
}

fn run_vcpu(mut vcpu: VcpuFd, bus: &Bus, stats: &Stats) -> Stop {
    loop {
        let exit = vcpu.run();
        stats.exits.fetch_add(1, Ordering::Relaxed);
        match exit {
            Ok(VcpuExit::IoIn(port, data)) => {
                stats.io_exits.fetch_add(1, Ordering::Relaxed);
                bus.io_in(port, data)
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                stats.io_exits.fetch_add(1, Ordering::Relaxed);
                bus.io_out(port, data)
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                stats.mmio_exits.fetch_add(1, Ordering::Relaxed);
                match bus.mmio(addr) {
                    Some((off, t)) => t.lock().unwrap().read(off, data),
                    None => data.fill(0xff),
                }
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                stats.mmio_exits.fetch_add(1, Ordering::Relaxed);
                if let Some((off, t)) = bus.mmio(addr) {
                    t.lock().unwrap().write(off, data);
                }
            }
            Ok(VcpuExit::Shutdown) | Ok(VcpuExit::Hlt) => return Stop::Shutdown,
            Ok(VcpuExit::SystemEvent(..)) => return Stop::Shutdown,
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                return Stop::Failed(format!(
                    "KVM could not enter the guest (hardware reason {reason:#x} on cpu {cpu})"
                ));
            }
            Ok(VcpuExit::InternalError) => {
                return Stop::Failed("KVM internal error while running the guest".into());
            }
            Ok(other) => {
                return Stop::Failed(format!("unexpected VM exit {other:?}"));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => return Stop::Failed(format!("KVM_RUN: {e}")),
        }
    }
}
