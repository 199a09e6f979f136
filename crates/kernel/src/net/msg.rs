//! Message headers and ancillary data of sendmsg/recvmsg, decoded from the
//! bytes the workload wrote. Decoding is kept apart from reading workload
//! memory and from acting on the result (syscalls/net.rs does both) so
//! that every length and count the workload controls is checked in plain
//! functions of bytes, which unit tests and the fuzzers (fuzz/) can drive
//! without a running kernel.

use super::Ucred;
use crate::errno::{Errno, SysResult};

/// Size of `struct msghdr` (x86_64).
pub const MSGHDR_SIZE: usize = 56;
/// Size of `struct cmsghdr` (x86_64); a message's data follows it.
pub const CMSGHDR_SIZE: usize = 16;
/// Most descriptors one sendmsg may pass (Linux's SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;

/// `struct msghdr` as the workload wrote it: pointers and lengths still
/// unchecked (the reads they lead to check them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    pub name: u64,
    pub namelen: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

impl MsgHdr {
    pub fn parse(b: &[u8; MSGHDR_SIZE]) -> MsgHdr {
        let word = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        // msg_namelen is 32 bits followed by padding the workload may
        // leave dirty; msg_flags (the last word) is only written back.
        MsgHdr {
            name: word(0),
            namelen: word(1) as u32,
            iov: word(2),
            iovlen: word(3),
            control: word(4),
            controllen: word(5),
        }
    }
}

/// One control message of a sendmsg, decoded but not acted on: the
/// descriptors are not looked up and the credentials not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmsg {
    /// SCM_RIGHTS: the sender's descriptor numbers, in order.
    Rights(Vec<i32>),
    /// SCM_CREDENTIALS: the credentials the sender claims.
    Credentials(Ucred),
    /// A message of another level (SOL_IP, SOL_IPV6, ...): its socket's
    /// protocol decodes it (or skips it, as AF_UNIX does).
    Level(LevelCmsg),
}

/// A control message of a level other than SOL_SOCKET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelCmsg {
    pub level: i32,
    pub ty: i32,
    pub data: Vec<u8>,
}

/// The control messages of a sendmsg's `msg_control` bytes, in order.
///
/// Lazy on purpose: the caller acts on each message before the next is
/// decoded, so the errno a workload sees for a buffer with several
/// problems is the first one, as in Linux. Yields at most one error, then
/// ends. Trailing bytes too short for a header are ignored.
pub struct Cmsgs<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Descriptors in the messages so far (SCM_MAX_FD is per sendmsg).
    fds: usize,
    failed: bool,
}

impl<'a> Cmsgs<'a> {
    pub fn new(buf: &'a [u8]) -> Cmsgs<'a> {
        Cmsgs {
            buf,
            pos: 0,
            fds: 0,
            failed: false,
        }
    }

    fn decode(&mut self) -> Option<SysResult<Cmsg>> {
        let (buf, pos) = (self.buf, self.pos);
        if self.failed || pos + CMSGHDR_SIZE > buf.len() {
            return None;
        }
        let len = u64::from_ne_bytes(buf[pos..pos + 8].try_into().unwrap()) as usize;
        let level = i32::from_ne_bytes(buf[pos + 8..pos + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(buf[pos + 12..pos + 16].try_into().unwrap());
        // `len` is the workload's: it is compared with what is left of the
        // buffer, never added to the position first, which could wrap
        // (found by fuzz/fuzz_targets/kernel_msghdr.rs: a huge cmsg_len
        // after a valid message made `pos + len` small again and the
        // slice below panicked).
        if len < CMSGHDR_SIZE || len > buf.len() - pos {
            return Some(Err(Errno::EINVAL));
        }
        let data = &buf[pos + CMSGHDR_SIZE..pos + len];
        let msg = if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            if !data.len().is_multiple_of(4) || self.fds + data.len() / 4 > SCM_MAX_FD {
                return Some(Err(Errno::EINVAL));
            }
            let fds: Vec<i32> = data
                .chunks(4)
                .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            self.fds += fds.len();
            Cmsg::Rights(fds)
        } else if level == libc::SOL_SOCKET && ty == libc::SCM_CREDENTIALS {
            if data.len() < 12 {
                return Some(Err(Errno::EINVAL));
            }
            Cmsg::Credentials(Ucred {
                pid: i32::from_ne_bytes(data[0..4].try_into().unwrap()),
                uid: u32::from_ne_bytes(data[4..8].try_into().unwrap()),
                gid: u32::from_ne_bytes(data[8..12].try_into().unwrap()),
            })
        } else if level != libc::SOL_SOCKET {
            Cmsg::Level(LevelCmsg {
                level,
                ty,
                data: data.to_vec(),
            })
        } else {
            return Some(Err(Errno::EINVAL));
        };
        // Messages are 8-byte aligned (CMSG_ALIGN).
        self.pos += len.div_ceil(8) * 8;
        Some(Ok(msg))
    }
}

impl Iterator for Cmsgs<'_> {
    type Item = SysResult<Cmsg>;

    fn next(&mut self) -> Option<SysResult<Cmsg>> {
        let r = self.decode();
        if let Some(Err(_)) = r {
            self.failed = true;
        }
        r
    }
}

/// A control message as sendmsg expects it (for tests and fuzz seeds).
pub fn encode_cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
    let len = CMSGHDR_SIZE + data.len();
    let mut b = Vec::with_capacity(len.div_ceil(8) * 8);
    b.extend_from_slice(&(len as u64).to_ne_bytes());
    b.extend_from_slice(&level.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(data);
    b.resize(len.div_ceil(8) * 8, 0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(fds: &[i32]) -> Vec<u8> {
        let data: Vec<u8> = fds.iter().flat_map(|f| f.to_ne_bytes()).collect();
        encode_cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &data)
    }

    #[test]
    fn msghdr_ignores_padding_and_flags() {
        let mut b = [0xffu8; MSGHDR_SIZE];
        for (i, w) in [1u64, 0xdead_0000_0010, 3, 4, 5, 6].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        let h = MsgHdr::parse(&b);
        assert_eq!(h.namelen, 0x10);
        assert_eq!((h.name, h.iov, h.iovlen), (1, 3, 4));
        assert_eq!((h.control, h.controllen), (5, 6));
    }

    #[test]
    fn rights_and_credentials_in_order() {
        let mut b = rights(&[3, 4, 5]);
        let cred = [7i32.to_ne_bytes(), 8i32.to_ne_bytes(), 9i32.to_ne_bytes()].concat();
        b.extend(encode_cmsg(libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &cred));
        b.extend_from_slice(&[0; 7]);
        let got: Vec<_> = Cmsgs::new(&b).collect();
        assert_eq!(
            got,
            vec![
                Ok(Cmsg::Rights(vec![3, 4, 5])),
                Ok(Cmsg::Credentials(Ucred {
                    pid: 7,
                    uid: 8,
                    gid: 9
                }))
            ]
        );
    }

    #[test]
    fn bad_messages_stop_at_the_first_error() {
        let mut b = rights(&[1]);
        b.extend(encode_cmsg(libc::SOL_SOCKET, 9999, &[0; 4]));
        b.extend(rights(&[2]));
        let got: Vec<_> = Cmsgs::new(&b).collect();
        assert_eq!(got, vec![Ok(Cmsg::Rights(vec![1])), Err(Errno::EINVAL)]);

        let too_many = rights(&[0; SCM_MAX_FD + 1]);
        assert_eq!(Cmsgs::new(&too_many).next(), Some(Err(Errno::EINVAL)));
        let mut b = rights(&[0; SCM_MAX_FD]);
        b.extend(rights(&[0]));
        assert_eq!(Cmsgs::new(&b).nth(1), Some(Err(Errno::EINVAL)));
    }

    #[test]
    fn other_levels_are_left_to_the_socket() {
        let mut b = encode_cmsg(libc::SOL_IPV6, libc::IPV6_HOPLIMIT, &2i32.to_ne_bytes());
        b.extend(rights(&[1]));
        let got: Vec<_> = Cmsgs::new(&b).collect();
        assert_eq!(
            got,
            vec![
                Ok(Cmsg::Level(LevelCmsg {
                    level: libc::SOL_IPV6,
                    ty: libc::IPV6_HOPLIMIT,
                    data: 2i32.to_ne_bytes().to_vec()
                })),
                Ok(Cmsg::Rights(vec![1]))
            ]
        );
    }

    #[test]
    fn lengths_beyond_the_buffer_are_errors() {
        let mut b = rights(&[1]);
        b[0..8].copy_from_slice(&64u64.to_ne_bytes());
        assert_eq!(Cmsgs::new(&b).next(), Some(Err(Errno::EINVAL)));
        // A length that wraps the position around, after a valid message.
        let mut b = rights(&[1]);
        let mut bad = rights(&[2]);
        bad[0..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        b.extend(bad);
        let got: Vec<_> = Cmsgs::new(&b).collect();
        assert_eq!(got, vec![Ok(Cmsg::Rights(vec![1])), Err(Errno::EINVAL)]);
    }
}
