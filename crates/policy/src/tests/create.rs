//! `evaluate_create`: one table per rule.

use serde_json::{Value, json};

use super::*;
use crate::Level::{Native, Userspace};

struct Case {
    name: &'static str,
    /// The `[defaults]` table.
    rules: &'static str,
    patch: fn(&mut Value),
    level: Level,
    running: usize,
    want: Want,
}

const fn case(name: &'static str, rules: &'static str, patch: fn(&mut Value), want: Want) -> Case {
    Case {
        name,
        rules,
        patch,
        level: Native,
        running: 0,
        want,
    }
}

fn none(_: &mut Value) {}

fn run(cases: &[Case]) {
    for c in cases {
        let p = policy(&format!("[defaults]\n{}\n", c.rules));
        let mut v = base();
        (c.patch)(&mut v);
        let spec = spec_of(v);
        let d = create(&p, "acme", &spec, c.level, c.running);
        check(c.name, &d, c.want, c.level);
        if let Decision::Refuse(v) = &d {
            assert_eq!(v.tenant, "acme");
        }
    }
}

fn caps(v: &mut Value, set: &str, caps: &[&str]) {
    v["process"]["capabilities"][set] = json!(caps);
}

#[test]
fn no_rules_allow_anything() {
    run(&[
        case("base", "", none, Want::Allow),
        case(
            "everything wrong",
            "",
            |v| {
                v["process"]["user"]["uid"] = json!(0);
                v["process"].as_object_mut().unwrap().remove("capabilities");
                v["linux"].as_object_mut().unwrap().remove("namespaces");
                v["root"]["readonly"] = json!(false);
            },
            Want::Allow,
        ),
    ]);
}

#[test]
fn min_isolation() {
    let native = "min_isolation = \"native\"";
    let refuse = "min_isolation = \"userspace\"";
    let upgrade = "min_isolation = \"userspace\"\non_lower_isolation = \"upgrade\"";
    let explicit_refuse = "min_isolation = \"userspace\"\non_lower_isolation = \"refuse\"";
    run(&[
        case("native meets native", native, none, Want::Allow),
        Case {
            level: Userspace,
            ..case("userspace meets native", native, none, Want::Allow)
        },
        case(
            "native below userspace is refused by default",
            refuse,
            none,
            Want::Refuse("min_isolation", "isolation", "native"),
        ),
        case(
            "explicit refuse",
            explicit_refuse,
            none,
            Want::Refuse("min_isolation", "isolation", "native"),
        ),
        case(
            "native below userspace is upgraded",
            upgrade,
            none,
            Want::AllowAt(Userspace, Some(Native)),
        ),
        Case {
            level: Userspace,
            ..case(
                "userspace is not an upgrade",
                upgrade,
                none,
                Want::AllowAt(Userspace, None),
            )
        },
        // The rest of the rules run at the upgraded level: an allow-all
        // seccomp profile is fine in userspace.
        case(
            "rules see the upgraded level",
            "min_isolation = \"userspace\"\non_lower_isolation = \"upgrade\"\nrequire_seccomp = true",
            |v| v["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_ALLOW"),
            Want::AllowAt(Userspace, Some(Native)),
        ),
        case(
            "upgrade still checks the other rules",
            "min_isolation = \"userspace\"\non_lower_isolation = \"upgrade\"\nrun_as_non_root = true",
            |v| v["process"]["user"]["uid"] = json!(0),
            Want::Refuse("run_as_non_root", "process.user.uid", "0"),
        ),
    ]);
}

#[test]
fn max_containers() {
    let r = "max_containers = 3";
    run(&[
        Case {
            running: 2,
            ..case("below the limit", r, none, Want::Allow)
        },
        Case {
            running: 3,
            ..case(
                "at the limit",
                r,
                none,
                Want::Refuse("max_containers", "containers", "4"),
            )
        },
        Case {
            running: 7,
            ..case(
                "over the limit",
                r,
                none,
                Want::Refuse("max_containers", "containers", "8"),
            )
        },
        case(
            "zero allows none",
            "max_containers = 0",
            none,
            Want::Refuse("max_containers", "containers", "1"),
        ),
    ]);
}

#[test]
fn privileged() {
    let r = "privileged = false";
    run(&[
        case("base", r, none, Want::Allow),
        case(
            "not enforced when true",
            "privileged = true",
            |v| caps(v, "bounding", &["CAP_SYS_ADMIN"]),
            Want::Allow,
        ),
        case(
            "SYS_ADMIN in bounding",
            r,
            |v| caps(v, "bounding", &["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]),
            Want::Refuse(
                "privileged",
                "process.capabilities.bounding",
                "CAP_SYS_ADMIN",
            ),
        ),
        case(
            "SYS_MODULE in effective",
            r,
            |v| caps(v, "effective", &["CAP_SYS_MODULE"]),
            Want::Refuse(
                "privileged",
                "process.capabilities.effective",
                "CAP_SYS_MODULE",
            ),
        ),
        case(
            "SYS_RAWIO in ambient, lower case without CAP_",
            r,
            |v| caps(v, "ambient", &["sys_rawio"]),
            Want::Refuse(
                "privileged",
                "process.capabilities.ambient",
                "CAP_SYS_RAWIO",
            ),
        ),
        case(
            "no capabilities at all keeps the runtime's",
            r,
            |v| {
                v["process"].as_object_mut().unwrap().remove("capabilities");
            },
            Want::Refuse(
                "privileged",
                "process.capabilities",
                "absent (keeps all capabilities)",
            ),
        ),
        case(
            "writable sysfs",
            r,
            |v| v["mounts"][3]["options"] = json!(["nosuid", "noexec", "nodev"]),
            Want::Refuse("privileged", "mounts[3].destination", "/sys (writable)"),
        ),
        case(
            "sysfs ro then rw",
            r,
            |v| v["mounts"][3]["options"] = json!(["ro", "rw"]),
            Want::Refuse("privileged", "mounts[3].destination", "/sys (writable)"),
        ),
        case(
            "tmpfs over /proc/sys/net",
            r,
            |v| {
                v["mounts"].as_array_mut().unwrap().push(json!(
                    {"destination": "/proc/sys/net/../net", "type": "tmpfs", "source": "tmpfs"}
                ))
            },
            Want::Refuse(
                "privileged",
                "mounts[5].destination",
                "/proc/sys/net (writable)",
            ),
        ),
        case(
            "host /sys bound writable elsewhere",
            r,
            |v| bind(v, "/sys/kernel", &[]),
            Want::Refuse("privileged", "mounts[5].source", "/sys/kernel (writable)"),
        ),
        case(
            "host /proc bound read-only is not privileged",
            r,
            |v| bind(v, "/proc", &["ro"]),
            Want::Allow,
        ),
        case(
            "/proc/sys not read-only",
            r,
            |v| v["linux"]["readonlyPaths"] = json!(["/proc/bus"]),
            Want::Refuse("privileged", "linux.readonlyPaths", "(without /proc/sys)"),
        ),
        case(
            "/proc/sys masked is fine",
            r,
            |v| {
                v["linux"]["readonlyPaths"] = json!([]);
                v["linux"]["maskedPaths"] = json!(["/proc/sys"]);
            },
            Want::Allow,
        ),
        case(
            "absent readonlyPaths get atoll's defaults",
            r,
            |v| {
                v["linux"].as_object_mut().unwrap().remove("readonlyPaths");
            },
            Want::Allow,
        ),
        case(
            "a second proc mount needs its own sys read-only",
            r,
            |v| {
                v["mounts"].as_array_mut().unwrap().push(json!(
                    {"destination": "/hostproc", "type": "proc", "source": "proc"}
                ))
            },
            Want::Refuse(
                "privileged",
                "linux.readonlyPaths",
                "(without /hostproc/sys)",
            ),
        ),
        case(
            "all devices allowed",
            r,
            |v| {
                v["linux"]["resources"]["devices"] = json!([
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "a", "access": "rwm"}
                ])
            },
            Want::Refuse(
                "privileged",
                "linux.resources.devices[1]",
                "allow all (rwm)",
            ),
        ),
        case(
            "mknod on all devices is not privileged",
            r,
            |v| v["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "m"}]),
            Want::Allow,
        ),
        case(
            "one device is not all",
            r,
            |v| {
                v["linux"]["resources"]["devices"] =
                    json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
            },
            Want::Allow,
        ),
    ]);
}

#[test]
fn host_namespaces() {
    let r = "host_namespaces = false";
    run(&[
        case("own namespaces", r, none, Want::Allow),
        case(
            "not enforced when true",
            "host_namespaces = true",
            |v| v["linux"]["namespaces"][0]["path"] = json!("/proc/self/ns/pid"),
            Want::Allow,
        ),
        case(
            "joining the host pid namespace",
            r,
            |v| v["linux"]["namespaces"][0]["path"] = json!("/proc/self/ns/pid"),
            Want::Refuse(
                "host_namespaces",
                "linux.namespaces[pid].path",
                "/proc/self/ns/pid (a host namespace)",
            ),
        ),
        case(
            "a path that does not exist is refused (fail closed)",
            r,
            |v| v["linux"]["namespaces"][1]["path"] = json!("/nonexistent-atoll/netns/x"),
            Want::Refuse(
                "host_namespaces",
                "linux.namespaces[network].path",
                "/nonexistent-atoll/netns/x (cannot be read: No such file or directory (os error 2))",
            ),
        ),
        case(
            "a file that is not a namespace is refused",
            r,
            |v| v["linux"]["namespaces"][1]["path"] = json!("/proc/self/status"),
            Want::Refuse(
                "host_namespaces",
                "linux.namespaces[network].path",
                "/proc/self/status (not a namespace)",
            ),
        ),
        case(
            "joining the host user namespace",
            r,
            |v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user", "path": "/proc/self/ns/user"}))
            },
            Want::Refuse(
                "host_namespaces",
                "linux.namespaces[user].path",
                "/proc/self/ns/user (a host namespace)",
            ),
        ),
        case(
            "a host namespace of another type is refused too",
            r,
            |v| v["linux"]["namespaces"][2]["path"] = json!("/proc/self/ns/net"),
            Want::Refuse(
                "host_namespaces",
                "linux.namespaces[ipc].path",
                "/proc/self/ns/net (a host namespace)",
            ),
        ),
        case(
            "omitting the network namespace shares the host's",
            r,
            |v| {
                v["linux"]["namespaces"].as_array_mut().unwrap().remove(1);
            },
            Want::Refuse("host_namespaces", "linux.namespaces[network]", "absent"),
        ),
        case(
            "no namespaces at all",
            r,
            |v| {
                v["linux"].as_object_mut().unwrap().remove("namespaces");
            },
            Want::Refuse("host_namespaces", "linux.namespaces[pid]", "absent"),
        ),
        case(
            "user and cgroup namespaces are optional",
            r,
            |v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "user" && n["type"] != "cgroup")
            },
            Want::Allow,
        ),
    ]);
}

/// A child process in new network, uts and ipc namespaces (and the host's
/// pid and mount namespaces), killed when dropped.
struct Unshared(std::process::Child);

impl Unshared {
    fn start() -> Unshared {
        let child = std::process::Command::new("unshare")
            .args(["--net", "--uts", "--ipc", "sleep", "60"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("running unshare(1) (util-linux)");
        let u = Unshared(child);
        // unshare(1) has made the namespaces once it has exec'd sleep.
        let comm = format!("/proc/{}/comm", u.0.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare never ran sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        u
    }

    fn ns(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.0.id())
    }
}

impl Drop for Unshared {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rule against real namespaces: the host's through /proc/self (this
/// test runs in the host's namespaces) and new ones made by unshare(1),
/// as a pod's pause container would have them.
#[test]
fn host_namespaces_compares_real_namespaces() {
    use crate::namespaces::{HostNamespaces, first_shared, path_problem};
    let host = HostNamespaces::of_host();
    assert!(host.error().is_none(), "{host:?}");
    let own = HostNamespaces::of_process(std::path::Path::new("/proc/self"));
    assert!(own.error().is_none(), "{own:?}");
    for id in own.ids() {
        assert!(
            host.contains(id),
            "these tests must run in the host's namespaces"
        );
    }
    let child = Unshared::start();

    let p = policy("[defaults]\nhost_namespaces = false\n");
    let with_paths = |paths: &[(&str, String)]| {
        let mut v = base();
        for (typ, path) in paths {
            let list = v["linux"]["namespaces"].as_array_mut().unwrap();
            let ns = list.iter_mut().find(|n| n["type"] == *typ).unwrap();
            ns["path"] = json!(path);
        }
        create(&p, "acme", &spec_of(v), Native, 0)
    };
    /// name, (namespace type, path) joins, expected (field, value) refused.
    type RealCase<'a> = (&'a str, Vec<(&'a str, String)>, Option<(&'a str, String)>);
    let cases: Vec<RealCase<'_>> = vec![
        (
            "a pod's new namespaces",
            vec![
                ("network", child.ns("net")),
                ("uts", child.ns("uts")),
                ("ipc", child.ns("ipc")),
            ],
            None,
        ),
        (
            "the host's network namespace through /proc/self",
            vec![("network", "/proc/self/ns/net".to_string())],
            Some((
                "linux.namespaces[network].path",
                "/proc/self/ns/net (a host namespace)".to_string(),
            )),
        ),
        (
            "the host's uts namespace through /proc/thread-self",
            vec![("uts", "/proc/thread-self/ns/uts".to_string())],
            Some((
                "linux.namespaces[uts].path",
                "/proc/thread-self/ns/uts (a host namespace)".to_string(),
            )),
        ),
        (
            // unshare(1) was not asked for a pid namespace: the child's is the host's.
            "a process's namespace that is still the host's",
            vec![("network", child.ns("net")), ("pid", child.ns("pid"))],
            Some((
                "linux.namespaces[pid].path",
                format!("{} (a host namespace)", child.ns("pid")),
            )),
        ),
        (
            "the host's mount namespace through another process",
            vec![("mount", child.ns("mnt"))],
            Some((
                "linux.namespaces[mount].path",
                format!("{} (a host namespace)", child.ns("mnt")),
            )),
        ),
    ];
    for (name, paths, want) in cases {
        let d = with_paths(&paths);
        match (want, &d) {
            (None, Decision::Allow { .. }) => {}
            (Some((field, value)), Decision::Refuse(v))
                if v.rule == "host_namespaces" && v.field == field && v.value == value => {}
            (want, got) => panic!("case {name:?}: want {want:?}, got {got:?}"),
        }
    }

    // The same checks one path at a time, and against another reference
    // set: seen from the child, its new network namespace is "the host's".
    assert_eq!(
        path_problem(std::path::Path::new(&child.ns("net")), &host),
        None
    );
    let theirs =
        HostNamespaces::of_process(std::path::Path::new(&format!("/proc/{}", child.0.id())));
    assert!(path_problem(std::path::Path::new(&child.ns("net")), &theirs).is_some());
    assert_eq!(
        path_problem(std::path::Path::new("/proc/self/ns/net"), &theirs),
        None
    );

    // Unknown host namespaces refuse every path (fail closed), but a spec
    // that names no path does not need them.
    let unknown = HostNamespaces::of_process(std::path::Path::new("/nonexistent-atoll"));
    assert!(unknown.error().is_some());
    let mut v = base();
    v["linux"]["namespaces"][1]["path"] = json!(child.ns("net"));
    let (field, value) = first_shared(&spec_of(v), &unknown).unwrap();
    assert_eq!(field, "linux.namespaces[network].path");
    assert!(
        value.contains("the host's namespaces are unknown"),
        "{value}"
    );
    assert_eq!(first_shared(&spec_of(base()), &unknown), None);
}

#[test]
fn host_paths() {
    let r = "host_paths = [\"/nonexistent-atoll/shared\", \"/nonexistent-atoll/logs/\"]";
    run(&[
        case("no bind mounts", "host_paths = []", none, Want::Allow),
        case(
            "under a prefix",
            r,
            |v| bind(v, "/nonexistent-atoll/shared/data", &[]),
            Want::Allow,
        ),
        case(
            "the prefix itself",
            r,
            |v| bind(v, "/nonexistent-atoll/logs", &[]),
            Want::Allow,
        ),
        case(
            "prefix boundary",
            r,
            |v| bind(v, "/nonexistent-atoll/sharedX", &[]),
            Want::Refuse(
                "host_paths",
                "mounts[5].source",
                "/nonexistent-atoll/sharedX",
            ),
        ),
        case(
            "dot-dot out of the prefix",
            r,
            |v| bind(v, "/nonexistent-atoll/shared/../../etc", &[]),
            Want::Refuse(
                "host_paths",
                "mounts[5].source",
                "/nonexistent-atoll/shared/../../etc -> /etc",
            ),
        ),
        case(
            "dot-dot that stays inside",
            r,
            |v| bind(v, "/nonexistent-atoll/shared/a/../b", &[]),
            Want::Allow,
        ),
        case(
            "empty allowlist refuses binds",
            "host_paths = []",
            |v| bind(v, "/nonexistent-atoll/shared", &[]),
            Want::Refuse(
                "host_paths",
                "mounts[5].source",
                "/nonexistent-atoll/shared",
            ),
        ),
        case(
            "relative source",
            r,
            |v| bind(v, "data", &[]),
            Want::Refuse("host_paths", "mounts[5].source", "data (not absolute)"),
        ),
        case(
            "bind by option with a pseudo type",
            r,
            |v| {
                v["mounts"].as_array_mut().unwrap().push(json!(
                    {"destination": "/x", "type": "tmpfs", "source": "/etc", "options": ["bind"]}
                ))
            },
            Want::Refuse("host_paths", "mounts[5].source", "/etc"),
        ),
        case(
            "a block device is a host path",
            r,
            |v| {
                v["mounts"].as_array_mut().unwrap().push(json!(
                    {"destination": "/disk", "type": "ext4", "source": "/dev/sda1"}
                ))
            },
            Want::Refuse("host_paths", "mounts[5].source", "/dev/sda1"),
        ),
        case(
            "pseudo filesystems are not host paths",
            "host_paths = []",
            |v| {
                v["mounts"].as_array_mut().unwrap().push(json!(
                    {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup"}
                ))
            },
            Want::Allow,
        ),
    ]);
}

#[test]
fn host_paths_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let shared = root.join("shared");
    std::fs::create_dir_all(shared.join("ok")).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::create_dir_all(root.join("sharedX")).unwrap();
    std::os::unix::fs::symlink(root.join("outside"), shared.join("escape")).unwrap();
    let p = policy(&format!(
        "[defaults]\nhost_paths = [{:?}]\n",
        shared.display().to_string()
    ));
    let decide = |source: &std::path::Path| {
        let mut v = base();
        bind(&mut v, &source.display().to_string(), &[]);
        create(&p, "acme", &spec_of(v), Native, 0)
    };

    assert!(decide(&shared.join("ok")).is_allowed());
    for bad in [
        shared.join("escape"),
        shared.join("escape/newfile"),
        shared.join("ok/../escape"),
        root.join("sharedX"),
        shared.join("../outside"),
    ] {
        let d = decide(&bad);
        let v = d
            .violation()
            .unwrap_or_else(|| panic!("{} allowed", bad.display()));
        assert_eq!(
            (v.rule.as_str(), v.field.as_str()),
            ("host_paths", "mounts[5].source")
        );
    }
    let v = decide(&shared.join("escape")).violation().unwrap().clone();
    let outside = root.join("outside").canonicalize().unwrap();
    assert!(
        v.value.ends_with(&format!("-> {}", outside.display())),
        "{v}"
    );
}

#[test]
fn host_paths_readonly() {
    let r = "host_paths_readonly = true";
    run(&[
        case("no binds", r, none, Want::Allow),
        case("ro bind", r, |v| bind(v, "/srv/a", &["ro"]), Want::Allow),
        case("rro bind", r, |v| bind(v, "/srv/a", &["rro"]), Want::Allow),
        case(
            "rw then ro",
            r,
            |v| bind(v, "/srv/a", &["rw", "ro"]),
            Want::Allow,
        ),
        case(
            "no ro",
            r,
            |v| bind(v, "/srv/a", &[]),
            Want::Refuse("host_paths_readonly", "mounts[5].options", "rbind"),
        ),
        case(
            "ro then rw",
            r,
            |v| bind(v, "/srv/a", &["ro", "rw"]),
            Want::Refuse("host_paths_readonly", "mounts[5].options", "rbind,ro,rw"),
        ),
        case(
            "allowed by host_paths but still writable",
            "host_paths = [\"/srv\"]\nhost_paths_readonly = true",
            |v| bind(v, "/srv/a", &[]),
            Want::Refuse("host_paths_readonly", "mounts[5].options", "rbind"),
        ),
        case(
            "host_paths is checked first",
            "host_paths = [\"/srv\"]\nhost_paths_readonly = true",
            |v| bind(v, "/etc", &[]),
            Want::Refuse("host_paths", "mounts[5].source", "/etc"),
        ),
    ]);
}

#[test]
fn allowed_capabilities() {
    let r = "allowed_capabilities = [\"net_raw\", \"CAP_CHOWN\"]";
    run(&[
        case(
            "runc defaults only",
            r,
            |v| {
                caps(
                    v,
                    "bounding",
                    &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                )
            },
            Want::Allow,
        ),
        case(
            "allowed ones, spelled three ways in the spec",
            r,
            |v| caps(v, "bounding", &["CAP_NET_RAW", "chown", "Cap_Kill"]),
            Want::Allow,
        ),
        case(
            "policy spelled without CAP_ in upper case",
            "allowed_capabilities = [\"NET_RAW\"]",
            |v| caps(v, "bounding", &["CAP_NET_RAW"]),
            Want::Allow,
        ),
        case(
            "policy spelled cap_ in lower case",
            "allowed_capabilities = [\"cap_net_raw\"]",
            |v| caps(v, "effective", &["net_raw"]),
            Want::Allow,
        ),
        case(
            "not allowed",
            r,
            |v| caps(v, "bounding", &["CAP_NET_RAW", "CAP_SYS_PTRACE"]),
            Want::Refuse(
                "allowed_capabilities",
                "process.capabilities.bounding",
                "CAP_SYS_PTRACE",
            ),
        ),
        case(
            "first by name, deterministically",
            r,
            |v| {
                caps(
                    v,
                    "bounding",
                    &["CAP_SYS_PTRACE", "CAP_MKNOD", "CAP_SETUID"],
                )
            },
            Want::Refuse(
                "allowed_capabilities",
                "process.capabilities.bounding",
                "CAP_MKNOD",
            ),
        ),
        case(
            "checked in every set",
            r,
            |v| caps(v, "inheritable", &["CAP_SETUID"]),
            Want::Refuse(
                "allowed_capabilities",
                "process.capabilities.inheritable",
                "CAP_SETUID",
            ),
        ),
        case(
            "absent capabilities keep everything",
            r,
            |v| {
                v["process"].as_object_mut().unwrap().remove("capabilities");
            },
            Want::Refuse(
                "allowed_capabilities",
                "process.capabilities",
                "absent (keeps all capabilities)",
            ),
        ),
    ]);
}

#[test]
fn require_drop_all() {
    let r = "allowed_capabilities = [\"NET_BIND_SERVICE\"]\nrequire_drop_all = true";
    run(&[
        case("only the allowed one", r, none, Want::Allow),
        case(
            "nothing at all",
            r,
            |v| v["process"]["capabilities"] = json!({}),
            Want::Allow,
        ),
        case(
            "a runc default is not allowed here",
            r,
            |v| caps(v, "bounding", &["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            Want::Refuse(
                "require_drop_all",
                "process.capabilities.bounding",
                "CAP_KILL",
            ),
        ),
        case(
            "without allowed_capabilities everything must go",
            "require_drop_all = true",
            none,
            Want::Refuse(
                "require_drop_all",
                "process.capabilities.bounding",
                "CAP_NET_BIND_SERVICE",
            ),
        ),
        case(
            "not enforced when false",
            "require_drop_all = false",
            |v| caps(v, "bounding", &["CAP_KILL"]),
            Want::Allow,
        ),
    ]);
}

#[test]
fn users_and_groups() {
    let uids = "allowed_uids = [[1000, 65535], [70000, 70000]]";
    let gids = "allowed_gids = [[1000, 65535]]";
    run(&[
        case("non-root", "run_as_non_root = true", none, Want::Allow),
        case(
            "root",
            "run_as_non_root = true",
            |v| v["process"]["user"]["uid"] = json!(0),
            Want::Refuse("run_as_non_root", "process.user.uid", "0"),
        ),
        case(
            "root allowed when false",
            "run_as_non_root = false",
            |v| v["process"]["user"]["uid"] = json!(0),
            Want::Allow,
        ),
        case(
            "uid at the bottom",
            uids,
            |v| v["process"]["user"]["uid"] = json!(1000),
            Want::Allow,
        ),
        case(
            "uid at the top",
            uids,
            |v| v["process"]["user"]["uid"] = json!(65535),
            Want::Allow,
        ),
        case(
            "second range",
            uids,
            |v| v["process"]["user"]["uid"] = json!(70000),
            Want::Allow,
        ),
        case(
            "uid below",
            uids,
            |v| v["process"]["user"]["uid"] = json!(999),
            Want::Refuse("allowed_uids", "process.user.uid", "999"),
        ),
        case(
            "uid above",
            uids,
            |v| v["process"]["user"]["uid"] = json!(65536),
            Want::Refuse("allowed_uids", "process.user.uid", "65536"),
        ),
        case("gid inside", gids, none, Want::Allow),
        case(
            "gid 0",
            gids,
            |v| v["process"]["user"]["gid"] = json!(0),
            Want::Refuse("allowed_gids", "process.user.gid", "0"),
        ),
        case(
            "additional gid 0",
            gids,
            |v| v["process"]["user"]["additionalGids"] = json!([1000, 0]),
            Want::Refuse("allowed_gids", "process.user.additionalGids[1]", "0"),
        ),
    ]);
}

#[test]
fn no_privilege_escalation() {
    let r = "no_privilege_escalation = true";
    run(&[
        case("set", r, none, Want::Allow),
        case(
            "false",
            r,
            |v| v["process"]["noNewPrivileges"] = json!(false),
            Want::Refuse(
                "no_privilege_escalation",
                "process.noNewPrivileges",
                "false",
            ),
        ),
        case(
            "absent",
            r,
            |v| {
                v["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("noNewPrivileges");
            },
            Want::Refuse(
                "no_privilege_escalation",
                "process.noNewPrivileges",
                "absent",
            ),
        ),
    ]);
}

#[test]
fn limits() {
    let all = "required_limits = [\"memory\", \"cpu\", \"pids\"]";
    run(&[
        case("all set", all, none, Want::Allow),
        case(
            "memory absent",
            all,
            |v| {
                v["linux"]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
            },
            Want::Refuse("required_limits", "linux.resources.memory.limit", "absent"),
        ),
        case(
            "memory unlimited",
            all,
            |v| v["linux"]["resources"]["memory"]["limit"] = json!(-1),
            Want::Refuse("required_limits", "linux.resources.memory.limit", "-1"),
        ),
        case(
            "cpu unlimited",
            all,
            |v| v["linux"]["resources"]["cpu"]["quota"] = json!(-1),
            Want::Refuse("required_limits", "linux.resources.cpu.quota", "-1"),
        ),
        case(
            "pids absent",
            all,
            |v| {
                v["linux"]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("pids");
            },
            Want::Refuse("required_limits", "linux.resources.pids.limit", "absent"),
        ),
        case(
            "only what is required",
            "required_limits = [\"pids\"]",
            |v| {
                v["linux"]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
            },
            Want::Allow,
        ),
        case(
            "memory at the ceiling",
            "max_memory_bytes = 268435456",
            none,
            Want::Allow,
        ),
        case(
            "memory over the ceiling",
            "max_memory_bytes = 268435455",
            none,
            Want::Refuse(
                "max_memory_bytes",
                "linux.resources.memory.limit",
                "268435456",
            ),
        ),
        case(
            "a ceiling requires the limit",
            "max_memory_bytes = 1000000000",
            |v| {
                v["linux"]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
            },
            Want::Refuse("max_memory_bytes", "linux.resources.memory.limit", "absent"),
        ),
        case(
            "one cpu of one",
            "max_cpu_quota_fraction = 1.0",
            none,
            Want::Allow,
        ),
        case(
            "half a cpu, default period",
            "max_cpu_quota_fraction = 0.5",
            |v| v["linux"]["resources"]["cpu"] = json!({"quota": 50000}),
            Want::Allow,
        ),
        case(
            "two cpus of one",
            "max_cpu_quota_fraction = 1.0",
            |v| v["linux"]["resources"]["cpu"]["quota"] = json!(200000),
            Want::Refuse(
                "max_cpu_quota_fraction",
                "linux.resources.cpu.quota",
                "200000 (period 100000: 2 cpus)",
            ),
        ),
        case(
            "no quota exceeds a ceiling",
            "max_cpu_quota_fraction = 4",
            |v| v["linux"]["resources"]["cpu"] = json!({"shares": 1024}),
            Want::Refuse(
                "max_cpu_quota_fraction",
                "linux.resources.cpu.quota",
                "absent",
            ),
        ),
        case("pids at the ceiling", "max_pids = 100", none, Want::Allow),
        case(
            "pids over",
            "max_pids = 99",
            none,
            Want::Refuse("max_pids", "linux.resources.pids.limit", "100"),
        ),
        case(
            "pids unlimited",
            "max_pids = 99",
            |v| v["linux"]["resources"]["pids"]["limit"] = json!(-1),
            Want::Refuse("max_pids", "linux.resources.pids.limit", "-1"),
        ),
    ]);
}

#[test]
fn allowed_sysctls() {
    let r = "allowed_sysctls = [\"net.ipv4.ping_group_range\", \"kernel.shm*\"]";
    run(&[
        case("none set", r, none, Want::Allow),
        case(
            "exact and prefix",
            r,
            |v| {
                v["linux"]["sysctl"] =
                    json!({"net.ipv4.ping_group_range": "0 1000", "kernel.shmmax": "1024"})
            },
            Want::Allow,
        ),
        case(
            "not allowed",
            r,
            |v| {
                v["linux"]["sysctl"] = json!({"kernel.shmmax": "1024", "kernel.domainname": "evil"})
            },
            Want::Refuse("allowed_sysctls", "linux.sysctl[kernel.domainname]", "evil"),
        ),
        case(
            "an exact name is not a prefix",
            r,
            |v| v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range_x": "1"}),
            Want::Refuse(
                "allowed_sysctls",
                "linux.sysctl[net.ipv4.ping_group_range_x]",
                "1",
            ),
        ),
        case(
            "slashes cannot walk out of an allowed prefix",
            r,
            |v| v["linux"]["sysctl"] = json!({"kernel.shm/../../kernel/core_pattern": "|/x"}),
            Want::Refuse(
                "allowed_sysctls",
                "linux.sysctl[kernel.shm/../../kernel/core_pattern]",
                "|/x",
            ),
        ),
        case(
            "empty list allows none",
            "allowed_sysctls = []",
            |v| v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 1"}),
            Want::Refuse(
                "allowed_sysctls",
                "linux.sysctl[net.ipv4.ping_group_range]",
                "0 1",
            ),
        ),
    ]);
}

#[test]
fn require_seccomp() {
    let r = "require_seccomp = true";
    run(&[
        case("errno by default", r, none, Want::Allow),
        case(
            "no profile: atoll's default applies",
            r,
            |v| {
                v["linux"].as_object_mut().unwrap().remove("seccomp");
            },
            Want::Allow,
        ),
        case(
            "allow by default",
            r,
            |v| v["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_ALLOW"),
            Want::Refuse(
                "require_seccomp",
                "linux.seccomp.defaultAction",
                "SCMP_ACT_ALLOW",
            ),
        ),
        case(
            "log by default is allow too",
            r,
            |v| v["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_LOG"),
            Want::Refuse(
                "require_seccomp",
                "linux.seccomp.defaultAction",
                "SCMP_ACT_LOG",
            ),
        ),
        Case {
            level: Userspace,
            ..case(
                "userspace confines syscalls itself",
                r,
                |v| v["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_ALLOW"),
                Want::Allow,
            )
        },
    ]);
}

#[test]
fn writable_rootfs() {
    let r = "writable_rootfs = false";
    run(&[
        case("read-only", r, none, Want::Allow),
        case(
            "writable",
            r,
            |v| v["root"]["readonly"] = json!(false),
            Want::Refuse("writable_rootfs", "root.readonly", "false"),
        ),
        case(
            "absent",
            r,
            |v| {
                v["root"].as_object_mut().unwrap().remove("readonly");
            },
            Want::Refuse("writable_rootfs", "root.readonly", "absent"),
        ),
        case(
            "allowed when true",
            "writable_rootfs = true",
            |v| v["root"]["readonly"] = json!(false),
            Want::Allow,
        ),
    ]);
}

#[test]
fn first_violation_in_rule_order() {
    // Breaks three rules; the earliest in evaluation order is reported.
    let rules = "run_as_non_root = true\nwritable_rootfs = false\nprivileged = false";
    run(&[case(
        "privileged before run_as_non_root before writable_rootfs",
        rules,
        |v| {
            v["process"]["user"]["uid"] = json!(0);
            v["root"]["readonly"] = json!(false);
            caps(v, "bounding", &["CAP_SYS_ADMIN"]);
        },
        Want::Refuse(
            "privileged",
            "process.capabilities.bounding",
            "CAP_SYS_ADMIN",
        ),
    )]);
    let order: Vec<&str> = crate::evaluate::create_order().collect();
    let declared: Vec<&str> = crate::RULE_NAMES
        .iter()
        .copied()
        .filter(|r| *r != "on_lower_isolation")
        .collect();
    assert_eq!(order, declared);
}

#[test]
fn tenant_tables_override_defaults() {
    let p = policy(
        "[defaults]\nprivileged = false\nrun_as_non_root = true\nmax_containers = 5\n\
         [tenants.ops]\nprivileged = true\n\
         [tenants.tight]\nmax_containers = 1\n",
    );
    let mut v = base();
    caps(&mut v, "bounding", &["CAP_SYS_ADMIN"]);
    let admin = spec_of(v);
    let mut v = base();
    v["process"]["user"]["uid"] = json!(0);
    let root = spec_of(v);
    let plain = spec_of(base());

    // The tenant's own value wins...
    assert!(create(&p, "ops", &admin, Native, 0).is_allowed());
    assert_eq!(
        create(&p, "acme", &admin, Native, 0)
            .violation()
            .unwrap()
            .rule,
        "privileged"
    );
    // ...and the defaults it does not override still apply.
    assert_eq!(
        create(&p, "ops", &root, Native, 0)
            .violation()
            .unwrap()
            .rule,
        "run_as_non_root"
    );
    assert!(create(&p, "ops", &plain, Native, 4).is_allowed());
    assert!(!create(&p, "tight", &plain, Native, 1).is_allowed());
    assert!(create(&p, "acme", &plain, Native, 4).is_allowed());
    let v = create(&p, "tight", &plain, Native, 1);
    assert_eq!(
        v.violation().unwrap().to_string(),
        "tenant \"tight\": rule max_containers forbids containers=2"
    );
}

#[test]
fn sandbox_network_is_required_by_the_rule_and_by_egress_rules() {
    let p = policy(
        "[tenants.boxed]\nrequire_sandbox_network = true\n\
         [tenants.walled]\nmin_isolation = \"userspace\"\non_lower_isolation = \"upgrade\"\n\
         egress_allow = [\"10.0.0.0/8\", { cidr = \"0.0.0.0/0\", ports = 443, protocol = \"tcp\" }]\n\
         egress_deny = [{ cidr = \"10.1.0.0/16\", ports = \"22,8000-8100\" }]\n",
    );
    let plain = spec_of(base());
    // Asked for, or not asked: allowed at the userspace level (the runtime
    // then runs it on the sandbox's stack).
    assert!(create(&p, "boxed", &plain, Userspace, 0).is_allowed());
    assert!(create_on(&p, "boxed", &plain, Userspace, "sandbox").is_allowed());
    let v = create_on(&p, "boxed", &plain, Userspace, "host");
    assert_eq!(
        v.violation().unwrap().to_string(),
        "tenant \"boxed\": rule require_sandbox_network forbids network=host"
    );
    let v = create(&p, "boxed", &plain, Native, 0);
    assert_eq!(
        v.violation().unwrap().to_string(),
        "tenant \"boxed\": rule require_sandbox_network forbids isolation=native"
    );
    // Egress rules imply it; an upgraded level satisfies it.
    assert!(create(&p, "walled", &plain, Native, 0).is_allowed());
    assert_eq!(
        create_on(&p, "walled", &plain, Native, "host")
            .violation()
            .unwrap()
            .rule,
        "egress_allow"
    );
    let rules = p.rules_for("walled");
    assert!(rules.sandbox_network_required());
    assert_eq!(
        rules
            .egress_allow
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>(),
        ["10.0.0.0/8", "0.0.0.0/0 tcp 443"]
    );
    assert_eq!(
        rules.egress_deny.unwrap()[0].to_string(),
        "10.1.0.0/16 22,8000-8100"
    );
    assert!(!p.rules_for("other").sandbox_network_required());
    // Other tenants are not affected.
    assert!(create_on(&p, "other", &plain, Native, "host").is_allowed());
}

#[test]
fn bad_egress_rules_are_refused_with_their_reason() {
    for (text, needle) in [
        (
            "egress_allow = [\"10.0.0.0/40\"]",
            "prefix length must be 0 to 32",
        ),
        ("egress_deny = [{ cidr = \"x\" }]", "not an IP address"),
        (
            "egress_allow = [{ cidr = \"10.0.0.0/8\", ports = \"9-1\" }]",
            "range runs backwards",
        ),
        (
            "egress_allow = [{ cidr = \"10.0.0.0/8\", protocol = \"sctp\" }]",
            "expected tcp, udp, icmp or any",
        ),
    ] {
        let e = Policy::parse(&format!("[defaults]\n{text}\n"), "t.toml").unwrap_err();
        assert!(e.to_string().contains("egress_"), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
        assert!(e.to_string().lines().count() == 1, "{text}: {e}");
    }
}
