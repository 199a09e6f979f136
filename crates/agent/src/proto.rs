//! Frames on one vsock stream per request: a one-byte kind, a 32-bit
//! big-endian length, the payload. A session starts with a `REQUEST`
//! frame (JSON); a process session then carries stdin, signals and window
//! sizes to the guest, and stdout, stderr and the exit status back.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// host → guest
pub const REQUEST: u8 = b'R';
pub const STDIN: u8 = b'I';
pub const STDIN_EOF: u8 = b'i';
pub const SIGNAL: u8 = b'S';
pub const RESIZE: u8 = b'W';
/// guest → host
pub const STDOUT: u8 = b'O';
pub const STDERR: u8 = b'E';
/// The process's wait status (as waitpid gives it), 4 bytes big-endian.
pub const EXIT: u8 = b'X';
/// A JSON answer (to a request, or "started" with the process's pid).
pub const ANSWER: u8 = b'A';
/// A failure, one line of text; the session ends.
pub const FAILURE: u8 = b'F';

/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(5 + payload.len());
    b.push(kind);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    w.write_all(&b)
}

pub fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 5];
    r.read_exact(&mut h)?;
    let len = u32::from_be_bytes(h[1..5].try_into().unwrap()) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p)?;
    Ok((h[0], p))
}

/// Splits frames out of a byte stream read piecemeal (non-blocking I/O).
#[derive(Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any; an error if a frame is too large.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame too large",
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

/// A mount inside the container, as the OCI spec gives it, except that a
/// bind mount's source is a path in the container's share, where the host
/// staged the host path (host paths do not exist in the guest).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The container a process runs in: its root file system (a virtio-fs
/// tag) and what the OCI spec says about its mounts and names.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Container {
    pub id: String,
    /// virtio-fs tag of the rootfs, and the directory inside that share.
    pub rootfs_tag: String,
    pub rootfs_path: String,
    pub readonly: bool,
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// A pod member's init joins these namespaces ("uts", "ipc", "pid")
    /// of container `join_of`'s init instead of making its own: a CRI
    /// container shares its pod's as runc joins them by path.
    #[serde(default)]
    pub join_namespaces: Vec<String>,
    #[serde(default)]
    pub join_of: Option<String>,
    /// The guest's network interface, configured by the agent before the
    /// VM's first container starts (the VMM's own request carries it).
    #[serde(default)]
    pub network: Option<Network>,
    /// The spec's memory limit in bytes, held in the guest by a cgroup of
    /// the container's own (guest/cgroup.rs): what bounds a pod member,
    /// which runs in its sandbox's VM.
    #[serde(default)]
    pub memory_limit: Option<u64>,
}

/// The pod's interface as the guest gets it: the host side's name, MAC,
/// MTU, IPv4 and IPv6 addresses and routes (read in the pod's network
/// namespace; the guest's virtio-net device has the same MAC, so the
/// link-local IPv6 address the guest's kernel derives from it is the
/// veth's too and is not carried).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Network {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    #[serde(default)]
    pub addresses6: Vec<Address6>,
    #[serde(default)]
    pub routes6: Vec<Route6>,
}

/// An IPv6 address (not link-local) and its prefix length.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Address6 {
    pub addr: std::net::Ipv6Addr,
    pub prefix: u8,
}

/// An IPv6 route through the interface: to `dst/prefix` (::/0 is the
/// default route), via `gateway` (often the router's link-local address)
/// or on the link.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Route6 {
    pub dst: std::net::Ipv6Addr,
    pub prefix: u8,
    pub gateway: Option<std::net::Ipv6Addr>,
}

/// An IPv4 address and its prefix length.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Address {
    pub addr: std::net::Ipv4Addr,
    pub prefix: u8,
}

/// An IPv4 route through the interface: to `dst/prefix` (0.0.0.0/0 is
/// the default route), via `gateway` or on the link.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Route {
    pub dst: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<std::net::Ipv4Addr>,
}

/// An rlimit: resource number, soft and hard limits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// A process as the OCI spec describes it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub terminal: bool,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    /// Capability numbers of each set (None: the set is left as is).
    pub bounding: Option<Vec<u32>>,
    pub effective: Option<Vec<u32>>,
    pub permitted: Option<Vec<u32>>,
    pub inheritable: Option<Vec<u32>>,
    pub ambient: Option<Vec<u32>>,
    /// Window size for a terminal: rows, columns.
    pub console_size: Option<(u16, u16)>,
    /// The seccomp filter the process runs under (the spec's profile, or
    /// the default one), compiled on the host.
    #[serde(default)]
    pub seccomp: Option<Seccomp>,
}

/// A compiled seccomp filter as the agent loads it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Seccomp {
    /// seccomp(2) flags (TSYNC, LOG, SPEC_ALLOW).
    pub flags: u32,
    /// The BPF program, one instruction per entry:
    /// `code << 48 | jt << 40 | jf << 32 | k`.
    pub program: Vec<u64>,
}

/// Longest program the kernel loads (BPF_MAXINSNS).
pub const SECCOMP_MAX_INSNS: usize = 4096;

impl Seccomp {
    pub fn pack(code: u16, jt: u8, jf: u8, k: u32) -> u64 {
        (code as u64) << 48 | (jt as u64) << 40 | (jf as u64) << 32 | k as u64
    }

    /// The instructions as (code, jt, jf, k).
    pub fn unpack(&self) -> impl Iterator<Item = (u16, u8, u8, u32)> + '_ {
        self.program.iter().map(|i| {
            (
                (i >> 48) as u16,
                (i >> 40) as u8,
                (i >> 32) as u8,
                *i as u32,
            )
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Starts the container's init (the container is made first) or, with
    /// `init: false`, a process in that container's namespaces.
    Run {
        container: Box<Container>,
        process: Box<Process>,
        init: bool,
    },
    /// Sends a signal to the container's init, or to all its processes.
    Signal {
        container: String,
        signal: i32,
        all: bool,
    },
    /// The container's processes.
    Ps { container: String },
    /// The guest's counters (memory, load, processes).
    Stats,
}

impl Request {
    /// What it asks, in a few words (for the agent's debug log).
    pub fn what(&self) -> String {
        match self {
            Request::Run {
                container, init, ..
            } => format!(
                "run {} in {}",
                if *init { "the init" } else { "a process" },
                container.id
            ),
            Request::Signal {
                container, signal, ..
            } => format!("signal {signal} to {container}"),
            Request::Ps { container } => format!("ps of {container}"),
            Request::Stats => "stats".to_string(),
        }
    }
}

/// Answer to `Run` once the process exists.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Started {
    pub pid: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split() {
        let mut v = Vec::new();
        write_frame(&mut v, STDOUT, b"hello").unwrap();
        write_frame(&mut v, EXIT, &7u32.to_be_bytes()).unwrap();
        let mut fb = FrameBuf::default();
        fb.push(&v[..3]);
        assert!(fb.next_frame().unwrap().is_none());
        fb.push(&v[3..]);
        assert_eq!(fb.next_frame().unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(
            fb.next_frame().unwrap(),
            Some((EXIT, 7u32.to_be_bytes().to_vec()))
        );
        assert!(fb.next_frame().unwrap().is_none());
        let mut r = &v[..];
        assert_eq!(read_frame(&mut r).unwrap().0, STDOUT);
    }

    #[test]
    fn seccomp_programs_round_trip() {
        let f = Seccomp {
            flags: 1,
            program: vec![
                Seccomp::pack(0x20, 0, 0, 4),
                Seccomp::pack(0x15, 1, 2, 0xc000_003e),
                Seccomp::pack(0x06, 0, 0, 0x7fff_0000),
            ],
        };
        let v: Vec<_> = f.unpack().collect();
        assert_eq!(v[1], (0x15, 1, 2, 0xc000_003e));
        assert_eq!(v[2], (0x06, 0, 0, 0x7fff_0000));
        let p = Process {
            seccomp: Some(f),
            ..Default::default()
        };
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Process>(&j).unwrap(), p);
        // a host that sends none (an older atoll) leaves it unset
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v.as_object_mut().unwrap().remove("seccomp");
        assert_eq!(serde_json::from_value::<Process>(v).unwrap().seccomp, None);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut fb = FrameBuf::default();
        fb.push(&[STDOUT, 0xff, 0xff, 0xff, 0xff]);
        assert!(fb.next_frame().is_err());
    }

    #[test]
    fn requests_are_tagged_json() {
        let r = Request::Signal {
            container: "c".into(),
            signal: 15,
            all: false,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"op\":\"signal\""), "{j}");
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
    }
}
