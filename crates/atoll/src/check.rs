//! `atoll check`: what this host can do, level by level.
//!
//! Probes run for real where it is cheap (a user namespace is created, a
//! child is traced with PTRACE_SYSEMU, /dev/kvm is opened) rather than
//! trusting configuration files.

use std::path::Path;

use anyhow::Result;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use serde::Serialize;

use atoll_runtime::vm_level;

use crate::cli::ListFormat;

#[derive(Serialize)]
struct Item {
    feature: String,
    ok: bool,
    detail: String,
}

#[derive(Serialize)]
struct Report {
    kernel: String,
    items: Vec<Item>,
    levels: Vec<Item>,
}

fn item(feature: &str, ok: bool, detail: impl Into<String>) -> Item {
    Item {
        feature: feature.into(),
        ok,
        detail: detail.into(),
    }
}

/// Runs `f` in a forked child; true if it exits 0.
fn in_child(f: impl FnOnce() -> bool) -> bool {
    // SAFETY: the CLI is single-threaded here; the child only makes
    // syscalls and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let ok = f();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
        Err(_) => false,
    }
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn namespaces() -> Vec<Item> {
    let mut v = Vec::new();
    for (ns, flag) in [
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("ipc", libc::CLONE_NEWIPC),
        ("mnt", libc::CLONE_NEWNS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("user", libc::CLONE_NEWUSER),
        ("uts", libc::CLONE_NEWUTS),
        ("time", 0x80),
    ] {
        let present = Path::new(&format!("/proc/self/ns/{ns}")).exists();
        // SAFETY: unshare in a throwaway child.
        let creatable = present && in_child(|| unsafe { libc::unshare(flag) } == 0);
        v.push(item(
            &format!("namespace {ns}"),
            creatable,
            if creatable {
                "can be created"
            } else if present {
                "present but cannot be created here"
            } else {
                "not supported by the kernel"
            },
        ));
    }
    v
}

fn cgroups() -> Vec<Item> {
    let mut v = Vec::new();
    let mode = match libcgroups::common::get_cgroup_setup() {
        Ok(libcgroups::common::CgroupSetup::Legacy) => "v1",
        Ok(libcgroups::common::CgroupSetup::Hybrid) => "hybrid",
        Ok(libcgroups::common::CgroupSetup::Unified) => "v2",
        Err(_) => "none",
    };
    v.push(item("cgroup mode", mode != "none", mode));
    let mut v1: Vec<String> = Vec::new();
    let mounts = read("/proc/self/mountinfo");
    for line in mounts.lines() {
        if let Some((_, rest)) = line.split_once(" - ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.first() == Some(&"cgroup")
                && let Some(opts) = f.get(2)
            {
                for o in opts.split(',') {
                    if !matches!(o, "rw" | "ro" | "relatime" | "nosuid" | "nodev" | "noexec")
                        && !o.starts_with("name=")
                    {
                        v1.push(o.to_string());
                    }
                }
            }
        }
    }
    v1.sort();
    v1.dedup();
    if !v1.is_empty() {
        v.push(item("cgroup v1 controllers", true, v1.join(",")));
    }
    let unified = [
        "/sys/fs/cgroup/cgroup.controllers",
        "/sys/fs/cgroup/unified/cgroup.controllers",
    ]
    .iter()
    .map(|p| read(p))
    .find(|s| !s.is_empty() || mode == "hybrid");
    if let Some(c) = unified {
        let c = c.trim();
        v.push(item(
            "cgroup v2 controllers",
            true,
            if c.is_empty() { "(none delegated)" } else { c },
        ));
    }
    v
}

fn seccomp() -> Vec<Item> {
    // SAFETY: PR_GET_SECCOMP reads this process's mode.
    let filter = unsafe { libc::prctl(libc::PR_GET_SECCOMP) } >= 0;
    let actions = read("/proc/sys/kernel/seccomp/actions_avail");
    let notify = actions.split_whitespace().any(|a| a == "user_notif");
    vec![
        item("seccomp filter", filter, actions.trim()),
        item(
            "seccomp user notification",
            notify,
            if notify {
                "SECCOMP_RET_USER_NOTIF"
            } else {
                "missing"
            },
        ),
    ]
}

fn ptrace() -> Item {
    // A child that stops itself; the probe then resumes it with SYSEMU.
    let ok = in_child(|| {
        // SAFETY: fork in the probe child; the grandchild only stops and exits.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => unsafe {
                libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                libc::raise(libc::SIGSTOP);
                libc::_exit(0)
            },
            Ok(ForkResult::Parent { child }) => {
                if !matches!(waitpid(child, None), Ok(WaitStatus::Stopped(..))) {
                    return false;
                }
                const PTRACE_SYSEMU: libc::c_uint = 31;
                // SAFETY: the child is stopped under our trace.
                let r = unsafe { libc::ptrace(PTRACE_SYSEMU, child.as_raw(), 0, 0) };
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                r == 0
            }
            Err(_) => false,
        }
    });
    let scope = read("/proc/sys/kernel/yama/ptrace_scope");
    let detail = if ok {
        format!(
            "PTRACE_SYSEMU works{}",
            if scope.is_empty() {
                String::new()
            } else {
                format!(" (yama ptrace_scope {})", scope.trim())
            }
        )
    } else {
        "cannot trace a child with PTRACE_SYSEMU".into()
    };
    item("ptrace", ok, detail)
}

fn kvm() -> Item {
    let path = Path::new("/dev/kvm");
    if !path.exists() {
        return item("kvm", false, "/dev/kvm missing");
    }
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return item("kvm", false, format!("/dev/kvm: {e}")),
    };
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: KVM_GET_API_VERSION takes no argument.
    let api = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&f), KVM_GET_API_VERSION, 0) };
    let cpuinfo = read("/proc/cpuinfo");
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let kind = if Path::new("/sys/module/kvm_pvm").exists() {
        "PVM (paravirtualized, nested): unmodified guest kernels run under emulation"
    } else if Path::new("/sys/module/kvm_intel").exists() || flags.contains(&"vmx") {
        "hardware (Intel VT-x)"
    } else if Path::new("/sys/module/kvm_amd").exists() || flags.contains(&"svm") {
        "hardware (AMD-V)"
    } else {
        "unknown backend"
    };
    item("kvm", api == 12, format!("API {api}, {kind}"))
}

/// Whether shared memory gets transparent huge pages: the vm level's
/// guest RAM is a memfd shared with its file server process, whose pages
/// are huge only as `shmem_enabled` says (Debian's default is `never`).
/// Not a condition of the level: a guest boots either way, slower in
/// 4 KiB pages (each a nested page fault when it is first touched).
fn shmem_huge_pages() -> Item {
    let s = read("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    let policy = s
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("unknown");
    let ok = matches!(policy, "always" | "within_size" | "force");
    let detail = if ok {
        format!(
            "{policy}: the vm level's guest RAM (shared with its file server) can use 2 MiB pages"
        )
    } else {
        format!(
            "{policy}: the vm level's guest RAM (shared with its file server) is in 4 KiB pages, \
             so guests boot slower (set /sys/kernel/mm/transparent_hugepage/shmem_enabled to within_size)"
        )
    };
    item("shmem huge pages", ok, detail)
}

pub fn run(format: ListFormat, vm_assets: Option<&Path>) -> Result<()> {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut items = namespaces();
    items.extend(cgroups());
    items.extend(seccomp());
    let pt = ptrace();
    let pt_ok = pt.ok;
    items.push(pt);
    let overlay = read("/proc/filesystems")
        .lines()
        .any(|l| l.ends_with("\toverlay"));
    items.push(item(
        "overlayfs",
        overlay,
        if overlay { "supported" } else { "missing" },
    ));
    items.push(kvm());
    items.push(shmem_huge_pages());

    let ns_ok = items
        .iter()
        .filter(|i| i.feature.starts_with("namespace ") && !i.feature.ends_with("time"))
        .all(|i| i.ok);
    let seccomp_ok = items.iter().any(|i| i.feature == "seccomp filter" && i.ok);
    let levels = vec![
        item(
            "native",
            ns_ok && seccomp_ok,
            "namespaces, cgroups, seccomp, capabilities",
        ),
        match atoll_sandbox::systrap_support() {
            Ok(()) => item(
                "userspace",
                pt_ok && seccomp_ok,
                "application kernel on the systrap platform (ptrace also available)",
            ),
            Err(why) => item(
                "userspace",
                pt_ok && seccomp_ok,
                format!("application kernel on the ptrace platform (systrap: {why})"),
            ),
        },
        match vm_level::host_support(
            &vm_level::assets_dir(vm_assets),
            Some(crate::vm::check_kernel),
        ) {
            Ok(what) => item("vm", true, what),
            Err(why) => item("vm", false, why),
        },
    ];
    let report = Report {
        kernel,
        items,
        levels,
    };
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("kernel {}", report.kernel);
    let w = report
        .items
        .iter()
        .chain(report.levels.iter())
        .map(|i| i.feature.len())
        .max()
        .unwrap_or(10)
        + 2;
    println!("{:<w$}{:<6}DETAIL", "FEATURE", "OK");
    for i in &report.items {
        println!(
            "{:<w$}{:<6}{}",
            i.feature,
            if i.ok { "yes" } else { "no" },
            i.detail
        );
    }
    println!();
    println!("{:<w$}{:<6}DETAIL", "LEVEL", "OK");
    for i in &report.levels {
        println!(
            "{:<w$}{:<6}{}",
            i.feature,
            if i.ok { "yes" } else { "no" },
            i.detail
        );
    }
    Ok(())
}
