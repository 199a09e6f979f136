//! The userspace level runs real programs: busybox sh, glibc programs
//! from a Debian rootfs, python3, a pthread program; with atoll's
//! identity; and without any workload syscall reaching the host.

mod common;

use atoll_testkit::cprog;
use common::*;

fn compile_prog(name: &str, static_: bool) -> std::path::PathBuf {
    let src = std::fs::read_to_string(progs().join(format!("{name}.c"))).unwrap();
    if static_ {
        cprog::compile(name, &src, &["-pthread"])
    } else {
        cprog::compile_dynamic(name, &src, &["-pthread"])
    }
}

const SH_SCRIPT: &str = r#"
set -u
echo "start"
x=$(echo sub | tr a-z A-Z); echo "subst=$x"
for i in 1 2 3; do echo "loop $i"; done | wc -l
i=0; while [ $i -lt 100 ]; do i=$((i+1)); done; echo "while=$i"
echo redirected > /tmp/f && cat < /tmp/f && rm /tmp/f
echo both 2>&1 >/dev/null | cat
(sleep 0.1; echo bg-done) & wait $!; echo "bg status=$?"
sleep 0.05 & sleep 0.05 & wait; echo "waited all"
trap 'echo trapped USR1' USR1
kill -USR1 $$
(exit 42); echo "exit=$?"
false || echo "or ok"
true && echo "and ok"
case abc in a*) echo "case ok";; esac
seq 1 500 | sort -rn | head -3 | tr '\n' ' '; echo
printf '%05d|%s\n' 42 hi
echo "$(cat /proc/self/stat | cut -d' ' -f1 | grep -c .)"
sh -c 'exit 3'; echo "nested=$?"
sh -c 'kill -TERM $$'; echo "signaled=$?"
echo end
exit 7
"#;

#[test]
fn busybox_shell_features_match_native() {
    let a = atoll();
    let b = busybox().args(&["/bin/sh", "-c", SH_SCRIPT]).build();
    let native = run_at(&a, "native", &b, "sh-n");
    let user = run_at(&a, "userspace", &b, "sh-u");
    assert_eq!(native.code, 7, "{native:#?}");
    assert_eq!(user.code, 7, "{user:#?}");
    assert_eq!(user.stdout, native.stdout);
    assert!(user.stdout.contains("trapped USR1") && user.stdout.contains("signaled=143"));
}

#[test]
fn debian_programs_match_native() {
    let a = atoll();
    for cmd in [
        &["/bin/ls", "-la", "/etc/apt"][..],
        &["/bin/cat", "/etc/os-release"],
        &[
            "/bin/sh",
            "-c",
            "seq 1 2000 | sort -n | tail -3; sort -r /etc/passwd | head -2",
        ],
        &[
            "/usr/bin/env",
            "-i",
            "/bin/sh",
            "-c",
            "echo $$ && pwd && ls /usr/bin | wc -l",
        ],
    ] {
        let b = debian().args(cmd).build();
        let native = run_at(&a, "native", &b, "deb-n");
        let user = run_at(&a, "userspace", &b, "deb-u");
        native.ok();
        user.ok();
        assert_eq!(user.stdout, native.stdout, "{cmd:?}");
    }
}

const PY: &str = r#"
import json, hashlib, threading, subprocess, os, sys
results = []
def work(n):
    results.append(sum(i * i for i in range(n)))
threads = [threading.Thread(target=work, args=(20000 * k,)) for k in range(1, 5)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"sums": sorted(results), "sha": hashlib.sha256(b"atoll").hexdigest()}))
out = subprocess.run(["/bin/sh", "-c", "echo child $0", "x"], capture_output=True, text=True)
print(out.stdout.strip(), out.returncode)
p = subprocess.run("exit 9", shell=True)
print("rc", p.returncode)
print(os.getpid() == 1, sys.version_info[:2])
"#;

#[test]
fn python3_json_hashlib_threading_subprocess_match_native() {
    let a = atoll();
    let b = debian().args(&["/usr/bin/python3", "-c", PY]).build();
    let native = run_at(&a, "native", &b, "py-n");
    let user = run_at(&a, "userspace", &b, "py-u");
    native.ok();
    user.ok();
    assert_eq!(user.stdout, native.stdout);
    assert!(user.stdout.contains("child x 0") && user.stdout.contains("rc 9"));
}

#[test]
fn pthread_program_matches_native() {
    let a = atoll();
    let bin = compile_prog("pthreads", false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, dir.path().join("pthreads")).unwrap();
    let b = debian()
        .bind(dir.path(), "/opt/t", true)
        .args(&["/opt/t/pthreads"])
        .build();
    let native = run_at(&a, "native", &b, "pt-n");
    let user = run_at(&a, "userspace", &b, "pt-u");
    native.ok();
    user.ok();
    assert_eq!(user.stdout, native.stdout);
    assert!(user.stdout.starts_with("threads=8 total="), "{user:#?}");
}

/// The platform keeps every register (general, SSE/AVX, x87 control word,
/// MXCSR) across patched and unpatched syscalls and signal handlers, in
/// the main thread and another; the vDSO is there and agrees with the
/// syscall's clock; call sites are patched on systrap unless the bundle
/// says `dev.atoll.syscall-patching: "false"`, glibc's read() site and
/// an openat(AT_FDCWD) site (`mov $-100,%edi; syscall`) too, and code entering that site's middle (after the `xor`, after the
/// `syscall`) or restarting a read there behaves as unpatched. The
/// callee-saved registers of a thread blocked in a read are right in a
/// signal handler's frame, after it, and as a tracer reads them.
#[test]
fn registers_signals_vdso_and_patching_match_native() {
    let a = atoll();
    let bin = compile_prog("platform", true);
    let b = busybox().args(&["/platform"]).build();
    cprog::install(&bin, &b.rootfs, "/platform");
    let native = run_at(&a, "native", &b, "plat-n");
    let user = run_at(&a, "userspace", &b, "plat-u");
    native.ok();
    user.ok();
    let (n_body, n_trap) = native.stdout.trim_end().rsplit_once('\n').unwrap();
    let (u_body, u_trap) = user.stdout.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(u_body, n_body);
    assert!(!n_body.contains("CHANGED"), "{native:#?}");
    assert!(n_body.contains("vdso present: yes"), "{native:#?}");
    assert!(n_body.contains("read site found: yes"), "{native:#?}");
    assert!(
        n_body.contains(
            "write raising SIGPIPE: returned -32, frame registers kept, after the handler kept"
        ),
        "{native:#?}"
    );
    assert_eq!(
        n_trap,
        "usertrap: no, read site: as built, openat site: as built"
    );
    let systrap = std::env::var("ATOLL_PLATFORM").map_or(true, |p| p == "systrap");
    assert_eq!(
        u_trap,
        if systrap {
            "usertrap: yes, read site: patched, openat site: patched"
        } else {
            "usertrap: no, read site: as built, openat site: as built"
        },
        "{user:#?}"
    );
    let off = busybox()
        .args(&["/platform"])
        .annotation("dev.atoll.syscall-patching", "false")
        .build();
    cprog::install(&bin, &off.rootfs, "/platform");
    let user_off = run_at(&a, "userspace", &off, "plat-off");
    user_off.ok();
    let (body, trap) = user_off.stdout.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(body, n_body);
    assert_eq!(
        trap, "usertrap: no, read site: as built, openat site: as built",
        "{user_off:#?}"
    );
    // A tracer sees a tracee's callee-saved registers as they were when
    // it blocked (the native level refuses ptrace: this runs here only).
    let traced = busybox().args(&["/platform", "blocked-tracer"]).build();
    cprog::install(&bin, &traced.rootfs, "/platform");
    let out = run_at(&a, "userspace", &traced, "plat-tracer");
    out.ok();
    assert_eq!(
        out.stdout.trim_end(),
        "blocked read, tracer: registers kept, tracee after the read kept",
        "{out:#?}"
    );
}

/// A syscall site is patched at its 8th call in a process; a site of a
/// file's code that one process of the sandbox made hot is patched at
/// its first call in the next process that runs the same code.
#[test]
fn a_site_made_hot_by_one_process_is_patched_at_once_in_the_next() {
    let a = atoll();
    let bin = compile_prog("hot_sites", true);
    let b = busybox()
        .args(&["/bin/sh", "-c", "/hot_sites 1; /hot_sites 20; /hot_sites 1"])
        .build();
    cprog::install(&bin, &b.rootfs, "/hot_sites");
    let out = run_at(&a, "userspace", &b, "hot-sites");
    out.ok();
    let systrap = std::env::var("ATOLL_PLATFORM").map_or(true, |p| p == "systrap");
    assert_eq!(
        out.stdout,
        if systrap {
            "1 calls: not patched\n20 calls: patched\n1 calls: patched\n"
        } else {
            "1 calls: not patched\n20 calls: not patched\n1 calls: not patched\n"
        },
        "{out:#?}"
    );
}

#[test]
fn uname_and_dmesg_show_atoll_not_the_host() {
    let a = atoll();
    let b = busybox()
        .args(&["/bin/sh", "-c", "uname -a; uname -r; dmesg"])
        .build();
    let out = run_at(&a, "userspace", &b, "ident");
    out.ok();
    let host = nix::sys::utsname::uname().unwrap();
    let host_release = host.release().to_string_lossy().into_owned();
    assert!(out.stdout.contains("6.1.0-atoll"), "{out:#?}");
    assert!(
        !out.stdout.contains(&host_release),
        "host release leaked: {out:#?}"
    );
    assert!(out.stdout.contains("Starting atoll..."), "{out:#?}");
    assert!(out.stdout.contains("Ready!"), "{out:#?}");
    let host_log = std::process::Command::new("dmesg")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let host_first = String::from_utf8_lossy(&host_log)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if host_first.len() > 20 {
        let marker = &host_first[host_first.find(']').map(|i| i + 1).unwrap_or(0)..];
        assert!(
            !out.stdout.contains(marker.trim()),
            "host kernel log leaked"
        );
    }
}

#[test]
fn workload_syscalls_never_reach_the_host() {
    let a = atoll();
    let bin = compile_prog("isolation", true);
    // CAP_SYS_ADMIN: natively, sethostname would change the container's
    // UTS namespace and mount would succeed; the kernel serves both.
    let b = busybox()
        .env("HOLD=1")
        .args(&["/isolation"])
        .modify(|spec| {
            let mut p = spec.process().clone().unwrap();
            let mut caps = p.capabilities().clone().unwrap();
            let add = |s: Option<std::collections::HashSet<oci_spec::runtime::Capability>>| {
                let mut s = s.unwrap_or_default();
                s.insert(oci_spec::runtime::Capability::SysAdmin);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
            p.set_capabilities(Some(caps));
            spec.set_process(Some(p));
        })
        .build();
    cprog::install(&bin, &b.rootfs, "/isolation");
    let id = id("isol");
    let child = a
        .command()
        .args(["--isolation", "userspace", "run", "-b", b.path_str(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it holds, look at the container from the host side.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pid = 0;
    while std::time::Instant::now() < deadline {
        let st = a.run(&["state", &id]);
        if st.code == 0 {
            let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
            pid = v["pid"].as_i64().unwrap_or(0);
            if pid > 0 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pid > 0, "container did not start");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    assert!(
        !mountinfo
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some("/mnt")),
        "a tmpfs was mounted on the host side:\n{mountinfo}"
    );
    let uts = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-u", "hostname"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uts.stdout).trim(),
        "atoll-test",
        "host-side hostname changed"
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mount=-1 errno=1"), "{text}");
    assert!(text.contains("umount=-1 errno=1"), "{text}");
    assert!(text.contains("sethostname=0"), "{text}");
    // The sandbox's own view changed (served virtually); pid is virtual.
    assert!(text.contains("nodename=pwned"), "{text}");
    assert!(text.contains("getpid=1"), "{text}");
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn strace_logs_decoded_syscalls() {
    let a = atoll();
    let b = busybox().args(&["/bin/cat", "/etc/passwd"]).build();
    let id = id("strace");
    let log = b.path.join("sandbox.log");
    a.run(&[
        "--isolation",
        "userspace",
        "run",
        "--strace",
        "--sandbox-log",
        log.to_str().unwrap(),
        "-b",
        b.path_str(),
        &id,
    ])
    .ok();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| (l.contains("] open(") || l.contains("] openat("))
                && l.contains("\"/etc/passwd\"")),
        "{text}"
    );
    assert!(text.contains("exit_group("), "{text}");
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn lifecycle_at_the_userspace_level() {
    let a = atoll().with_global(&["--isolation", "userspace"]);
    let b = busybox()
        .args(&[
            "/bin/sh",
            "-c",
            "trap 'exit 3' TERM; while true; do sleep 0.05; done",
        ])
        .build();
    let id = id("ulife");
    a.run(&["create", "-b", b.path_str(), &id]).ok();
    assert_eq!(a.status(&id), "created");
    a.run(&["start", &id]).ok();
    assert_eq!(a.status(&id), "running");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SIGTERM goes to the kernel, which forwards it to the workload's init.
    a.run(&["kill", &id, "TERM"]).ok();
    a.wait_status(&id, "stopped");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();

    // SIGKILL ends the whole sandbox.
    let id = atoll_testkit::unique("ukill");
    a.run(&["run", "-d", "-b", b.path_str(), &id]).ok();
    a.run(&["kill", &id, "KILL"]).ok();
    a.wait_status(&id, "stopped");
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn exec_and_ps_inside_a_sandbox() {
    let a = atoll().with_global(&["--isolation", "userspace"]);
    let b = busybox()
        .args(&["/bin/sh", "-c", "sleep 100 & sleep 100"])
        .build();
    let id = id("uexec");
    a.run(&["run", "-d", "-b", b.path_str(), &id]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let out = a.run(&["exec", &id, "sh", "-c", "echo in-sandbox; id -u; exit 4"]);
    assert_eq!(out.code, 4, "{out:#?}");
    assert_eq!(out.stdout, "in-sandbox\n0\n");
    let out = a.run(&[
        "exec",
        "--user",
        "65534:65534",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u) $(id -g)",
    ]);
    out.ok();
    assert_eq!(out.stdout, "bar /tmp 65534 65534\n");
    a.run(&["exec", &id, "/no/such/program"])
        .fails_with("No such file or directory");
    let out = a.run(&["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "{out:#?}");

    // Detached: the pid file names the host-side proxy, which exits with
    // the process's status.
    let pid_file = b.path.join("exec.pid");
    a.run(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "0.3",
    ])
    .ok();
    let proxy: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{proxy}")).exists());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{proxy}/exe")).exists() {
        assert!(std::time::Instant::now() < deadline, "proxy did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // ps lists the sandbox's own processes, with virtual pids.
    let out = a.run(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(pids, vec![1, 2]);
    let table = a.run(&["ps", &id]).ok().stdout.clone();
    assert!(table.contains("sleep 100"), "{table}");

    a.run(&["delete", "-f", &id]).ok();
    a.run(&["exec", &id, "true"]).fails_with("does not exist");
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn memfd_create_gives_an_anonymous_writable_file() {
    let a = atoll();
    const PY: &str = "import os, mmap\n\
        fd = os.memfd_create('cache', os.MFD_CLOEXEC)\n\
        os.write(fd, b'in memory')\n\
        os.ftruncate(fd, 4096)\n\
        m = mmap.mmap(fd, 4096, flags=mmap.MAP_PRIVATE)\n\
        st = os.fstat(fd)\n\
        print(os.readlink('/proc/self/fd/%d' % fd), m[:9], st.st_size, st.st_nlink)\n";
    // A read-only root: a memfd is writable anyway.
    let b = debian().args(&["/usr/bin/python3", "-c", PY]).build();
    let out = run_at(&a, "userspace", &b, "memfd");
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "/memfd:cache (deleted) b'in memory' 4096 0",
        "{out:#?}"
    );
}
