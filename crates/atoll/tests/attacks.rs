//! The attack battery: each attack of tests/attacks is a small C program
//! run as the workload of a container at each level (native, userspace),
//! as root with Docker's default capabilities unless it says otherwise.
//! It prints one verdict line (`ATTACK <name> BLOCKED|HARMLESS|ESCAPED
//! <how>`); wherever the host can see the attack's effect, the test looks
//! from the host side too (a marker file watched with inotify, sysctls,
//! mount tables, a traced host process, keys, listeners), and the host's
//! evidence overrides a program's claim.
//!
//! The run produces the attack × level table: written to
//! `<target>/attack-table.md`, and compared with the table in
//! docs/security.md (between the `attack-table` markers): the test fails if
//! they differ. `ATOLL_UPDATE_DOCS=1` (`make docs`) rewrites the docs
//! instead. `ATOLL_ATTACKS=name,name` runs only those (no docs check).
//!
//! Expected results are stated per level, honestly: a level that does not
//! block something says so here and in the docs.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atoll_testkit::{Atoll, Bundle, BundleBuilder, Out, cprog};
use common::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Native,
    Userspace,
}

const LEVELS: [Level; 2] = [Level::Native, Level::Userspace];

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Native => "native",
            Level::Userspace => "userspace",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Kind {
    Blocked,
    Harmless,
    Escaped,
    /// The program gave no verdict (crashed, timed out): always a failure.
    NoVerdict,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "BLOCKED" => Some(Kind::Blocked),
            "HARMLESS" => Some(Kind::Harmless),
            "ESCAPED" => Some(Kind::Escaped),
            _ => None,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Kind::Blocked => "blocked",
            Kind::Harmless => "harmless",
            Kind::Escaped => "**ESCAPED**",
            Kind::NoVerdict => "**no verdict**",
        }
    }
}

/// What one attack at one level came to.
struct Outcome {
    kind: Kind,
    /// Stable text for the table.
    how: String,
    /// Everything else (INFO lines, host measurements), for the log.
    details: Vec<String>,
}

impl Outcome {
    fn cell(&self) -> String {
        format!("{}: {}", self.kind.word(), self.how.replace('|', "\\|"))
    }
}

/// One attack: its program (tests/attacks/<name>.c), what it tries, how to
/// run it, and the result expected at each level (native, userspace).
struct Attack {
    name: &'static str,
    what: &'static str,
    run: fn(&Ctx, Level) -> Outcome,
    expect: [Kind; 2],
}

/// Shared by every attack: the atoll instance and a host directory with a
/// marker file the attacks try to read.
struct Ctx {
    a: Atoll,
    host: tempfile::TempDir,
    marker: PathBuf,
    secret: String,
}

impl Ctx {
    fn new() -> Ctx {
        let a = atoll();
        let host = tempfile::Builder::new()
            .prefix("atoll-attack-")
            .tempdir_in("/tmp")
            .unwrap();
        let marker = host.path().join("secret");
        let secret = format!("HOST-SECRET-{}", std::process::id());
        std::fs::write(&marker, format!("{secret}\n")).unwrap();
        Ctx {
            a,
            host,
            marker,
            secret,
        }
    }

    /// A busybox bundle running /attack as root with Docker's default
    /// capabilities, told where the host's marker is and what it holds.
    fn bundle(&self) -> BundleBuilder {
        busybox()
            .args(&["/attack"])
            .docker_caps()
            .env(&format!("ATTACK_MARKER={}", self.marker.display()))
            .env(&format!("ATTACK_SECRET={}", self.secret))
    }
}

fn attacks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/attacks")
}

/// Compiles tests/attacks/<name>.c with attack.h pasted in place of its
/// include line (so the source hash covers both).
fn program(name: &str) -> PathBuf {
    let dir = attacks_dir();
    let header = std::fs::read_to_string(dir.join("attack.h")).unwrap();
    let body = std::fs::read_to_string(dir.join(format!("{name}.c"))).unwrap();
    let mut src = String::new();
    for (i, line) in body.lines().enumerate() {
        if line.trim() == "#include \"attack.h\"" {
            src.push_str("#line 1 \"attack.h\"\n");
            src.push_str(&header);
            src.push_str(&format!("#line {} \"{name}.c\"\n", i + 2));
        } else {
            src.push_str(line);
            src.push('\n');
        }
    }
    cprog::compile(&format!("attack-{name}"), &src, &["-pthread"])
}

/// Builds the bundle and installs the attack program as /attack.
fn build(b: BundleBuilder, name: &str) -> Bundle {
    let b = b.build();
    cprog::install(&program(name), &b.rootfs, "/attack");
    b
}

/// What a program printed, and how it ended.
#[derive(Default, Debug)]
struct Run {
    verdict: Option<(Kind, String)>,
    infos: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl Run {
    /// The outcome: the program's verdict unless the host saw otherwise.
    fn outcome(&self, host_evidence: Vec<String>) -> Outcome {
        let mut details = self.infos.clone();
        if !self.stderr.trim().is_empty() {
            details.push(format!("stderr: {}", self.stderr.trim()));
        }
        details.push(format!("exit {}", self.code));
        if !host_evidence.is_empty() {
            details.extend(host_evidence.iter().cloned());
            return Outcome {
                kind: Kind::Escaped,
                how: format!("the host saw: {}", host_evidence.join("; ")),
                details,
            };
        }
        match &self.verdict {
            Some((k, how)) => Outcome {
                kind: *k,
                how: how.clone(),
                details,
            },
            None => Outcome {
                kind: Kind::NoVerdict,
                how: format!(
                    "exit {}{}",
                    self.code,
                    if self.timed_out { ", timed out" } else { "" }
                ),
                details,
            },
        }
    }

    fn info_value(&self, prefix: &str) -> Option<String> {
        self.infos
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(|s| s.trim().to_string()))
    }
}

/// Host-side actions while the program waits (`WAIT`: before it attacks)
/// or holds (`READY`: after); each gets the container's host pid and id.
#[derive(Default)]
struct Hooks<'a> {
    on_wait: Option<Hook<'a>>,
    on_ready: Option<Hook<'a>>,
}

/// A host-side action: gets the container's host pid and id.
type Hook<'a> = Box<dyn FnMut(i64, &str) + 'a>;

/// How long a program may run before it is deleted with --force, and how
/// long it may take to stop once told to (SIGTERM after READY).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

fn pid_of(a: &Atoll, id: &str) -> i64 {
    let out = a.run(&["state", id]);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["pid"].as_i64())
        .unwrap_or(0)
}

/// Runs the bundle in the foreground at `level`, following the program's
/// protocol (attack.h); checks the container left nothing behind.
fn run_program(a: &Atoll, level: Level, b: &Bundle, prefix: &str, mut hooks: Hooks) -> Run {
    let id = id(prefix);
    let err = tempfile::tempfile().unwrap();
    let mut child = a
        .command()
        .args(["--isolation", level.name(), "run", "-b", b.path_str(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("atoll run");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut deadline = Instant::now() + RUN_TIMEOUT;
    let mut run = Run::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                run.stdout.push_str(&line);
                run.stdout.push('\n');
                if line == "WAIT" {
                    let pid = pid_of(a, &id);
                    if let Some(f) = hooks.on_wait.as_mut() {
                        f(pid, &id);
                    }
                    a.run(&["kill", &id, "USR1"]);
                } else if line == "READY" {
                    let pid = pid_of(a, &id);
                    if let Some(f) = hooks.on_ready.as_mut() {
                        f(pid, &id);
                    }
                    a.run(&["kill", &id, "TERM"]);
                    deadline = deadline.min(Instant::now() + STOP_TIMEOUT);
                } else if let Some(rest) = line.strip_prefix("ATTACK ") {
                    let mut f = rest.splitn(3, ' ');
                    let _name = f.next();
                    let kind = f.next().and_then(Kind::parse);
                    let how = f.next().unwrap_or_default().to_string();
                    if let (Some(k), None) = (kind, &run.verdict) {
                        run.verdict = Some((k, how));
                    }
                } else if let Some(i) = line.strip_prefix("INFO ") {
                    run.infos.push(i.to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.timed_out = true;
                run.infos.push(format!(
                    "did not finish in time{}: deleted with --force",
                    if run.verdict.is_some() {
                        " after its verdict"
                    } else {
                        ""
                    }
                ));
                a.run(&["delete", "--force", &id]);
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().unwrap();
    let _ = reader.join();
    use std::io::{Read, Seek};
    let mut err = err;
    err.rewind().unwrap();
    err.read_to_string(&mut run.stderr).unwrap();
    use std::os::unix::process::ExitStatusExt;
    run.code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    leaks(a, &id, b).assert_clean();
    run
}

fn run_simple(ctx: &Ctx, level: Level, name: &str, b: BundleBuilder) -> Run {
    let b = build(b, name);
    run_program(&ctx.a, level, &b, name, Hooks::default())
}

/// inotify on host paths: any open or read of them is evidence.
struct Watch {
    fd: i32,
    what: String,
}

impl Watch {
    fn new(paths: &[&Path], what: &str) -> Watch {
        // SAFETY: inotify on paths we own; the descriptor is closed in Drop.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        for p in paths {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            let w =
                unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
            assert!(w >= 0, "inotify on {}", p.display());
        }
        Watch {
            fd,
            what: what.to_string(),
        }
    }

    /// Number of events since the last call.
    fn drain(&self) -> usize {
        let mut n = 0;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into our buffer.
            let r = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                return n;
            }
            let mut off = 0usize;
            while off + 16 <= r as usize {
                let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
                off += 16 + len;
                n += 1;
            }
        }
    }

    fn evidence(&self) -> Vec<String> {
        match self.drain() {
            0 => vec![],
            n => vec![format!("{} opened or read ({n} inotify events)", self.what)],
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: our descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// Host files the attacks may try to change: compared before and after,
/// and put back if changed.
struct HostValues(Vec<(PathBuf, Option<String>)>);

impl HostValues {
    fn snapshot(paths: &[&str]) -> HostValues {
        HostValues(
            paths
                .iter()
                .map(|p| (PathBuf::from(p), std::fs::read_to_string(p).ok()))
                .collect(),
        )
    }

    fn evidence(&self) -> Vec<String> {
        let mut ev = Vec::new();
        for (p, before) in &self.0 {
            let now = std::fs::read_to_string(p).ok();
            if now != *before {
                ev.push(format!("host {} changed to {:?}", p.display(), now));
                if let Some(b) = before {
                    // transparent_hugepage-style files show "a [b] c".
                    let value = b
                        .split_whitespace()
                        .find(|w| w.starts_with('['))
                        .map(|w| w.trim_matches(['[', ']']).to_string())
                        .unwrap_or_else(|| b.trim().to_string());
                    let _ = std::fs::write(p, value);
                }
            }
        }
        ev
    }
}

/// Runs `atoll <args>` with another binary (a copy the attack may
/// overwrite) on the same state root.
fn run_with_bin(bin: &Path, a: &Atoll, args: &[&str], timeout: Duration) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(bin)
        .arg("--root")
        .arg(a.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -9;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code,
        stdout: std::fs::read_to_string(o).unwrap_or_default(),
        stderr: std::fs::read_to_string(e).unwrap_or_default(),
    }
}

fn sha256(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------- attacks

fn proc_root(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(ctx.bundle(), "proc_root");
    let w = Watch::new(&[&ctx.marker], "the host marker file");
    let run = run_program(&ctx.a, level, &b, "proc-root", Hooks::default());
    run.outcome(w.evidence())
}

fn proc_sys(ctx: &Ctx, level: Level) -> Outcome {
    let values = HostValues::snapshot(&[
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/randomize_va_space",
    ]);
    let sysrq = || {
        let out = Command::new("dmesg").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("HELP : ")
            .count()
    };
    let before = sysrq();
    let run = run_simple(ctx, level, "proc_sys", ctx.bundle());
    let mut ev = values.evidence();
    if sysrq() != before {
        ev.push("the host kernel log shows a sysrq help request".into());
    }
    run.outcome(ev)
}

fn sys_write(ctx: &Ctx, level: Level) -> Outcome {
    let mut paths = vec![
        "/sys/kernel/rcu_expedited".to_string(),
        "/sys/kernel/mm/transparent_hugepage/enabled".to_string(),
        "/sys/kernel/mm/ksm/run".to_string(),
    ];
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path().join("release_agent");
        if p.exists() {
            paths.push(p.to_string_lossy().into_owned());
        }
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let values = HostValues::snapshot(&refs);
    let run = run_simple(ctx, level, "sys_write", ctx.bundle());
    run.outcome(values.evidence())
}

fn mount(ctx: &Ctx, level: Level) -> Outcome {
    let tag = atoll_testkit::unique("atoll-attack-mount");
    let b = build(ctx.bundle().env(&format!("ATTACK_TAG={tag}")), "mount");
    let mount_points = |pid: i64| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .collect()
    };
    let before = std::cell::RefCell::new(Vec::new());
    let mut ev = Vec::new();
    let hooks = Hooks {
        on_wait: Some(Box::new(|pid, _id| {
            *before.borrow_mut() = mount_points(pid)
        })),
        on_ready: Some(Box::new(|pid, _id| {
            for (whose, file) in [
                ("the host's", "/proc/self/mountinfo".to_string()),
                ("the container's", format!("/proc/{pid}/mountinfo")),
            ] {
                if std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .contains(&tag)
                {
                    ev.push(format!("a tagged mount in {whose} mount table"));
                }
            }
            let after = mount_points(pid);
            let before = before.borrow();
            if after != *before {
                ev.push(format!(
                    "the container's mount table changed from {before:?} to {after:?}"
                ));
            }
        })),
    };
    let run = run_program(&ctx.a, level, &b, "mount", hooks);
    if std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&tag)
    {
        ev.push("a tagged mount left on the host".into());
    }
    run.outcome(ev)
}

fn shocker(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(ctx.bundle(), "shocker");
    let w = Watch::new(&[&ctx.marker], "the host marker file");
    let run = run_program(&ctx.a, level, &b, "shocker", Hooks::default());
    run.outcome(w.evidence())
}

fn proc_exe(ctx: &Ctx, level: Level) -> Outcome {
    // The exec is done by a copy of atoll, so a successful attack damages
    // the copy, never the binary under test.
    let copy = ctx.host.path().join(format!("atoll-copy-{}", level.name()));
    std::fs::copy(&ctx.a.bin, &copy).unwrap();
    let before = sha256(&copy);
    let b = build(ctx.bundle(), "proc_exe");
    let mut execs = Vec::new();
    let hooks = Hooks {
        on_ready: Some(Box::new(|_pid, id| {
            // /bin/sh is now "#!/proc/self/exe"; /proc/self/exe directly too.
            for i in 0..10 {
                let args: &[&str] = if i % 2 == 0 {
                    &["exec", id, "/bin/sh", "-c", "true"]
                } else {
                    &["exec", id, "/proc/self/exe"]
                };
                let out = run_with_bin(&copy, &ctx.a, args, Duration::from_secs(10));
                execs.push(format!(
                    "{} -> {} {}{}",
                    args[2],
                    out.code,
                    out.stdout.trim(),
                    out.stderr.trim()
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(500));
        })),
        ..Default::default()
    };
    let run = run_program(&ctx.a, level, &b, "proc-exe", hooks);
    let mut ev = Vec::new();
    if sha256(&copy) != before {
        ev.push("the atoll binary that ran exec was modified".into());
    }
    let mut o = run.outcome(ev);
    o.details
        .extend(execs.into_iter().map(|e| format!("exec {e}")));
    o
}

fn exec_seccomp(ctx: &Ctx, level: Level) -> Outcome {
    // Docker's capabilities and, as in Docker, no no_new_privs; atoll's
    // default profile in the bundle, so that both levels enforce the same.
    let b = ctx.bundle().modify(|s| {
        let profile = atoll_runtime::seccomp_profile::default_profile(
            &atoll_runtime::effective::bounding_caps(s),
        );
        let mut p = s.process().clone().unwrap();
        p.set_no_new_privileges(Some(false));
        s.set_process(Some(p));
        let mut l = s.linux().clone().unwrap();
        l.set_seccomp(Some(profile));
        s.set_linux(Some(l));
    });
    let b = build(b, "exec_seccomp");
    let mut exec = None;
    let hooks = Hooks {
        on_ready: Some(Box::new(|_pid, id| {
            let out = ctx.a.run(&["exec", id, "/attack", "exec"]);
            exec = Some(parse_output("exec_seccomp", &out));
        })),
        ..Default::default()
    };
    let init = run_program(&ctx.a, level, &b, "exec-seccomp", hooks);
    let Some(exec) = exec else {
        return init.outcome(vec![]);
    };
    let mut o = exec.outcome(vec![]);
    o.details
        .extend(init.infos.iter().map(|i| format!("init: {i}")));
    o
}

/// Results of several runs of one attack, folded into one outcome.
#[derive(Default)]
struct Fold {
    kinds: Vec<Kind>,
    details: Vec<String>,
    escaped_how: Option<String>,
}

impl Fold {
    fn note(&mut self, what: String, run: &Run) {
        let o = run.outcome(vec![]);
        self.details
            .push(format!("{what}: {} {}", o.kind.word(), o.how));
        self.details
            .extend(o.details.iter().map(|d| format!("  {d}")));
        if o.kind >= Kind::Escaped && self.escaped_how.is_none() {
            self.escaped_how = Some(format!("{what}: {}", o.how));
        }
        self.kinds.push(o.kind);
    }
}

/// The verdict and INFO lines of a program's output.
fn parse_output(name: &str, out: &Out) -> Run {
    let mut run = Run {
        code: out.code,
        stderr: out.stderr.clone(),
        stdout: out.stdout.clone(),
        ..Default::default()
    };
    let prefix = format!("ATTACK {name} ");
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let (k, how) = rest.split_once(' ').unwrap_or((rest, ""));
            run.verdict = Kind::parse(k).map(|k| (k, how.to_string()));
        } else if let Some(i) = line.strip_prefix("INFO ") {
            run.infos.push(i.to_string());
        }
    }
    run
}

fn leaked_fd(ctx: &Ctx, level: Level) -> Outcome {
    let w = Watch::new(&[&ctx.marker], "the host marker file");
    let mut fold = Fold::default();
    // The init, then the init with its cwd a /proc/self/fd/N magic link.
    let run = run_simple(ctx, level, "leaked_fd", ctx.bundle());
    fold.note("init".into(), &run);
    let mut create_refused = 0;
    for n in 3..=8 {
        let cwd = format!("/proc/self/fd/{n}");
        let b = ctx.bundle().modify(|s| {
            let mut p = s.process().clone().unwrap();
            p.set_cwd(PathBuf::from(&cwd));
            s.set_process(Some(p));
        });
        let run = run_simple(ctx, level, "leaked_fd", b);
        if run.verdict.is_none() && run.code != 0 && !run.timed_out {
            create_refused += 1;
            fold.details
                .push(format!("cwd {cwd}: refused: {}", run.stderr.trim()));
        } else {
            fold.note(format!("cwd {cwd}"), &run);
        }
    }
    // exec'd processes, plain and with --cwd /proc/self/fd/N.
    let b = build(ctx.bundle().args(&["sleep", "120"]), "leaked_fd");
    let id = id("leaked-exec");
    ctx.a
        .run(&[
            "--isolation",
            level.name(),
            "run",
            "-d",
            "-b",
            b.path_str(),
            &id,
        ])
        .ok();
    let mut exec_refused = 0;
    for n in [None, Some(3), Some(4), Some(5), Some(6), Some(7), Some(8)] {
        let cwd = n.map(|n| format!("/proc/self/fd/{n}"));
        let mut args = vec!["exec"];
        if let Some(c) = &cwd {
            args.extend(["--cwd", c.as_str()]);
        }
        args.extend([id.as_str(), "/attack"]);
        let run = parse_output("leaked_fd", &ctx.a.run(&args));
        let what = format!(
            "exec{}",
            cwd.as_deref()
                .map(|c| format!(" --cwd {c}"))
                .unwrap_or_default()
        );
        if run.verdict.is_none() && run.code != 0 {
            exec_refused += 1;
            fold.details
                .push(format!("{what}: refused: {}", run.stderr.trim()));
        } else {
            fold.note(what, &run);
        }
    }
    ctx.a.run(&["delete", "--force", &id]).ok();
    leaks(&ctx.a, &id, &b).assert_clean();
    let host = w.evidence();
    let kind = if !host.is_empty() {
        Kind::Escaped
    } else {
        fold.kinds.iter().copied().max().unwrap_or(Kind::Blocked)
    };
    let how = if !host.is_empty() {
        format!("the host saw: {}", host.join("; "))
    } else if let Some(h) = fold.escaped_how {
        h
    } else {
        format!(
            "no inherited descriptor or working directory leads outside the rootfs \
             (init and exec'd processes; a cwd of /proc/self/fd/3..8 is refused by \
             {create_refused} of 6 creates and {exec_refused} of 6 execs, the others stay inside)"
        )
    };
    Outcome {
        kind,
        how,
        details: fold.details,
    }
}

fn ptrace_host(ctx: &Ctx, level: Level) -> Outcome {
    let mut target = Command::new("sleep").arg("120").spawn().unwrap();
    let tpid = target.id();
    let b = build(
        ctx.bundle().env(&format!("ATTACK_PID={tpid}")),
        "ptrace_host",
    );
    let mut ev = Vec::new();
    let hooks = Hooks {
        on_ready: Some(Box::new(|_pid, _id| {
            let status =
                std::fs::read_to_string(format!("/proc/{tpid}/status")).unwrap_or_default();
            let tracer = status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if tracer != "0" {
                ev.push(format!("the host process is traced by pid {tracer}"));
            }
        })),
        ..Default::default()
    };
    let run = run_program(&ctx.a, level, &b, "ptrace", hooks);
    if target.try_wait().unwrap().is_some() {
        ev.push("the host process died".into());
    }
    let _ = target.kill();
    let _ = target.wait();
    run.outcome(ev)
}

fn kernel_module(ctx: &Ctx, level: Level) -> Outcome {
    let before = std::fs::read_to_string("/proc/modules").ok();
    let run = run_simple(ctx, level, "kernel_module", ctx.bundle());
    let mut ev = Vec::new();
    if std::fs::read_to_string("/proc/modules").ok() != before {
        ev.push("the host's module list changed".into());
    }
    run.outcome(ev)
}

fn raw_socket(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "raw_socket", ctx.bundle()).outcome(vec![])
}

const KEY_SPEC_USER_KEYRING: i64 = -4;

fn keyctl(ctx: &Ctx, level: Level) -> Outcome {
    let desc = atoll_testkit::unique("atoll-attack-key");
    let added = format!("{desc}-added");
    let cdesc = std::ffi::CString::new(desc.clone()).unwrap();
    // SAFETY: add_key with valid strings and payload.
    let key = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            cdesc.as_ptr(),
            ctx.secret.as_ptr(),
            ctx.secret.len(),
            KEY_SPEC_USER_KEYRING,
        )
    };
    assert!(key > 0, "add_key: {}", std::io::Error::last_os_error());
    let b = ctx
        .bundle()
        .env(&format!("ATTACK_KEY={desc}"))
        .env(&format!("ATTACK_ADD_KEY={added}"));
    let run = run_simple(ctx, level, "keyctl", b);
    let keys = std::fs::read_to_string("/proc/keys").unwrap_or_default();
    let mut ev = Vec::new();
    if keys.contains(&added) {
        ev.push("a key added from the container is in the host's keyring".into());
    }
    // SAFETY: invalidate our own key (KEYCTL_INVALIDATE = 21).
    unsafe { libc::syscall(libc::SYS_keyctl, 21, key) };
    run.outcome(ev)
}

fn bpf(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "bpf", ctx.bundle()).outcome(vec![])
}

fn userfaultfd(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "userfaultfd", ctx.bundle()).outcome(vec![])
}

fn io_uring(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "io_uring", ctx.bundle()).outcome(vec![])
}

fn userns(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "userns", ctx.bundle()).outcome(vec![])
}

fn setns(ctx: &Ctx, level: Level) -> Outcome {
    let run = run_simple(ctx, level, "setns", ctx.bundle());
    let mut ev = Vec::new();
    // The container shares the host's user (and here time) namespace by
    // configuration; the others it must not end up in.
    for t in ["mnt", "net", "pid", "uts", "ipc"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{t}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(theirs) = run.info_value(&format!("ns {t} "))
            && theirs == host
        {
            ev.push(format!("the workload is in the host's {t} namespace"));
        }
    }
    run.outcome(ev)
}

fn chroot_escape(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(ctx.bundle(), "chroot_escape");
    let w = Watch::new(&[&ctx.marker], "the host marker file");
    let run = run_program(&ctx.a, level, &b, "chroot", Hooks::default());
    run.outcome(w.evidence())
}

/// The attack bundle run by an ordinary user (uid 65534): no
/// capabilities, Docker's bounding set, with or without no_new_privs.
fn ordinary_user(ctx: &Ctx, no_new_privs: bool) -> BundleBuilder {
    ctx.bundle().user(65534, 65534).modify(move |s| {
        let mut p = s.process().clone().unwrap();
        let mut c = p.capabilities().clone().unwrap();
        c.set_effective(Some(Default::default()));
        c.set_permitted(Some(Default::default()));
        c.set_inheritable(Some(Default::default()));
        c.set_ambient(Some(Default::default()));
        p.set_capabilities(Some(c));
        p.set_no_new_privileges(Some(no_new_privs));
        s.set_process(Some(p));
    })
}

fn setuid_nnp(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(ordinary_user(ctx, true), "setuid_nnp");
    let suid = b.rootfs.join("attack-suid");
    std::fs::copy(b.rootfs.join("attack"), &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let rootonly = b.rootfs.join("rootonly");
    std::fs::create_dir(&rootonly).unwrap();
    std::fs::set_permissions(&rootonly, std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = run_program(&ctx.a, level, &b, "setuid", Hooks::default());
    let mut ev = Vec::new();
    if rootonly.join("pwned").exists() {
        ev.push("the setuid binary wrote into a root-only directory".into());
    }
    run.outcome(ev)
}

fn setuid_plant(ctx: &Ctx, level: Level) -> Outcome {
    // Set-user-ID programs work for this user (no no_new_privs).
    let b = build(ordinary_user(ctx, false), "setuid_plant");
    let plant = b.rootfs.join("attack-plant");
    std::fs::copy(b.rootfs.join("attack"), &plant).unwrap();
    std::os::unix::fs::chown(&plant, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&plant, std::fs::Permissions::from_mode(0o4757)).unwrap();
    let run = run_program(&ctx.a, level, &b, "plant", Hooks::default());
    run.outcome(Vec::new())
}

fn dev_mem(ctx: &Ctx, level: Level) -> Outcome {
    let tag = atoll_testkit::unique("atoll-attack-kmsg");
    std::fs::write("/dev/kmsg", format!("{tag}\n")).unwrap();
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").unwrap().dev();
    let disk = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let b = build(
        ctx.bundle()
            .env(&format!("ATTACK_KMSG_TAG={tag}"))
            .env(&format!("ATTACK_DISK={disk}")),
        "dev_mem",
    );
    let mut ev = Vec::new();
    let hooks = Hooks {
        on_ready: Some(Box::new(|_pid, id| {
            // cgroup v1: the workload's devices cgroup. (At the userspace
            // level the workload makes no host syscalls; its kernel's
            // cgroup is the same one, see docs/security.md.)
            let list =
                std::fs::read_to_string(format!("/sys/fs/cgroup/devices/atoll/{id}/devices.list"))
                    .unwrap_or_default();
            if level == Level::Native && list.lines().any(|l| l.trim() == "a *:* rwm") {
                ev.push("the container's devices cgroup allows every device (a *:* rwm)".into());
            }
        })),
        ..Default::default()
    };
    let run = run_program(&ctx.a, level, &b, "devmem", hooks);
    run.outcome(ev)
}

fn symlink_race(ctx: &Ctx, level: Level) -> Outcome {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/progs/symlink_race.c"),
    )
    .unwrap();
    let bin = cprog::compile("symlink_race", &src, &["-pthread"]);
    let bind = ctx.host.path().join(format!("bind-{}", level.name()));
    std::fs::create_dir_all(&bind).unwrap();
    // The container has a file of its own at the marker's path: natively,
    // a symlink to / resolves inside the container and opens that one.
    let marker = ctx.marker.display();
    let dir = ctx.marker.parent().unwrap().display();
    let script = format!(
        "mkdir -p {dir} && echo SANDBOX > {marker} && /race d{marker} {} /data",
        ctx.secret
    );
    let b = ctx.bundle().bind(&bind, "/data", false).sh(&script).build();
    cprog::install(&bin, &b.rootfs, "/race");
    let w = Watch::new(
        &[&ctx.marker],
        "the host marker file (outside the bind source)",
    );
    let run = run_program(&ctx.a, level, &b, "race", Hooks::default());
    let mut o = run.outcome(w.evidence());
    o.details.push(
        run.stdout
            .lines()
            .find(|l| l.starts_with("opened="))
            .unwrap_or("")
            .to_string(),
    );
    o
}

/// The host renames a directory of a bind source out of it and back while
/// the workload walks through it (issue 12: the kernel walks bind mounts
/// itself on a donated descriptor).
fn rename_race(ctx: &Ctx, level: Level) -> Outcome {
    let top = ctx.host.path().join(format!("rr-{}", level.name()));
    let bind = top.join("bind");
    let out = top.join("out");
    std::fs::create_dir_all(bind.join("sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(bind.join("sub/inner"), "inner\n").unwrap();
    let secret = out.join("secret");
    std::fs::write(&secret, format!("{}\n", ctx.secret)).unwrap();
    std::fs::write(top.join("secret"), format!("{}\n", ctx.secret)).unwrap();
    let b = build(ctx.bundle().bind(&bind, "/data", false), "rename_race");
    let w = Watch::new(
        &[&secret, &top.join("secret")],
        "the host secret beside the bind source",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut racer = None;
    let hooks = Hooks {
        on_wait: Some(Box::new(|_pid, _id| {
            let (stop, a, b) = (stop.clone(), bind.join("sub"), out.join("sub"));
            racer = Some(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if std::fs::rename(&a, &b).is_ok() {
                        let _ = std::fs::rename(&b, &a);
                        n += 1;
                    }
                }
                n
            }));
        })),
        ..Default::default()
    };
    let run = run_program(&ctx.a, level, &b, "rename-race", hooks);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let renames = racer.map(|r| r.join().unwrap()).unwrap_or(0);
    let mut o = run.outcome(w.evidence());
    o.details
        .push(format!("{renames} renames out and back by the host"));
    o
}

fn state_root(ctx: &Ctx, level: Level) -> Outcome {
    let a = &ctx.a;
    let vb = busybox().args(&["sleep", "120"]).build();
    let victim = id("victim");
    a.run(&[
        "--isolation",
        level.name(),
        "run",
        "-d",
        "-b",
        vb.path_str(),
        &victim,
    ])
    .ok();
    let state_json = a.root().join(&victim).join("state.json");
    let before = std::fs::read(&state_json).unwrap();
    let w = Watch::new(
        &[
            &a.root().join(&victim),
            &a.root().join(".atoll").join(&victim),
        ],
        "the other container's state",
    );
    let b = build(
        ctx.bundle()
            .env(&format!("ATTACK_STATE_ROOT={}", a.root().display()))
            .env(&format!("ATTACK_VICTIM={victim}")),
        "state_root",
    );
    let hooks = Hooks {
        on_wait: Some(Box::new(|_pid, _id| {
            // Whatever atoll itself did until now is not the attack.
            w.drain();
        })),
        ..Default::default()
    };
    let run = run_program(a, level, &b, "stateroot", hooks);
    let mut ev = w.evidence();
    if std::fs::read(&state_json).unwrap() != before {
        ev.push("the other container's state.json changed".into());
    }
    if a.status(&victim) != "running" {
        ev.push("the other container stopped".into());
    }
    a.run(&["delete", "--force", &victim]).ok();
    leaks(a, &victim, &vb).assert_clean();
    run.outcome(ev)
}

const PIDS_LIMIT: i64 = 64;

fn fork_bomb(ctx: &Ctx, level: Level) -> Outcome {
    // And one CPU of the two: without a CPU limit 64 processes spinning on
    // a failing fork natively hold both cores, and host commands wait
    // seconds whatever the pids limit (an operator sets both).
    let b = build(
        ctx.bundle().pids_limit(PIDS_LIMIT).cpu_limit(1),
        "fork_bomb",
    );
    let mut ev = Vec::new();
    let mut measured = Vec::new();
    let hooks = Hooks {
        on_ready: Some(Box::new(|_pid, id| {
            let mut worst = Duration::ZERO;
            for _ in 0..10 {
                let t = Instant::now();
                let st = Command::new("/bin/true").status().unwrap();
                assert!(st.success());
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            let t = Instant::now();
            let ps = run_with_bin(&ctx.a.bin, &ctx.a, &["ps", id], Duration::from_secs(5));
            measured.push(format!(
                "during the bomb: `atoll ps` {} after {} ms",
                if ps.code == 0 {
                    "answered"
                } else {
                    "failed or timed out"
                },
                t.elapsed().as_millis()
            ));
            let current =
                std::fs::read_to_string(format!("/sys/fs/cgroup/pids/atoll/{id}/pids.current"))
                    .unwrap_or_default();
            let current: i64 = current.trim().parse().unwrap_or(-1);
            measured.push(format!(
                "during the bomb: host command latency max {} ms, pids.current {current} (limit {PIDS_LIMIT})",
                worst.as_millis()
            ));
            if current > PIDS_LIMIT {
                ev.push(format!("{current} processes in the container's cgroup"));
            }
            if worst > Duration::from_secs(2) {
                ev.push(format!("a host command took {} ms", worst.as_millis()));
            }
        })),
        ..Default::default()
    };
    let run = run_program(&ctx.a, level, &b, "forkbomb", hooks);
    let mut o = run.outcome(ev);
    o.details.extend(measured);
    o
}

const MEMORY_LIMIT_MB: i64 = 64;

fn memory_bomb(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(
        ctx.bundle()
            .memory_limit(MEMORY_LIMIT_MB << 20)
            .env(&format!("ATTACK_LIMIT_MB={MEMORY_LIMIT_MB}")),
        "memory_bomb",
    );
    let events_out = ctx.host.path().join(format!("events-{}", level.name()));
    let mut events: Option<std::process::Child> = None;
    let mut ev = Vec::new();
    let mut oom_reported = false;
    let mut max_usage = 0u64;
    let hooks = Hooks {
        on_wait: Some(Box::new(|_pid, id| {
            let child = ctx
                .a
                .command()
                .args(["events", "--interval", "1", id])
                .stdout(std::fs::File::create(&events_out).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            events = Some(child);
            // Until it has taken its baseline (its first stats event).
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&events_out)
                .unwrap_or_default()
                .is_empty()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        })),
        on_ready: Some(Box::new(|_pid, id| {
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline {
                if std::fs::read_to_string(&events_out)
                    .unwrap_or_default()
                    .contains("\"type\":\"oom\"")
                {
                    oom_reported = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            max_usage = std::fs::read_to_string(format!(
                "/sys/fs/cgroup/memory/atoll/{id}/memory.max_usage_in_bytes"
            ))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        })),
    };
    let run = run_program(&ctx.a, level, &b, "membomb", hooks);
    if let Some(mut e) = events {
        let _ = e.kill();
        let _ = e.wait();
    }
    if max_usage > (MEMORY_LIMIT_MB as u64) << 20 {
        ev.push(format!("the container used {} MiB", max_usage >> 20));
    }
    let mut o = run.outcome(ev);
    let whole = o.kind == Kind::NoVerdict && run.code == 137;
    o.details.push(format!(
        "OOM victim: {}; `atoll events` reported an oom event: {oom_reported}",
        if whole {
            "the whole sandbox (exit 137)"
        } else {
            "the allocating process"
        }
    ));
    if level == Level::Userspace && whole {
        // Memory mapped while there was room and touched later can still
        // bring the host's OOM killer, which may pick the kernel.
        o.kind = Kind::Blocked;
        o.how = "the limit held: the host's OOM killer ended the whole sandbox (exit 137)".into();
    } else if level == Level::Userspace {
        // The kernel refuses mappings the container's memory cannot hold
        // (ENOMEM, the program's verdict stands).
    } else if o.kind == Kind::Blocked {
        o.how.push_str(if oom_reported {
            "; `atoll events` reported the OOM"
        } else {
            "; `atoll events` reported no OOM"
        });
    }
    o.details.push(format!(
        "max usage {} MiB of {MEMORY_LIMIT_MB} MiB, exit {}",
        max_usage >> 20,
        run.code
    ));
    o
}

fn loopback(ctx: &Ctx, level: Level) -> Outcome {
    use std::os::linux::net::SocketAddrExt;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let name = atoll_testkit::unique("atoll-attack-abstract");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    unix.set_nonblocking(true).unwrap();
    let b = ctx
        .bundle()
        .env(&format!("ATTACK_PORT={port}"))
        .env(&format!("ATTACK_ABSTRACT={name}"));
    let run = run_simple(ctx, level, "loopback", b);
    let mut ev = Vec::new();
    if tcp.accept().is_ok() {
        ev.push(format!(
            "the host's 127.0.0.1:{port} listener accepted a connection"
        ));
    }
    if unix.accept().is_ok() {
        ev.push("the host's abstract unix listener accepted a connection".into());
    }
    run.outcome(ev)
}

use Kind::{Blocked, Harmless};

/// The battery, in table order. `expect` is [native, userspace].
/// The systrap platform's stub (userspace level; natively there is none).
fn systrap_jump(ctx: &Ctx, level: Level) -> Outcome {
    let b = build(ctx.bundle(), "systrap_jump");
    let w = Watch::new(&[&ctx.marker], "the host marker file");
    let run = run_program(&ctx.a, level, &b, "systrap-jump", Hooks::default());
    run.outcome(w.evidence())
}

fn ptrace_sandbox(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "ptrace_sandbox", ctx.bundle()).outcome(vec![])
}

fn systrap_forge(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "systrap_forge", ctx.bundle()).outcome(vec![])
}

fn systrap_patch_forge(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "systrap_patch_forge", ctx.bundle()).outcome(vec![])
}

fn systrap_raw(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "systrap_raw", ctx.bundle()).outcome(vec![])
}

fn systrap_remap(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "systrap_remap", ctx.bundle()).outcome(vec![])
}

fn exec_leftovers(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "exec_leftovers", ctx.bundle()).outcome(vec![])
}

fn lazy_maps(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "lazy_maps", ctx.bundle()).outcome(vec![])
}

fn shared_pages(ctx: &Ctx, level: Level) -> Outcome {
    run_simple(ctx, level, "shared_pages", ctx.bundle()).outcome(vec![])
}

/// shared_read: the host's copies of the files the attack opens read-only
/// and then tries to write through (on the rootfs and on a bind mount
/// shared with the host) must stay as the host made them.
fn shared_read(ctx: &Ctx, level: Level) -> Outcome {
    use std::os::unix::fs::MetadataExt;
    let shared = tempfile::tempdir().unwrap();
    // Searchable by uid 65534, as the rootfs's root: the secret's own
    // mode is what must refuse it.
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = build(
        ctx.bundle().bind(shared.path(), "/bind", false),
        "shared_read",
    );
    let mut targets = Vec::new();
    for dir in [b.rootfs.as_path(), shared.path()] {
        let target = dir.join("shared-target");
        std::fs::write(&target, "ORIGINAL shared-target\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let secret = dir.join("shared-secret");
        std::fs::write(&secret, format!("{}\n", ctx.secret)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        targets.push(target);
    }
    let view = || {
        targets
            .iter()
            .map(|target| {
                let m = std::fs::metadata(target).unwrap();
                format!(
                    "{}: mode {:o} size {} content {:?}",
                    target.display(),
                    m.mode(),
                    m.size(),
                    std::fs::read(target).unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let before = view();
    let run = run_program(&ctx.a, level, &b, "shared_read", Hooks::default());
    let after = view();
    let evidence = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(_, a)| format!("shared-target changed: {a}"))
        .collect();
    run.outcome(evidence)
}

/// The host's view of the files rootfs_write goes after: type, mode,
/// owner, size, mtime and content of each (or that it is missing).
fn rootfs_view(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    [
        "rootfs-target",
        "rootfs-victim",
        "rootfs-gone",
        "rootfs-emptydir",
        "rootfs-link",
        "rootfs-new",
        "rootfs-dir",
    ]
    .iter()
    .map(|n| match std::fs::symlink_metadata(root.join(n)) {
        Ok(m) => format!(
            "{n}: mode {:o} owner {}:{} size {} mtime {} nlink {} content {:?}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.nlink(),
            std::fs::read(root.join(n)).unwrap_or_default()
        ),
        Err(_) => format!("{n}: missing"),
    })
    .collect()
}

fn rootfs_write(ctx: &Ctx, level: Level) -> Outcome {
    let mut bb = ctx.bundle();
    if level == Level::Userspace {
        bb = bb.annotation("dev.atoll.overlay", "root:memory");
    }
    let b = build(bb, "rootfs_write");
    for f in ["rootfs-target", "rootfs-victim", "rootfs-gone"] {
        std::fs::write(b.rootfs.join(f), format!("ORIGINAL {f}\n")).unwrap();
        std::fs::set_permissions(b.rootfs.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::create_dir(b.rootfs.join("rootfs-emptydir")).unwrap();
    let before = rootfs_view(&b.rootfs);
    let run = run_program(&ctx.a, level, &b, "rootfs_write", Hooks::default());
    let after = rootfs_view(&b.rootfs);
    let changed: Vec<String> = before
        .iter()
        .zip(&after)
        .filter(|(x, y)| x != y)
        .map(|(_, y)| y.clone())
        .collect();
    let evidence = if changed.is_empty() {
        vec![]
    } else {
        vec![format!(
            "the bundle's rootfs changed: {}",
            changed.join("; ")
        )]
    };
    if level == Level::Native && !evidence.is_empty() {
        // No overlay at this level: the rootfs is the container's own
        // and is written as runc writes it.
        let mut o = run.outcome(vec![]);
        o.details.extend(evidence);
        o.kind = Kind::Harmless;
        o.how = "no overlay at this level: writes reach the bundle's rootfs, the container's own files (as with runc)".into();
        return o;
    }
    let mut o = run.outcome(evidence);
    if level == Level::Userspace
        && o.kind == Kind::Blocked
        && run.info_value("the container sees its changes:").as_deref() != Some("yes")
    {
        // The overlay must keep the changes for the container, not just
        // drop them.
        o.kind = Kind::NoVerdict;
        o.how = "the container did not see its own changes".into();
    }
    o
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "proc_root",
        what: "read a host file through /proc/1/root, /proc/self/root, /proc/<pid>/cwd and ../ beyond /",
        run: proc_root,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "proc_sys",
        what: "write host sysctls (core_pattern, randomize_va_space, drop_caches) and /proc/sysrq-trigger",
        run: proc_sys,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "sys_write",
        what: "write host settings in /sys, mount a cgroup v1 hierarchy for its release_agent",
        run: sys_write,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "mount",
        what: "mount tmpfs and proc, bind /, unmount /proc/sys and a masked path, remount / rw, fsopen/open_tree",
        run: mount,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "shocker",
        what: "open_by_handle_at with a forged handle for the host file system's root (shocker)",
        run: shocker,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "proc_exe",
        what: "overwrite the runtime binary through /proc/<pid>/exe of an `atoll exec`'d process (CVE-2019-5736)",
        run: proc_exe,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "exec_seccomp",
        what: "a process started by `atoll exec` (as kubectl exec) makes syscalls the container's seccomp profile forbids: unshare(CLONE_NEWUSER), keyctl, io_uring_setup",
        run: exec_seccomp,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "leaked_fd",
        what: "use a descriptor or cwd leaked by the runtime (fds 3..1024, cwd /proc/self/fd/N at create and exec; CVE-2024-21626)",
        run: leaked_fd,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "ptrace_host",
        what: "ptrace, process_vm_readv, signal or pidfd a host process whose pid it knows",
        run: ptrace_host,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "kernel_module",
        what: "init_module, finit_module, delete_module",
        run: kernel_module,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "raw_socket",
        what: "raw IP and packet sockets (CAP_NET_RAW)",
        run: raw_socket,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "keyctl",
        what: "find and read a key the host put in uid 0's user keyring, add one",
        run: keyctl,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "bpf",
        what: "create an eBPF map and load a socket filter",
        run: bpf,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "userfaultfd",
        what: "userfaultfd(2) and /dev/userfaultfd",
        run: userfaultfd,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "io_uring",
        what: "io_uring_setup",
        run: io_uring,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "userns",
        what: "unshare or clone a user namespace to regain capabilities, mount in it",
        run: userns,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "setns",
        what: "setns into every /proc/<pid>/ns/* it can see",
        run: setns,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "chroot_escape",
        what: "chroot into a subdirectory, fchdir out through a held descriptor, climb ../ and chroot(\".\")",
        run: chroot_escape,
        expect: [Harmless, Harmless],
    },
    Attack {
        name: "setuid_nnp",
        what: "an unprivileged user runs a setuid-root binary under no_new_privs",
        run: setuid_nnp,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "setuid_plant",
        what: "an unprivileged user writes into a world-writable setuid-root program, then runs it",
        run: setuid_plant,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "dev_mem",
        what: "read /dev/mem, /dev/kmem, /dev/port, /dev/kmsg, /proc/kcore, syslog(2); mknod them and the host's disk",
        run: dev_mem,
        // Natively the devices cgroup denies all but the standard devices
        // (it said "a *:* rwm", and a workload with CAP_MKNOD opened host
        // devices, until the effective spec got a deny-all rule).
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "symlink_race",
        what: "swap a directory of a bind-mounted host dir for a symlink to / while opening through it",
        run: symlink_race,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "rename_race",
        what: "walk `..` and names through a bind-mounted directory while the host renames it out of the bind source and back",
        run: rename_race,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "rootfs_write",
        what: "overwrite, truncate, chmod, chown, utimes, link, rename over and unlink files of its rootfs, make files and directories there (userspace: with the rootfs overlay, `dev.atoll.overlay: root:memory`)",
        run: rootfs_write,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "shared_read",
        what: "as root open a file and a secret read-only, on the rootfs and on a bind mount shared with the host (the userspace kernel then lends the opens of each one host descriptor, on the bind mount for 2 ms), drop to uid 65534, then write, truncate, allocate and map writable through those opens, reopen them through /proc/self/fd and open the secret again",
        run: shared_read,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "state_root",
        what: "read another container's state.json and spec, connect to its control socket",
        run: state_root,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "fork_bomb",
        what: "fork bomb under a pids limit of 64 and a 1-CPU quota while the host runs commands",
        run: fork_bomb,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "memory_bomb",
        what: "allocate 8 times a 64 MiB memory limit",
        run: memory_bomb,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "systrap_jump",
        what: "jump into the systrap stub's code with crafted registers: mmap the memory file, write the done eventfd, clone, turn dispatch off, replace the filter, open a host file, kill -1",
        run: systrap_jump,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "ptrace_sandbox",
        what: "the sandbox's own ptrace against its machinery: attach to every pid, peek and poke the stub's pages through a tracee, open every other process's /proc/PID/mem, ours as another user and from a child while we are not dumpable, and read and write the stub's pages through a tracee's and its own, poke a breakpoint into code and look for it from a fresh image, give a tracee a kernel code segment, a kernel fs base, the trap flag and IOPL, a jump into the stub, single-step a tracee through syscalls",
        run: ptrace_sandbox,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "systrap_forge",
        what: "scribble over its own systrap slot and control results while its threads make syscalls; write the stub's read-only pages",
        run: systrap_forge,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "systrap_raw",
        what: "raw host syscalls from the patched sites' trampoline table and from the last bytes below the systrap stub",
        run: systrap_raw,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "systrap_patch_forge",
        what: "forge patched read() sites pointing outside the trampoline table, between its entries and into a rewritten entry, and fault where the kernel sends threads on into a trampoline",
        run: systrap_patch_forge,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "systrap_remap",
        what: "munmap, mmap over, mremap, mprotect and madvise the systrap stub's code and thread pages",
        run: systrap_remap,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "exec_leftovers",
        what: "put a secret in every XMM and callee-saved register, the stack, heap and mappings, exec through the systrap stub's signal path and a patched site, and look for it from the new image in registers, the stub's thread areas and the old addresses",
        run: exec_leftovers,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "lazy_maps",
        what: "get more than the kernel's view of the address space from mappings the systrap platform keeps back until first touched: access to pages made PROT_NONE, read-only or unmapped before their first touch; another process's pages in fresh memory, read while threads map, map over and unmap it",
        run: lazy_maps,
        expect: [Harmless, Blocked],
    },
    Attack {
        name: "shared_pages",
        what: "change a file's shared read-only pages (write into read-only data by syscalls, /proc/self/mem, process_vm_writev, mprotect; write the writable data exec copies from the same page cache; a patched syscall site) so that a new process of the same file runs changed code",
        run: shared_pages,
        expect: [Blocked, Blocked],
    },
    Attack {
        name: "loopback",
        what: "connect to a TCP listener on the host's 127.0.0.1 and to a host abstract unix socket",
        run: loopback,
        expect: [Blocked, Blocked],
    },
];

const BEGIN: &str = "<!-- attack-table:begin -->";
const END: &str = "<!-- attack-table:end -->";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn table(rows: &[(&Attack, [Outcome; 2])]) -> String {
    let mut t =
        String::from("| attack | what it tries | native | userspace |\n|---|---|---|---|\n");
    for (a, [n, u]) in rows {
        t.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            a.name,
            a.what.replace('|', "\\|"),
            n.cell(),
            u.cell()
        ));
    }
    t
}

#[test]
fn attack_battery() {
    let only: Option<Vec<String>> = std::env::var("ATOLL_ATTACKS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let ctx = Ctx::new();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for attack in ATTACKS {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == attack.name))
        {
            continue;
        }
        let t = Instant::now();
        let outcomes = LEVELS.map(|level| {
            let o = (attack.run)(&ctx, level);
            eprintln!(
                "attack {} at {}: {}\n    {}",
                attack.name,
                level.name(),
                o.cell(),
                o.details.join("\n    ")
            );
            o
        });
        eprintln!("attack {} took {:.1?}", attack.name, t.elapsed());
        for (i, level) in LEVELS.iter().enumerate() {
            if outcomes[i].kind != attack.expect[i] {
                failures.push(format!(
                    "{} at {}: expected {}, got {}",
                    attack.name,
                    level.name(),
                    attack.expect[i].word(),
                    outcomes[i].cell()
                ));
            }
        }
        rows.push((attack, outcomes));
    }
    eprintln!("attack battery took {:.1?}", started.elapsed());
    let produced = table(&rows);
    let out = target_dir().join("attack-table.md");
    std::fs::write(&out, &produced).unwrap();
    eprintln!("attack table written to {}", out.display());

    if only.is_none() {
        let docs_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md");
        let docs = std::fs::read_to_string(&docs_path).unwrap();
        let (head, rest) = docs
            .split_once(BEGIN)
            .expect("docs/security.md lacks the attack-table:begin marker");
        let (current, tail) = rest
            .split_once(END)
            .expect("docs/security.md lacks the attack-table:end marker");
        let wanted = format!("\n{produced}");
        if current != wanted {
            if std::env::var("ATOLL_UPDATE_DOCS").is_ok_and(|v| v == "1") {
                std::fs::write(&docs_path, format!("{head}{BEGIN}{wanted}{END}{tail}")).unwrap();
                eprintln!("docs/security.md: attack table updated");
            } else {
                failures.push(format!(
                    "docs/security.md's attack table differs from this run's ({}): \
                     regenerate it with `make docs` \
                     (or ATOLL_UPDATE_DOCS=1 cargo test --release -p atoll --test attacks)",
                    out.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
