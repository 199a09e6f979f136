//! The tenant policy file: `Policy::parse` with its line numbers, then
//! every tenant's merged rules evaluated against runc's default spec.
//! Errors must name a line of the file and stay on one line (they go to
//! stderr and the audit log as they are).
#![no_main]

use atoll_policy::{CreateRequest, ExecRequest, Level, Policy, RULE_NAMES, validate_tenant};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(text, "fuzz.toml") {
        Ok(p) => p,
        Err(e) => {
            if let Some(line) = e.line {
                let lines = text.matches('\n').count() + 1;
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
            assert!(
                !e.to_string().contains('\n'),
                "error on several lines: {e:?}"
            );
            return;
        }
    };
    let spec = Spec::default();
    let process = spec.process().clone().expect("default spec has a process");
    let tenants: Vec<String> = policy.tenants().map(str::to_string).collect();
    for tenant in tenants.iter().map(String::as_str).chain(["default"]) {
        validate_tenant(tenant).expect("parse accepted an invalid tenant name");
        for level in [Level::Native, Level::Userspace] {
            let d = policy.evaluate_create(&CreateRequest {
                tenant,
                spec: &spec,
                level,
                running_containers_of_tenant: 3,
                network: None,
            });
            check(&d, level);
            let d = policy.evaluate_exec(&ExecRequest {
                tenant,
                spec_of_container: &spec,
                process: &process,
                user: Some("0:0"),
                level,
            });
            check(&d, level);
        }
    }
});

fn check(d: &atoll_policy::Decision, requested: Level) {
    if let Some(level) = d.level() {
        assert!(level >= requested, "policy lowered the level");
    }
    if let Some(v) = d.violation() {
        assert!(
            RULE_NAMES.contains(&v.rule.as_str()),
            "unknown rule {}",
            v.rule
        );
        assert!(!v.to_string().contains('\n'));
    }
}
