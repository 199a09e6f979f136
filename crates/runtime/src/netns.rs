//! runc brings up the loopback interface of a new network namespace;
//! libcontainer 0.7 does not, so atoll does it between create and start.

use std::os::fd::AsRawFd;

use anyhow::{Context, Result};

/// Sets `lo` up in the network namespace of `pid`.
pub fn loopback_up(pid: i32) -> Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .context("network namespace of the container")?;
    // setns affects only the calling thread: do it in a thread of its own.
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).context("setns")?;
        // SAFETY: socket/ioctl with a zeroed ifreq naming "lo".
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(std::io::Error::last_os_error()).context("socket");
            }
            let s = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s);
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo".iter().enumerate() {
                ifr.ifr_name[i] = *b as libc::c_char;
            }
            if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
                return Err(std::io::Error::last_os_error()).context("SIOCGIFFLAGS lo");
            }
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as i16;
            if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
                return Err(std::io::Error::last_os_error()).context("SIOCSIFFLAGS lo");
            }
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("loopback setup thread panicked"))?
}

/// Whether the spec makes a new network namespace (not joining one by path).
pub fn creates_netns(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none()
            })
        })
}
