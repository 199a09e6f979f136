//! The node's tenant policy and audit trail, plugged into the runtime.
//!
//! - Tenant: `dev.atoll.tenant`, else the Kubernetes namespace, else
//!   `default` ([`atoll_policy::tenant_of`]); a badly named tenant is
//!   refused, policy or not.
//! - Policy: `--policy`, else `policy` in the config file (both must
//!   exist), else `/etc/atoll/policy.toml` if it exists. It is read when a
//!   create or exec needs it; a policy that cannot be used stops the
//!   operation with its error (file and line), never silently allows it.
//! - Audit: every create, start, exec, kill and delete (allowed or
//!   failed) and every refusal is a JSON line in `--audit-log`, else
//!   `audit_log` in the config file, else /var/log/atoll/audit.jsonl. A
//!   create or exec that cannot be recorded is not done; a start, kill or
//!   delete is (cleanup must never be blocked), with a warning in atoll's
//!   log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use atoll_policy::{
    AuditDecision, AuditEvent, AuditLog, AuditRecord, CreateRequest, Decision, ExecRequest, Level,
    Policy,
};
use atoll_runtime::level::LevelSource;
use atoll_runtime::lifecycle::{
    Admission, AdmissionDecision, AdmissionRequest, Audit, ExecAdmissionRequest, Operation, Report,
};
use atoll_runtime::{Config, Isolation, Runtime};
use oci_spec::runtime::Spec;

use crate::cli::Cli;

/// Pseudo-rules of refusals that are not a policy rule's.
pub const RULE_TENANT: &str = "tenant";
pub const RULE_POLICY_FILE: &str = "policy_file";

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    pub path: PathBuf,
    /// Named by a flag or the config file: it must exist.
    pub explicit: bool,
}

/// `--policy`, else the config file's `policy`, else the default path.
pub fn policy_source(cli: &Cli, config: &Config) -> PolicySource {
    match (&cli.policy, &config.policy) {
        (Some(p), _) | (None, Some(p)) => PolicySource {
            path: p.clone(),
            explicit: true,
        },
        (None, None) => PolicySource {
            path: config.policy_path(),
            explicit: false,
        },
    }
}

/// `--audit-log`, else the config file's `audit_log`, else the default.
pub fn audit_log_path(cli: &Cli, config: &Config) -> PathBuf {
    cli.audit_log
        .clone()
        .unwrap_or_else(|| config.audit_log_path())
}

/// Loads the policy: `None` when there is none to load (the default path
/// does not exist). Refuses a file others could have rewritten: whoever
/// can write the policy decides what every tenant may run.
pub fn load_policy(src: &PolicySource) -> Result<Option<Policy>> {
    use std::os::unix::fs::MetadataExt;
    let shown = src.path.display();
    let meta = match std::fs::metadata(&src.path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !src.explicit => return Ok(None),
        Err(e) => bail!("policy {shown}: {e}"),
    };
    if !meta.is_file() {
        bail!("policy {shown} is not a file");
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        bail!(
            "policy {shown} is owned by uid {}: it must be owned by root",
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "policy {shown} is writable by group or others (mode {:o}): chmod go-w it",
            meta.mode() & 0o7777
        );
    }
    Ok(Some(Policy::load(&src.path)?))
}

/// The tenant policy and audit trail of this atoll invocation.
pub struct NodePolicy {
    policy_source: PolicySource,
    policy: OnceLock<std::result::Result<Option<Arc<Policy>>, String>>,
    audit_path: PathBuf,
    audit: OnceLock<std::result::Result<AuditLog, String>>,
    /// Create decisions waiting for create's report, by container id.
    decisions: Mutex<HashMap<String, Decision>>,
}

/// Plugs the policy and the audit trail into the runtime.
pub fn install(rt: &mut Runtime, cli: &Cli) {
    let node = Arc::new(NodePolicy {
        policy_source: policy_source(cli, &rt.config),
        policy: OnceLock::new(),
        audit_path: audit_log_path(cli, &rt.config),
        audit: OnceLock::new(),
        decisions: Mutex::new(HashMap::new()),
    });
    rt.plugins.admission = Some(node.clone());
    rt.plugins.audit = Some(node);
}

fn level_of(i: Isolation) -> Level {
    match i {
        Isolation::Native => Level::Native,
        Isolation::Userspace => Level::Userspace,
        Isolation::Vm => Level::Vm,
    }
}

fn isolation_of(l: Level) -> Isolation {
    match l {
        Level::Native => Isolation::Native,
        Level::Userspace => Isolation::Userspace,
        Level::Vm => Isolation::Vm,
    }
}

/// The spec as policy must see it: relative bind sources made absolute
/// against the bundle, as the runtime will mount them.
fn with_absolute_binds(spec: &Spec, bundle: &Path) -> Spec {
    let mut spec = spec.clone();
    if let Some(mounts) = spec.mounts().clone() {
        let mounts = mounts
            .into_iter()
            .map(|mut m| {
                let is_bind = m.typ().as_deref() == Some("bind")
                    || m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "bind" || o == "rbind");
                if is_bind && let Some(src) = m.source().clone().filter(|s| s.is_relative()) {
                    m.set_source(Some(bundle.join(src)));
                }
                m
            })
            .collect();
        spec.set_mounts(Some(mounts));
    }
    spec
}

/// Serializes a tenant's creates on this node while one counts its
/// containers and is created: without it, concurrent creates could all
/// pass `max_containers`.
fn tenant_lock(rt: &Runtime, tenant: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = rt.layout.root.join(".atoll").join(".locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("lock directory {}", dir.display()))?;
    let path = dir.join(format!("tenant-{tenant}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("lock {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("lock {}: {e}", path.display()))
}

impl NodePolicy {
    fn policy(&self) -> Result<Option<Arc<Policy>>> {
        self.policy
            .get_or_init(|| {
                load_policy(&self.policy_source)
                    .map(|p| p.map(Arc::new))
                    .map_err(|e| atoll_runtime::one_line(&e))
            })
            .clone()
            .map_err(|e| anyhow!(e))
    }

    fn audit_log(&self) -> Result<&AuditLog> {
        self.audit
            .get_or_init(|| {
                AuditLog::open(&self.audit_path).map_err(|e| atoll_runtime::one_line(&e))
            })
            .as_ref()
            .map_err(|e| anyhow!("{e} (operations are not done without an audit trail)"))
    }

    fn append(&self, record: &AuditRecord) {
        let r = self.audit_log().and_then(|log| log.append(record));
        if let Err(e) = r {
            tracing::warn!("audit record not written: {}", atoll_runtime::one_line(&e));
        }
    }

    /// Records a refusal and returns it as the operation's error.
    fn refuse(
        &self,
        attempted: AuditEvent,
        tenant: &str,
        id: &str,
        level: Isolation,
        rule: &str,
        message: String,
    ) -> anyhow::Error {
        let record = AuditRecord {
            level: Some(level_of(level)),
            rule: Some(rule.to_string()),
            detail: Some(message.clone()),
            attempted: Some(attempted),
            ..AuditRecord::new(AuditEvent::Refuse, tenant, id, AuditDecision::Refuse)
        };
        self.append(&record);
        anyhow!(message)
    }

    /// Records a policy decision's refusal and returns it as the error.
    fn refuse_decision(
        &self,
        attempted: AuditEvent,
        tenant: &str,
        id: &str,
        level: Isolation,
        d: &Decision,
    ) -> anyhow::Error {
        let record = AuditRecord {
            level: Some(level_of(level)),
            ..AuditRecord::of_decision(attempted, tenant, id, d)
        };
        self.append(&record);
        match d.violation() {
            Some(v) => anyhow!("{v}"),
            None => anyhow!("refused"),
        }
    }
}

impl Admission for NodePolicy {
    fn admit_create(&self, req: &AdmissionRequest<'_>) -> Result<AdmissionDecision> {
        // No record, no container.
        self.audit_log()?;
        let tenant = atoll_policy::tenant_of(req.spec.annotations().as_ref());
        if let Err(e) = atoll_policy::validate_tenant(&tenant) {
            return Err(self.refuse(
                AuditEvent::Create,
                &tenant,
                req.id,
                req.level,
                RULE_TENANT,
                e.to_string(),
            ));
        }
        let policy = match self.policy() {
            Ok(p) => p,
            Err(e) => {
                let message = e.to_string();
                return Err(self.refuse(
                    AuditEvent::Create,
                    &tenant,
                    req.id,
                    req.level,
                    RULE_POLICY_FILE,
                    message,
                ));
            }
        };
        let Some(policy) = policy else {
            return Ok(AdmissionDecision {
                tenant,
                level: req.level,
                level_source: req.level_source,
                hold: None,
                sandbox_network: None,
            });
        };
        let rules = policy.rules_for(&tenant);
        let (hold, running) = match rules.max_containers {
            Some(_) => {
                let lock = tenant_lock(req.runtime, &tenant)?;
                let n = req.runtime.containers_of_tenant(&tenant)?;
                (Some(Box::new(lock) as Box<dyn std::any::Any + Send>), n)
            }
            None => (None, 0),
        };
        let spec = with_absolute_binds(req.spec, req.bundle);
        let d = policy.evaluate_create(&CreateRequest {
            tenant: &tenant,
            spec: &spec,
            level: level_of(req.level),
            running_containers_of_tenant: running,
            network: req.network,
        });
        let Some(level) = d.level() else {
            return Err(self.refuse_decision(AuditEvent::Create, &tenant, req.id, req.level, &d));
        };
        let level_source = if d.upgraded_from().is_some() {
            LevelSource::Policy
        } else {
            req.level_source
        };
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.id.to_string(), d);
        let sandbox_network = rules.sandbox_network_required().then(|| {
            let text = |v: &Option<Vec<atoll_policy::EgressRule>>| {
                v.iter()
                    .flatten()
                    .map(|r| (r.cidr.clone(), r.ports.clone(), r.protocol.clone()))
                    .collect()
            };
            atoll_runtime::executor::EgressOptions {
                allow: text(&rules.egress_allow),
                deny: text(&rules.egress_deny),
                node: Vec::new(),
            }
        });
        Ok(AdmissionDecision {
            tenant,
            level: isolation_of(level),
            level_source,
            hold,
            sandbox_network,
        })
    }

    fn admit_exec(&self, req: &ExecAdmissionRequest<'_>) -> Result<()> {
        self.audit_log()?;
        let tenant = req.meta.tenant.as_str();
        let policy = match self.policy() {
            Ok(p) => p,
            Err(e) => {
                let message = e.to_string();
                return Err(self.refuse(
                    AuditEvent::Exec,
                    tenant,
                    req.id,
                    req.meta.level,
                    RULE_POLICY_FILE,
                    message,
                ));
            }
        };
        let Some(policy) = policy else {
            return Ok(());
        };
        let d = policy.evaluate_exec(&ExecRequest {
            tenant,
            spec_of_container: req.spec,
            process: req.process,
            user: req.user.as_deref(),
            level: level_of(req.meta.level),
        });
        if d.is_allowed() {
            Ok(())
        } else {
            Err(self.refuse_decision(AuditEvent::Exec, tenant, req.id, req.meta.level, &d))
        }
    }
}

fn event_of(op: Operation) -> AuditEvent {
    match op {
        Operation::Create => AuditEvent::Create,
        Operation::Start => AuditEvent::Start,
        Operation::Exec => AuditEvent::Exec,
        Operation::Kill => AuditEvent::Kill,
        Operation::Delete => AuditEvent::Delete,
    }
}

/// The `syscall_refused` and `syscall_unimplemented` records of a
/// sandbox's final counters (the kernel's `stats` reply: `refused` and
/// `enosys` map syscall names to counts).
pub fn syscall_records(
    tenant: &str,
    id: &str,
    level: Level,
    stats: &serde_json::Value,
) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    let counts = |key: &str| -> Vec<(String, u64)> {
        stats
            .get(key)
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .filter(|(_, n)| *n > 0)
                    .collect()
            })
            .unwrap_or_default()
    };
    for (name, n) in counts("refused") {
        out.push(AuditRecord::syscall_refused(tenant, id, level, &name, n));
    }
    for (name, n) in counts("enosys") {
        out.push(AuditRecord::syscall_unimplemented(
            tenant, id, level, &name, n,
        ));
    }
    // The sandbox stack's egress refusals, one record per destination
    // and rule.
    for r in stats
        .get("egress_refused")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let n = r.get("count").and_then(|v| v.as_u64()).unwrap_or(0);
        if n > 0 {
            out.push(AuditRecord::egress_refused(
                tenant,
                id,
                level,
                &format!("{} {}", s("proto"), s("destination")),
                s("rule"),
                n,
            ));
        }
    }
    out
}

impl Audit for NodePolicy {
    fn report(&self, r: &Report<'_>) {
        let tenant = r.tenant.unwrap_or_default();
        let level = r.level.map(level_of);
        let event = event_of(r.op);
        let mut record = match r.op {
            Operation::Create => {
                let d = self
                    .decisions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(r.id);
                match d {
                    Some(d) => AuditRecord::of_decision(event, tenant, r.id, &d),
                    None => AuditRecord {
                        level,
                        ..AuditRecord::new(event, tenant, r.id, AuditDecision::Allow)
                    },
                }
            }
            _ => AuditRecord {
                level,
                detail: r.detail.clone(),
                ..AuditRecord::new(event, tenant, r.id, AuditDecision::Allow)
            },
        };
        record.error = r.error.clone();
        self.append(&record);
        if r.op == Operation::Delete
            && r.error.is_none()
            && let (Some(stats), Some(level)) = (&r.sandbox_stats, level)
        {
            for rec in syscall_records(tenant, r.id, level, stats) {
                self.append(&rec);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_records_from_kernel_stats() {
        let stats = serde_json::json!({
            "syscalls": 1234, "processes": 1, "threads": 1, "memory_bytes": 4096,
            "refused": {"mount": 2, "ptrace": 1},
            "enosys": {"io_pgetevents": 3, "zero": 0}
        });
        let recs = syscall_records("acme", "c1", Level::Userspace, &stats);
        let got: Vec<(AuditEvent, String, u64)> = recs
            .iter()
            .map(|r| (r.event, r.syscall.clone().unwrap(), r.count.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (AuditEvent::SyscallRefused, "mount".to_string(), 2),
                (AuditEvent::SyscallRefused, "ptrace".to_string(), 1),
                (
                    AuditEvent::SyscallUnimplemented,
                    "io_pgetevents".to_string(),
                    3
                ),
            ]
        );
        assert!(recs.iter().all(|r| r.tenant == "acme"
            && r.container == "c1"
            && r.decision == AuditDecision::Refuse
            && r.level == Some(Level::Userspace)));
        assert!(syscall_records("acme", "c1", Level::Userspace, &serde_json::json!({})).is_empty());
        let stats = serde_json::json!({"egress_refused": [
            {"proto": "tcp", "destination": "169.254.169.254:80",
             "rule": "builtin: metadata 169.254.169.254", "count": 2}
        ]});
        let recs = syscall_records("acme", "c1", Level::Userspace, &stats);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].event, AuditEvent::EgressRefused);
        assert_eq!(
            recs[0].destination.as_deref(),
            Some("tcp 169.254.169.254:80")
        );
        assert_eq!(
            recs[0].rule.as_deref(),
            Some("builtin: metadata 169.254.169.254")
        );
        assert_eq!(
            (recs[0].count, recs[0].decision),
            (Some(2), AuditDecision::Refuse)
        );
    }

    #[test]
    fn relative_binds_are_made_absolute() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/a", "type": "bind", "source": "data", "options": ["rbind"]},
                {"destination": "/b", "type": "none", "source": "/abs", "options": ["bind"]},
                {"destination": "/c", "type": "tmpfs", "source": "tmpfs"}
            ]
        }))
        .unwrap();
        let s = with_absolute_binds(&spec, Path::new("/bundles/x"));
        let sources: Vec<_> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.source().clone().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                PathBuf::from("/bundles/x/data"),
                PathBuf::from("/abs"),
                PathBuf::from("tmpfs")
            ]
        );
    }

    #[test]
    fn policy_file_checks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        let implicit = PolicySource {
            path: missing.clone(),
            explicit: false,
        };
        assert!(load_policy(&implicit).unwrap().is_none());
        let explicit = PolicySource {
            path: missing,
            explicit: true,
        };
        let e = load_policy(&explicit).unwrap_err().to_string();
        assert!(e.contains("No such file"), "{e}");

        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[defaults]\nprivileged = false\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let src = PolicySource {
            path: path.clone(),
            explicit: false,
        };
        assert!(load_policy(&src).unwrap().is_some());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_policy(&src).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "[defaults]\nprivilaged = false\n").unwrap();
        let e = load_policy(&src).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("privilaged"), "{e}");
    }
}
