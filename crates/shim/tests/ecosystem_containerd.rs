//! containerd (Debian's package, private paths) with atoll installed by
//! `atoll install --containerd`: `ctr` drives the shim
//! `io.containerd.atoll.v2` at both levels (run, exit codes, terminal,
//! exec, pause/resume, metrics, ps, kill, delete, events), and containerd's
//! own runc shim with `BinaryName` pointing at atoll.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use atoll_testkit::image::{BUSYBOX_IMAGE, busybox_oci_archive};
use common::*;

const SHIM: &str = "io.containerd.atoll.v2";

fn setup() -> (Containerd, String) {
    let c = Containerd::start(ContainerdOptions { cri: false });
    let ns = unique("atoll");
    c.import(&ns, &busybox_oci_archive());
    (c, ns)
}

/// `ctr run` arguments selecting the atoll shim at `level`.
fn shim_args(c: &Containerd, level: &str) -> Vec<String> {
    let runtime = if level == "userspace" {
        "atoll"
    } else {
        "atoll-native"
    };
    vec![
        "--runtime".into(),
        SHIM.into(),
        "--runtime-config-path".into(),
        c.options_file(runtime).display().to_string(),
    ]
}

fn atoll_root(c: &Containerd, ns: &str) -> PathBuf {
    c.shim_root.join(ns)
}

fn run_args<'a>(pre: &'a [String], id: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = vec!["run", "--rm"];
    v.extend(pre.iter().map(String::as_str));
    v.push(BUSYBOX_IMAGE);
    v.push(id);
    v.extend_from_slice(cmd);
    v
}

const PROBE: &str = "echo out-$(uname -r); echo err-line >&2; dmesg 2>&1 | head -1; exit 3";

fn check_level(out: &Out, level: &str) {
    assert_eq!(out.code, 3, "{out:#?}");
    assert!(out.stderr.contains("err-line"), "{out:#?}");
    if level == "userspace" {
        assert!(out.stdout.contains("out-6.1.0-atoll"), "{out:#?}");
        assert!(out.stdout.contains("Starting atoll"), "{out:#?}");
    } else {
        let host = nix::sys::utsname::uname().unwrap();
        let release = host.release().to_string_lossy().into_owned();
        assert!(out.stdout.contains(&format!("out-{release}")), "{out:#?}");
        assert!(!out.stdout.contains("Starting atoll"), "{out:#?}");
    }
}

/// `ctr events` in the background, for the events the shim publishes.
struct Events {
    daemon: Daemon,
}

impl Events {
    fn start(c: &Containerd) -> Events {
        let log = c.path().join(format!("{}.events", unique("ev")));
        let mut cmd = Command::new("ctr");
        cmd.arg("-a").arg(&c.socket).arg("events");
        let daemon = Daemon::spawn("ctr events", &mut cmd, log);
        std::thread::sleep(Duration::from_millis(300));
        Events { daemon }
    }

    /// Waits until every topic was seen for container `id`.
    fn expect(&self, id: &str, topics: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.daemon.log).unwrap_or_default();
            let missing: Vec<&&str> = topics
                .iter()
                .filter(|t| {
                    !text
                        .lines()
                        .any(|l| l.contains(&format!(" {t} ")) && l.contains(id))
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "events {missing:?} of {id} missing:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_task_status(c: &Containerd, ns: &str, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.ctr(ns, &["tasks", "ls"]);
        let status = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string();
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "task {id} is {status:?}, expected {want}: {out:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// run --rm: output, stderr and exit code at one level, events, no leaks.
fn shim_run(level: &str) {
    let _t = Timer::start(if level == "native" {
        "ctr run (shim, native)"
    } else {
        "ctr run (shim, userspace)"
    });
    let (c, ns) = setup();
    let ev = Events::start(&c);
    let id = unique("run");
    let pre = shim_args(&c, level);
    let out = c.ctr(&ns, &run_args(&pre, &id, &["sh", "-c", PROBE]));
    check_level(&out, level);
    ev.expect(
        &id,
        &[
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete",
        ],
    );
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
}

#[test]
fn shim_run_native() {
    shim_run("native");
}

#[test]
fn shim_run_userspace() {
    shim_run("userspace");
}

/// A detached task through its whole life: ps, metrics, pause, resume,
/// kill, wait, delete.
fn shim_lifecycle(level: &str) {
    let _t = Timer::start(if level == "native" {
        "ctr lifecycle (shim, native)"
    } else {
        "ctr lifecycle (shim, userspace)"
    });
    let (c, ns) = setup();
    let ev = Events::start(&c);
    let id = unique("life");
    let pre = shim_args(&c, level);
    let mut args: Vec<&str> = vec!["run", "-d"];
    args.extend(pre.iter().map(String::as_str));
    args.extend([
        BUSYBOX_IMAGE,
        &id,
        "sh",
        "-c",
        "while true; do sleep 0.2; done",
    ]);
    c.ctr(&ns, &args).ok();
    wait_task_status(&c, &ns, &id, "RUNNING");

    let ps = c.ctr(&ns, &["tasks", "ps", &id]);
    ps.ok();
    let pids: Vec<i32> = ps
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "{ps:#?}");
    // Short-lived processes (each `sleep`) may be gone by now; every one
    // still there is in the container's cgroup, and the init always is.
    let mut seen = 0;
    for p in &pids {
        let Ok(cg) = std::fs::read_to_string(format!("/proc/{p}/cgroup")) else {
            continue;
        };
        if cg.is_empty() {
            continue;
        }
        assert!(
            cg.contains(&format!("/{ns}/{id}")),
            "pid {p} is not in the container's cgroup: {cg}"
        );
        seen += 1;
    }
    assert!(seen >= 1, "no process of {id} found: {ps:#?}");

    let m = c.ctr(&ns, &["tasks", "metrics", "--format", "json", &id]);
    m.ok();
    let v: serde_json::Value =
        serde_json::from_str(&m.stdout).unwrap_or_else(|e| panic!("{e}: {m:#?}"));
    assert!(
        v["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{m:#?}"
    );
    assert!(v["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{m:#?}");
    assert!(
        v["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{m:#?}"
    );

    c.ctr(&ns, &["tasks", "pause", &id]).ok();
    wait_task_status(&c, &ns, &id, "PAUSED");
    c.ctr(&ns, &["tasks", "resume", &id]).ok();
    wait_task_status(&c, &ns, &id, "RUNNING");

    c.ctr(&ns, &["tasks", "kill", "-s", "SIGKILL", &id]).ok();
    wait_task_status(&c, &ns, &id, "STOPPED");
    let del = c.ctr(&ns, &["tasks", "delete", &id]);
    del.ok();
    assert!(
        del.stdout.contains("137") || del.stderr.contains("137"),
        "exit status of a SIGKILLed task: {del:#?}"
    );
    c.ctr(&ns, &["containers", "delete", &id]).ok();
    ev.expect(
        &id,
        &[
            "/tasks/create",
            "/tasks/start",
            "/tasks/paused",
            "/tasks/resumed",
            "/tasks/exit",
            "/tasks/delete",
        ],
    );
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
}

#[test]
fn shim_lifecycle_native() {
    shim_lifecycle("native");
}

#[test]
fn shim_lifecycle_userspace() {
    shim_lifecycle("userspace");
}

/// `ctr task exec` into a running task: output, exit code, events.
fn shim_exec(level: &str) {
    let _t = Timer::start(if level == "native" {
        "ctr exec (shim, native)"
    } else {
        "ctr exec (shim, userspace)"
    });
    let (c, ns) = setup();
    let ev = Events::start(&c);
    let id = unique("exec");
    let pre = shim_args(&c, level);
    let mut args: Vec<&str> = vec!["run", "-d"];
    args.extend(pre.iter().map(String::as_str));
    args.extend([
        BUSYBOX_IMAGE,
        &id,
        "sh",
        "-c",
        "echo marker > /tmp/m; exec sleep 1000",
    ]);
    c.ctr(&ns, &args).ok();
    wait_task_status(&c, &ns, &id, "RUNNING");
    let out = c.ctr(
        &ns,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            &id,
            "sh",
            "-c",
            "cat /tmp/m; echo exec-err >&2; uname -r; exit 5",
        ],
    );
    assert_eq!(out.code, 5, "{out:#?}");
    assert!(
        out.stdout.contains("marker"),
        "exec sees the container's files: {out:#?}"
    );
    assert!(out.stderr.contains("exec-err"), "{out:#?}");
    if level == "userspace" {
        assert!(out.stdout.contains("6.1.0-atoll"), "{out:#?}");
    }
    ev.expect(&id, &["/tasks/exec-added", "/tasks/exec-started"]);
    c.ctr(&ns, &["tasks", "kill", "-s", "SIGKILL", &id]).ok();
    wait_task_status(&c, &ns, &id, "STOPPED");
    c.ctr(&ns, &["tasks", "delete", &id]).ok();
    c.ctr(&ns, &["containers", "delete", &id]).ok();
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
}

#[test]
fn shim_exec_native() {
    shim_exec("native");
}

#[test]
fn shim_exec_userspace() {
    shim_exec("userspace");
}

/// A terminal: `ctr run -t` (under script(1), which gives ctr its own tty).
#[test]
fn shim_terminal_native() {
    let _t = Timer::start("ctr run -t (shim, native)");
    require("script");
    let (c, ns) = setup();
    let id = unique("tty");
    let pre = shim_args(&c, "native");
    let ctr = format!(
        "ctr -a {} -n {ns} run --rm -t {} {BUSYBOX_IMAGE} {id} sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; exit 2'",
        c.socket.display(),
        pre.join(" ")
    );
    let out = run(
        Command::new("script").args(["-qec", &ctr, "/dev/null"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stdout.contains("/dev/pts/"), "{out:#?}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out:#?}");
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
}

/// containerd's runc shim with atoll as its runtime binary.
fn runc_shim(level: &str, exec: bool) {
    let _t = Timer::start(if level == "native" {
        "ctr via runc shim (native)"
    } else {
        "ctr via runc shim (userspace)"
    });
    let (c, ns) = setup();
    let root = c.path().join("runc-root");
    let pre: Vec<String> = vec![
        "--runtime".into(),
        "io.containerd.runc.v2".into(),
        "--runc-binary".into(),
        atoll_bin().display().to_string(),
        "--runc-root".into(),
        root.display().to_string(),
        "--annotation".into(),
        format!("dev.atoll.isolation={level}"),
    ];
    let id = unique("runc");
    let out = c.ctr(&ns, &run_args(&pre, &id, &["sh", "-c", PROBE]));
    check_level(&out, level);

    if exec {
        let id2 = unique("runcx");
        let mut args: Vec<&str> = vec!["run", "-d"];
        args.extend(pre.iter().map(String::as_str));
        args.extend([
            BUSYBOX_IMAGE,
            &id2,
            "sh",
            "-c",
            "echo marker > /tmp/m; exec sleep 1000",
        ]);
        c.ctr(&ns, &args).ok();
        wait_task_status(&c, &ns, &id2, "RUNNING");
        let out = c.ctr(
            &ns,
            &[
                "tasks",
                "exec",
                "--exec-id",
                "e1",
                &id2,
                "sh",
                "-c",
                "cat /tmp/m; exit 4",
            ],
        );
        assert_eq!(out.code, 4, "{out:#?}");
        assert!(out.stdout.contains("marker"), "{out:#?}");
        c.ctr(&ns, &["tasks", "kill", "-s", "SIGKILL", &id2]).ok();
        wait_task_status(&c, &ns, &id2, "STOPPED");
        c.ctr(&ns, &["tasks", "delete", &id2]).ok();
        c.ctr(&ns, &["containers", "delete", &id2]).ok();
        c.assert_clean(&ns, &[&id, &id2], &ns, &[root.join(&ns)]);
    } else {
        c.assert_clean(&ns, &[&id], &ns, &[root.join(&ns)]);
    }
}

#[test]
fn runc_shim_native_run_and_exec() {
    runc_shim("native", true);
}

#[test]
fn runc_shim_userspace_run() {
    runc_shim("userspace", false);
}

#[test]
fn runc_shim_userspace_exec() {
    runc_shim("userspace", true);
}

/// A failing create is one clear error and leaves nothing behind.
#[test]
fn shim_reports_atoll_errors() {
    let _t = Timer::start("ctr run with a bad command (shim)");
    let (c, ns) = setup();
    let id = unique("bad");
    let pre = shim_args(&c, "native");
    let out = c.ctr(&ns, &run_args(&pre, &id, &["/no/such/program"]));
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("/no/such/program"),
        "the error names the program: {out:#?}"
    );
    let _ = c.ctr(&ns, &["containers", "delete", &id]);
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
    // and an options file that does not parse is refused with its name
    let bad = c.path().join("bad.toml");
    std::fs::write(&bad, "isolation = \"paranoid\"\n").unwrap();
    let id = unique("badopt");
    let pre = vec![
        "--runtime".to_string(),
        SHIM.to_string(),
        "--runtime-config-path".to_string(),
        bad.display().to_string(),
    ];
    let out = c.ctr(&ns, &run_args(&pre, &id, &["true"]));
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("bad.toml"), "{out:#?}");
    let _ = c.ctr(&ns, &["containers", "delete", &id]);
    c.assert_clean(&ns, &[&id], &ns, &[atoll_root(&c, &ns)]);
    let _: &Path = c.path();
}
