//! Prints the path of the tests' Debian rootfs, building it first if it is
//! not cached yet (`atoll_testkit::debian::debian_rootfs`). The benchmarks
//! use it so that they run on the very image the tests use:
//!
//!     cargo run --release -p atoll-testkit --example debian-rootfs

fn main() {
    println!("{}", atoll_testkit::debian::debian_rootfs().display());
}
