//! The audit trail: one JSON object per line.
//!
//! Several atoll processes (one per runc-style command) append to the same
//! file. Each record is written with a single `write(2)` on an `O_APPEND`
//! descriptor, so records from different processes never interleave
//! within a line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::Decision;
use crate::level::Level;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    Create,
    Start,
    Exec,
    Kill,
    Delete,
    Refuse,
    /// The application kernel refused a workload syscall (EPERM: the
    /// syscall is dangerous and never served).
    SyscallRefused,
    /// The application kernel does not implement a syscall the workload
    /// made (ENOSYS): a compatibility gap rather than a refusal, kept
    /// apart so that `syscall_refused` only ever means "blocked on
    /// purpose".
    SyscallUnimplemented,
    /// The sandbox's network stack refused a connect or send of the
    /// workload (a tenant egress rule or a built-in denial).
    EgressRefused,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    Allow,
    Refuse,
    /// Allowed at a higher level than asked for.
    Upgrade,
}

/// One line of the audit log. Readers ignore fields they do not know, so
/// fields can be added later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, microseconds.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub event: AuditEvent,
    pub tenant: String,
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    pub decision: AuditDecision,
    /// The rule that refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Human-readable: the violation, or where an upgraded level came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For `syscall_refused`: the syscall's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// For `syscall_refused` and `syscall_unimplemented`: how many times
    /// since the last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// For `egress_refused`: protocol and destination (`tcp
    /// 169.254.169.254:80`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// For `refuse`: what was refused (`create`, `exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempted: Option<AuditEvent>,
    /// The operation was allowed but failed: why, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditRecord {
    /// A record stamped now, with no optional fields.
    pub fn new(event: AuditEvent, tenant: &str, container: &str, decision: AuditDecision) -> Self {
        AuditRecord {
            // Stored to the microsecond, so a record reads back equal.
            time: Utc::now().trunc_subsecs(6),
            event,
            tenant: tenant.to_string(),
            container: container.to_string(),
            level: None,
            decision,
            rule: None,
            detail: None,
            syscall: None,
            count: None,
            destination: None,
            attempted: None,
            error: None,
        }
    }

    /// The record of a policy decision. A refusal is recorded as event
    /// `refuse` whatever was attempted; `event` is what was allowed.
    pub fn of_decision(event: AuditEvent, tenant: &str, container: &str, d: &Decision) -> Self {
        match d {
            Decision::Allow {
                level,
                upgraded_from,
            } => AuditRecord {
                level: Some(*level),
                detail: upgraded_from.map(|from| format!("upgraded from {from}")),
                ..AuditRecord::new(event, tenant, container, d.outcome())
            },
            Decision::Refuse(v) => AuditRecord {
                rule: Some(v.rule.clone()),
                detail: Some(v.to_string()),
                attempted: Some(event),
                ..AuditRecord::new(AuditEvent::Refuse, tenant, container, d.outcome())
            },
        }
    }

    /// `count` refusals of `syscall` by a sandbox's workload.
    pub fn syscall_refused(
        tenant: &str,
        container: &str,
        level: Level,
        syscall: &str,
        count: u64,
    ) -> Self {
        AuditRecord {
            level: Some(level),
            syscall: Some(syscall.to_string()),
            count: Some(count),
            ..AuditRecord::new(
                AuditEvent::SyscallRefused,
                tenant,
                container,
                AuditDecision::Refuse,
            )
        }
    }
}

impl AuditRecord {
    /// `count` connects or sends to `destination` the sandbox's stack
    /// refused under `rule`.
    pub fn egress_refused(
        tenant: &str,
        container: &str,
        level: Level,
        destination: &str,
        rule: &str,
        count: u64,
    ) -> Self {
        AuditRecord {
            level: Some(level),
            rule: Some(rule.to_string()),
            destination: Some(destination.to_string()),
            count: Some(count),
            ..AuditRecord::new(
                AuditEvent::EgressRefused,
                tenant,
                container,
                AuditDecision::Refuse,
            )
        }
    }

    /// `count` calls of `syscall` the application kernel does not
    /// implement (answered ENOSYS).
    pub fn syscall_unimplemented(
        tenant: &str,
        container: &str,
        level: Level,
        syscall: &str,
        count: u64,
    ) -> Self {
        AuditRecord {
            event: AuditEvent::SyscallUnimplemented,
            ..AuditRecord::syscall_refused(tenant, container, level, syscall, count)
        }
    }
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An audit log open for appending.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens (creating it and its directories if needed) for appending.
    /// A new file is mode 0640: records name tenants and containers.
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("audit log directory {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("audit log {}", path.display()))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line, in one write.
    pub fn append(&self, record: &AuditRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record).context("audit record")?;
        line.push(b'\n');
        loop {
            match (&self.file).write(&line) {
                Ok(n) if n == line.len() => return Ok(()),
                // Writing the rest separately could interleave with another
                // process's record; report instead.
                Ok(n) => bail!(
                    "audit log {}: short write ({n} of {} bytes)",
                    self.path.display(),
                    line.len()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("audit log {}", self.path.display()));
                }
            }
        }
    }
}

/// Reads an audit log, keeping only `tenant`'s records if given. A last
/// line without its newline is a record still being written and is
/// skipped; any other malformed line is an error naming its line.
pub fn read_records(path: impl AsRef<Path>, tenant: Option<&str>) -> Result<Vec<AuditRecord>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("audit log {}", path.display()))?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: AuditRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => bail!("audit log {} line {}: {e}", path.display(), i + 1),
        };
        if tenant.is_none_or(|t| record.tenant == t) {
            out.push(record);
        }
    }
    Ok(out)
}
