//! Load: 50 containers created, started, waited for and deleted
//! concurrently, 3 rounds, at each level. Zero failures; `atoll list`,
//! polled all the while, shows only our containers with valid statuses;
//! nothing grows between rounds (mounts, cgroups, the test's descriptors,
//! processes); and every file the workloads wrote to a bind-mounted host
//! directory (through the gofer at the userspace level) is there, intact.
//!
//! `ATOLL_LOAD_CONTAINERS` and `ATOLL_LOAD_ROUNDS` change the size.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoll_testkit::Atoll;
use common::*;

/// The levels run one after the other: each alone is all two cores take.
static SERIAL: Mutex<()> = Mutex::new(());

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Lines each workload writes: `seq 1 LINES` then its id.
const LINES: usize = 5000;

fn expected_content(id: &str) -> String {
    let mut s = String::new();
    for i in 1..=LINES {
        s.push_str(&format!("{i}\n"));
    }
    s.push_str(id);
    s.push('\n');
    s
}

fn sha256_of(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// What must not grow from one round to the next.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Resources {
    mountinfo_lines: usize,
    /// cgroup directories under any controller's atoll/ named after our ids.
    our_cgroups: usize,
    /// every cgroup directory under atoll/ (other users' too), for the log
    all_atoll_cgroups: usize,
    fds: usize,
    /// processes in our containers' cgroups or running the atoll binary
    processes: Vec<String>,
}

fn resources(a: &Atoll, prefix: &str) -> Resources {
    let mountinfo_lines = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let mut our = 0;
    let mut all = 0;
    for c in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(entries) = std::fs::read_dir(c.path().join("atoll")) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    all += 1;
                    if e.file_name().to_string_lossy().starts_with(prefix) {
                        our += 1;
                    }
                }
            }
        }
    }
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let bin = std::fs::canonicalize(&a.bin).unwrap();
    let mut processes = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        let ours = cg.contains(&format!("/atoll/{prefix}"))
            || exe.to_string_lossy().trim_end_matches(" (deleted)") == bin.to_string_lossy();
        if ours {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            processes.push(format!("pid {name} ({})", comm.trim()));
        }
    }
    Resources {
        mountinfo_lines,
        our_cgroups: our,
        all_atoll_cgroups: all,
        fds,
        processes,
    }
}

const VALID: &[&str] = &["creating", "created", "running", "stopped", "paused"];

/// One container's whole life; returns an error line on any failure.
fn lifecycle(a: &Atoll, level: &str, bundle: &str, id: &str) -> Result<(), String> {
    let step = |args: &[&str]| -> Result<(), String> {
        let out = a.run(args);
        if out.code != 0 {
            return Err(format!("{id}: {args:?} failed: {}", out.stderr.trim()));
        }
        Ok(())
    };
    step(&["--isolation", level, "create", "-b", bundle, id])?;
    step(&["start", id])?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = a.run(&["state", id]);
        if out.code != 0 {
            return Err(format!("{id}: state failed: {}", out.stderr.trim()));
        }
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).map_err(|e| format!("{id}: state: {e}"))?;
        match v["status"].as_str() {
            Some("stopped") => break,
            Some("running") | Some("created") => {}
            s => return Err(format!("{id}: unexpected status {s:?}")),
        }
        if Instant::now() > deadline {
            return Err(format!("{id}: still running after 180 s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    step(&["delete", id])
}

fn load_at(level: &str) {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = env_or("ATOLL_LOAD_CONTAINERS", 50);
    let rounds = env_or("ATOLL_LOAD_ROUNDS", 3);
    let a = Arc::new(atoll());
    let out_dir = tempfile::Builder::new()
        .prefix("atoll-load-")
        .tempdir_in("/tmp")
        .unwrap();
    // One bundle for all: the workload writes /out/<its hostname>, and
    // the hostname is set per container below.
    let prefix = format!("load{}-{}", &level[..1], std::process::id());
    let mut bundles = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let b = busybox()
            .bind(out_dir.path(), "/out", false)
            .modify(|s| {
                s.set_hostname(Some(id.clone()));
            })
            .sh(&format!(
                "seq 1 {LINES} > /out/$(hostname).tmp && hostname >> /out/$(hostname).tmp && \
                 mv /out/$(hostname).tmp /out/$(hostname)-r$ROUND"
            ))
            .build();
        bundles.push((id, b));
    }
    let mut after_round: Vec<Resources> = Vec::new();
    let mut times = Vec::new();
    for round in 0..rounds {
        // The round number reaches the workload through its spec's env.
        for (_, b) in &bundles {
            let mut spec = b.spec();
            let mut p = spec.process().clone().unwrap();
            let mut env: Vec<String> = p
                .env()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !e.starts_with("ROUND="))
                .collect();
            env.push(format!("ROUND={round}"));
            p.set_env(Some(env));
            spec.set_process(Some(p));
            b.write_spec(&spec);
        }
        let ours: HashSet<String> = bundles.iter().map(|(id, _)| id.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let max_listed = Arc::new(AtomicUsize::new(0));
        let poller = {
            let (a, stop, polls, max_listed, ours) = (
                a.clone(),
                stop.clone(),
                polls.clone(),
                max_listed.clone(),
                ours.clone(),
            );
            std::thread::spawn(move || -> Vec<String> {
                let mut problems = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let out = a.run(&["list", "--format", "json"]);
                    polls.fetch_add(1, Ordering::Relaxed);
                    if out.code != 0 {
                        problems.push(format!("list failed: {}", out.stderr.trim()));
                        continue;
                    }
                    let v: serde_json::Value = match serde_json::from_str(&out.stdout) {
                        Ok(v) => v,
                        Err(e) => {
                            problems.push(format!("list is not JSON ({e}): {}", out.stdout));
                            continue;
                        }
                    };
                    let list = v.as_array().cloned().unwrap_or_default();
                    max_listed.fetch_max(list.len(), Ordering::Relaxed);
                    for c in list {
                        let id = c["id"].as_str().unwrap_or_default();
                        let status = c["status"].as_str().unwrap_or_default();
                        if !ours.contains(id) {
                            problems.push(format!("list shows a stranger: {c}"));
                        }
                        if !VALID.contains(&status) {
                            problems.push(format!("list shows status {status:?} for {id}"));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                problems
            })
        };
        let t = Instant::now();
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let workers: Vec<_> = bundles
            .iter()
            .map(|(id, b)| {
                let (a, failures, id, path) = (
                    a.clone(),
                    failures.clone(),
                    id.clone(),
                    b.path_str().to_string(),
                );
                let level = level.to_string();
                std::thread::spawn(move || {
                    if let Err(e) = lifecycle(&a, &level, &path, &id) {
                        failures.lock().unwrap().push(e);
                        let _ = a.run(&["delete", "--force", &id]);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let problems = poller.join().unwrap();
        times.push(took);
        eprintln!(
            "load at {level}, round {round}: {n} containers in {took:.1?}; list polled {} times, \
             up to {} listed",
            polls.load(Ordering::Relaxed),
            max_listed.load(Ordering::Relaxed)
        );
        let failures = failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "round {round} at {level}: {} of {n} failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(
            problems.is_empty(),
            "round {round} at {level}: list was inconsistent:\n{}",
            problems.join("\n")
        );
        assert!(
            polls.load(Ordering::Relaxed) > 0,
            "list was never polled during the round"
        );
        // Every container gone, nothing left of it.
        for (id, b) in &bundles {
            leaks(&a, id, b).assert_clean();
        }
        let entries: Vec<_> = std::fs::read_dir(a.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // The test's audit log lives in its root (testkit's runner).
            .filter(|n| n != ".atoll" && n != "audit.jsonl")
            .collect();
        assert!(entries.is_empty(), "state left under the root: {entries:?}");
        // Every file, intact.
        for (id, _) in &bundles {
            let path = out_dir.path().join(format!("{id}-r{round}"));
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("round {round}: {}: {e}", path.display()));
            let want = expected_content(id);
            assert_eq!(
                sha256_of(&data),
                sha256_of(want.as_bytes()),
                "round {round}: {} is damaged ({} bytes, want {})",
                path.display(),
                data.len(),
                want.len()
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "unfinished files: {leftovers:?}");
        let r = wait_settled(&a, &prefix);
        eprintln!("after round {round}: {r:?}");
        assert!(
            r.processes.is_empty(),
            "round {round}: processes left: {:?}",
            r.processes
        );
        assert_eq!(r.our_cgroups, 0, "round {round}: cgroups left");
        if let Some(first) = after_round.first() {
            assert!(
                r.mountinfo_lines <= first.mountinfo_lines,
                "round {round}: mounts grew from {} to {}",
                first.mountinfo_lines,
                r.mountinfo_lines
            );
            assert!(
                r.fds <= first.fds,
                "round {round}: the test's descriptors grew from {} to {}",
                first.fds,
                r.fds
            );
        }
        after_round.push(r);
    }
    let total: Duration = times.iter().sum();
    eprintln!(
        "load at {level}: {rounds} rounds of {n} containers: {:?} per round, {total:.1?} in all",
        times
            .iter()
            .map(|t| format!("{:.1}s", t.as_secs_f64()))
            .collect::<Vec<_>>()
    );
}

/// Resources once the last processes of the round have been reaped.
fn wait_settled(a: &Atoll, prefix: &str) -> Resources {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = resources(a, prefix);
        if (r.processes.is_empty() && r.our_cgroups == 0) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fifty_containers_three_rounds_native() {
    load_at("native");
}

#[test]
fn fifty_containers_three_rounds_userspace() {
    load_at("userspace");
}
