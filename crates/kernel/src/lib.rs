//! atoll's application kernel.
//!
//! The workload runs in stub processes whose every syscall stops in this
//! kernel (see [`platform`]); the kernel serves it from its own model of
//! memory ([`mm`]), processes and signals ([`kernel`]), files ([`vfs`]) and
//! sockets ([`net`]), through one syscall table ([`syscalls`]). The design
//! follows gVisor's Sentry, rebuilt in Rust.

pub mod arch;
pub mod clock;
pub mod errno;
pub mod ipc;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod platform;
pub mod seccomp;
pub mod syscall_driver;
pub mod syscalls;
#[cfg(test)]
mod testing;
pub mod vfs;
