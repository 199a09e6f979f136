//! Inodes: the objects paths lead to.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use super::dentry::Dentry;
use super::file::FileOps;
use super::perm::Cred;
use super::xattr::Xattrs;
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl FileType {
    pub fn from_mode(mode: u32) -> FileType {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFCHR => FileType::CharDev,
            libc::S_IFBLK => FileType::BlockDev,
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFSOCK => FileType::Socket,
            _ => FileType::Regular,
        }
    }

    /// d_type for getdents64.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileType::Regular => libc::DT_REG,
            FileType::Directory => libc::DT_DIR,
            FileType::Symlink => libc::DT_LNK,
            FileType::CharDev => libc::DT_CHR,
            FileType::BlockDev => libc::DT_BLK,
            FileType::Fifo => libc::DT_FIFO,
            FileType::Socket => libc::DT_SOCK,
        }
    }

    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => libc::S_IFREG,
            FileType::Directory => libc::S_IFDIR,
            FileType::Symlink => libc::S_IFLNK,
            FileType::CharDev => libc::S_IFCHR,
            FileType::BlockDev => libc::S_IFBLK,
            FileType::Fifo => libc::S_IFIFO,
            FileType::Socket => libc::S_IFSOCK,
        }
    }
}

#[derive(Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: FileType,
}

/// A timestamp change in setattr (utimensat semantics).
#[derive(Clone, Copy, Debug)]
pub enum TimeSet {
    Now,
    At(libc::timespec),
}

#[derive(Default, Clone, Debug)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
}

/// What a path component names. Methods a filesystem does not support
/// answer with the error Linux gives for that object.
pub trait Inode: Any {
    fn stat(&self, k: &Kernel) -> SysResult<libc::stat>;
    /// The mode, owner and group a permission check needs (an open's, a
    /// directory change's, a setattr's): filesystems that pay for a stat
    /// answer from one they read a moment ago, as long as nothing the
    /// kernel did since changed them.
    fn stat_for_check(&self, k: &Kernel) -> SysResult<libc::stat> {
        self.stat(k)
    }
    /// A recent stat, for permission checks during path walks (filesystems
    /// that pay for a stat, like the gofer's, answer from a cache).
    fn stat_cached(&self, k: &Kernel) -> SysResult<libc::stat> {
        self.stat(k)
    }
    /// (device, inode number): identity for mount points and hard links.
    fn id(&self) -> (u64, u64);
    fn kind(&self) -> FileType;

    fn lookup(&self, _k: &Kernel, _name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        Err(Errno::ENOTDIR)
    }
    fn readdir(&self, _k: &Kernel) -> SysResult<Vec<DirEntry>> {
        Err(Errno::ENOTDIR)
    }
    /// Opens the object; `flags` are the open(2) flags.
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>>;
    fn readlink(&self, _k: &Kernel) -> SysResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }
    /// /proc magic links (fd/N, exe, cwd, root) resolve to a dentry
    /// directly instead of through their text.
    fn magic_link(&self, _k: &Kernel) -> Option<SysResult<Rc<Dentry>>> {
        None
    }
    fn create(
        &self,
        _k: &Kernel,
        _name: &[u8],
        _mode: u32,
        _flags: i32,
        _cred: &Cred,
    ) -> SysResult<(Rc<dyn Inode>, Rc<dyn FileOps>)> {
        Err(self.dir_error())
    }
    fn mkdir(&self, _k: &Kernel, _name: &[u8], _mode: u32, _cred: &Cred) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn mknod(
        &self,
        _k: &Kernel,
        _name: &[u8],
        _mode: u32,
        _dev: u64,
        _cred: &Cred,
    ) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn symlink(&self, _k: &Kernel, _name: &[u8], _target: &[u8], _cred: &Cred) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn link(&self, _k: &Kernel, _name: &[u8], _target: &Rc<dyn Inode>) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn unlink(&self, _k: &Kernel, _name: &[u8]) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn rmdir(&self, _k: &Kernel, _name: &[u8]) -> SysResult<()> {
        Err(self.dir_error())
    }
    fn rename(
        &self,
        _k: &Kernel,
        _old: &[u8],
        _new_dir: &Rc<dyn Inode>,
        _new: &[u8],
        _flags: u32,
    ) -> SysResult<()> {
        Err(self.dir_error())
    }
    /// `create` with `O_EXCL` fails with EEXIST on every name `lookup`
    /// would find, so an exclusive open need not look first (a host file
    /// system, whose names are the host's).
    fn create_excl_checks_name(&self) -> bool {
        false
    }
    fn setattr(&self, _k: &Kernel, _a: &SetAttr) -> SysResult<()> {
        Err(Errno::EPERM)
    }
    fn statfs(&self, _k: &Kernel) -> SysResult<libc::statfs> {
        // SAFETY: statfs is plain data.
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        s.f_type = 0x0102_1994; // TMPFS_MAGIC
        s.f_bsize = 4096;
        s.f_namelen = 255;
        s.f_frsize = 4096;
        Ok(s)
    }
    /// The extended attributes this filesystem keeps in the kernel's
    /// memory (tmpfs); None where it keeps none.
    fn xattrs(&self) -> Option<&RefCell<Xattrs>> {
        None
    }
    /// An extended attribute was set or removed: the change time moves.
    fn xattr_changed(&self) {}
    fn as_any(&self) -> &dyn Any;

    /// Error for directory operations on this inode.
    fn dir_error(&self) -> Errno {
        if self.kind() == FileType::Directory {
            Errno::EPERM
        } else {
            Errno::ENOTDIR
        }
    }
}
