//! The vm level's container init: atoll's VMM. libcontainer has put this
//! process in the container's namespaces and cgroup and pivoted it into
//! the bundle's rootfs, which is therefore what it shares with the guest
//! (virtio-fs, tag `rootfs`). It boots the guest, has the agent start the
//! spec's process there, relays its stdio and the signals this process
//! receives, and exits with the guest process's status.
//!
//! Every thread of the process runs under its role's seccomp allowlist
//! (atoll_vmm::seccomp) from before the guest runs; this one's covers the
//! agent session and the exit, so errors after that point end the process
//! here (a one-line report on stderr, status 255) rather than in
//! libcontainer's error path.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use atoll_agent::client;
use atoll_agent::proto::Request;
use atoll_runtime::vm_level::{self, VmLaunch};
use atoll_vmm::{AGENT_PORT, Stop, Vm, VmConfig};

/// How long a guest may take to boot to its agent (software-emulated
/// nested guests take ~10 s; hardware ones well under a second).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn check_kernel(f: &mut File) -> Result<(), String> {
    atoll_vmm::boot::check_kernel(f)
}

pub fn enter(l: &VmLaunch) -> Result<(), String> {
    // SAFETY: create placed these descriptors for this process.
    let mut log = unsafe { File::from_raw_fd(l.log_fd) };
    match run(l, &log) {
        Ok(status) => atoll_runtime::control::exit_like(Some(status)),
        Err(e) => {
            let _ = writeln!(log, "vmm: {e}");
            // The container's stderr: where `atoll run` shows it.
            eprintln!("atoll: error: container {}: {e}", l.id);
            // As a failed container init exits.
            atoll_runtime::control::exit_like(None)
        }
    }
}

fn run(l: &VmLaunch, log: &File) -> Result<i32, String> {
    let signals = client::forwarded_signals().map_err(|e| e.to_string())?;
    // SAFETY: create placed these descriptors for this process.
    let (kvm, kernel, initrd, vsock) = unsafe {
        (
            File::from_raw_fd(l.kvm_fd),
            File::from_raw_fd(l.kernel_fd),
            File::from_raw_fd(l.initrd_fd),
            UnixListener::from_raw_fd(l.vsock_fd),
        )
    };
    let mut cmdline = String::from("quiet");
    if l.console {
        cmdline.push_str(" atoll.debug");
    }
    let console: Option<Box<dyn Write + Send>> = if l.console {
        log.try_clone()
            .ok()
            .map(|f| Box::new(f) as Box<dyn Write + Send>)
    } else {
        None
    };
    let process = l.spec.process().clone().ok_or("the spec has no process")?;
    let terminal = process.terminal().unwrap_or(false);
    let filters =
        atoll_vmm::seccomp::Filters::compile(true).map_err(|e| format!("seccomp: {e:#}"))?;
    // The pod's interface: the tap create made in its network namespace.
    let net = l
        .net
        .as_ref()
        .map(|(fd, n)| atoll_vmm::virtio::net::NetConfig {
            // SAFETY: create placed the tap's descriptor for this process.
            tap: unsafe { File::from_raw_fd(*fd) },
            mac: n.mac,
            mtu: n.mtu.min(u32::from(u16::MAX)) as u16,
        });
    release_runtime_pages();
    let vm = Vm::start(VmConfig {
        kvm,
        kernel,
        initrd,
        cmdline,
        mem_mib: l.mem_mib,
        vcpus: l.vcpus,
        console,
        vsock_listener: Some(vsock),
        share: Some((vm_level::ROOTFS_TAG.to_string(), "/".to_string())),
        net,
        seccomp: Some(filters),
    })
    .map_err(|e| format!("starting the VM: {e:#}"))?;
    let started = Instant::now();
    let stream = loop {
        match vm.connect(AGENT_PORT) {
            Ok(s) => break s,
            Err(e) => {
                vm.trace(&format!("agent not answering ({e:#})"));
                if let Some(stop) = vm.try_stopped() {
                    let why = match stop {
                        Stop::Failed(e) => e,
                        Stop::Shutdown => "the guest stopped".into(),
                    };
                    return Err(format!(
                        "the guest did not boot: {why} (console: {})",
                        vm.console_tail.last_lines(3)
                    ));
                }
                if started.elapsed() > BOOT_TIMEOUT {
                    return Err(format!(
                        "the guest's agent did not answer within {}s (console: {})",
                        BOOT_TIMEOUT.as_secs(),
                        vm.console_tail.last_lines(3)
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    vm.trace("agent connected");
    if terminal {
        raw_terminal(0);
    }
    let req = Request::Run {
        container: Box::new(atoll_agent::proto::Container {
            network: l.net.as_ref().map(|(_, n)| n.clone()),
            ..vm_level::agent_container(&l.id, &l.spec)
        }),
        process: Box::new(atoll_agent::proto::Process {
            seccomp: Some(l.seccomp.clone()),
            ..vm_level::agent_process(&process)
        }),
        init: true,
    };
    let io = client::Stdio {
        stdin: Some(0),
        stdout: 1,
        stderr: 2,
        signals: Some(signals),
        terminal: terminal.then_some(0),
    };
    // Once the guest's process runs, the VMM's own start (the VM's
    // construction, the boot loader, the agent handshake) is done too:
    // its pages go the way of the runtime's.
    client::run(stream, &req, io, |_| {
        vm.trace("guest process started");
        release_runtime_pages()
    })
    .map_err(|e| format!("{e:#}"))
}

/// This process ran as atoll's container runtime (argument parsing,
/// libcontainer's init: namespaces, mounts, capabilities) before it
/// became the VMM, and kept that code's pages of the binary mapped: about
/// 4 MiB of the VMM's resident memory, for code it never runs again
/// (measured in the test VM: the binary's resident pages went from 4.9
/// MiB to 3.4 MiB with the first call alone). They are clean pages of the
/// executable file (its read-only data and text, from the ELF's start to
/// the end of .text; its relocated and writable data come after and are
/// left alone), so dropping them from this process's page tables loses
/// nothing: the page cache keeps the file, and the VMM faults back in,
/// with the kernel's fault-around, the pages it runs. Called before the
/// VM is built and again once the guest's process has started.
fn release_runtime_pages() {
    unsafe extern "C" {
        // Defined by the linker (GNU ld and lld): the ELF header, at the
        // start of the first segment, and the end of the text.
        static __ehdr_start: u8;
        static etext: u8;
    }
    let (start, end) = (
        std::ptr::addr_of!(__ehdr_start) as usize,
        std::ptr::addr_of!(etext) as usize,
    );
    let page = 4096;
    let start = start & !(page - 1);
    let end = end & !(page - 1); // the page holding etext may hold more
    if end > start {
        // SAFETY: the range is this binary's read-only file-backed
        // segments (see above); MADV_DONTNEED on them only unmaps.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// The guest's terminal does the line discipline: the host side passes
/// bytes through.
fn raw_terminal(fd: i32) {
    // SAFETY: tcgetattr/tcsetattr on our own stdin.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
    }
}
