//! atoll's per-container metadata, next to libcontainer's state.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::level::{Isolation, LevelSource};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub id: String,
    /// The bundle the client gave (libcontainer sees atoll's directory).
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub level: Isolation,
    pub level_source: LevelSource,
    pub tenant: String,
    pub created: DateTime<Utc>,
    pub owner_uid: u32,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Cgroup path of the container, as given to libcontainer.
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// The bundle's `process` as created: what the workload runs as,
    /// whatever the level (a userspace container's effective spec has the
    /// application kernel's instead). `exec` policy starts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<oci_spec::runtime::Process>,
    /// A userspace sandbox's log, where its kernel writes its final
    /// syscall counters (`stats {json}`) when it exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_log: Option<PathBuf>,
    /// A pod's container that joined its sandbox container's kernel: the
    /// sandbox container's id (its control socket serves this one too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sandbox: Option<String>,
}

impl Meta {
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.meta_file(&self.id);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(layout: &Layout, id: &str) -> Result<Meta> {
        let path = layout.meta_file(id);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        crate::spec::parse_json(&bytes)
            .with_context(|| format!("state of container {id} is corrupt ({})", path.display()))
    }
}
