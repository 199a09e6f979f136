//! Files of the container's rootfs (and its bind mounts), served by the
//! gofer. Each inode holds a gofer fid; I/O goes straight to the host
//! descriptor the gofer donated at open.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use atoll_gofer::{Fid, FileService};

use super::file::{File, FileOps};
use super::inode::{DirEntry, FileType, Inode, SetAttr, TimeSet};
use super::iov::IoVecs;
use super::perm::Cred;
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

pub struct HostFs {
    pub svc: Rc<dyn FileService>,
    /// Walk cache: (directory fid, name) → inode. Every walk of a path
    /// component would otherwise be a round trip to the gofer. Entries are
    /// dropped when the kernel changes the directory entry (create, unlink,
    /// rename, ...); the whole cache is dropped when it grows too large.
    cache: RefCell<WalkCache>,
    /// Check each cached walk against the file system (it may change from
    /// outside the sandbox: a bind mount shared with the host).
    revalidate: bool,
    /// The fid of this file system's root (the service's root, or a
    /// directory walked to for a bind mount).
    root_fid: Fid,
}

/// (directory fid, name) → the inode the walk found.
type WalkCache = HashMap<(Fid, Vec<u8>), Rc<HostInode>>;

/// Most cached walks (each holds a descriptor in the gofer).
const CACHE_MAX: usize = 4096;

pub struct HostInode {
    fs: Rc<HostFs>,
    fid: Fid,
    id: (u64, u64),
    kind: FileType,
    /// Stat from the last walk or stat: mode and ownership for path-walk
    /// permission checks.
    st: Cell<libc::stat>,
}

impl Drop for HostInode {
    fn drop(&mut self) {
        // A file system's root fid lives as long as the file system.
        if self.fid != self.fs.root_fid {
            self.fs.svc.release(self.fid);
        }
    }
}

fn gerr(e: i32) -> Errno {
    Errno(e)
}

impl HostFs {
    pub fn new(svc: Rc<dyn FileService>) -> Rc<HostFs> {
        HostFs::with(svc, false)
    }

    /// A file system over `svc` whose cached walks are revalidated (or not).
    pub fn with(svc: Rc<dyn FileService>, revalidate: bool) -> Rc<HostFs> {
        let root_fid = svc.root();
        HostFs::at(svc, root_fid, revalidate)
    }

    /// A file system rooted at `root_fid` of `svc` (which it then owns).
    pub fn at(svc: Rc<dyn FileService>, root_fid: Fid, revalidate: bool) -> Rc<HostFs> {
        Rc::new(HostFs {
            svc,
            cache: RefCell::new(HashMap::new()),
            revalidate,
            root_fid,
        })
    }

    pub fn root(self: &Rc<Self>) -> SysResult<Rc<dyn Inode>> {
        let fid = self.root_fid;
        let st = self.svc.stat(fid).map_err(gerr)?;
        Ok(self.inode(fid, &st))
    }

    fn inode(self: &Rc<Self>, fid: Fid, st: &libc::stat) -> Rc<HostInode> {
        Rc::new(HostInode {
            fs: self.clone(),
            fid,
            id: (st.st_dev, st.st_ino),
            kind: FileType::from_mode(st.st_mode),
            st: Cell::new(*st),
        })
    }

    fn forget(&self, dir: Fid, name: &[u8]) {
        self.cache.borrow_mut().remove(&(dir, name.to_vec()));
    }
}

fn to_gofer_time(t: Option<TimeSet>) -> Option<atoll_gofer::Time> {
    t.map(|t| match t {
        TimeSet::Now => atoll_gofer::Time::Now,
        TimeSet::At(ts) => atoll_gofer::Time::At(ts.tv_sec, ts.tv_nsec),
    })
}

impl Inode for HostInode {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let st = self.fs.svc.stat(self.fid).map_err(gerr)?;
        self.st.set(st);
        Ok(st)
    }
    fn stat_cached(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.st.get())
    }
    fn id(&self) -> (u64, u64) {
        self.id
    }
    fn kind(&self) -> FileType {
        self.kind
    }
    fn lookup(&self, _k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let key = (self.fid, name.to_vec());
        let hit = self.fs.cache.borrow().get(&key).cloned();
        if let Some(i) = hit {
            if !self.fs.revalidate || self.fs.svc.revalidate(self.fid, name, i.id) {
                return Ok(i);
            }
            self.fs.cache.borrow_mut().remove(&key);
        }
        let (fid, st) = self.fs.svc.walk(self.fid, name).map_err(gerr)?;
        let inode = self.fs.inode(fid, &st);
        let mut cache = self.fs.cache.borrow_mut();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, inode.clone());
        Ok(inode)
    }
    fn readdir(&self, _k: &Kernel) -> SysResult<Vec<DirEntry>> {
        Ok(self
            .fs
            .svc
            .readdir(self.fid)
            .map_err(gerr)?
            .into_iter()
            .map(|d| DirEntry {
                name: d.name,
                ino: d.ino,
                kind: match d.kind {
                    libc::DT_DIR => FileType::Directory,
                    libc::DT_LNK => FileType::Symlink,
                    libc::DT_CHR => FileType::CharDev,
                    libc::DT_BLK => FileType::BlockDev,
                    libc::DT_FIFO => FileType::Fifo,
                    libc::DT_SOCK => FileType::Socket,
                    _ => FileType::Regular,
                },
            })
            .collect())
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        match self.kind {
            FileType::Directory => Ok(Rc::new(DirFile)),
            FileType::Regular => {
                let fd = self.fs.svc.open(self.fid, flags).map_err(gerr)?;
                Ok(Rc::new(HostRegular { fd }))
            }
            FileType::Fifo => k.fifos.open(k, self.id, flags),
            _ => Err(Errno::ENXIO),
        }
    }
    fn readlink(&self, _k: &Kernel) -> SysResult<Vec<u8>> {
        if self.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.fs.svc.readlink(self.fid).map_err(gerr)
    }
    fn create(
        &self,
        _k: &Kernel,
        name: &[u8],
        mode: u32,
        flags: i32,
        cred: &Cred,
    ) -> SysResult<(Rc<dyn Inode>, Rc<dyn FileOps>)> {
        self.fs.forget(self.fid, name);
        let (fid, st, fd) = self
            .fs
            .svc
            .create(self.fid, name, flags, mode, cred.fsuid, cred.fsgid)
            .map_err(gerr)?;
        Ok((self.fs.inode(fid, &st), Rc::new(HostRegular { fd })))
    }
    fn mkdir(&self, _k: &Kernel, name: &[u8], mode: u32, cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs
            .svc
            .mkdir(self.fid, name, mode, cred.fsuid, cred.fsgid)
            .map_err(gerr)
    }
    fn mknod(&self, _k: &Kernel, name: &[u8], mode: u32, _dev: u64, cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs
            .svc
            .mknod(self.fid, name, mode, cred.fsuid, cred.fsgid)
            .map_err(gerr)
    }
    fn symlink(&self, _k: &Kernel, name: &[u8], target: &[u8], cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs
            .svc
            .symlink(self.fid, name, target, cred.fsuid, cred.fsgid)
            .map_err(gerr)
    }
    fn link(&self, _k: &Kernel, name: &[u8], target: &Rc<dyn Inode>) -> SysResult<()> {
        let t = target
            .as_any()
            .downcast_ref::<HostInode>()
            .ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        self.fs.forget(self.fid, name);
        self.fs.svc.link(t.fid, self.fid, name).map_err(gerr)
    }
    fn unlink(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs.svc.unlink(self.fid, name, 0).map_err(gerr)
    }
    fn rmdir(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs
            .svc
            .unlink(self.fid, name, libc::AT_REMOVEDIR)
            .map_err(gerr)
    }
    fn rename(
        &self,
        _k: &Kernel,
        old: &[u8],
        new_dir: &Rc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        let nd = new_dir
            .as_any()
            .downcast_ref::<HostInode>()
            .ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        self.fs.forget(self.fid, old);
        self.fs.forget(nd.fid, new);
        self.fs
            .svc
            .rename(self.fid, old, nd.fid, new, flags)
            .map_err(gerr)
    }
    fn setattr(&self, k: &Kernel, a: &SetAttr) -> SysResult<()> {
        let r = self
            .fs
            .svc
            .setattr(
                self.fid,
                &atoll_gofer::SetAttr {
                    mode: a.mode,
                    uid: a.uid,
                    gid: a.gid,
                    size: a.size,
                    atime: to_gofer_time(a.atime),
                    mtime: to_gofer_time(a.mtime),
                },
            )
            .map_err(gerr);
        let _ = self.stat(k);
        r
    }
    fn statfs(&self, _k: &Kernel) -> SysResult<libc::statfs> {
        self.fs.svc.statfs(self.fid).map_err(gerr)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open directory; entries come from the inode (getdents).
pub struct DirFile;

impl FileOps for DirFile {
    fn read(&self, _k: &Kernel, _f: &File, _d: &IoVecs, _o: u64) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }
    fn seekable(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A regular host file: reads and writes go to the donated descriptor.
pub struct HostRegular {
    pub fd: OwnedFd,
}

impl FileOps for HostRegular {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        // SAFETY: the iovecs point at writable memory of their stated length.
        let n = unsafe {
            libc::preadv(
                self.fd.as_raw_fd(),
                dst.iovs.as_ptr(),
                dst.iovs.len() as i32,
                off as i64,
            )
        };
        if n < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        Ok(n as usize)
    }
    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        // SAFETY: as above. With O_APPEND the host appends whatever `off` says.
        let n = unsafe {
            libc::pwritev(
                self.fd.as_raw_fd(),
                src.iovs.as_ptr(),
                src.iovs.len() as i32,
                off as i64,
            )
        };
        if n < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        Ok(n as usize)
    }
    fn seekable(&self) -> bool {
        true
    }
    fn truncate(&self, _k: &Kernel, len: u64) -> SysResult<()> {
        if unsafe { libc::ftruncate(self.fd.as_raw_fd(), len as i64) } < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        Ok(())
    }
    fn sync(&self) -> SysResult<()> {
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        Ok(())
    }
    fn allocate(&self, mode: i32, off: u64, len: u64) -> SysResult<()> {
        if unsafe { libc::fallocate(self.fd.as_raw_fd(), mode, off as i64, len as i64) } < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        Ok(())
    }
    fn host_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }
    fn size(&self, _k: &Kernel) -> Option<u64> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } == 0).then_some(st.st_size as u64)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
