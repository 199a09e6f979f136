//! `/etc/atoll/config.toml`: node-wide defaults an operator sets once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::level::Isolation;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/atoll/config.toml";
pub const DEFAULT_POLICY_PATH: &str = "/etc/atoll/policy.toml";
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/atoll/audit.jsonl";

/// Node configuration. Every field is optional; unknown keys are errors so a
/// typo never silently falls back to a default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Level used when neither `--isolation` nor the bundle's annotation picks one.
    pub isolation: Option<Isolation>,
    /// The userspace level's platform (systrap or ptrace) when neither
    /// `--platform` nor the bundle's annotation picks one.
    pub platform: Option<String>,
    /// The userspace level's network (host or sandbox) when neither
    /// `--network` nor the bundle's annotation picks one, for containers
    /// with a network namespace of their own (one sharing the node's gets
    /// host); unset: sandbox.
    pub network: Option<String>,
    /// Where the userspace level's rootfs writes go (none or root:memory)
    /// when neither `--overlay` nor the bundle's annotation picks one.
    pub overlay: Option<String>,
    /// Tenant policy file (default /etc/atoll/policy.toml, used when it exists).
    pub policy: Option<PathBuf>,
    /// JSON-lines audit trail of lifecycle decisions.
    pub audit_log: Option<PathBuf>,
    /// The vm level's guest kernel and initramfs (default
    /// /usr/local/lib/atoll/vm, or $ATOLL_VM_ASSETS).
    pub vm_assets: Option<PathBuf>,
}

impl Config {
    /// Loads the config file. A missing file at the default path means
    /// defaults; a missing file that was asked for explicitly is an error.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) => return Err(e).with_context(|| format!("config {}", path.display())),
        };
        Self::parse(&text).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))
    }

    pub fn policy_path(&self) -> PathBuf {
        self.policy
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY_PATH))
    }

    /// The audit log: `audit_log`, else `$ATOLL_AUDIT_LOG` (test kits and
    /// private daemon instances point it elsewhere), else
    /// /var/log/atoll/audit.jsonl.
    pub fn audit_log_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .or_else(|| std::env::var_os("ATOLL_AUDIT_LOG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_LOG))
    }
}

/// toml errors are multi-line with a source excerpt; keep them to one line.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let c = Config::parse("isolation = \"userspace\"\n").unwrap();
        assert_eq!(c.isolation, Some(Isolation::Userspace));
        let err = Config::parse("isolaton = \"native\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("isolaton"), "{err}");
        assert!(!err.contains('\n'));
        assert!(Config::parse("isolation = \"fast\"\n").is_err());
        let c = Config::parse("overlay = \"root:memory\"\n").unwrap();
        assert_eq!(c.overlay.as_deref(), Some("root:memory"));
    }

    #[test]
    fn policy_and_audit_paths() {
        let c = Config::default();
        assert_eq!(c.policy_path(), PathBuf::from(DEFAULT_POLICY_PATH));
        assert_eq!(c.audit_log_path(), PathBuf::from(DEFAULT_AUDIT_LOG));
        let c = Config::parse("policy = \"/p.toml\"\naudit_log = \"/a.jsonl\"\n").unwrap();
        assert_eq!(c.policy_path(), PathBuf::from("/p.toml"));
        assert_eq!(c.audit_log_path(), PathBuf::from("/a.jsonl"));
    }

    #[test]
    fn missing_default_file_is_defaults_but_explicit_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(Config::load(Some(&missing)).is_err());
    }
}
