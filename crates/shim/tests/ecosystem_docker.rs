//! Docker (Debian's docker.io): a private dockerd whose daemon.json gets
//! its `runtimes` from `atoll install --docker --config PATH`; dockerd
//! drives atoll through containerd's runc shim (`BinaryName`), `atoll` at
//! the userspace level and `atoll-native` at the native level.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const IMAGE: &str = "atoll/busybox:test";

struct Docker {
    dir: tempfile::TempDir,
    host: String,
    daemon: Option<Daemon>,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Docker {
    fn start() -> Docker {
        atoll_testkit::require_root();
        require("dockerd");
        require("docker");
        require("containerd");
        let dir = tempfile::Builder::new()
            .prefix("atoll-dock-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let config = d.join("daemon.json");
        // These machines' hard RLIMIT_NOFILE is 20000: containers get
        // explicit limits.
        std::fs::write(
            &config,
            r#"{
  "default-ulimits": {
    "nofile": {"Name": "nofile", "Hard": 1024, "Soft": 1024},
    "nproc": {"Name": "nproc", "Hard": 4096, "Soft": 4096}
  }
}
"#,
        )
        .unwrap();
        run(
            Command::new(atoll_bin())
                .args(["install", "--docker", "--config"])
                .arg(&config),
            Duration::from_secs(30),
        )
        .ok();
        let sock = d.join("docker.sock");
        let host = format!("unix://{}", sock.display());
        let mut daemon = Daemon::spawn(
            "dockerd",
            Command::new("dockerd")
                .arg("--config-file")
                .arg(&config)
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("docker.pid"))
                .arg("-H")
                .arg(&host)
                .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"]),
            d.join("dockerd.log"),
        );
        let h = host.clone();
        let cli = d.join("cli");
        daemon.wait_ready(Duration::from_secs(60), || {
            Command::new("docker")
                .env("DOCKER_CONFIG", &cli)
                .args(["-H", &h, "version"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        let docker = Docker {
            dir,
            host,
            daemon: Some(daemon),
            ids: Default::default(),
        };
        let tar = atoll_testkit::image::busybox_tar();
        docker
            .docker(&["import", tar.to_str().unwrap(), IMAGE])
            .ok();
        docker
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", self.path().join("cli"))
            .arg("-H")
            .arg(&self.host);
        c
    }

    fn docker(&self, args: &[&str]) -> Out {
        run(self.command().args(args), Duration::from_secs(120))
    }

    /// containerd's socket inside dockerd's exec root (its shims name it).
    fn containerd_socket(&self) -> PathBuf {
        self.path().join("exec/containerd/containerd.sock")
    }

    /// atoll's state root as dockerd's runc shim passes it.
    fn atoll_root(&self) -> PathBuf {
        self.path().join("exec/runtime-runc/moby")
    }

    fn assert_clean(&self, ids: &[&str]) {
        let sock = self.containerd_socket();
        assert_gone("shim processes", Duration::from_secs(10), || {
            processes_with(&["containerd-shim", &sock.display().to_string()])
                .into_iter()
                .map(|(p, c)| format!("pid {p}: {c}"))
                .collect()
        });
        let root = self.atoll_root();
        assert_gone("atoll state", Duration::from_secs(5), || {
            entries(&root)
                .into_iter()
                .chain(entries(&root.join(".atoll")))
                // The root's compiled seccomp filter cache is shared and kept.
                .filter(|e| e != ".atoll" && e != ".seccomp")
                .collect()
        });
        assert_gone("mounts", Duration::from_secs(5), || {
            mounts_under(self.path())
                .into_iter()
                .map(|m| m.display().to_string())
                .filter(|m| ids.iter().any(|id| m.contains(id)) || m.ends_with("/merged"))
                .collect()
        });
        assert_gone("cgroups", Duration::from_secs(5), || {
            ids.iter()
                .flat_map(|id| cgroup_dirs(&format!("docker/{id}")))
                .map(|d| d.display().to_string())
                .collect()
        });
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let _ = try_run(
                self.command()
                    .args(["rm", "--force", "--volumes"])
                    .args(self.ids.borrow().iter().map(String::as_str)),
                Duration::from_secs(60),
            );
        }
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        kill_processes_with(&[&self.containerd_socket().display().to_string()]);
        kill_processes_with(&["containerd", &self.path().display().to_string()]);
        std::thread::sleep(Duration::from_millis(100));
        let root = self.atoll_root();
        for id in entries(&root) {
            if id != ".atoll" {
                let _ = try_run(
                    Command::new(atoll_bin())
                        .arg("--root")
                        .arg(&root)
                        .args(["delete", "--force", &id]),
                    Duration::from_secs(30),
                );
            }
        }
        unmount_under(self.path());
        for id in self.ids.borrow().iter() {
            remove_cgroups(&format!("docker/{id}"));
        }
    }
}

/// The runtime name `atoll install --docker` gives a level.
fn runtime(level: &str) -> &'static str {
    if level == "userspace" {
        "atoll"
    } else {
        "atoll-native"
    }
}

const PROBE: &str = "echo out-$(uname -r); echo err-line >&2; exit 3";

fn docker_run_rm(level: &str) {
    let _t = Timer::start(if level == "native" {
        "docker run --rm (atoll-native)"
    } else {
        "docker run --rm (atoll)"
    });
    let d = Docker::start();
    let cidfile = d.path().join("rm.cid");
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        runtime(level),
        "--network",
        "none",
        "--cidfile",
        cidfile.to_str().unwrap(),
        IMAGE,
        "sh",
        "-c",
        PROBE,
    ]);
    assert_eq!(
        out.code,
        3,
        "{out:#?}\n{}",
        d.daemon.as_ref().unwrap().log_tail()
    );
    assert!(out.stderr.contains("err-line"), "{out:#?}");
    assert!(out.stdout.contains("out-"), "{out:#?}");
    assert_eq!(
        out.stdout.contains("out-6.1.0-atoll"),
        level == "userspace",
        "{out:#?}"
    );
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    d.ids.borrow_mut().push(id.clone());
    d.assert_clean(&[&id]);
}

#[test]
fn docker_run_rm_native() {
    docker_run_rm("native");
}

#[test]
fn docker_run_rm_userspace() {
    docker_run_rm("userspace");
}

fn docker_detached(level: &str, exec: bool) {
    let _t = Timer::start(match (level, exec) {
        ("native", _) => "docker run -d/exec/rm -f (atoll-native)",
        (_, false) => "docker run -d/rm -f (atoll)",
        _ => "docker exec (atoll)",
    });
    let d = Docker::start();
    let out = d.docker(&[
        "run",
        "-d",
        "--runtime",
        runtime(level),
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo marker > /tmp/m; echo started; exec sleep 1000",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    d.ids.borrow_mut().push(id.clone());
    let st = d.docker(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(st.stdout.trim(), "running", "{st:#?}");
    if exec {
        let out = d.docker(&[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /tmp/m; echo exec-err >&2; uname -r; exit 4",
        ]);
        assert_eq!(out.code, 4, "{out:#?}");
        assert!(out.stdout.contains("marker"), "{out:#?}");
        assert!(out.stderr.contains("exec-err"), "{out:#?}");
        assert_eq!(
            out.stdout.contains("6.1.0-atoll"),
            level == "userspace",
            "{out:#?}"
        );
    }
    // The workload writes its line soon after start, not before.
    wait_for("the container's output in docker logs", || {
        d.docker(&["logs", &id]).stdout.contains("started")
    });
    d.docker(&["rm", "-f", &id]).ok();
    let gone = d.docker(&["inspect", &id]);
    assert_ne!(gone.code, 0, "rm -f removed it: {gone:#?}");
    d.assert_clean(&[&id]);
}

#[test]
fn docker_detached_exec_native() {
    docker_detached("native", true);
}

#[test]
fn docker_detached_userspace() {
    docker_detached("userspace", false);
}

#[test]
fn docker_exec_userspace() {
    docker_detached("userspace", true);
}
