//! Prints the path of the tests' Debian rootfs, building it first if it is
//! not cached yet (`atoll_testkit::debian::debian_rootfs`); with the
//! argument `runtimes`, the variant with Go, Java, Node and CPython's tests
//! (`atoll_testkit::debian::runtimes_rootfs`). The benchmarks use them so
//! that they run on the very images the tests use:
//!
//!     cargo run --release -p atoll-testkit --example debian-rootfs [runtimes]

fn main() {
    let dir = match std::env::args().nth(1).as_deref() {
        None => atoll_testkit::debian::debian_rootfs(),
        Some("runtimes") => atoll_testkit::debian::runtimes_rootfs(),
        Some(other) => {
            eprintln!("debian-rootfs: unknown variant {other:?} (have: runtimes)");
            std::process::exit(2);
        }
    };
    println!("{}", dir.display());
}
