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

/// A namespace file's identity (st_dev, st_ino), following the link.
pub fn identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// The addresses of the namespace atoll runs in (the node's, for create
/// on the host): what a tenant's sandbox may not reach by default.
pub fn node_addresses() -> Vec<std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list that is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut p = list;
    while !p.is_null() {
        // SAFETY: p is an entry of the list getifaddrs made.
        let a = unsafe { &*p };
        if !a.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of its family.
            unsafe {
                match (*a.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(a.ifa_addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(a.ifa_addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
        }
        p = a.ifa_next;
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(list) };
    out.sort();
    out.dedup();
    out
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

/// Whether the spec gives the container a network namespace of its own:
/// a `network` entry that makes a new one, or joins one by path that is
/// not the namespace atoll runs in (the node's, for create on the host).
/// A path that cannot be looked at counts as its own: create fails on
/// it later with the runtime's own error.
pub fn spec_has_own_netns(spec: &oci_spec::runtime::Spec) -> bool {
    let Some(ns) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        })
    else {
        return false;
    };
    match ns.path() {
        None => true,
        Some(p) => {
            let theirs = identity(&p.to_string_lossy());
            theirs.is_none() || theirs != identity("/proc/self/ns/net")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_network_namespace_is_a_new_one_or_another_by_path() {
        let spec = |ns: serde_json::Value| -> oci_spec::runtime::Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.2.0",
                "root": {"path": "rootfs"},
                "linux": {"namespaces": ns}
            }))
            .unwrap()
        };
        assert!(spec_has_own_netns(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "network"}
        ]))));
        assert!(!spec_has_own_netns(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "mount"}
        ]))));
        // The namespace atoll runs in, joined by path: the node's.
        assert!(!spec_has_own_netns(&spec(serde_json::json!([
            {"type": "network", "path": "/proc/self/ns/net"}
        ]))));
        let no_linux: oci_spec::runtime::Spec = serde_json::from_value(
            serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}}),
        )
        .unwrap();
        assert!(!spec_has_own_netns(&no_linux));
    }
}
