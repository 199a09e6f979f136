//! Debian bookworm rootfs images for glibc programs, built once with
//! debootstrap and cached under target/testkit: the tests' common one
//! (python3, sqlite3, nginx, PostgreSQL, LMDB) and a larger variant with the
//! multi-threaded language runtimes (Go, Java, Node) and CPython's own
//! regression tests, kept apart so that the common one stays small.

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
    "python3-lmdb",
    "lmdb-utils",
];

/// Packages of the runtimes variant: the Go toolchain, a Java development
/// kit (its `java` runs single-file source programs, which needs the
/// compiler module the JRE lacks), Node.js, and CPython's regression tests
/// (`python3 -m test`).
pub const RUNTIME_PACKAGES: &[&str] = &[
    "golang-go",
    "openjdk-17-jdk-headless",
    "nodejs",
    "libpython3.11-testsuite",
    "python3",
    "procps",
];

/// The cached common rootfs, building it on first use (a few minutes).
pub fn debian_rootfs() -> PathBuf {
    cached_rootfs("debian-rootfs", PACKAGES)
}

/// The cached runtimes variant (Go, Java, Node, CPython's tests), built on
/// first use (several minutes: about 700 MiB of packages).
pub fn runtimes_rootfs() -> PathBuf {
    cached_rootfs("debian-runtimes", RUNTIME_PACKAGES)
}

/// The rootfs `name` under the cache directory with minbase plus
/// `packages`. Several test processes may ask at once: an exclusive lock
/// serializes the build. The marker names the packages, so a changed list
/// rebuilds it.
fn cached_rootfs(name: &str, packages: &[&str]) -> PathBuf {
    let dir = crate::cache_dir().join(name);
    let marker = dir.join(".complete");
    let include = packages.join(",");
    let current = |m: &std::path::Path| std::fs::read_to_string(m).is_ok_and(|s| s == include);
    if current(&marker) {
        return dir;
    }
    let lock_path = crate::cache_dir().join(format!("{name}.lock"));
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
    let tmp = crate::cache_dir().join(format!("{name}.tmp"));
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
        "debootstrap of {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).expect("moving the rootfs into place");
    std::fs::write(&marker, &include).unwrap();
    dir
}
