//! Proof that a container left nothing behind: no state directory, no
//! cgroup, no mount and no process that refers to it.

use std::path::{Path, PathBuf};

/// What to look for after a test is done with container `id`.
pub struct LeakCheck {
    pub id: String,
    pub state_root: PathBuf,
    pub bundle: Option<PathBuf>,
    /// The rootfs when it is not inside the bundle (shared images): its
    /// processes are found through the container's cgroup, since other
    /// containers may use the same image at the same time.
    pub rootfs: Option<PathBuf>,
}

/// Every cgroup directory a container with the default cgroup path could own.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            dirs.push(e.path().join("atoll").join(id));
        }
    }
    dirs.push(PathBuf::from("/sys/fs/cgroup/atoll").join(id));
    dirs
}

/// Processes whose cgroup names the container, or whose root is in the bundle.
pub fn processes_of(id: &str, bundle: Option<&Path>) -> Vec<String> {
    let mut found = Vec::new();
    let needle = format!("/atoll/{id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let in_cgroup = cg
            .lines()
            .any(|l| l.ends_with(&needle) || l.contains(&format!("{needle}/")));
        let in_bundle = bundle.is_some_and(|b| {
            std::fs::read_link(e.path().join("root"))
                .map(|r| r.starts_with(b))
                .unwrap_or(false)
        });
        // Zombies are gone as far as resources go, but still show; ignore
        // processes that are exiting.
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if (in_cgroup || in_bundle) && !zombie {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push(format!("pid {name} ({})", comm.trim()));
        }
    }
    found
}

/// Mountinfo lines that mention the bundle or the state directory.
pub fn mounts_of(id: &str, state_root: &Path, bundle: Option<&Path>) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let state = state_root.join(id);
    text.lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mp = f.get(4).copied().unwrap_or_default();
            let root = f.get(3).copied().unwrap_or_default();
            Path::new(mp).starts_with(&state)
                || bundle
                    .is_some_and(|b| Path::new(mp).starts_with(b) || Path::new(root).starts_with(b))
        })
        .map(String::from)
        .collect()
}

impl LeakCheck {
    pub fn new(id: &str, state_root: &Path, bundle: Option<&Path>) -> LeakCheck {
        LeakCheck {
            id: id.to_string(),
            state_root: state_root.to_path_buf(),
            bundle: bundle.map(Path::to_path_buf),
            rootfs: None,
        }
    }

    pub fn with_rootfs(mut self, rootfs: &Path) -> LeakCheck {
        self.rootfs = Some(rootfs.to_path_buf());
        self
    }

    /// Everything still there, as human-readable lines (empty means clean).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for d in [
            self.state_root.join(&self.id),
            self.state_root.join(".atoll").join(&self.id),
        ] {
            if std::fs::symlink_metadata(&d).is_ok() {
                left.push(format!("state dir {}", d.display()));
            }
        }
        for d in cgroup_dirs(&self.id) {
            if d.exists() {
                left.push(format!("cgroup {}", d.display()));
            }
        }
        for m in mounts_of(&self.id, &self.state_root, self.bundle.as_deref()) {
            left.push(format!("mount {m}"));
        }
        for p in processes_of(&self.id, self.bundle.as_deref()) {
            left.push(format!("process {p}"));
        }

        left
    }

    /// Asserts nothing is left, allowing a moment for processes to be reaped.
    pub fn assert_clean(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("container {} leaked:\n  {}", self.id, left.join("\n  "));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
