//! Where atoll keeps things under the state root (`--root`, default /run/atoll).
//!
//! ```text
//! <root>/<id>/             libcontainer's container directory (state.json, notify socket)
//! <root>/.atoll/<id>/      atoll's own: config.json (effective spec), atoll.json (metadata),
//!                          seccomp.bpf (the native level's compiled filter)
//! <root>/.atoll/.seccomp/  compiled seccomp filters, one per profile (seccomp_filter.rs)
//! ```

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/atoll";

#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// libcontainer's directory for a container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// atoll's directory for a container; also the bundle libcontainer is
    /// given (it holds the effective config.json).
    pub fn atoll_dir(&self, id: &str) -> PathBuf {
        self.root.join(".atoll").join(id)
    }

    pub fn meta_file(&self, id: &str) -> PathBuf {
        self.atoll_dir(id).join("atoll.json")
    }

    /// A native container's compiled seccomp filter (create writes it;
    /// exec loads it into every exec'd process).
    pub fn seccomp_filter(&self, id: &str) -> PathBuf {
        self.atoll_dir(id).join("seccomp.bpf")
    }

    /// Compiled seccomp filters, by profile (ids never start with '.').
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join(".atoll").join(".seccomp")
    }

    /// Control socket of a userspace sandbox (created before the kernel confines itself).
    pub fn control_socket(&self, id: &str) -> PathBuf {
        self.atoll_dir(id).join("control.sock")
    }

    /// The VMM's vsock socket of a vm-level container: `CONNECT <port>`
    /// reaches the guest (exec, ps, signals to every process).
    pub fn vsock_socket(&self, id: &str) -> PathBuf {
        self.atoll_dir(id).join("vsock.sock")
    }

    /// Ids of every container with either directory.
    pub fn ids(&self) -> std::io::Result<Vec<String>> {
        let mut ids = std::collections::BTreeSet::new();
        for dir in [self.root.clone(), self.root.join(".atoll")] {
            match std::fs::read_dir(&dir) {
                Ok(entries) => {
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if !name.starts_with('.') && e.path().is_dir() {
                            ids.insert(name);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ids.into_iter().collect())
    }

    pub fn exists(&self, id: &str) -> bool {
        path_exists(&self.container_dir(id)) || path_exists(&self.atoll_dir(id))
    }
}

fn path_exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
