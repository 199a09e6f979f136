//! Isolation levels and how one is chosen for a container.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

/// Annotation a bundle uses to ask for a level.
pub const ISOLATION_ANNOTATION: &str = "dev.atoll.isolation";
/// Annotation a bundle uses to pick the userspace level's platform.
pub const PLATFORM_ANNOTATION: &str = "dev.atoll.platform";
/// The userspace level's platforms: how workload syscalls reach the
/// application kernel.
pub const PLATFORMS: [&str; 2] = ["systrap", "ptrace"];

/// Picks the userspace level's platform: `--platform`, else the bundle's
/// annotation, else the config file; None leaves it to the sandbox
/// (systrap where the host supports it, else ptrace).
pub fn select_platform(
    flag: Option<&str>,
    annotation: Option<&str>,
    config: Option<&str>,
) -> Result<Option<String>> {
    let check = |v: &str, from: &str| {
        if PLATFORMS.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(anyhow!(
                "{from}: unknown platform {v:?} (expected systrap or ptrace)"
            ))
        }
    };
    if let Some(v) = flag {
        return check(v, "--platform").map(Some);
    }
    if let Some(v) = annotation {
        return check(v, &format!("annotation {PLATFORM_ANNOTATION}")).map(Some);
    }
    config.map(|v| check(v, "config platform")).transpose()
}

/// Annotation a bundle uses to pick who serves the userspace level's
/// AF_INET sockets.
pub const NETWORK_ANNOTATION: &str = "dev.atoll.network";
/// Who serves the userspace level's AF_INET and AF_INET6 sockets: host
/// sockets of the kernel, or the kernel's own TCP/IP stack.
pub const NETWORKS: [&str; 2] = ["host", "sandbox"];

/// The network a container asks for itself: `--network`, else the
/// bundle's annotation (None: no ask).
pub fn asked_network(flag: Option<&str>, annotation: Option<&str>) -> Result<Option<String>> {
    if let Some(v) = flag {
        return check_network(v, "--network").map(Some);
    }
    if let Some(v) = annotation {
        return check_network(v, &format!("annotation {NETWORK_ANNOTATION}")).map(Some);
    }
    Ok(None)
}

/// `host-stack` is another name of `host` (what issue 16 and gVisor's
/// docs call today's mode: the host's TCP/IP stack).
fn check_network(v: &str, from: &str) -> Result<String> {
    let v = if v == "host-stack" { "host" } else { v };
    if NETWORKS.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(anyhow!(
            "{from}: unknown network {v:?} (expected sandbox, host or host-stack)"
        ))
    }
}

/// Picks the userspace level's network: the container's own ask (see
/// [`asked_network`]); else `host` for a container without a network
/// namespace of its own (it shares the node's: the sandbox's stack would
/// have to take the node's interfaces over and cut the node off, or leave
/// the workload with loopback only where it expects the node's network);
/// else the config file; else `sandbox`.
pub fn select_network(
    asked: Option<String>,
    own_netns: bool,
    config: Option<&str>,
) -> Result<String> {
    if let Some(v) = asked {
        return Ok(v);
    }
    if !own_netns {
        return Ok("host".into());
    }
    match config {
        Some(v) => check_network(v, "config network"),
        None => Ok("sandbox".into()),
    }
}

/// Annotation a bundle uses to pick where the userspace level's rootfs
/// writes go.
pub const OVERLAY_ANNOTATION: &str = "dev.atoll.overlay";
/// Where the userspace level's rootfs writes go: the bundle's rootfs, or
/// an upper layer in the application kernel's memory (gVisor's
/// `--overlay2=root:memory`).
pub const OVERLAYS: [&str; 2] = ["none", "root:memory"];

/// Picks the userspace level's rootfs overlay: `--overlay`, else the
/// bundle's annotation, else the config file; None means none.
pub fn select_overlay(
    flag: Option<&str>,
    annotation: Option<&str>,
    config: Option<&str>,
) -> Result<Option<String>> {
    let check = |v: &str, from: &str| {
        if OVERLAYS.contains(&v) {
            Ok(v.to_string())
        } else if v == "root:self" {
            Err(anyhow!(
                "{from}: overlay \"root:self\" (a file-backed upper layer) is not built yet (expected none or root:memory)"
            ))
        } else {
            Err(anyhow!(
                "{from}: unknown overlay {v:?} (expected none or root:memory)"
            ))
        }
    };
    if let Some(v) = flag {
        return check(v, "--overlay").map(Some);
    }
    if let Some(v) = annotation {
        return check(v, &format!("annotation {OVERLAY_ANNOTATION}")).map(Some);
    }
    config.map(|v| check(v, "config overlay")).transpose()
}

/// How strongly a container is separated from the host kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Namespaces, cgroups, seccomp, capabilities: the workload runs on the host kernel.
    Native,
    /// atoll's application kernel serves every syscall of the workload.
    Userspace,
    /// The workload runs under a guest kernel of its own, in a KVM virtual
    /// machine that atoll's VMM runs as the container's init.
    Vm,
}

impl Isolation {
    pub const ALL: [Isolation; 3] = [Isolation::Native, Isolation::Userspace, Isolation::Vm];

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Native => "native",
            Isolation::Userspace => "userspace",
            Isolation::Vm => "vm",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Isolation {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Isolation::Native),
            "userspace" => Ok(Isolation::Userspace),
            "vm" => Ok(Isolation::Vm),
            other => Err(anyhow!(
                "unknown isolation level {other:?} (expected native, userspace or vm)"
            )),
        }
    }
}

/// Where the chosen level came from; recorded in state and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelSource {
    Flag,
    Annotation,
    Config,
    Default,
    Policy,
}

/// Picks the level: `--isolation`, else the bundle's annotation, else the
/// config file's default, else native.
pub fn select(
    flag: Option<Isolation>,
    annotation: Option<&str>,
    config_default: Option<Isolation>,
) -> Result<(Isolation, LevelSource)> {
    if let Some(level) = flag {
        return Ok((level, LevelSource::Flag));
    }
    if let Some(value) = annotation {
        let level = value
            .parse()
            .map_err(|e| anyhow!("annotation {ISOLATION_ANNOTATION}: {e}"))?;
        return Ok((level, LevelSource::Annotation));
    }
    if let Some(level) = config_default {
        return Ok((level, LevelSource::Config));
    }
    Ok((Isolation::Native, LevelSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_flag_beats_annotation_beats_config() {
        let asked = |f, a| asked_network(f, a).unwrap();
        assert_eq!(asked(Some("sandbox"), Some("host")), Some("sandbox".into()));
        assert_eq!(asked(None, Some("host")), Some("host".into()));
        assert_eq!(asked(Some("host-stack"), None), Some("host".into()));
        assert_eq!(asked(None, Some("host-stack")), Some("host".into()));
        assert_eq!(asked(None, None), None);
        assert_eq!(
            select_network(Some("host".into()), true, Some("sandbox")).unwrap(),
            "host"
        );
        assert_eq!(select_network(None, true, Some("host")).unwrap(), "host");
        let e = asked_network(None, Some("bridge")).unwrap_err().to_string();
        assert!(
            e.contains("dev.atoll.network") && e.contains("\"bridge\""),
            "{e}"
        );
        let e = asked_network(Some("none"), None).unwrap_err().to_string();
        assert!(e.contains("--network"), "{e}");
        let e = select_network(None, true, Some("tap"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config network"), "{e}");
    }

    /// The default: the sandbox's own stack for a container with a
    /// network namespace of its own; the host's for one sharing the
    /// node's (whatever the config file says), unless it asks itself.
    #[test]
    fn network_defaults_to_sandbox_unless_the_node_namespace_is_shared() {
        assert_eq!(select_network(None, true, None).unwrap(), "sandbox");
        assert_eq!(select_network(None, false, None).unwrap(), "host");
        assert_eq!(
            select_network(None, false, Some("sandbox")).unwrap(),
            "host"
        );
        assert_eq!(
            select_network(Some("sandbox".into()), false, None).unwrap(),
            "sandbox"
        );
    }

    #[test]
    fn overlay_flag_beats_annotation_beats_config() {
        assert_eq!(
            select_overlay(Some("none"), Some("root:memory"), Some("root:memory")).unwrap(),
            Some("none".into())
        );
        assert_eq!(
            select_overlay(None, Some("root:memory"), Some("none")).unwrap(),
            Some("root:memory".into())
        );
        assert_eq!(
            select_overlay(None, None, Some("root:memory")).unwrap(),
            Some("root:memory".into())
        );
        assert_eq!(select_overlay(None, None, None).unwrap(), None);
        let e = select_overlay(None, Some("root:disk"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dev.atoll.overlay") && e.contains("\"root:disk\""),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = select_overlay(Some("root:self"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--overlay") && e.contains("not built"), "{e}");
        let e = select_overlay(None, None, Some("all"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config overlay"), "{e}");
    }

    #[test]
    fn platform_flag_beats_annotation_beats_config() {
        assert_eq!(
            select_platform(Some("ptrace"), Some("systrap"), Some("systrap")).unwrap(),
            Some("ptrace".into())
        );
        assert_eq!(
            select_platform(None, Some("ptrace"), Some("systrap")).unwrap(),
            Some("ptrace".into())
        );
        assert_eq!(
            select_platform(None, None, Some("ptrace")).unwrap(),
            Some("ptrace".into())
        );
        assert_eq!(select_platform(None, None, None).unwrap(), None);
        let e = select_platform(None, Some("kvm"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dev.atoll.platform") && e.contains("\"kvm\""),
            "{e}"
        );
    }

    #[test]
    fn precedence() {
        use Isolation::*;
        assert_eq!(
            select(Some(Native), Some("userspace"), Some(Userspace)).unwrap(),
            (Native, LevelSource::Flag)
        );
        assert_eq!(
            select(None, Some("userspace"), Some(Native)).unwrap(),
            (Userspace, LevelSource::Annotation)
        );
        assert_eq!(
            select(None, None, Some(Userspace)).unwrap(),
            (Userspace, LevelSource::Config)
        );
        assert_eq!(
            select(None, None, None).unwrap(),
            (Native, LevelSource::Default)
        );
    }

    #[test]
    fn bad_annotation_is_an_error() {
        let err = select(None, Some("paranoid"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev.atoll.isolation"), "{err}");
        assert!(err.contains("paranoid"), "{err}");
    }
}
