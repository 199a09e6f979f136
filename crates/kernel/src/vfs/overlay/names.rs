//! Changes to a directory's names: making, linking, removing and
//! renaming, with the whiteouts and opaque marks they need.

use std::rc::Rc;

use super::{OvlInode, as_ovl, tmp};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::vfs::inode::{FileType, Inode};

/// renameat2's RENAME_WHITEOUT: overlayfs's own tool, not offered.
const RENAME_WHITEOUT: u32 = 1 << 2;

impl OvlInode {
    /// Before `name` is made here: it must not exist, this directory must
    /// be alive and is copied up. Returns the upper directory.
    pub(super) fn prepare_new(&self, k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        match self.child(k, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) if !self.dead.get() => {}
            Err(e) => return Err(e),
        }
        let dir = self.copy_up(k, true)?;
        self.forget_child(name);
        Ok(dir)
    }

    /// `name` was made in the upper directory `dir`: it hides the lower
    /// name itself now. Whether a whiteout had hidden it.
    pub(super) fn made(&self, dir: &Rc<dyn Inode>, name: &[u8]) -> bool {
        self.fs.take_whiteout(tmp(dir).ino, name)
    }

    pub(super) fn link_to(&self, k: &Kernel, name: &[u8], target: &Rc<dyn Inode>) -> SysResult<()> {
        let t = as_ovl(target).ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        let dir = self.prepare_new(k, name)?;
        let up = t.copy_up(k, true)?;
        dir.link(k, name, &up)?;
        self.made(&dir, name);
        Ok(())
    }

    /// unlink (`dir` false) or rmdir of `name`.
    pub(super) fn remove(&self, k: &Kernel, name: &[u8], dir: bool) -> SysResult<()> {
        let c = self.child(k, name)?;
        match (dir, c.kind == FileType::Directory) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            (true, true) if !c.readdir(k)?.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let below = self.lower_has(k, name)?;
        let up = self.copy_up(k, true)?;
        if let Some(cu) = c.upper() {
            if dir {
                // Empty as the workload sees it, so empty in the upper
                // layer too (whiteouts are not entries there).
                up.rmdir(k, name)?;
                self.fs.forget_dir(tmp(&cu).ino);
            } else {
                up.unlink(k, name)?;
            }
        }
        if below {
            self.fs.add_whiteout(tmp(&up).ino, name);
            tmp(&up).touch(true, true);
        }
        c.dead.set(true);
        self.forget_child(name);
        Ok(())
    }

    pub(super) fn rename_to(
        &self,
        k: &Kernel,
        old: &[u8],
        new_dir: &Rc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        let nd = as_ovl(new_dir).ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if flags & RENAME_WHITEOUT != 0 {
            return Err(Errno::EINVAL);
        }
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let src = self.child(k, old)?;
        let dst = match nd.child(k, new) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) if !nd.dead.get() => None,
            Err(e) => return Err(e),
        };
        if flags & libc::RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        if let Some(d) = &dst {
            // Two names of one file: nothing to do, as Linux.
            if d.ino == src.ino {
                return Ok(());
            }
            if !exchange {
                match (
                    src.kind == FileType::Directory,
                    d.kind == FileType::Directory,
                ) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !d.readdir(k)?.is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        // A directory with a lower part cannot move: overlayfs without
        // redirect_dir says EXDEV, and `mv` copies it instead.
        let moving = [Some(&src), dst.as_ref().filter(|_| exchange)];
        if moving
            .iter()
            .flatten()
            .any(|o| o.kind == FileType::Directory && o.lower.is_some())
        {
            return Err(Errno::EXDEV);
        }
        let below_old = self.lower_has(k, old)?;
        let below_new = nd.lower_has(k, new)?;
        src.copy_up(k, true)?;
        if let (true, Some(d)) = (exchange, &dst) {
            d.copy_up(k, true)?;
        }
        let su = self.copy_up(k, true)?;
        let du = nd.copy_up(k, true)?;
        // A replaced directory's upper part goes with the tmpfs rename.
        let replaced = dst
            .as_ref()
            .filter(|d| !exchange && d.kind == FileType::Directory)
            .and_then(|d| d.upper());
        su.rename(k, old, &du, new, flags)?;
        nd.made(&du, new);
        if let Some(r) = replaced {
            self.fs.forget_dir(tmp(&r).ino);
        }
        if !exchange && below_old {
            self.fs.add_whiteout(tmp(&su).ino, old);
        }
        // A directory that moves onto a lower directory's name hides it.
        let hide = |o: &Rc<OvlInode>, below: bool| {
            if below
                && o.kind == FileType::Directory
                && let Some(u) = o.upper()
            {
                self.fs.opaque.borrow_mut().insert(tmp(&u).ino);
            }
        };
        hide(&src, below_new);
        self.forget_child(old);
        nd.forget_child(new);
        *src.parent.borrow_mut() = Some((nd.rc(), new.to_vec()));
        nd.children
            .borrow_mut()
            .insert(new.to_vec(), Rc::downgrade(&src));
        if let Some(d) = dst {
            if exchange {
                hide(&d, below_old);
                *d.parent.borrow_mut() = Some((self.rc(), old.to_vec()));
                self.children
                    .borrow_mut()
                    .insert(old.to_vec(), Rc::downgrade(&d));
            } else {
                d.dead.set(true);
            }
        }
        Ok(())
    }
}
