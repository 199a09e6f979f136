//! Faults: kill -9 of the application kernel, its gofer, a native init
//! and of the atoll CLI itself at every lifecycle step (at random small
//! delays, many times), and damaged state directories. Afterwards `atoll
//! state` must tell the truth (or fail in one line), `atoll delete
//! --force` must succeed, and nothing may be left: no state, cgroup,
//! mount, container process, nor any process of the atoll binary (a
//! libcontainer helper, a kernel, a gofer or a stub orphaned by the kill).
//!
//! The tests share one lock: the orphan check looks at every process of
//! the atoll binary, so tests of this file must not overlap.
//!
//! `ATOLL_FAULT_SEED=<n>` replays a run's random delays (the seed is
//! printed); `ATOLL_FAULT_ITERATIONS=<n>` changes how many kills per step.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atoll_testkit::{Atoll, Bundle, cprog};
use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const LEVELS: [&str; 2] = ["native", "userspace"];

/// xorshift64*: small, seeded, reproducible delays.
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Rng {
        let seed = std::env::var("ATOLL_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{what}: ATOLL_FAULT_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, max).
    fn delay(&mut self, max: Duration) -> Duration {
        let us = max.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % us)
    }
}

fn iterations() -> usize {
    std::env::var("ATOLL_FAULT_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

fn alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with(['Z', 'X']))
}

fn comm(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Live processes running the atoll binary under test (helpers,
/// kernels, gofers, stubs), except this test's own atoll commands.
fn atoll_processes(a: &Atoll) -> Vec<String> {
    let bin = std::fs::canonicalize(&a.bin).unwrap();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(exe) = std::fs::read_link(e.path().join("exe")) else {
            continue;
        };
        let exe = exe.to_string_lossy().into_owned();
        if exe.trim_end_matches(" (deleted)") == bin.to_string_lossy() && alive(pid) {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            found.push(format!("pid {pid} ({}) {cmd}", comm(pid)));
        }
    }
    found
}

/// Waits until no process of the atoll binary is left.
fn assert_no_orphans(a: &Atoll, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = atoll_processes(a);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes of the atoll binary left behind:\n  {}",
            left.join("\n  ")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `atoll state` either fails with one line, or reports a status that is
/// true of the container's processes. Returns the status (or "error").
fn truthful_state(a: &Atoll, id: &str, what: &str) -> String {
    let out = a.run(&["state", id]);
    if out.code != 0 {
        let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: state error is not one line: {out:#?}"
        );
        return format!("error: {}", lines[0]);
    }
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: state is not JSON ({e}): {out:#?}"));
    let status = v["status"].as_str().unwrap_or_default().to_string();
    let pid = v["pid"].as_i64().unwrap_or(0);
    match status.as_str() {
        "created" | "running" | "paused" if pid > 0 && !alive(pid) => {
            // A kill sent before the CLI died may still be taking the
            // process down (a sandbox's kernel with its stubs and gofer):
            // the answer was true when given if the next one says so.
            std::thread::sleep(Duration::from_millis(500));
            let again = a.run(&["state", id]);
            let now = serde_json::from_str::<serde_json::Value>(&again.stdout)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_string));
            assert!(
                again.code != 0 || now.as_deref() == Some("stopped"),
                "{what}: state says {status} with pid {pid}, which is not alive: {again:#?}"
            );
        }
        "created" | "running" | "paused" => {
            assert!(pid > 0, "{what}: state says {status} without a pid")
        }
        "stopped" => {
            assert_eq!(pid, 0, "{what}: stopped with pid {pid}");
            // Nothing of the container runs any more.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let left = atoll_testkit::leaks::processes_of(id, None);
                if left.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: state says stopped, but these run: {left:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        "creating" => {}
        s => panic!("{what}: unknown status {s:?}"),
    }
    status
}

/// `delete --force` succeeds (or the container is already gone) and
/// nothing is left.
fn force_delete_and_check(a: &Atoll, id: &str, b: &Bundle, what: &str) {
    let out = a.run(&["delete", "--force", id]);
    assert!(
        out.code == 0 || out.stderr.contains("does not exist"),
        "{what}: delete --force failed: {out:#?}"
    );
    a.run(&["state", id]).fails_with("does not exist");
    leaks(a, id, b).assert_clean();
    assert_no_orphans(a, what);
}

fn spawn(a: &Atoll, args: &[&str]) -> Child {
    a.command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning atoll")
}

/// SIGKILL after `delay` (if still running); returns whether it was killed.
fn kill_after(mut child: Child, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if Instant::now() >= deadline {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// How long a command takes when left alone (the range to kill it in).
fn duration_of(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Runs bundle `b` as container `id` at the userspace level, in the
/// foreground, its stdout and stderr into `out.txt` in the bundle;
/// returns the run and a reader of that output so far.
fn run_logged(a: &Atoll, b: &Bundle, id: &str) -> (Child, impl Fn() -> String) {
    let out_path = b.path.join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let child = a
        .command()
        .args(["--isolation", "userspace", "run", "-b", b.path_str(), id])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    (child, move || {
        std::fs::read_to_string(&out_path).unwrap_or_default()
    })
}

fn sleeper() -> Bundle {
    busybox().args(&["sleep", "60"]).build()
}

fn sigkill(pid: i64) {
    // SAFETY: plain kill of a pid we looked up.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

// ------------------------------------------------- processes of the sandbox

#[test]
fn kill9_of_the_application_kernel() {
    let _s = serial();
    let a = atoll();
    let b = sleeper();
    // Running: the container's init pid is the kernel.
    let id1 = id("kkernel");
    let pid = start_detached(&a, "userspace", &b, &id1);
    // The init names itself atoll-kernel once it has started the gofer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !comm(pid).starts_with("atoll") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        comm(pid).starts_with("atoll"),
        "the init of a sandbox is the kernel, not {:?}",
        comm(pid)
    );
    sigkill(pid);
    a.wait_status(&id1, "stopped");
    truthful_state(&a, &id1, "kernel killed while running");
    a.run(&["delete", &id1]).ok();
    leaks(&a, &id1, &b).assert_clean();
    assert_no_orphans(&a, "kernel killed while running");

    // Created, not started.
    let id = id("kkernel-created");
    a.run(&[
        "--isolation",
        "userspace",
        "create",
        "-b",
        b.path_str(),
        &id,
    ])
    .ok();
    sigkill(a.state(&id)["pid"].as_i64().unwrap());
    a.wait_status(&id, "stopped");
    truthful_state(&a, &id, "kernel killed while created");
    a.run(&["start", &id]).fails_with("stopped");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    assert_no_orphans(&a, "kernel killed while created");
}

/// The gofer: the kernel's child that is not a stub (stubs are named
/// atoll-stub; the gofer also has a network namespace of its own).
fn gofer_of(kernel: i64) -> Option<i64> {
    let children = std::fs::read_to_string(format!("/proc/{kernel}/task/{kernel}/children"))
        .unwrap_or_default();
    let net = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<i64>().ok())
        .find(|&c| comm(c) != "atoll-stub" && net(c) != net(kernel))
}

#[test]
fn kill9_of_the_gofer() {
    let _s = serial();
    let a = atoll();
    let b = busybox()
        .sh("while true; do cat /etc/passwd > /dev/null; sleep 0.05; done")
        .build();
    let id = id("kgofer");
    let kernel = start_detached(&a, "userspace", &b, &id);
    std::thread::sleep(Duration::from_millis(300));
    let gofer = gofer_of(kernel).expect("the sandbox has a gofer");
    sigkill(gofer);
    // Without its file server the sandbox may go on (file operations
    // fail) or stop; either way `state` must say which.
    std::thread::sleep(Duration::from_millis(1000));
    let status = truthful_state(&a, &id, "gofer killed");
    eprintln!(
        "after kill -9 of the gofer: state {status}, kernel {}",
        if alive(kernel) { "alive" } else { "gone" }
    );
    let out = a.run(&["exec", &id, "cat", "/etc/hostname"]);
    eprintln!(
        "exec after the gofer died: exit {} {}",
        out.code,
        out.stderr.trim()
    );
    if out.code != 0 {
        assert!(
            out.stderr.lines().filter(|l| !l.is_empty()).count() <= 1,
            "{out:#?}"
        );
    }
    force_delete_and_check(&a, &id, &b, "gofer killed");
}

/// With every file access through the gofer (directfs off), the gofer's
/// death turns the workload's opens into EIO, as a lost file server would
/// on Linux: the kernel serves on and the workload sees errors, never a
/// crash of its kernel.
#[test]
fn a_dead_gofer_gives_the_workload_eio() {
    let _s = serial();
    let a = atoll();
    // Shell builtins only (a dead gofer cannot serve an exec): report each
    // change between ok and failing, then one failure's own message.
    let b = busybox()
        .sh("i=0; last=; while [ $i -lt 20000 ]; do \
               if read -r l 2>/dev/null < /etc/passwd; then s=ok; else s=fail; fi; \
               [ \"$s\" != \"$last\" ] && echo $s; last=$s; i=$((i+1)); \
               [ -e /tmp/stop ] && break; done; \
             read -r l < /etc/passwd; echo done")
        .tmpfs("/tmp")
        .annotation("dev.atoll.directfs", "false")
        .build();
    let id = id("gofer-eio");
    let (mut child, read) = run_logged(&a, &b, &id);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read().contains("ok") {
        assert!(Instant::now() < deadline, "never read the file: {}", read());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The foreground run may still be writing its state: ask until it
    // names the kernel.
    let kernel = loop {
        let out = a.run(&["state", &id]);
        let pid = serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["pid"].as_i64())
            .filter(|p| *p > 0);
        if let Some(p) = pid {
            break p;
        }
        assert!(Instant::now() < deadline, "no state: {out:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let gofer = gofer_of(kernel).expect("the sandbox has a gofer");
    sigkill(gofer);
    let status = child.wait().unwrap();
    let text = read();
    assert!(text.contains("ok\nfail\n"), "{text}");
    assert!(text.contains("Input/output error"), "{text}");
    assert!(text.contains("done"), "the kernel served on: {text}");
    assert!(!alive(kernel) || status.code().is_some(), "{status:?}");
    force_delete_and_check(&a, &id, &b, "gofer killed, EIO");
}

/// The userspace kernel reads a large rootfs file through a window of it
/// mapped into its own memory (`vfs/hostwindow.rs`). A host process that
/// truncates the file under it makes the window's pages past the new end
/// fault (SIGBUS): the kernel must survive every one, serve on, and read
/// the file as it is once the host leaves it alone.
#[test]
fn a_rootfs_file_truncated_on_the_host_while_streamed() {
    let _s = serial();
    let a = atoll();
    const FINAL: usize = 3_000_123;
    // dd of the whole file, again and again, until it reads the size the
    // host leaves it at (or gives up).
    let b = busybox()
        .sh(&format!(
            "i=0; n=; while [ \"$n\" != {FINAL} ] && [ $i -lt 4000 ]; do \
               n=$(dd if=/big bs=4096 2>/dev/null | wc -c); i=$((i+1)); \
               [ $i = 20 ] && echo streaming; done; echo \"final=$n after $i\""
        ))
        .tmpfs("/tmp")
        .build();
    let big = b.rootfs.join("big");
    let fill = |len: usize| {
        // In place (O_TRUNC keeps the inode the kernel has open).
        std::fs::write(&big, vec![b'a'; len]).unwrap();
    };
    fill(8 << 20);
    let id = id("host-truncate");
    let (mut child, read) = run_logged(&a, &b, &id);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read().contains("streaming") {
        assert!(Instant::now() < deadline, "never streamed: {}", read());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Cut the file short and grow it back, at random moments of the reads.
    let mut rng = Rng::new("host truncation");
    let file = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    for _ in 0..60 {
        file.set_len(5000 + rng.next() % 8192).unwrap();
        std::thread::sleep(rng.delay(Duration::from_millis(6)));
        fill(8 << 20);
        std::thread::sleep(rng.delay(Duration::from_millis(6)));
    }
    fill(FINAL);
    let status = exit_by(&mut child, deadline + Duration::from_secs(60), &read);
    let text = read();
    assert!(
        text.contains(&format!("final={FINAL} after")),
        "the kernel died or read a stale size: {status:?}: {text}"
    );
    assert!(status.success(), "{status:?}: {text}");
    force_delete_and_check(&a, &id, &b, "host truncation");
}

/// A file of a bind mount shared with the host streams through a window
/// too (a local file system: vfs/hostwindow.rs), whose size the kernel
/// asks again as it revalidates the mount. A reader that waited while a
/// host process cut the file short must read up to the new end exactly:
/// with the size the window kept, the rest of the new last page would
/// come back as zeros past the end. Three readers
/// (tests/progs/read_after_cut.c):
/// - one that slept before each look (news from outside);
/// - one that waited with a loop of stats, never sleeping: its size is
///   older than `hostfs::RECHECK_AFTER` by then (the host waits for that;
///   the sandbox's timers, its network stack's among them, bring news
///   too, so this one may pass without the rule);
/// - one that looked for the host's answer before it asked, then waited
///   as the second: the answer appearing is news (`HostFs::missing`),
///   however soon the host gives it.
#[test]
fn a_shared_file_cut_short_on_the_host_reads_its_new_end() {
    let _s = serial();
    let a = atoll();
    let src = std::fs::read_to_string(progs().join("read_after_cut.c")).unwrap();
    let bin = cprog::compile("read_after_cut", &src, &[]);
    for how in ["sleep", "busy", "looked"] {
        let data = tempfile::tempdir().unwrap();
        let big = data.path().join("big");
        std::fs::write(&big, vec![b'a'; 2 << 20]).unwrap();
        let b = busybox()
            .bind(data.path(), "/data", false)
            .args(&[
                "/read_after_cut",
                "/data/big",
                "/data/ready",
                "/data/go",
                how,
            ])
            .build();
        cprog::install(&bin, &b.rootfs, "/read_after_cut");
        let id = id(&format!("shared-cut-{how}"));
        let (mut child, read) = run_logged(&a, &b, &id);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !data.path().join("ready").exists() {
            assert!(Instant::now() < deadline, "{how}: never read: {}", read());
            // Soon after `ready`: within `RECHECK_AFTER` of the reader's
            // last read, for the "looked" reader (a small file, quick to
            // cut, for the same reason).
            std::thread::sleep(Duration::from_micros(200));
        }
        // "busy" tests the rule of time: a size read from the host is
        // trusted for `RECHECK_AFTER` (2 ms) at most. The host may see
        // `ready` within that of the reader's last read, and the reader
        // may find "go" on its first look: cut the file only once the
        // size the reader read is surely older. "looked" tests the rule
        // of news, at once: the name "go" appearing where the reader had
        // found none is news from outside.
        if how == "busy" {
            std::thread::sleep(Duration::from_millis(10));
        }
        let file = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        file.set_len((1 << 20) + 100).unwrap();
        std::fs::write(data.path().join("go"), b"").unwrap();
        let status = exit_by(&mut child, deadline + Duration::from_secs(30), &read);
        let text = read();
        assert!(status.success(), "{how}: {status:?}: {text}");
        assert!(
            text.contains("first=1048576\n"),
            "{how}: the first read: {text}"
        );
        assert!(
            text.contains("rest=100 all written bytes\n"),
            "{how}: read past the host's new end: {text}"
        );
        force_delete_and_check(&a, &id, &b, "shared file truncation");
    }
}

/// The exit status of `child` (a `run_logged` run), which must end by
/// `deadline` (else it is killed and the test fails with its output).
fn exit_by(
    child: &mut Child,
    deadline: Instant,
    read: &dyn Fn() -> String,
) -> std::process::ExitStatus {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the workload never finished: {}", read());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill9_of_a_native_init() {
    let _s = serial();
    let a = atoll();
    let b = busybox().sh("sleep 60 & sleep 60").build();
    let id = id("kinit");
    let pid = start_detached(&a, "native", &b, &id);
    sigkill(pid);
    a.wait_status(&id, "stopped");
    truthful_state(&a, &id, "native init killed");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
    assert_no_orphans(&a, "native init killed");
}

// ------------------------------------------------- the CLI killed mid-step

/// Kills `atoll <step>` at random delays up to a little more than the
/// step takes, `iterations()` times per level; after each kill the
/// invariants hold. `setup` prepares the container (returns the args of
/// the step to kill).
fn cli_killed_during(step: &str, b: &Bundle, setup: impl Fn(&Atoll, &str, &str) -> Vec<String>) {
    let _s = serial();
    let a = atoll();
    let mut rng = Rng::new(step);
    for level in LEVELS {
        // How long the step takes when left alone.
        let id0 = id(&format!("{step}-timing"));
        let args = setup(&a, level, &id0);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let took = duration_of(|| {
            a.run(&args);
        });
        force_delete_and_check(&a, &id0, b, &format!("{step} at {level}, not killed"));
        let range = took.mul_f32(1.3);
        let mut killed = 0;
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..iterations() {
            let id = id(step);
            let args = setup(&a, level, &id);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let delay = rng.delay(range);
            let what = format!("{step} at {level}, killed after {delay:?} (iteration {i})");
            if kill_after(spawn(&a, &args), delay) {
                killed += 1;
            }
            let status = truthful_state(&a, &id, &what);
            let status = status.split(':').next().unwrap_or_default().to_string();
            *seen.entry(status).or_default() += 1;
            force_delete_and_check(&a, &id, b, &what);
        }
        eprintln!(
            "kill -9 during {step} at {level}: step takes {took:?}, killed {killed} of {} times; \
             states afterwards: {seen:?}",
            iterations()
        );
    }
}

#[test]
fn cli_killed_during_create() {
    let b = sleeper();
    let path = b.path_str().to_string();
    cli_killed_during("create", &b, |_a, level, id| {
        ["--isolation", level, "create", "-b", &path, id]
            .map(String::from)
            .to_vec()
    });
}

/// `run` is create, start, wait and delete in one process: killing it at
/// random points covers "after create" and "during start" of a foreground
/// run, its wait, and its own delete.
#[test]
fn cli_killed_during_run() {
    let b = busybox().args(&["sleep", "0.3"]).build();
    let path = b.path_str().to_string();
    cli_killed_during("run", &b, |_a, level, id| {
        ["--isolation", level, "run", "-b", &path, id]
            .map(String::from)
            .to_vec()
    });
}

#[test]
fn cli_killed_during_start() {
    let b = sleeper();
    let path = b.path_str().to_string();
    cli_killed_during("start", &b, |a, level, id| {
        a.run(&["--isolation", level, "create", "-b", &path, id])
            .ok();
        vec!["start".into(), id.into()]
    });
}

#[test]
fn cli_killed_during_exec() {
    let b = sleeper();
    let path = b.path_str().to_string();
    cli_killed_during("exec", &b, |a, level, id| {
        a.run(&["--isolation", level, "run", "-d", "-b", &path, id])
            .ok();
        ["exec", id, "sh", "-c", "echo hi; sleep 0.2"]
            .map(String::from)
            .to_vec()
    });
}

#[test]
fn cli_killed_during_delete() {
    let b = sleeper();
    let path = b.path_str().to_string();
    cli_killed_during("delete", &b, |a, level, id| {
        a.run(&["--isolation", level, "run", "-d", "-b", &path, id])
            .ok();
        vec!["delete".into(), "--force".into(), id.into()]
    });
}

// ------------------------------------------------- damaged state

#[derive(Clone, Copy, Debug)]
enum Damage {
    Empty,
    Half,
    Garbage,
    Missing,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Empty => std::fs::write(path, b"").unwrap(),
        Damage::Half => {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        }
        Damage::Garbage => std::fs::write(path, b"\x00\xff garbage {{{\n").unwrap(),
        Damage::Missing => std::fs::remove_file(path).unwrap(),
    }
}

#[test]
fn damaged_state_gives_one_line_and_force_delete_works() {
    let _s = serial();
    let a = atoll();
    let b = sleeper();
    type StateFile = fn(&Atoll, &str) -> std::path::PathBuf;
    let files: [(&str, StateFile); 3] = [
        ("state.json", |a, id| a.root().join(id).join("state.json")),
        ("atoll.json", |a, id| {
            a.root().join(".atoll").join(id).join("atoll.json")
        }),
        ("config.json", |a, id| {
            a.root().join(".atoll").join(id).join("config.json")
        }),
    ];
    for level in LEVELS {
        for (name, path) in files {
            for how in [
                Damage::Empty,
                Damage::Half,
                Damage::Garbage,
                Damage::Missing,
            ] {
                let what = format!("{name} {how:?} at {level}");
                let id = id("damaged");
                start_detached(&a, level, &b, &id);
                damage(&path(&a, &id), how);
                let status = truthful_state(&a, &id, &what);
                let list = a.run(&["list", "--format", "json"]);
                assert_eq!(list.code, 0, "{what}: list fails: {list:#?}");
                let out = a.run(&["delete", &id]);
                if out.code != 0 {
                    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
                    assert_eq!(lines.len(), 1, "{what}: delete error: {out:#?}");
                    if status.starts_with("error") {
                        assert!(out.stderr.contains("--force"), "{what}: {out:#?}");
                    }
                }
                eprintln!(
                    "{what}: state -> {status}; delete -> {}",
                    if out.code == 0 {
                        "ok".to_string()
                    } else {
                        out.stderr.trim().to_string()
                    }
                );
                force_delete_and_check(&a, &id, &b, &what);
            }
        }
        // The whole libcontainer directory gone, atoll's left.
        let what = format!("libcontainer state directory removed at {level}");
        let id = id("damaged-dir");
        start_detached(&a, level, &b, &id);
        std::fs::remove_dir_all(a.root().join(&id)).unwrap();
        a.run(&["state", &id]).fails_with("delete --force");
        force_delete_and_check(&a, &id, &b, &what);
    }
}
