//! Sockets. AF_UNIX lives entirely in the kernel (paths and abstract
//! names are the sandbox's own); AF_INET and AF_INET6 are host sockets
//! owned by the kernel inside the container's network namespace (like
//! gVisor's hostinet), or, with `--network sandbox`, sockets of the
//! kernel's own TCP/IP stack (`stack`), whose state NETLINK_ROUTE
//! sockets (`netlink`) also answer in that mode. Raw and packet sockets,
//! netlink in host mode and every other family are refused.

pub mod addr;
pub mod ifreq;
pub mod inet;
pub mod msg;
pub mod netlink;
pub mod stack;
pub mod unix;

use std::rc::Rc;

use crate::errno::SysResult;
use crate::kernel::{Kernel, Tid};
use crate::vfs::{File, IoVecs};

pub use addr::SockAddr;

/// Sender credentials (SCM_CREDENTIALS, SO_PEERCRED), virtual ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One sendmsg.
pub struct Send<'a> {
    pub data: &'a IoVecs,
    pub addr: Option<SockAddr>,
    pub fds: Vec<Rc<File>>,
    /// SCM_CREDENTIALS the sender gave (checked).
    pub creds: Option<Ucred>,
    /// The sender's own credentials, attached when either end asks.
    pub current: Ucred,
    pub flags: i32,
    /// Control messages of levels other than SOL_SOCKET (IP_TTL,
    /// IPV6_HOPLIMIT, ...): the socket decides what they mean.
    pub ip: Vec<msg::LevelCmsg>,
}

/// What a recvmsg got.
#[derive(Default)]
pub struct Recv {
    pub len: usize,
    /// Length of the whole datagram (MSG_TRUNC reporting).
    pub full_len: usize,
    pub addr: Option<SockAddr>,
    pub fds: Vec<Rc<File>>,
    pub creds: Option<Ucred>,
    pub msg_flags: i32,
    /// IP-level control messages the socket's options ask for.
    pub cmsgs: Vec<msg::LevelCmsg>,
}

/// What sockets do beyond read and write. Calls that would block return
/// EAGAIN; the syscall layer then waits on the file (like reads).
pub trait SocketOps {
    fn domain(&self) -> i32;
    fn sock_type(&self) -> i32;
    fn bind(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()>;
    fn listen(&self, k: &Kernel, backlog: i32) -> SysResult<()>;
    /// A pending connection, as a new socket file's operations.
    fn accept(&self, k: &Kernel) -> SysResult<(Rc<dyn crate::vfs::FileOps>, Option<SockAddr>)>;
    /// Starts or completes a connection; EINPROGRESS while pending.
    fn connect(&self, k: &Kernel, tid: Tid, addr: &SockAddr) -> SysResult<()>;
    fn send(&self, k: &Kernel, m: Send<'_>) -> SysResult<usize>;
    fn recv(&self, k: &Kernel, dst: &IoVecs, flags: i32) -> SysResult<Recv>;
    fn shutdown(&self, k: &Kernel, how: i32) -> SysResult<()>;
    fn sockname(&self, k: &Kernel) -> SysResult<SockAddr>;
    fn peername(&self, k: &Kernel) -> SysResult<SockAddr>;
    fn setsockopt(&self, k: &Kernel, level: i32, name: i32, val: &[u8]) -> SysResult<()>;
    fn getsockopt(&self, k: &Kernel, level: i32, name: i32, len: usize) -> SysResult<Vec<u8>>;
    /// SO_SNDTIMEO (`send`) or SO_RCVTIMEO: how long a blocking call waits.
    fn timeout(&self, _send: bool) -> Option<std::time::Duration> {
        None
    }
    /// Pending connect to finish (blocking connect waits, then asks this).
    fn connect_result(&self, _k: &Kernel) -> Option<SysResult<()>> {
        None
    }
}
