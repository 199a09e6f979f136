//! Path lookups for syscalls: *at() directory handling, the caller's
//! root and credentials, and opening what a path names.

use std::rc::Rc;

use super::dentry::{Dentry, Walk};
use super::file::File;
use super::inode::FileType;
use super::perm::{MAY_READ, MAY_WRITE};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::mm::usercopy::PATH_MAX;

pub const AT_FDCWD: i32 = -100;

impl Kernel {
    /// A path argument from workload memory.
    pub fn read_path(&self, tid: Tid, addr: u64) -> SysResult<Vec<u8>> {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        self.task_mm(tid).borrow().read_cstr(addr, PATH_MAX)
    }

    /// The directory a *at() call starts from.
    pub fn at_dir(&self, tid: Tid, dirfd: i32) -> SysResult<Rc<Dentry>> {
        if dirfd == AT_FDCWD {
            return Ok(self.task(tid).fs.borrow().cwd.clone());
        }
        let f = self.task(tid).files.borrow().get(dirfd)?;
        f.dentry.clone().ok_or(Errno::ENOTDIR)
    }

    /// Resolves `path` relative to `dirfd`. An empty path means the file
    /// `dirfd` refers to when `empty_ok` (AT_EMPTY_PATH).
    pub fn lookup_at(
        &self,
        tid: Tid,
        dirfd: i32,
        path: &[u8],
        follow: bool,
        empty_ok: bool,
    ) -> SysResult<Rc<Dentry>> {
        if path.is_empty() {
            if !empty_ok {
                return Err(Errno::ENOENT);
            }
            if dirfd == AT_FDCWD {
                return Ok(self.task(tid).fs.borrow().cwd.clone());
            }
            let f = self.task(tid).files.borrow().get(dirfd)?;
            return f.dentry.clone().ok_or(Errno::EBADF);
        }
        let start = if path[0] == b'/' {
            self.task(tid).fs.borrow().root.clone()
        } else {
            self.at_dir(tid, dirfd)?
        };
        if start.kind() != FileType::Directory && path[0] != b'/' {
            return Err(Errno::ENOTDIR);
        }
        let cred = self.cred(tid);
        let root = self.task(tid).fs.borrow().root.clone();
        Walk {
            k: self,
            cred: &cred,
            root: &root,
        }
        .resolve(&start, path, follow)
    }

    pub fn lookup(&self, tid: Tid, path: &[u8], follow: bool) -> SysResult<Rc<Dentry>> {
        self.lookup_at(tid, AT_FDCWD, path, follow, false)
    }

    /// Parent directory and last name of `path`.
    pub fn lookup_parent_at(
        &self,
        tid: Tid,
        dirfd: i32,
        path: &[u8],
    ) -> SysResult<(Rc<Dentry>, Vec<u8>)> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let start = if path[0] == b'/' {
            self.task(tid).fs.borrow().root.clone()
        } else {
            self.at_dir(tid, dirfd)?
        };
        let cred = self.cred(tid);
        let root = self.task(tid).fs.borrow().root.clone();
        Walk {
            k: self,
            cred: &cred,
            root: &root,
        }
        .resolve_parent(&start, path)
    }

    /// Opens what `d` names with open(2) `flags` (permissions checked).
    pub fn open_dentry(&self, tid: Tid, d: &Rc<Dentry>, flags: i32) -> SysResult<Rc<File>> {
        if flags & libc::O_PATH != 0 {
            if flags & libc::O_DIRECTORY != 0 && d.kind() != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            let ops: Rc<dyn super::FileOps> = Rc::new(super::hostfs::DirFile);
            return Ok(File::new(
                ops,
                flags & (libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_DIRECTORY),
                Some(d.clone()),
            ));
        }
        let st = d.inode.stat_for_check(self)?;
        let acc = flags & libc::O_ACCMODE;
        let mut want = 0;
        if acc == libc::O_RDONLY || acc == libc::O_RDWR {
            want |= MAY_READ;
        }
        if acc == libc::O_WRONLY || acc == libc::O_RDWR || flags & libc::O_TRUNC != 0 {
            want |= MAY_WRITE;
        }
        let kind = d.kind();
        if kind == FileType::Directory && want & MAY_WRITE != 0 {
            return Err(Errno::EISDIR);
        }
        if flags & libc::O_DIRECTORY != 0 && kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        // Directories do no direct I/O.
        if flags & libc::O_DIRECT != 0 && kind == FileType::Directory {
            return Err(Errno::EINVAL);
        }
        if kind == FileType::Symlink {
            return Err(Errno::ELOOP);
        }
        if want & MAY_WRITE != 0 && d.mount.readonly && kind == FileType::Regular {
            return Err(Errno::EROFS);
        }
        self.cred(tid).may_access(&st, want)?;
        let ops = d.inode.open(self, flags)?;
        let f = File::new(
            ops,
            flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC),
            Some(d.clone()),
        );
        f.notify_close.set(true);
        super::inotify::notify_open_close(d, super::inotify::IN_OPEN);
        // Linux truncates even when opened read-only (write permission
        // was checked above).
        if flags & libc::O_TRUNC != 0 && kind == FileType::Regular {
            if acc == libc::O_RDONLY {
                // The file is not open for writing: through the inode.
                d.inode.setattr(
                    self,
                    &super::SetAttr {
                        size: Some(0),
                        mtime: Some(super::inode::TimeSet::Now),
                        ..Default::default()
                    },
                )?;
            } else {
                f.ops.truncate(self, 0)?;
            }
            self.remove_privs(tid, d)?;
            super::inotify::notify_dentry(d, super::inotify::IN_MODIFY);
        }
        Ok(f)
    }

    /// Takes away the set-ID bits that a write or a truncation by `tid`
    /// takes from the regular file `d` names (`Cred::killed_by_write`),
    /// as Linux's `file_remove_privs` does before it writes: forced, the
    /// caller need not own the file. The mode comes from the inode's
    /// cached attributes (a Cell read on a host file: this runs on every
    /// write).
    pub fn remove_privs(&self, tid: Tid, d: &Rc<Dentry>) -> SysResult<()> {
        let st = d.inode.stat_cached(self)?;
        if st.st_mode & (libc::S_ISUID | libc::S_ISGID) == 0 {
            return Ok(());
        }
        let kill = self.cred(tid).killed_by_write(st.st_mode);
        if kill == 0 {
            return Ok(());
        }
        d.inode.setattr(
            self,
            &super::SetAttr {
                mode: Some(st.st_mode & 0o7777 & !kill),
                ..Default::default()
            },
        )?;
        super::inotify::notify_dentry(d, super::inotify::IN_ATTRIB);
        Ok(())
    }
}
