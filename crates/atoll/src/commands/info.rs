//! `--version`, `spec`, `features`: what this runtime is and implements.

use std::path::Path;

use anyhow::{Result, bail};
use oci_spec::runtime::Spec;

/// runc's three-line form.
pub fn version() {
    println!("atoll version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", env!("ATOLL_COMMIT"));
    println!("spec: {}", oci_spec::runtime::VERSION);
}

/// Writes runc's default config.json into the bundle directory.
pub fn spec(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists: remove it first", path.display());
    }
    if !bundle.is_dir() {
        bail!("bundle {} is not a directory", bundle.display());
    }
    let spec = Spec::default();
    std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// The runtime-spec `features` document.
pub fn features() -> Result<()> {
    let caps: Vec<String> = atoll_runtime::vm_level::CAP_NAMES
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro",
            "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": "2.5",
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "dev.atoll.isolation.levels": "native,userspace,vm"
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
