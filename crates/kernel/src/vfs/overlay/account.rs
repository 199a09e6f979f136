//! What a pod container's overlay holds, for its own memory limit.
//!
//! The upper layer's pages are the sandbox's memory, checked against the
//! sandbox's limit by tmpfs itself (`Kernel::may_commit`). A pod's member
//! has a limit of its own, which the kernel counts (`kernel/limits.rs`):
//! its overlay's pages count there too, so each upper file's pages are
//! tracked here and writes that grow them are checked first.

use std::any::Any;
use std::rc::{Rc, Weak};

use super::{OverlayFs, tmp};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::mm::FileMem;
use crate::vfs::file::{File, FileOps};
use crate::vfs::inode::Inode;
use crate::vfs::iov::IoVecs;
use crate::vfs::tmpfs::Content;

impl OverlayFs {
    /// Counts the pages of `upper` (a new upper regular file) as this
    /// overlay's.
    pub(super) fn track(&self, upper: &Rc<dyn Inode>) {
        if self.container == 0 {
            return;
        }
        if let Content::File(m) = &*tmp(upper).content.borrow() {
            let mut files = self.files.borrow_mut();
            files.retain(|w| w.strong_count() > 0);
            files.push(Rc::downgrade(m));
        }
    }

    /// Bytes of data the upper layer's files hold.
    pub fn upper_bytes(&self) -> u64 {
        self.files
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .map(|m| m.allocated())
            .sum()
    }

    /// May the upper layer grow by `bytes`? ENOSPC when the pod
    /// container's own limit would be passed (as a full tmpfs says).
    pub(super) fn may_grow(&self, k: &Kernel, bytes: u64) -> SysResult<()> {
        if self.container == 0 || bytes == 0 {
            return Ok(());
        }
        k.container_may_store(self.container, bytes)
            .map_err(|_| Errno::ENOSPC)
    }

    /// `ops` of an upper regular file, checked against the container's
    /// limit when it grows (the sandbox's own overlay needs no wrapper).
    pub(super) fn wrap(self: &Rc<Self>, ops: Rc<dyn FileOps>) -> Rc<dyn FileOps> {
        if self.container == 0 {
            return ops;
        }
        Rc::new(OvlFile {
            fs: self.clone(),
            inner: ops,
        })
    }
}

/// The bytes the overlay whose root is `root` holds (0 if it is none).
pub fn upper_bytes_of(root: &Rc<dyn Inode>) -> u64 {
    root.as_any()
        .downcast_ref::<super::OvlInode>()
        .map_or(0, |o| o.fs.upper_bytes())
}

/// An open upper file of a pod container's overlay: tmpfs's, with growth
/// checked against the container's limit first.
struct OvlFile {
    fs: Rc<OverlayFs>,
    inner: Rc<dyn FileOps>,
}

impl OvlFile {
    fn cur_size(&self, k: &Kernel) -> u64 {
        self.inner.size(k).unwrap_or(0)
    }
}

impl FileOps for OvlFile {
    fn read(&self, k: &Kernel, f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        self.inner.read(k, f, dst, off)
    }
    fn write(&self, k: &Kernel, f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        let size = self.cur_size(k);
        let at = if f.flags.get() & libc::O_APPEND != 0 {
            size
        } else {
            off
        };
        let end = at.saturating_add(src.len as u64);
        self.fs.may_grow(k, end.saturating_sub(size))?;
        self.inner.write(k, f, src, off)
    }
    fn seekable(&self) -> bool {
        self.inner.seekable()
    }
    fn truncate(&self, k: &Kernel, len: u64) -> SysResult<()> {
        // A longer file is a hole: no page until written.
        self.inner.truncate(k, len)
    }
    fn sync(&self) -> SysResult<()> {
        self.inner.sync()
    }
    fn allocate(&self, mode: i32, off: u64, len: u64) -> SysResult<()> {
        self.inner.allocate(mode, off, len)
    }
    fn host_fd(&self) -> Option<i32> {
        self.inner.host_fd()
    }
    fn size(&self, k: &Kernel) -> Option<u64> {
        self.inner.size(k)
    }
    fn pages(&self, k: &Kernel) -> SysResult<Option<Rc<FileMem>>> {
        self.inner.pages(k)
    }
    fn fs_magic(&self) -> i64 {
        self.inner.fs_magic()
    }
    fn as_any(&self) -> &dyn Any {
        self.inner.as_any()
    }
}
