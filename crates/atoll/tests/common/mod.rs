//! Shared by the integration tests: the atoll binary and a per-test setup.
#![allow(dead_code)]

use atoll_testkit::{Atoll, Bundle, BundleBuilder, LeakCheck};

pub fn atoll() -> Atoll {
    Atoll::new(env!("CARGO_BIN_EXE_atoll"))
}

pub fn id(prefix: &str) -> String {
    atoll_testkit::unique(prefix)
}

/// The test programs' sources (tests/progs).
pub fn progs() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/progs"))
}

/// Leak check for a container of `a` built from `bundle`.
pub fn leaks(a: &Atoll, id: &str, bundle: &Bundle) -> LeakCheck {
    LeakCheck::new(id, a.root(), Some(&bundle.path)).with_rootfs(&bundle.rootfs)
}

/// Runs `args` in a new container at `level`, returning the output.
pub fn run_at(a: &Atoll, level: &str, b: &Bundle, prefix: &str) -> atoll_testkit::Out {
    let id = id(prefix);
    let out = a.run(&["--isolation", level, "run", "-b", b.path_str(), &id]);
    leaks(a, &id, b).assert_clean();
    out
}

/// Runs `b` detached at `level` as container `id`; returns the host pid
/// of its init (the application kernel at the userspace level).
pub fn start_detached(a: &Atoll, level: &str, b: &Bundle, id: &str) -> i64 {
    a.run(&["--isolation", level, "run", "-d", "-b", b.path_str(), id])
        .ok();
    a.state(id)["pid"].as_i64().unwrap()
}

pub fn debian() -> BundleBuilder {
    BundleBuilder::debian()
}

pub fn busybox() -> BundleBuilder {
    BundleBuilder::busybox()
}
