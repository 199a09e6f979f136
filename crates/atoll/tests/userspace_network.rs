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

/// The echo program's bundle; `node_netns`: without a network namespace
/// of its own (it shares the node's, as `docker run --network host`).
fn echo_bundle(out: &Path, network: Option<&str>, node_netns: bool) -> Bundle {
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
    if node_netns {
        b = b.modify(|spec| {
            let mut l = spec.linux().clone().unwrap();
            let list = l.namespaces().clone().unwrap_or_default();
            l.set_namespaces(Some(
                list.into_iter()
                    .filter(|ns| ns.typ() != oci_spec::runtime::LinuxNamespaceType::Network)
                    .collect(),
            ));
            spec.set_linux(Some(l));
        });
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

/// (inode, local port, a TCP listener) of inet sockets.
type InetSockets = Vec<(u64, u16, bool)>;

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
            // TCP state 0A is LISTEN.
            let listening = f.starts_with("tcp") && cols[3] == "0A";
            out.push((cols[9].parse().unwrap_or(0), port, listening));
        }
    }
    out
}

/// Runs the echo at the userspace level; returns (port, the kernel's
/// inet sockets as the host sees them, every inet socket of its network
/// namespace).
fn run_echo(
    network: Option<&str>,
    node_netns: bool,
    prefix: &str,
) -> (u16, InetSockets, InetSockets) {
    let a = atoll();
    let out = tempfile::tempdir().unwrap();
    let b = echo_bundle(out.path(), network, node_netns);
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
        .filter(|(ino, _, _)| mine.contains(ino))
        .collect();
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    (port, kernels, all)
}

#[test]
fn sandbox_network_echoes_over_loopback_without_host_sockets() {
    let (port, kernels, all) = run_echo(Some("sandbox"), false, "netsb");
    assert!(port > 0);
    assert!(
        kernels.is_empty(),
        "the kernel holds host inet sockets: {kernels:?}"
    );
    assert!(
        !all.iter().any(|(_, p, _)| *p == port),
        "port {port} is on the host's stack: {all:?}"
    );
}

/// The control: in host mode the same program's sockets are host sockets
/// the kernel holds, so the check above can see them.
#[test]
fn host_network_echo_uses_host_sockets() {
    let (port, kernels, _) = run_echo(Some("host"), false, "nethost");
    assert!(
        kernels.iter().any(|(_, p, _)| *p == port),
        "the listener on {port} is not a host socket of the kernel: {kernels:?}"
    );
}

/// The default of the userspace level is the sandbox's own stack for a
/// container with a network namespace of its own...
#[test]
fn default_network_is_the_sandbox_stack() {
    let (port, kernels, all) = run_echo(None, false, "netdef");
    assert!(
        kernels.is_empty(),
        "the kernel holds host inet sockets: {kernels:?}"
    );
    assert!(
        !all.iter().any(|(_, p, _)| *p == port),
        "port {port} is on the host's stack: {all:?}"
    );
}

/// ...and the host's for one sharing the node's network namespace (its
/// interfaces are the node's: taking them over would cut the node off),
/// unless it asks for the sandbox's itself (then loopback only, inside
/// the kernel: no interface of the node is taken over).
#[test]
fn a_container_in_the_node_network_namespace_stays_on_the_host_stack() {
    let (port, kernels, _) = run_echo(None, true, "netnode");
    assert!(
        kernels.iter().any(|(_, p, _)| *p == port),
        "the listener on {port} is not a host socket of the kernel: {kernels:?}"
    );
    let (port, kernels, all) = run_echo(Some("sandbox"), true, "netnodesb");
    assert!(kernels.is_empty(), "{kernels:?}");
    // The node's namespace holds other programs' sockets too: other
    // tests' TIME_WAIT client ports are in the same 32768-60999 range the
    // sandbox stack picks its port from (one collided in a CI run). Only
    // a listener on the port would be the sandbox's leaking onto the host.
    assert!(
        !all.iter().any(|(_, p, listening)| *listening && *p == port),
        "port {port} listens on the host's stack: {all:?}"
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
        "--network",
        "host",
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

/// A network namespace with a veth pair, as a CNI plugin makes one: the
/// host's end in atoll's own namespace (10.201+k.N.1/24, fd00:201:k:N::1),
/// `eth0` inside (…2) with a default route through the host's end.
/// Removed on drop.
struct Veth {
    ns: String,
    host_if: String,
    host4: String,
    host6: String,
    inner4: String,
    inner6: String,
}

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Veth {
    fn new() -> Veth {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let n = pid % 250 + 1;
        let v = Veth {
            ns: format!("atoll-link-{pid}-{k}"),
            host_if: format!("atv{}{k}", pid % 100000),
            host4: format!("10.{}.{n}.1", 201 + k),
            host6: format!("fd00:201:{k}:{n}::1"),
            inner4: format!("10.{}.{n}.2", 201 + k),
            inner6: format!("fd00:201:{k}:{n}::2"),
        };
        ip(&["netns", "add", &v.ns]);
        ip(&[
            "link", "add", &v.host_if, "type", "veth", "peer", "name", "eth0", "netns", &v.ns,
        ]);
        ip(&["addr", "add", &format!("{}/24", v.host4), "dev", &v.host_if]);
        ip(&[
            "addr",
            "add",
            &format!("{}/64", v.host6),
            "dev",
            &v.host_if,
            "nodad",
        ]);
        ip(&["link", "set", &v.host_if, "up"]);
        let inner = |args: &[&str]| ip(&[&["-n", &v.ns], args].concat());
        inner(&["addr", "add", &format!("{}/24", v.inner4), "dev", "eth0"]);
        inner(&[
            "addr",
            "add",
            &format!("{}/64", v.inner6),
            "dev",
            "eth0",
            "nodad",
        ]);
        inner(&["link", "set", "eth0", "up"]);
        inner(&["route", "add", "default", "via", &v.host4]);
        v
    }

    fn netns_path(&self) -> std::path::PathBuf {
        Path::new("/var/run/netns").join(&self.ns)
    }

    /// `ip -o addr` of the host's stack on the container's side.
    fn inner_addrs(&self) -> String {
        ip(&["-n", &self.ns, "-o", "addr", "show", "dev", "eth0"])
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// A server that reads a request to its end and answers with what it
/// saw, once.
fn answer_once(l: std::net::TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut c, peer) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = String::new();
        c.read_to_string(&mut req).unwrap();
        write!(c, "pong to {req} from {}", peer.ip()).unwrap();
    })
}

/// The link (issue 16 item 2): in a namespace CNI-style networked by a
/// veth, `--network sandbox` takes the interface over. The workload
/// reaches servers on the host's end over IPv4 and IPv6 TCP and a UDP
/// responder there; the host reaches a server in the sandbox; the kernel
/// holds packet sockets and no inet socket; the host's stack in the
/// namespace no longer has the addresses (nothing there answers for
/// them but the sandbox).
#[test]
fn sandbox_network_takes_over_the_container_veth() {
    use std::io::Read;
    let v = Veth::new();
    let l4 = std::net::TcpListener::bind((v.host4.as_str(), 0)).unwrap();
    let port = l4.local_addr().unwrap().port();
    let l6 = std::net::TcpListener::bind((v.host6.as_str(), port)).unwrap();
    let udp = std::net::UdpSocket::bind((v.host4.as_str(), 0)).unwrap();
    let uport = udp.local_addr().unwrap().port();
    let servers = [answer_once(l4), answer_once(l6)];
    let udp_server = std::thread::spawn(move || {
        udp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut b = [0u8; 64];
        let (n, from) = udp.recv_from(&mut b).unwrap();
        let reply = format!("answer to {}", String::from_utf8_lossy(&b[..n]));
        udp.send_to(reply.as_bytes(), from).unwrap();
    });
    let listen_port = 20000 + (std::process::id() % 20000) as u16;

    let a = atoll();
    let out = tempfile::tempdir().unwrap();
    let bin = cprog::compile(
        "link_probe",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/link_probe.c"
        ))
        .unwrap(),
        &[],
    );
    let netns = v.netns_path();
    let (port_s, uport_s, lport_s) = (port.to_string(), uport.to_string(), listen_port.to_string());
    let b = busybox()
        .bind(out.path(), "/out", false)
        .annotation("dev.atoll.network", "sandbox")
        .args(&[
            "/probe",
            "/out/result",
            &v.host4,
            &v.host6,
            &port_s,
            &uport_s,
            &lport_s,
        ])
        .modify(|spec| {
            let mut l = spec.linux().clone().unwrap();
            let mut list = l.namespaces().clone().unwrap_or_default();
            for ns in &mut list {
                if ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                    ns.set_path(Some(netns.clone()));
                }
            }
            l.set_namespaces(Some(list));
            spec.set_linux(Some(l));
        })
        .build();
    cprog::install(&bin, &b.rootfs, "/probe");
    let id = id("netlink");
    let pid = start_detached(&a, "userspace", &b, &id);
    let result = || std::fs::read_to_string(out.path().join("result")).unwrap_or_default();
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = result();
            if r.lines().any(|l| l.starts_with(what)) {
                return r;
            }
            if r.contains("fail") || Instant::now() > deadline {
                let log = std::fs::read_to_string(a.state_dir(&id).join("sandbox.log"))
                    .unwrap_or_default();
                a.run(&["delete", "-f", &id]).ok();
                panic!("waiting for {what:?}: {r}\nsandbox log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let r = wait_for("listening");
    assert!(
        r.contains(&format!("tcp4 pong to ping from {}", v.inner4)),
        "{r}"
    );
    assert!(
        r.contains(&format!("tcp6 pong to ping from {}", v.inner6)),
        "{r}"
    );
    assert!(r.contains("udp answer to query"), "{r}");
    // /proc/net/route: the default route through the host's end, as the
    // namespace had it (little-endian hex, as Linux prints it).
    let hex = |a: &str| {
        let ip: std::net::Ipv4Addr = a.parse().unwrap();
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    };
    assert!(
        r.lines().any(|l| l.starts_with(&format!(
            "/proc/net/route: eth0\t00000000\t{}\t0003",
            hex(&v.host4)
        ))),
        "{r}"
    );
    let inner6_hex: String = v
        .inner6
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        r.lines().any(
            |l| l.starts_with(&format!("/proc/net/if_inet6: {inner6_hex} ")) && l.ends_with("eth0")
        ),
        "{r}"
    );
    // The host reaches the sandbox's server through the same link.
    let mut c = std::net::TcpStream::connect_timeout(
        &format!("{}:{listen_port}", v.inner4).parse().unwrap(),
        Duration::from_secs(20),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut hello = String::new();
    c.read_to_string(&mut hello).unwrap();
    assert_eq!(hello, format!("hello {} from the sandbox", v.host4));
    wait_for("served");
    // The kernel: packet sockets on the link, no inet socket.
    let mine = socket_inodes(pid);
    let inet: Vec<_> = inet_sockets(pid)
        .into_iter()
        .filter(|(ino, _, _)| mine.contains(ino))
        .collect();
    assert!(inet.is_empty(), "the kernel holds inet sockets: {inet:?}");
    let packet = std::fs::read_to_string(format!("/proc/{pid}/net/packet")).unwrap();
    let packets = packet
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .filter(|ino| mine.contains(ino))
        .count();
    assert_eq!(packets, 1, "the kernel's packet sockets:\n{packet}");
    // The host's stack let go of the addresses.
    let addrs = v.inner_addrs();
    assert!(
        !addrs.contains(&v.inner4) && !addrs.contains(&v.inner6),
        "{addrs}"
    );
    for s in servers {
        s.join().unwrap();
    }
    udp_server.join().unwrap();
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

/// The netns bundle of a program, in the veth's namespace.
fn in_netns(
    b: atoll_testkit::BundleBuilder,
    netns: std::path::PathBuf,
) -> atoll_testkit::BundleBuilder {
    b.modify(move |spec| {
        let mut l = spec.linux().clone().unwrap();
        let mut list = l.namespaces().clone().unwrap_or_default();
        for ns in &mut list {
            if ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                ns.set_path(Some(netns.clone()));
            }
        }
        l.set_namespaces(Some(list));
        spec.set_linux(Some(l));
    })
}

/// Tenant network policy (issue 16 items 3/4): a tenant with egress
/// rules runs on the sandbox's stack without asking (and is refused, in
/// one line, when it asks for the host's); its rules and the built-in
/// denials (metadata, the node's own addresses) refuse connects and sends
/// with EPERM while what it allows gets through; every refusal is an
/// audit record at delete with tenant, container, destination and rule.
#[test]
fn tenant_egress_rules_hold_in_the_sandbox_stack() {
    let v = Veth::new();
    let allowed = std::net::TcpListener::bind((v.host4.as_str(), 0)).unwrap();
    let pa = allowed.local_addr().unwrap().port();
    let (pd, po) = (pa.wrapping_add(1).max(1), pa.wrapping_add(2).max(1));
    let accepter = std::thread::spawn(move || {
        let _ = allowed.accept();
    });
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[tenants.walled]\n\
             egress_allow = [\"0.0.0.0/0\", {{ cidr = \"{h}/32\", ports = \"{pa}\", protocol = \"tcp\" }}]\n\
             egress_deny = [{{ cidr = \"{h}/32\", ports = \"{pd}\", protocol = \"tcp\" }}]\n",
            h = v.host4
        ),
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = atoll().with_global(&[
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let out = tempfile::tempdir().unwrap();
    let bin = cprog::compile(
        "egress_probe",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/egress_probe.c"
        ))
        .unwrap(),
        &[],
    );
    let (pa_s, pd_s, po_s) = (pa.to_string(), pd.to_string(), po.to_string());
    let b = in_netns(
        busybox()
            .bind(out.path(), "/out", false)
            .annotation("dev.atoll.tenant", "walled")
            .args(&[
                "/probe",
                "/out/result",
                "tcp",
                &v.host4,
                &pa_s,
                "tcp",
                &v.host4,
                &pd_s,
                "tcp",
                &v.host4,
                &po_s,
                "tcp",
                "169.254.169.254",
                "80",
                "udp",
                "169.254.169.254",
                "53",
            ]),
        v.netns_path(),
    )
    .build();
    cprog::install(&bin, &b.rootfs, "/probe");

    // Asking for the host's stack is refused, in one line, nothing left.
    let id0 = id("egress-host");
    let o = a.run(&[
        "--isolation",
        "userspace",
        "--network",
        "host",
        "run",
        "-b",
        b.path_str(),
        &id0,
    ]);
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr
            .contains("tenant \"walled\": rule egress_allow forbids network=host"),
        "{o:#?}"
    );
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o:#?}");
    leaks(&a, &id0, &b).assert_clean();

    let id = id("egress");
    start_detached(&a, "userspace", &b, &id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = std::fs::read_to_string(out.path().join("result")).unwrap_or_default();
        if r.contains("done") {
            break r;
        }
        if Instant::now() > deadline {
            a.run(&["delete", "-f", &id]).ok();
            panic!("no verdict: {r}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let eperm = format!("errno {}", libc::EPERM);
    let want = [
        format!("tcp {} {pa} ok", v.host4),
        format!("tcp {} {pd} {eperm}", v.host4),
        format!("tcp {} {po} {eperm}", v.host4),
        format!("tcp 169.254.169.254 80 {eperm}"),
        format!("udp 169.254.169.254 53 {eperm}"),
    ];
    for w in &want {
        assert!(r.lines().any(|l| l == w), "want {w:?} in\n{r}");
    }
    accepter.join().unwrap();
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["event"] == "egress_refused" && r["container"] == id)
        .collect();
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["tenant"], "walled");
            assert_eq!(r["count"], 1);
            (
                r["destination"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (dst, rule) in [
        (
            format!("tcp {}:{pd}", v.host4),
            format!("egress_deny[0] {}/32 tcp {pd}", v.host4),
        ),
        (
            format!("tcp {}:{po}", v.host4),
            format!("builtin: node address {}", v.host4),
        ),
        (
            "tcp 169.254.169.254:80".to_string(),
            "builtin: metadata 169.254.169.254".to_string(),
        ),
        (
            "udp 169.254.169.254:53".to_string(),
            "builtin: metadata 169.254.169.254".to_string(),
        ),
    ] {
        assert!(
            seen.contains(&(dst.clone(), rule.clone())),
            "{dst} {rule}: {seen:?}"
        );
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// `ip -n NS -o link show eth0`: (index, MAC) of the container's end.
fn inner_link(v: &Veth) -> (u32, String) {
    let l = ip(&["-n", &v.ns, "-o", "link", "show", "eth0"]);
    let index = l.split(':').next().unwrap().trim().parse().unwrap();
    let mac = l
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_string();
    (index, mac)
}

/// Issue 16 items 1 to 3: inside the sandbox, NETLINK_ROUTE (busybox
/// `ip addr/route/link`, glibc's getifaddrs and if_nameindex, iproute2's
/// MSG_PEEK|MSG_TRUNC sizing) and the SIOCGIF* ioctls answer from the
/// stack's own state, which is what the namespace was configured with;
/// changes are refused (EPERM: the workload has no CAP_NET_ADMIN); ping
/// sockets echo with loopback and the link's peer.
#[test]
fn sandbox_network_answers_netlink_and_ifreq_from_its_stack() {
    let v = Veth::new();
    let (index, mac) = inner_link(&v);
    let a = atoll();
    let bin = cprog::compile(
        "netlink_probe",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/netlink_probe.c"
        ))
        .unwrap(),
        &[],
    );
    let script = format!(
        "/probe eth0; echo ---; ip addr; echo ---; ip route; echo ---; ip link; \
         echo ---; ip addr add 10.9.9.9/24 dev eth0 2>&1; echo rc=$?; echo ---; \
         /ping 127.0.0.1 ::1 {} {}; ping -c 1 127.0.0.1 2>&1; true",
        v.host4, v.host6
    );
    let b = in_netns(
        busybox()
            .annotation("dev.atoll.network", "sandbox")
            .args(&["sh", "-c", &script]),
        v.netns_path(),
    )
    .build();
    cprog::install(&bin, &b.rootfs, "/probe");
    let ping_bin = cprog::compile(
        "ping_probe",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/ping_probe.c"
        ))
        .unwrap(),
        &[],
    );
    cprog::install(&ping_bin, &b.rootfs, "/ping");
    let o = run_at(&a, "userspace", &b, "nlroute");
    assert_eq!(o.code, 0, "{o:#?}");
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 6, "{o:#?}");
    let (probe, addr, route, link, add, ping) =
        (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
    let net = {
        let mut p: Vec<&str> = v.inner4.split('.').collect();
        p[3] = "0";
        p.join(".")
    };
    let brd = {
        let mut p: Vec<&str> = v.inner4.split('.').collect();
        p[3] = "255";
        p.join(".")
    };
    for want in [
        "nl unbound 0".to_string(),
        "nl bound".into(),
        "nl pids ok".into(),
        "nl trunc ok".into(),
        format!("nl newaddr {}", libc::EPERM),
        format!("nl audit {}", libc::EPROTONOSUPPORT),
        "ifa lo packet".into(),
        "ifa eth0 packet".into(),
        "ifa lo inet 127.0.0.1 255.0.0.0".into(),
        format!("ifa eth0 inet {} 255.255.255.0", v.inner4),
        "ifa lo inet6 ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
        format!("ifa eth0 inet6 {} ffff:ffff:ffff:ffff::", v.inner6),
        "ifindex 1 lo".into(),
        format!("ifindex {index} eth0"),
        "ioctl conf lo 127.0.0.1".into(),
        format!("ioctl conf eth0 {}", v.inner4),
        "ioctl conflen 2".into(),
        format!("ioctl index {index}"),
        "ioctl name eth0".into(),
        format!("ioctl addr {}", v.inner4),
        "ioctl netmask 255.255.255.0".into(),
        format!("ioctl brd {brd}"),
        "ioctl flags up=1 loopback=0 running=1".into(),
        "ioctl mtu 1500".into(),
        format!("ioctl hwaddr 1 {mac}"),
        format!("ioctl set {}", libc::EPERM),
        format!("ioctl missing {}", libc::ENODEV),
        "done".into(),
    ] {
        assert!(
            probe.lines().any(|l| l == want),
            "want {want:?} in\n{probe}"
        );
    }
    assert!(
        probe.lines().any(|l| l.starts_with("nl peek ok ")),
        "{probe}"
    );
    // busybox ip, through the same socket.
    assert!(
        addr.contains(&format!("inet {}/24 brd {brd} scope global eth0", v.inner4)),
        "{addr}"
    );
    assert!(
        addr.contains(&format!("inet6 {}/64 scope global", v.inner6)),
        "{addr}"
    );
    assert!(addr.contains("inet 127.0.0.1/8 scope host lo"), "{addr}");
    assert!(
        addr.contains(&format!("link/ether {mac} brd ff:ff:ff:ff:ff:ff")),
        "{addr}"
    );
    assert!(
        route.contains(&format!("default via {} dev eth0", v.host4)),
        "{route}"
    );
    assert_eq!(
        route
            .matches(&format!("{net}/24 dev eth0 scope link  src {}", v.inner4))
            .count(),
        1,
        "{route}"
    );
    assert!(
        link.contains("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536"),
        "{link}"
    );
    assert!(
        link.contains(&format!(
            "{index}: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"
        )),
        "{link}"
    );
    assert!(add.contains("Operation not permitted"), "{add}");
    assert!(!add.contains("rc=0"), "{add}");
    // The host's namespace was not changed by the refused request.
    assert!(!v.inner_addrs().contains("10.9.9.9"));
    // Item 3: ping sockets reach loopback and the host's end of the
    // link, IPv4 and IPv6. busybox's ping wants a raw socket (it has no
    // fallback to ping sockets), which stays refused.
    for t in ["127.0.0.1", "::1", v.host4.as_str(), v.host6.as_str()] {
        assert!(ping.contains(&format!("ping {t} ok")), "{ping}");
    }
    assert!(ping.contains("permission denied"), "{ping}");
}

/// Python's socket.if_nameindex() and `hostname -I` (glibc getifaddrs
/// over netlink) in a Debian userspace sandbox see the stack's interfaces
/// and addresses; in host mode AF_NETLINK stays refused (the kernel
/// opens no host netlink socket for the workload).
#[test]
fn sandbox_network_glibc_interface_lists() {
    let v = Veth::new();
    let (index, _) = inner_link(&v);
    let a = atoll();
    let script = "import socket\nprint(sorted(socket.if_nameindex()))\n";
    let b = in_netns(
        debian().annotation("dev.atoll.network", "sandbox").args(&[
            "sh",
            "-c",
            &format!("python3 -c '{script}'; hostname -I"),
        ]),
        v.netns_path(),
    )
    .build();
    let o = run_at(&a, "userspace", &b, "nlglibc");
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stdout
            .contains(&format!("[(1, 'lo'), ({index}, 'eth0')]")),
        "{o:#?}"
    );
    let last = o.stdout.lines().last().unwrap_or_default();
    let mut got: Vec<&str> = last.split_whitespace().collect();
    got.sort();
    let mut want = vec![v.inner4.as_str(), v.inner6.as_str()];
    want.sort();
    assert_eq!(got, want, "{o:#?}");

    let host = debian()
        .annotation("dev.atoll.network", "host")
        .args(&["python3", "-c", "import socket\ntry:\n socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)\nexcept OSError as e:\n print('errno', e.errno)\n"])
        .build();
    let o = run_at(&a, "userspace", &host, "nlhost");
    assert!(
        o.stdout.contains(&format!("errno {}", libc::EAFNOSUPPORT)),
        "{o:#?}"
    );
}

/// Issue 16 item 4: egress refusals reach the audit trail even when the
/// sandbox is killed from outside atoll (kill -9 of the kernel, no final
/// counters): the kernel logs its counters durably when a refusal
/// happens, and delete turns them into `egress_refused` records.
#[test]
fn egress_refusals_survive_a_sandbox_killed_from_outside() {
    let v = Veth::new();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("[tenants.killed]\negress_deny = [\"{}/32\"]\n", v.host4),
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = atoll().with_global(&[
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let out = tempfile::tempdir().unwrap();
    let bin = cprog::compile(
        "egress_probe",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/egress_probe.c"
        ))
        .unwrap(),
        &[],
    );
    let b = in_netns(
        busybox()
            .bind(out.path(), "/out", false)
            .annotation("dev.atoll.tenant", "killed")
            .args(&[
                "/probe",
                "/out/result",
                "tcp",
                &v.host4,
                "9",
                "udp",
                "169.254.169.254",
                "53",
            ]),
        v.netns_path(),
    )
    .build();
    cprog::install(&bin, &b.rootfs, "/probe");
    let id = id("egress-kill");
    let pid = start_detached(&a, "userspace", &b, &id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = std::fs::read_to_string(out.path().join("result")).unwrap_or_default();
        if r.contains("done") {
            break r;
        }
        if Instant::now() > deadline {
            a.run(&["delete", "-f", &id]).ok();
            panic!("no verdict: {r}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let eperm = format!("errno {}", libc::EPERM);
    assert!(r.contains(&format!("tcp {} 9 {eperm}", v.host4)), "{r}");
    assert!(
        r.contains(&format!("udp 169.254.169.254 53 {eperm}")),
        "{r}"
    );
    // Killed outside atoll: the kernel writes nothing more.
    // SAFETY: a signal to the sandbox's kernel, a process this test made.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    let seen: Vec<(String, String)> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "egress_refused" && r["container"] == id)
        .map(|r| {
            assert_eq!(r["tenant"], "killed");
            assert_eq!(r["count"], 1);
            (
                r["destination"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .any(|(d, rule)| *d == format!("tcp {}:9", v.host4)
                && rule.starts_with(&format!("egress_deny[0] {}/32", v.host4))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            "udp 169.254.169.254:53".to_string(),
            "builtin: metadata 169.254.169.254".to_string()
        )),
        "{seen:?}"
    );
}

/// `exec` into a sandbox-mode container: the new process joins the same
/// application kernel, so it sees the same stack. It fetches a page from
/// the first process's server on 127.0.0.1 (which exists nowhere but in
/// the sandbox's stack: the host's stack in the namespace has no such
/// listener, the kernel no inet socket), sees the listener in
/// /proc/net/tcp, and cannot bind the same port again.
#[test]
fn exec_joins_the_sandbox_stack() {
    let a = atoll();
    let b = busybox()
        .annotation("dev.atoll.network", "sandbox")
        .args(&["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"])
        .build();
    std::fs::create_dir_all(b.rootfs.join("www")).unwrap();
    std::fs::write(b.rootfs.join("www/index.html"), "served by pid 1\n").unwrap();
    let id = id("netexec");
    let pid = start_detached(&a, "userspace", &b, &id);
    let fetch = a.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/index.html && exit 0; sleep 0.1; done; exit 1",
    ]);
    let tcp = a.run(&["exec", &id, "cat", "/proc/net/tcp"]);
    let again = a.run(&[
        "exec",
        &id,
        "httpd",
        "-f",
        "-p",
        "127.0.0.1:8080",
        "-h",
        "/www",
    ]);
    let mine = socket_inodes(pid);
    let all = inet_sockets(pid);
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    fetch.ok();
    assert_eq!(fetch.stdout, "served by pid 1\n", "{fetch:#?}");
    tcp.ok();
    assert!(
        tcp.stdout.contains("0100007F:1F90 00000000:0000 0A"),
        "{tcp:#?}"
    );
    assert_ne!(again.code, 0, "{again:#?}");
    assert!(again.stderr.contains("in use"), "{again:#?}");
    assert!(
        !all.iter()
            .any(|(ino, p, _)| *p == 8080 || mine.contains(ino)),
        "host inet sockets: {all:?}"
    );
}

/// CPU ticks (user + system) the host has charged to `pid` so far.
fn cpu_ticks(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's parenthesised name: field 14 (utime) is the
    // 12th, field 15 (stime) the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// An edge-triggered epoll on a writable stack socket (what nginx does
/// with every keep-alive connection) sleeps until something changes: the
/// kernel must not spin while the workload waits. The wait used to test
/// the socket's level (writable) and wake the waiter at once, which
/// found no new edge and waited again: a busy loop that cost more CPU
/// than the requests. The edge then still arrives when data does.
#[test]
fn edge_triggered_epoll_on_a_writable_socket_sleeps() {
    let a = atoll();
    let out = tempfile::tempdir().unwrap();
    let script = r#"
import select, socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLOUT | select.EPOLLET)
r = open("/out/result", "w")
first = ep.poll(5)
open("/out/waiting", "w").close()
idle = ep.poll(4)
c.send(b"x")
edge = ep.poll(5)
r.write(f"first {[e & select.EPOLLOUT != 0 for _, e in first]}\n")
r.write(f"idle {idle}\n")
r.write(f"edge {[e & select.EPOLLIN != 0 for _, e in edge]}\n")
r.close()
"#;
    let b = debian()
        .annotation("dev.atoll.network", "sandbox")
        .bind(out.path(), "/out", false)
        .args(&["/usr/bin/python3", "-c", script])
        .build();
    let id = id("netet");
    let pid = start_detached(&a, "userspace", &b, &id);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.path().join("waiting").exists() {
        if Instant::now() > deadline {
            a.run(&["delete", "-f", &id]).ok();
            panic!("the workload never reached its wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - before;
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let r = std::fs::read_to_string(out.path().join("result")).unwrap_or_default();
        if r.lines().count() == 3 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    assert_eq!(result, "first [True]\nidle []\nedge [True]\n");
    // 2 s of waiting: a spinning kernel is charged up to 200 ticks (its
    // fair share of this shared machine, at least a few dozen).
    assert!(
        spent < 20,
        "the kernel spent {spent} ticks while the workload waited"
    );
}

/// A DNS answer to the query in `q` (its header and one question):
/// `addr` for an A question, no answer for any other type.
fn dns_answer(q: &[u8], addr: [u8; 4]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut end = 12;
    while *q.get(end)? != 0 {
        end += 1 + q[end] as usize;
    }
    let qtype = u16::from_be_bytes([*q.get(end + 1)?, *q.get(end + 2)?]);
    let question = q.get(12..end + 5)?;
    let is_a = qtype == 1;
    let mut r = Vec::new();
    r.extend_from_slice(&q[..2]); // id
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, is_a as u8, 0, 0, 0, 0]);
    r.extend_from_slice(question);
    if is_a {
        // The question's name (pointer), A, IN, TTL 60, 4 bytes.
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&addr);
    }
    Some(r)
}

/// A UDP DNS query from the sandbox's stack to a resolver on the host's
/// end of the veth (issue 16's tests): busybox's nslookup resolves a
/// name through a server on port 53 there.
#[test]
fn a_dns_query_reaches_a_resolver_on_the_host() {
    let v = Veth::new();
    let udp = std::net::UdpSocket::bind((v.host4.as_str(), 53)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let resolver = std::thread::spawn(move || {
        let mut asked = Vec::new();
        let mut b = [0u8; 512];
        // nslookup asks for A and AAAA; stop at the first quiet second
        // after an answer.
        while let Ok((n, from)) = udp.recv_from(&mut b) {
            if let Some(r) = dns_answer(&b[..n], [192, 0, 2, 7]) {
                udp.send_to(&r, from).unwrap();
                asked.push(n);
            }
            udp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        }
        asked.len()
    });
    let a = atoll();
    let b = in_netns(
        busybox().annotation("dev.atoll.network", "sandbox").args(&[
            "/bin/nslookup",
            "atoll-test.example",
            &v.host4,
        ]),
        v.netns_path(),
    )
    .build();
    let out = run_at(&a, "userspace", &b, "dns");
    let queries = resolver.join().unwrap();
    out.ok();
    assert!(queries >= 1, "{out:#?}");
    assert!(out.stdout.contains("atoll-test.example"), "{out:#?}");
    assert!(out.stdout.contains("192.0.2.7"), "{out:#?}");
}
