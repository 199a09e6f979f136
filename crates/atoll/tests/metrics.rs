//! `atoll metrics`: scraped over HTTP and with --once while containers of
//! two tenants run, one native and one userspace.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition (label values here have no escapes).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (head, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The value of `name` with (at least) `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name}{labels:?} in {samples:#?}"))
        .value
}

fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn metrics_of_two_tenants_native_and_userspace() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[tenants.alpha]\nprivileged = false\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = atoll().with_global(&[
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let native = busybox()
        .sh("while true; do echo x > /dev/null; sleep 0.05; done")
        .annotation("dev.atoll.tenant", "alpha")
        .memory_limit(256 << 20)
        .build();
    let sandboxed = busybox()
        .sh("mount -t tmpfs none /tmp 2>/dev/null; while true; do sleep 0.05; done")
        .annotation("io.kubernetes.pod.namespace", "beta")
        .build();
    let (n_id, u_id) = (id("m-native"), id("m-user"));
    a.run(&["run", "-d", "-b", native.path_str(), &n_id]).ok();
    a.run(&[
        "--isolation",
        "userspace",
        "run",
        "-d",
        "-b",
        sandboxed.path_str(),
        &u_id,
    ])
    .ok();
    // One refusal for the refusals series.
    let refused = busybox()
        .args(&["true"])
        .annotation("dev.atoll.tenant", "alpha")
        .modify(|s| {
            let mut p = s.process().clone().unwrap();
            p.set_capabilities(None);
            s.set_process(Some(p));
        })
        .build();
    let r_id = id("m-refused");
    a.run(&["run", "-b", refused.path_str(), &r_id])
        .fails_with("rule privileged forbids process.capabilities=absent");

    // Served over HTTP on a port of its own choosing.
    let mut server = a
        .command()
        .args(["metrics", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("atoll metrics: serving http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    // The sandbox's workload makes syscalls all the time: wait until the
    // counters show the mount it tried.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (head, body) = loop {
        let (head, body) = http_get(&addr, "/metrics");
        if body.contains("atoll_sandbox_syscalls_refused_total") || Instant::now() > deadline {
            break (head, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n"));
    let s = parse(&body);
    let cn = [("container", n_id.as_str())];
    let cu = [("container", u_id.as_str())];

    assert_eq!(
        value(
            &s,
            "atoll_container_info",
            &[
                ("container", &n_id),
                ("tenant", "alpha"),
                ("level", "native"),
                ("status", "running")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "atoll_container_info",
            &[
                ("container", &u_id),
                ("tenant", "beta"),
                ("level", "userspace")
            ]
        ),
        1.0
    );
    for c in [&cn, &cu] {
        assert!(value(&s, "atoll_container_memory_usage_bytes", c) > 0.0);
        assert!(value(&s, "atoll_container_pids", c) >= 1.0);
        assert!(value(&s, "atoll_container_cpu_seconds_total", c) >= 0.0);
        assert_eq!(value(&s, "atoll_container_oom_kills_total", c), 0.0);
    }
    assert_eq!(
        value(&s, "atoll_container_memory_limit_bytes", &cn),
        (256u64 << 20) as f64
    );
    // The sandbox's kernel, file server and stubs share its cgroup.
    assert!(value(&s, "atoll_container_pids", &cu) >= 2.0);
    assert!(value(&s, "atoll_sandbox_syscalls_total", &cu) > 0.0);
    assert!(value(&s, "atoll_sandbox_processes", &cu) >= 1.0);
    assert_eq!(
        value(
            &s,
            "atoll_sandbox_syscalls_refused_total",
            &[("container", &u_id), ("syscall", "mount")]
        ),
        1.0
    );
    assert!(
        !s.iter()
            .any(|x| x.name.starts_with("atoll_sandbox") && x.labels["container"] == n_id),
        "a native container has no sandbox series"
    );

    let running = |tenant: &str, level: &str| {
        value(
            &s,
            "atoll_tenant_containers_running",
            &[("tenant", tenant), ("level", level)],
        )
    };
    assert_eq!(running("alpha", "native"), 1.0);
    assert_eq!(running("alpha", "userspace"), 0.0);
    assert_eq!(running("beta", "userspace"), 1.0);
    assert_eq!(running("beta", "native"), 0.0);
    assert_eq!(
        value(
            &s,
            "atoll_tenant_memory_usage_bytes",
            &[("tenant", "alpha")]
        ),
        value(&s, "atoll_container_memory_usage_bytes", &cn)
    );
    assert!(value(&s, "atoll_tenant_pids", &[("tenant", "beta")]) >= 2.0);
    assert_eq!(
        value(
            &s,
            "atoll_policy_refusals_total",
            &[("tenant", "alpha"), ("rule", "privileged")]
        ),
        1.0
    );

    // Each scrape reads fresh state: a stopped container is no longer running.
    a.run(&["kill", &n_id, "KILL"]).ok();
    a.wait_status(&n_id, "stopped");
    let (_, body) = http_get(&addr, "/metrics");
    let s = parse(&body);
    let now = value(
        &s,
        "atoll_tenant_containers_running",
        &[("tenant", "alpha"), ("level", "native")],
    );
    assert_eq!(now, 0.0);
    assert_eq!(
        value(&s, "atoll_container_info", &[("container", &n_id)]),
        1.0
    );
    assert!(
        !s.iter().any(
            |x| x.name == "atoll_container_memory_usage_bytes" && x.labels["container"] == n_id
        )
    );

    let (head, _) = http_get(&addr, "/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let _ = server.kill();
    let _ = server.wait();

    // --once prints the same families; deleting the sandbox records its
    // refused syscalls, which the tenant series then count.
    a.run(&["delete", "-f", &u_id]).ok();
    a.run(&["delete", "-f", &n_id]).ok();
    let out = a.run(&["metrics", "--once"]);
    out.ok();
    let s = parse(&out.stdout);
    assert_eq!(
        value(
            &s,
            "atoll_tenant_syscalls_refused_total",
            &[("tenant", "beta"), ("syscall", "mount")]
        ),
        1.0
    );
    assert!(!s.iter().any(|x| x.name == "atoll_container_info"));
    leaks(&a, &n_id, &native).assert_clean();
    leaks(&a, &u_id, &sandboxed).assert_clean();
    leaks(&a, &r_id, &refused).assert_clean();
}
