//! Tenant policy on the node: refusals name tenant, rule, field and value
//! in one line and leave nothing behind; trusted tenants run what others
//! may not; container counts; level upgrades; broken policy files stop
//! atoll; exec rules; the audit trail of it all.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use atoll_testkit::Atoll;
use common::*;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};
use serde_json::Value;

/// An atoll with a policy and its own audit log.
struct Policed {
    a: Atoll,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

fn policed(policy: &str) -> Policed {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, policy).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = atoll().with_global(&[
        "--policy",
        p.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    Policed {
        a,
        audit,
        _dir: dir,
    }
}

impl Policed {
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// The records about container `id`, as (event, decision).
    fn events_of(&self, id: &str) -> Vec<(String, String)> {
        self.records()
            .iter()
            .filter(|r| r["container"] == id)
            .map(|r| {
                (
                    r["event"].as_str().unwrap().to_string(),
                    r["decision"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn last_of(&self, id: &str, event: &str) -> Value {
        self.records()
            .into_iter()
            .rev()
            .find(|r| r["container"] == id && r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} record for {id}: {:#?}", self.records()))
    }
}

fn with_caps(spec: &mut Spec, add: &[Capability]) {
    let mut p = spec.process().clone().unwrap();
    let mut c = p.capabilities().clone().unwrap();
    let grow = |s: &Option<oci_spec::runtime::Capabilities>| {
        let mut s = s.clone().unwrap_or_default();
        s.extend(add.iter().copied());
        Some(s)
    };
    c.set_bounding(grow(c.bounding()));
    c.set_effective(grow(c.effective()));
    c.set_permitted(grow(c.permitted()));
    p.set_capabilities(Some(c));
    spec.set_process(Some(p));
}

/// Joins the namespaces of `types` at the paths `path(type)` gives.
fn join_namespaces(spec: &mut Spec, joins: &[(LinuxNamespaceType, PathBuf)]) {
    let mut l = spec.linux().clone().unwrap();
    let mut list = l.namespaces().clone().unwrap_or_default();
    for ns in &mut list {
        if let Some((_, p)) = joins.iter().find(|(t, _)| *t == ns.typ()) {
            ns.set_path(Some(p.clone()));
        }
    }
    l.set_namespaces(Some(list));
    spec.set_linux(Some(l));
}

const RESTRICTED: &str = r#"
[defaults]
privileged = false
host_namespaces = false

[tenants.trusted]
privileged = true
host_namespaces = true
"#;

#[test]
fn privileged_bundle_is_refused_for_a_restricted_tenant_and_runs_for_a_trusted_one() {
    let p = policed(RESTRICTED);
    let sys_admin = |tenant: &str| {
        busybox()
            .sh("grep CapEff /proc/self/status")
            .annotation("dev.atoll.tenant", tenant)
            .modify(|s| with_caps(s, &[Capability::SysAdmin]))
            .build()
    };

    let b = sys_admin("acme");
    let id = common::id("priv");
    let pid_file = b.path.join("pid");
    let out = p.a.run(&[
        "run",
        "-b",
        b.path_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    out.fails_with(
        "tenant \"acme\": rule privileged forbids process.capabilities.bounding=CAP_SYS_ADMIN",
    );
    assert!(!pid_file.exists(), "a refused create left its pid file");
    leaks(&p.a, &id, &b).assert_clean();
    let r = p.last_of(&id, "refuse");
    assert_eq!(r["tenant"], "acme");
    assert_eq!(r["rule"], "privileged");
    assert_eq!(r["attempted"], "create");
    assert_eq!(r["decision"], "refuse");
    assert_eq!(r["level"], "native");
    assert_eq!(p.events_of(&id), [("refuse".into(), "refuse".into())]);

    // The same bundle for the trusted tenant runs, with CAP_SYS_ADMIN.
    let b = sys_admin("trusted");
    let id = common::id("priv-ok");
    let out = p.a.run(&["run", "-b", b.path_str(), &id]);
    out.ok();
    let cap_eff = u64::from_str_radix(out.stdout.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(
        cap_eff & (1 << 21),
        0,
        "CAP_SYS_ADMIN missing: {}",
        out.stdout
    );
    leaks(&p.a, &id, &b).assert_clean();
    let events: Vec<String> = p.events_of(&id).into_iter().map(|(e, _)| e).collect();
    assert_eq!(events, ["create", "start", "delete"]);
}

#[test]
fn host_namespace_paths_are_refused_but_a_pods_namespaces_are_joined() {
    let p = policed(RESTRICTED);
    // This test process is in the host's namespaces.
    let host_net = PathBuf::from(format!("/proc/{}/ns/net", std::process::id()));
    let joining_host = |tenant: &str| {
        busybox()
            .args(&["true"])
            .annotation("dev.atoll.tenant", tenant)
            .modify(|s| join_namespaces(s, &[(LinuxNamespaceType::Network, host_net.clone())]))
            .build()
    };
    let b = joining_host("acme");
    let id = common::id("hostns");
    p.a.run(&["run", "-b", b.path_str(), &id]).fails_with(&format!(
        "tenant \"acme\": rule host_namespaces forbids linux.namespaces[network].path={} (a host namespace)",
        host_net.display()
    ));
    leaks(&p.a, &id, &b).assert_clean();
    let b = joining_host("trusted");
    let id = common::id("hostns-ok");
    p.a.run(&["run", "-b", b.path_str(), &id]).ok();
    leaks(&p.a, &id, &b).assert_clean();

    // A pod: a pause container with namespaces of its own, and an app
    // container of the same restricted tenant joining them by path.
    let pause_b = busybox()
        .args(&["sleep", "60"])
        .annotation("io.kubernetes.pod.namespace", "acme")
        .build();
    let pause = common::id("pause");
    p.a.run(&["run", "-d", "-b", pause_b.path_str(), &pause])
        .ok();
    let pid = p.a.state(&pause)["pid"].as_i64().unwrap();
    let ns = |name: &str| PathBuf::from(format!("/proc/{pid}/ns/{name}"));
    let app_b = busybox()
        .args(&["readlink", "/proc/self/ns/net"])
        .annotation("io.kubernetes.pod.namespace", "acme")
        .modify(|s| {
            join_namespaces(
                s,
                &[
                    (LinuxNamespaceType::Network, ns("net")),
                    (LinuxNamespaceType::Ipc, ns("ipc")),
                    (LinuxNamespaceType::Uts, ns("uts")),
                ],
            )
        })
        .build();
    let app = common::id("app");
    let out = p.a.run(&["run", "-b", app_b.path_str(), &app]);
    out.ok();
    let pod_net = std::fs::metadata(ns("net")).unwrap().ino();
    assert_eq!(out.stdout.trim(), format!("net:[{pod_net}]"));
    leaks(&p.a, &app, &app_b).assert_clean();
    p.a.run(&["delete", "-f", &pause]).ok();
    leaks(&p.a, &pause, &pause_b).assert_clean();
    assert_eq!(p.last_of(&app, "create")["tenant"], "acme");
}

#[test]
fn a_tenant_over_its_container_count_is_refused() {
    let p = policed("[tenants.small]\nmax_containers = 2\n");
    let b = busybox()
        .args(&["sleep", "60"])
        .annotation("dev.atoll.tenant", "small")
        .build();
    let other = busybox()
        .args(&["sleep", "60"])
        .annotation("dev.atoll.tenant", "big")
        .build();
    let ids: Vec<String> = (0..4).map(|_| common::id("count")).collect();
    p.a.run(&["run", "-d", "-b", b.path_str(), &ids[0]]).ok();
    // Created but not started counts too.
    p.a.run(&["create", "-b", b.path_str(), &ids[1]]).ok();
    p.a.run(&["run", "-d", "-b", b.path_str(), &ids[2]])
        .fails_with("tenant \"small\": rule max_containers forbids containers=3");
    leaks(&p.a, &ids[2], &b).assert_clean();
    // Other tenants are not limited by it.
    p.a.run(&["run", "-d", "-b", other.path_str(), &ids[3]])
        .ok();

    // A stopped container no longer counts.
    p.a.run(&["kill", &ids[0], "KILL"]).ok();
    p.a.wait_status(&ids[0], "stopped");
    p.a.run(&["run", "-d", "-b", b.path_str(), &ids[2]]).ok();
    for id in &ids {
        p.a.run(&["delete", "-f", id]).ok();
    }
    for id in &ids {
        leaks(&p.a, id, &b).assert_clean();
    }
    let r = p
        .records()
        .into_iter()
        .find(|r| r["container"] == ids[2].as_str() && r["event"] == "refuse")
        .unwrap();
    assert_eq!(r["rule"], "max_containers");
}

#[test]
fn an_untrusted_tenant_asking_for_native_is_refused_or_upgraded() {
    let p = policed(
        r#"
[tenants.strict]
min_isolation = "userspace"

[tenants.untrusted]
min_isolation = "userspace"
on_lower_isolation = "upgrade"
"#,
    );
    let uname = |tenant: &str| {
        busybox()
            .args(&["uname", "-r"])
            .annotation("dev.atoll.tenant", tenant)
            .build()
    };
    let b = uname("strict");
    let id = common::id("strict");
    p.a.run(&["--isolation", "native", "run", "-b", b.path_str(), &id])
        .fails_with("tenant \"strict\": rule min_isolation forbids isolation=native");
    leaks(&p.a, &id, &b).assert_clean();
    assert_eq!(p.last_of(&id, "refuse")["rule"], "min_isolation");

    let b = uname("untrusted");
    let id = common::id("upgraded");
    let out =
        p.a.run(&["--isolation", "native", "run", "-b", b.path_str(), &id]);
    out.ok();
    assert_eq!(out.stdout.trim(), "6.1.0-atoll");
    leaks(&p.a, &id, &b).assert_clean();
    let r = p.last_of(&id, "create");
    assert_eq!(r["decision"], "upgrade");
    assert_eq!(r["level"], "userspace");
    assert_eq!(r["detail"], "upgraded from native");
    assert_eq!(p.last_of(&id, "delete")["level"], "userspace");

    // Asked for userspace, nothing to upgrade.
    let id = common::id("asked");
    p.a.run(&["--isolation", "userspace", "run", "-b", b.path_str(), &id])
        .ok();
    assert_eq!(p.last_of(&id, "create")["decision"], "allow");
    leaks(&p.a, &id, &b).assert_clean();
}

#[test]
fn a_broken_policy_stops_atoll_with_its_line() {
    let b = busybox().args(&["true"]).build();
    let cases = [
        (
            "[defaults]\nprivileged = false\n\n[tenants.acme]\nprivilaged = true\n",
            "line 5: unknown rule \"privilaged\" in [tenants.acme] (did you mean \"privileged\"?)",
        ),
        (
            "[defaults]\nmax_containers = \"ten\"\n",
            "line 2: invalid value for rule max_containers in [defaults]",
        ),
        ("[defaults\n", "line 1"),
    ];
    for (text, want) in cases {
        let p = policed(text);
        let id = common::id("badpol");
        p.a.run(&["run", "-b", b.path_str(), &id]).fails_with(want);
        leaks(&p.a, &id, &b).assert_clean();
        // The refusal is on the record.
        assert_eq!(p.last_of(&id, "refuse")["rule"], "policy_file");
    }

    // A policy path given explicitly must exist, by flag or config file.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let a = atoll();
    let id = common::id("nopol");
    a.run(&[
        "--policy",
        missing.to_str().unwrap(),
        "--audit-log",
        dir.path().join("a.jsonl").to_str().unwrap(),
        "run",
        "-b",
        b.path_str(),
        &id,
    ])
    .fails_with("missing.toml: No such file or directory");
    leaks(&a, &id, &b).assert_clean();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "policy = \"{}\"\naudit_log = \"{}\"\n",
            missing.display(),
            dir.path().join("b.jsonl").display()
        ),
    )
    .unwrap();
    a.run(&[
        "--config",
        config.to_str().unwrap(),
        "run",
        "-b",
        b.path_str(),
        &id,
    ])
    .fails_with("missing.toml: No such file or directory");
    leaks(&a, &id, &b).assert_clean();
    // The config file's audit_log is where the refusal went.
    let text = std::fs::read_to_string(dir.path().join("b.jsonl")).unwrap();
    assert!(text.contains("\"rule\":\"policy_file\""), "{text}");

    // A policy others may write is not trusted.
    let p = policed("[defaults]\nprivileged = false\n");
    let path = p._dir.path().join("policy.toml");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o646)).unwrap();
    let id = common::id("worldw");
    p.a.run(&["run", "-b", b.path_str(), &id])
        .fails_with("is writable by group or others");
    leaks(&p.a, &id, &b).assert_clean();
}

#[test]
fn exec_as_root_is_refused_for_a_run_as_non_root_tenant() {
    let p = policed("[defaults]\nrun_as_non_root = true\n");
    for level in ["native", "userspace"] {
        let b = busybox()
            .args(&["sleep", "60"])
            .user(1000, 1000)
            .annotation("dev.atoll.tenant", "acme")
            .build();
        let id = common::id(&format!("exec-{level}"));
        p.a.run(&["--isolation", level, "run", "-d", "-b", b.path_str(), &id])
            .ok();
        p.a.run(&["exec", "--user", "0:0", &id, "id"])
            .fails_with("tenant \"acme\": rule run_as_non_root forbids process.user=0:0");
        let r = p.last_of(&id, "refuse");
        assert_eq!(r["attempted"], "exec");
        assert_eq!(r["rule"], "run_as_non_root");
        assert_eq!(r["level"], level);
        // Without --user, exec runs as the container's user, as runc does.
        let out = p.a.run(&["exec", &id, "id", "-u"]);
        out.ok();
        assert_eq!(out.stdout.trim(), "1000", "{level}");
        let out = p.a.run(&["exec", "--user", "1001:1001", &id, "id", "-u"]);
        out.ok();
        assert_eq!(out.stdout.trim(), "1001", "{level}");
        // A --process file asking for root is refused too.
        let proc_file = b.path.join("process.json");
        std::fs::write(
            &proc_file,
            r#"{"user": {"uid": 0, "gid": 0}, "args": ["id"], "cwd": "/"}"#,
        )
        .unwrap();
        p.a.run(&["exec", "--process", proc_file.to_str().unwrap(), &id])
            .fails_with("rule run_as_non_root forbids process.user.uid=0");
        p.a.run(&["delete", "-f", &id]).ok();
        leaks(&p.a, &id, &b).assert_clean();
        let execs: Vec<Value> = p
            .records()
            .into_iter()
            .filter(|r| r["container"] == id.as_str() && r["event"] == "exec")
            .collect();
        assert_eq!(execs.len(), 2, "{execs:#?}");
        assert_eq!(execs[1]["detail"], "[\"id\", \"-u\"] as 1001:1001");
    }
}

/// Reads records from a child's stdout up to the first `want` matches.
fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    want: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no matching audit line: {seen:#?}"
        );
        let line = lines.next().expect("audit --follow ended").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        let done = want(&v);
        seen.push(v);
        if done {
            return seen;
        }
    }
}

#[test]
fn the_audit_trail_records_every_operation_and_refused_syscalls() {
    let p = policed("");
    // Follow the trail of one tenant while things happen.
    let mut follow =
        p.a.command()
            .args(["audit", "--follow", "--tenant", "acme"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();

    // A shell that tries a mount (refused in the sandbox), says so, and
    // exits on SIGTERM (so its kernel exits and logs its counters).
    let b = busybox()
        .sh("trap 'exit 0' TERM; mount -t tmpfs none /tmp 2>/dev/null; touch /tmp/tried; sleep 60 & wait")
        .annotation("dev.atoll.tenant", "acme")
        .build();
    let noise = busybox()
        .args(&["true"])
        .annotation("dev.atoll.tenant", "other")
        .build();
    let id = common::id("trail");
    p.a.run(&[
        "--isolation",
        "userspace",
        "create",
        "-b",
        b.path_str(),
        &id,
    ])
    .ok();
    p.a.run(&["run", "-b", noise.path_str(), &common::id("noise")])
        .ok();
    p.a.run(&["start", &id]).ok();
    p.a.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "while [ ! -e /tmp/tried ]; do sleep 0.01; done",
    ])
    .ok();
    p.a.run(&["kill", &id, "TERM"]).ok();
    p.a.wait_status(&id, "stopped");
    p.a.run(&["delete", &id]).ok();
    leaks(&p.a, &id, &b).assert_clean();

    let events: Vec<(String, String)> = p.events_of(&id);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        &names[..5],
        ["create", "start", "exec", "kill", "delete"],
        "{events:?}"
    );
    let refused = p
        .records()
        .into_iter()
        .find(|r| r["container"] == id.as_str() && r["event"] == "syscall_refused")
        .expect("no syscall_refused record");
    assert_eq!(refused["syscall"], "mount");
    assert_eq!(refused["count"], 1);
    assert_eq!(refused["tenant"], "acme");
    assert_eq!(refused["level"], "userspace");
    let kill = p.last_of(&id, "kill");
    assert_eq!(kill["detail"], "signal 15");
    for r in p.records() {
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }

    // The follower saw this tenant's records as they came, and no other's.
    let seen = read_until(&mut lines, |v| v["event"] == "syscall_refused");
    assert!(seen.iter().all(|v| v["tenant"] == "acme"), "{seen:#?}");
    assert_eq!(seen.last().unwrap()["container"], id.as_str());
    let _ = follow.kill();
    let _ = follow.wait();

    // Filters without --follow.
    let out =
        p.a.run(&["audit", "--tenant", "other", "--event", "create"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let out =
        p.a.run(&["audit", "--container", &id, "--format", "text", "-n", "1"]);
    out.ok();
    assert!(out.stdout.contains(" syscall_"), "{}", out.stdout);
    p.a.run(&["audit", "--event", "bogus"])
        .fails_with("unknown event \"bogus\"");
}

#[test]
fn an_invalid_tenant_name_is_refused() {
    let p = policed("");
    let b = busybox()
        .args(&["true"])
        .annotation("dev.atoll.tenant", "Acme Corp")
        .build();
    let id = common::id("badtenant");
    p.a.run(&["run", "-b", b.path_str(), &id])
        .fails_with("invalid tenant name \"Acme Corp\"");
    leaks(&p.a, &id, &b).assert_clean();
    assert_eq!(p.last_of(&id, "refuse")["rule"], "tenant");
    // Without the annotation the Kubernetes namespace names the tenant.
    let b = busybox()
        .args(&["true"])
        .annotation("io.kubernetes.cri.sandbox-namespace", "team-a")
        .build();
    let id = common::id("k8sns");
    p.a.run(&["run", "-b", b.path_str(), &id]).ok();
    assert_eq!(p.last_of(&id, "create")["tenant"], "team-a");
    leaks(&p.a, &id, &b).assert_clean();
}
