//! atoll's container runtime: the OCI lifecycle on youki's libcontainer,
//! isolation-level selection, atoll's own state next to libcontainer's, and
//! the secure defaults each level adds to a bundle's spec.

pub mod cleanup;
pub mod config;
pub mod confinement;
pub mod control;
pub mod dying;
pub mod effective;
pub mod events;
pub mod exec;
mod exec_native;
mod exec_userspace;
mod exec_vm;
pub mod executor;
pub mod fds;
pub mod id;
pub mod kmsg;
pub mod layout;
pub mod level;
pub mod lifecycle;
pub mod meta;
pub mod netns;
pub mod pod;
pub mod seccomp_filter;
pub mod seccomp_profile;
pub mod signal;
pub mod spec;
pub mod status;
// Added for the containerd shim work (issue 7): sockets at long paths.
pub mod unixsock;
pub mod userspace_spec;
pub mod vm_level;
pub mod vm_net;
pub mod vm_pod;
pub mod wait;

pub use config::Config;
pub use layout::Layout;
pub use level::Isolation;
pub use lifecycle::{CreateOptions, Runtime, one_line};
