//! examples/policy.toml parses and means what its comments say.

use serde_json::json;

use super::*;
use crate::Level::{Native, Userspace};

const EXAMPLE: &str = include_str!("../../examples/policy.toml");

#[test]
fn example_policy() {
    let p = Policy::parse(EXAMPLE, "examples/policy.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.tenants().collect::<Vec<_>>(), ["trusted", "untrusted"]);
    let base_spec = spec_of(base());

    // The restricted default admits the restricted spec, on native.
    check(
        "default",
        &create(&p, "acme", &base_spec, Native, 0),
        Want::Allow,
        Native,
    );

    // Untrusted is upgraded to userspace, and also needs a read-only root.
    check(
        "untrusted upgraded",
        &create(&p, "untrusted", &base_spec, Native, 0),
        Want::AllowAt(Userspace, Some(Native)),
        Native,
    );
    let mut v = base();
    v["root"]["readonly"] = json!(false);
    let writable = spec_of(v);
    assert!(create(&p, "acme", &writable, Native, 0).is_allowed());
    check(
        "untrusted writable root",
        &create(&p, "untrusted", &writable, Native, 0),
        Want::Refuse("writable_rootfs", "root.readonly", "false"),
        Native,
    );
    check(
        "untrusted container count",
        &create(&p, "untrusted", &base_spec, Userspace, 20),
        Want::Refuse("max_containers", "containers", "21"),
        Userspace,
    );

    // Trusted may run as root with NET_RAW and read node logs, on native.
    let mut v = base();
    v["process"]["user"] = json!({"uid": 0, "gid": 0});
    v["process"]["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_KILL"]);
    bind(&mut v, "/var/log/pods", &["ro"]);
    let ops = spec_of(v);
    check(
        "trusted",
        &create(&p, "trusted", &ops, Native, 0),
        Want::Allow,
        Native,
    );
    check(
        "default forbids root",
        &create(&p, "acme", &ops, Native, 0),
        Want::Refuse("host_paths", "mounts[5].source", "/var/log/pods"),
        Native,
    );
    // Trusted is still not privileged: that default is not overridden.
    let mut v = base();
    v["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"]);
    check(
        "trusted privileged",
        &create(&p, "trusted", &spec_of(v), Native, 0),
        Want::Refuse(
            "privileged",
            "process.capabilities.bounding",
            "CAP_SYS_ADMIN",
        ),
        Native,
    );
}
