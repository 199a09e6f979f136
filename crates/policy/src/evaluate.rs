//! Evaluation: the rules of a tenant against a create or exec request.
//!
//! The level is settled first (`min_isolation`, possibly upgrading), then
//! every other rule runs at that level in the fixed order of [`create_order`] /
//! [`exec_order`], and the first violation is the answer.

use oci_spec::runtime::{LinuxSeccompAction, Process, Spec};

use crate::caps::{ProcessCaps, RUNC_DEFAULT_CAPS};
use crate::decision::{CreateRequest, Decision, ExecRequest, Violation};
use crate::level::Level;
use crate::model::{IdRange, OnLowerIsolation, Rules};
use crate::policy::Policy;
use crate::{limits, mounts, namespaces, sysctl, user};

/// What one check looks at.
struct Subject<'a> {
    /// The container's spec.
    spec: &'a Spec,
    /// The process being started: the spec's at create, the exec'd one at exec.
    process: Option<&'a Process>,
    /// exec's `--user` argument.
    user_arg: Option<&'a str>,
    /// The level the container will run at (after any upgrade).
    level: Level,
    running: usize,
    /// The network asked for by flag or annotation (create only).
    network: Option<&'a str>,
    /// Only the process is under scrutiny (exec): spec-wide parts of a
    /// rule (mounts, devices) were settled at create.
    exec: bool,
}

/// A violation's field and value.
type Found = Option<(String, String)>;
type Check = fn(&Rules, &Subject<'_>) -> Found;

/// Rules checked at create, in order (after `min_isolation`). This is the
/// order of `RULE_NAMES`, which a test keeps in step.
const CREATE: &[(&str, Check)] = &[
    ("max_containers", max_containers),
    ("privileged", privileged),
    ("host_namespaces", host_namespaces),
    ("host_paths", host_paths),
    ("host_paths_readonly", host_paths_readonly),
    ("allowed_capabilities", allowed_capabilities),
    ("require_drop_all", require_drop_all),
    ("run_as_non_root", run_as_non_root),
    ("allowed_uids", allowed_uids),
    ("allowed_gids", allowed_gids),
    ("no_privilege_escalation", no_privilege_escalation),
    ("required_limits", required_limits),
    ("max_memory_bytes", max_memory_bytes),
    ("max_cpu_quota_fraction", max_cpu_quota_fraction),
    ("max_pids", max_pids),
    ("allowed_sysctls", allowed_sysctls),
    ("require_seccomp", require_seccomp),
    ("writable_rootfs", writable_rootfs),
    ("require_sandbox_network", require_sandbox_network),
    ("egress_allow", egress_allow),
    ("egress_deny", egress_deny),
];

/// Rules checked at exec, in order (after `min_isolation`): those about
/// the process itself.
const EXEC: &[(&str, Check)] = &[
    ("privileged", privileged),
    ("allowed_capabilities", allowed_capabilities),
    ("require_drop_all", require_drop_all),
    ("run_as_non_root", run_as_non_root),
    ("allowed_uids", allowed_uids),
    ("allowed_gids", allowed_gids),
    ("no_privilege_escalation", no_privilege_escalation),
];

/// Rule names in the order `create` checks them.
pub fn create_order() -> impl Iterator<Item = &'static str> {
    std::iter::once("min_isolation").chain(CREATE.iter().map(|(n, _)| *n))
}

/// Rule names in the order `exec` checks them.
pub fn exec_order() -> impl Iterator<Item = &'static str> {
    std::iter::once("min_isolation").chain(EXEC.iter().map(|(n, _)| *n))
}

impl Policy {
    /// Decides whether `req`'s container may be created, and at which level.
    pub fn evaluate_create(&self, req: &CreateRequest<'_>) -> Decision {
        evaluate_create(&self.rules_for(req.tenant), req)
    }

    /// Decides whether `req`'s process may be exec'd into its container.
    pub fn evaluate_exec(&self, req: &ExecRequest<'_>) -> Decision {
        evaluate_exec(&self.rules_for(req.tenant), req)
    }
}

fn refuse(tenant: &str, rule: &str, (field, value): (String, String)) -> Decision {
    Decision::Refuse(Violation {
        tenant: tenant.to_string(),
        rule: rule.to_string(),
        field,
        value,
    })
}

fn run(
    rules: &Rules,
    tenant: &str,
    checks: &[(&str, Check)],
    s: &Subject<'_>,
    upgraded_from: Option<Level>,
) -> Decision {
    for (rule, check) in checks {
        if let Some(found) = check(rules, s) {
            return refuse(tenant, rule, found);
        }
    }
    Decision::Allow {
        level: s.level,
        upgraded_from,
    }
}

/// [`Policy::evaluate_create`] for already merged rules.
pub fn evaluate_create(rules: &Rules, req: &CreateRequest<'_>) -> Decision {
    let mut level = req.level;
    let mut upgraded_from = None;
    if let Some(min) = rules.min_isolation
        && level < min
    {
        match rules.on_lower_isolation.unwrap_or_default() {
            OnLowerIsolation::Refuse => {
                return refuse(req.tenant, "min_isolation", isolation(level));
            }
            OnLowerIsolation::Upgrade => {
                upgraded_from = Some(level);
                level = min;
            }
        }
    }
    let s = Subject {
        spec: req.spec,
        process: req.spec.process().as_ref(),
        user_arg: None,
        level,
        running: req.running_containers_of_tenant,
        network: req.network,
        exec: false,
    };
    run(rules, req.tenant, CREATE, &s, upgraded_from)
}

/// [`Policy::evaluate_exec`] for already merged rules. A running container
/// below `min_isolation` (the policy changed since it was created) cannot
/// be upgraded, so exec into it is refused whatever `on_lower_isolation`.
pub fn evaluate_exec(rules: &Rules, req: &ExecRequest<'_>) -> Decision {
    if let Some(min) = rules.min_isolation
        && req.level < min
    {
        return refuse(req.tenant, "min_isolation", isolation(req.level));
    }
    let s = Subject {
        spec: req.spec_of_container,
        process: Some(req.process),
        user_arg: req.user,
        level: req.level,
        running: 0,
        network: None,
        exec: true,
    };
    run(rules, req.tenant, EXEC, &s, None)
}

fn isolation(level: Level) -> (String, String) {
    ("isolation".to_string(), level.to_string())
}

fn max_containers(r: &Rules, s: &Subject<'_>) -> Found {
    let max = r.max_containers?;
    // The value is the count this container would make.
    (s.running >= max).then(|| ("containers".to_string(), (s.running + 1).to_string()))
}

fn privileged(r: &Rules, s: &Subject<'_>) -> Found {
    use oci_spec::runtime::Capability::{SysAdmin, SysModule, SysRawio};
    if r.privileged != Some(false) {
        return None;
    }
    let caps =
        ProcessCaps::of(s.process).first_not(|c| ![SysAdmin, SysModule, SysRawio].contains(&c));
    if caps.is_some() || s.exec {
        return caps;
    }
    mounts::first_privileged(s.spec)
}

fn host_namespaces(r: &Rules, s: &Subject<'_>) -> Found {
    (r.host_namespaces == Some(false))
        .then(|| namespaces::first_shared(s.spec, &namespaces::HostNamespaces::of_host()))
        .flatten()
}

fn host_paths(r: &Rules, s: &Subject<'_>) -> Found {
    let prefixes: Vec<_> = r.host_paths.as_ref()?.iter().map(|p| p.0.clone()).collect();
    mounts::first_outside(s.spec, &prefixes)
}

fn host_paths_readonly(r: &Rules, s: &Subject<'_>) -> Found {
    (r.host_paths_readonly == Some(true))
        .then(|| mounts::first_writable_host(s.spec))
        .flatten()
}

fn allowed_capabilities(r: &Rules, s: &Subject<'_>) -> Found {
    let allowed = r.allowed_capabilities.as_ref()?;
    ProcessCaps::of(s.process)
        .first_not(|c| RUNC_DEFAULT_CAPS.contains(&c) || allowed.iter().any(|a| a.0 == c))
}

fn require_drop_all(r: &Rules, s: &Subject<'_>) -> Found {
    if r.require_drop_all != Some(true) {
        return None;
    }
    let allowed = r.allowed_capabilities.as_deref().unwrap_or_default();
    ProcessCaps::of(s.process).first_not(|c| allowed.iter().any(|a| a.0 == c))
}

fn run_as_non_root(r: &Rules, s: &Subject<'_>) -> Found {
    (r.run_as_non_root == Some(true))
        .then(|| user::root_user(s.process, s.user_arg))
        .flatten()
}

fn allowed_uids(r: &Rules, s: &Subject<'_>) -> Found {
    let ranges: &[IdRange] = r.allowed_uids.as_ref()?;
    user::uid_outside(s.process, s.user_arg, ranges)
}

fn allowed_gids(r: &Rules, s: &Subject<'_>) -> Found {
    let ranges: &[IdRange] = r.allowed_gids.as_ref()?;
    user::gid_outside(s.process, s.user_arg, ranges)
}

fn no_privilege_escalation(r: &Rules, s: &Subject<'_>) -> Found {
    if r.no_privilege_escalation != Some(true) {
        return None;
    }
    match s.process.and_then(|p| p.no_new_privileges()) {
        Some(true) => None,
        Some(false) => Some(("process.noNewPrivileges".into(), "false".into())),
        None => Some(("process.noNewPrivileges".into(), "absent".into())),
    }
}

fn required_limits(r: &Rules, s: &Subject<'_>) -> Found {
    limits::first_missing(s.spec, r.required_limits.as_ref()?)
}

fn max_memory_bytes(r: &Rules, s: &Subject<'_>) -> Found {
    limits::memory_over(s.spec, r.max_memory_bytes?)
}

fn max_cpu_quota_fraction(r: &Rules, s: &Subject<'_>) -> Found {
    limits::cpu_over(s.spec, r.max_cpu_quota_fraction?.0)
}

fn max_pids(r: &Rules, s: &Subject<'_>) -> Found {
    limits::pids_over(s.spec, r.max_pids?)
}

fn allowed_sysctls(r: &Rules, s: &Subject<'_>) -> Found {
    let allowed = r.allowed_sysctls.as_ref()?;
    let sysctls = s.spec.linux().as_ref()?.sysctl().as_ref()?;
    sysctl::first_refused(sysctls, allowed)
}

fn require_seccomp(r: &Rules, s: &Subject<'_>) -> Found {
    if r.require_seccomp != Some(true) || s.level == Level::Userspace {
        return None;
    }
    let action = s
        .spec
        .linux()
        .as_ref()?
        .seccomp()
        .as_ref()?
        .default_action();
    matches!(
        action,
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    )
    .then(|| {
        (
            "linux.seccomp.defaultAction".to_string(),
            action.to_string(),
        )
    })
}

fn writable_rootfs(r: &Rules, s: &Subject<'_>) -> Found {
    if r.writable_rootfs != Some(false) {
        return None;
    }
    match s.spec.root().as_ref().and_then(|r| r.readonly()) {
        Some(true) => None,
        Some(false) => Some(("root.readonly".into(), "false".into())),
        None => Some(("root.readonly".into(), "absent".into())),
    }
}

/// The sandbox's network stack is required (by this rule when `active`):
/// only the userspace level has it, and `host` must not be asked for.
fn needs_sandbox_network(active: bool, s: &Subject<'_>) -> Found {
    if !active {
        return None;
    }
    if s.level != Level::Userspace {
        return Some(isolation(s.level));
    }
    match s.network {
        Some(n) if n != "sandbox" => Some(("network".into(), n.into())),
        _ => None,
    }
}

fn require_sandbox_network(r: &Rules, s: &Subject<'_>) -> Found {
    needs_sandbox_network(r.require_sandbox_network == Some(true), s)
}

fn egress_allow(r: &Rules, s: &Subject<'_>) -> Found {
    needs_sandbox_network(r.egress_allow.as_ref().is_some_and(|v| !v.is_empty()), s)
}

fn egress_deny(r: &Rules, s: &Subject<'_>) -> Found {
    needs_sandbox_network(r.egress_deny.as_ref().is_some_and(|v| !v.is_empty()), s)
}
