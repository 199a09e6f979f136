//! What runc guarantees of a process started with `exec`, at both levels:
//! the container's seccomp profile, its noNewPrivileges (or the flag's or
//! the process file's), `--cap` by either name, `--ignore-paused`.

mod common;

use atoll_testkit::{Atoll, Bundle, BundleBuilder, cprog};
use common::*;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

const LEVELS: [&str; 2] = ["native", "userspace"];

/// The `NAME=result` lines of the syscall probe.
fn probe_results(out: &atoll_testkit::Out) -> std::collections::HashMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A value of /proc/self/status as an exec'd process of `id` sees it.
fn status_of_exec(a: &Atoll, id: &str, extra: &[&str], field: &str) -> String {
    let mut args = vec!["exec"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[id, "grep", field, "/proc/self/status"]);
    let out = a.run(&args);
    out.ok();
    out.stdout
        .trim()
        .strip_prefix(field)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Starts `b` detached at `level`; returns it for the leak check.
fn started(a: &Atoll, level: &str, b: BundleBuilder, prefix: &str) -> (String, Bundle) {
    let b = b.args(&["sleep", "60"]).build();
    let id = id(prefix);
    start_detached(a, level, &b, &id);
    (id, b)
}

fn delete(a: &Atoll, id: &str, b: &Bundle) {
    a.run(&["delete", "--force", id]).ok();
    leaks(a, id, b).assert_clean();
}

/// A profile that allows everything but mkdir, which fails with EROFS.
fn no_mkdir() -> LinuxSeccomp {
    let mut deny = LinuxSyscall::default();
    deny.set_names(vec!["mkdir".into(), "mkdirat".into()]);
    deny.set_action(LinuxSeccompAction::ScmpActErrno);
    deny.set_errno_ret(Some(30)); // EROFS
    let mut p = LinuxSeccomp::default();
    p.set_default_action(LinuxSeccompAction::ScmpActAllow);
    p.set_syscalls(Some(vec![deny]));
    p
}

#[test]
fn exec_runs_under_the_containers_seccomp_profile() {
    let a = atoll();
    for level in LEVELS {
        // With and without no_new_privs: without it, the filter must be
        // loaded while the process may still do so.
        for nnp in [true, false] {
            let b = busybox().modify(|s| {
                let mut p = s.process().clone().unwrap();
                p.set_no_new_privileges(Some(nnp));
                s.set_process(Some(p));
                let mut l = s.linux().clone().unwrap();
                l.set_seccomp(Some(no_mkdir()));
                s.set_linux(Some(l));
            });
            let (id, b) = started(&a, level, b, "exec-seccomp");
            cprog::install(&cprog::syscall_probe(), &b.rootfs, "/probe");
            let r = probe_results(&a.run(&["exec", &id, "/probe", "mkdir", "getpid"]));
            assert_eq!(r["mkdir"], "EROFS", "{level}, nnp {nnp}: {r:?}");
            assert_eq!(r["getpid"], "0", "{level}, nnp {nnp}: {r:?}");
            assert_eq!(status_of_exec(&a, &id, &[], "Seccomp:"), "2", "{level}");
            delete(&a, &id, &b);
        }
    }

    // Native, the container's default profile (none in the bundle), the
    // way Docker runs containers: no no_new_privs. What it forbids stays
    // forbidden to an exec'd process, and it keeps its bounding set.
    let b = busybox().modify(|s| {
        let mut p = s.process().clone().unwrap();
        p.set_no_new_privileges(Some(false));
        s.set_process(Some(p));
    });
    let (id, b) = started(&a, "native", b.docker_caps(), "exec-default");
    cprog::install(&cprog::syscall_probe(), &b.rootfs, "/probe");
    let r = probe_results(&a.run(&["exec", &id, "/probe", "unshare_user", "keyctl", "getpid"]));
    assert_eq!(r["unshare_user"], "EPERM", "{r:?}");
    assert_eq!(r["keyctl"], "EPERM", "{r:?}");
    assert_eq!(r["getpid"], "0", "{r:?}");
    assert_eq!(status_of_exec(&a, &id, &[], "Seccomp:"), "2");
    assert_eq!(status_of_exec(&a, &id, &[], "NoNewPrivs:"), "0");
    // Nothing of the capabilities lent for loading the filter is left.
    for field in ["CapBnd:", "CapEff:", "CapPrm:"] {
        let init = a.run(&["exec", &id, "grep", field, "/proc/1/status"]);
        assert_eq!(
            format!("{field}\t{}\n", status_of_exec(&a, &id, &[], field)),
            init.ok().stdout,
            "{field}"
        );
        const SYS_ADMIN: u64 = 1 << 21;
        let as_user = status_of_exec(&a, &id, &["--user", "65534:65534"], field);
        assert_eq!(
            u64::from_str_radix(&as_user, 16).unwrap() & SYS_ADMIN,
            0,
            "{field} {as_user}"
        );
    }
    delete(&a, &id, &b);
}

#[test]
fn exec_gets_the_containers_no_new_privileges_unless_told_otherwise() {
    let a = atoll();
    for level in LEVELS {
        for (nnp, want) in [(Some(false), "0"), (None, "0"), (Some(true), "1")] {
            let b = busybox().modify(|s| {
                let mut p = s.process().clone().unwrap();
                p.set_no_new_privileges(nnp);
                s.set_process(Some(p));
            });
            let (id, b) = started(&a, level, b, "exec-nnp");
            assert_eq!(
                status_of_exec(&a, &id, &[], "NoNewPrivs:"),
                want,
                "{level}, container noNewPrivileges {nnp:?}"
            );
            assert_eq!(
                status_of_exec(&a, &id, &["--no-new-privs"], "NoNewPrivs:"),
                "1",
                "{level}, --no-new-privs"
            );
            // A process file says for itself.
            let process = b.path.join("process.json");
            let mut p = b.spec().process().clone().unwrap();
            p.set_args(Some(vec![
                "grep".into(),
                "NoNewPrivs:".into(),
                "/proc/self/status".into(),
            ]));
            p.set_no_new_privileges(Some(false));
            std::fs::write(&process, serde_json::to_string(&p).unwrap()).unwrap();
            let out = a.run(&["exec", "--process", process.to_str().unwrap(), &id]);
            assert_eq!(out.ok().stdout, "NoNewPrivs:\t0\n", "{level}, process file");
            delete(&a, &id, &b);
        }
    }
}

#[test]
fn exec_cap_takes_names_with_or_without_cap_() {
    let a = atoll();
    const SYS_CHROOT: u64 = 1 << 18;
    const NET_RAW: u64 = 1 << 13;
    // The two are in the container's bounding set but not in its
    // effective set: the userspace level grants at most the bounding set.
    let bundle = || {
        busybox().modify(|s| {
            let mut p = s.process().clone().unwrap();
            let mut c = p.capabilities().clone().unwrap();
            let mut bounding = c.bounding().clone().unwrap_or_default();
            bounding.insert(oci_spec::runtime::Capability::SysChroot);
            bounding.insert(oci_spec::runtime::Capability::NetRaw);
            c.set_bounding(Some(bounding));
            p.set_capabilities(Some(c));
            s.set_process(Some(p));
        })
    };
    for level in LEVELS {
        let (id, b) = started(&a, level, bundle(), "exec-cap");
        let eff = |extra: &[&str]| {
            u64::from_str_radix(&status_of_exec(&a, &id, extra, "CapEff:"), 16).unwrap()
        };
        let before = eff(&[]);
        assert_eq!(before & (SYS_CHROOT | NET_RAW), 0, "{level}: {before:x}");
        let with = eff(&["--cap", "CAP_SYS_CHROOT", "--cap", "net_raw"]);
        assert_eq!(with, before | SYS_CHROOT | NET_RAW, "{level}: {with:x}");
        // Added to the container's capabilities, not instead of them.
        let kill = eff(&["--cap", "KILL"]);
        assert_eq!(kill, before, "{level}: CAP_KILL is the container's already");
        a.run(&["exec", "--cap", "CAP_NOPE", &id, "true"])
            .fails_with("\"CAP_NOPE\" is not a capability");
        delete(&a, &id, &b);
    }
}

#[test]
fn exec_ignore_paused_runs_once_the_container_resumes() {
    let a = atoll();
    for level in LEVELS {
        let (id, b) = started(&a, level, busybox(), "exec-paused");
        a.run(&["pause", &id]).ok();
        a.run(&["exec", &id, "true"]).fails_with("paused");
        std::thread::scope(|s| {
            let exec = s.spawn(|| a.run(&["exec", "--ignore-paused", &id, "echo", "after-resume"]));
            // The exec waits in the frozen cgroup (or kernel) meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(500));
            assert_eq!(a.status(&id), "paused", "{level}");
            a.run(&["resume", &id]).ok();
            let out = exec.join().unwrap();
            assert_eq!(out.ok().stdout, "after-resume\n", "{level}");
        });
        delete(&a, &id, &b);
    }
}
