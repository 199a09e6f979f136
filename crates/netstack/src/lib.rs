//! atoll's network stack: the TCP/IP the workload of a userspace sandbox
//! talks to, so its sockets never reach the host's stack.
//!
//! smoltcp does the protocols (Ethernet, ARP, NDP, IPv4, IPv6, TCP, UDP,
//! ICMP); this crate puts Linux socket semantics on top (one Linux socket
//! may be several smoltcp sockets: one per interface, a pool of listening
//! ones for a backlog), owns ports, routes between loopback and the links,
//! and enforces the tenant's egress rules at connect and send time.
//!
//! It knows nothing of the kernel: the kernel's glue
//! (`atoll_kernel::net::stack`, `atoll_kernel::kernel::netstack`) turns
//! syscalls into calls here and wakes
//! the tasks whose sockets [`Stack::poll`] reports as changed.

pub mod ancillary;
pub mod config;
pub mod device;
mod dgram;
pub mod egress;
pub mod pktmeta;
mod ports;
pub mod procnet;
pub mod rtnetlink;
pub mod sockopt;
mod stack;
mod tcp;

pub use config::{Cidr, LinkConfig, NetConfig, RouteConfig};
pub use egress::{Egress, EgressRule, Refusal};
pub use stack::{Proto, Sink, SockId, Source, Stack};
pub use tcp::Received;

/// Errors are Linux errno values.
pub type Errno = i32;

/// poll(2) bits, as the kernel's files report them.
pub const POLLIN: u32 = libc::POLLIN as u32;
pub const POLLOUT: u32 = libc::POLLOUT as u32;
pub const POLLERR: u32 = libc::POLLERR as u32;
pub const POLLHUP: u32 = libc::POLLHUP as u32;
pub const POLLRDHUP: u32 = 0x2000;

#[cfg(test)]
mod tests;
