//! The gofer's wire protocol: one request or reply per SOCK_SEQPACKET
//! message, little-endian, with descriptors passed as SCM_RIGHTS.
//!
//! Request: `tag u32, op u8, fields...`; reply: `tag u32, errno i32,
//! fields...` (fields only when errno is 0). Byte strings carry a u32
//! length. Every decoder checks lengths and limits: a malformed or hostile
//! message decodes to an error, never a panic.

use crate::{Dirent, Errno, Fid, SetAttr, Time};

/// Largest message either side sends or accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest name (one path component).
pub const MAX_NAME: usize = 255;
/// Longest symlink target.
pub const MAX_TARGET: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Walk {
        dir: Fid,
        name: Vec<u8>,
    },
    Stat {
        fid: Fid,
    },
    Open {
        fid: Fid,
        flags: i32,
    },
    Create {
        dir: Fid,
        name: Vec<u8>,
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mknod {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        dir: Fid,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    Link {
        target: Fid,
        dir: Fid,
        name: Vec<u8>,
    },
    Unlink {
        dir: Fid,
        name: Vec<u8>,
        flags: i32,
    },
    Rename {
        old_dir: Fid,
        old: Vec<u8>,
        new_dir: Fid,
        new: Vec<u8>,
        flags: u32,
    },
    Readlink {
        fid: Fid,
    },
    SetAttr {
        fid: Fid,
        attr: SetAttr,
    },
    /// Entries from index `offset` on, as many as fit in one message.
    Readdir {
        fid: Fid,
        offset: u32,
    },
    Statfs {
        fid: Fid,
    },
    Release {
        fid: Fid,
    },
    /// The `index`th mount root the gofer holds for direct access: its
    /// destination in the container, with the descriptor donated.
    MountRoot {
        index: u32,
    },
    /// Whether `name` in `dir` still is the object (dev, ino): Done or
    /// ESTALE.
    Revalidate {
        dir: Fid,
        name: Vec<u8>,
        dev: u64,
        ino: u64,
    },
    /// Serve the tree under the descriptor sent with this request (a
    /// detached clone of a pod container's rootfs or bind mount, which
    /// the runtime opened on the host): Walked with its new fid.
    AddRoot,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Errors and operations with nothing to return.
    Done,
    Walked {
        fid: Fid,
        stat: Stat,
    },
    Stat(Stat),
    Created {
        fid: Fid,
        stat: Stat,
    },
    Target(Vec<u8>),
    Entries {
        entries: Vec<Dirent>,
        more: bool,
    },
    Statfs(Statfs),
    Mount {
        dest: Vec<u8>,
    },
}

/// A stat as raw bytes of `struct stat` (same machine on both ends).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Stat(pub [u8; std::mem::size_of::<libc::stat>()]);

impl std::fmt::Debug for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stat(..)")
    }
}

impl Stat {
    pub fn from_libc(st: &libc::stat) -> Stat {
        let mut b = [0u8; std::mem::size_of::<libc::stat>()];
        // SAFETY: stat is plain data of exactly this size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                st as *const libc::stat as *const u8,
                b.as_mut_ptr(),
                b.len(),
            )
        };
        Stat(b)
    }
    pub fn to_libc(&self) -> libc::stat {
        // SAFETY: any bytes are a valid stat (plain integers).
        unsafe { std::ptr::read_unaligned(self.0.as_ptr() as *const libc::stat) }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Statfs(pub [u8; std::mem::size_of::<libc::statfs>()]);

impl std::fmt::Debug for Statfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Statfs(..)")
    }
}

impl Statfs {
    pub fn from_libc(s: &libc::statfs) -> Statfs {
        let mut b = [0u8; std::mem::size_of::<libc::statfs>()];
        // SAFETY: as for Stat.
        unsafe {
            std::ptr::copy_nonoverlapping(
                s as *const libc::statfs as *const u8,
                b.as_mut_ptr(),
                b.len(),
            )
        };
        Statfs(b)
    }
    pub fn to_libc(&self) -> libc::statfs {
        // SAFETY: as for Stat.
        unsafe { std::ptr::read_unaligned(self.0.as_ptr() as *const libc::statfs) }
    }
}

// ---------- encoding ----------

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// A decoding cursor; every read is bounds-checked.
pub struct R<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    pub fn new(b: &'a [u8]) -> R<'a> {
        R { b, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Errno> {
        let end = self.pos.checked_add(n).ok_or(libc::EINVAL)?;
        if end > self.b.len() {
            return Err(libc::EINVAL);
        }
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Errno> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Errno> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, Errno> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Errno> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, Errno> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, Errno> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(libc::ENAMETOOLONG);
        }
        Ok(self.take(n)?.to_vec())
    }
    fn name(&mut self) -> Result<Vec<u8>, Errno> {
        self.bytes(MAX_NAME)
    }
    fn end(&self) -> Result<(), Errno> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(libc::EINVAL)
        }
    }
}

mod op {
    pub const WALK: u8 = 1;
    pub const STAT: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CREATE: u8 = 4;
    pub const MKDIR: u8 = 5;
    pub const MKNOD: u8 = 6;
    pub const SYMLINK: u8 = 7;
    pub const LINK: u8 = 8;
    pub const UNLINK: u8 = 9;
    pub const RENAME: u8 = 10;
    pub const READLINK: u8 = 11;
    pub const SETATTR: u8 = 12;
    pub const READDIR: u8 = 13;
    pub const STATFS: u8 = 14;
    pub const RELEASE: u8 = 15;
    pub const MOUNT_ROOT: u8 = 16;
    pub const REVALIDATE: u8 = 17;
    pub const ADD_ROOT: u8 = 18;
}

fn time_enc(w: &mut W, t: Option<Time>) {
    match t {
        None => {
            w.u8(0);
        }
        Some(Time::Now) => {
            w.u8(1);
        }
        Some(Time::At(s, n)) => {
            w.u8(2).i64(s).i64(n);
        }
    }
}

fn time_dec(r: &mut R) -> Result<Option<Time>, Errno> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(Time::Now),
        2 => Some(Time::At(r.i64()?, r.i64()?)),
        _ => return Err(libc::EINVAL),
    })
}

fn opt_u32(w: &mut W, v: Option<u32>) {
    match v {
        None => {
            w.u8(0);
        }
        Some(x) => {
            w.u8(1).u32(x);
        }
    }
}

fn opt_u32_dec(r: &mut R) -> Result<Option<u32>, Errno> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(r.u32()?),
        _ => return Err(libc::EINVAL),
    })
}

impl Request {
    pub fn encode(&self, tag: u32) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(64));
        w.u32(tag);
        match self {
            Request::Walk { dir, name } => w.u8(op::WALK).u64(*dir).bytes(name),
            Request::Stat { fid } => w.u8(op::STAT).u64(*fid),
            Request::Open { fid, flags } => w.u8(op::OPEN).u64(*fid).i32(*flags),
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => w
                .u8(op::CREATE)
                .u64(*dir)
                .bytes(name)
                .i32(*flags)
                .u32(*mode)
                .u32(*uid)
                .u32(*gid),
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => w
                .u8(op::MKDIR)
                .u64(*dir)
                .bytes(name)
                .u32(*mode)
                .u32(*uid)
                .u32(*gid),
            Request::Mknod {
                dir,
                name,
                mode,
                uid,
                gid,
            } => w
                .u8(op::MKNOD)
                .u64(*dir)
                .bytes(name)
                .u32(*mode)
                .u32(*uid)
                .u32(*gid),
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => w
                .u8(op::SYMLINK)
                .u64(*dir)
                .bytes(name)
                .bytes(target)
                .u32(*uid)
                .u32(*gid),
            Request::Link { target, dir, name } => {
                w.u8(op::LINK).u64(*target).u64(*dir).bytes(name)
            }
            Request::Unlink { dir, name, flags } => {
                w.u8(op::UNLINK).u64(*dir).bytes(name).i32(*flags)
            }
            Request::Rename {
                old_dir,
                old,
                new_dir,
                new,
                flags,
            } => w
                .u8(op::RENAME)
                .u64(*old_dir)
                .bytes(old)
                .u64(*new_dir)
                .bytes(new)
                .u32(*flags),
            Request::Readlink { fid } => w.u8(op::READLINK).u64(*fid),
            Request::SetAttr { fid, attr } => {
                w.u8(op::SETATTR).u64(*fid);
                opt_u32(&mut w, attr.mode);
                opt_u32(&mut w, attr.uid);
                opt_u32(&mut w, attr.gid);
                match attr.size {
                    None => w.u8(0),
                    Some(s) => w.u8(1).u64(s),
                };
                time_enc(&mut w, attr.atime);
                time_enc(&mut w, attr.mtime);
                &mut w
            }
            Request::Readdir { fid, offset } => w.u8(op::READDIR).u64(*fid).u32(*offset),
            Request::Statfs { fid } => w.u8(op::STATFS).u64(*fid),
            Request::Release { fid } => w.u8(op::RELEASE).u64(*fid),
            Request::MountRoot { index } => w.u8(op::MOUNT_ROOT).u32(*index),
            Request::AddRoot => w.u8(op::ADD_ROOT),
            Request::Revalidate {
                dir,
                name,
                dev,
                ino,
            } => w
                .u8(op::REVALIDATE)
                .u64(*dir)
                .bytes(name)
                .u64(*dev)
                .u64(*ino),
        };
        w.0
    }

    /// Decodes a request; returns its tag (if it could be read) with the result.
    pub fn decode(b: &[u8]) -> (Option<u32>, Result<Request, Errno>) {
        let mut r = R::new(b);
        let Ok(tag) = r.u32() else {
            return (None, Err(libc::EINVAL));
        };
        (Some(tag), Self::decode_body(&mut r))
    }

    fn decode_body(r: &mut R) -> Result<Request, Errno> {
        let req = match r.u8()? {
            op::WALK => Request::Walk {
                dir: r.u64()?,
                name: r.name()?,
            },
            op::STAT => Request::Stat { fid: r.u64()? },
            op::OPEN => Request::Open {
                fid: r.u64()?,
                flags: r.i32()?,
            },
            op::CREATE => Request::Create {
                dir: r.u64()?,
                name: r.name()?,
                flags: r.i32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::MKDIR => Request::Mkdir {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::MKNOD => Request::Mknod {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::SYMLINK => Request::Symlink {
                dir: r.u64()?,
                name: r.name()?,
                target: r.bytes(MAX_TARGET)?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::LINK => Request::Link {
                target: r.u64()?,
                dir: r.u64()?,
                name: r.name()?,
            },
            op::UNLINK => Request::Unlink {
                dir: r.u64()?,
                name: r.name()?,
                flags: r.i32()?,
            },
            op::RENAME => Request::Rename {
                old_dir: r.u64()?,
                old: r.name()?,
                new_dir: r.u64()?,
                new: r.name()?,
                flags: r.u32()?,
            },
            op::READLINK => Request::Readlink { fid: r.u64()? },
            op::SETATTR => {
                let fid = r.u64()?;
                let mode = opt_u32_dec(r)?;
                let uid = opt_u32_dec(r)?;
                let gid = opt_u32_dec(r)?;
                let size = match r.u8()? {
                    0 => None,
                    1 => Some(r.u64()?),
                    _ => return Err(libc::EINVAL),
                };
                let atime = time_dec(r)?;
                let mtime = time_dec(r)?;
                Request::SetAttr {
                    fid,
                    attr: SetAttr {
                        mode,
                        uid,
                        gid,
                        size,
                        atime,
                        mtime,
                    },
                }
            }
            op::READDIR => Request::Readdir {
                fid: r.u64()?,
                offset: r.u32()?,
            },
            op::STATFS => Request::Statfs { fid: r.u64()? },
            op::RELEASE => Request::Release { fid: r.u64()? },
            op::MOUNT_ROOT => Request::MountRoot { index: r.u32()? },
            op::ADD_ROOT => Request::AddRoot,
            op::REVALIDATE => Request::Revalidate {
                dir: r.u64()?,
                name: r.name()?,
                dev: r.u64()?,
                ino: r.u64()?,
            },
            _ => return Err(libc::ENOSYS),
        };
        r.end()?;
        Ok(req)
    }
}

mod kind {
    pub const DONE: u8 = 0;
    pub const WALKED: u8 = 1;
    pub const STAT: u8 = 2;
    pub const CREATED: u8 = 3;
    pub const TARGET: u8 = 4;
    pub const ENTRIES: u8 = 5;
    pub const STATFS: u8 = 6;
    pub const MOUNT: u8 = 7;
}

impl Reply {
    pub fn encode(tag: u32, r: &Result<Reply, Errno>) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(256));
        w.u32(tag);
        match r {
            Err(e) => {
                w.i32(*e);
            }
            Ok(rep) => {
                w.i32(0);
                match rep {
                    Reply::Done => {
                        w.u8(kind::DONE);
                    }
                    Reply::Walked { fid, stat } => {
                        w.u8(kind::WALKED).u64(*fid).raw(&stat.0);
                    }
                    Reply::Stat(s) => {
                        w.u8(kind::STAT).raw(&s.0);
                    }
                    Reply::Created { fid, stat } => {
                        w.u8(kind::CREATED).u64(*fid).raw(&stat.0);
                    }
                    Reply::Target(t) => {
                        w.u8(kind::TARGET).bytes(t);
                    }
                    Reply::Entries { entries, more } => {
                        w.u8(kind::ENTRIES)
                            .u8(*more as u8)
                            .u32(entries.len() as u32);
                        for e in entries {
                            w.u64(e.ino).u8(e.kind).bytes(&e.name);
                        }
                    }
                    Reply::Statfs(s) => {
                        w.u8(kind::STATFS).raw(&s.0);
                    }
                    Reply::Mount { dest } => {
                        w.u8(kind::MOUNT).bytes(dest);
                    }
                }
            }
        }
        w.0
    }

    /// Size an Entries reply grows by for `e`.
    pub fn entry_size(e: &Dirent) -> usize {
        8 + 1 + 4 + e.name.len()
    }

    pub fn decode(b: &[u8]) -> (Option<u32>, Result<Reply, Errno>) {
        let mut r = R::new(b);
        let Ok(tag) = r.u32() else {
            return (None, Err(libc::EIO));
        };
        (Some(tag), Self::decode_body(&mut r))
    }

    fn decode_body(r: &mut R) -> Result<Reply, Errno> {
        let errno = r.i32()?;
        if errno != 0 {
            return Err(if errno > 0 { errno } else { libc::EIO });
        }
        let stat = |r: &mut R| -> Result<Stat, Errno> {
            Ok(Stat(
                r.take(std::mem::size_of::<libc::stat>())?
                    .try_into()
                    .unwrap(),
            ))
        };
        let rep = match r.u8()? {
            kind::DONE => Reply::Done,
            kind::WALKED => Reply::Walked {
                fid: r.u64()?,
                stat: stat(r)?,
            },
            kind::STAT => Reply::Stat(stat(r)?),
            kind::CREATED => Reply::Created {
                fid: r.u64()?,
                stat: stat(r)?,
            },
            kind::TARGET => Reply::Target(r.bytes(MAX_TARGET)?),
            kind::ENTRIES => {
                let more = r.u8()? != 0;
                let n = r.u32()? as usize;
                if n > MAX_MESSAGE / 13 {
                    return Err(libc::EINVAL);
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(Dirent {
                        ino: r.u64()?,
                        kind: r.u8()?,
                        name: r.name()?,
                    });
                }
                Reply::Entries { entries, more }
            }
            kind::STATFS => Reply::Statfs(Statfs(
                r.take(std::mem::size_of::<libc::statfs>())?
                    .try_into()
                    .unwrap(),
            )),
            kind::MOUNT => Reply::Mount {
                dest: r.bytes(MAX_TARGET)?,
            },
            _ => return Err(libc::EIO),
        };
        r.end()?;
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Walk {
                dir: 1,
                name: b"etc".to_vec(),
            },
            Request::Stat { fid: 7 },
            Request::Open {
                fid: 7,
                flags: libc::O_RDWR,
            },
            Request::Create {
                dir: 1,
                name: b"f".to_vec(),
                flags: 1,
                mode: 0o644,
                uid: 1000,
                gid: 1000,
            },
            Request::Mkdir {
                dir: 1,
                name: b"d".to_vec(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            Request::Mknod {
                dir: 1,
                name: b"p".to_vec(),
                mode: libc::S_IFIFO | 0o600,
                uid: 0,
                gid: 0,
            },
            Request::Symlink {
                dir: 1,
                name: b"l".to_vec(),
                target: b"/x/y".to_vec(),
                uid: 1,
                gid: 2,
            },
            Request::Link {
                target: 3,
                dir: 1,
                name: b"h".to_vec(),
            },
            Request::Unlink {
                dir: 1,
                name: b"f".to_vec(),
                flags: libc::AT_REMOVEDIR,
            },
            Request::Rename {
                old_dir: 1,
                old: b"a".to_vec(),
                new_dir: 2,
                new: b"b".to_vec(),
                flags: 1,
            },
            Request::Readlink { fid: 4 },
            Request::SetAttr {
                fid: 4,
                attr: SetAttr {
                    mode: Some(0o600),
                    uid: None,
                    gid: Some(5),
                    size: Some(10),
                    atime: Some(Time::Now),
                    mtime: Some(Time::At(5, 6)),
                },
            },
            Request::Readdir { fid: 1, offset: 10 },
            Request::Statfs { fid: 1 },
            Request::Release { fid: 9 },
        ]
    }

    #[test]
    fn requests_round_trip() {
        for (i, r) in all_requests().into_iter().enumerate() {
            let b = r.encode(i as u32);
            assert_eq!(Request::decode(&b), (Some(i as u32), Ok(r)));
        }
    }

    #[test]
    fn truncated_and_garbage_requests_are_errors() {
        for r in all_requests() {
            let b = r.encode(1);
            for cut in 0..b.len() {
                assert!(Request::decode(&b[..cut]).1.is_err());
            }
            let mut long = b.clone();
            long.push(0);
            assert!(Request::decode(&long).1.is_err(), "trailing byte accepted");
        }
        // A name length far beyond the message.
        let mut b = vec![0, 0, 0, 0, 1];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&b).1, Err(libc::ENAMETOOLONG));
        assert_eq!(Request::decode(&[0, 0, 0, 0, 200]).1, Err(libc::ENOSYS));
    }

    #[test]
    fn replies_round_trip() {
        let st = Stat::from_libc(&unsafe { std::mem::zeroed() });
        let reps = vec![
            Ok(Reply::Done),
            Ok(Reply::Walked { fid: 3, stat: st }),
            Ok(Reply::Stat(st)),
            Ok(Reply::Created { fid: 4, stat: st }),
            Ok(Reply::Target(b"/a/b".to_vec())),
            Ok(Reply::Entries {
                entries: vec![Dirent {
                    ino: 1,
                    kind: 4,
                    name: b"x".to_vec(),
                }],
                more: true,
            }),
            Ok(Reply::Statfs(Statfs::from_libc(&unsafe {
                std::mem::zeroed()
            }))),
            Err(libc::ENOENT),
        ];
        for r in reps {
            let b = Reply::encode(9, &r);
            assert_eq!(Reply::decode(&b), (Some(9), r));
        }
    }
}
