//! `--network sandbox`: the workload's AF_INET sockets are served by the
//! application kernel's own TCP/IP stack. A TCP and UDP echo over
//! 127.0.0.1 works inside the sandbox, and the kernel holds no host
//! AF_INET socket for it (while host mode, the control, does).

mod common;

use atoll_testkit::{Atoll, Bundle, cprog};
use common::*;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn echo_bundle(out: &Path, network: Option<&str>) -> Bundle {
    let bin = cprog::compile(
        "tcp_echo",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/tcp_echo.c"
        ))
        .unwrap(),
        &[],
    );
    let mut b = busybox()
        .bind(out, "/out", false)
        .args(&["/echo", "/out/result", "30"]);
    if let Some(n) = network {
        b = b.annotation("dev.atoll.network", n);
    }
    let b = b.build();
    cprog::install(&bin, &b.rootfs, "/echo");
    b
}

/// Waits for the program's verdict; returns the port it listened on.
fn verdict(out: &Path, a: &Atoll, id: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(v) = std::fs::read_to_string(out.join("result"))
            && v.ends_with('\n')
        {
            let Some(port) = v.trim().strip_prefix("echo ok port=") else {
                a.run(&["delete", "-f", id]).ok();
                panic!("echo failed: {v}");
            };
            return port.parse().unwrap();
        }
        if Instant::now() > deadline {
            a.run(&["delete", "-f", id]).ok();
            panic!("no verdict from the echo program");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (inode, local port) of inet sockets.
type InetSockets = Vec<(u64, u16)>;

/// Socket inodes the process holds (its /proc/<pid>/fd links).
fn socket_inodes(pid: i64) -> HashSet<u64> {
    let mut out = HashSet::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(l) = std::fs::read_link(e.path()) {
            let l = l.to_string_lossy().into_owned();
            if let Some(n) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                out.insert(n.parse().unwrap());
            }
        }
    }
    out
}

/// Inodes and local ports of the inet sockets in `pid`'s network
/// namespace (the host's view: /proc/<pid>/net/{tcp,tcp6,udp,udp6}).
fn inet_sockets(pid: i64) -> InetSockets {
    let mut out = Vec::new();
    for f in ["tcp", "tcp6", "udp", "udp6"] {
        let t = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        for line in t.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
                .unwrap_or(0);
            out.push((cols[9].parse().unwrap_or(0), port));
        }
    }
    out
}

/// Runs the echo at the userspace level; returns (port, the kernel's
/// inet sockets as the host sees them, every inet socket of its network
/// namespace).
fn run_echo(network: Option<&str>, prefix: &str) -> (u16, InetSockets, InetSockets) {
    let a = atoll();
    let out = tempfile::tempdir().unwrap();
    let b = echo_bundle(out.path(), network);
    let id = id(prefix);
    let pid = start_detached(&a, "userspace", &b, &id);
    let port = verdict(out.path(), &a, &id);
    // The program now holds a listener, a connection pair and two UDP
    // sockets for 30 s.
    let mine = socket_inodes(pid);
    let all = inet_sockets(pid);
    let kernels = all
        .iter()
        .copied()
        .filter(|(ino, _)| mine.contains(ino))
        .collect();
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    (port, kernels, all)
}

#[test]
fn sandbox_network_echoes_over_loopback_without_host_sockets() {
    let (port, kernels, all) = run_echo(Some("sandbox"), "netsb");
    assert!(port > 0);
    assert!(
        kernels.is_empty(),
        "the kernel holds host inet sockets: {kernels:?}"
    );
    assert!(
        !all.iter().any(|(_, p)| *p == port),
        "port {port} is on the host's stack: {all:?}"
    );
}

/// The control: in host mode the same program's sockets are host sockets
/// the kernel holds, so the check above can see them.
#[test]
fn host_network_echo_uses_host_sockets() {
    let (port, kernels, _) = run_echo(None, "nethost");
    assert!(
        kernels.iter().any(|(_, p)| *p == port),
        "the listener on {port} is not a host socket of the kernel: {kernels:?}"
    );
}

#[test]
fn unknown_network_is_refused() {
    let a = atoll();
    let b = busybox().args(&["/bin/true"]).build();
    let id = id("netbad");
    let out = a.run(&[
        "--isolation",
        "userspace",
        "--network",
        "bridge",
        "run",
        "-b",
        b.path_str(),
        &id,
    ]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("unknown network \"bridge\""),
        "{out:#?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:#?}");
    leaks(&a, &id, &b).assert_clean();
    // The native level has no stack of its own to offer.
    let out = a.run(&[
        "--isolation",
        "native",
        "--network",
        "sandbox",
        "run",
        "-b",
        b.path_str(),
        &id,
    ]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains("network sandbox needs the userspace level"),
        "{out:#?}"
    );
    leaks(&a, &id, &b).assert_clean();
}

/// A real client and server in sandbox mode: Python's http.server in a
/// thread and urllib fetching from it over 127.0.0.1 (getaddrinfo,
/// SO_REUSEADDR, selectors, socket timeouts); /proc/net shows the
/// stack's sockets.
#[test]
fn python_http_over_sandbox_loopback() {
    let a = atoll();
    let script = r#"
import http.server, threading, urllib.request
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
for i in range(20):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/etc/hostname", timeout=10).read()
print("fetched", len(body) > 0, flush=True)
# The stack's /proc/net/tcp: the listener, 127.0.0.1 in the kernel's byte order.
listening = f"0100007F:{port:04X} 00000000:0000 0A"
print("proc", listening in open("/proc/net/tcp").read(), "lo" in open("/proc/net/dev").read(), flush=True)
srv.shutdown()
"#;
    let b = debian()
        .annotation("dev.atoll.network", "sandbox")
        .args(&["/usr/bin/python3", "-c", script])
        .build();
    let out = run_at(&a, "userspace", &b, "netpy");
    out.ok();
    assert!(out.stdout.contains("fetched True"), "{out:#?}");
    assert!(out.stdout.contains("proc True True"), "{out:#?}");
}

/// In sandbox mode the kernel's seccomp filter has no socket(2): even a
/// compromised kernel cannot open a host socket. The probe makes the
/// call after confinement and must be killed for it; in host mode the
/// call is on the allowlist (the probe refuses to make it).
#[test]
fn sandbox_network_kernel_has_no_socket_syscall() {
    let a = atoll();
    let b = busybox().args(&["true"]).build();
    let id2 = id("netprobe-host");
    let id = id("netprobe");
    let log = b.path.join("atoll-socket.log");
    let out = a.run(&[
        "--log",
        log.to_str().unwrap(),
        "--isolation",
        "userspace",
        "--network",
        "sandbox",
        "run",
        "--debug-confinement",
        "socket",
        "-b",
        b.path_str(),
        &id,
    ]);
    // SIGSYS: the host killed the kernel before the syscall ran.
    assert_eq!(out.code, 128 + 31, "{out:#?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("killed by its seccomp filter: host syscall socket (41)"),
        "{text}\n{out:#?}"
    );
    leaks(&a, &id, &b).assert_clean();
    let out = a.run(&[
        "--isolation",
        "userspace",
        "run",
        "--debug-confinement",
        "socket",
        "-b",
        b.path_str(),
        &id2,
    ]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("socket is on the kernel's allowlist"),
        "{out:#?}"
    );
    leaks(&a, &id2, &b).assert_clean();
}
