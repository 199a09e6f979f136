//! A link's frames through the AF_PACKET socket the container's init
//! opened on one of the container's interfaces and handed to the kernel
//! (`--network sandbox`): reading and writing it is all the kernel does
//! with the host's network, so its seccomp filter needs nothing else.
//! Frames read here are untrusted; the stack's link device checks them.

use std::os::fd::{AsRawFd, OwnedFd};

use atoll_netstack::LinkConfig;
use atoll_netstack::device::Frames;

/// One interface taken over from the container's network namespace.
#[derive(Clone, Debug)]
pub struct HostLink {
    /// Name, index, MAC, MTU, addresses and routes as the interface had them.
    pub config: LinkConfig,
    /// The AF_PACKET socket bound to the interface (non-blocking); the
    /// kernel owns it from boot on.
    pub fd: i32,
    /// Frames carry a virtio-net header (PACKET_VNET_HDR: checksum and
    /// segmentation offload with the host).
    pub vnet: bool,
}

pub struct PacketFrames {
    fd: OwnedFd,
    vnet: bool,
}

impl PacketFrames {
    pub fn new(fd: OwnedFd, vnet: bool) -> PacketFrames {
        PacketFrames { fd, vnet }
    }
}

fn interrupted() -> bool {
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}

impl Frames for PacketFrames {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: read into a buffer of buf.len() bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n >= 0 {
                return Some(n as usize);
            }
            if !interrupted() {
                // EAGAIN: nothing waiting; ENETDOWN and the like: the
                // interface went away, nothing will come.
                return None;
            }
        }
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        loop {
            // SAFETY: write of frame.len() bytes from frame.
            let n = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                )
            };
            if n >= 0 {
                return true;
            }
            if !interrupted() {
                // A full device queue (ENOBUFS, EAGAIN): the frame is
                // lost, as on a congested wire; TCP sends it again.
                return false;
            }
        }
    }

    fn vnet(&self) -> bool {
        self.vnet
    }
}
