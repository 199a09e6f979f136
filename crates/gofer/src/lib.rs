//! atoll's gofer: the file server of a userspace sandbox.
//!
//! The gofer is the only component that opens a container's files. It
//! holds a directory descriptor for each path the application kernel has
//! walked to (a fid), walks one name at a time relative to one of them
//! (so no path it is given can lead outside the rootfs, whatever symlinks
//! the workload plants), and donates opened descriptors to the kernel so
//! reads and writes need no round trip. gVisor's gofer (lisafs) is the
//! model.

pub mod direct;
pub mod protocol;
pub mod serve;
pub mod server;

pub use server::FileServer;

/// A handle on a file the server has walked to.
pub type Fid = u64;
/// A Linux errno.
pub type Errno = i32;
pub type GResult<T> = Result<T, Errno>;

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// d_type (DT_REG, DT_DIR, ...).
    pub kind: u8,
    pub name: Vec<u8>,
}

/// A timestamp in a setattr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time {
    Now,
    At(i64, i64),
}

/// Attribute changes (each optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Time>,
    pub mtime: Option<Time>,
}

/// The file operations a gofer offers; implemented by [`FileServer`]
/// (in-process) and by the protocol client (a separate gofer process).
pub trait FileService {
    fn root(&self) -> Fid {
        server::ROOT_FID
    }
    fn stat(&self, fid: Fid) -> GResult<libc::stat>;
    fn walk(&self, dir: Fid, name: &[u8]) -> GResult<(Fid, libc::stat)>;
    fn release(&self, fid: Fid);
    fn open(&self, fid: Fid, flags: i32) -> GResult<std::os::fd::OwnedFd>;
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> GResult<(Fid, libc::stat, std::os::fd::OwnedFd)>;
    fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()>;
    fn mknod(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()>;
    fn symlink(&self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> GResult<()>;
    fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> GResult<()>;
    fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> GResult<()>;
    fn rename(&self, old_dir: Fid, old: &[u8], new_dir: Fid, new: &[u8], flags: u32)
    -> GResult<()>;
    fn readlink(&self, fid: Fid) -> GResult<Vec<u8>>;
    fn setattr(&self, fid: Fid, a: &SetAttr) -> GResult<()>;
    fn readdir(&self, fid: Fid) -> GResult<Vec<Dirent>>;
    fn statfs(&self, fid: Fid) -> GResult<libc::statfs>;
    /// `fid` is about to lose its name (the kernel unlinks or renames it)
    /// while something still holds it: a service that names files by their
    /// directory and name (directfs's files that were only walked) gives
    /// it a descriptor of its own now, so its attributes stay reachable.
    fn pin(&self, _fid: Fid) {}
    /// Whether `name` in `dir` still names the object `id` (device,
    /// inode) a cached walk found. A service that cannot tell cheaply
    /// answers yes (the gofer: its tree is the container's own).
    fn revalidate(&self, _dir: Fid, _name: &[u8], _id: (u64, u64)) -> bool {
        true
    }
    /// [`FileService::revalidate`], with the attributes the check found
    /// when it read them (None: it did not): the caller may use them for
    /// the rest of the operation instead of a stat of its own.
    fn revalidate_stat(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> Option<Option<libc::stat>> {
        self.revalidate(dir, name, id).then_some(None)
    }
    /// A read-only descriptor of regular file `fid` that the kernel may
    /// keep and lend to every later plain read-only open of the file
    /// instead of asking the service at each open (it reads at explicit
    /// offsets): the one the service already holds for the file where it
    /// holds one, so that a file costs one descriptor. None: the service
    /// lends none. Direct access lends, its opens being the kernel's own
    /// host calls; the gofer does not: an operator who chose it has every
    /// open go through it (and its death must fail the next open with EIO).
    fn open_shared(&self, _fid: Fid) -> Option<GResult<std::rc::Rc<std::os::fd::OwnedFd>>> {
        None
    }
    /// Whether the service's answers are the kernel's own host calls
    /// (direct access), which the kernel may keep where the mount's cache
    /// is trusted (a directory's listing), rather than the gofer's: an
    /// operator who chose the gofer has every listing go through it too.
    fn direct(&self) -> bool {
        false
    }
    /// The `index`th mount root the service holds for direct access
    /// ([`direct::DirectFiles`]): the mount's destination in the container
    /// and a descriptor of its root, a detached clone of the mount; ENOENT
    /// past the last.
    fn mount_root(&self, _index: u32) -> GResult<(Vec<u8>, std::os::fd::OwnedFd)> {
        Err(libc::ENOENT)
    }
    /// Serves the tree under `fd` too (a pod container's rootfs or bind
    /// mount, opened by the runtime): its root fid and attributes.
    fn add_root(&self, _fd: std::os::fd::OwnedFd) -> GResult<(Fid, libc::stat)> {
        Err(libc::ENOSYS)
    }
}

impl FileService for FileServer {
    fn add_root(&self, fd: std::os::fd::OwnedFd) -> GResult<(Fid, libc::stat)> {
        FileServer::add_root(self, fd)
    }
    fn stat(&self, fid: Fid) -> GResult<libc::stat> {
        FileServer::stat(self, fid)
    }
    fn walk(&self, dir: Fid, name: &[u8]) -> GResult<(Fid, libc::stat)> {
        FileServer::walk(self, dir, name)
    }
    fn release(&self, fid: Fid) {
        FileServer::release(self, fid)
    }
    fn open(&self, fid: Fid, flags: i32) -> GResult<std::os::fd::OwnedFd> {
        FileServer::open(self, fid, flags)
    }
    fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> GResult<(Fid, libc::stat, std::os::fd::OwnedFd)> {
        FileServer::create(self, dir, name, flags, mode, uid, gid)
    }
    fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        FileServer::mkdir(self, dir, name, mode, uid, gid)
    }
    fn mknod(&self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> GResult<()> {
        FileServer::mknod(self, dir, name, mode, uid, gid)
    }
    fn symlink(&self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> GResult<()> {
        FileServer::symlink(self, dir, name, target, uid, gid)
    }
    fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> GResult<()> {
        FileServer::link(self, target, dir, name)
    }
    fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> GResult<()> {
        FileServer::unlink(self, dir, name, flags)
    }
    fn rename(
        &self,
        old_dir: Fid,
        old: &[u8],
        new_dir: Fid,
        new: &[u8],
        flags: u32,
    ) -> GResult<()> {
        FileServer::rename(self, old_dir, old, new_dir, new, flags)
    }
    fn readlink(&self, fid: Fid) -> GResult<Vec<u8>> {
        FileServer::readlink(self, fid)
    }
    fn setattr(&self, fid: Fid, a: &SetAttr) -> GResult<()> {
        FileServer::setattr(self, fid, a)
    }
    fn readdir(&self, fid: Fid) -> GResult<Vec<Dirent>> {
        FileServer::readdir(self, fid)
    }
    fn statfs(&self, fid: Fid) -> GResult<libc::statfs> {
        FileServer::statfs(self, fid)
    }
    fn mount_root(&self, index: u32) -> GResult<(Vec<u8>, std::os::fd::OwnedFd)> {
        FileServer::mount_root(self, index)
    }
    fn revalidate(&self, dir: Fid, name: &[u8], id: (u64, u64)) -> bool {
        FileServer::revalidate(self, dir, name, id)
    }
}
