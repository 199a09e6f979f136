//! The overlay's files as the VFS sees them: each answer from the layer
//! that holds the object now, changes after a copy-up.

use std::any::Any;
use std::collections::HashSet;
use std::rc::Rc;

use super::{OVERLAYFS_SUPER_MAGIC, OvlInode, tmp};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::vfs::file::FileOps;
use crate::vfs::inode::{DirEntry, FileType, Inode, SetAttr};
use crate::vfs::perm::Cred;

/// Opening for writing (or truncating) changes the file.
fn writes(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

impl Inode for OvlInode {
    fn stat(&self, k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.present(self.top().stat(k)?))
    }
    fn stat_for_check(&self, k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.present(self.top().stat_for_check(k)?))
    }
    fn stat_cached(&self, k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.present(self.top().stat_cached(k)?))
    }
    fn id(&self) -> (u64, u64) {
        (self.fs.dev, self.ino)
    }
    fn kind(&self) -> FileType {
        self.kind
    }
    fn lookup(&self, k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        Ok(self.child(k, name)?)
    }
    fn readdir(&self, k: &Kernel) -> SysResult<Vec<DirEntry>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let upper = self.upper();
        if let Some(u) = &upper {
            for mut e in u.readdir(k)? {
                e.ino = self.fs.upper_ino(e.ino);
                seen.insert(e.name.clone());
                out.push(e);
            }
        }
        if let Some(l) = self.lower_visible() {
            let dir = upper.as_ref().map(|u| tmp(u).ino);
            let dev = l.id().0;
            for mut e in l.readdir(k)? {
                if !seen.contains(&e.name) && !dir.is_some_and(|d| self.fs.is_whiteout(d, &e.name))
                {
                    e.ino = self.fs.lower_ino((dev, e.ino));
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        if self.kind == FileType::Regular && writes(flags) {
            // O_TRUNC: the data would be thrown away at once.
            let data = flags & libc::O_TRUNC == 0;
            let ops = self.copy_up(k, data)?.open(k, flags)?;
            return Ok(self.fs.wrap(ops));
        }
        let ops = self.top().open(k, flags)?;
        Ok(match self.upper() {
            Some(_) if self.kind == FileType::Regular => self.fs.wrap(ops),
            _ => ops,
        })
    }
    fn readlink(&self, k: &Kernel) -> SysResult<Vec<u8>> {
        self.top().readlink(k)
    }
    fn create(
        &self,
        k: &Kernel,
        name: &[u8],
        mode: u32,
        flags: i32,
        cred: &Cred,
    ) -> SysResult<(Rc<dyn Inode>, Rc<dyn FileOps>)> {
        let dir = self.prepare_new(k, name)?;
        let (made, ops) = dir.create(k, name, mode, flags, cred)?;
        self.made(&dir, name);
        self.fs.track(&made);
        Ok((self.child(k, name)?, self.fs.wrap(ops)))
    }
    fn mkdir(&self, k: &Kernel, name: &[u8], mode: u32, cred: &Cred) -> SysResult<()> {
        let dir = self.prepare_new(k, name)?;
        dir.mkdir(k, name, mode, cred)?;
        if self.made(&dir, name) {
            // The lower directory of that name stays hidden.
            let made = dir.lookup(k, name)?;
            self.fs.opaque.borrow_mut().insert(tmp(&made).ino);
        }
        Ok(())
    }
    fn mknod(&self, k: &Kernel, name: &[u8], mode: u32, dev: u64, cred: &Cred) -> SysResult<()> {
        let dir = self.prepare_new(k, name)?;
        dir.mknod(k, name, mode, dev, cred)?;
        self.made(&dir, name);
        if let Ok(made) = dir.lookup(k, name) {
            self.fs.track(&made);
        }
        Ok(())
    }
    fn symlink(&self, k: &Kernel, name: &[u8], target: &[u8], cred: &Cred) -> SysResult<()> {
        let dir = self.prepare_new(k, name)?;
        dir.symlink(k, name, target, cred)?;
        self.made(&dir, name);
        Ok(())
    }
    fn link(&self, k: &Kernel, name: &[u8], target: &Rc<dyn Inode>) -> SysResult<()> {
        self.link_to(k, name, target)
    }
    fn unlink(&self, k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.remove(k, name, false)
    }
    fn rmdir(&self, k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.remove(k, name, true)
    }
    fn rename(
        &self,
        k: &Kernel,
        old: &[u8],
        new_dir: &Rc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        self.rename_to(k, old, new_dir, new, flags)
    }
    fn setattr(&self, k: &Kernel, a: &SetAttr) -> SysResult<()> {
        // Truncating to nothing needs none of the old data.
        let data = a.size != Some(0);
        self.copy_up(k, data)?.setattr(k, a)
    }
    fn statfs(&self, k: &Kernel) -> SysResult<libc::statfs> {
        let mut s = self.fs.lower_root.statfs(k)?;
        s.f_type = OVERLAYFS_SUPER_MAGIC;
        Ok(s)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
