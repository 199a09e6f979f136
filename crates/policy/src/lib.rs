//! atoll's tenant policy: who a container belongs to, what its tenant may
//! run, and the audit trail of what was decided.
//!
//! # Model
//!
//! - A **tenant** is named by a container's annotations ([`tenant_of`]):
//!   `dev.atoll.tenant`, else the Kubernetes namespace, else `default`.
//! - A **policy** ([`Policy`], `/etc/atoll/policy.toml`) has a `[defaults]`
//!   table of rules for every tenant and `[tenants.<name>]` tables that
//!   override them rule by rule. Every rule is optional and an absent rule
//!   is not enforced, so an empty file allows everything. Unknown rules and
//!   bad values are errors with a line number: a typo must never turn a
//!   rule off. The rules ([`Rules`], names in [`RULE_NAMES`]) follow
//!   PodSecurityPolicy and the Kubernetes "restricted" Pod Security
//!   Standard, and are checked on the node at `create` and `exec`, whatever
//!   cluster admission did.
//! - **Evaluation** ([`Policy::evaluate_create`], [`Policy::evaluate_exec`])
//!   first settles the isolation level (`min_isolation` may refuse or
//!   upgrade it), then runs the rules in a fixed order and returns the
//!   first [`Violation`], which names the rule and the config.json field.
//! - Every decision, and every syscall the application kernel refuses, is
//!   an [`AuditRecord`] appended to a JSON-lines [`AuditLog`].

pub mod audit;
pub mod caps;
pub mod decision;
pub mod evaluate;
pub mod level;
mod limits;
pub mod model;
mod mounts;
pub mod namespaces;
pub mod paths;
pub mod policy;
mod sysctl;
pub mod tenant;
mod user;

#[cfg(test)]
mod tests;

pub use audit::{AuditDecision, AuditEvent, AuditLog, AuditRecord, read_records};
pub use decision::{CreateRequest, Decision, ExecRequest, Violation};
pub use level::{Level, ParseLevelError};
pub use model::{EgressRule, OnLowerIsolation, RULE_NAMES, Rules};
pub use policy::{Policy, PolicyError};
pub use tenant::{InvalidTenant, tenant_of, validate_tenant};
