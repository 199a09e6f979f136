//! containerd-shim-atoll-v2: see the `atoll_shim` library.

fn main() {
    atoll_shim::main()
}
