//! Bad input is refused with one clear line, a non-zero exit, and nothing
//! left behind (state dir, cgroup, mount, process).

mod common;

use common::*;

fn refuse(
    a: &atoll_testkit::Atoll,
    args: &[&str],
    what: &str,
    id: &str,
    b: &atoll_testkit::Bundle,
) {
    a.run(args).fails_with(what);
    leaks(a, id, b).assert_clean();
}

#[test]
fn malformed_config_json_says_where() {
    let a = atoll();
    let b = busybox().build();
    let id = id("badjson");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.path.join("config.json")).unwrap()).unwrap();
    v["process"]["args"] = serde_json::json!(5);
    std::fs::write(
        b.path.join("config.json"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
    let out = a.run(&["create", "-b", b.path_str(), &id]);
    out.fails_with("process.args");
    assert!(out.stderr.contains("line "), "{out:#?}");
    leaks(&a, &id, &b).assert_clean();

    std::fs::write(b.path.join("config.json"), "{\"ociVersion\": ").unwrap();
    refuse(
        &a,
        &["create", "-b", b.path_str(), &id],
        "config.json",
        &id,
        &b,
    );
}

#[test]
fn missing_bundle_rootfs_and_program() {
    let a = atoll();
    let b = busybox().args(&["/bin/no-such-program"]).build();
    let id = id("missing");
    refuse(
        &a,
        &["create", "-b", "/nonexistent/bundle", &id],
        "bundle /nonexistent/bundle does not exist",
        &id,
        &b,
    );
    refuse(
        &a,
        &["run", "-b", b.path_str(), &id],
        "no-such-program",
        &id,
        &b,
    );

    std::fs::rename(&b.rootfs, b.path.join("elsewhere")).unwrap();
    refuse(&a, &["create", "-b", b.path_str(), &id], "rootfs", &id, &b);
}

#[test]
fn invalid_ids() {
    let a = atoll();
    let b = busybox().build();
    let long = "x".repeat(300);
    for (bad, why) in [
        ("", "empty"),
        (long.as_str(), "300 bytes"),
        ("a/b", "'/'"),
        ("..", "path component"),
        ("a\nb", "not allowed"),
        ("tab\there", "not allowed"),
    ] {
        let out = a.run(&["create", "-b", b.path_str(), bad]);
        out.fails_with(why);
        assert!(out.stderr.contains("invalid container id"), "{out:#?}");
    }
    // nothing appeared under the state root
    let entries: Vec<_> = std::fs::read_dir(a.root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.iter().all(|e| e == ".atoll"), "{entries:?}");
}

#[test]
fn id_in_use_is_refused_and_the_first_container_is_untouched() {
    let a = atoll();
    let b = busybox().args(&["sleep", "60"]).build();
    let id = id("dup");
    a.run(&["create", "-b", b.path_str(), &id]).ok();
    let pid = a.state(&id)["pid"].clone();
    a.run(&["create", "-b", b.path_str(), &id])
        .fails_with("already exists");
    assert_eq!(a.status(&id), "created");
    assert_eq!(a.state(&id)["pid"], pid);
    a.run(&["delete", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}

#[test]
fn terminal_and_console_socket_must_agree() {
    let a = atoll();
    let id = id("tty");
    let b = busybox().terminal(true).build();
    refuse(
        &a,
        &["create", "-b", b.path_str(), &id],
        "--console-socket is required",
        &id,
        &b,
    );
    let b = busybox().build();
    refuse(
        &a,
        &[
            "create",
            "--console-socket",
            "/tmp/x.sock",
            "-b",
            b.path_str(),
            &id,
        ],
        "process.terminal is false",
        &id,
        &b,
    );
}

#[test]
fn isolation_level_errors() {
    let a = atoll();
    let id = id("level");
    let b = busybox().build();
    a.run(&["--isolation", "paranoid", "create", "-b", b.path_str(), &id])
        .fails_with("paranoid");
    let b = busybox().annotation("dev.atoll.isolation", "fast").build();
    refuse(
        &a,
        &["create", "-b", b.path_str(), &id],
        "annotation dev.atoll.isolation",
        &id,
        &b,
    );

    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "isolaton = \"native\"\n").unwrap();
    let b = busybox().build();
    refuse(
        &a,
        &[
            "--config",
            cfg.path().to_str().unwrap(),
            "create",
            "-b",
            b.path_str(),
            &id,
        ],
        "isolaton",
        &id,
        &b,
    );
}

#[test]
fn unknown_flags_and_missing_arguments() {
    let a = atoll();
    let out = a.run(&["create", "--frobnicate", "x"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(out.stderr.contains("--frobnicate"));
    let out = a.run(&["kill"]);
    assert_ne!(out.code, 0);
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
}

#[test]
fn operations_on_missing_containers() {
    let a = atoll();
    for cmd in [
        vec!["start", "ghost"],
        vec!["state", "ghost"],
        vec!["kill", "ghost"],
        vec!["delete", "ghost"],
        vec!["pause", "ghost"],
        vec!["resume", "ghost"],
        vec!["exec", "ghost", "true"],
        vec!["ps", "ghost"],
        vec!["events", "--stats", "ghost"],
    ] {
        a.run(&cmd).fails_with("container ghost does not exist");
    }
}

#[test]
fn the_error_line_says_error_as_runc_and_youki_do() {
    let a = atoll();
    let out = a.run(&["start", "ghost"]);
    assert_eq!(
        out.stderr, "atoll: error: container ghost does not exist\n",
        "{out:#?}"
    );
    let out = a.run(&["create", "--frobnicate", "x"]);
    assert!(out.stderr.starts_with("atoll: error: "), "{out:#?}");
    // Logs to a file in text form: the final line on stderr still says it.
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = a.run(&["--log", log.path().to_str().unwrap(), "kill", "ghost"]);
    assert_eq!(
        out.stderr, "atoll: error: container ghost does not exist\n",
        "{out:#?}"
    );
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.lines().last().unwrap().contains("level=error"),
        "{text}"
    );
}

/// A create that fails inside the container's init gives the cause in its
/// one line, without --debug (libcontainer passes on only "failed
/// syscall" or "failed to prepare rootfs").
#[test]
fn a_failed_create_names_its_root_cause() {
    let a = atoll();
    let id = id("cause");
    // /proc of the rootfs is a file, not a directory.
    let b = busybox().args(&["true"]).build();
    std::fs::remove_dir_all(b.rootfs.join("proc")).unwrap();
    std::fs::write(b.rootfs.join("proc"), "").unwrap();
    let out = a.run(&["run", "-b", b.path_str(), &id]);
    out.fails_with("filesystem proc must be mounted on ordinary directory");
    assert!(out.stderr.starts_with("atoll: error: "), "{out:#?}");
    leaks(&a, &id, &b).assert_clean();

    // An effective capability that is not permitted: capset refuses it.
    let b = busybox()
        .args(&["true"])
        .modify(|s| {
            let mut p = s.process().clone().unwrap();
            let mut c = p.capabilities().clone().unwrap();
            c.set_effective(Some(
                [oci_spec::runtime::Capability::SysAdmin]
                    .into_iter()
                    .collect(),
            ));
            c.set_permitted(Some(Default::default()));
            p.set_capabilities(Some(c));
            s.set_process(Some(p));
        })
        .build();
    refuse(
        &a,
        &["run", "-b", b.path_str(), &id],
        "capset failure: Operation not permitted",
        &id,
        &b,
    );
    // And an exec that fails in the new process says why.
    let b = busybox().args(&["sleep", "60"]).build();
    start_detached(&a, "native", &b, &id);
    a.run(&["exec", "--cwd", "/no/such/dir", &id, "true"])
        .fails_with("No such file or directory");
    a.run(&["delete", "--force", &id]).ok();
    leaks(&a, &id, &b).assert_clean();
}
