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
pub const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
pub const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
pub const POLLWRBAND: u32 = libc::POLLWRBAND as u32;

/// The events a waiter for `events` must be woken on: files notify
/// POLLIN/POLLOUT, which POLLRDNORM/POLLWRNORM waiters need too.
pub fn wait_mask(events: u32) -> u32 {
    let mut e = events | POLLERR | POLLHUP;
    if events & POLLRDNORM != 0 {
        e |= POLLIN;
    }
    if events & POLLWRNORM != 0 {
        e |= POLLOUT;
    }
    e
}

pub const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
pub const PIPEFS_MAGIC: i64 = 0x5049_5045;
pub const SOCKFS_MAGIC: i64 = 0x534F_434B;

/// O_LARGEFILE as the x86_64 kernel spells it (libc's constant is 0 on
/// 64-bit): open(2) sets it on every file it opens, and F_GETFL shows it.
pub const O_LARGEFILE: i32 = 0o100000;

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
    /// A blocking write writes everything before it returns (pipes and
    /// FIFOs), sleeping for room as often as needed.
    fn writes_whole(&self) -> bool {
        false
    }
    /// O_ASYNC turned on (or off) for `file`: register it where this
    /// file's events are notified, so they raise its owner's signal.
    fn fasync(&self, _file: &Rc<File>, _on: bool) {}
    /// Whether lseek(SEEK_END) works (not on seq_file-like files).
    fn seek_end(&self) -> bool {
        true
    }
    /// Whether reads and writes use the file position.
    fn seekable(&self) -> bool {
        false
    }
    /// Ready events (POLLIN, POLLOUT, ...). POLLRDNORM and POLLWRNORM
    /// come with POLLIN and POLLOUT unless [`FileOps::plain_poll`].
    fn poll(&self, _k: &Kernel) -> u32 {
        POLLIN | POLLOUT
    }
    /// Files whose poll reports POLLIN/POLLOUT alone, as Linux's eventfd,
    /// timerfd and signalfd do.
    fn plain_poll(&self) -> bool {
        false
    }
    /// Registers `tid` to be woken on `events`; false if this file never blocks.
    fn wait(&self, _k: &Kernel, _tid: Tid, _events: u32) -> bool {
        false
    }
    fn unwait(&self, _k: &Kernel, _tid: Tid) {}
    /// A counter that moves on every new event of the file of a kind in
    /// `mask` (poll bits: POLLIN for data arriving, POLLOUT for room
    /// freed, ...), for edge-triggered epoll; 0 for files without events.
    fn event_seq(&self, _mask: u32) -> u64 {
        0
    }
    /// Whether every rise of this file's readiness moves [`FileOps::event_seq`]
    /// (by the time an edge-triggered epoll has synced the host's reports):
    /// such a file with no event since an edge-triggered epoll last looked
    /// at it has no edge to report, and is not polled again (for a host
    /// socket a poll is a host call per interest and wait).
    fn events_counted(&self) -> bool {
        false
    }
    /// A blocked read's deadline, given the one it had so far (None: no
    /// timer): files whose reads give up waiting after a while of their
    /// own (a terminal's VTIME) say when; the read then runs again and
    /// finds the time up in the task's `sys.deadline`.
    fn read_deadline(&self, current: Option<std::time::Instant>) -> Option<std::time::Instant> {
        current
    }
    /// What a blocked read hands over when a signal interrupts it (0:
    /// nothing, the read fails with EINTR or restarts): a terminal's
    /// non-canonical read waiting for VMIN bytes returns those that came
    /// (Linux's n_tty_read has copied them out already).
    fn read_interrupted(&self, _k: &Kernel, _dst: &IoVecs) -> usize {
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
    /// f_type of fstatfs for files without a path (pipefs, sockfs,
    /// anon_inodefs).
    fn fs_magic(&self) -> i64 {
        ANON_INODE_FS_MAGIC
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
    /// Signal-driven I/O (F_SETOWN, F_SETSIG, O_ASYNC): who gets the
    /// signal, which signal (0: SIGIO without details), and the
    /// descriptor O_ASYNC was set through (si_fd).
    pub owner: Cell<Option<Owner>>,
    pub sig: Cell<i32>,
    pub async_fd: Cell<i32>,
    /// Opened by open(2) (not a memfd or an internal file): its last
    /// close is an inotify event.
    pub notify_close: Cell<bool>,
}

/// F_SETOWN_EX's f_owner_ex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// F_OWNER_TID (0), F_OWNER_PID (1) or F_OWNER_PGRP (2).
    pub kind: i32,
    pub id: i32,
}

pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

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
            owner: Cell::new(None),
            sig: Cell::new(0),
            async_fd: Cell::new(-1),
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

    /// Copies `len` bytes of the file from `off` into `chunk` at `at`
    /// (private file mappings, loaded program segments); returns the bytes
    /// the file had. Only pages with data are written, so memory stays a
    /// hole where the file has one: a sparse file of any size maps without
    /// costing memory. Stops at end of file.
    pub fn copy_into(
        &self,
        k: &Kernel,
        off: u64,
        chunk: &crate::mm::Chunk,
        at: u64,
        len: u64,
    ) -> SysResult<u64> {
        const STEP: usize = 64 * 1024;
        if at.checked_add(len).is_none_or(|e| e > chunk.len) {
            return Err(Errno::EINVAL);
        }
        let mut buf = vec![0u8; STEP];
        let mut done = 0u64;
        while done < len {
            let want = STEP.min((len - done) as usize);
            let iov = IoVecs::from_slice(&mut buf[..want]);
            let pos = off.checked_add(done).ok_or(Errno::EOVERFLOW)?;
            let n = match self.ops.read(k, self, &iov, pos)? {
                0 => break,
                n => n.min(want),
            };
            // Zero pages stay holes.
            chunk.write_sparse(at + done, &buf[..n]);
            done += n as u64;
        }
        Ok(done)
    }

    /// Ready events as poll, select and epoll report them.
    pub fn poll(&self, k: &Kernel) -> u32 {
        let r = self.ops.poll(k);
        if self.ops.plain_poll() {
            return r;
        }
        let mut r = r;
        if r & POLLIN != 0 {
            r |= POLLRDNORM;
        }
        if r & POLLOUT != 0 {
            r |= POLLWRNORM;
        }
        r
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
