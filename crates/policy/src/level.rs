//! Isolation levels as policy sees them.
//!
//! The runtime has its own `Isolation` type; this crate keeps its own so it
//! depends on nothing but the OCI spec. The two convert by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How strongly a container is separated from the host kernel, weakest
/// first: the derived `Ord` is what `min_isolation` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The workload runs on the host kernel (namespaces, cgroups, seccomp).
    Native,
    /// atoll's application kernel serves every syscall of the workload.
    Userspace,
    /// A guest kernel of the workload's own, in a KVM virtual machine.
    Vm,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Native, Level::Userspace, Level::Vm];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Native => "native",
            Level::Userspace => "userspace",
            Level::Vm => "vm",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An isolation level name that is not `native` or `userspace`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown isolation level {0:?} (expected native, userspace or vm)")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(Level::Native),
            "userspace" => Ok(Level::Userspace),
            "vm" => Ok(Level::Vm),
            other => Err(ParseLevelError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_names_and_serde() {
        // Stronger isolation orders higher: a tenant's min_isolation
        // admits every level at or above it.
        assert!(Level::Native < Level::Userspace && Level::Userspace < Level::Vm);
        for l in Level::ALL {
            assert_eq!(l.to_string().parse::<Level>().unwrap(), l);
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.as_str())
            );
        }
        assert!("kvm".parse::<Level>().is_err());
        assert!("Native".parse::<Level>().is_err());
    }
}
