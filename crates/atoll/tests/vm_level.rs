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

/// One VM per pod is not built yet: a pod's container (CRI annotations
/// naming its sandbox) is refused at the vm level rather than booting a
/// guest of its own, apart from its pod's network and IPC.
#[test]
fn pod_containers_are_refused_at_the_vm_level() {
    let a = atoll();
    let b = busybox()
        .args(&["true"])
        .annotation("io.kubernetes.cri.container-type", "container")
        .annotation("io.kubernetes.cri.sandbox-id", "some-pod-sandbox")
        .build();
    let id = id("vmpod");
    a.run(&["--isolation", "vm", "create", "-b", b.path_str(), &id])
        .fails_with("pods at isolation level vm are not supported yet");
    leaks(&a, &id, &b).assert_clean();
}
