//! What evaluation is asked and what it answers.

use std::fmt;

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use crate::level::Level;

/// A container about to be created.
#[derive(Debug, Clone, Copy)]
pub struct CreateRequest<'a> {
    pub tenant: &'a str,
    /// The bundle's spec as written, before atoll adds its defaults. The
    /// caller resolves bundle-relative bind sources first: relative host
    /// paths are refused by `host_paths`.
    pub spec: &'a Spec,
    /// The level selected by flag, annotation or config.
    pub level: Level,
    /// Containers of this tenant already on the node, not counting this one.
    pub running_containers_of_tenant: usize,
    /// The network asked for by flag or annotation (`host`, `sandbox`);
    /// None when the container names none (the node's default applies).
    pub network: Option<&'a str>,
}

/// A process about to be exec'd in a running container.
#[derive(Debug, Clone, Copy)]
pub struct ExecRequest<'a> {
    pub tenant: &'a str,
    pub spec_of_container: &'a Spec,
    /// The exec'd process after merging the CLI flags (`--user`, `--cap`,
    /// `--no-new-privs`, `--process`).
    pub process: &'a Process,
    /// The `--user` argument as typed (`"0:0"`, `"1000"`, `"root"`), if
    /// any. Checked as well as `process.user`, so a caller that forgot to
    /// merge it into the process cannot let uid 0 through.
    pub user: Option<&'a str>,
    /// The container's level.
    pub level: Level,
}

/// Why a request is refused: one rule and the spec field it objects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Violation {
    pub tenant: String,
    /// The rule's name as written in the policy file.
    pub rule: String,
    /// Where in the request, in config.json terms: `process.user.uid`,
    /// `linux.namespaces[pid].path`, `mounts[2].source`, ...
    pub field: String,
    pub value: String,
}

/// `tenant "acme": rule run_as_non_root forbids process.user.uid=0`,
/// always one line: control characters in values are escaped.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {:?}: rule {} forbids {}={}",
            self.tenant,
            self.rule,
            one_line(&self.field),
            one_line(&self.value)
        )
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run at `level`; `upgraded_from` is the requested level when policy
    /// raised it.
    Allow {
        level: Level,
        upgraded_from: Option<Level>,
    },
    /// The first rule (in evaluation order) the request breaks.
    Refuse(Violation),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The level to run at, if allowed.
    pub fn level(&self) -> Option<Level> {
        match self {
            Decision::Allow { level, .. } => Some(*level),
            Decision::Refuse(_) => None,
        }
    }

    pub fn upgraded_from(&self) -> Option<Level> {
        match self {
            Decision::Allow { upgraded_from, .. } => *upgraded_from,
            Decision::Refuse(_) => None,
        }
    }

    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Decision::Refuse(v) => Some(v),
            Decision::Allow { .. } => None,
        }
    }

    /// `allow`, `upgrade` or `refuse`, as audit records spell it.
    pub fn outcome(&self) -> crate::audit::AuditDecision {
        use crate::audit::AuditDecision;
        match self {
            Decision::Allow {
                upgraded_from: Some(_),
                ..
            } => AuditDecision::Upgrade,
            Decision::Allow { .. } => AuditDecision::Allow,
            Decision::Refuse(_) => AuditDecision::Refuse,
        }
    }

    /// The level, or the violation as an error (it implements
    /// `std::error::Error`, so `?` works with anyhow).
    pub fn into_result(self) -> Result<Level, Violation> {
        match self {
            Decision::Allow { level, .. } => Ok(level),
            Decision::Refuse(v) => Err(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_display() {
        let v = Violation {
            tenant: "acme".into(),
            rule: "host_namespaces".into(),
            field: "linux.namespaces[pid].path".into(),
            value: "/proc/1/ns/pid".into(),
        };
        assert_eq!(
            v.to_string(),
            "tenant \"acme\": rule host_namespaces forbids linux.namespaces[pid].path=/proc/1/ns/pid"
        );
        let v = Violation {
            value: "a\nb".into(),
            ..v
        };
        assert_eq!(v.to_string().lines().count(), 1);
        assert!(v.to_string().ends_with("=a\\nb"));
    }
}
