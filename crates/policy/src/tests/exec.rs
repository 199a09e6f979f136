//! `evaluate_exec`: the process rules, and the `--user` argument.

use oci_spec::runtime::Process;
use serde_json::{Value, json};

use super::*;
use crate::ExecRequest;
use crate::Level::{Native, Userspace};

fn process(patch: fn(&mut Value)) -> Process {
    let mut v = base()["process"].clone();
    patch(&mut v);
    serde_json::from_value(v).unwrap()
}

fn none(_: &mut Value) {}

struct Case {
    name: &'static str,
    rules: &'static str,
    patch: fn(&mut Value),
    user: Option<&'static str>,
    level: Level,
    want: Want,
}

const fn case(
    name: &'static str,
    rules: &'static str,
    patch: fn(&mut Value),
    user: Option<&'static str>,
    want: Want,
) -> Case {
    Case {
        name,
        rules,
        patch,
        user,
        level: Native,
        want,
    }
}

#[test]
fn exec_rules() {
    let non_root = "run_as_non_root = true";
    let ids = "allowed_uids = [[1000, 2000]]\nallowed_gids = [[1000, 2000]]";
    let cases = [
        case("non-root", non_root, none, None, Want::Allow),
        case(
            "non-root --user",
            non_root,
            none,
            Some("1000:1000"),
            Want::Allow,
        ),
        case(
            "--user 0:0 caught even if the process says otherwise",
            non_root,
            none,
            Some("0:0"),
            Want::Refuse("run_as_non_root", "process.user", "0:0"),
        ),
        case(
            "--user 0",
            non_root,
            none,
            Some("0"),
            Want::Refuse("run_as_non_root", "process.user", "0"),
        ),
        case(
            "--user root",
            non_root,
            none,
            Some("root"),
            Want::Refuse("run_as_non_root", "process.user", "root"),
        ),
        case(
            "merged process uid 0",
            non_root,
            |p| p["user"] = json!({"uid": 0, "gid": 0}),
            Some("0:0"),
            Want::Refuse("run_as_non_root", "process.user", "0:0"),
        ),
        case(
            "process uid 0 without --user",
            non_root,
            |p| p["user"] = json!({"uid": 0, "gid": 0}),
            None,
            Want::Refuse("run_as_non_root", "process.user.uid", "0"),
        ),
        case(
            "a user name is left to the caller's resolution",
            non_root,
            none,
            Some("www-data"),
            Want::Allow,
        ),
        case(
            "--user uid outside",
            ids,
            none,
            Some("500:1000"),
            Want::Refuse("allowed_uids", "process.user", "500:1000"),
        ),
        case(
            "--user gid outside",
            ids,
            none,
            Some("1000:0"),
            Want::Refuse("allowed_gids", "process.user", "1000:0"),
        ),
        case(
            "process additional gid outside",
            ids,
            |p| p["user"]["additionalGids"] = json!([5]),
            Some("1000:1000"),
            Want::Refuse("allowed_gids", "process.user.additionalGids[0]", "5"),
        ),
        case(
            "--no-new-privs missing",
            "no_privilege_escalation = true",
            |p| p["noNewPrivileges"] = json!(false),
            None,
            Want::Refuse(
                "no_privilege_escalation",
                "process.noNewPrivileges",
                "false",
            ),
        ),
        case(
            "--cap sys_admin makes it privileged",
            "privileged = false",
            |p| p["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"]),
            None,
            Want::Refuse(
                "privileged",
                "process.capabilities.bounding",
                "CAP_SYS_ADMIN",
            ),
        ),
        case(
            "--cap outside the allowed set",
            "allowed_capabilities = []",
            |p| p["capabilities"]["effective"] = json!(["net_admin"]),
            None,
            Want::Refuse(
                "allowed_capabilities",
                "process.capabilities.effective",
                "CAP_NET_ADMIN",
            ),
        ),
        case(
            "drop all",
            "require_drop_all = true\nallowed_capabilities = [\"CAP_NET_BIND_SERVICE\"]",
            none,
            None,
            Want::Allow,
        ),
        case(
            "container-wide rules are create's business",
            "host_namespaces = false\nwritable_rootfs = false\nmax_containers = 0\nmax_pids = 1",
            none,
            None,
            Want::Allow,
        ),
        case(
            "below min_isolation is refused even with upgrade",
            "min_isolation = \"userspace\"\non_lower_isolation = \"upgrade\"",
            none,
            None,
            Want::Refuse("min_isolation", "isolation", "native"),
        ),
        Case {
            level: Userspace,
            ..case(
                "at min_isolation",
                "min_isolation = \"userspace\"",
                none,
                None,
                Want::Allow,
            )
        },
    ];
    // A container spec that breaks every container-wide rule: exec must
    // not look at it.
    let mut v = base();
    v["linux"].as_object_mut().unwrap().remove("namespaces");
    v["root"]["readonly"] = json!(false);
    let container = spec_of(v);
    for c in &cases {
        let p = policy(&format!("[defaults]\n{}\n", c.rules));
        let proc_ = process(c.patch);
        let d = p.evaluate_exec(&ExecRequest {
            tenant: "acme",
            spec_of_container: &container,
            process: &proc_,
            user: c.user,
            level: c.level,
        });
        check(c.name, &d, c.want, c.level);
    }
}
