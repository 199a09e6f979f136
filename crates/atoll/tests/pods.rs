//! A pod at the userspace level through the runtime's CLI, as containerd's
//! shim drives it: the sandbox container starts the pod's kernel, the
//! other containers (CRI annotations naming the sandbox) are created in
//! it, each with its own limits, statistics and lifecycle; bad pods are
//! refused in one line and leave nothing behind. The CRI path itself is
//! crates/shim/tests/ecosystem_cri.rs.

mod common;

use atoll_testkit::BundleBuilder;
use common::*;

const TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

fn sandbox(id: &str) -> BundleBuilder {
    busybox()
        .sh("exec sleep 1000")
        .annotation(TYPE, "sandbox")
        .annotation(SANDBOX_ID, id)
}

fn member(sandbox: &str, script: &str) -> BundleBuilder {
    busybox()
        .sh(script)
        .annotation(TYPE, "container")
        .annotation(SANDBOX_ID, sandbox)
}

#[test]
fn pod_containers_have_their_own_limits_stats_and_lifecycle() {
    let a = atoll();
    let sid = id("pod-sb");
    let sb = sandbox(&sid).build();
    start_detached(&a, "userspace", &sb, &sid);

    // pids: the member's limit of 8 tasks stops its fork loop; the
    // sandbox's processes are not counted.
    let mid = id("pod-pids");
    let m = member(
        &sid,
        "for i in $(seq 1 20); do sleep 30 & echo forked $i; done; echo all-forked",
    )
    .pids_limit(8)
    .build();
    let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(!out.stdout.contains("all-forked"), "{out:#?}");
    assert!(out.stdout.contains("forked 3\n"), "{out:#?}");
    assert!(out.stderr.contains("can't fork"), "{out:#?}");
    leaks(&a, &mid, &m).assert_clean();

    // memory: a 100 MiB buffer does not fit a 64 MiB limit (ENOMEM, as
    // the container's cgroup would refuse it); 16 MiB does.
    let mid = id("pod-mem");
    let m = member(
        &sid,
        "dd if=/dev/zero of=/dev/null bs=100M count=1; echo big=$?; \
         dd if=/dev/zero of=/dev/null bs=16M count=1 2>&1; echo small=$?",
    )
    .memory_limit(64 << 20)
    .build();
    let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
    out.ok();
    assert!(out.stdout.contains("big=1"), "{out:#?}");
    assert!(out.stdout.contains("small=0"), "{out:#?}");
    leaks(&a, &mid, &m).assert_clean();

    // Statistics of a running member: its own processes' memory and
    // tasks, from the pod's kernel.
    let mid = id("pod-stats");
    let m = member(&sid, "dd if=/dev/zero bs=8M count=1 | sleep 1000").build();
    a.run(&[
        "--isolation",
        "userspace",
        "run",
        "-d",
        "-b",
        m.path_str(),
        &mid,
    ])
    .ok();
    let mut seen = serde_json::Value::Null;
    for _ in 0..100 {
        let out = a.run(&["events", "--stats", &mid]);
        out.ok();
        seen = serde_json::from_str(out.stdout.trim()).unwrap();
        if seen["data"]["pids"]["current"].as_u64() >= Some(3) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mem = seen["data"]["memory"]["usage"]["usage"]
        .as_u64()
        .unwrap_or(0);
    assert!(mem > 0, "{seen:#}");
    assert!(
        seen["data"]["pids"]["current"].as_u64() >= Some(3),
        "{seen:#}"
    );
    // Its own lifecycle: killed alone, the sandbox goes on.
    a.run(&["kill", &mid, "KILL"]).ok();
    a.wait_status(&mid, "stopped");
    a.run(&["delete", &mid]).ok();
    leaks(&a, &mid, &m).assert_clean();
    assert_eq!(a.status(&sid), "running");

    // Deleting the sandbox ends the pod and everything in it.
    let mid = id("pod-last");
    let m = member(&sid, "exec sleep 1000").build();
    a.run(&[
        "--isolation",
        "userspace",
        "run",
        "-d",
        "-b",
        m.path_str(),
        &mid,
    ])
    .ok();
    a.run(&["delete", "--force", &sid]).ok();
    a.wait_status(&mid, "stopped");
    a.run(&["delete", &mid]).ok();
    leaks(&a, &mid, &m).assert_clean();
    leaks(&a, &sid, &sb).assert_clean();
}

/// Open descriptors of a process, from the host.
fn fd_count(pid: i64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A pod's member containers come and go (restarts, jobs): each one's
/// root file system and mounts are freed with it in the pod's kernel,
/// with the host descriptors its cached walks held (a directory walked
/// holds one). They used to stay until the pod ended.
#[test]
fn finished_pod_containers_leave_no_descriptors_in_the_pod_kernel() {
    let a = atoll();
    let sid = id("pod-fds");
    let sb = sandbox(&sid).build();
    let kernel = start_detached(&a, "userspace", &sb, &sid);
    let data = tempfile::tempdir().unwrap();
    for i in 0..150 {
        std::fs::create_dir_all(data.path().join(format!("d{i}/e"))).unwrap();
    }
    // 300 directories walked per member: a leak shows as ~300 more
    // descriptors per round. First through a bind mount, then through a
    // rootfs overlay, whose recently walked objects (and their lower
    // layer's descriptors) are kept alive by the overlay.
    for overlay in [false, true] {
        let mut counts = Vec::new();
        for round in 0..4 {
            let mid = id(&format!("pod-fds-{overlay}-{round}"));
            let script = "ls -R /data | grep -c '^/data/d.*/e:$'";
            let m = if overlay {
                let m = member(&sid, script)
                    .annotation("dev.atoll.overlay", "root:memory")
                    .build();
                for i in 0..150 {
                    std::fs::create_dir_all(m.rootfs.join(format!("data/d{i}/e"))).unwrap();
                }
                m
            } else {
                member(&sid, script)
                    .bind(data.path(), "/data", true)
                    .build()
            };
            let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
            out.ok();
            assert_eq!(out.stdout.trim(), "150", "{out:#?}");
            leaks(&a, &mid, &m).assert_clean();
            counts.push(fd_count(kernel));
        }
        assert!(
            counts[3] < counts[0] + 50,
            "the pod's kernel keeps descriptors of finished members (overlay: {overlay}): {counts:?}"
        );
    }
    a.run(&["delete", "--force", &sid]).ok();
    leaks(&a, &sid, &sb).assert_clean();
}

#[test]
fn bad_pods_are_refused_in_one_line_and_leave_nothing() {
    let a = atoll();
    // No such sandbox.
    let mid = id("pod-orphan");
    let m = member("no-such-sandbox", "true").build();
    a.run(&[
        "--isolation",
        "userspace",
        "create",
        "-b",
        m.path_str(),
        &mid,
    ])
    .fails_with("its pod's sandbox container no-such-sandbox does not exist");
    leaks(&a, &mid, &m).assert_clean();

    // A member at another level than its sandbox.
    let sid = id("pod-sb");
    let sb = sandbox(&sid).build();
    start_detached(&a, "userspace", &sb, &sid);
    let mid = id("pod-native");
    let m = member(&sid, "true").build();
    a.run(&["--isolation", "native", "create", "-b", m.path_str(), &mid])
        .fails_with("level native) cannot join pod sandbox");
    leaks(&a, &mid, &m).assert_clean();
    a.run(&["delete", "--force", &sid]).ok();
    leaks(&a, &sid, &sb).assert_clean();
}

/// Each container of a pod is held to its own spec's seccomp profile: the
/// pod's kernel applies the member's, not the sandbox container's.
#[test]
fn pod_containers_keep_their_own_seccomp_profile() {
    use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};
    let no_mkdir = || {
        let mut deny = LinuxSyscall::default();
        deny.set_names(vec!["mkdir".into(), "mkdirat".into()]);
        deny.set_action(LinuxSeccompAction::ScmpActErrno);
        deny.set_errno_ret(Some(30)); // EROFS
        let mut p = LinuxSeccomp::default();
        p.set_default_action(LinuxSeccompAction::ScmpActAllow);
        p.set_syscalls(Some(vec![deny]));
        p
    };
    let a = atoll();
    let sid = id("pod-sb");
    let sb = sandbox(&sid).build();
    start_detached(&a, "userspace", &sb, &sid);
    let script = "mkdir /tmp/d 2>&1; echo mkdir=$?; grep Seccomp: /proc/self/status";
    let mid = id("pod-sc");
    let m = member(&sid, script)
        .modify(|s| {
            let mut l = s.linux().clone().unwrap();
            l.set_seccomp(Some(no_mkdir()));
            s.set_linux(Some(l));
        })
        .build();
    let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
    assert!(out.stdout.contains("Read-only file system"), "{out:#?}");
    assert!(out.stdout.contains("mkdir=1"), "{out:#?}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out:#?}");
    leaks(&a, &mid, &m).assert_clean();
    // Another container of the pod without a profile, and the sandbox
    // container itself, may.
    let mid = id("pod-nosc");
    let m = member(&sid, script).build();
    let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
    assert!(out.stdout.contains("mkdir=0"), "{out:#?}");
    assert!(out.stdout.contains("Seccomp:\t0"), "{out:#?}");
    leaks(&a, &mid, &m).assert_clean();
    let out = a.run(&["exec", &sid, "sh", "-c", script]);
    assert!(out.stdout.contains("mkdir=0"), "{out:#?}");
    a.run(&["delete", "--force", &sid]).ok();
    leaks(&a, &sid, &sb).assert_clean();
}
