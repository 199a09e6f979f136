//! The protocol between atoll on the host and its guest agent, and the
//! host's side of a process session. The agent itself is `main.rs` (built
//! as a static binary and put in the guest's initramfs as `/init`).

pub mod client;
pub mod netlink;
pub mod proto;
