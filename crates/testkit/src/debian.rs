//! A Debian bookworm rootfs for glibc programs (python3, sqlite3, nginx),
//! built once with debootstrap and cached under target/testkit.

use std::path::PathBuf;
use std::process::Command;

/// Packages beyond minbase the tests use.
pub const PACKAGES: &[&str] = &[
    "python3",
    "sqlite3",
    "nginx-light",
    "procps",
    "postgresql-15",
    "inotify-tools",
];

/// The cached rootfs, building it on first use (a few minutes). Several
/// test processes may ask at once: an exclusive lock serializes the build.
/// The marker names the packages, so a changed list rebuilds it.
pub fn debian_rootfs() -> PathBuf {
    let dir = crate::cache_dir().join("debian-rootfs");
    let marker = dir.join(".complete");
    let include = PACKAGES.join(",");
    let current = |m: &std::path::Path| std::fs::read_to_string(m).is_ok_and(|s| s == include);
    if current(&marker) {
        return dir;
    }
    let lock_path = crate::cache_dir().join("debian-rootfs.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("lock file");
    // SAFETY: flock on our own descriptor.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if current(&marker) {
        return dir;
    }
    let tmp = crate::cache_dir().join("debian-rootfs.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={include}"),
            "bookworm",
        ])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("debootstrap (install it with: make deps)");
    assert!(
        out.status.success(),
        "debootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).expect("moving the rootfs into place");
    std::fs::write(&marker, &include).unwrap();
    dir
}
