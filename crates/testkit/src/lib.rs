//! Test helpers shared by atoll's integration tests: bundles built from
//! Debian's busybox-static (and, for glibc programs, a Debian rootfs), a
//! runner for the atoll binary with a private state root, and leak checks
//! that prove a container left nothing behind.

pub mod bundle;
pub mod cprog;
pub mod debian;
pub mod image;
pub mod leaks;
pub mod runner;

pub use bundle::{Bundle, BundleBuilder};
pub use leaks::LeakCheck;
pub use runner::{Atoll, Out};

/// Directory for cached test assets (rootfs images), under target/.
pub fn cache_dir() -> std::path::PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = base.join("testkit");
    std::fs::create_dir_all(&dir).expect("creating target/testkit");
    dir
}

/// Unique name for a test object: prefix, process id and a counter.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Integration tests drive namespaces, cgroups and mounts: they need root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "atoll's integration tests must run as root"
    );
}
