//! `atoll-vmm`: boots a guest outside any container, for the asset
//! builder's check and the benchmarks.
//!
//! atoll-vmm --kernel VMLINUX --initrd INITRD [--mem MIB] [--vcpus N]
//!           [--console] [--cmdline ARGS] [--share DIR] [-- CMD ARG...]
//! atoll-vmm --base-cmdline   (prints the guest's base kernel command line)
//!
//! Without a command the guest agent is asked to report and power off
//! (`atoll.selftest`); with one, the command runs in DIR (shared over
//! virtio-fs) as a container's init, with this process's stdio. Prints
//! boot time, exits and the VMM's memory to stderr with --stats.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atoll_agent::proto::{Container, Process, Request};
use atoll_vmm::{AGENT_PORT, Stop, Vm, VmConfig};

struct Args {
    kernel: String,
    initrd: String,
    mem: u64,
    vcpus: u8,
    console: bool,
    cmdline: String,
    share: Option<String>,
    stats: bool,
    cmd: Vec<String>,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        kernel: String::new(),
        initrd: String::new(),
        mem: 256,
        vcpus: 1,
        console: false,
        cmdline: String::new(),
        share: None,
        stats: false,
        cmd: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().context(format!("{x} needs a value"));
        match x.as_str() {
            "--kernel" => a.kernel = val()?,
            "--initrd" => a.initrd = val()?,
            "--mem" => a.mem = val()?.parse()?,
            "--vcpus" => a.vcpus = val()?.parse()?,
            "--cmdline" => a.cmdline = val()?,
            "--share" => a.share = Some(val()?),
            "--console" => a.console = true,
            "--stats" => a.stats = true,
            "--base-cmdline" => {
                // What every guest's kernel command line starts with (the
                // benchmark gives QEMU's guest the same).
                println!("{}", atoll_vmm::BASE_CMDLINE);
                std::process::exit(0);
            }
            "--" => {
                a.cmd = it.collect();
                break;
            }
            _ => bail!("unknown argument {x}"),
        }
    }
    if a.kernel.is_empty() || a.initrd.is_empty() {
        bail!(
            "usage: atoll-vmm --kernel VMLINUX --initrd INITRD [--mem MIB] [--console] [--share DIR] [-- CMD...]"
        );
    }
    Ok(a)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("atoll-vmm: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<i32> {
    let a = parse()?;
    let t0 = Instant::now();
    let signals = atoll_agent::client::forwarded_signals()?;
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .context("/dev/kvm")?;
    let mut cmdline = a.cmdline.clone();
    if a.cmd.is_empty() {
        cmdline.push_str(" atoll.selftest");
    }
    if !a.console {
        cmdline.push_str(" quiet");
    }
    let filters = atoll_vmm::seccomp::Filters::compile(false)?;
    if std::env::var("ATOLL_VMM_TRACE").is_ok_and(|v| v.contains("boot")) {
        eprintln!(
            "vmm: filters compiled at {:.3}s",
            t0.elapsed().as_secs_f64()
        );
    }
    let vm = Vm::start(VmConfig {
        kvm,
        kernel: File::open(&a.kernel).with_context(|| a.kernel.clone())?,
        initrd: File::open(&a.initrd).with_context(|| a.initrd.clone())?,
        cmdline,
        mem_mib: a.mem,
        vcpus: a.vcpus,
        console: a
            .console
            .then(|| Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>),
        vsock_listener: None,
        share: a.share.as_ref().map(|d| ("atoll".to_string(), d.clone())),
        net: None,
        // The vCPU and device threads confined as in a container; this
        // thread is not (it reads its own /proc files for --stats).
        seccomp: Some(filters),
    })?;
    let loaded = t0.elapsed();
    let code = if a.cmd.is_empty() {
        match vm.wait() {
            Stop::Shutdown => 0,
            Stop::Failed(e) => bail!("{e}: {}", vm.console_tail.last_lines(5)),
        }
    } else {
        // Retry until the agent listens.
        let s = loop {
            match vm.connect(AGENT_PORT) {
                Ok(s) => break s,
                Err(_) => {
                    match vm.try_stopped() {
                        Some(Stop::Failed(e)) => bail!("{e}: {}", vm.console_tail.last_lines(5)),
                        Some(Stop::Shutdown) => {
                            bail!("the guest stopped: {}", vm.console_tail.last_lines(5))
                        }
                        None => {}
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        };
        let first = t0.elapsed();
        let req = Request::Run {
            container: Box::new(Container {
                id: "c".into(),
                rootfs_tag: "atoll".into(),
                rootfs_path: "/".into(),
                ..Default::default()
            }),
            process: Box::new(Process {
                args: a.cmd.clone(),
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                cwd: "/".into(),
                ..Default::default()
            }),
            init: true,
        };
        let st = atoll_agent::client::run(
            s,
            &req,
            atoll_agent::client::Stdio {
                stdin: Some(0),
                stdout: 1,
                stderr: 2,
                signals: Some(signals.as_raw_fd()),
                terminal: None,
            },
            |_| {},
        )?;
        if a.stats {
            eprintln!("agent reachable after {:.3}s", first.as_secs_f64());
        }
        if st & 0x7f != 0 {
            128 + (st & 0x7f)
        } else {
            (st >> 8) & 0xff
        }
    };
    if a.stats {
        use std::sync::atomic::Ordering::Relaxed;
        eprintln!(
            "loaded in {:.3}s, total {:.3}s, exits {} (io {}, mmio {}), VMM RSS {} KiB",
            loaded.as_secs_f64(),
            t0.elapsed().as_secs_f64(),
            vm.stats.exits.load(Relaxed),
            vm.stats.io_exits.load(Relaxed),
            vm.stats.mmio_exits.load(Relaxed),
            rss_kib()
        );
    }
    Ok(code)
}
