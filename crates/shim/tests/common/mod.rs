//! Shared by the ecosystem tests: the binaries, real daemons (containerd,
//! podman's engine, dockerd) started on private paths under a temporary
//! directory, and the checks that a scenario left nothing behind.
#![allow(dead_code)]

pub mod cri;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use atoll_testkit::Out;

/// The shim under test.
pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-atoll-v2"))
}

/// The atoll binary, built next to the shim (same target directory).
pub fn atoll_bin() -> PathBuf {
    let p = shim_bin().with_file_name("atoll");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p atoll, or make test)",
        p.display()
    );
    p
}

pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/deps.sh --all (make test does)"
    );
}

/// Runs a command with a timeout, capturing its output (through files: a
/// daemon it starts must not hold a pipe of ours).
pub fn run(cmd: &mut Command, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    match try_run(cmd, timeout) {
        Ok(out) => out,
        Err(partial) => panic!(
            "{what} did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
            partial.stdout, partial.stderr
        ),
    }
}

/// `run`, but a timeout is an `Err` with what was printed so far (for
/// teardown code, which must not panic).
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Out, Out> {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::io::{Read, Seek};
    let mut stdout = String::new();
    let mut stderr = String::new();
    out.rewind().unwrap();
    out.read_to_string(&mut stdout).unwrap();
    err.rewind().unwrap();
    err.read_to_string(&mut stderr).unwrap();
    let Some(status) = status else {
        return Err(Out {
            code: -1,
            stdout,
            stderr: format!("{stderr}\n({what} timed out)"),
        });
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(Out {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout,
        stderr,
    })
}

/// A daemon process, killed (TERM, then KILL) when dropped.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon { name, child, log }
    }

    pub fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits for `ready` to hold, failing with the daemon's log otherwise.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({st}) while starting:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {timeout:?}:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pids of processes whose command line contains every one of `needles`.
pub fn processes_with(needles: &[&str]) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie && needles.iter().all(|n| cmdline.contains(n)) {
            found.push((pid, cmdline.trim().to_string()));
        }
    }
    found
}

/// Kills the processes whose command line contains every one of `needles`.
pub fn kill_processes_with(needles: &[&str]) {
    for (pid, _) in processes_with(needles) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Unmounts everything at or under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    for _ in 0..5 {
        let mut ms = mounts_under(dir);
        if ms.is_empty() {
            return;
        }
        ms.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in ms {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Cgroup directories named `rel` (e.g. `default/c1`) in any hierarchy.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let d = e.path().join(rel);
            if d.is_dir() {
                out.push(d);
            }
        }
    }
    let unified = Path::new("/sys/fs/cgroup").join(rel);
    if unified.is_dir() && !out.contains(&unified) {
        out.push(unified);
    }
    out
}

/// Removes the (empty) cgroup directories named `rel`, deepest first.
pub fn remove_cgroups(rel: &str) {
    for d in cgroup_dirs(rel) {
        let mut dirs: Vec<PathBuf> = walk_dirs(&d);
        dirs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for x in dirs {
            let _ = std::fs::remove_dir(&x);
        }
    }
}

fn walk_dirs(d: &Path) -> Vec<PathBuf> {
    let mut out = vec![d.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(d) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk_dirs(&e.path()));
            }
        }
    }
    out
}

/// Directory entries (names) of `dir`, empty if it does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` (a list of leftovers) until it is empty, else panics
/// listing them.
pub fn assert_gone(what: &str, timeout: Duration, mut check: impl FnMut() -> Vec<String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = check();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} leaked:\n  {}", left.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `cond` for up to 20 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A unique, short name for this test process.
pub fn unique(prefix: &str) -> String {
    atoll_testkit::unique(prefix)
}

/// Times a scenario and prints the duration (visible with --nocapture).
pub struct Timer(&'static str, Instant);
impl Timer {
    pub fn start(name: &'static str) -> Timer {
        Timer(name, Instant::now())
    }
}
impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!(
            "scenario {}: {:.1}s",
            self.0,
            self.1.elapsed().as_secs_f64()
        );
    }
}

/// Where libcni caches ADD results (containerd 1.6 does not move it).
pub const CNI_CACHE: &str = "/var/lib/cni/results";

/// A containerd started from Debian's package with every path (root,
/// state, sockets, CNI configuration) under a temporary directory, atoll
/// installed in its config by `atoll install --containerd`, and the shim on
/// its PATH.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// atoll's state root for the shim (`atoll --root R install`).
    pub shim_root: PathBuf,
    /// CRI cgroup parent, bridge name and subnet (CRI instances).
    pub cgroup_parent: String,
    pub bridge: String,
    /// CNI network name (CRI instances).
    pub network: String,
    cri: bool,
    daemon: Option<Daemon>,
    namespaces: std::cell::RefCell<Vec<String>>,
}

pub struct ContainerdOptions {
    pub cri: bool,
}

impl Containerd {
    pub fn start(opts: ContainerdOptions) -> Containerd {
        atoll_testkit::require_root();
        require("containerd");
        require("ctr");
        let dir = tempfile::Builder::new()
            .prefix("atoll-ctd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(shim_bin(), bin.join("containerd-shim-atoll-v2")).unwrap();
        // Unique per instance (tests of one binary run in parallel).
        static INSTANCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = format!("{}-{k}", std::process::id() % 100_000);
        let cgroup_parent = format!("/atoll-cri-{n}");
        let bridge = format!("atl{n}");
        let config = d.join("config.toml");
        let mut text = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
{disabled}
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  level = "debug"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
"#,
            d = d.display(),
            disabled = if opts.cri {
                ""
            } else {
                r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#
            },
        );
        if opts.cri {
            text.push_str(&format!(
                r#"  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    disable_apparmor = true
    # These machines withhold CAP_SYS_RESOURCE, so a negative
    # oom_score_adj (CRI gives the sandbox -998) cannot be set.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{d}/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
"#,
                pause = atoll_testkit::image::PAUSE_IMAGE,
                d = d.display()
            ));
            std::fs::create_dir_all(d.join("net.d")).unwrap();
            // Bridge networking through the CNI plugins, all state in the
            // temporary directory; no gateway, no masquerading: nothing
            // on the host changes but the bridge, removed at teardown.
            let cni = serde_json::json!({
                "cniVersion": "0.4.0",
                "name": format!("atoll-test-{n}"),
                "plugins": [{
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": false,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": d.join("cni-ipam"),
                        "ranges": [[{"subnet": format!("10.231.{}.0/24", k % 250)}]],
                    },
                }],
            });
            std::fs::write(
                d.join("net.d/10-atoll-test.conflist"),
                serde_json::to_vec_pretty(&cni).unwrap(),
            )
            .unwrap();
        }
        std::fs::write(&config, text).unwrap();
        let shim_root = d.join("shim");
        let out = run(
            Command::new(atoll_bin())
                .arg("--root")
                .arg(&shim_root)
                .args(["install", "--containerd", "--config"])
                .arg(&config),
            Duration::from_secs(30),
        );
        out.ok();
        if opts.cri {
            // containerd's own runc shim running atoll (`BinaryName`), the
            // level from the pod's annotations: the path of clusters that
            // keep runc.v2.
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str(&format!(
                r#"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.atoll-runc]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["dev.atoll.*"]
  container_annotations = ["dev.atoll.*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.atoll-runc.options]
    BinaryName = "{atoll}"
    Root = "{d}/runc-root"
"#,
                atoll = atoll_bin().display(),
                d = d.display()
            ));
            // The vm level's runtime, added by hand as docs/kubernetes.md
            // says (`atoll install` leaves it out: it needs a /dev/kvm that
            // boots guests). Only the vm-level CRI test, run inside the
            // test VM, uses it.
            text.push_str(&format!(
                r#"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.atoll-vm]
  runtime_type = "io.containerd.atoll.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.atoll-vm.options]
    TypeUrl = "io.containerd.atoll.v1.options"
    ConfigPath = "{d}/atoll-vm.toml"
"#,
                d = d.display()
            ));
            std::fs::write(
                d.join("atoll-vm.toml"),
                format!(
                    "isolation = \"vm\"\nbinary = {:?}\nroot = {:?}\n",
                    atoll_bin().display().to_string(),
                    shim_root.display().to_string()
                ),
            )
            .unwrap();
            std::fs::write(&config, text).unwrap();
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let socket = d.join("c.sock");
        let mut daemon = Daemon::spawn(
            "containerd",
            Command::new("containerd")
                .arg("--config")
                .arg(&config)
                .env("PATH", path),
            d.join("containerd.log"),
        );
        let s = socket.clone();
        daemon.wait_ready(Duration::from_secs(30), || {
            s.exists()
                && Command::new("ctr")
                    .arg("-a")
                    .arg(&s)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|st| st.success())
                    .unwrap_or(false)
        });
        Containerd {
            dir,
            socket,
            shim_root,
            cgroup_parent,
            bridge,
            network: format!("atoll-test-{n}"),
            cri: opts.cri,
            daemon: Some(daemon),
            namespaces: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The shim options file `atoll install` wrote for `runtime`.
    pub fn options_file(&self, runtime: &str) -> PathBuf {
        self.path().join(format!("{runtime}.toml"))
    }

    /// `ctr -a <socket> -n <ns> <args>`.
    pub fn ctr(&self, ns: &str, args: &[&str]) -> Out {
        {
            let mut n = self.namespaces.borrow_mut();
            if !n.iter().any(|x| x == ns) {
                n.push(ns.to_string());
            }
        }
        run(
            Command::new("ctr")
                .arg("-a")
                .arg(&self.socket)
                .arg("-n")
                .arg(ns)
                .args(args)
                .current_dir(self.path()),
            Duration::from_secs(120),
        )
    }

    pub fn import(&self, ns: &str, archive: &Path) {
        self.ctr(ns, &["images", "import", archive.to_str().unwrap()])
            .ok();
    }

    pub fn log_tail(&self) -> String {
        self.daemon
            .as_ref()
            .map(|d| d.log_tail())
            .unwrap_or_default()
    }

    /// Shim processes serving this containerd.
    pub fn shims(&self) -> Vec<(i32, String)> {
        processes_with(&[
            "containerd-shim",
            &format!("-address {}", self.socket.display()),
        ])
    }

    /// Checks that nothing of the containers `ids` (in namespace `ns`) is
    /// left: shim processes, mounts, cgroups, atoll state, containerd's
    /// bundles.
    pub fn assert_clean(
        &self,
        ns: &str,
        ids: &[&str],
        cgroup_parent: &str,
        atoll_roots: &[PathBuf],
    ) {
        assert_gone("shim processes", Duration::from_secs(10), || {
            self.shims()
                .into_iter()
                .map(|(p, c)| format!("pid {p}: {c}"))
                .collect()
        });
        let bundles = self
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(ns);
        assert_gone("mounts", Duration::from_secs(5), || {
            let mut m: Vec<String> = mounts_under(&bundles)
                .into_iter()
                .map(|p| p.display().to_string())
                .collect();
            for r in atoll_roots {
                m.extend(mounts_under(r).into_iter().map(|p| p.display().to_string()));
            }
            m
        });
        assert_gone("state", Duration::from_secs(5), || {
            let mut left: Vec<String> = entries(&bundles)
                .into_iter()
                .map(|e| format!("bundle {}", bundles.join(e).display()))
                .collect();
            for r in atoll_roots {
                for e in entries(r) {
                    if e == ".atoll" {
                        // `.seccomp` is the root's cache of compiled
                        // filters, shared by its containers and kept.
                        left.extend(
                            entries(&r.join(".atoll"))
                                .into_iter()
                                .filter(|x| x != ".seccomp")
                                .map(|x| format!("atoll state {}/.atoll/{x}", r.display())),
                        );
                    } else {
                        left.push(format!("atoll state {}/{e}", r.display()));
                    }
                }
            }
            left
        });
        assert_gone("cgroups", Duration::from_secs(5), || {
            ids.iter()
                .flat_map(|id| cgroup_dirs(&format!("{cgroup_parent}/{id}")))
                .map(|d| d.display().to_string())
                .collect()
        });
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left: tasks, containers, then the daemon,
        // its shims, mounts, cgroups and the bridge.
        let namespaces = self.namespaces.borrow().clone();
        let ctr = |ns: &str, args: &[&str]| -> String {
            try_run(
                Command::new("ctr")
                    .arg("-a")
                    .arg(&self.socket)
                    .arg("-n")
                    .arg(ns)
                    .args(args),
                Duration::from_secs(15),
            )
            .map(|o| o.stdout)
            .unwrap_or_default()
        };
        if self.daemon.is_some() && self.cri {
            // Pods first, through CRI: that also runs CNI DEL and removes
            // their network namespaces.
            if let Some(mut cri) = cri::Cri::try_connect(&self.socket) {
                for pod in cri.list_pod_sandboxes().unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&pod.id);
                    let _ = cri.remove_pod_sandbox(&pod.id);
                }
            }
        }
        if self.daemon.is_some() {
            for ns in &namespaces {
                for t in ctr(ns, &["tasks", "ls", "-q"])
                    .lines()
                    .filter(|l| !l.is_empty())
                {
                    ctr(ns, &["tasks", "kill", "-a", "-s", "SIGKILL", t]);
                    ctr(ns, &["tasks", "delete", "-f", t]);
                }
                for c in ctr(ns, &["containers", "ls", "-q"])
                    .lines()
                    .filter(|l| !l.is_empty())
                {
                    ctr(ns, &["containers", "delete", c]);
                }
            }
        }
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        kill_processes_with(&[
            "containerd-shim",
            &format!("-address {}", self.socket.display()),
        ]);
        std::thread::sleep(Duration::from_millis(100));
        // atoll containers still in the shim's state root
        for ns in entries(&self.shim_root) {
            let root = self.shim_root.join(&ns);
            let ids: Vec<String> = entries(&root)
                .into_iter()
                .chain(entries(&root.join(".atoll")))
                .filter(|e| !e.starts_with('.'))
                .collect();
            for id in ids {
                let _ = try_run(
                    Command::new(atoll_bin())
                        .arg("--root")
                        .arg(&root)
                        .args(["delete", "--force", &id]),
                    Duration::from_secs(30),
                );
            }
        }
        unmount_under(self.dir.path());
        for ns in namespaces.iter().filter(|n| n.starts_with("atoll-")) {
            remove_cgroups(ns);
        }
        remove_cgroups(&self.cgroup_parent);
        if self.cri {
            // CNI's result cache (libcni keeps it in /var/lib/cni): entries
            // of this network and the loopback entries of these pods.
            let mut pods = entries(&self.path().join("root/io.containerd.grpc.v1.cri/sandboxes"));
            pods.extend(entries(
                &self
                    .path()
                    .join("state/io.containerd.grpc.v1.cri/sandboxes"),
            ));
            for e in entries(Path::new(CNI_CACHE)) {
                if e.starts_with(&format!("{}-", self.network))
                    || pods.iter().any(|p| e == format!("cni-loopback-{p}-lo"))
                {
                    let _ = std::fs::remove_file(Path::new(CNI_CACHE).join(e));
                }
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}
