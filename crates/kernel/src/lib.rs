//! atoll's application kernel.
//!
//! The workload runs in stub processes whose every syscall stops in this
//! kernel (see [`platform`]); the kernel serves it from its own model of
//! memory ([`mm`]), processes and signals ([`kernel`]), files ([`vfs`]) and
//! sockets ([`net`]), through one syscall table ([`syscalls`]). The design
//! follows gVisor's Sentry, rebuilt in Rust.

pub mod arch;
pub mod platform;
