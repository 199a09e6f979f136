//! The gofer's request loop and the kernel's client for it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::protocol::{MAX_MESSAGE, Reply, Request, Stat, Statfs};
use crate::server::FileServer;
use crate::{Dirent, Errno, Fid, FileService, GResult, SetAttr};

/// Serves one request: the reply and, for open/create, the descriptor to donate.
pub fn handle(
    s: &FileServer,
    listings: &RefCell<HashMap<Fid, Vec<Dirent>>>,
    req: Request,
    sent: Option<OwnedFd>,
) -> (Result<Reply, Errno>, Option<OwnedFd>) {
    let done = |r: GResult<()>| r.map(|_| Reply::Done);
    match req {
        Request::AddRoot => (
            match sent {
                Some(fd) => s.add_root(fd).map(|(fid, st)| Reply::Walked {
                    fid,
                    stat: Stat::from_libc(&st),
                }),
                None => Err(libc::EBADF),
            },
            None,
        ),
        Request::Walk { dir, name } => (
            s.walk(dir, &name).map(|(fid, st)| Reply::Walked {
                fid,
                stat: Stat::from_libc(&st),
            }),
            None,
        ),
        Request::Stat { fid } => (
            s.stat(fid).map(|st| Reply::Stat(Stat::from_libc(&st))),
            None,
        ),
        Request::Open { fid, flags } => match s.open(fid, flags) {
            Ok(fd) => (Ok(Reply::Done), Some(fd)),
            Err(e) => (Err(e), None),
        },
        Request::Create {
            dir,
            name,
            flags,
            mode,
            uid,
            gid,
        } => match s.create(dir, &name, flags, mode, uid, gid) {
            Ok((fid, st, fd)) => (
                Ok(Reply::Created {
                    fid,
                    stat: Stat::from_libc(&st),
                }),
                Some(fd),
            ),
            Err(e) => (Err(e), None),
        },
        Request::Mkdir {
            dir,
            name,
            mode,
            uid,
            gid,
        } => (done(s.mkdir(dir, &name, mode, uid, gid)), None),
        Request::Mknod {
            dir,
            name,
            mode,
            uid,
            gid,
        } => (done(s.mknod(dir, &name, mode, uid, gid)), None),
        Request::Symlink {
            dir,
            name,
            target,
            uid,
            gid,
        } => (done(s.symlink(dir, &name, &target, uid, gid)), None),
        Request::Link { target, dir, name } => (done(s.link(target, dir, &name)), None),
        Request::Unlink { dir, name, flags } => (done(s.unlink(dir, &name, flags)), None),
        Request::Rename {
            old_dir,
            old,
            new_dir,
            new,
            flags,
        } => (done(s.rename(old_dir, &old, new_dir, &new, flags)), None),
        Request::Readlink { fid } => (s.readlink(fid).map(Reply::Target), None),
        Request::SetAttr { fid, attr } => (done(s.setattr(fid, &attr)), None),
        Request::Readdir { fid, offset } => {
            let mut cache = listings.borrow_mut();
            if offset == 0 || !cache.contains_key(&fid) {
                match s.readdir(fid) {
                    Ok(l) => {
                        cache.insert(fid, l);
                    }
                    Err(e) => return (Err(e), None),
                }
            }
            let list = &cache[&fid];
            let mut size = 64;
            let mut entries = Vec::new();
            for e in list.iter().skip(offset as usize) {
                size += Reply::entry_size(e);
                if size > MAX_MESSAGE - 64 {
                    break;
                }
                entries.push(e.clone());
            }
            let more = offset as usize + entries.len() < list.len();
            if !more {
                cache.remove(&fid);
            }
            (Ok(Reply::Entries { entries, more }), None)
        }
        Request::Statfs { fid } => (
            s.statfs(fid).map(|v| Reply::Statfs(Statfs::from_libc(&v))),
            None,
        ),
        Request::Revalidate {
            dir,
            name,
            dev,
            ino,
        } => (
            if s.revalidate(dir, &name, (dev, ino)) {
                Ok(Reply::Done)
            } else {
                Err(libc::ESTALE)
            },
            None,
        ),
        Request::MountRoot { index } => match s.mount_root(index) {
            Ok((dest, fd)) => (Ok(Reply::Mount { dest }), Some(fd)),
            Err(e) => (Err(e), None),
        },
        Request::Release { fid } => {
            listings.borrow_mut().remove(&fid);
            s.release(fid);
            (Ok(Reply::Done), None)
        }
    }
}

fn send_msg(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> std::io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u8; 64];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: building one SCM_RIGHTS header in our buffer.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            *(libc::CMSG_DATA(c) as *mut RawFd) = fd;
        }
    }
    // SAFETY: sendmsg with a fully built header.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one message (and at most one descriptor).
fn recv_msg(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cbuf = [0u8; 64];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = cbuf.len();
    loop {
        // SAFETY: recvmsg into our buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        let mut fd = None;
        // SAFETY: walking control messages the kernel wrote; extra descriptors are closed.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    let data = libc::CMSG_DATA(c) as *const RawFd;
                    for i in 0..count {
                        let f = OwnedFd::from_raw_fd(*data.add(i));
                        if fd.is_none() {
                            fd = Some(f);
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        return Ok((n as usize, fd));
    }
}

/// The gofer's main loop: serves until the kernel closes its end.
pub fn serve(s: &FileServer, sock: RawFd) {
    let listings = RefCell::new(HashMap::new());
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, stray) = match recv_msg(sock, &mut buf) {
            Ok((0, _)) | Err(_) => return,
            Ok(v) => v,
        };
        // Only AddRoot carries a descriptor; any other is dropped.
        let (tag, req) = Request::decode(&buf[..n]);
        let Some(tag) = tag else {
            continue;
        };
        let (reply, fd) = match req {
            Ok(r) => handle(s, &listings, r, stray),
            Err(e) => (Err(e), None),
        };
        let bytes = Reply::encode(tag, &reply);
        if send_msg(sock, &bytes, fd.as_ref().map(|f| f.as_raw_fd())).is_err() {
            return;
        }
    }
}

/// The kernel's side: a [`FileService`] over the gofer socket. Calls are
/// synchronous; the kernel is single-threaded.
pub struct Client {
    sock: OwnedFd,
    tag: Cell<u32>,
    buf: RefCell<Vec<u8>>,
}

impl Client {
    pub fn new(sock: OwnedFd) -> Client {
        Client {
            sock,
            tag: Cell::new(0),
            buf: RefCell::new(vec![0u8; MAX_MESSAGE]),
        }
    }

    fn call(&self, req: Request) -> GResult<(Reply, Option<OwnedFd>)> {
        self.call_with(req, None)
    }

    fn call_with(&self, req: Request, sent: Option<RawFd>) -> GResult<(Reply, Option<OwnedFd>)> {
        let tag = self.tag.get().wrapping_add(1);
        self.tag.set(tag);
        send_msg(self.sock.as_raw_fd(), &req.encode(tag), sent).map_err(|_| libc::EIO)?;
        let mut buf = self.buf.borrow_mut();
        let (n, fd) = recv_msg(self.sock.as_raw_fd(), &mut buf).map_err(|_| libc::EIO)?;
        if n == 0 {
            return Err(libc::EIO);
        }
        let (rtag, rep) = Reply::decode(&buf[..n]);
        if rtag != Some(tag) {
            return Err(libc::EIO);
        }
        rep.map(|r| (r, fd))
    }

    fn done(&self, req: Request) -> GResult<()> {
        self.call(req).map(|_| ())
    }
}

impl FileService for Client {
    fn revalidate(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> bool {
        self.done(Request::Revalidate {
            dir,
            name: name.to_vec(),
            dev: id.0,
            ino: id.1,
        })
        .is_ok()
    }
    fn add_root(&self, fd: OwnedFd) -> GResult<(Fid, libc::stat)> {
        match self.call_with(Request::AddRoot, Some(fd.as_raw_fd()))?.0 {
            Reply::Walked { fid, stat } => Ok((fid, stat.to_libc())),
            _ => Err(libc::EIO),
        }
    }
    fn mount_root(&self, index: u32) -> GResult<(Vec<u8>, OwnedFd)> {
        match self.call(Request::MountRoot { index })? {
            (Reply::Mount { dest }, Some(fd)) => Ok((dest, fd)),
            _ => Err(libc::EIO),
        }
    }
    fn stat(&self, fid: Fid) -> GResult<libc::stat> {
        match self.call(Request::Stat { fid })?.0 {
            Reply::Stat(s) => Ok(s.to_libc()),
            _ => Err(libc::EIO),
        }
    }
    fn walk(&self, dir: Fid, name: &[u8]) -> GResult<(Fid, libc::stat)> {
        match self
            .call(Request::Walk {
                dir,
                name: name.to_vec(),
            })?
            .0
        {
            Reply::Walked { fid, stat } => Ok((fid, stat.to_libc())),
            _ => Err(libc::EIO),
        }
    }
    fn release(&self, fid: Fid) {
        let _ = self.done(Request::Release { fid });
    }
    fn open(&self, fid: Fid, flags: i32) -> GResult<OwnedFd> {
        self.call(Request::Open { fid, flags })?.1.ok_or(libc::EIO)
    }
    fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> GResult<(Fid, libc::stat, OwnedFd)> {
        match self.call(Request::Create {
            dir,
            name: name.to_vec(),
            flags,
            mode,
            uid,
            gid,
        })? {
            (Reply::Created { fid, stat }, Some(fd)) => Ok((fid, stat.to_libc(), fd)),
            _ => Err(libc::EIO),
        }
    }
    fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        self.done(Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        })
    }
    fn mknod(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        self.done(Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        })
    }
    fn symlink(&self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> GResult<()> {
        self.done(Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            uid,
            gid,
        })
    }
    fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> GResult<()> {
        self.done(Request::Link {
            target,
            dir,
            name: name.to_vec(),
        })
    }
    fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> GResult<()> {
        self.done(Request::Unlink {
            dir,
            name: name.to_vec(),
            flags,
        })
    }
    fn rename(
        &self,
        old_dir: Fid,
        old: &[u8],
        new_dir: Fid,
        new: &[u8],
        flags: u32,
    ) -> GResult<()> {
        self.done(Request::Rename {
            old_dir,
            old: old.to_vec(),
            new_dir,
            new: new.to_vec(),
            flags,
        })
    }
    fn readlink(&self, fid: Fid) -> GResult<Vec<u8>> {
        match self.call(Request::Readlink { fid })?.0 {
            Reply::Target(t) => Ok(t),
            _ => Err(libc::EIO),
        }
    }
    fn setattr(&self, fid: Fid, a: &SetAttr) -> GResult<()> {
        self.done(Request::SetAttr {
            fid,
            attr: a.clone(),
        })
    }
    fn readdir(&self, fid: Fid) -> GResult<Vec<Dirent>> {
        let mut out = Vec::new();
        loop {
            match self
                .call(Request::Readdir {
                    fid,
                    offset: out.len() as u32,
                })?
                .0
            {
                Reply::Entries { entries, more } => {
                    let got = entries.len();
                    out.extend(entries);
                    if !more || got == 0 {
                        return Ok(out);
                    }
                }
                _ => return Err(libc::EIO),
            }
        }
    }
    fn statfs(&self, fid: Fid) -> GResult<libc::statfs> {
        match self.call(Request::Statfs { fid })?.0 {
            Reply::Statfs(s) => Ok(s.to_libc()),
            _ => Err(libc::EIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_over_a_socket() {
        let dir = std::env::temp_dir().join(format!("gofer-rpc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for i in 0..3000 {
            std::fs::write(
                dir.join("sub")
                    .join(format!("file-with-a-longish-name-{i:05}")),
                "x",
            )
            .unwrap();
        }
        let mut fds = [0; 2];
        assert_eq!(
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                )
            },
            0
        );
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let root = dir.clone();
        let t = std::thread::spawn(move || {
            let s = FileServer::new(&root).unwrap();
            serve(&s, b.as_raw_fd());
        });
        let c = Client::new(a);
        let (sub, st) = c.walk(c.root(), b"sub").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
        assert_eq!(
            c.readdir(sub).unwrap().len(),
            3000,
            "listing spans several messages"
        );
        let (f, _, fd) = c.create(sub, b"new", libc::O_RDWR, 0o644, 0, 0).unwrap();
        assert_eq!(
            unsafe { libc::write(fd.as_raw_fd(), b"hi".as_ptr() as *const _, 2) },
            2
        );
        assert_eq!(c.stat(f).unwrap().st_size, 2);
        assert_eq!(c.walk(sub, b"..").unwrap_err(), libc::EINVAL);
        assert_eq!(c.walk(sub, b"missing").unwrap_err(), libc::ENOENT);
        drop(c);
        t.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
