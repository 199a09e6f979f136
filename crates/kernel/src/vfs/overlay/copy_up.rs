//! Copy-up: the upper copy of a lower object, made before its first
//! change, with its directories above it first.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::rc::Rc;

use super::{OvlInode, tmp};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::mm::FileMem;
use crate::vfs::inode::{FileType, Inode};
use crate::vfs::tmpfs::{Content, TmpInode, new_file_content};

/// Bytes read from the lower file at a time.
const CHUNK: usize = 256 << 10;

impl OvlInode {
    /// The upper object, made from the lower one if there is none yet.
    /// `data`: copy a regular file's bytes (not when they are about to be
    /// truncated away).
    pub(super) fn copy_up(&self, k: &Kernel, data: bool) -> SysResult<Rc<dyn Inode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        if self.dead.get() {
            return Err(Errno::ENOENT);
        }
        let lower = self.lower.clone().ok_or(Errno::EIO)?;
        // The root always has its upper directory: every other object has
        // a parent.
        let (parent, name) = self.parent.borrow().clone().ok_or(Errno::EIO)?;
        let dir = parent.copy_up(k, true)?;
        let st = lower.stat(k)?;
        let content = match self.kind {
            FileType::Directory => Content::Dir(BTreeMap::new()),
            FileType::Regular => {
                let c = new_file_content();
                if let (true, Content::File(m)) = (data, &c) {
                    self.fs.may_grow(k, st.st_size as u64)?;
                    copy_data(k, &lower, m, st.st_size as u64)?;
                }
                c
            }
            FileType::Symlink => Content::Symlink(lower.readlink(k)?),
            FileType::Fifo => Content::Fifo,
            FileType::Socket => Content::Socket,
            // Device nodes: the upper tmpfs holds none (its mknod refuses
            // them too), so they stay as they are.
            FileType::CharDev | FileType::BlockDev => return Err(Errno::EPERM),
        };
        let d = tmp(&dir);
        let up = TmpInode::new(d.dev, st.st_mode, st.st_uid, st.st_gid, content);
        set_times(&up, &st);
        if self.kind == FileType::Directory {
            d.add_dir(&name, up.clone());
        } else {
            d.add(&name, up.clone());
        }
        self.fs.origin.borrow_mut().insert(up.ino, self.ino);
        let up: Rc<dyn Inode> = up;
        self.fs.track(&up);
        *self.upper.borrow_mut() = Some(up.clone());
        Ok(up)
    }
}

/// The lower file's times on its copy (ctime too: the copy is not a
/// change the workload made).
pub(super) fn set_times(t: &TmpInode, st: &libc::stat) {
    let mut m = t.meta.borrow_mut();
    m.st_atime = st.st_atime;
    m.st_atime_nsec = st.st_atime_nsec;
    m.st_mtime = st.st_mtime;
    m.st_mtime_nsec = st.st_mtime_nsec;
    m.st_ctime = st.st_ctime;
    m.st_ctime_nsec = st.st_ctime_nsec;
}

/// Copies `size` bytes of the lower file into the memory file. The copy
/// is memory the container holds: ENOSPC when it does not fit, as a write
/// to tmpfs. All-zero chunks stay holes.
fn copy_data(k: &Kernel, lower: &Rc<dyn Inode>, m: &Rc<FileMem>, size: u64) -> SysResult<()> {
    if size == 0 {
        return Ok(());
    }
    k.may_commit(size).map_err(|_| Errno::ENOSPC)?;
    let ops = lower.open(k, libc::O_RDONLY)?;
    let fd: RawFd = ops.host_fd().ok_or(Errno::EIO)?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        // SAFETY: buf is a valid buffer of its length.
        let n = unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                off as i64,
            )
        };
        if n < 0 {
            return Err(Errno::from_io(&std::io::Error::last_os_error()));
        }
        if n == 0 {
            break;
        }
        let chunk = &buf[..n as usize];
        if chunk.iter().any(|b| *b != 0) {
            m.write_from(chunk, off)?;
        }
        off += n as u64;
    }
    if m.size() < off {
        m.set_size(off);
    }
    Ok(())
}
