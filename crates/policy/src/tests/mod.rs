//! Table-driven tests of parsing and of every rule.

mod audit;
mod create;
mod example;
mod exec;
mod parse;

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::{CreateRequest, Decision, Level, Policy};

/// A spec that meets the restricted default of examples/policy.toml.
/// Mount 5 is the slot tests put a bind mount in.
pub fn base() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sh"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_NET_BIND_SERVICE"]
            }
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 268435456},
                "cpu": {"quota": 100000, "period": 100000},
                "pids": {"limit": 100}
            },
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "maskedPaths": ["/proc/kcore"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}
        }
    })
}

pub fn spec_of(v: Value) -> Spec {
    serde_json::from_value(v).expect("test spec parses")
}

pub fn policy(text: &str) -> Policy {
    Policy::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Adds a bind mount (mount index 5).
pub fn bind(v: &mut Value, source: &str, options: &[&str]) {
    let mut opts = vec!["rbind"];
    opts.extend_from_slice(options);
    v["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": source, "options": opts
    }));
}

pub fn create(p: &Policy, tenant: &str, spec: &Spec, level: Level, running: usize) -> Decision {
    p.evaluate_create(&CreateRequest {
        tenant,
        spec,
        level,
        running_containers_of_tenant: running,
        network: None,
    })
}

/// `create` with the network asked for by flag or annotation.
pub fn create_on(p: &Policy, tenant: &str, spec: &Spec, level: Level, network: &str) -> Decision {
    p.evaluate_create(&CreateRequest {
        tenant,
        spec,
        level,
        running_containers_of_tenant: 0,
        network: Some(network),
    })
}

/// Expected outcome of a case.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    Allow,
    AllowAt(Level, Option<Level>),
    /// rule, field, value
    Refuse(&'static str, &'static str, &'static str),
}

pub fn check(name: &str, got: &Decision, want: Want, default_level: Level) {
    match (want, got) {
        (
            Want::Allow,
            Decision::Allow {
                level,
                upgraded_from: None,
            },
        ) if *level == default_level => {}
        (
            Want::AllowAt(l, from),
            Decision::Allow {
                level,
                upgraded_from,
            },
        ) if *level == l && *upgraded_from == from => {}
        (Want::Refuse(rule, field, value), Decision::Refuse(v))
            if v.rule == rule && v.field == field && v.value == value => {}
        _ => panic!("case {name:?}: want {want:?}, got {got:?}"),
    }
}
