//! Shared by the integration tests: the atoll binary and a per-test setup.
#![allow(dead_code)]

use atoll_testkit::{Atoll, Bundle, BundleBuilder, LeakCheck};

pub fn atoll() -> Atoll {
    Atoll::new(env!("CARGO_BIN_EXE_atoll"))
}

pub fn id(prefix: &str) -> String {
    atoll_testkit::unique(prefix)
}

/// Leak check for a container of `a` built from `bundle`.
pub fn leaks(a: &Atoll, id: &str, bundle: &Bundle) -> LeakCheck {
    LeakCheck::new(id, a.root(), Some(&bundle.path))
}

pub fn busybox() -> BundleBuilder {
    BundleBuilder::busybox()
}
