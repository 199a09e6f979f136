//! podman (Debian's package, through conmon) with `--runtime atoll`, the
//! runtime entry written into a private containers.conf by
//! `atoll install --podman`; storage, run state and atoll's state all
//! under a temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const IMAGE: &str = "localhost/atoll/busybox:test";

struct Podman {
    dir: tempfile::TempDir,
    /// atoll's state root (its default: podman passes none).
    atoll_root: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Podman {
    fn setup() -> Podman {
        atoll_testkit::require_root();
        require("podman");
        require("conmon");
        let dir = tempfile::Builder::new()
            .prefix("atoll-podman-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        // These machines' hard RLIMIT_NOFILE (20000) and RLIMIT_NPROC are
        // below podman's defaults, which a runtime then cannot set.
        std::fs::write(
            d.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"

[network]
network_config_dir = "{d}/cni"
"#,
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{d}/runroot\"\ngraphroot = \"{d}/graph\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        run(
            Command::new(atoll_bin())
                .args(["install", "--podman", "--config"])
                .arg(d.join("containers.conf")),
            Duration::from_secs(30),
        )
        .ok();
        let p = Podman {
            atoll_root: PathBuf::from(atoll_runtime_default_root()),
            dir,
            ids: Default::default(),
        };
        let tar = atoll_testkit::image::busybox_tar();
        p.podman(&["import", tar.to_str().unwrap(), IMAGE]).ok();
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut c = Command::new("podman");
        // atoll's state goes to its default root: podman hands runtime
        // flags (--runtime-flag root=...) to the runtime calls it makes
        // itself, but not to the cleanup command conmon runs on exit,
        // which would then look for the container elsewhere.
        c.env("CONTAINERS_CONF", self.path().join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path().join("storage.conf"))
            .arg("--runtime")
            .arg("atoll");
        c
    }

    fn podman(&self, args: &[&str]) -> Out {
        run(self.command().args(args), Duration::from_secs(120))
    }

    /// `podman run` arguments for the level.
    fn run_args<'a>(&self, level: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "run".into(),
            "--network".into(),
            "none".into(),
            "--annotation".into(),
            format!("dev.atoll.isolation={level}"),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn full_id(&self, name: &str) -> String {
        let out = self.podman(&["inspect", "--format", "{{.Id}}", name]);
        out.ok();
        let id = out.stdout.trim().to_string();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn assert_clean(&self, ids: &[&str]) {
        assert_gone(
            "conmon and container processes",
            Duration::from_secs(10),
            || {
                ids.iter()
                    .flat_map(|id| processes_with(&[id]))
                    .map(|(p, c)| format!("pid {p}: {c}"))
                    .collect()
            },
        );
        assert_gone("atoll state", Duration::from_secs(5), || {
            entries(&self.atoll_root)
                .into_iter()
                .chain(entries(&self.atoll_root.join(".atoll")))
                .filter(|e| ids.contains(&e.as_str()))
                .map(|e| format!("{}: {e}", self.atoll_root.display()))
                .collect()
        });
        assert_gone("mounts", Duration::from_secs(5), || {
            mounts_under(self.path())
                .into_iter()
                .map(|m| m.display().to_string())
                .filter(|m| ids.iter().any(|id| m.contains(id)) || m.contains("/merged"))
                .collect()
        });
        assert_gone("cgroups", Duration::from_secs(5), || {
            ids.iter()
                .flat_map(|id| cgroup_dirs(&format!("libpod_parent/libpod-{id}")))
                .map(|d| d.display().to_string())
                .collect()
        });
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = try_run(
            self.command()
                .args(["rm", "--all", "--force", "--time", "0"]),
            Duration::from_secs(60),
        );
        kill_processes_with(&[self.path().to_str().unwrap()]);
        for id in entries(&self.atoll_root) {
            if self.ids.borrow().contains(&id) {
                let _ = try_run(
                    Command::new(atoll_bin())
                        .arg("--root")
                        .arg(&self.atoll_root)
                        .args(["delete", "--force", &id]),
                    Duration::from_secs(30),
                );
            }
        }
        unmount_under(self.path());
        for id in self.ids.borrow().iter() {
            remove_cgroups(&format!("libpod_parent/libpod-{id}"));
            remove_cgroups(&format!("libpod_parent/libpod-conmon-{id}"));
        }
    }
}

/// atoll's default state root (`/run/atoll`).
fn atoll_runtime_default_root() -> &'static str {
    "/run/atoll"
}

const PROBE: &str = "echo out-$(uname -r); echo err-line >&2; exit 3";

fn check_level(out: &Out, level: &str) {
    assert_eq!(out.code, 3, "{out:#?}");
    assert!(out.stderr.contains("err-line"), "{out:#?}");
    assert_eq!(
        out.stdout.contains("out-6.1.0-atoll"),
        level == "userspace",
        "{out:#?}"
    );
    assert!(out.stdout.contains("out-"), "{out:#?}");
}

fn podman_run_rm(level: &str) {
    let _t = Timer::start(if level == "native" {
        "podman run --rm (native)"
    } else {
        "podman run --rm (userspace)"
    });
    let p = Podman::setup();
    let name = unique("rm");
    let cidfile = p.path().join(format!("{name}.cid"));
    let cid = cidfile.display().to_string();
    let args = p.run_args(
        level,
        &["--rm", "--cidfile", &cid, IMAGE, "sh", "-c", PROBE],
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.podman(&a);
    check_level(&out, level);
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    p.ids.borrow_mut().push(id.clone());
    let left = p.podman(&["ps", "-a", "-q"]);
    assert!(left.stdout.trim().is_empty(), "--rm removed it: {left:#?}");
    p.assert_clean(&[&id]);
}

#[test]
fn podman_run_rm_native() {
    podman_run_rm("native");
}

#[test]
fn podman_run_rm_userspace() {
    podman_run_rm("userspace");
}

/// run -d, (exec), stop, rm.
fn podman_detached(level: &str, exec: bool) {
    let _t = Timer::start(match (level, exec) {
        ("native", _) => "podman run -d/exec/stop/rm (native)",
        (_, false) => "podman run -d/stop/rm (userspace)",
        _ => "podman exec (userspace)",
    });
    let p = Podman::setup();
    let name = unique("det");
    let args = p.run_args(
        level,
        &[
            "-d",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo marker > /tmp/m; echo started; exec sleep 1000",
        ],
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    p.podman(&a).ok();
    let id = p.full_id(&name);
    let st = p.podman(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.stdout.trim(), "running", "{st:#?}");
    if exec {
        let out = p.podman(&[
            "exec",
            &name,
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
    wait_for("the container's output in podman logs", || {
        p.podman(&["logs", &name]).stdout.contains("started")
    });
    p.podman(&["stop", "--time", "1", &name]).ok();
    let st = p.podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(
        st.stdout.trim(),
        "exited 137",
        "stopped with SIGKILL after the grace time: {st:#?}"
    );
    p.podman(&["rm", &name]).ok();
    p.assert_clean(&[&id]);
}

#[test]
fn podman_detached_exec_native() {
    podman_detached("native", true);
}

#[test]
fn podman_detached_userspace() {
    podman_detached("userspace", false);
}

#[test]
fn podman_exec_userspace() {
    podman_detached("userspace", true);
}
