//! `containerd-shim-atoll-v2`: containerd's shim v2 for atoll (runtime type
//! `io.containerd.atoll.v2`). See `service` for what the shim does and
//! `options` for how a containerd runtime selects the isolation level.

pub mod io;
pub mod metrics;
pub mod options;
pub mod service;

/// The runtime type containerd resolves to this binary.
pub const RUNTIME_TYPE: &str = "io.containerd.atoll.v2";

/// Entry point of the shim binary.
pub fn main() {
    // The shim reaps its children itself (`service`): containerd-shim's
    // reaper is a SIGCHLD handler whose wake-up socket is closed while the
    // `start` action exits, and a SIGCHLD arriving then (the spawned
    // server's own exit, when a pod's shim already runs) turns into an
    // endless SIGPIPE loop in that handler.
    let config = containerd_shim::Config {
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<service::Shim>(RUNTIME_TYPE, Some(config))
}
