//! OCI bundles for tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A bundle on disk; removed when dropped.
pub struct Bundle {
    pub path: PathBuf,
    pub rootfs: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bundle {
    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
    pub fn spec(&self) -> Spec {
        Spec::load(self.path.join("config.json")).unwrap()
    }
    pub fn write_spec(&self, spec: &Spec) {
        spec.save(self.path.join("config.json")).unwrap();
    }
}

pub struct BundleBuilder {
    spec: Spec,
    rootfs_source: RootfsSource,
}

enum RootfsSource {
    Busybox,
    Dir(PathBuf),
    /// Used in place, read-only (large cached images like the Debian rootfs).
    Shared(PathBuf),
}

/// The cached busybox rootfs (Debian's busybox-static, applets linked).
pub fn busybox_rootfs() -> PathBuf {
    let dir = crate::cache_dir().join("busybox-rootfs");
    let marker = dir.join(".complete");
    if marker.exists() {
        return dir;
    }
    let tmp = crate::cache_dir().join(crate::unique("busybox-rootfs.tmp"));
    for d in [
        "bin", "dev", "proc", "sys", "etc", "tmp", "root", "var", "data",
    ] {
        std::fs::create_dir_all(tmp.join(d)).unwrap();
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox missing: install busybox-static (make deps)"
    );
    std::fs::copy(busybox, tmp.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = tmp.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        tmp.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(tmp.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(tmp.join(".complete"), "").unwrap();
    // Another test process may have won the race; either copy is complete.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}

impl Default for BundleBuilder {
    fn default() -> Self {
        Self::busybox()
    }
}

impl BundleBuilder {
    /// A bundle with the busybox rootfs and runc's default spec.
    pub fn busybox() -> BundleBuilder {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap();
        p.set_terminal(Some(false));
        spec.set_process(Some(p));
        spec.set_hostname(Some("atoll-test".into()));
        BundleBuilder {
            spec,
            rootfs_source: RootfsSource::Busybox,
        }
    }

    /// A bundle whose rootfs is `dir` itself, read-only, with a tmpfs on
    /// /tmp: for large cached images shared by many tests.
    pub fn shared_rootfs(dir: impl Into<PathBuf>) -> BundleBuilder {
        let mut b = Self::busybox();
        b.rootfs_source = RootfsSource::Shared(dir.into());
        b.tmpfs("/tmp")
    }

    /// The Debian rootfs (built on first use).
    pub fn debian() -> BundleBuilder {
        Self::debian_at(crate::debian::debian_rootfs())
    }

    /// The Debian variant with Go, Java, Node and CPython's tests (built
    /// on first use); HOME is /tmp, where the toolchains keep their caches.
    pub fn debian_runtimes() -> BundleBuilder {
        Self::shared_rootfs(crate::debian::runtimes_rootfs())
            .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME=/tmp")
    }

    fn debian_at(dir: PathBuf) -> BundleBuilder {
        Self::shared_rootfs(dir)
            .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME=/root")
    }

    pub fn tmpfs(mut self, dest: &str) -> Self {
        let m = oci_spec::runtime::MountBuilder::default()
            .destination(dest)
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "mode=1777".to_string(),
            ])
            .build()
            .unwrap();
        let mut ms = self.spec.mounts().clone().unwrap_or_default();
        ms.push(m);
        self.spec.set_mounts(Some(ms));
        self
    }

    /// Bind-mounts host directory `src` at `dest`.
    pub fn bind(mut self, src: &std::path::Path, dest: &str, readonly: bool) -> Self {
        let mut opts = vec!["rbind".to_string()];
        if readonly {
            opts.push("ro".to_string());
        }
        let m = oci_spec::runtime::MountBuilder::default()
            .destination(dest)
            .typ("bind")
            .source(src)
            .options(opts)
            .build()
            .unwrap();
        let mut ms = self.spec.mounts().clone().unwrap_or_default();
        ms.push(m);
        self.spec.set_mounts(Some(ms));
        self
    }

    /// A bundle whose rootfs is a copy of `dir`.
    pub fn from_rootfs(dir: impl Into<PathBuf>) -> BundleBuilder {
        let mut b = Self::busybox();
        b.rootfs_source = RootfsSource::Dir(dir.into());
        b
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        let mut p = self.spec.process().clone().unwrap();
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        self.spec.set_process(Some(p));
        self
    }

    /// `sh -c <script>`.
    pub fn sh(self, script: &str) -> Self {
        self.args(&["/bin/sh", "-c", script])
    }

    pub fn env(mut self, kv: &str) -> Self {
        let mut p = self.spec.process().clone().unwrap();
        let mut env = p.env().clone().unwrap_or_default();
        env.push(kv.to_string());
        p.set_env(Some(env));
        self.spec.set_process(Some(p));
        self
    }

    pub fn terminal(mut self, on: bool) -> Self {
        let mut p = self.spec.process().clone().unwrap();
        p.set_terminal(Some(on));
        self.spec.set_process(Some(p));
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        let mut a = self.spec.annotations().clone().unwrap_or_default();
        a.insert(k.into(), v.into());
        self.spec.set_annotations(Some(a));
        self
    }

    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        let mut p = self.spec.process().clone().unwrap();
        let mut u = p.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        p.set_user(u);
        self.spec.set_process(Some(p));
        self
    }

    /// Drops a namespace from the spec (shares the host's).
    pub fn without_namespace(mut self, ns: LinuxNamespaceType) -> Self {
        let mut l = self.spec.linux().clone().unwrap();
        let list: Vec<_> = l
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.typ() != ns)
            .collect();
        l.set_namespaces(Some(list));
        self.spec.set_linux(Some(l));
        self
    }

    pub fn pids_limit(mut self, n: i64) -> Self {
        let mut l = self.spec.linux().clone().unwrap();
        let mut r = l.resources().clone().unwrap_or_default();
        r.set_pids(Some(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(n)
                .build()
                .unwrap(),
        ));
        l.set_resources(Some(r));
        self.spec.set_linux(Some(l));
        self
    }

    /// Docker's default capabilities (what Kubernetes gives a pod by
    /// default): services like nginx need CHOWN, SETUID and friends.
    pub fn docker_caps(self) -> Self {
        use oci_spec::runtime::Capability::*;
        let caps: std::collections::HashSet<_> = [
            Chown,
            DacOverride,
            Fowner,
            Fsetid,
            Kill,
            Setgid,
            Setuid,
            Setpcap,
            NetBindService,
            NetRaw,
            SysChroot,
            Mknod,
            AuditWrite,
            Setfcap,
        ]
        .into_iter()
        .collect();
        self.modify(|spec| {
            let mut p = spec.process().clone().unwrap();
            let mut c = p.capabilities().clone().unwrap();
            c.set_bounding(Some(caps.clone()));
            c.set_effective(Some(caps.clone()));
            c.set_permitted(Some(caps));
            p.set_capabilities(Some(c));
            spec.set_process(Some(p));
        })
    }

    /// A CPU quota of `cpus` whole CPUs (CFS quota over a 100 ms period).
    pub fn cpu_limit(mut self, cpus: i64) -> Self {
        let mut l = self.spec.linux().clone().unwrap();
        let mut r = l.resources().clone().unwrap_or_default();
        r.set_cpu(Some(
            oci_spec::runtime::LinuxCpuBuilder::default()
                .quota(cpus * 100_000)
                .period(100_000u64)
                .build()
                .unwrap(),
        ));
        l.set_resources(Some(r));
        self.spec.set_linux(Some(l));
        self
    }

    pub fn memory_limit(mut self, bytes: i64) -> Self {
        let mut l = self.spec.linux().clone().unwrap();
        let mut r = l.resources().clone().unwrap_or_default();
        let mut m = (*r.memory()).unwrap_or_default();
        m.set_limit(Some(bytes));
        m.set_swap(Some(bytes));
        r.set_memory(Some(m));
        l.set_resources(Some(r));
        self.spec.set_linux(Some(l));
        self
    }

    /// Arbitrary edits of the spec.
    pub fn modify(mut self, f: impl FnOnce(&mut Spec)) -> Self {
        f(&mut self.spec);
        self
    }

    pub fn build(self) -> Bundle {
        // `ATOLL_TEST_DIRECTFS=false`: every bundle asks for gofer-only file
        // access (make test runs the userspace suites once that way).
        if std::env::var("ATOLL_TEST_DIRECTFS").is_ok_and(|v| v == "false") {
            return self.annotation("dev.atoll.directfs", "false").build_as_is();
        }
        self.build_as_is()
    }

    fn build_as_is(self) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("atoll-bundle-")
            .tempdir()
            .expect("bundle dir");
        let (rootfs, readonly) = match &self.rootfs_source {
            RootfsSource::Shared(d) => (d.clone(), true),
            src => {
                let src = match src {
                    RootfsSource::Dir(d) => d.clone(),
                    _ => busybox_rootfs(),
                };
                let rootfs = dir.path().join("rootfs");
                let st = Command::new("cp")
                    .arg("-a")
                    .arg(&src)
                    .arg(&rootfs)
                    .status()
                    .expect("cp");
                assert!(st.success(), "copying rootfs {}", src.display());
                (rootfs, false)
            }
        };
        let mut spec = self.spec;
        let mut root = spec.root().clone().unwrap();
        root.set_path(if readonly {
            rootfs.clone()
        } else {
            PathBuf::from("rootfs")
        });
        root.set_readonly(Some(readonly));
        spec.set_root(Some(root));
        spec.save(dir.path().join("config.json")).unwrap();
        Bundle {
            path: dir.path().to_path_buf(),
            rootfs,
            _dir: dir,
        }
    }
}
