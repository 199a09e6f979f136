//! Open file descriptions and what each kind of file does with I/O.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::dentry::Dentry;
use super::inode::DirEntry;
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

/// poll(2) bits.
pub const POLLIN: u32 = libc::POLLIN as u32;
pub const POLLOUT: u32 = libc::POLLOUT as u32;
pub const POLLERR: u32 = libc::POLLERR as u32;
pub const POLLHUP: u32 = libc::POLLHUP as u32;
pub const POLLRDHUP: u32 = 0x2000;
pub const POLLNVAL: u32 = libc::POLLNVAL as u32;

/// Behaviour of one kind of open file. Methods get the description (`f`)
/// for its flags and position.
pub trait FileOps: Any {
    /// Reads into `dst` at `off` (ignored by streams). Returns EAGAIN when
    /// it would block; the caller then waits on [`FileOps::wait`].
    fn read(&self, _k: &Kernel, _f: &File, _dst: &IoVecs, _off: u64) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _k: &Kernel, _f: &File, _src: &IoVecs, _off: u64) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }
    /// Whether reads and writes use the file position.
    fn seekable(&self) -> bool {
        false
    }
    /// Ready events (POLLIN, POLLOUT, ...).
    fn poll(&self, _k: &Kernel) -> u32 {
        POLLIN | POLLOUT
    }
    /// Registers `tid` to be woken on `events`; false if this file never blocks.
    fn wait(&self, _k: &Kernel, _tid: Tid, _events: u32) -> bool {
        false
    }
    fn unwait(&self, _k: &Kernel, _tid: Tid) {}
    /// A counter that moves on every new event of the file (data arriving,
    /// room freed), for edge-triggered epoll; 0 for files without events.
    fn event_seq(&self) -> u64 {
        0
    }
    fn ioctl(&self, _k: &mut Kernel, _f: &File, _tid: Tid, _cmd: u64, _arg: u64) -> SysResult<u64> {
        Err(Errno::ENOTTY)
    }
    /// fstat of files that have no inode (pipes, sockets, anon files).
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Err(Errno::EBADF)
    }
    fn truncate(&self, _k: &Kernel, _len: u64) -> SysResult<()> {
        Err(Errno::EINVAL)
    }
    fn sync(&self) -> SysResult<()> {
        Ok(())
    }
    fn allocate(&self, _mode: i32, _off: u64, _len: u64) -> SysResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    /// The host descriptor behind this file, if any (mmap, sendfile, locks).
    fn host_fd(&self) -> Option<i32> {
        None
    }
    /// Size for SEEK_END and mmap of in-kernel files.
    fn size(&self, _k: &Kernel) -> Option<u64> {
        None
    }
    /// The file's pages in the memory file, for mmap: the content of an
    /// in-memory file, or the page cache of a host file (made on demand).
    /// None for files that cannot be mapped as files.
    fn pages(&self, _k: &Kernel) -> SysResult<Option<Rc<crate::mm::FileMem>>> {
        Ok(None)
    }
    /// Name for /proc/[pid]/fd of files without a path ("pipe:[12]").
    fn anon_name(&self) -> Option<String> {
        None
    }
    /// Socket operations, for sockets.
    fn socket(&self) -> Option<&dyn crate::net::SocketOps> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}

/// An open file description: shared by dup'd descriptors and across fork.
pub struct File {
    pub ops: Rc<dyn FileOps>,
    /// open(2) flags (access mode, O_APPEND, O_NONBLOCK, ...).
    pub flags: Cell<i32>,
    pub pos: Cell<u64>,
    /// The path it was opened through (None for pipes and sockets).
    pub dentry: Option<Rc<Dentry>>,
    /// Directory listing in progress (getdents).
    pub dir: RefCell<Option<Vec<DirEntry>>>,
    /// Opened by open(2) (not a memfd or an internal file): its last
    /// close is an inotify event.
    pub notify_close: Cell<bool>,
}

impl File {
    pub fn new(ops: Rc<dyn FileOps>, flags: i32, dentry: Option<Rc<Dentry>>) -> Rc<File> {
        if let Some(d) = &dentry {
            super::inotify::file_opened(d.inode.id());
        }
        Rc::new(File {
            ops,
            flags: Cell::new(flags),
            pos: Cell::new(0),
            dentry,
            dir: RefCell::new(None),
            notify_close: Cell::new(false),
        })
    }

    pub fn readable(&self) -> bool {
        let m = self.flags.get() & libc::O_ACCMODE;
        (m == libc::O_RDONLY || m == libc::O_RDWR) && self.flags.get() & libc::O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        let m = self.flags.get() & libc::O_ACCMODE;
        (m == libc::O_WRONLY || m == libc::O_RDWR) && self.flags.get() & libc::O_PATH == 0
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & libc::O_NONBLOCK != 0
    }

    pub fn is_path_only(&self) -> bool {
        self.flags.get() & libc::O_PATH != 0
    }

    /// Path for /proc and diagnostics.
    pub fn path(&self, k: &Kernel) -> String {
        match (&self.dentry, self.ops.anon_name()) {
            (_, Some(n)) => n,
            (Some(d), None) => String::from_utf8_lossy(&d.path(k)).into_owned(),
            (None, None) => "anon_inode:[unknown]".into(),
        }
    }

    pub fn stat(&self, k: &Kernel) -> SysResult<libc::stat> {
        match &self.dentry {
            Some(d) if self.ops.anon_name().is_none() => d.inode.stat(k),
            _ => self.ops.stat(k),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        super::lock::release_file(self);
        if let Some(d) = &self.dentry {
            if self.notify_close.get() {
                use super::inotify::{IN_CLOSE_NOWRITE, IN_CLOSE_WRITE};
                let ev = if self.writable() {
                    IN_CLOSE_WRITE
                } else {
                    IN_CLOSE_NOWRITE
                };
                super::inotify::notify_open_close(d, ev);
            }
            super::inotify::file_released(d.inode.id());
        }
    }
}
