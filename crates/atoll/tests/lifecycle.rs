//! The runc lifecycle on real busybox bundles, with leak checks after each.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn run_prints_output_and_exits_with_the_process_status() {
    let a = atoll();
    let b = busybox().sh("echo hello; echo err >&2; exit 3").build();
    let id = id("run");
    let out = a.run(&["run", "--bundle", b.path_str(), &id]);
    assert_eq!(out.code, 3, "{out:#?}");
    assert_eq!(out.stdout, "hello\n");
    assert_eq!(out.stderr, "err\n");
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    // The container's init is pid 1 of its namespace and ignores signals it
    // has no handler for, so the signal comes from outside: SIGKILL.
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).build();
    let id = id("sig");
    let (a2, b2, id2) = (a.command(), b.path_str().to_string(), id.clone());
    let runner = std::thread::spawn(move || {
        let mut c = a2;
        c.args(["run", "-b", &b2, &id2])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.run(&["state", &id]).code != 0 || a.status(&id) != "running" {
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.run(&["kill", &id, "9"]).ok();
    let status = runner.join().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn create_start_state_kill_delete() {
    let a = atoll();
    let b = busybox()
        .args(&["sleep", "60"])
        .annotation("org.example.k", "v")
        .build();
    let id = id("life");
    let pid_file = b.path.join("pid");
    a.run(&[
        "create",
        &id,
        "--bundle",
        b.path_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ])
    .ok();
    let st = a.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path.to_str().unwrap());
    assert_eq!(st["rootfs"], b.rootfs.to_str().unwrap());
    assert_eq!(st["owner"], "root");
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(st["created"].as_str().unwrap().contains('T'));
    assert_eq!(st["annotations"]["org.example.k"], "v");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(st["pid"].as_i64().unwrap(), pid);

    a.run(&["start", &id]).ok();
    assert_eq!(a.status(&id), "running");
    a.run(&["start", &id])
        .fails_with("only a created container can be started");
    a.run(&["delete", &id]).fails_with("it is running");

    a.run(&["kill", &id, "SIGKILL"]).ok();
    a.wait_status(&id, "stopped");
    assert_eq!(a.state(&id)["pid"], 0);
    a.run(&["kill", &id, "TERM"]).fails_with("stopped");
    a.run(&["exec", &id, "true"]).fails_with("stopped");
    a.run(&["start", &id]).fails_with("stopped");
    a.run(&["delete", &id]).ok();
    a.run(&["state", &id]).fails_with("does not exist");
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn kill_accepts_names_and_numbers_and_refuses_unknown_signals() {
    let a = atoll();
    let b = busybox()
        .sh("trap 'echo got-usr1 >> /tmp/log' USR1; trap 'echo got-hup >> /tmp/log' HUP; echo ready >> /tmp/log; while true; do sleep 0.05; done")
        .build();
    let id = id("kill");
    a.run(&["run", "-d", "-b", b.path_str(), &id]).ok();
    // Signals before the traps are set would be dropped (SIG_DFL at the
    // pid namespace's init): wait for the shell to say it has them.
    let log = b.rootfs.join("tmp/log");
    let ready_by = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < ready_by,
            "the shell never set its traps"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // One signal at a time: the test is about kill's arguments, not about
    // how a shell handles two signals that arrive together.
    let delivered = |what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(what) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} not delivered: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    a.run(&["kill", &id, "USR1"]).ok();
    delivered("got-usr1");
    a.run(&["kill", &id, "1"]).ok();
    delivered("got-hup");
    a.run(&["kill", &id, "SIGFOO"])
        .fails_with("unknown signal \"SIGFOO\"");
    a.run(&["kill", &id, "99"]).fails_with("unknown signal");
    a.run(&["kill", "--all", &id, "KILL"]).ok();
    a.wait_status(&id, "stopped");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn delete_force_removes_a_running_container() {
    let a = atoll();
    let b = busybox().sh("sleep 100 & sleep 100").build();
    let id = id("force");
    a.run(&["run", "--detach", "--bundle", b.path_str(), &id])
        .ok();
    assert_eq!(a.status(&id), "running");
    a.run(&["delete", "--force", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).build();
    let id = id("created-del");
    a.run(&["create", "-b", b.path_str(), &id]).ok();
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

/// `kill -9` returns before the init has exited: a `delete` at once must
/// wait for that exit (not call the container running), and leave no
/// cgroup behind.
#[test]
fn delete_right_after_kill_9_of_a_created_container() {
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).build();
    for (level, rounds) in [("native", 50), ("userspace", 10)] {
        for _ in 0..rounds {
            let id = id("kill-del");
            a.run(&["--isolation", level, "create", "-b", b.path_str(), &id])
                .ok();
            a.run(&["kill", &id, "KILL"]).ok();
            a.run(&["delete", &id]).ok();
            leaks(&a, &id, &b).assert_clean();
        }
    }
}

/// linux.devices of type p (FIFO) and u (unbuffered character device):
/// the devices cgroup has no such types (cgroup v1 refused `p 0:0 rwm`).
#[test]
fn fifo_and_unbuffered_devices() {
    let a = atoll();
    let b = busybox()
        .sh("ls -l /dev/fifo0 /dev/unull; echo x > /dev/unull && echo wrote")
        .modify(|s| {
            use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};
            let dev = |path: &str, typ, major, minor| {
                LinuxDeviceBuilder::default()
                    .path(path)
                    .typ(typ)
                    .major(major)
                    .minor(minor)
                    .file_mode(0o666u32)
                    .build()
                    .unwrap()
            };
            let mut l = s.linux().clone().unwrap();
            l.set_devices(Some(vec![
                dev("/dev/fifo0", LinuxDeviceType::P, 0, 0),
                dev("/dev/unull", LinuxDeviceType::U, 1, 3),
            ]));
            s.set_linux(Some(l));
        })
        .build();
    let out = run_at(&a, "native", &b, "devices");
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with('p') && lines[0].ends_with("/dev/fifo0"),
        "{out:#?}"
    );
    assert!(
        lines[1].starts_with('c') && lines[1].contains("1,   3"),
        "{out:#?}"
    );
    assert_eq!(lines[2], "wrote", "{out:#?}");
    // The userspace level creates its container the same way (its /dev is
    // the kernel's own, see docs/security.md: no spec device shows).
    run_at(&a, "userspace", &b, "devices").ok();
}

#[test]
fn exec_runs_in_the_container() {
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).build();
    let id = id("exec");
    a.run(&["run", "-d", "-b", b.path_str(), &id]).ok();
    let out = a.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; echo $FOO; pwd; id -u; exit 7",
        "--env",
        "FOO=bar",
    ]);
    // --env after the command belongs to the command (trailing args)
    assert_eq!(out.code, 7, "{out:#?}");
    assert!(out.stdout.starts_with("atoll-test\n"), "{out:#?}");

    let out = a.run(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]);
    out.ok();
    assert_eq!(out.stdout, "bar\n/tmp\n65534\n65534\n");

    let process = b.path.join("process.json");
    let mut p = b.spec().process().clone().unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-process-json".into(),
    ]));
    std::fs::write(&process, serde_json::to_string(&p).unwrap()).unwrap();
    let out = a.run(&["exec", "--process", process.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "from-process-json\n");

    std::fs::write(&process, "{\"args\": 5}").unwrap();
    a.run(&["exec", "--process", process.to_str().unwrap(), &id])
        .fails_with("args");
    a.run(&["exec", &id]).fails_with("no command");

    let pid_file = b.path.join("exec.pid");
    a.run(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "30",
    ])
    .ok();
    let exec_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids: Vec<i32> =
        serde_json::from_str(&a.run(&["ps", "--format", "json", &id]).ok().stdout).unwrap();
    assert!(pids.contains(&exec_pid), "{pids:?} lacks {exec_pid}");
    assert!(pids.len() >= 2);

    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn pause_resume_update_ps_list_events() {
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).pids_limit(100).build();
    let id = id("pause");
    a.run(&["run", "-d", "-b", b.path_str(), &id]).ok();
    let init = a.state(&id)["pid"].as_i64().unwrap();

    a.run(&["resume", &id]).fails_with("not paused");
    a.run(&["pause", &id]).ok();
    assert_eq!(a.status(&id), "paused");
    a.run(&["pause", &id]).fails_with("paused");
    a.run(&["resume", &id]).ok();
    assert_eq!(a.status(&id), "running");

    // update from a file, from stdin, and with runc's flags
    let res = b.path.join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 42}}"#).unwrap();
    a.run(&["update", "--resources", res.to_str().unwrap(), &id])
        .ok();
    let pids_max = format!("/sys/fs/cgroup/pids/atoll/{id}/pids.max");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "42");
    a.run_with_input(&["update", "-r", "-", &id], br#"{"pids": {"limit": 43}}"#)
        .ok();
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "43");
    a.run(&["update", "--pids-limit", "44", &id]).ok();
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "44");
    a.run_with_input(&["update", "-r", "-", &id], b"{\"pids\": 7}")
        .fails_with("pids");

    let out = a.run(&["ps", &id]);
    out.ok();
    assert!(out.stdout.lines().next().unwrap().contains("PID"));
    assert!(out.stdout.contains("sleep 60"), "{out:#?}");
    let pids: Vec<i64> =
        serde_json::from_str(&a.run(&["ps", "-f", "json", &id]).ok().stdout).unwrap();
    assert_eq!(pids, vec![init]);

    let out = a.run(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    assert_eq!(a.run(&["list", "-q"]).ok().stdout, format!("{id}\n"));
    let table = a.run(&["list"]).ok().stdout.clone();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id) && table.contains("running"));

    let out = a.run(&["events", "--stats", &id]);
    let ev: serde_json::Value = serde_json::from_str(out.ok().stdout.trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());

    a.run(&["delete", "--force", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn console_socket_receives_the_pty_master() {
    console_at("native");
}

/// The application kernel serves the container's terminal too (stty's
/// TCGETS/TCSETS reach the host pty with the kernel's termios layout).
#[test]
fn console_socket_receives_the_pty_master_at_userspace() {
    console_at("userspace");
}

fn console_at(level: &str) {
    use nix::sys::socket::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    let a = atoll();
    let b = busybox()
        .terminal(true)
        .sh("stty -echo; read line; echo \"got:$line\"; [ -t 0 ] && echo tty-yes")
        .build();
    let id = id("tty");
    let sock_path = b.path.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                return unsafe { std::fs::File::from_raw_fd(fds[0]) };
            }
        }
        panic!("no fd received");
    });
    a.run(&[
        "--isolation",
        level,
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "-b",
        b.path_str(),
        &id,
    ])
    .ok();
    let mut master = receiver.join().unwrap();
    a.run(&["start", &id]).ok();
    master.write_all(b"ping\n").unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 256];
    while std::time::Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&out).contains("tty-yes") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("got:ping"), "{text:?}");
    assert!(text.contains("tty-yes"), "{text:?}");
    a.wait_status(&id, "stopped");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn json_log_carries_the_error_for_containerd() {
    let a = atoll();
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = a.run(&[
        "--log",
        log.path().to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "nope",
    ]);
    out.fails_with("container nope does not exist");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container nope does not exist");
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn spec_features_version_check() {
    let a = atoll();
    let dir = tempfile::tempdir().unwrap();
    a.run(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .ok();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    a.run(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .fails_with("already exists");

    let f: serde_json::Value = serde_json::from_str(&a.run(&["features"]).ok().stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);

    let v = a.run(&["--version"]).ok().stdout.clone();
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(lines.len(), 3, "{v}");
    assert!(lines[0].starts_with("atoll version "));
    assert!(lines[1].starts_with("commit: "));
    assert!(lines[2].starts_with("spec: 1."));

    let out = a.run(&["check"]);
    assert!(out.ok().stdout.contains("cgroup mode"));
    let report: serde_json::Value =
        serde_json::from_str(&a.run(&["check", "--format", "json"]).ok().stdout).unwrap();
    let features: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["feature"].as_str().unwrap())
        .collect();
    for want in [
        "namespace user",
        "cgroup mode",
        "seccomp user notification",
        "ptrace",
        "overlayfs",
        "kvm",
        "shmem huge pages",
    ] {
        assert!(features.contains(&want), "check lacks {want}: {features:?}");
    }
}

/// The Quick start: `make run` runs the default bundle in the sandbox and
/// shows what proves it (the kernel's uname and log, its own /proc);
/// `ISOLATION=native` is the other level. The README says both.
#[test]
fn make_run_shows_the_sandbox() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().unwrap();
    let make = |level: Option<&str>| {
        let mut c = std::process::Command::new("make");
        c.current_dir(&repo)
            .args(["-s", "run", "CARGO=true"])
            .arg(format!("ATOLL={}", env!("CARGO_BIN_EXE_atoll")))
            .arg(format!("BUNDLE={}", work.path().join("bundle").display()))
            .arg(format!(
                "ATOLL_FLAGS=--root {}",
                work.path().join("state").display()
            ));
        if let Some(l) = level {
            c.arg(format!("ISOLATION={l}"));
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let out = make(None);
    assert!(out.contains("atoll --isolation userspace run"), "{out}");
    assert!(out.contains("6.1.0-atoll"), "uname: {out}");
    assert!(out.contains("Starting atoll"), "dmesg: {out}");
    assert!(out.contains("    1 root     sh"), "ps: {out}");
    let out = make(Some("native"));
    assert!(out.contains("atoll --isolation native run"), "{out}");
    assert!(!out.contains("6.1.0-atoll"), "{out}");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    assert!(quick.contains("make run ISOLATION=native"), "{quick}");
    assert!(quick.contains("userspace"), "{quick}");
}

#[test]
fn compatibility_doc_is_generated_from_the_kernel_table() {
    let a = atoll();
    let out = a.run(&["compat"]);
    out.ok();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/compatibility.md"
    ))
    .unwrap();
    // The table between the cpython markers is `make cpython-table`'s:
    // emptied before the comparison.
    let begin = "<!-- cpython:begin -->\n";
    let end = "<!-- cpython:end -->\n";
    let (head, rest) = doc
        .split_once(begin)
        .expect("docs/compatibility.md lacks the cpython:begin marker");
    let (_, tail) = rest
        .split_once(end)
        .expect("docs/compatibility.md lacks the cpython:end marker");
    let generated = format!("{head}{begin}{end}{tail}");
    assert_eq!(
        generated, out.stdout,
        "docs/compatibility.md is stale: run `make docs`"
    );
    assert!(out.stdout.contains("| 0 | read | full |"));
    assert!(out.stdout.contains("| 165 | mount | refused |"));
}

/// A native container's process starts with SIGPIPE at its default, as
/// runc's does: atoll (a Rust program, which ignores SIGPIPE) must not pass
/// its own ignored disposition on through execve.
#[test]
fn the_container_process_does_not_inherit_an_ignored_sigpipe() {
    let a = atoll();
    let b = busybox()
        .sh("grep SigIgn /proc/self/status | cut -f2")
        .build();
    let id = id("sigpipe");
    let out = a.run(&["run", "--bundle", b.path_str(), &id]);
    let ignored = u64::from_str_radix(out.ok().stdout.trim(), 16).unwrap();
    assert_eq!(
        ignored & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored in the container: SigIgn {ignored:#x}"
    );
    leaks(&a, &id, &b).assert_clean();
}

/// `atoll state ID | grep -q running` ends quietly when the reader goes
/// first, as runc does: no panic on EPIPE.
#[test]
fn a_query_whose_reader_went_away_ends_without_a_panic() {
    let a = atoll();
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are ours; the read end goes before atoll writes.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(r);
    let out = a
        .command()
        .arg("features")
        .stdout(w)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
