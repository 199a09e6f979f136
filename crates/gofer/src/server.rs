//! The file operations, on descriptors the server holds.
//!
//! Every operation takes a fid (an `O_PATH` descriptor held here) and at
//! most one plain name; names are checked to be a single component that
//! is not `.` or `..`, and walks use `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS`, so nothing outside the
//! directory the fid names can be reached. Files are reopened through
//! `/proc/self/fd/N` of the fid itself (the exact inode walked to, not a
//! path that could have been swapped since). Only regular files and
//! directories are ever opened: never a host device node.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::{Dirent, Errno, Fid, GResult, SetAttr, Time};

pub const ROOT_FID: Fid = 1;

pub struct FileServer {
    fids: RefCell<HashMap<Fid, OwnedFd>>,
    next: Cell<Fid>,
    /// `/proc/self/fd` of this process, for reopening fids.
    proc_fds: OwnedFd,
    /// Mount roots for direct access: destination and a detached clone.
    mounts: Vec<(Vec<u8>, OwnedFd)>,
}

/// open_tree(2) flags: a detached copy of the mount (not its submounts).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const SYS_OPEN_TREE: libc::c_long = 428;

/// A detached clone of the mount at `path` (a directory): `..` from its
/// root stays there, whatever the path was. Needs CAP_SYS_ADMIN in the
/// mount namespace's user namespace (the gofer has it until it confines
/// itself).
fn clone_mount(path: &[u8]) -> std::io::Result<OwnedFd> {
    let c = CString::new(path)?;
    // SAFETY: open_tree with a valid path.
    let fd = unsafe {
        libc::syscall(
            SYS_OPEN_TREE,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    if fstat(fd.as_raw_fd())
        .map_err(std::io::Error::from_raw_os_error)?
        .st_mode
        & libc::S_IFMT
        != libc::S_IFDIR
    {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok(fd)
}

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn cvt(r: libc::c_int) -> GResult<libc::c_int> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

fn cstr(b: &[u8]) -> GResult<CString> {
    CString::new(b).map_err(|_| libc::EINVAL)
}

/// A name must be one path component.
pub fn check_name(name: &[u8]) -> GResult<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(if name.is_empty() {
            libc::ENOENT
        } else {
            libc::ENAMETOOLONG
        });
    }
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(libc::EINVAL);
    }
    Ok(())
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

fn openat2(dir: RawFd, name: &CString, flags: i32, mode: u32) -> GResult<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: mode as u64,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: openat2 with a valid how struct.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn fstat(fd: RawFd) -> GResult<libc::stat> {
    // SAFETY: stat out-pointer is valid.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        cvt(libc::fstatat(
            fd,
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        ))?;
        Ok(st)
    }
}

impl FileServer {
    /// Serves the tree under `root`.
    pub fn new(root: &Path) -> std::io::Result<FileServer> {
        let open = |p: &Path, flags: i32| -> std::io::Result<OwnedFd> {
            let c = CString::new(p.as_os_str().as_encoded_bytes())?;
            // SAFETY: open with a valid path.
            let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let root_fd = open(root, libc::O_PATH | libc::O_DIRECTORY)?;
        let proc_fds = open(Path::new("/proc/self/fd"), libc::O_PATH | libc::O_DIRECTORY)?;
        let mut fids = HashMap::new();
        fids.insert(ROOT_FID, root_fd);
        Ok(FileServer {
            fids: RefCell::new(fids),
            next: Cell::new(ROOT_FID + 1),
            proc_fds,
            mounts: Vec::new(),
        })
    }

    /// Prepares the mounts at `dests` (directories; `/` is the rootfs) for
    /// direct access by the kernel; returns the ones it could not (with
    /// why), which the kernel then reaches through the gofer.
    pub fn offer_mounts(&mut self, dests: &[Vec<u8>]) -> Vec<(Vec<u8>, std::io::Error)> {
        let mut failed = Vec::new();
        for d in dests {
            match clone_mount(d) {
                Ok(fd) => self.mounts.push((d.clone(), fd)),
                Err(e) => failed.push((d.clone(), e)),
            }
        }
        failed
    }

    /// See [`crate::FileService::revalidate`].
    pub fn revalidate(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> bool {
        let (Ok(d), Ok(n)) = (self.fd(dir), cstr(name)) else {
            return false;
        };
        if check_name(name).is_err() {
            return false;
        }
        // SAFETY: stat out-pointer is valid.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstatat(d, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
                && (st.st_dev, st.st_ino) == id
        }
    }

    /// See [`crate::FileService::mount_root`].
    pub fn mount_root(&self, index: u32) -> GResult<(Vec<u8>, OwnedFd)> {
        let (dest, fd) = self.mounts.get(index as usize).ok_or(libc::ENOENT)?;
        Ok((dest.clone(), fd.try_clone().map_err(|_| libc::EMFILE)?))
    }

    /// See [`crate::FileService::add_root`]: `fd` becomes a fid like the
    /// root's; walks stay beneath it as they stay beneath the root.
    pub fn add_root(&self, fd: OwnedFd) -> GResult<(Fid, libc::stat)> {
        let st = fstat(fd.as_raw_fd())?;
        Ok((self.add(fd), st))
    }

    fn fd(&self, fid: Fid) -> GResult<RawFd> {
        self.fids
            .borrow()
            .get(&fid)
            .map(|f| f.as_raw_fd())
            .ok_or(libc::EBADF)
    }

    fn add(&self, fd: OwnedFd) -> Fid {
        let fid = self.next.get();
        self.next.set(fid + 1);
        self.fids.borrow_mut().insert(fid, fd);
        fid
    }

    /// Reopens the object a fid holds, with `flags`.
    fn reopen(&self, fd: RawFd, flags: i32) -> GResult<OwnedFd> {
        let name = CString::new(fd.to_string()).unwrap();
        // SAFETY: openat relative to our /proc/self/fd directory.
        let r = unsafe {
            libc::openat(
                self.proc_fds.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if r < 0 {
            return Err(errno());
        }
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }

    fn proc_name(fd: RawFd) -> CString {
        CString::new(fd.to_string()).unwrap()
    }

    pub fn stat(&self, fid: Fid) -> GResult<libc::stat> {
        fstat(self.fd(fid)?)
    }

    pub fn walk(&self, dir: Fid, name: &[u8]) -> GResult<(Fid, libc::stat)> {
        check_name(name)?;
        let fd = openat2(self.fd(dir)?, &cstr(name)?, libc::O_PATH, 0)?;
        let st = fstat(fd.as_raw_fd())?;
        Ok((self.add(fd), st))
    }

    pub fn release(&self, fid: Fid) {
        if fid != ROOT_FID {
            self.fids.borrow_mut().remove(&fid);
        }
    }

    /// Opens a regular file or directory for I/O.
    pub fn open(&self, fid: Fid, flags: i32) -> GResult<OwnedFd> {
        let fd = self.fd(fid)?;
        let st = fstat(fd)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR if flags & libc::O_ACCMODE == libc::O_RDONLY => {}
            libc::S_IFDIR => return Err(libc::EISDIR),
            libc::S_IFLNK => return Err(libc::ELOOP),
            _ => return Err(libc::ENXIO),
        }
        let allowed = libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_DIRECTORY
            | libc::O_DSYNC
            | libc::O_SYNC
            | libc::O_NOATIME
            | libc::O_LARGEFILE;
        let f = self.reopen(fd, flags & allowed)?;
        let st2 = fstat(f.as_raw_fd())?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
            return Err(libc::ESTALE);
        }
        Ok(f)
    }

    /// Creates and opens a regular file owned by `uid:gid`.
    pub fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> GResult<(Fid, libc::stat, OwnedFd)> {
        check_name(name)?;
        let allowed = libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_EXCL
            | libc::O_DSYNC
            | libc::O_SYNC;
        let f = openat2(
            self.fd(dir)?,
            &cstr(name)?,
            (flags & allowed) | libc::O_CREAT,
            mode & 0o7777,
        )?;
        crate::direct::chown_created(f.as_raw_fd(), uid, gid, mode, |fd, mode| {
            // SAFETY: fchmod on our own descriptor.
            unsafe { libc::fchmod(fd, mode) };
        });
        let path = self.reopen(f.as_raw_fd(), libc::O_PATH)?;
        let st = fstat(f.as_raw_fd())?;
        Ok((self.add(path), st, f))
    }

    fn chown_new(&self, dir: RawFd, name: &CString, uid: u32, gid: u32) {
        // SAFETY: fchownat relative to a directory we hold.
        unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) };
    }

    pub fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        cvt(unsafe { libc::mkdirat(d, n.as_ptr(), mode & 0o7777) })?;
        self.chown_new(d, &n, uid, gid);
        Ok(())
    }

    /// Regular files, FIFOs and sockets only: never device nodes.
    pub fn mknod(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        match mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | 0 => {}
            _ => return Err(libc::EPERM),
        }
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        cvt(unsafe { libc::mknodat(d, n.as_ptr(), mode, 0) })?;
        self.chown_new(d, &n, uid, gid);
        Ok(())
    }

    pub fn symlink(&self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        let t = cstr(target)?;
        cvt(unsafe { libc::symlinkat(t.as_ptr(), d, n.as_ptr()) })?;
        self.chown_new(d, &n, uid, gid);
        Ok(())
    }

    /// Hard link to the object `target` holds.
    pub fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> GResult<()> {
        check_name(name)?;
        let t = self.fd(target)?;
        if fstat(t)?.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(libc::EPERM);
        }
        let n = cstr(name)?;
        let p = Self::proc_name(t);
        cvt(unsafe {
            libc::linkat(
                self.proc_fds.as_raw_fd(),
                p.as_ptr(),
                self.fd(dir)?,
                n.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        })?;
        Ok(())
    }

    /// unlink or, with AT_REMOVEDIR, rmdir.
    pub fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> GResult<()> {
        check_name(name)?;
        let n = cstr(name)?;
        cvt(unsafe { libc::unlinkat(self.fd(dir)?, n.as_ptr(), flags & libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    pub fn rename(
        &self,
        old_dir: Fid,
        old: &[u8],
        new_dir: Fid,
        new: &[u8],
        flags: u32,
    ) -> GResult<()> {
        check_name(old)?;
        check_name(new)?;
        let (o, n) = (cstr(old)?, cstr(new)?);
        // Only the flags that keep a rename within these directories.
        let flags = flags & (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE);
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.fd(old_dir)?,
                o.as_ptr(),
                self.fd(new_dir)?,
                n.as_ptr(),
                flags,
            )
        };
        if r < 0 {
            return Err(errno());
        }
        Ok(())
    }

    pub fn readlink(&self, fid: Fid) -> GResult<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let n = unsafe {
            libc::readlinkat(
                self.fd(fid)?,
                c"".as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
            )
        };
        if n < 0 {
            return Err(errno());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    pub fn setattr(&self, fid: Fid, a: &SetAttr) -> GResult<()> {
        let fd = self.fd(fid)?;
        let p = Self::proc_name(fd);
        let proc = self.proc_fds.as_raw_fd();
        if let Some(size) = a.size {
            let w = self.open(fid, libc::O_WRONLY)?;
            cvt(unsafe { libc::ftruncate(w.as_raw_fd(), size as i64) })?;
        }
        if a.uid.is_some() || a.gid.is_some() {
            cvt(unsafe {
                libc::fchownat(
                    fd,
                    c"".as_ptr(),
                    a.uid.unwrap_or(u32::MAX),
                    a.gid.unwrap_or(u32::MAX),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        if let Some(mode) = a.mode {
            if fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(libc::EOPNOTSUPP);
            }
            cvt(unsafe { libc::fchmodat(proc, p.as_ptr(), mode & 0o7777, 0) })?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = |t: Option<Time>| match t {
                None => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
                Some(Time::Now) => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_NOW,
                },
                Some(Time::At(s, n)) => libc::timespec {
                    tv_sec: s,
                    tv_nsec: n,
                },
            };
            let times = [ts(a.atime), ts(a.mtime)];
            if fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                // Times of the link itself: through the fid with AT_EMPTY_PATH.
                cvt(unsafe {
                    libc::utimensat(
                        fd,
                        c"".as_ptr(),
                        times.as_ptr(),
                        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
            } else {
                cvt(unsafe { libc::utimensat(proc, p.as_ptr(), times.as_ptr(), 0) })?;
            }
        }
        Ok(())
    }

    pub fn readdir(&self, fid: Fid) -> GResult<Vec<Dirent>> {
        let d = self.open(fid, libc::O_RDONLY | libc::O_DIRECTORY)?;
        parse_dirents(d.as_raw_fd())
    }

    pub fn statfs(&self, fid: Fid) -> GResult<libc::statfs> {
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        cvt(unsafe { libc::fstatfs(self.fd(fid)?, &mut s) })?;
        Ok(s)
    }
}

/// Every entry of the directory open at `fd` but `.` and `..`.
pub fn parse_dirents(fd: RawFd) -> GResult<Vec<Dirent>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: getdents64 into our buffer.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(errno());
        }
        if n == 0 {
            return Ok(out);
        }
        let mut pos = 0usize;
        while pos < n as usize {
            // linux_dirent64: ino u64, off i64, reclen u16, type u8, name
            let ino = u64::from_ne_bytes(buf[pos..pos + 8].try_into().unwrap());
            let reclen = u16::from_ne_bytes(buf[pos + 16..pos + 18].try_into().unwrap()) as usize;
            let kind = buf[pos + 18];
            let name_bytes = &buf[pos + 19..pos + reclen];
            let end = name_bytes
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(name_bytes.len());
            let name = name_bytes[..end].to_vec();
            if name != b"." && name != b".." {
                out.push(Dirent { ino, kind, name });
            }
            pos += reclen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_stay_beneath_the_root() {
        let dir = std::env::temp_dir().join(format!("gofer-test-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(dir.join("secret"), "host").unwrap();
        std::fs::write(root.join("d/f"), "inside").unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("../secret", root.join("rel")).unwrap();
        let s = FileServer::new(&root).unwrap();
        let (d, st) = s.walk(ROOT_FID, b"d").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
        let (f, _) = s.walk(d, b"f").unwrap();
        let fd = s.open(f, libc::O_RDONLY).unwrap();
        let mut buf = [0u8; 16];
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, 16) };
        assert_eq!(&buf[..n as usize], b"inside");
        for bad in [&b".."[..], b".", b"d/f", b"", b"a\0b"] {
            assert!(s.walk(ROOT_FID, bad).is_err(), "{bad:?}");
        }
        // Symlinks are walked to, never through: opening them fails.
        let (l, st) = s.walk(ROOT_FID, b"abs").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(s.open(l, libc::O_RDONLY).unwrap_err(), libc::ELOOP);
        assert_eq!(s.readlink(l).unwrap(), b"/etc/passwd");
        let (l, _) = s.walk(ROOT_FID, b"rel").unwrap();
        assert!(s.open(l, libc::O_RDONLY).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
