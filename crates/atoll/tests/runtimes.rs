//! Multi-threaded language runtimes at the userspace level (issue 13 item
//! 6): the Go toolchain (`go version`, `go run` of a program whose
//! goroutines are preempted by SIGURG), Java (`java -version`, a
//! single-file program with a thread pool) and Node.js (worker_threads),
//! each run at the native level and at the userspace level on the Debian
//! runtimes rootfs (`atoll_testkit::debian::runtimes_rootfs`, built by
//! debootstrap on first use and cached under the target directory), with
//! the same output. The programs are tests/runtimes/*; each run is cut
//! off by `timeout` inside the container so that a hang fails the test
//! instead of stalling the suite.

mod common;

use atoll_testkit::BundleBuilder;
use common::*;
use std::path::Path;

fn programs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/runtimes"))
}

/// Runs `script` (sh -c) at both levels in the runtimes rootfs with the
/// programs at /src; returns (native, userspace) outputs, both successful.
fn both_levels(script: &str) -> (atoll_testkit::Out, atoll_testkit::Out) {
    let a = atoll();
    let b = BundleBuilder::debian_runtimes()
        .bind(programs(), "/src", true)
        .args(&[
            "/usr/bin/timeout",
            "-s",
            "KILL",
            "300",
            "/bin/sh",
            "-c",
            script,
        ])
        .build();
    let native = run_at(&a, "native", &b, "rt-n");
    let user = run_at(&a, "userspace", &b, "rt-u");
    assert_eq!(native.code, 0, "native: {native:#?}");
    assert_eq!(user.code, 0, "userspace: {user:#?}");
    (native, user)
}

#[test]
fn go_toolchain_builds_and_runs_a_threaded_program_as_natively() {
    let (native, user) =
        both_levels("go version && cd /tmp && cp /src/threads.go . && go run threads.go");
    assert!(
        native.stdout.contains("go threads ok 8"),
        "{}",
        native.stdout
    );
    assert_eq!(user.stdout, native.stdout, "stderr: {}", user.stderr);
}

#[test]
fn java_runs_a_program_with_threads_as_natively() {
    let (native, user) = both_levels("java -version 2>&1 | head -1 && java /src/Threads.java");
    assert!(
        native.stdout.contains("java threads ok 8"),
        "{}",
        native.stdout
    );
    assert_eq!(user.stdout, native.stdout, "stderr: {}", user.stderr);
}

#[test]
fn node_runs_worker_threads_as_natively() {
    let (native, user) = both_levels(
        "node -e \"console.log(process.version, require('os').cpus().length > 0)\" && node /src/workers.js",
    );
    assert!(
        native.stdout.contains("node workers ok 4"),
        "{}",
        native.stdout
    );
    assert_eq!(user.stdout, native.stdout, "stderr: {}", user.stderr);
}
