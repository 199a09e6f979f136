//! The userspace level runs services: HTTP servers reachable from the
//! host into the container's network namespace (with `--network host`:
//! the sandbox's own stack keeps its loopback inside the kernel, see
//! userspace_network.rs), sqlite3 on a bind mount,
//! tar and find over the gofer, a synthesized /proc, and a symlink race
//! that must never let the workload open a host file.

mod common;

use atoll_testkit::{Atoll, Bundle, cprog};
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts `b` detached at the userspace level; returns (id, host pid of the kernel).
fn start(a: &Atoll, b: &Bundle, prefix: &str) -> (String, i64) {
    let id = id(prefix);
    let pid = start_detached(a, "userspace", b, &id);
    (id, pid)
}

/// HTTP GET from the host, inside the container's network namespace.
fn http_get(pid: i64, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "python3", "-c"])
            .arg(format!(
                "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen({url:?}, timeout=3).read().decode())"
            ))
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn python_http_server_answers_from_the_host() {
    let a = atoll();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("hello.txt"), "served from the sandbox\n").unwrap();
    let b = debian()
        .annotation("dev.atoll.network", "host")
        .bind(site.path(), "/srv", true)
        .args(&[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            "127.0.0.1",
            "--directory",
            "/srv",
        ])
        .build();
    let (id, pid) = start(&a, &b, "pyhttp");
    assert_eq!(
        http_get(pid, "http://127.0.0.1:8000/hello.txt"),
        "served from the sandbox\n"
    );
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn nginx_serves_a_static_file() {
    let a = atoll();
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("html")).unwrap();
    std::fs::write(
        site.path().join("html/index.html"),
        "hello from nginx in atoll\n",
    )
    .unwrap();
    std::fs::write(
        site.path().join("nginx.conf"),
        "daemon off; worker_processes 2; pid /tmp/nginx.pid; error_log stderr;\n\
         events { worker_connections 64; }\n\
         http { access_log off; client_body_temp_path /tmp/cb; proxy_temp_path /tmp/px;\n\
           fastcgi_temp_path /tmp/fc; uwsgi_temp_path /tmp/uw; scgi_temp_path /tmp/sc;\n\
           server { listen 8080; root /site/html; } }\n",
    )
    .unwrap();
    let b = debian()
        .annotation("dev.atoll.network", "host")
        .bind(site.path(), "/site", true)
        .docker_caps()
        .args(&["/usr/sbin/nginx", "-c", "/site/nginx.conf"])
        .build();
    let (id, pid) = start(&a, &b, "nginx");
    for _ in 0..5 {
        assert_eq!(
            http_get(pid, "http://127.0.0.1:8080/index.html"),
            "hello from nginx in atoll\n"
        );
    }
    // One keep-alive connection, many requests: nginx's edge-triggered
    // epoll must see each new request on a socket it already read from.
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "python3", "-c"])
        .arg(
            "import socket\n\
             s = socket.create_connection(('127.0.0.1', 8080), timeout=5)\n\
             for i in range(100):\n\
             \x20   s.sendall(b'GET /index.html HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n')\n\
             \x20   got = b''\n\
             \x20   while b'in atoll' not in got:\n\
             \x20       d = s.recv(65536)\n\
             \x20       assert d, 'closed after %d requests' % i\n\
             \x20       got += d\n\
             print('keep-alive ok')",
        )
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("keep-alive ok"),
        "keep-alive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = a.run(&["ps", &id]).ok().stdout.clone();
    assert!(
        ps.lines().filter(|l| l.contains("nginx")).count() >= 3,
        "master and two workers: {ps}"
    );
    a.run(&["delete", "-f", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn sqlite_writes_through_the_gofer_to_the_host() {
    let a = atoll();
    let data = tempfile::tempdir().unwrap();
    let script = "cd /data && { echo 'begin;'; echo 'create table t(id integer primary key, v text);'; \
                  i=0; while [ $i -lt 10000 ]; do echo \"insert into t(v) values('row$i');\"; i=$((i+1)); done; \
                  echo 'commit;'; echo 'select count(*), sum(id), max(v) from t;'; } | sqlite3 db.sqlite";
    let b = debian()
        .bind(data.path(), "/data", false)
        .args(&["/bin/sh", "-c", script])
        .build();
    let out = run_at(&a, "userspace", &b, "sqlite");
    out.ok();
    assert_eq!(out.stdout, "10000|50005000|row9999\n");
    // The host sees the same database.
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c=sqlite3.connect('{}'); print(c.execute('select count(*), sum(id) from t').fetchone())",
            data.path().join("db.sqlite").display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "(10000, 50005000)\n"
    );
}

#[test]
fn tar_round_trip_and_find() {
    let a = atoll();
    let script = "set -e; cd /tmp; tar czf t.tgz -C /usr/lib python3.11; mkdir x; tar xzf t.tgz -C x; \
                  (cd /usr/lib && find python3.11 -type f -exec md5sum {} + | sort) > a; \
                  (cd x && find python3.11 -type f -exec md5sum {} + | sort) > b; \
                  cmp a b && echo same $(wc -l < a); find / -xdev | wc -l";
    let b = debian().args(&["/bin/sh", "-c", script]).build();
    let out = run_at(&a, "userspace", &b, "tar");
    out.ok();
    let mut lines = out.stdout.lines();
    let same = lines.next().unwrap();
    assert!(same.starts_with("same "), "{out:#?}");
    assert!(same[5..].trim().parse::<u32>().unwrap() > 500, "{same}");
    let found: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(found > 5000, "{out:#?}");
}

#[test]
fn proc_shows_the_sandbox() {
    let a = atoll();
    let b = busybox()
        .args(&["/bin/sh", "-c", "ls -l /proc/self/fd; head -3 /proc/cpuinfo; cat /proc/1/status; ls /proc; cat /proc/meminfo | head -2; cat /proc/sys/kernel/osrelease; dmesg; echo piped | cat /dev/stdin"])
        .memory_limit(256 << 20)
        .build();
    let out = run_at(&a, "userspace", &b, "proc");
    out.ok();
    let s = &out.stdout;
    assert!(s.contains("Pid:\t1\n") && s.contains("PPid:\t0\n"), "{s}");
    assert!(s.contains("processor"), "{s}");
    assert!(
        s.contains("MemTotal:         262144 kB"),
        "the container's limit: {s}"
    );
    assert!(s.contains("6.1.0-atoll"), "{s}");
    assert!(s.contains("Starting atoll..."), "{s}");
    assert!(s.contains("piped\n"), "/dev/stdin of a pipe: {s}");
    // Only the sandbox's processes: pids 1 and the ls/cat children, no host pids.
    let host_pid = std::process::id().to_string();
    let listing: Vec<&str> = s
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    assert!(!listing.contains(&host_pid.as_str()), "{s}");
    assert!(
        listing.iter().all(|p| p.parse::<u32>().unwrap() < 100),
        "{listing:?}"
    );
}

#[test]
fn symlink_swap_race_never_opens_a_host_file() {
    let a = atoll();
    let marker = format!("atoll-marker-{}", std::process::id());
    let host_marker = Path::new("/tmp").join(&marker);
    std::fs::write(&host_marker, "HOST-SECRET\n").unwrap();
    // Watch the host file for any open during the race.
    let ino = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(ino >= 0);
    let c = std::ffi::CString::new(host_marker.to_str().unwrap()).unwrap();
    assert!(
        unsafe { libc::inotify_add_watch(ino, c.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) } >= 0
    );

    let bin = cprog::compile(
        "symlink_race",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/progs/symlink_race.c"
        ))
        .unwrap(),
        &["-pthread"],
    );
    let script = format!("echo SANDBOX > /tmp/{marker}; /race d/tmp/{marker} HOST-SECRET");
    let b = busybox().args(&["/bin/sh", "-c", &script]).build();
    cprog::install(&bin, &b.rootfs, "/race");
    let out = run_at(&a, "userspace", &b, "race");
    out.ok();
    assert!(out.stdout.contains("leaks=0"), "{out:#?}");
    let opened: u32 = out
        .stdout
        .split("opened=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(opened > 0, "the race never opened anything: {out:#?}");
    let mut buf = [0u8; 4096];
    let n = unsafe { libc::read(ino, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    unsafe { libc::close(ino) };
    let _ = std::fs::remove_file(&host_marker);
    assert!(n <= 0, "the host file was opened during the race");
}

/// Runs `script` at `level` with a bind mount at /data of a host
/// directory holding `f` ("before\n") and `go`; once the script has
/// touched /data/started, `change` runs on the host directory (and
/// should remove `go`, which the script waits for). Returns the output.
fn with_host_change(
    level: &str,
    name: &str,
    script: &str,
    change: impl FnOnce(&std::path::Path) + Send + 'static,
) -> atoll_testkit::Out {
    let top = tempfile::tempdir().unwrap();
    let src = top.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "before\n").unwrap();
    std::fs::write(src.join("go"), "").unwrap();
    let b = busybox().bind(&src, "/data", false).sh(script).build();
    let changer = {
        let src = src.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !src.join("started").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            change(&src);
        })
    };
    let out = run_at(&atoll(), level, &b, &format!("{name}-{level}"));
    changer.join().unwrap();
    out
}

/// Bind mounts may change from outside: the userspace kernel asks the
/// host for their attributes at every stat (the rootfs's it caches).
#[test]
fn a_bind_mounted_file_changed_on_the_host_stats_as_changed() {
    let script = "stat -c %s /data/f; stat -c %s /data/f; touch /data/started; \
                  i=0; while [ -e /data/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
                  stat -c %s /data/f";
    for level in ["native", "userspace"] {
        let out = with_host_change(level, "grown", script, |src| {
            std::fs::write(src.join("f"), "before, and after\n").unwrap();
            std::fs::remove_file(src.join("go")).unwrap();
        });
        out.ok();
        assert_eq!(out.stdout, "7\n7\n18\n", "{level}");
    }
}

/// Repeated read-only opens of a file share one host descriptor in the
/// userspace kernel (hostfs `shares_read_descriptor`). On a bind mount
/// that the host changes, that descriptor must not keep a name on the
/// file it first reached: a file the host replaces (a new inode under the
/// name, as an editor's save or `docker cp` does) reads its new bytes at
/// the next open, and one the host rewrites in place reads them through
/// the descriptor already shared.
#[test]
fn a_bind_mounted_file_replaced_on_the_host_reads_its_new_bytes() {
    let script = "echo g > /data/g; cat /data/f /data/g; cat /data/f /data/g; touch /data/started; \
                  i=0; while [ -e /data/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
                  cat /data/f /data/g";
    for level in ["native", "userspace"] {
        let out = with_host_change(level, "replaced", script, |src| {
            std::fs::write(src.join("f.new"), "replaced\n").unwrap();
            std::fs::rename(src.join("f.new"), src.join("f")).unwrap();
            std::fs::write(src.join("g"), "rewritten\n").unwrap();
            std::fs::remove_file(src.join("go")).unwrap();
        });
        out.ok();
        assert_eq!(
            out.stdout, "before\ng\nbefore\ng\nreplaced\nrewritten\n",
            "{level}"
        );
    }
}

/// A walk of a bind mount that the host confirmed a moment ago is taken
/// as is (hostfs `RECHECK_AFTER`), but only for that moment: a workload
/// that polls a name in a loop without sleeping still sees the host
/// remove it, and the attributes of the file next to it as the host left
/// them. (The bound itself, without the kernel's own sleeps that also
/// end it, is tested in hostfs's unit tests.)
#[test]
fn a_name_removed_on_the_host_is_gone_for_a_workload_that_never_waits() {
    let script = "touch /data/started; i=0; \
                  while [ -e /data/go ] && [ $i -lt 3000000 ]; do i=$((i+1)); done; \
                  [ -e /data/go ] && echo still there || echo gone; stat -c %s /data/f";
    for level in ["native", "userspace"] {
        let out = with_host_change(level, "polled", script, |src| {
            std::fs::write(src.join("f"), "before, and after\n").unwrap();
            std::fs::remove_file(src.join("go")).unwrap();
        });
        out.ok();
        assert_eq!(out.stdout, "gone\n18\n", "{level}");
    }
}

/// A bind mount whose host directory disappears under the running
/// workload: its files are gone (ENOENT) as they would be natively, and
/// the kernel (which walks that mount itself on a donated descriptor)
/// keeps serving.
#[test]
fn a_bind_source_removed_on_the_host_reads_as_gone() {
    let script = "cat /data/f; touch /data/started; \
                  i=0; while [ -e /data/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
                  cat /data/f 2>/dev/null; echo cat=$?; \
                  echo new > /data/g 2>/dev/null; echo write=$?; \
                  ls /data; echo ls=$?; echo alive";
    let mut outs = Vec::new();
    for level in ["native", "userspace"] {
        let out = with_host_change(level, "gone", script, |src| {
            std::fs::remove_dir_all(src).unwrap();
        });
        out.ok();
        outs.push(out.stdout);
    }
    assert_eq!(outs[1], outs[0]);
    assert!(outs[1].starts_with("before\ncat=1\n"), "{}", outs[1]);
    assert!(
        outs[1].contains("write=1") && outs[1].ends_with("alive\n"),
        "{}",
        outs[1]
    );
}
