//! `atoll install` / `atoll uninstall` on copies of real configuration
//! files: what they add, backups, dry runs, idempotence, and that
//! uninstall gives back the file it started from.

use std::path::Path;
use std::process::Command;

fn atoll(args: &[&str]) -> atoll_testkit::Out {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .output()
        .expect("running atoll")
        .into()
}

fn backups(dir: &Path, name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.atoll-backup-")))
        .collect();
    v.sort();
    v
}

/// Debian's /etc/containerd/config.toml as the package ships it.
const DEBIAN_CONTAINERD: &str = r#"version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"#;

#[test]
fn containerd_install_dry_run_backup_idempotent_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, DEBIAN_CONTAINERD).unwrap();
    let c = cfg.to_str().unwrap();

    // dry run: shows the change, touches nothing
    let out = atoll(&["install", "--containerd", "--config", c, "--dry-run"]);
    out.ok();
    assert!(out.stdout.contains("would change"), "{out:#?}");
    assert!(
        out.stdout
            .contains("+ runtime_type = \"io.containerd.atoll.v2\""),
        "{out:#?}"
    );
    assert!(out.stdout.contains("would create"), "{out:#?}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), DEBIAN_CONTAINERD);
    assert!(!dir.path().join("atoll.toml").exists());
    assert!(backups(dir.path(), "config.toml").is_empty());

    let out = atoll(&[
        "--root",
        "/run/atoll-x",
        "install",
        "--containerd",
        "--config",
        c,
    ]);
    out.ok();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let rts = &doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
    for (name, level) in [("atoll", "userspace"), ("atoll-native", "native")] {
        assert_eq!(
            rts[name]["runtime_type"].as_str(),
            Some("io.containerd.atoll.v2")
        );
        let path = rts[name]["options"]["ConfigPath"].as_str().unwrap();
        assert_eq!(Path::new(path), dir.path().join(format!("{name}.toml")));
        let opts: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(opts["isolation"].as_str(), Some(level));
        assert_eq!(opts["root"].as_str(), Some("/run/atoll-x"));
        let bin = opts["binary"].as_str().unwrap();
        assert_eq!(
            Path::new(bin),
            std::fs::canonicalize(env!("CARGO_BIN_EXE_atoll")).unwrap()
        );
    }
    // CRI needs its default runtime listed once a runtimes table exists
    assert_eq!(
        rts["runc"]["runtime_type"].as_str(),
        Some("io.containerd.runc.v2")
    );
    let b = backups(dir.path(), "config.toml");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&b[0])).unwrap(),
        DEBIAN_CONTAINERD
    );

    // again: nothing to change, no new backup
    let out = atoll(&[
        "--root",
        "/run/atoll-x",
        "install",
        "--containerd",
        "--config",
        c,
    ]);
    out.ok();
    assert!(out.stdout.contains("nothing to change"), "{out:#?}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
    assert_eq!(backups(dir.path(), "config.toml").len(), 1);

    let out = atoll(&["uninstall", "--containerd", "--config", c]);
    out.ok();
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), DEBIAN_CONTAINERD);
    assert!(!dir.path().join("atoll.toml").exists());
    assert!(!dir.path().join("atoll-native.toml").exists());
    let out = atoll(&["uninstall", "--containerd", "--config", c]);
    out.ok();
    assert!(out.stdout.contains("nothing to change"), "{out:#?}");
}

#[test]
fn podman_and_docker_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("containers.conf");
    let base = "# operator's settings\n[containers]\nlog_driver = \"k8s-file\"\n";
    std::fs::write(&conf, base).unwrap();
    let c = conf.to_str().unwrap();
    atoll(&["install", "--podman", "--config", c]).ok();
    let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
    assert!(
        doc["engine"]["runtimes"]["atoll"][0]
            .as_str()
            .unwrap()
            .ends_with("/atoll")
    );
    let json: Vec<&str> = doc["engine"]["runtime_supports_json"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        json.contains(&"atoll") && json.contains(&"crun"),
        "{json:?}"
    );
    assert_eq!(doc["containers"]["log_driver"].as_str(), Some("k8s-file"));
    atoll(&["uninstall", "--podman", "--config", c]).ok();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), base);

    // daemon.json that does not exist yet is created
    let dj = dir.path().join("docker/daemon.json");
    let d = dj.to_str().unwrap();
    atoll(&["install", "--docker", "--config", d]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dj).unwrap()).unwrap();
    assert_eq!(v["runtimes"]["atoll"]["runtimeArgs"][1], "userspace");
    assert_eq!(v["runtimes"]["atoll-native"]["runtimeArgs"][1], "native");
    assert!(backups(dj.parent().unwrap(), "daemon.json").is_empty());
    atoll(&["uninstall", "--docker", "--config", d]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dj).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({}));
}

#[test]
fn bad_files_and_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "version = 2\n[plugins\n").unwrap();
    atoll(&["install", "--containerd", "--config", cfg.to_str().unwrap()])
        .fails_with("config.toml");
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "version = 2\n[plugins\n"
    );
    let dj = dir.path().join("daemon.json");
    std::fs::write(&dj, "[1, 2]").unwrap();
    atoll(&["install", "--docker", "--config", dj.to_str().unwrap()]).fails_with("daemon.json");
    assert_ne!(atoll(&["install"]).code, 0);
    assert_ne!(atoll(&["install", "--podman", "--docker"]).code, 0);
}
