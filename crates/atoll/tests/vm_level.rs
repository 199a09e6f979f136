//! The vm level on a host whose /dev/kvm cannot boot an ordinary guest
//! (these machines' KVM-PVM, or no /dev/kvm at all): every way in is
//! refused with one line naming why, and nothing is left behind. Where
//! /dev/kvm does boot guests the level runs; its end-to-end tests boot
//! guests and run under `make test-vm` (tests/vm/), not here.

mod common;

use common::*;

/// Why this host's /dev/kvm cannot boot Debian's kernel, or None if it can.
fn kvm_refusal() -> Option<&'static str> {
    if !std::path::Path::new("/dev/kvm").exists() {
        Some("/dev/kvm")
    } else if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        Some("KVM-PVM")
    } else {
        None
    }
}

#[test]
fn vm_level_is_refused_where_kvm_cannot_boot_guests() {
    let Some(why) = kvm_refusal() else {
        eprintln!("skipped: this host's /dev/kvm boots guests (make test-vm covers the level)");
        return;
    };
    let a = atoll();
    let b = busybox().args(&["true"]).build();
    let id = id("vmrefused");
    for verb in ["create", "run"] {
        a.run(&["--isolation", "vm", verb, "-b", b.path_str(), &id])
            .fails_with(why);
        leaks(&a, &id, &b).assert_clean();
    }
    // Chosen by the bundle's annotation instead of the flag.
    let b = busybox()
        .args(&["true"])
        .annotation("dev.atoll.isolation", "vm")
        .build();
    a.run(&["run", "-d", "-b", b.path_str(), &id])
        .fails_with(why);
    leaks(&a, &id, &b).assert_clean();
    // Nothing was created, so there is nothing to start, exec or kill.
    a.run(&["state", &id]).fails_with("does not exist");
    a.run(&["exec", &id, "true"]).fails_with(&id);
}

/// Guest assets missing or a memory limit too small are refused the same
/// way; on this host the /dev/kvm reason comes first, since it is the one
/// that no configuration fixes.
#[test]
fn kvm_reason_comes_before_assets_and_memory() {
    let Some(why) = kvm_refusal() else {
        eprintln!("skipped: this host's /dev/kvm boots guests");
        return;
    };
    let a = atoll();
    let b = busybox().args(&["true"]).memory_limit(64 << 20).build();
    let id = id("vmorder");
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "vm_assets = \"/nonexistent/vm-assets\"\n").unwrap();
    a.run(&[
        "--config",
        cfg.path().to_str().unwrap(),
        "--isolation",
        "vm",
        "create",
        "-b",
        b.path_str(),
        &id,
    ])
    .fails_with(why);
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn check_says_whether_the_vm_level_runs_here() {
    let a = atoll();
    let report: serde_json::Value =
        serde_json::from_str(&a.run(&["check", "--format", "json"]).ok().stdout).unwrap();
    let vm = report["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["feature"] == "vm")
        .expect("check lists the vm level")
        .clone();
    match kvm_refusal() {
        Some(why) => {
            assert_eq!(vm["ok"], false, "{vm}");
            assert!(vm["detail"].as_str().unwrap().contains(why), "{vm}");
        }
        // Where /dev/kvm boots guests the answer depends on the assets.
        None => assert!(
            vm["ok"] == true || vm["detail"].as_str().unwrap().contains("missing"),
            "{vm}"
        ),
    }
    let text = a.run(&["check"]).ok().stdout.clone();
    assert!(
        text.lines().any(|l| l.starts_with("vm ")),
        "check's table lists the vm level: {text}"
    );
}

/// One VM per pod: a pod's container (CRI annotations naming its
/// sandbox) runs in its sandbox's VM, so one whose sandbox container does
/// not exist here is refused in one line before anything is made (no
/// guest is booted for it, whatever the host's /dev/kvm). make test-vm
/// runs pods in a guest.
#[test]
fn a_pod_container_without_its_sandbox_is_refused_at_the_vm_level() {
    let a = atoll();
    let b = busybox()
        .args(&["true"])
        .annotation("io.kubernetes.cri.container-type", "container")
        .annotation("io.kubernetes.cri.sandbox-id", "some-pod-sandbox")
        .build();
    let id = id("vmpod");
    a.run(&["--isolation", "vm", "create", "-b", b.path_str(), &id])
        .fails_with("its pod's sandbox container some-pod-sandbox does not exist");
    leaks(&a, &id, &b).assert_clean();
    assert!(
        !a.root()
            .join(".atoll/.pods")
            .join("some-pod-sandbox")
            .exists(),
        "no pod directory is made for a missing sandbox"
    );
}

/// The smallest file the kernel check accepts: an x86_64 ELF64 executable
/// with one loadable segment holding its entry point.
fn tiny_vmlinux() -> Vec<u8> {
    let mut f = vec![0u8; 120];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1;
    f[16] = 2; // ET_EXEC
    f[18] = 0x3e; // x86_64
    f[24..32].copy_from_slice(&0x100000u64.to_le_bytes()); // entry
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    f[54] = 56; // phentsize
    f[56] = 1; // phnum
    let ph = &mut f[64..120];
    ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    ph[24..32].copy_from_slice(&0x100000u64.to_le_bytes()); // paddr
    ph[32..40].copy_from_slice(&120u64.to_le_bytes()); // filesz
    ph[40..48].copy_from_slice(&0x1000u64.to_le_bytes()); // memsz
    f
}

/// `atoll install --vm-assets DIR` copies the kernel and initramfs to
/// where atoll looks (here $ATOLL_VM_ASSETS), only after checking both;
/// `uninstall --vm-assets` removes exactly them.
#[test]
fn install_vm_assets_checks_then_copies_and_uninstall_removes() {
    let a = atoll();
    let src = tempfile::tempdir().unwrap();
    let dest_parent = tempfile::tempdir().unwrap();
    let dest = dest_parent.path().join("vm");
    let run = |args: &[&str]| -> atoll_testkit::Out {
        a.command()
            .args(args)
            .env("ATOLL_VM_ASSETS", &dest)
            .output()
            .unwrap()
            .into()
    };
    let s = src.path().to_str().unwrap();
    // A bzImage where a vmlinux belongs, a truncated kernel, a compressed
    // initramfs: one line each, nothing installed.
    std::fs::write(src.path().join("vmlinux"), b"MZ\x00\x00 a bzImage").unwrap();
    std::fs::write(src.path().join("initramfs.cpio"), b"070701rest").unwrap();
    run(&["install", "--vm-assets", s]).fails_with("not an ELF file");
    assert!(!dest.exists());
    std::fs::write(src.path().join("vmlinux"), &tiny_vmlinux()[..100]).unwrap();
    run(&["install", "--vm-assets", s]).fails_with("truncated");
    std::fs::write(src.path().join("vmlinux"), tiny_vmlinux()).unwrap();
    std::fs::write(src.path().join("initramfs.cpio"), b"\x1f\x8b\x08gzip").unwrap();
    run(&["install", "--vm-assets", s]).fails_with("cpio");
    assert!(!dest.exists());
    run(&["install", "--vm-assets"]).fails_with("needs the directory");

    std::fs::write(src.path().join("initramfs.cpio"), b"070701rest").unwrap();
    run(&["install", "--vm-assets", s, "--dry-run"]).ok();
    assert!(!dest.exists());
    run(&["install", "--vm-assets", s]).ok();
    assert_eq!(std::fs::read(dest.join("vmlinux")).unwrap(), tiny_vmlinux());
    assert_eq!(
        std::fs::read(dest.join("initramfs.cpio")).unwrap(),
        b"070701rest"
    );
    // The kernel's blocks of zeros become holes (the VMM's loader skips
    // them): the same bytes, fewer of them stored.
    let mut padded = tiny_vmlinux();
    padded.resize(1 << 20, 0);
    padded.extend_from_slice(b"tail");
    std::fs::write(src.path().join("vmlinux"), &padded).unwrap();
    run(&["install", "--vm-assets", s]).ok();
    assert_eq!(std::fs::read(dest.join("vmlinux")).unwrap(), padded);
    use std::os::unix::fs::MetadataExt;
    let stored = std::fs::metadata(dest.join("vmlinux")).unwrap().blocks() * 512;
    assert!(
        stored < 64 << 10,
        "{stored} bytes stored: the zeros were written"
    );
    std::fs::write(dest_parent.path().join("keep"), "").unwrap();
    run(&["uninstall", "--vm-assets"]).ok();
    assert!(!dest.exists(), "uninstall left {}", dest.display());
    assert!(dest_parent.path().join("keep").exists());
    assert!(
        run(&["uninstall", "--vm-assets"])
            .ok()
            .stdout
            .contains("nothing to remove")
    );
}

/// A tenant's policy can require the vm level: a lower level is refused,
/// or upgraded to vm (which a host that cannot boot guests then refuses
/// with its reason), and nothing is left behind either way.
#[test]
fn a_tenant_can_require_the_vm_level() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[tenants.strict]\nmin_isolation = \"vm\"\n\n[tenants.upgraded]\nmin_isolation = \"vm\"\non_lower_isolation = \"upgrade\"\n",
    )
    .unwrap();
    let a = atoll().with_global(&["--policy", policy.to_str().unwrap()]);
    let b = busybox()
        .args(&["true"])
        .annotation("dev.atoll.tenant", "strict")
        .build();
    let id = id("vmstrict");
    a.run(&["--isolation", "userspace", "run", "-b", b.path_str(), &id])
        .fails_with("tenant \"strict\": rule min_isolation forbids isolation=userspace");
    leaks(&a, &id, &b).assert_clean();

    let Some(why) = kvm_refusal() else {
        return;
    };
    let b = busybox()
        .args(&["true"])
        .annotation("dev.atoll.tenant", "upgraded")
        .build();
    let id = common::id("vmupgraded");
    a.run(&["--isolation", "native", "run", "-b", b.path_str(), &id])
        .fails_with(why);
    leaks(&a, &id, &b).assert_clean();
}
