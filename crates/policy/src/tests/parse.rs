//! Parsing: errors are one line and point at the line.

use crate::{Policy, PolicyError, RULE_NAMES};

fn err(text: &str) -> PolicyError {
    let e = Policy::parse(text, "/etc/atoll/policy.toml").unwrap_err();
    let shown = e.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown}");
    e
}

#[test]
fn unknown_rule_names_its_line_and_table() {
    let text = "# policy\n\
                [defaults]\n\
                privileged = false\n\
                \n\
                [tenants.acme]\n\
                run_as_non_root = true\n\
                privilaged = false\n";
    let e = err(text);
    assert_eq!(e.line, Some(7));
    assert_eq!(
        e.to_string(),
        "policy /etc/atoll/policy.toml line 7: unknown rule \"privilaged\" in [tenants.acme] \
         (did you mean \"privileged\"?)"
    );
}

#[test]
fn error_table() {
    // (text, line, what the message must contain)
    let cases: &[(&str, usize, &str)] = &[
        (
            "[defaults]\nno_such_thing = 1\n",
            2,
            "unknown rule \"no_such_thing\" in [defaults]",
        ),
        (
            "[tenants]\nacme = { privileged = false, hostpaths = [] }\n",
            2,
            "unknown rule \"hostpaths\" in [tenants.acme] (did you mean \"host_paths\"?)",
        ),
        // An unknown section is as bad as an unknown rule.
        (
            "\n[tenant.acme]\nprivileged = false\n",
            2,
            "unknown section \"tenant\" (expected [defaults] or [tenants.<name>])",
        ),
        (
            "privileged = false\n[defaults]\n",
            1,
            "unknown section \"privileged\"",
        ),
        // Syntax errors.
        ("[defaults]\nprivileged = \n", 2, ""),
        ("[defaults]\nprivileged = false\n[defaults\n", 3, ""),
        ("[defaults]\nallowed_uids = [[1000, 2000]\n", 3, ""),
        (
            "[defaults]\nprivileged = false\nprivileged = true\n",
            3,
            "duplicate key",
        ),
        // Values of the wrong kind, each named by rule and table.
        (
            "[defaults]\nmin_isolation = \"kvm\"\n",
            2,
            "invalid value for rule min_isolation in [defaults]: unknown variant `kvm`",
        ),
        (
            "[tenants.acme]\n\nprivileged = \"no\"\n",
            3,
            "invalid value for rule privileged in [tenants.acme]",
        ),
        (
            "[defaults]\nallowed_capabilities = [\n  \"NET_RAW\",\n  \"SYS_ADMN\",\n]\n",
            4,
            "invalid value for rule allowed_capabilities in [defaults]: unknown capability \"SYS_ADMN\"",
        ),
        (
            "[defaults]\nallowed_uids = [[2000, 1000]]\n",
            2,
            "range [2000, 1000] is empty",
        ),
        (
            "[defaults]\nhost_paths = [\"data\"]\n",
            2,
            "is not absolute",
        ),
        (
            "[defaults]\nmax_pids = -5\n",
            2,
            "invalid value for rule max_pids",
        ),
        (
            "[defaults]\nmax_cpu_quota_fraction = 0.0\n",
            2,
            "not a positive number of CPUs",
        ),
        (
            "[defaults]\nrequired_limits = [\"memory\", \"disk\"]\n",
            2,
            "unknown variant `disk`",
        ),
        (
            "[defaults]\nallowed_sysctls = [\"kernel.*.x\"]\n",
            2,
            "'*' is only allowed at the end",
        ),
        (
            "[defaults]\non_lower_isolation = \"ignore\"\n",
            2,
            "invalid value for rule on_lower_isolation",
        ),
        (
            "[tenants.\"Bad Tenant\"]\nprivileged = false\n",
            1,
            "invalid tenant name \"Bad Tenant\"",
        ),
        // With several problems, the first in the file is reported.
        (
            "[defaults]\nfoo = 1\n[tenants.acme]\nbar = 1\n",
            2,
            "unknown rule \"foo\"",
        ),
        (
            "[tenants.zed]\nfoo = 1\n[tenants.acme]\nbar = 1\n",
            2,
            "unknown rule \"foo\" in [tenants.zed]",
        ),
    ];
    for (text, line, needle) in cases {
        let e = err(text);
        assert_eq!(e.line, Some(*line), "{text:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("policy /etc/atoll/policy.toml line {line}: ")),
            "{e}"
        );
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn every_rule_name_is_a_rule() {
    // A value of the wrong type for every rule: the error is about the
    // value, so the name itself is known to both passes.
    for rule in RULE_NAMES {
        let e = err(&format!("[defaults]\n{rule} = {{ x = 1 }}\n"));
        assert!(
            e.message
                .starts_with(&format!("invalid value for rule {rule} in [defaults]")),
            "{e}"
        );
        assert!(!e.message.contains("unknown field"), "{e}");
        assert!(!e.message.contains("unknown rule"), "{e}");
    }
}

#[test]
fn empty_policy_has_no_rules() {
    for text in ["", "# nothing\n", "[defaults]\n", "[tenants]\n"] {
        let p = Policy::parse(text, "t").unwrap();
        assert_eq!(p.rules_for("anyone"), crate::Rules::default());
    }
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("policy.toml");
    let e = Policy::load(&missing).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string()
            .starts_with(&format!("policy {}: cannot read", missing.display())),
        "{e}"
    );
    std::fs::write(&missing, "[defaults]\n\nprivileged = 3\n").unwrap();
    let e = Policy::load(&missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("policy {} line 3: ", missing.display())),
        "{e}"
    );
    std::fs::write(&missing, "[defaults]\nprivileged = false\n").unwrap();
    let p = Policy::load(&missing).unwrap();
    assert_eq!(p.source(), missing.display().to_string());
    assert_eq!(p.defaults().privileged, Some(false));
}
