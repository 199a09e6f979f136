//! A policy evaluated against a bundle's spec, both fuzzed: the input is
//! the policy TOML, a NUL byte, then config.json. The spec is prepared as
//! admission prepares it (parsed and checked like `create`, tenant from the
//! annotations, bundle-relative bind sources made absolute).
#![no_main]

use std::path::Path;

use atoll_policy::{
    CreateRequest, Decision, ExecRequest, Level, Policy, RULE_NAMES, tenant_of, validate_tenant,
};
use atoll_runtime::{level, spec};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let (Ok(text), json) = (std::str::from_utf8(&data[..nul]), &data[nul + 1..]) else {
        return;
    };
    let Ok(policy) = Policy::parse(text, "fuzz.toml") else {
        return;
    };
    let Ok(mut parsed) = spec::parse_json::<Spec>(json) else {
        return;
    };
    if spec::check_spec(&parsed).is_err() {
        return;
    }
    let tenant = tenant_of(parsed.annotations().as_ref());
    if validate_tenant(&tenant).is_err() {
        return;
    }
    let annotation = parsed
        .annotations()
        .as_ref()
        .and_then(|a| a.get(level::ISOLATION_ANNOTATION))
        .map(String::as_str);
    let Ok((isolation, _)) = level::select(None, annotation, None) else {
        return;
    };
    let requested: Level = isolation.as_str().parse().expect("levels agree");
    absolute_binds(&mut parsed, Path::new("/bundle"));

    let d = policy.evaluate_create(&CreateRequest {
        tenant: &tenant,
        spec: &parsed,
        level: requested,
        running_containers_of_tenant: 1,
        network: None,
    });
    check(&d, requested, &policy, &tenant);
    let process = parsed.process().clone().expect("checked: process");
    let d = policy.evaluate_exec(&ExecRequest {
        tenant: &tenant,
        spec_of_container: &parsed,
        process: &process,
        user: None,
        level: requested,
    });
    check(&d, requested, &policy, &tenant);
});

fn check(d: &Decision, requested: Level, policy: &Policy, tenant: &str) {
    let rules = policy.rules_for(tenant);
    match d {
        Decision::Allow {
            level,
            upgraded_from,
        } => {
            assert!(*level >= requested);
            if let Some(min) = rules.min_isolation {
                assert!(*level >= min, "allowed below min_isolation");
            }
            assert_eq!(upgraded_from.is_some(), *level != requested);
        }
        Decision::Refuse(v) => {
            assert_eq!(v.tenant, tenant);
            assert!(RULE_NAMES.contains(&v.rule.as_str()), "rule {}", v.rule);
            assert!(!v.to_string().contains('\n'));
        }
    }
}

/// As the admission plugin does before evaluation (`with_absolute_binds`).
fn absolute_binds(spec: &mut Spec, bundle: &Path) {
    let Some(mut mounts) = spec.mounts().clone() else {
        return;
    };
    for m in &mut mounts {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if let Some(src) = m.source().clone()
            && bind
            && src.is_relative()
        {
            m.set_source(Some(bundle.join(src)));
        }
    }
    spec.set_mounts(Some(mounts));
}
