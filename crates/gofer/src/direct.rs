//! Direct file access ("directfs", gVisor's name): the file operations of
//! [`crate::FileService`] done by the application kernel itself, on a
//! descriptor of a mount's root that the gofer donated, instead of asking
//! the gofer for each one.
//!
//! It runs inside the confined kernel, which has an empty root and no
//! /proc, so every call here is relative to a descriptor it holds and
//! names one path component:
//! - walks are `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`, and for a
//!   directory then `openat(dir, name, O_PATH | O_NOFOLLOW)`: a symlink is
//!   walked *to*, never through (the kernel's VFS resolves symlinks inside
//!   the sandbox's root), and `..` and `/` are never passed;
//! - only directories (and files the kernel created or changes the
//!   attributes of) hold an `O_PATH` descriptor: any other file is named by
//!   its parent's descriptor and its name, and checked to still be the
//!   inode the walk found whenever it is used (ESTALE if not). A walk of a
//!   file is then one host call instead of three (open, stat, close), and
//!   the walk cache of a tree costs a descriptor per directory, not per
//!   file;
//! - a file is opened for I/O from its parent's descriptor and its name,
//!   again with `O_NOFOLLOW`, and checked to be the inode the walk found
//!   (ESTALE if the name was swapped in between);
//! - the donated roots are detached clones of the mounts (`open_tree`), so
//!   even a `..` from a root stays at that root.
//!
//! The kernel's seccomp filter enforces the same shape from outside (a
//! descriptor, never `AT_FDCWD`; `O_NOFOLLOW` on every open): see
//! `crates/sandbox/src/confine/allowlist.rs`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::server::{ROOT_FID, check_name, parse_dirents};
use crate::{Dirent, Errno, Fid, FileService, GResult, SetAttr, Time};

/// What a fid names: its `O_PATH` descriptor (directories; other files
/// get one only when an operation needs it), and how to reach it again
/// for I/O (its parent's descriptor and its name; none for the root).
struct Node {
    fd: Option<Rc<OwnedFd>>,
    parent: Option<(Rc<OwnedFd>, CString)>,
    /// Device, inode and file type the walk found (an inode's type never
    /// changes).
    id: (u64, u64),
    mode: u32,
    /// `fd` is a plain read-only open of the file (not `O_PATH`), which
    /// [`FileService::open_shared`] may lend.
    readable: bool,
}

pub struct DirectFiles {
    nodes: RefCell<HashMap<Fid, Node>>,
    next: Cell<Fid>,
}

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Gives the file just created on `fd` with `mode` to `uid` and `gid`.
/// The host's chown drops the set-user-ID and set-group-ID bits, which a
/// file made with them keeps in Linux: `chmod` (the caller's way, which
/// its seccomp filter admits) sets them again. A chown the host refuses
/// (an id it does not map) leaves the file the host's: then it keeps
/// neither bit, or a user would have made a set-user-ID program of
/// another owner.
pub(crate) fn chown_created(fd: RawFd, uid: u32, gid: u32, mode: u32, chmod: impl Fn(RawFd, u32)) {
    // SAFETY: fchown on the caller's descriptor.
    let chowned = unsafe { libc::fchown(fd, uid, gid) } == 0;
    if mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
        let keep = if chowned { 0o7777 } else { 0o1777 };
        chmod(fd, mode & keep);
    }
}

fn cvt(r: libc::c_int) -> GResult<libc::c_int> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

fn cstr(b: &[u8]) -> GResult<CString> {
    CString::new(b).map_err(|_| libc::EINVAL)
}

fn openat(dir: RawFd, name: &CString, flags: i32, mode: u32) -> GResult<OwnedFd> {
    // SAFETY: openat relative to a descriptor we hold.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
            mode,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The attributes of `name` in directory `dir`, never through a symlink.
fn fstat_name(dir: RawFd, name: &CString) -> GResult<libc::stat> {
    // SAFETY: stat out-pointer is valid; a name in a directory we hold.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        cvt(libc::fstatat(
            dir,
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ))?;
        Ok(st)
    }
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

/// fchmodat2 (Linux 6.6): the mode of an `O_PATH` descriptor's object.
const SYS_FCHMODAT2: libc::c_long = 452;

impl DirectFiles {
    /// Serves the tree under `root` (a directory descriptor, `O_PATH` is
    /// enough).
    pub fn new(root: OwnedFd) -> GResult<DirectFiles> {
        let st = fstat(root.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_FID,
            Node {
                fd: Some(Rc::new(root)),
                parent: None,
                id: (st.st_dev, st.st_ino),
                mode: st.st_mode,
                readable: false,
            },
        );
        Ok(DirectFiles {
            nodes: RefCell::new(nodes),
            next: Cell::new(ROOT_FID + 1),
        })
    }

    /// The `O_PATH` descriptor of `fid`, opened now (from its parent and
    /// name, checked to be the inode the walk found) if it had none.
    fn fd(&self, fid: Fid) -> GResult<Rc<OwnedFd>> {
        let (parent, id) = {
            let nodes = self.nodes.borrow();
            let n = nodes.get(&fid).ok_or(libc::EBADF)?;
            if let Some(fd) = &n.fd {
                return Ok(fd.clone());
            }
            (n.parent.clone().ok_or(libc::EBADF)?, n.id)
        };
        let fd = openat(parent.0.as_raw_fd(), &parent.1, libc::O_PATH, 0)?;
        let st = fstat(fd.as_raw_fd())?;
        if (st.st_dev, st.st_ino) != id {
            return Err(libc::ESTALE);
        }
        let fd = Rc::new(fd);
        if let Some(n) = self.nodes.borrow_mut().get_mut(&fid) {
            n.fd = Some(fd.clone());
        }
        Ok(fd)
    }

    fn add(&self, fd: Option<OwnedFd>, parent: Rc<OwnedFd>, name: CString, st: &libc::stat) -> Fid {
        let fid = self.next.get();
        self.next.set(fid + 1);
        self.nodes.borrow_mut().insert(
            fid,
            Node {
                fd: fd.map(Rc::new),
                parent: Some((parent, name)),
                id: (st.st_dev, st.st_ino),
                mode: st.st_mode,
                readable: false,
            },
        );
        fid
    }

    /// Opens the object `fid` names for I/O with `flags`, checking it is
    /// still the inode the walk found.
    fn reopen(&self, fid: Fid, flags: i32) -> GResult<OwnedFd> {
        let (fd, parent, id, mode) = {
            let nodes = self.nodes.borrow();
            let n = nodes.get(&fid).ok_or(libc::EBADF)?;
            (n.fd.clone(), n.parent.clone(), n.id, n.mode)
        };
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        let f = match parent {
            // A directory: itself, through "." of the descriptor it holds,
            // not by its name, which a rename may have given to something
            // else.
            Some((dir, name)) if !is_dir || fd.is_none() => {
                openat(dir.as_raw_fd(), &name, flags, 0)?
            }
            // A root: itself, through ".".
            _ => openat(
                fd.ok_or(libc::EBADF)?.as_raw_fd(),
                &CString::new(".").unwrap(),
                flags,
                0,
            )?,
        };
        let st = fstat(f.as_raw_fd())?;
        if (st.st_dev, st.st_ino) != id {
            return Err(libc::ESTALE);
        }
        Ok(f)
    }

    /// Gives `fid` a descriptor of its own once it is open (`f`, opened
    /// with `flags`): the open file's attributes must stay reachable after
    /// its name is removed or replaced (fstat of an open file, `tail -F`'s
    /// check for a rotated log). A read-only open lends a duplicate of
    /// itself; any other gets an `O_PATH` one.
    fn hold(&self, fid: Fid, f: &OwnedFd, flags: i32) -> GResult<()> {
        if self.nodes.borrow().get(&fid).is_none_or(|n| n.fd.is_some()) {
            return Ok(());
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return self.fd(fid).map(|_| ());
        }
        // SAFETY: F_DUPFD_CLOEXEC of a descriptor we own.
        let dup = cvt(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: a fresh descriptor we own.
        let dup = unsafe { OwnedFd::from_raw_fd(dup) };
        if let Some(n) = self.nodes.borrow_mut().get_mut(&fid) {
            n.fd = Some(Rc::new(dup));
            // A duplicate shares its open's status flags: lent only if
            // they are plain.
            n.readable = flags
                & (libc::O_ACCMODE
                    | libc::O_APPEND
                    | libc::O_SYNC
                    | libc::O_DSYNC
                    | libc::O_NOATIME)
                == libc::O_RDONLY;
        }
        Ok(())
    }

    /// The read-only descriptor of regular file `fid` to lend to plain
    /// read-only opens: the one the node holds when it is one, else a new
    /// open (checked to be the walked inode), which the node then holds
    /// too when it held nothing.
    fn read_shared(&self, fid: Fid) -> GResult<Rc<OwnedFd>> {
        match self.mode(fid)? & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(libc::EISDIR),
            libc::S_IFLNK => return Err(libc::ELOOP),
            _ => return Err(libc::ENXIO),
        }
        if let Some(fd) = self
            .nodes
            .borrow()
            .get(&fid)
            .filter(|n| n.readable)
            .and_then(|n| n.fd.clone())
        {
            return Ok(fd);
        }
        let f = Rc::new(self.reopen(fid, libc::O_RDONLY)?);
        if let Some(n) = self.nodes.borrow_mut().get_mut(&fid)
            && n.fd.is_none()
        {
            n.fd = Some(f.clone());
            n.readable = true;
        }
        Ok(f)
    }

    fn mode(&self, fid: Fid) -> GResult<u32> {
        self.nodes
            .borrow()
            .get(&fid)
            .map(|n| n.mode)
            .ok_or(libc::EBADF)
    }

    /// The parent descriptor and name of `fid` (operations on the name
    /// itself: chmod where fchmodat2 is missing, hard links).
    fn parent_of(&self, fid: Fid) -> GResult<(Rc<OwnedFd>, CString)> {
        self.nodes
            .borrow()
            .get(&fid)
            .ok_or(libc::EBADF)?
            .parent
            .clone()
            .ok_or(libc::EBUSY)
    }

    fn chown_new(dir: RawFd, name: &CString, uid: u32, gid: u32) {
        // SAFETY: fchownat relative to a directory we hold.
        unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) };
    }
}

impl FileService for DirectFiles {
    fn stat(&self, fid: Fid) -> GResult<libc::stat> {
        let (fd, parent, id) = {
            let nodes = self.nodes.borrow();
            let n = nodes.get(&fid).ok_or(libc::EBADF)?;
            (n.fd.clone(), n.parent.clone(), n.id)
        };
        match (fd, parent) {
            (Some(fd), _) => fstat(fd.as_raw_fd()),
            (None, Some((dir, name))) => {
                let st = fstat_name(dir.as_raw_fd(), &name)?;
                if (st.st_dev, st.st_ino) != id {
                    return Err(libc::ESTALE);
                }
                Ok(st)
            }
            (None, None) => Err(libc::EBADF),
        }
    }

    fn walk(&self, dir: Fid, name: &[u8]) -> GResult<(Fid, libc::stat)> {
        check_name(name)?;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        let st = fstat_name(d.as_raw_fd(), &n)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Ok((self.add(None, d, n, &st), st));
        }
        // A directory is walked through: it holds a descriptor (the name
        // may have been swapped since the stat: the descriptor's own stat
        // is what the fid names).
        let fd = openat(d.as_raw_fd(), &n, libc::O_PATH, 0)?;
        let st = fstat(fd.as_raw_fd())?;
        Ok((self.add(Some(fd), d, n, &st), st))
    }

    fn open_shared(&self, fid: Fid) -> Option<GResult<Rc<OwnedFd>>> {
        Some(self.read_shared(fid))
    }

    fn direct(&self) -> bool {
        true
    }

    fn pin(&self, fid: Fid) {
        // Best effort: a name already changed from outside stays unpinned
        // (its stat then says ESTALE).
        let _ = self.fd(fid);
    }

    fn release(&self, fid: Fid) {
        if fid != ROOT_FID {
            self.nodes.borrow_mut().remove(&fid);
        }
    }

    fn open(&self, fid: Fid, flags: i32) -> GResult<OwnedFd> {
        match self.mode(fid)? & libc::S_IFMT {
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
        let f = self.reopen(fid, flags & allowed)?;
        self.hold(fid, &f, flags)?;
        Ok(f)
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
        check_name(name)?;
        let allowed = libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_EXCL
            | libc::O_DSYNC
            | libc::O_SYNC;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        let f = openat(
            d.as_raw_fd(),
            &n,
            (flags & allowed) | libc::O_CREAT,
            mode & 0o7777,
        )?;
        let mut st = fstat(f.as_raw_fd())?;
        if (st.st_uid, st.st_gid) != (uid, gid) {
            // Owned by the creator, as Linux makes it: the host made it
            // the kernel's (most often the same: then no call).
            chown_created(f.as_raw_fd(), uid, gid, mode, |fd, mode| {
                // SAFETY: fchmodat2 on our own descriptor; on a host
                // without it (before Linux 6.6) the bits stay dropped.
                unsafe {
                    libc::syscall(SYS_FCHMODAT2, fd, c"".as_ptr(), mode, libc::AT_EMPTY_PATH)
                };
            });
            st = fstat(f.as_raw_fd())?;
        }
        let path = openat(d.as_raw_fd(), &n, libc::O_PATH, 0)?;
        Ok((self.add(Some(path), d, n, &st), st, f))
    }

    fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        cvt(unsafe { libc::mkdirat(d.as_raw_fd(), n.as_ptr(), mode & 0o7777) })?;
        Self::chown_new(d.as_raw_fd(), &n, uid, gid);
        Ok(())
    }

    fn mknod(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        match mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | 0 => {}
            _ => return Err(libc::EPERM),
        }
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        cvt(unsafe { libc::mknodat(d.as_raw_fd(), n.as_ptr(), mode, 0) })?;
        Self::chown_new(d.as_raw_fd(), &n, uid, gid);
        Ok(())
    }

    fn symlink(&self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> GResult<()> {
        check_name(name)?;
        let d = self.fd(dir)?;
        let (n, t) = (cstr(name)?, cstr(target)?);
        cvt(unsafe { libc::symlinkat(t.as_ptr(), d.as_raw_fd(), n.as_ptr()) })?;
        Self::chown_new(d.as_raw_fd(), &n, uid, gid);
        Ok(())
    }

    fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> GResult<()> {
        check_name(name)?;
        if self.mode(target)? & libc::S_IFMT == libc::S_IFDIR {
            return Err(libc::EPERM);
        }
        let (tdir, tname) = self.parent_of(target)?;
        let before = self.stat(target)?;
        let d = self.fd(dir)?;
        let n = cstr(name)?;
        cvt(unsafe {
            libc::linkat(
                tdir.as_raw_fd(),
                tname.as_ptr(),
                d.as_raw_fd(),
                n.as_ptr(),
                0,
            )
        })?;
        // The name may have been swapped since the walk: the link must be
        // to the inode the kernel meant, else undone.
        let made = openat(d.as_raw_fd(), &n, libc::O_PATH, 0).and_then(|f| fstat(f.as_raw_fd()));
        if !made.is_ok_and(|m| (m.st_dev, m.st_ino) == (before.st_dev, before.st_ino)) {
            unsafe { libc::unlinkat(d.as_raw_fd(), n.as_ptr(), 0) };
            return Err(libc::ESTALE);
        }
        Ok(())
    }

    fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> GResult<()> {
        check_name(name)?;
        let n = cstr(name)?;
        let d = self.fd(dir)?;
        cvt(unsafe { libc::unlinkat(d.as_raw_fd(), n.as_ptr(), flags & libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    fn rename(
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
        let flags = flags & (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE);
        let (od, nd) = (self.fd(old_dir)?, self.fd(new_dir)?);
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                od.as_raw_fd(),
                o.as_ptr(),
                nd.as_raw_fd(),
                n.as_ptr(),
                flags,
            )
        };
        if r < 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn readlink(&self, fid: Fid) -> GResult<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let (fd, parent) = {
            let nodes = self.nodes.borrow();
            let n = nodes.get(&fid).ok_or(libc::EBADF)?;
            (n.fd.clone(), n.parent.clone())
        };
        // A symlink without a descriptor is read by its name: one swapped
        // in since the walk is read instead, which is harmless (the kernel
        // resolves any target inside the sandbox's root) and what a native
        // readlink racing the swap may see too.
        let n = match (fd, parent) {
            (Some(fd), _) => unsafe {
                libc::readlinkat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    buf.as_mut_ptr() as *mut libc::c_char,
                    buf.len(),
                )
            },
            (None, Some((dir, name))) => unsafe {
                libc::readlinkat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr() as *mut libc::c_char,
                    buf.len(),
                )
            },
            (None, None) => return Err(libc::EBADF),
        };
        if n < 0 {
            return Err(errno());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    fn setattr(&self, fid: Fid, a: &SetAttr) -> GResult<()> {
        let fd = self.fd(fid)?;
        let fd = fd.as_raw_fd();
        let is_link = self.mode(fid)? & libc::S_IFMT == libc::S_IFLNK;
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
            if is_link {
                return Err(libc::EOPNOTSUPP);
            }
            let r = unsafe {
                libc::syscall(
                    SYS_FCHMODAT2,
                    fd,
                    c"".as_ptr(),
                    mode & 0o7777,
                    libc::AT_EMPTY_PATH,
                )
            };
            if r < 0 {
                if errno() != libc::ENOSYS {
                    return Err(errno());
                }
                // Before Linux 6.6: the name in its parent, which fchmodat
                // follows if it is a symlink. It must still name the
                // inode itself: the kernel is one thread, so nothing of
                // the workload can swap it between this check and the
                // call (a file unlinked and replaced by a symlink while
                // held open would otherwise let its owner chmod the
                // symlink's target).
                let (dir, name) = self.parent_of(fid)?;
                let now = fstat_name(dir.as_raw_fd(), &name)?;
                let id = self.nodes.borrow().get(&fid).map(|n| n.id);
                if now.st_mode & libc::S_IFMT == libc::S_IFLNK
                    || Some((now.st_dev, now.st_ino)) != id
                {
                    return Err(libc::ESTALE);
                }
                cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode & 0o7777, 0) })?;
            }
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
            cvt(unsafe {
                libc::utimensat(
                    fd,
                    c"".as_ptr(),
                    times.as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        Ok(())
    }

    fn readdir(&self, fid: Fid) -> GResult<Vec<Dirent>> {
        let d = self.reopen(fid, libc::O_RDONLY | libc::O_DIRECTORY)?;
        parse_dirents(d.as_raw_fd())
    }

    fn statfs(&self, fid: Fid) -> GResult<libc::statfs> {
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        cvt(unsafe { libc::fstatfs(self.fd(fid)?.as_raw_fd(), &mut s) })?;
        Ok(s)
    }

    fn revalidate(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> bool {
        self.revalidate_stat(dir, name, id).is_some()
    }
    fn revalidate_stat(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> Option<Option<libc::stat>> {
        let (Ok(d), Ok(n)) = (self.fd(dir), cstr(name)) else {
            return None;
        };
        // SAFETY: stat out-pointer is valid.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::fstatat(
                d.as_raw_fd(),
                n.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            ) == 0)
                .then_some(st)?
        };
        ((st.st_dev, st.st_ino) == id).then_some(Some(st))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn open_dir(p: &std::path::Path) -> OwnedFd {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        assert!(fd >= 0);
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    #[test]
    fn walks_stay_beneath_the_root_and_never_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(dir.path().join("secret"), "host").unwrap();
        std::fs::write(root.join("d/f"), "inside").unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("../secret", root.join("rel")).unwrap();
        let s = DirectFiles::new(open_dir(&root)).unwrap();
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
        let (l, st) = s.walk(ROOT_FID, b"abs").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(s.open(l, libc::O_RDONLY).unwrap_err(), libc::ELOOP);
        assert_eq!(s.readlink(l).unwrap(), b"/etc/passwd");
        let (l, _) = s.walk(ROOT_FID, b"rel").unwrap();
        assert!(s.open(l, libc::O_RDONLY).is_err());
        let names: Vec<_> = s
            .readdir(ROOT_FID)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&b"d".to_vec()) && names.contains(&b"abs".to_vec()));
    }

    /// A directory renamed after its walk (by the workload: its fid lives
    /// on in the kernel's open descriptors and working directories) is
    /// still listed as itself, not as whatever now has its old name.
    #[test]
    fn a_renamed_directory_is_still_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/inside"), "").unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (a, _) = s.walk(ROOT_FID, b"a").unwrap();
        s.rename(ROOT_FID, b"a", ROOT_FID, b"b", 0).unwrap();
        s.mkdir(ROOT_FID, b"a", 0o755, u32::MAX, u32::MAX).unwrap();
        let names: Vec<_> = s.readdir(a).unwrap().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&b"inside".to_vec()), "{names:?}");
    }

    #[test]
    fn a_name_swapped_after_the_walk_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "one").unwrap();
        std::fs::write(dir.path().join("g"), "two").unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (f, _) = s.walk(ROOT_FID, b"f").unwrap();
        std::fs::rename(dir.path().join("g"), dir.path().join("f")).unwrap();
        assert_eq!(s.open(f, libc::O_RDONLY).unwrap_err(), libc::ESTALE);
        std::fs::remove_file(dir.path().join("f")).unwrap();
        symlink("/etc/passwd", dir.path().join("f")).unwrap();
        assert_eq!(s.open(f, libc::O_RDONLY).unwrap_err(), libc::ELOOP);
    }

    #[test]
    fn creates_and_changes_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let uid = unsafe { libc::getuid() };
        let gid = unsafe { libc::getgid() };
        let (f, _, fd) = s
            .create(ROOT_FID, b"new", libc::O_WRONLY, 0o640, uid, gid)
            .unwrap();
        assert_eq!(
            unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) },
            1
        );
        s.setattr(
            f,
            &SetAttr {
                mode: Some(0o600),
                size: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        let st = s.stat(f).unwrap();
        assert_eq!((st.st_mode & 0o7777, st.st_size), (0o600, 0));
        s.mkdir(ROOT_FID, b"sub", 0o755, uid, gid).unwrap();
        let (sub, _) = s.walk(ROOT_FID, b"sub").unwrap();
        s.link(f, sub, b"hard").unwrap();
        s.rename(sub, b"hard", ROOT_FID, b"moved", 0).unwrap();
        assert!(s.revalidate(ROOT_FID, b"moved", (st.st_dev, st.st_ino)));
        s.unlink(ROOT_FID, b"moved", 0).unwrap();
        assert!(!s.revalidate(ROOT_FID, b"moved", (st.st_dev, st.st_ino)));
        s.unlink(ROOT_FID, b"sub", libc::AT_REMOVEDIR).unwrap();
    }

    fn holds_fd(s: &DirectFiles, fid: Fid) -> bool {
        s.nodes.borrow().get(&fid).unwrap().fd.is_some()
    }

    /// The descriptor lent to plain read-only opens is the one the node
    /// holds (a file costs one descriptor): the first lend makes it, a
    /// later one and a plain read-only open's hold reuse it; a hold of an
    /// open with other flags is not lent.
    #[test]
    fn the_lent_read_descriptor_is_the_one_the_node_holds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "one").unwrap();
        std::fs::write(dir.path().join("g"), "two").unwrap();
        std::fs::write(dir.path().join("h"), "three").unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (f, _) = s.walk(ROOT_FID, b"f").unwrap();
        let lent = s.read_shared(f).unwrap();
        let held = s.nodes.borrow().get(&f).unwrap().fd.clone().unwrap();
        assert!(Rc::ptr_eq(&lent, &held));
        assert!(Rc::ptr_eq(&s.read_shared(f).unwrap(), &lent));
        // A plain read-only open's hold is lent.
        let (g, _) = s.walk(ROOT_FID, b"g").unwrap();
        drop(s.open(g, libc::O_RDONLY).unwrap());
        let held = s.nodes.borrow().get(&g).unwrap().fd.clone().unwrap();
        assert!(Rc::ptr_eq(&s.read_shared(g).unwrap(), &held));
        // One with O_NOATIME is not (its flags go with the duplicate).
        let (h, _) = s.walk(ROOT_FID, b"h").unwrap();
        drop(s.open(h, libc::O_RDONLY | libc::O_NOATIME).unwrap());
        let held = s.nodes.borrow().get(&h).unwrap().fd.clone().unwrap();
        assert!(!Rc::ptr_eq(&s.read_shared(h).unwrap(), &held));
        assert_eq!(s.read_shared(ROOT_FID).err(), Some(libc::EISDIR));
    }

    #[test]
    fn a_walked_file_holds_no_descriptor_until_it_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("f"), "one").unwrap();
        symlink("target", dir.path().join("l")).unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (d, _) = s.walk(ROOT_FID, b"d").unwrap();
        let (f, st) = s.walk(ROOT_FID, b"f").unwrap();
        let (l, _) = s.walk(ROOT_FID, b"l").unwrap();
        assert!(holds_fd(&s, d));
        assert!(!holds_fd(&s, f) && !holds_fd(&s, l));
        // Stat and readlink go by name.
        assert_eq!(s.stat(f).unwrap().st_ino, st.st_ino);
        assert_eq!(s.readlink(l).unwrap(), b"target");
        assert!(!holds_fd(&s, f) && !holds_fd(&s, l));
        // A changed attribute needs the inode itself.
        s.setattr(
            f,
            &SetAttr {
                mode: Some(0o600),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(holds_fd(&s, f));
        assert_eq!(s.stat(f).unwrap().st_mode & 0o7777, 0o600);
    }

    #[test]
    fn a_file_replaced_after_its_walk_is_stale_unless_it_was_open() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["f", "g", "h"] {
            std::fs::write(dir.path().join(n), n).unwrap();
        }
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (f, _) = s.walk(ROOT_FID, b"f").unwrap();
        let (g, gst) = s.walk(ROOT_FID, b"g").unwrap();
        // Walked only: the name now names another inode.
        std::fs::rename(dir.path().join("h"), dir.path().join("f")).unwrap();
        assert_eq!(s.stat(f).unwrap_err(), libc::ESTALE);
        // Open (read-only, then for writing): the open file's attributes
        // stay reachable after its name is gone, as fstat natively.
        let _r = s.open(g, libc::O_RDONLY).unwrap();
        std::fs::remove_file(dir.path().join("g")).unwrap();
        let st = s.stat(g).unwrap();
        assert_eq!((st.st_ino, st.st_nlink), (gst.st_ino, 0));
        std::fs::write(dir.path().join("w"), "w").unwrap();
        let (w, wst) = s.walk(ROOT_FID, b"w").unwrap();
        let _w = s.open(w, libc::O_WRONLY).unwrap();
        std::fs::rename(dir.path().join("f"), dir.path().join("w")).unwrap();
        let st = s.stat(w).unwrap();
        assert_eq!((st.st_ino, st.st_nlink), (wst.st_ino, 0));
    }

    #[test]
    fn a_pinned_file_keeps_its_attributes_after_its_name_goes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "one").unwrap();
        let s = DirectFiles::new(open_dir(dir.path())).unwrap();
        let (f, st) = s.walk(ROOT_FID, b"f").unwrap();
        assert!(!holds_fd(&s, f));
        s.pin(f);
        assert!(holds_fd(&s, f));
        s.unlink(ROOT_FID, b"f", 0).unwrap();
        let now = s.stat(f).unwrap();
        assert_eq!((now.st_ino, now.st_nlink), (st.st_ino, 0));
    }
}
