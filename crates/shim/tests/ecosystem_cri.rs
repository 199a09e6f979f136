//! The path kubelet takes: CRI v1 calls over containerd's socket, pods on
//! the RuntimeClass handlers `atoll` (userspace) and `atoll-native`, with a
//! locally built pause image as containerd's sandbox image and bridge
//! networking through the CNI plugins.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atoll_testkit::image::{BUSYBOX_IMAGE, PAUSE_IMAGE, busybox_oci_archive, pause_oci_archive};
use common::cri::Cri;
use common::*;
use k8s_cri::v1::*;

const CONTAINER_RUNNING: i32 = 1;
const CONTAINER_EXITED: i32 = 2;
const SANDBOX_READY: i32 = 0;

fn setup() -> (Containerd, Cri) {
    let c = Containerd::start(ContainerdOptions { cri: true });
    c.import("k8s.io", &pause_oci_archive());
    c.import("k8s.io", &busybox_oci_archive());
    let mut cri = Cri::connect(&c.socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = cri
            .image_present(PAUSE_IMAGE)
            .and_then(|p| Ok(p && cri.image_present(BUSYBOX_IMAGE)?));
        if let Ok(true) = seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRI does not see the imported images ({seen:?}):\n{}",
            c.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, cri)
}

fn pod_config(c: &Containerd, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: unique("uid"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "atoll-pod".into(),
        log_directory: c.path().join("pods").join(name).display().to_string(),
        labels: HashMap::from([("app".to_string(), "atoll-test".to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: c.cgroup_parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: 0, // POD
                    pid: 1,     // CONTAINER
                    ipc: 0,     // POD
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX_IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        // As kubelet asks by default: the pod's network, IPC and UTS, a
        // pid namespace of the container's own.
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: 0,
                    pid: 1,
                    ipc: 0,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits for the CRI log file to contain `needle`; returns its text.
fn wait_log(path: &std::path::Path, needle: &str) -> String {
    // (A vm-level pod's guest boots under software emulation in the test
    // VM: generous.)
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never showed {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_container_state(cri: &mut Cri, id: &str, state: i32) -> ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st = cri.container_status(id).expect("ContainerStatus");
        if st.state == state {
            return st;
        }
        assert!(Instant::now() < deadline, "container {id} stayed {st:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const APP: &str = "echo hello-from-cri; echo kernel=$(uname -r); dmesg 2>&1 | head -1; \
                   echo host=$(hostname); exec sleep 1000";

fn cri_pod(handler: &str, level: &str, exec: bool) {
    let _t = Timer::start(match (level, exec) {
        ("native", _) => "CRI pod (atoll-native)",
        (_, false) => "CRI pod (atoll, userspace)",
        _ => "CRI pod with ExecSync (atoll, userspace)",
    });
    let (c, mut cri) = setup();
    let name = unique("pod");
    let cfg = pod_config(&c, &name);
    let pod = cri
        .run_pod_sandbox(cfg.clone(), handler)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()));
    let st = cri.pod_sandbox_status(&pod).expect("PodSandboxStatus");
    assert_eq!(st.state, SANDBOX_READY, "{st:#?}");
    assert_eq!(st.runtime_handler, handler);
    let ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert!(
        ip.starts_with("10.231."),
        "pod IP from the CNI bridge: {st:#?}"
    );
    // One shim serves the pod (the sandbox and its containers).
    assert_eq!(c.shims().len(), 1, "{:#?}", c.shims());

    let app = cri
        .create_container(&pod, container("app", APP), cfg.clone())
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", c.log_tail()));
    cri.start_container(&app)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", c.log_tail()));
    let logs = std::path::Path::new(&cfg.log_directory);
    let log = wait_log(&logs.join("app.log"), "host=");
    assert!(
        log.lines().any(|l| l.contains(" stdout F hello-from-cri")),
        "CRI log format: {log}"
    );
    if level == "userspace" {
        // The container runs in the pod's kernel, whose hostname the
        // sandbox container set.
        assert!(log.contains("host=atoll-pod"), "{log}");
        assert!(log.contains("kernel=6.1.0-atoll"), "{log}");
        assert!(log.contains("Starting atoll"), "{log}");
    } else {
        assert!(
            log.contains("host=atoll-pod"),
            "the pod's UTS namespace: {log}"
        );
        assert!(!log.contains("kernel=6.1.0-atoll"), "{log}");
        assert!(!log.contains("Starting atoll"), "{log}");
    }
    assert_eq!(
        c.shims().len(),
        1,
        "containers join their pod's shim: {:#?}",
        c.shims()
    );
    let st = wait_container_state(&mut cri, &app, CONTAINER_RUNNING);
    assert_eq!(st.exit_code, 0);
    let stats = cri.container_stats(&app).expect("ContainerStats");
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map(|v| v.value)
        .unwrap_or(0);
    assert!(mem > 0, "memory statistics: {stats:#?}");

    if exec {
        let r = cri
            .exec_sync(
                &app,
                &[
                    "sh",
                    "-c",
                    "echo exec-ok; uname -r; echo exec-err >&2; exit 3",
                ],
                30,
            )
            .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", c.log_tail()));
        let out = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.exit_code, 3, "{r:?}");
        assert!(out.starts_with("exec-ok\n"), "{out}");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "exec-err\n");
        assert_eq!(out.contains("6.1.0-atoll"), level == "userspace", "{out}");
    }

    // A container that exits: status, exit code, both streams in its log.
    let job = cri
        .create_container(
            &pod,
            container("job", "echo job-out; echo job-err >&2; exit 7"),
            cfg.clone(),
        )
        .expect("CreateContainer job");
    cri.start_container(&job)
        .unwrap_or_else(|e| panic!("StartContainer job: {e}\n{}", c.log_tail()));
    let st = wait_container_state(&mut cri, &job, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 7, "{st:#?}");
    let log = wait_log(&logs.join("job.log"), "job-err");
    assert!(
        log.lines().any(|l| l.contains(" stdout F job-out")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains(" stderr F job-err")),
        "{log}"
    );

    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log_tail()));
    let st = cri
        .container_status(&app)
        .expect("ContainerStatus after stop");
    assert_eq!(st.state, CONTAINER_EXITED, "{st:#?}");
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log_tail()));
    assert!(cri.list_pod_sandboxes().unwrap().is_empty());
    // CNI DEL ran: nothing of this network is left in libcni's cache.
    let cached: Vec<String> = entries(std::path::Path::new(CNI_CACHE))
        .into_iter()
        .filter(|e| e.starts_with(&format!("{}-", c.network)) || e.contains(&pod))
        .collect();
    assert!(cached.is_empty(), "CNI results left: {cached:?}");
    c.assert_clean(
        "k8s.io",
        &[&pod, &app, &job],
        &c.cgroup_parent,
        &[c.shim_root.join("k8s.io")],
    );
}

#[test]
fn cri_pod_native() {
    cri_pod("atoll-native", "native", true);
}

#[test]
fn cri_pod_userspace() {
    cri_pod("atoll", "userspace", false);
}

#[test]
fn cri_pod_userspace_exec_sync() {
    cri_pod("atoll", "userspace", true);
}

/// Processes holding /dev/kvm open: the vm level's VMMs.
fn kvm_holders() -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        if fds.flatten().any(|f| {
            std::fs::read_link(f.path()).is_ok_and(|t| t == std::path::Path::new("/dev/kvm"))
        }) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push(format!(
                "pid {}: {}",
                e.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    found
}

/// A pod on the `atoll-vm` handler (the vm level, one micro-VM per pod):
/// the sandbox (pause) container boots the pod's VM; an app container and
/// a job run in that guest (its boot id, not the host's), their output
/// reaches CRI's logs, ExecSync runs in the same guest, exit statuses come
/// back; stopping and removing the pod leaves no VMM, mount, cgroup or
/// state. It boots guests, so tests/vm/run.sh runs it inside the test VM
/// of scripts/test-vm.sh (`make test-vm`).
#[test]
#[ignore = "boots a guest: `make test-vm` runs it inside the test VM"]
fn cri_pod_vm() {
    let _t = Timer::start("CRI pod (atoll-vm, one VM per pod)");
    let host_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let host_boot = host_boot.trim();
    assert!(
        kvm_holders().is_empty(),
        "VMMs before the test: {:?}",
        kvm_holders()
    );
    let (c, mut cri) = setup();
    let name = unique("pod");
    let cfg = pod_config(&c, &name);
    let t = Instant::now();
    let pod = cri
        .run_pod_sandbox(cfg.clone(), "atoll-vm")
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()));
    eprintln!("RunPodSandbox: {:.1}s", t.elapsed().as_secs_f64());
    let st = cri.pod_sandbox_status(&pod).expect("PodSandboxStatus");
    assert_eq!(st.state, SANDBOX_READY, "{st:#?}");
    assert_eq!(st.runtime_handler, "atoll-vm");
    let vmms = kvm_holders();
    assert_eq!(vmms.len(), 1, "one VMM for the pod: {vmms:?}");
    assert_eq!(c.shims().len(), 1, "{:#?}", c.shims());
    // The pod's address (CNI's, on the veth in the pod's namespace) is the
    // guest's: its eth0 is joined to the veth by a tap and tc redirects.
    // The bridge gets a host address so that node and pod reach each
    // other (the test's CNI config has no gateway).
    let pod_ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert!(
        pod_ip.starts_with("10.231."),
        "pod IP from the CNI bridge: {st:#?}"
    );
    let host_ip = format!("{}.250", pod_ip.rsplit_once('.').expect("pod IPv4").0);
    let status = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{host_ip}/24"), "dev", &c.bridge])
        .status()
        .unwrap();
    assert!(status.success(), "ip addr add {host_ip} dev {}", c.bridge);
    let host_server = std::net::TcpListener::bind((host_ip.as_str(), 0)).unwrap();
    let host_port = host_server.local_addr().unwrap().port();
    let host_thread = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, peer) = host_server.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut req = [0u8; 1024];
        let _ = conn.read(&mut req).unwrap();
        let body = format!("from-host-to-{}", peer.ip());
        write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });

    let t = Instant::now();
    let app = cri
        .create_container(
            &pod,
            container(
                "app",
                "echo hello-from-cri; echo boot=$(cat /proc/sys/kernel/random/boot_id); \
                 echo host=$(hostname); echo from-guest > /dev/shm/note; \
                 httpd -p 8080 -h /dev/shm; echo app-err >&2; exec sleep 1000",
            ),
            cfg.clone(),
        )
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", c.log_tail()));
    cri.start_container(&app)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", c.log_tail()));
    let logs = std::path::Path::new(&cfg.log_directory);
    let log = wait_log(&logs.join("app.log"), "app-err");
    eprintln!(
        "CreateContainer + StartContainer to the app's output: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        log.lines().any(|l| l.contains(" stdout F hello-from-cri")),
        "CRI log format: {log}"
    );
    assert!(
        log.lines().any(|l| l.contains(" stderr F app-err")),
        "{log}"
    );
    assert!(log.contains("host=atoll-pod"), "the pod's hostname: {log}");
    let boot = log
        .lines()
        .find_map(|l| l.split_once("boot=").map(|(_, b)| b.trim().to_string()))
        .unwrap_or_default();
    assert!(
        !boot.is_empty() && boot != host_boot,
        "the app runs under the pod's guest kernel (boot id {boot:?}, host's {host_boot})"
    );
    wait_container_state(&mut cri, &app, CONTAINER_RUNNING);
    assert_eq!(kvm_holders(), vmms, "the app joined the pod's VM");
    assert_eq!(c.shims().len(), 1, "{:#?}", c.shims());

    let t = Instant::now();
    let r = cri
        .exec_sync(
            &app,
            &[
                "sh",
                "-c",
                "cat /proc/sys/kernel/random/boot_id; echo exec-err >&2; exit 3",
            ],
            60,
        )
        .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", c.log_tail()));
    eprintln!("ExecSync: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(r.exit_code, 3, "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), boot, "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "exec-err\n");

    // The guest's eth0 has the pod's IP; the container reaches the node
    // over it, and the node reaches the container's server at that IP.
    let r = cri
        .exec_sync(
            &app,
            &[
                "sh",
                "-c",
                &format!("ip -o -4 addr show eth0; wget -q -O - http://{host_ip}:{host_port}/"),
            ],
            90,
        )
        .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", c.log_tail()));
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains(&format!("inet {pod_ip}/")),
        "the guest's eth0 has the pod IP {pod_ip}: {r:?}"
    );
    assert!(
        out.contains(&format!("from-host-to-{pod_ip}")),
        "the container reaches the node from the pod IP: {r:?}"
    );
    host_thread.join().unwrap();
    let mut from_node = String::new();
    {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect_timeout(
            &format!("{pod_ip}:8080").parse().unwrap(),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("node to pod {pod_ip}:8080: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(conn, "GET /note HTTP/1.0\r\n\r\n").unwrap();
        conn.read_to_string(&mut from_node).unwrap();
    }
    assert!(
        from_node.ends_with("from-guest\n"),
        "the node reaches the guest's server at the pod IP: {from_node}"
    );

    // A second container of the pod that exits: same guest, its status,
    // both streams.
    let job = cri
        .create_container(
            &pod,
            container(
                "job",
                "echo job-boot=$(cat /proc/sys/kernel/random/boot_id); echo job-err >&2; exit 7",
            ),
            cfg.clone(),
        )
        .expect("CreateContainer job");
    cri.start_container(&job)
        .unwrap_or_else(|e| panic!("StartContainer job: {e}\n{}", c.log_tail()));
    let st = wait_container_state(&mut cri, &job, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 7, "{st:#?}");
    let log = wait_log(&logs.join("job.log"), "job-err");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!(" stdout F job-boot={boot}"))),
        "the job runs in the pod's guest: {log}"
    );
    assert!(
        log.lines().any(|l| l.contains(" stderr F job-err")),
        "{log}"
    );

    let t = Instant::now();
    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log_tail()));
    eprintln!("StopPodSandbox: {:.1}s", t.elapsed().as_secs_f64());
    let st = cri
        .container_status(&app)
        .expect("ContainerStatus after stop");
    assert_eq!(st.state, CONTAINER_EXITED, "{st:#?}");
    assert_gone("VMM processes", Duration::from_secs(10), kvm_holders);
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log_tail()));
    assert!(cri.list_pod_sandboxes().unwrap().is_empty());
    let cached: Vec<String> = entries(std::path::Path::new(CNI_CACHE))
        .into_iter()
        .filter(|e| e.starts_with(&format!("{}-", c.network)) || e.contains(&pod))
        .collect();
    assert!(cached.is_empty(), "CNI results left: {cached:?}");
    c.assert_clean(
        "k8s.io",
        &[&pod, &app, &job],
        &c.cgroup_parent,
        &[c.shim_root.join("k8s.io")],
    );
}

/// A pod with `shareProcessNamespace: true` at the userspace level: the
/// pause container and two app containers run in one application kernel
/// (one boot id), share its UTS and IPC namespaces (/dev/shm), its network
/// (loopback) and its pid namespace (one container kills another's
/// process), and one container's end leaves the others running.
#[test]
fn cri_pod_userspace_one_kernel() {
    let _t = Timer::start("CRI pod, containers in one kernel (atoll, userspace)");
    pod_in_one_kernel("atoll");
}

/// The same pod through containerd's runc shim with atoll as its
/// `BinaryName`, the level from the pod's annotation.
#[test]
fn cri_pod_userspace_one_kernel_runc_shim() {
    let _t = Timer::start("CRI pod, containers in one kernel (runc.v2 + atoll, userspace)");
    pod_in_one_kernel("atoll-runc");
}

fn pod_in_one_kernel(handler: &str) {
    let (c, mut cri) = setup();
    let name = unique("pod");
    let mut cfg = pod_config(&c, &name);
    cfg.annotations
        .insert("dev.atoll.isolation".into(), "userspace".into());
    let shared_pids = NamespaceOption {
        network: 0,
        pid: 0, // POD: shareProcessNamespace
        ipc: 0,
        ..Default::default()
    };
    cfg.linux.as_mut().unwrap().security_context = Some(LinuxSandboxSecurityContext {
        namespace_options: Some(shared_pids.clone()),
        ..Default::default()
    });
    let pod = cri
        .run_pod_sandbox(cfg.clone(), handler)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()));
    // The pod's network is the sandbox's own stack (the userspace level's
    // default: the pod has a CNI network namespace), which took the CNI
    // veth over. The bridge gets a host address, so that the node and
    // the pod can reach each other (the test's CNI config has no
    // gateway).
    let pod_ip = cri
        .pod_sandbox_status(&pod)
        .expect("PodSandboxStatus")
        .network
        .map(|n| n.ip)
        .unwrap_or_default();
    let host_ip = format!("{}.250", pod_ip.rsplit_once('.').expect("pod IPv4").0);
    let status = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{host_ip}/24"), "dev", &c.bridge])
        .status()
        .unwrap();
    assert!(status.success(), "ip addr add {host_ip} dev {}", c.bridge);
    let host_server = std::net::TcpListener::bind((host_ip.as_str(), 0)).unwrap();
    let host_port = host_server.local_addr().unwrap().port();
    let host_thread = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, peer) = host_server.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut req = [0u8; 1024];
        let _ = conn.read(&mut req).unwrap();
        let body = format!("from-host-to-{}", peer.ip());
        write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let in_pod = |name: &str, script: &str| {
        let mut cc = container(name, script);
        cc.linux.as_mut().unwrap().security_context = Some(LinuxContainerSecurityContext {
            namespace_options: Some(shared_pids.clone()),
            ..Default::default()
        });
        cc
    };
    let logs = std::path::Path::new(&cfg.log_directory).to_path_buf();

    let a = cri
        .create_container(
            &pod,
            in_pod(
                "a",
                "echo boot=$(cat /proc/sys/kernel/random/boot_id); echo host=$(hostname); \
                 echo from-a > /dev/shm/note; httpd -p 8080 -h /dev/shm; \
                 echo a-ready; exec sleep 1001",
            ),
            cfg.clone(),
        )
        .unwrap_or_else(|e| panic!("CreateContainer a: {e}\n{}", c.log_tail()));
    cri.start_container(&a)
        .unwrap_or_else(|e| panic!("StartContainer a: {e}\n{}", c.log_tail()));
    let log_a = wait_log(&logs.join("a.log"), "a-ready");
    wait_container_state(&mut cri, &a, CONTAINER_RUNNING);

    // The node reaches a's server at the pod's address.
    let mut from_node = String::new();
    {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect_timeout(
            &format!("{pod_ip}:8080").parse().unwrap(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("node to pod {pod_ip}:8080: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(conn, "GET /note HTTP/1.0\r\n\r\n").unwrap();
        conn.read_to_string(&mut from_node).unwrap();
    }
    assert!(from_node.ends_with("from-a\n"), "{from_node}");
    let b_script = format!(
        "echo boot=$(cat /proc/sys/kernel/random/boot_id); echo host=$(hostname); \
         echo shm=$(cat /dev/shm/note); \
         echo tcp=$(wget -qO- http://127.0.0.1:8080/note); \
         echo podip=$(wget -qO- http://{pod_ip}:8080/note); \
         echo tohost=$(wget -qO- http://{host_ip}:{host_port}/); \
         echo stack=$(cat /proc/net/tcp /proc/net/tcp6 | grep -c ':1F90 0*:0000 0A'); \
         echo init=$(cat /proc/1/cmdline | tr '\\0' ' '); \
         for p in $(pidof sleep); do echo sees=$(tr '\\0' ' ' < /proc/$p/cmdline); done; \
         kill $(pidof sleep); echo b-killed=$?; exec sleep 1002"
    );
    let b = cri
        .create_container(&pod, in_pod("b", &b_script), cfg.clone())
        .unwrap_or_else(|e| panic!("CreateContainer b: {e}\n{}", c.log_tail()));
    cri.start_container(&b)
        .unwrap_or_else(|e| panic!("StartContainer b: {e}\n{}", c.log_tail()));
    let log_b = wait_log(&logs.join("b.log"), "b-killed=");

    let field = |log: &str, key: &str| -> String {
        log.lines()
            .filter_map(|l| {
                l.split_once(&format!(" F {key}="))
                    .map(|(_, v)| v.trim().to_string())
            })
            .next()
            .unwrap_or_else(|| panic!("no {key}= in {log}"))
    };
    // One kernel: the boot id is the kernel's, random at each boot.
    let boot = field(&log_a, "boot");
    assert_eq!(boot.len(), 36, "{log_a}");
    assert_eq!(field(&log_b, "boot"), boot, "a: {log_a}\nb: {log_b}");
    // The pod's UTS namespace, set by the sandbox container.
    assert_eq!(field(&log_a, "host"), "atoll-pod", "{log_a}");
    assert_eq!(field(&log_b, "host"), "atoll-pod", "{log_b}");
    // The pod's IPC namespace: its /dev/shm.
    assert_eq!(field(&log_b, "shm"), "from-a", "{log_b}");
    // The pod's network: loopback between containers, the pod's address,
    // and the node through the CNI bridge, all on the sandbox's stack
    // (its /proc/net/tcp6 lists a's dual-stack listener; in host mode the
    // sandbox has no /proc/net).
    assert_eq!(field(&log_b, "tcp"), "from-a", "{log_b}");
    assert_eq!(field(&log_b, "podip"), "from-a", "{log_b}");
    assert_eq!(
        field(&log_b, "tohost"),
        format!("from-host-to-{pod_ip}"),
        "{log_b}"
    );
    host_thread.join().unwrap();
    assert_eq!(field(&log_b, "stack"), "1", "{log_b}");
    // The pod's pid namespace: its init is the pause process, and b sees
    // and kills a's process.
    assert!(field(&log_b, "init").contains("pause"), "{log_b}");
    assert!(log_b.contains(" F sees=sleep 1001"), "{log_b}");
    assert_eq!(field(&log_b, "b-killed"), "0", "{log_b}");

    // a ended by b's signal; b and the pod go on.
    let st = wait_container_state(&mut cri, &a, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 128 + 15, "{st:#?}");
    wait_container_state(&mut cri, &b, CONTAINER_RUNNING);
    let st = cri.pod_sandbox_status(&pod).expect("PodSandboxStatus");
    assert_eq!(st.state, SANDBOX_READY, "{st:#?}");
    // Per-container statistics from inside the one kernel.
    let stats = cri.container_stats(&b).expect("ContainerStats b");
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map(|v| v.value)
        .unwrap_or(0);
    assert!(mem > 0, "memory statistics of b: {stats:#?}");
    // ExecSync into a pod container runs in that container.
    let r = cri
        .exec_sync(
            &b,
            &["sh", "-c", "cat /proc/sys/kernel/random/boot_id; hostname"],
            30,
        )
        .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", c.log_tail()));
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        format!("{boot}\natoll-pod\n")
    );
    assert_eq!(c.shims().len(), 1, "{:#?}", c.shims());

    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log_tail()));
    let st = cri
        .container_status(&b)
        .expect("ContainerStatus b after stop");
    assert_eq!(st.state, CONTAINER_EXITED, "{st:#?}");
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log_tail()));
    assert!(cri.list_pod_sandboxes().unwrap().is_empty());
    c.assert_clean(
        "k8s.io",
        &[&pod, &a, &b],
        &c.cgroup_parent,
        &[
            c.shim_root.join("k8s.io"),
            c.path().join("runc-root/k8s.io"),
        ],
    );
}
