//! Container images built locally (no registry is reachable in tests):
//! a rootfs tar for `docker import` / `podman import`, and an OCI image
//! layout archive for `ctr images import`, including the pause image
//! CRI's sandboxes need.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// What the image runs and with which environment.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            entrypoint: Vec::new(),
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar of `rootfs` (numeric owners, root of the tar is the rootfs).
pub fn rootfs_tar(rootfs: &Path, out: &Path) {
    let st = Command::new("tar")
        .args(["--numeric-owner", "--exclude=./.complete", "-C"])
        .arg(rootfs)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(st.success(), "tar of {}", rootfs.display());
}

/// The busybox rootfs as a tar (cached).
pub fn busybox_tar() -> PathBuf {
    let out = crate::cache_dir().join("busybox-rootfs.tar");
    if !out.exists() {
        let tmp = crate::cache_dir().join(crate::unique("busybox-rootfs.tar"));
        rootfs_tar(&crate::bundle::busybox_rootfs(), &tmp);
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// Writes an OCI image layout archive of `rootfs` named `name` (a full
/// reference such as `docker.io/atoll/busybox:test`) to `out`.
pub fn oci_archive(rootfs: &Path, name: &str, config: &ImageConfig, out: &Path) {
    let dir = tempfile::tempdir().expect("image dir");
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let d = sha256_hex(bytes);
        std::fs::write(blobs.join(&d), bytes).unwrap();
        (format!("sha256:{d}"), bytes.len())
    };
    let layer_path = dir.path().join("layer.tar");
    rootfs_tar(rootfs, &layer_path);
    let layer = std::fs::read(&layer_path).unwrap();
    std::fs::remove_file(&layer_path).unwrap();
    let (layer_digest, layer_size) = put(&layer);
    let mut cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": config.env, "Cmd": config.cmd },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    if !config.entrypoint.is_empty() {
        cfg["config"]["Entrypoint"] = serde_json::json!(config.entrypoint);
    }
    let (cfg_digest, cfg_size) = put(&serde_json::to_vec(&cfg).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest, "size": cfg_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest, "size": layer_size,
        }],
    });
    let (m_digest, m_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m_digest, "size": m_size,
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(out)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("running tar");
    assert!(st.success(), "tar of the image layout");
}

/// Name of the busybox image the archives carry.
pub const BUSYBOX_IMAGE: &str = "docker.io/atoll/busybox:test";
/// Name of the pause image.
pub const PAUSE_IMAGE: &str = "docker.io/atoll/pause:test";

/// A `pause` that sleeps until SIGINT/SIGTERM and reaps orphans (what a
/// pod sandbox's init does).
pub const PAUSE_C: &str = r#"
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"#;

/// The busybox image archive (cached).
pub fn busybox_oci_archive() -> PathBuf {
    cached_archive("busybox-oci.tar", || {
        (
            crate::bundle::busybox_rootfs(),
            BUSYBOX_IMAGE,
            ImageConfig::default(),
        )
    })
}

/// The pause image archive: a rootfs holding only a static `/pause` (cached).
pub fn pause_oci_archive() -> PathBuf {
    cached_archive("pause-oci.tar", || {
        let bin = crate::cprog::compile("pause", PAUSE_C, &[]);
        let rootfs = crate::cache_dir().join("pause-rootfs");
        if !rootfs.join("pause").exists() {
            let tmp = crate::cache_dir().join(crate::unique("pause-rootfs"));
            crate::cprog::install(&bin, &tmp, "/pause");
            if std::fs::rename(&tmp, &rootfs).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        let cfg = ImageConfig {
            entrypoint: vec!["/pause".into()],
            cmd: Vec::new(),
            env: Vec::new(),
        };
        (rootfs, PAUSE_IMAGE, cfg)
    })
}

fn cached_archive(
    file: &str,
    make: impl FnOnce() -> (PathBuf, &'static str, ImageConfig),
) -> PathBuf {
    let out = crate::cache_dir().join(file);
    if out.exists() {
        return out;
    }
    let (rootfs, name, cfg) = make();
    let tmp = crate::cache_dir().join(crate::unique(file));
    oci_archive(&rootfs, name, &cfg, &tmp);
    std::fs::rename(&tmp, &out).unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_digests_match_contents() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("hello"), "hi\n").unwrap();
        let out = tempfile::NamedTempFile::new().unwrap();
        oci_archive(
            root.path(),
            "example.org/x:1",
            &ImageConfig::default(),
            out.path(),
        );
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-xf")
            .arg(out.path())
            .status()
            .unwrap();
        assert!(st.success());
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "example.org/x:1"
        );
        let blob = |d: &serde_json::Value| {
            let d = d
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap()
                .to_string();
            let bytes = std::fs::read(dir.path().join("blobs/sha256").join(&d)).unwrap();
            assert_eq!(sha256_hex(&bytes), d, "blob content matches its digest");
            bytes
        };
        let manifest: serde_json::Value = serde_json::from_slice(&blob(&m["digest"])).unwrap();
        let cfg: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        let layer = blob(&manifest["layers"][0]["digest"]);
        assert_eq!(manifest["layers"][0]["size"], layer.len());
        assert_eq!(
            cfg["rootfs"]["diff_ids"][0],
            manifest["layers"][0]["digest"]
        );
    }
}
