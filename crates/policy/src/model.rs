//! The policy file's rules, as TOML deserializes them.
//!
//! Every rule is optional; an absent rule is not enforced. A tenant's table
//! overrides `[defaults]` rule by rule ([`Rules::overlay`]), so a tenant can
//! relax a default as well as tighten it (`privileged = true` under a
//! tenant undoes a default `privileged = false`).
//!
//! Boolean rules are named after what they permit or require:
//! `privileged`, `host_namespaces` and `writable_rootfs` are enforced when
//! `false`; `run_as_non_root`, `no_privilege_escalation`, `require_seccomp`,
//! `require_drop_all` and `host_paths_readonly` when `true`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::caps::CapName;
use crate::level::Level;

/// What to do with a container asking for less isolation than
/// `min_isolation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnLowerIsolation {
    /// Refuse the container (the default: never change what was asked
    /// for without the operator saying so).
    #[default]
    Refuse,
    /// Run it at the minimum level instead.
    Upgrade,
}

/// A resource whose limit `required_limits` can demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// `linux.resources.memory.limit` > 0 (0 is "unset", -1 "unlimited").
    Memory,
    /// `linux.resources.cpu.quota` > 0 (-1 is "unlimited").
    Cpu,
    /// `linux.resources.pids.limit` > 0 (runc reads 0 as "unset", -1 is
    /// "unlimited").
    Pids,
}

/// An inclusive `[first, last]` range of uids or gids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<u32>")]
pub struct IdRange {
    pub first: u32,
    pub last: u32,
}

impl IdRange {
    pub fn contains(&self, id: u32) -> bool {
        (self.first..=self.last).contains(&id)
    }

    pub fn any_contains(ranges: &[IdRange], id: u32) -> bool {
        ranges.iter().any(|r| r.contains(id))
    }
}

impl TryFrom<Vec<u32>> for IdRange {
    type Error = String;
    fn try_from(v: Vec<u32>) -> Result<Self, String> {
        match v[..] {
            [first, last] if first <= last => Ok(IdRange { first, last }),
            [first, last] => Err(format!("range [{first}, {last}] is empty")),
            _ => Err(format!(
                "expected a [first, last] pair, got {} numbers",
                v.len()
            )),
        }
    }
}

/// An allowed host path prefix: absolute, kept lexically normalized.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPrefix(pub PathBuf);

impl TryFrom<String> for HostPrefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let p = PathBuf::from(&s);
        if !p.is_absolute() {
            return Err(format!("host path {s:?} is not absolute"));
        }
        Ok(HostPrefix(crate::paths::normalize(&p)))
    }
}

/// An allowed sysctl: an exact name, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SysctlPattern(pub String);

impl TryFrom<String> for SysctlPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let body = s.strip_suffix('*').unwrap_or(&s);
        if body.contains('*') {
            return Err(format!(
                "sysctl pattern {s:?}: '*' is only allowed at the end"
            ));
        }
        if s.is_empty() || !body.bytes().all(crate::sysctl::is_name_byte) {
            return Err(format!("sysctl pattern {s:?} is not a sysctl name"));
        }
        Ok(SysctlPattern(s))
    }
}

impl SysctlPattern {
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.0,
        }
    }
}

/// CPUs' worth of quota (quota / period): positive and finite.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct CpuFraction(pub f64);

impl TryFrom<f64> for CpuFraction {
    type Error = String;
    fn try_from(f: f64) -> Result<Self, String> {
        if f.is_finite() && f > 0.0 {
            Ok(CpuFraction(f))
        } else {
            Err(format!("{f} is not a positive number of CPUs"))
        }
    }
}

/// One egress rule of a tenant: a destination prefix, optionally ports
/// and a protocol. Written as a CIDR string (`"10.0.0.0/8"`, a bare
/// address is a host prefix) or a table `{ cidr = "10.0.0.0/8", ports =
/// "80,8000-8100", protocol = "tcp" }`. Kept in its validated text form:
/// the sandbox's stack parses it again where it enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "EgressRaw")]
pub struct EgressRule {
    pub cidr: String,
    /// Empty: every port.
    pub ports: String,
    /// `tcp`, `udp`, `icmp`, or empty: every protocol.
    pub protocol: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EgressRaw {
    Cidr(String),
    Table(EgressTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressTable {
    cidr: String,
    #[serde(default)]
    ports: Option<PortsRaw>,
    #[serde(default)]
    protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortsRaw {
    One(u16),
    List(String),
}

fn check_cidr(s: &str) -> Result<(), String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: std::net::IpAddr = a
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if let Some(p) = p
        && !p.parse::<u8>().is_ok_and(|p| p <= max)
    {
        return Err(format!("{s:?}: prefix length must be 0 to {max}"));
    }
    Ok(())
}

fn check_ports(s: &str) -> Result<(), String> {
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let port = |x: &str| {
            x.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("ports {part:?}: ports are 1 to 65535"))
        };
        if port(a)? > port(b)? {
            return Err(format!("ports {part:?}: range runs backwards"));
        }
    }
    Ok(())
}

impl TryFrom<EgressRaw> for EgressRule {
    type Error = String;
    fn try_from(r: EgressRaw) -> Result<Self, String> {
        let (cidr, ports, protocol) = match r {
            EgressRaw::Cidr(c) => (c, String::new(), String::new()),
            EgressRaw::Table(t) => (
                t.cidr,
                match t.ports {
                    None => String::new(),
                    Some(PortsRaw::One(p)) => p.to_string(),
                    Some(PortsRaw::List(s)) => s,
                },
                t.protocol.unwrap_or_default(),
            ),
        };
        check_cidr(&cidr)?;
        check_ports(&ports)?;
        if !["", "any", "tcp", "udp", "icmp"].contains(&protocol.as_str()) {
            return Err(format!(
                "protocol {protocol:?}: expected tcp, udp, icmp or any"
            ));
        }
        Ok(EgressRule {
            cidr,
            ports,
            protocol,
        })
    }
}

impl std::fmt::Display for EgressRule {
    /// `10.0.0.0/8 tcp 80,443` (what is absent is left out).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.cidr)?;
        if !self.protocol.is_empty() {
            write!(f, " {}", self.protocol)?;
        }
        if !self.ports.is_empty() {
            write!(f, " {}", self.ports)?;
        }
        Ok(())
    }
}

/// Declares the rules once: the struct, the list of names the parser
/// checks keys against, and the key-by-key overlay. Declaration order is
/// evaluation order, so the first violation reported is deterministic.
macro_rules! rules {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty, )*) => {
        /// One table of rules (`[defaults]` or `[tenants.<name>]`).
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Rules {
            $( $(#[$doc])* pub $name: Option<$ty>, )*
        }

        /// Every rule name as written in TOML, in evaluation order.
        pub const RULE_NAMES: &[&str] = &[$(stringify!($name)),*];

        impl Rules {
            /// `over`'s rules where it sets them, else `self`'s.
            pub fn overlay(&self, over: &Rules) -> Rules {
                Rules { $( $name: over.$name.clone().or_else(|| self.$name.clone()), )* }
            }
        }
    };
}

rules! {
    /// Lowest level a container may run at. `native < userspace`.
    min_isolation: Level,
    /// With `min_isolation`: refuse a lower level (default) or upgrade it.
    on_lower_isolation: OnLowerIsolation,
    /// Checked before anything about the spec: a tenant already running
    /// this many containers on the node may not create another.
    max_containers: usize,
    /// `false` refuses privileged containers. A container is privileged if
    /// any of these holds:
    /// - `process.capabilities` is absent (libcontainer then keeps all of
    ///   the runtime's capabilities), or any capability set holds
    ///   CAP_SYS_ADMIN, CAP_SYS_MODULE or CAP_SYS_RAWIO (each alone is
    ///   enough to reach the host kernel: mounts and namespaces, kernel
    ///   modules, raw I/O ports and /dev/mem);
    /// - a mount is writable (no effective `ro`) and is a sysfs, or has its
    ///   destination at `/sys` or at/below `/proc/sys`, or binds a host
    ///   path at/below `/sys` or `/proc`;
    /// - a `proc` mount's `<destination>/sys` is not covered by
    ///   `linux.readonlyPaths` or `linux.maskedPaths` (an absent
    ///   `readonlyPaths` counts as atoll's default, which has `/proc/sys`);
    /// - a `linux.resources.devices` rule allows every device (`allow:
    ///   true` with no type or type `a`, and no major/minor).
    ///
    /// At `exec`, the capability part applies to the exec'd process.
    privileged: bool,
    /// `false` refuses host namespaces: a `linux.namespaces[].path` that
    /// names one of the host's namespaces (compared by nsfs inode with
    /// `/proc/1/ns/*`; a path that cannot be read or is not a namespace is
    /// refused too), and any of pid, ipc, network, uts or mount left out of
    /// `linux.namespaces` (which means sharing the runtime's, i.e. the
    /// host's). Other paths are allowed: that is how a pod's containers
    /// join its pause container's namespaces.
    host_namespaces: bool,
    /// Allowed host path prefixes for mount sources; `[]` allows none. A
    /// mount has a host source unless it is a non-bind mount of type proc,
    /// sysfs, tmpfs, devpts, mqueue, cgroup or cgroup2. Sources must be
    /// absolute and are compared lexically and after following symlinks,
    /// on path component boundaries (see `paths`).
    host_paths: Vec<HostPrefix>,
    /// `true` requires every host-source mount to be read-only (the last of
    /// its `ro`/`rw` options is `ro`).
    host_paths_readonly: bool,
    /// Capabilities allowed in any capability set on top of runc's default
    /// set (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE). Names with or
    /// without `CAP_`, any case. An absent `process.capabilities` keeps all
    /// capabilities and is refused.
    allowed_capabilities: Vec<CapName>,
    /// `true` requires every capability set to be a subset of
    /// `allowed_capabilities` alone, without runc's defaults: "drop ALL,
    /// add back only what is allowed", as the restricted Pod Security
    /// Standard says. Every set, not only bounding: a cap in the
    /// inheritable set survives exec as root even when bounding lacks it.
    require_drop_all: bool,
    /// `true` refuses uid 0 for `process.user.uid` (and at exec, for the
    /// exec'd process and its `--user` argument).
    run_as_non_root: bool,
    /// Inclusive uid ranges `[[first, last], ...]` for `process.user.uid`.
    allowed_uids: Vec<IdRange>,
    /// Inclusive gid ranges for `process.user.gid` and every entry of
    /// `process.user.additionalGids`.
    allowed_gids: Vec<IdRange>,
    /// `true` requires `process.noNewPrivileges: true`.
    no_privilege_escalation: bool,
    /// Limits the spec must set: `memory`, `cpu`, `pids`.
    required_limits: Vec<Limit>,
    /// Ceiling for `linux.resources.memory.limit`. Like a Kubernetes
    /// LimitRange `max`, a ceiling also requires the limit to be set.
    max_memory_bytes: u64,
    /// Ceiling for `linux.resources.cpu.quota / period` (period defaults
    /// to 100000us); 2.0 is two CPUs. Requires a quota.
    max_cpu_quota_fraction: CpuFraction,
    /// Ceiling for `linux.resources.pids.limit`. Requires the limit.
    max_pids: u64,
    /// Sysctls `linux.sysctl` may set: exact names or `prefix*`. Any other
    /// key is refused, as is any key that is not a plain dotted name (a
    /// `/` or empty component could walk out of /proc/sys).
    allowed_sysctls: Vec<SysctlPattern>,
    /// `true` refuses an explicitly unconfined seccomp profile:
    /// `linux.seccomp.defaultAction` SCMP_ACT_ALLOW or SCMP_ACT_LOG, at the
    /// native level. A missing profile is allowed because atoll installs
    /// its default profile then; at the userspace level the workload's
    /// syscalls never reach the host kernel (the application kernel runs
    /// under atoll's own allowlist), so the rule is always met.
    require_seccomp: bool,
    /// `false` requires `root.readonly: true`.
    writable_rootfs: bool,
    /// `true` runs the tenant's containers on the application kernel's
    /// own network stack (`--network sandbox`): a container that asks for
    /// none gets it; one that asks for `host` (flag or annotation), or
    /// runs below the userspace level, is refused.
    require_sandbox_network: bool,
    /// Where the workload may connect and send (enforced by the sandbox's
    /// stack at connect and sendto): with rules, every destination must
    /// match one. Implies `require_sandbox_network`. The built-in denials
    /// (cloud metadata, the node's own addresses, host loopback) hold
    /// unless a rule at least as specific admits the destination.
    egress_allow: Vec<EgressRule>,
    /// Destinations refused whatever `egress_allow` says. Implies
    /// `require_sandbox_network`.
    egress_deny: Vec<EgressRule>,
}

impl Rules {
    /// Whether the tenant's containers must use the sandbox's network
    /// stack: asked for, or implied by egress rules (only that stack can
    /// enforce them).
    pub fn sandbox_network_required(&self) -> bool {
        self.require_sandbox_network == Some(true)
            || self.egress_allow.as_ref().is_some_and(|v| !v.is_empty())
            || self.egress_deny.as_ref().is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_is_key_by_key() {
        let defaults = Rules {
            privileged: Some(false),
            run_as_non_root: Some(true),
            max_pids: Some(100),
            ..Rules::default()
        };
        let tenant = Rules {
            privileged: Some(true),
            max_containers: Some(3),
            ..Rules::default()
        };
        let r = defaults.overlay(&tenant);
        assert_eq!(r.privileged, Some(true));
        assert_eq!(r.run_as_non_root, Some(true));
        assert_eq!(r.max_pids, Some(100));
        assert_eq!(r.max_containers, Some(3));
        assert_eq!(r.host_namespaces, None);
    }

    #[test]
    fn value_types() {
        assert!(IdRange::try_from(vec![1, 2]).is_ok());
        assert!(IdRange::try_from(vec![2, 1]).is_err());
        assert!(IdRange::try_from(vec![1]).is_err());
        assert!(HostPrefix::try_from("data".to_string()).is_err());
        assert_eq!(
            HostPrefix::try_from("/data/x/../shared/".to_string())
                .unwrap()
                .0,
            PathBuf::from("/data/shared")
        );
        for bad in ["", "*kernel", "ker*nel*", "a/b*", "a b"] {
            assert!(SysctlPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
        let p = SysctlPattern::try_from("kernel.shm*".to_string()).unwrap();
        assert!(p.matches("kernel.shmmax") && p.matches("kernel.shm_rmid_forced"));
        assert!(!p.matches("kernel.sh"));
        let e = |s: &str| EgressRule::try_from(EgressRaw::Cidr(s.into()));
        assert!(e("10.0.0.0/8").is_ok() && e("fd00::254").is_ok());
        assert!(e("10.0.0.0/33").is_err() && e("ten").is_err());
        let t = |ports: &str, protocol: &str| {
            EgressRule::try_from(EgressRaw::Table(EgressTable {
                cidr: "10.0.0.0/8".into(),
                ports: Some(PortsRaw::List(ports.into())),
                protocol: Some(protocol.into()),
            }))
        };
        assert_eq!(
            t("80,8000-8100", "tcp").unwrap().to_string(),
            "10.0.0.0/8 tcp 80,8000-8100"
        );
        assert!(t("9-1", "tcp").is_err() && t("0", "").is_err() && t("53", "sctp").is_err());
        assert!(CpuFraction::try_from(0.0).is_err());
        assert!(CpuFraction::try_from(f64::NAN).is_err());
    }
}
