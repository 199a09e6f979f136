//! Prints the paths of the OCI archives the CRI tests import (the busybox
//! image and the pause image), building them first if they are not cached
//! yet. tests/vm/run.sh uses it to carry them into the test VM, which has
//! no compiler to build the pause binary:
//!
//!     cargo run --release -p atoll-testkit --example cri-images

fn main() {
    println!("{}", atoll_testkit::image::busybox_oci_archive().display());
    println!("{}", atoll_testkit::image::pause_oci_archive().display());
}
