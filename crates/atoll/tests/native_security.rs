//! The native level's secure defaults, proven by trying what they forbid.

mod common;

use std::collections::HashMap;

use atoll_testkit::cprog;
use common::*;
use oci_spec::runtime::{Capability, LinuxSeccompAction, LinuxSyscall};

fn probe(a: &atoll_testkit::Atoll, b: &atoll_testkit::Bundle, id: &str) -> HashMap<String, String> {
    let out = a.run(&["run", "-b", b.path_str(), id]);
    out.ok();
    leaks(a, id, b).assert_clean();
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const DANGEROUS: &[&str] = &[
    "ptrace",
    "keyctl",
    "add_key",
    "unshare_user",
    "clone_newuser",
    "mount",
    "umount",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "perf_event_open",
    "kexec_load",
    "init_module",
    "open_by_handle_at",
    "reboot",
    "pivot_root",
    "setns",
    "process_vm_readv",
    "socket_vsock",
    "personality_bad",
    "chroot",
];

#[test]
fn default_profile_refuses_dangerous_syscalls() {
    let a = atoll();
    let mut args = vec!["/probe", "getpid", "mkdir"];
    args.extend_from_slice(DANGEROUS);
    let b = busybox().args(&args).build();
    cprog::install(&cprog::syscall_probe(), &b.rootfs, "/probe");
    let r = probe(&a, &b, &id("seccomp"));
    assert_eq!(r["getpid"], "0");
    assert_eq!(r["mkdir"], "0");
    for s in DANGEROUS {
        assert_eq!(r[*s], "EPERM", "{s} was not refused: {r:?}");
    }
}

#[test]
fn a_bundle_profile_replaces_the_default() {
    let a = atoll();
    let b = busybox()
        .args(&["/probe", "mkdir", "keyctl", "getpid"])
        .modify(|spec| {
            let mut l = spec.linux().clone().unwrap();
            let mut deny = LinuxSyscall::default();
            deny.set_names(vec!["mkdir".into(), "mkdirat".into()]);
            deny.set_action(LinuxSeccompAction::ScmpActErrno);
            deny.set_errno_ret(Some(30)); // EROFS
            let mut p = oci_spec::runtime::LinuxSeccomp::default();
            p.set_default_action(LinuxSeccompAction::ScmpActAllow);
            p.set_syscalls(Some(vec![deny]));
            l.set_seccomp(Some(p));
            spec.set_linux(Some(l));
        })
        .build();
    cprog::install(&cprog::syscall_probe(), &b.rootfs, "/probe");
    let r = probe(&a, &b, &id("ownprofile"));
    assert_eq!(r["mkdir"], "EROFS");
    // keyctl is no longer blocked by seccomp (the kernel answers for itself)
    assert_ne!(r["keyctl"], "EPERM", "{r:?}");
}

#[test]
fn capabilities_grant_their_syscalls_in_the_default_profile() {
    let a = atoll();
    let b = busybox()
        .args(&["/probe", "chroot"])
        .modify(|spec| {
            let mut p = spec.process().clone().unwrap();
            let mut caps = p.capabilities().clone().unwrap();
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ] {
                let _ = set;
            }
            let add = |s: Option<std::collections::HashSet<Capability>>| {
                let mut s = s.unwrap_or_default();
                s.insert(Capability::SysChroot);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
            p.set_capabilities(Some(caps));
            spec.set_process(Some(p));
        })
        .build();
    cprog::install(&cprog::syscall_probe(), &b.rootfs, "/probe");
    let r = probe(&a, &b, &id("capchroot"));
    assert_eq!(r["chroot"], "0", "{r:?}");
}

#[test]
fn no_new_privileges_masked_and_readonly_paths() {
    let a = atoll();
    let script = "grep NoNewPrivs /proc/self/status; \
                  echo timer_list=$(wc -c < /proc/timer_list); echo interrupts=$(wc -c < /proc/interrupts); \
                  (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo sys=writable || echo sys=readonly; \
                  ls /sys/firmware | wc -l";
    // No maskedPaths/readonlyPaths in the bundle: atoll's defaults apply.
    let b = busybox()
        .sh(script)
        .modify(|spec| {
            let mut l = spec.linux().clone().unwrap();
            l.set_masked_paths(None);
            l.set_readonly_paths(None);
            spec.set_linux(Some(l));
        })
        .build();
    let id1 = id("nnp");
    let out = a.run(&["run", "-b", b.path_str(), &id1]);
    out.ok();
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{out:#?}");
    // masked: bind-mounted /dev/null (reads are empty)
    assert!(out.stdout.contains("timer_list=0"), "{out:#?}");
    assert!(out.stdout.contains("interrupts=0"), "{out:#?}");
    assert!(out.stdout.contains("sys=readonly"), "{out:#?}");
    assert!(out.stdout.ends_with("0\n"), "{out:#?}");
    leaks(&a, &id1, &b).assert_clean();

    let b = busybox()
        .sh("grep NoNewPrivs /proc/self/status")
        .modify(|spec| {
            let mut p = spec.process().clone().unwrap();
            p.set_no_new_privileges(Some(false));
            spec.set_process(Some(p));
        })
        .build();
    let id2 = id("nnp-off");
    let out = a.run(&["run", "-b", b.path_str(), &id2]);
    assert!(out.ok().stdout.contains("NoNewPrivs:\t0"), "{out:#?}");
    leaks(&a, &id2, &b).assert_clean();
}
