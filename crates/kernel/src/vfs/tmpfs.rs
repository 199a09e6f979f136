//! tmpfs: a file tree in the kernel's memory (mounts of type tmpfs, /dev,
//! /dev/shm). The bytes of its files are pages of the memory file (see
//! [`FileMem`]), charged to the container's cgroup, which shared
//! mappings map directly.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use super::file::{File, FileOps};
use super::inode::{DirEntry, FileType, Inode, SetAttr, TimeSet};
use super::iov::IoVecs;
use super::perm::Cred;
use super::xattr::Xattrs;
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::mm::filemem::{
    MAX_FILE_SIZE, SEAL_FUTURE_WRITE, SEAL_GROW, SEAL_SEAL, SEAL_SHRINK, SEAL_WRITE,
};
use crate::mm::{FileMem, MemoryFile};

pub enum Content {
    Dir(BTreeMap<Vec<u8>, Rc<dyn Inode>>),
    File(Rc<FileMem>),
    Symlink(Vec<u8>),
    Fifo,
    Socket,
}

pub struct TmpInode {
    pub dev: u64,
    pub ino: u64,
    pub meta: RefCell<libc::stat>,
    pub content: RefCell<Content>,
    /// user.* and trusted.* extended attributes.
    xattrs: RefCell<Xattrs>,
    me: Weak<TmpInode>,
}

/// The content of a new regular file: empty, in the memory file. Files
/// of tmpfs carry F_SEAL_SEAL (only memfds may be sealed).
pub fn new_file_content() -> Content {
    let m = FileMem::new_memory(&MemoryFile::current());
    m.seals.set(SEAL_SEAL);
    Content::File(m)
}

/// A regular file holding `data` (synthesized files: sysfs).
pub fn file_with(data: &[u8]) -> Content {
    let m = FileMem::new_memory(&MemoryFile::current());
    let _ = m.write_from(data, 0);
    m.seals.set(SEAL_SEAL);
    Content::File(m)
}

impl TmpInode {
    pub fn new(dev: u64, mode: u32, uid: u32, gid: u32, content: Content) -> Rc<TmpInode> {
        let ino = super::new_ino();
        let mut st = super::stat_of(dev, ino, mode, 1);
        st.st_uid = uid;
        st.st_gid = gid;
        if matches!(content, Content::Dir(_)) {
            st.st_nlink = 2;
        }
        Rc::new_cyclic(|me| TmpInode {
            dev,
            ino,
            meta: RefCell::new(st),
            content: RefCell::new(content),
            xattrs: RefCell::default(),
            me: me.clone(),
        })
    }

    /// A new tmpfs root directory.
    pub fn new_root(mode: u32, uid: u32, gid: u32) -> Rc<TmpInode> {
        TmpInode::new(
            super::new_dev(),
            libc::S_IFDIR | (mode & 0o7777),
            uid,
            gid,
            Content::Dir(BTreeMap::new()),
        )
    }

    fn rc(&self) -> Rc<TmpInode> {
        self.me.upgrade().expect("tmpfs inode alive")
    }

    /// Adds an entry (used to populate /dev).
    pub fn add(&self, name: &[u8], inode: Rc<dyn Inode>) {
        if let Content::Dir(d) = &mut *self.content.borrow_mut() {
            d.insert(name.to_vec(), inode);
        }
    }

    /// Adds directory `inode` under `name`, counting its `..` link here as
    /// mkdir does (a kernel-made /dev lists 5 links, as Linux's does, and
    /// an rmdir of one of them after an unmount leaves the count right).
    pub fn add_dir(&self, name: &[u8], inode: Rc<dyn Inode>) {
        self.add(name, inode);
        self.meta.borrow_mut().st_nlink += 1;
    }

    pub fn touch(&self, m: bool, c: bool) {
        let t = super::now();
        let mut st = self.meta.borrow_mut();
        if m {
            st.st_mtime = t.tv_sec;
            st.st_mtime_nsec = t.tv_nsec;
        }
        if c {
            st.st_ctime = t.tv_sec;
            st.st_ctime_nsec = t.tv_nsec;
        }
    }

    /// An access (read, readdir, readlink, a symlink followed) under
    /// Linux's default `relatime`: the access time moves when it is not
    /// after the last change or is a day old, so that `atime > mtime`
    /// still tells whether a file was read since it was written.
    pub fn touch_atime(&self) {
        let mut st = self.meta.borrow_mut();
        let a = (st.st_atime, st.st_atime_nsec);
        let stale = a <= (st.st_mtime, st.st_mtime_nsec) || a <= (st.st_ctime, st.st_ctime_nsec);
        let t = super::now();
        if stale || t.tv_sec - st.st_atime >= 24 * 3600 {
            st.st_atime = t.tv_sec;
            st.st_atime_nsec = t.tv_nsec;
        }
    }

    fn insert_new(&self, name: &[u8], inode: Rc<dyn Inode>) -> SysResult<()> {
        let mut c = self.content.borrow_mut();
        let Content::Dir(d) = &mut *c else {
            return Err(Errno::ENOTDIR);
        };
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.insert(name.to_vec(), inode);
        drop(c);
        self.touch(true, true);
        Ok(())
    }

    fn child_mode(&self, mode: u32, cred: &Cred) -> (u32, u32) {
        // setgid directories pass their group on.
        let st = self.meta.borrow();
        let (gid, mode) = cred.new_file_owner(st.st_mode, st.st_gid, mode);
        (mode, gid)
    }

    fn new_child(&self, mode: u32, cred: &Cred, content: Content) -> Rc<TmpInode> {
        let (mode, gid) = self.child_mode(mode, cred);
        TmpInode::new(self.dev, mode, cred.fsuid, gid, content)
    }
}

fn as_tmp(i: &Rc<dyn Inode>) -> Option<&TmpInode> {
    i.as_any().downcast_ref::<TmpInode>()
}

impl TmpInode {
    /// Its attributes; `blocks`: with the count of blocks that hold data,
    /// which asks the host where the file's pages are (`lseek`
    /// SEEK_DATA/SEEK_HOLE over each of its segments of the memory file).
    fn attrs(&self, blocks: bool) -> libc::stat {
        let mut st = *self.meta.borrow();
        match &*self.content.borrow() {
            Content::File(m) => {
                st.st_size = m.size() as i64;
                // Blocks that hold data: a sparse file counts only what
                // was written (Linux's shmem).
                if blocks {
                    st.st_blocks = (m.allocated() / 512) as i64;
                }
            }
            Content::Symlink(t) => st.st_size = t.len() as i64,
            Content::Dir(_) => st.st_size = 4096,
            _ => {}
        }
        st
    }
}

impl Inode for TmpInode {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.attrs(true))
    }
    /// Permission checks (an open's, a walk's, a setattr's) read the
    /// mode, owner and group only: no host calls for the block count.
    fn stat_for_check(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.attrs(false))
    }
    fn stat_cached(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.attrs(false))
    }
    fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
    fn kind(&self) -> FileType {
        FileType::from_mode(self.meta.borrow().st_mode)
    }
    fn lookup(&self, _k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        match &*self.content.borrow() {
            Content::Dir(d) => d.get(name).cloned().ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn readdir(&self, _k: &Kernel) -> SysResult<Vec<DirEntry>> {
        self.touch_atime();
        match &*self.content.borrow() {
            Content::Dir(d) => Ok(d
                .iter()
                .map(|(n, i)| DirEntry {
                    name: n.clone(),
                    ino: i.id().1,
                    kind: i.kind(),
                })
                .collect()),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        match self.kind() {
            FileType::Directory => Ok(Rc::new(super::hostfs::DirFile)),
            FileType::Regular => {
                if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
                    if let Content::File(m) = &*self.content.borrow() {
                        if m.size() > 0 && m.seals.get() & SEAL_SHRINK != 0 {
                            return Err(Errno::EPERM);
                        }
                        m.set_size(0);
                    }
                    self.touch(true, true);
                }
                Ok(Rc::new(TmpFile { inode: self.rc() }))
            }
            FileType::Fifo => k.fifos.open(k, self.id(), flags),
            _ => Err(Errno::ENXIO),
        }
    }
    fn readlink(&self, _k: &Kernel) -> SysResult<Vec<u8>> {
        match &*self.content.borrow() {
            Content::Symlink(t) => {
                self.touch_atime();
                Ok(t.clone())
            }
            _ => Err(Errno::EINVAL),
        }
    }
    fn create(
        &self,
        _k: &Kernel,
        name: &[u8],
        mode: u32,
        _flags: i32,
        cred: &Cred,
    ) -> SysResult<(Rc<dyn Inode>, Rc<dyn FileOps>)> {
        let f = self.new_child(libc::S_IFREG | (mode & 0o7777), cred, new_file_content());
        self.insert_new(name, f.clone())?;
        let ops: Rc<dyn FileOps> = Rc::new(TmpFile { inode: f.clone() });
        Ok((f, ops))
    }
    fn mkdir(&self, _k: &Kernel, name: &[u8], mode: u32, cred: &Cred) -> SysResult<()> {
        let mut m = libc::S_IFDIR | (mode & 0o7777);
        if self.meta.borrow().st_mode & libc::S_ISGID != 0 {
            m |= libc::S_ISGID;
        }
        let d = self.new_child(m, cred, Content::Dir(BTreeMap::new()));
        self.insert_new(name, d)?;
        self.meta.borrow_mut().st_nlink += 1;
        Ok(())
    }
    fn mknod(&self, _k: &Kernel, name: &[u8], mode: u32, _dev: u64, cred: &Cred) -> SysResult<()> {
        let content = match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => new_file_content(),
            libc::S_IFIFO => Content::Fifo,
            libc::S_IFSOCK => Content::Socket,
            _ => return Err(Errno::EPERM),
        };
        let m = if mode & libc::S_IFMT == 0 {
            mode | libc::S_IFREG
        } else {
            mode
        };
        let n = self.new_child(m, cred, content);
        self.insert_new(name, n)
    }
    fn symlink(&self, _k: &Kernel, name: &[u8], target: &[u8], cred: &Cred) -> SysResult<()> {
        let n = self.new_child(
            libc::S_IFLNK | 0o777,
            cred,
            Content::Symlink(target.to_vec()),
        );
        self.insert_new(name, n)
    }
    fn link(&self, _k: &Kernel, name: &[u8], target: &Rc<dyn Inode>) -> SysResult<()> {
        let t = as_tmp(target).ok_or(Errno::EXDEV)?;
        if t.dev != self.dev {
            return Err(Errno::EXDEV);
        }
        if t.kind() == FileType::Directory {
            return Err(Errno::EPERM);
        }
        self.insert_new(name, target.clone())?;
        t.meta.borrow_mut().st_nlink += 1;
        t.touch(false, true);
        Ok(())
    }
    fn unlink(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        let mut c = self.content.borrow_mut();
        let Content::Dir(d) = &mut *c else {
            return Err(Errno::ENOTDIR);
        };
        let child = d.get(name).ok_or(Errno::ENOENT)?;
        if child.kind() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        let child = d.remove(name).unwrap();
        drop(c);
        if let Some(t) = as_tmp(&child) {
            let mut st = t.meta.borrow_mut();
            st.st_nlink = st.st_nlink.saturating_sub(1);
        }
        self.touch(true, true);
        Ok(())
    }
    fn rmdir(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        let mut c = self.content.borrow_mut();
        let Content::Dir(d) = &mut *c else {
            return Err(Errno::ENOTDIR);
        };
        let child = d.get(name).ok_or(Errno::ENOENT)?;
        if child.kind() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if let Some(t) = as_tmp(child)
            && matches!(&*t.content.borrow(), Content::Dir(cd) if !cd.is_empty())
        {
            return Err(Errno::ENOTEMPTY);
        }
        d.remove(name);
        drop(c);
        let mut st = self.meta.borrow_mut();
        st.st_nlink = st.st_nlink.saturating_sub(1);
        drop(st);
        self.touch(true, true);
        Ok(())
    }
    fn rename(
        &self,
        _k: &Kernel,
        old: &[u8],
        new_dir: &Rc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        let nd = as_tmp(new_dir).ok_or(Errno::EXDEV)?;
        if nd.dev != self.dev {
            return Err(Errno::EXDEV);
        }
        let moving = self.lookup_raw(old)?;
        let existing = nd.lookup_raw(new).ok();
        if flags & libc::RENAME_NOREPLACE != 0 && existing.is_some() {
            return Err(Errno::EEXIST);
        }
        let moving_dir = moving.kind() == FileType::Directory;
        if flags & libc::RENAME_EXCHANGE != 0 {
            let other = existing.ok_or(Errno::ENOENT)?;
            // A directory's ".." links its parent: exchanging a directory
            // with a non-directory across parents moves one such link.
            let other_dir = other.kind() == FileType::Directory;
            if !std::ptr::eq(self, nd) && moving_dir != other_dir {
                let (from, to) = if moving_dir { (self, nd) } else { (nd, self) };
                from.meta.borrow_mut().st_nlink -= 1;
                to.meta.borrow_mut().st_nlink += 1;
            }
            self.put(old, other);
            nd.put(new, moving);
            self.touch(true, true);
            nd.touch(true, true);
            return Ok(());
        }
        if let Some(e) = &existing {
            if Rc::ptr_eq(e, &moving) {
                return Ok(());
            }
            match (
                moving.kind() == FileType::Directory,
                e.kind() == FileType::Directory,
            ) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    if let Some(t) = as_tmp(e)
                        && matches!(&*t.content.borrow(), Content::Dir(cd) if !cd.is_empty())
                    {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                _ => {}
            }
        }
        // A directory cannot move into itself.
        if moving.kind() == FileType::Directory && Rc::ptr_eq(&moving, new_dir) {
            return Err(Errno::EINVAL);
        }
        if let Content::Dir(d) = &mut *self.content.borrow_mut() {
            d.remove(old);
        }
        nd.put(new, moving);
        // Link counts as Linux's shmem_rename2 keeps them: a replaced
        // inode loses its name (a replaced directory is gone: 0 links); a
        // moved directory's ".." leaves the old parent and, unless it took
        // a replaced directory's place, adds one to the new parent.
        let replaced_dir = existing
            .as_ref()
            .is_some_and(|e| e.kind() == FileType::Directory);
        if let Some(t) = existing.as_ref().and_then(as_tmp) {
            let mut st = t.meta.borrow_mut();
            st.st_nlink = if replaced_dir {
                0
            } else {
                st.st_nlink.saturating_sub(1)
            };
        }
        if moving_dir {
            let mut st = self.meta.borrow_mut();
            st.st_nlink = st.st_nlink.saturating_sub(1);
            drop(st);
            if !replaced_dir {
                nd.meta.borrow_mut().st_nlink += 1;
            }
        }
        self.touch(true, true);
        nd.touch(true, true);
        Ok(())
    }
    fn setattr(&self, _k: &Kernel, a: &SetAttr) -> SysResult<()> {
        // truncate(2) to another size changes the data: mtime too (Linux's
        // shmem_setattr); to the same size only ctime.
        let mut resized = false;
        if let Some(size) = a.size {
            match &*self.content.borrow() {
                Content::File(m) => {
                    resized = m.size() != size;
                    resize(m, size)?
                }
                Content::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        if resized {
            self.touch(true, false);
        }
        let mut st = self.meta.borrow_mut();
        if let Some(m) = a.mode {
            st.st_mode = (st.st_mode & libc::S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = a.uid {
            st.st_uid = u;
        }
        if let Some(g) = a.gid {
            st.st_gid = g;
        }
        let set = |t: TimeSet| match t {
            TimeSet::Now => super::now(),
            TimeSet::At(ts) => ts,
        };
        if let Some(t) = a.atime {
            let t = set(t);
            st.st_atime = t.tv_sec;
            st.st_atime_nsec = t.tv_nsec;
        }
        if let Some(t) = a.mtime {
            let t = set(t);
            st.st_mtime = t.tv_sec;
            st.st_mtime_nsec = t.tv_nsec;
        }
        let now = super::now();
        st.st_ctime = now.tv_sec;
        st.st_ctime_nsec = now.tv_nsec;
        Ok(())
    }
    fn xattrs(&self) -> Option<&RefCell<Xattrs>> {
        Some(&self.xattrs)
    }
    fn xattr_changed(&self) {
        self.touch(false, true);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl TmpInode {
    fn lookup_raw(&self, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        match &*self.content.borrow() {
            Content::Dir(d) => d.get(name).cloned().ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn put(&self, name: &[u8], i: Rc<dyn Inode>) {
        if let Content::Dir(d) = &mut *self.content.borrow_mut() {
            d.insert(name.to_vec(), i);
        }
    }
}

/// truncate(2) of an in-memory file, as its seals allow.
fn resize(m: &Rc<FileMem>, size: u64) -> SysResult<()> {
    if size > MAX_FILE_SIZE {
        return Err(Errno::EFBIG);
    }
    let seals = m.seals.get();
    if (size < m.size() && seals & SEAL_SHRINK != 0) || (size > m.size() && seals & SEAL_GROW != 0)
    {
        return Err(Errno::EPERM);
    }
    m.set_size(size);
    Ok(())
}

/// An open tmpfs regular file.
pub struct TmpFile {
    inode: Rc<TmpInode>,
}

impl TmpFile {
    fn mem(&self) -> SysResult<Rc<FileMem>> {
        match &*self.inode.content.borrow() {
            Content::File(m) => Ok(m.clone()),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl FileOps for TmpFile {
    fn read(&self, _k: &Kernel, f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        let m = self.mem()?;
        if f.flags.get() & libc::O_NOATIME == 0 {
            self.inode.touch_atime();
        }
        let mut done = 0usize;
        for iov in &dst.iovs {
            // SAFETY: the iovec points at iov_len writable bytes.
            let buf =
                unsafe { std::slice::from_raw_parts_mut(iov.iov_base as *mut u8, iov.iov_len) };
            let n = m.read_into(buf, off + done as u64)?;
            done += n;
            if n < buf.len() {
                break;
            }
        }
        Ok(done)
    }
    fn write(&self, k: &Kernel, f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        let m = self.mem()?;
        let seals = m.seals.get();
        if seals & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let off = if f.flags.get() & libc::O_APPEND != 0 {
            m.size()
        } else {
            off
        };
        let end = off.checked_add(src.len as u64).ok_or(Errno::EFBIG)?;
        if end > m.size() && seals & SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        // The container's memory holds tmpfs too: full is ENOSPC.
        if end > m.size() {
            k.may_commit(end - m.size()).map_err(|_| Errno::ENOSPC)?;
        }
        let mut done = 0usize;
        for iov in &src.iovs {
            // SAFETY: the iovec points at iov_len readable bytes.
            let buf = unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) };
            match m.write_from(buf, off + done as u64) {
                Ok(n) => done += n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        self.inode.touch(true, true);
        Ok(done)
    }
    fn seekable(&self) -> bool {
        true
    }
    fn truncate(&self, _k: &Kernel, len: u64) -> SysResult<()> {
        resize(&self.mem()?, len)?;
        self.inode.touch(true, true);
        Ok(())
    }
    fn size(&self, _k: &Kernel) -> Option<u64> {
        self.mem().ok().map(|m| m.size())
    }
    fn allocate(&self, mode: i32, off: u64, len: u64) -> SysResult<()> {
        let m = self.mem()?;
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        match mode {
            0 => {
                if end > m.size() {
                    if m.seals.get() & SEAL_GROW != 0 {
                        return Err(Errno::EPERM);
                    }
                    if end > MAX_FILE_SIZE {
                        return Err(Errno::EFBIG);
                    }
                    m.populate(off, len)?;
                    m.extend(end);
                    return Ok(());
                }
                m.populate(off, len)
            }
            x if x == libc::FALLOC_FL_KEEP_SIZE => m.populate(off, len),
            x if x == libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE => {
                if m.seals.get() & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
                    return Err(Errno::EPERM);
                }
                m.zero_range(off, len.min(m.size().saturating_sub(off)));
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }
    fn pages(&self, _k: &Kernel) -> SysResult<Option<Rc<FileMem>>> {
        self.mem().map(Some)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
