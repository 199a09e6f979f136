//! The root filesystem overlay (gVisor's `--overlay2=root:memory`): the
//! container's rootfs is the read-only *lower* layer, every change goes
//! to an *upper* layer held by the kernel, a tmpfs tree whose file pages
//! live in the memory file and so count against the container's memory
//! limit (a write that does not fit fails with ENOSPC, as on tmpfs).
//!
//! The semantics are Linux overlayfs's (the way Docker's overlay2 driver
//! mounts it, without `redirect_dir`):
//! - a name is looked up in the upper directory first; a *whiteout*
//!   there hides the lower name, an *opaque* upper directory hides the
//!   whole lower directory;
//! - a file is *copied up* (data, mode, owner, times) before its first
//!   change: open for writing, truncate, chmod/chown/utimes, link; its
//!   directories are copied up first, down from the root;
//! - unlink and rmdir of a lower name leave a whiteout; a directory made
//!   where a whiteout was is opaque;
//! - renaming a directory that has a lower part fails with EXDEV (`mv`
//!   then copies), as overlayfs without redirect_dir does;
//! - inode numbers stay those of the lower file across copy-up, merged
//!   directories report one link (so `find` does not trust their link
//!   count), everything is on the overlay's own device;
//! - a copy-up breaks a lower hard link (the other names keep the lower
//!   file), and a descriptor opened read-only before a copy-up keeps
//!   reading the lower file: both as overlayfs without its index feature.
//!
//! Whiteouts and opaque marks are the overlay's own tables (keyed by the
//! upper directory's inode number), not special files in the upper tmpfs,
//! so nothing but this module has to know about them.

mod account;
mod copy_up;
mod inode;
mod names;

pub use account::upper_bytes_of;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::{Rc, Weak};

use crate::mm::FileMem;

use super::inode::{FileType, Inode};
use super::tmpfs::TmpInode;
use super::walkcache::{NameKey, WalkCache, name_key, with_key};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

/// statfs f_type of Linux overlayfs.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
/// Inode numbers of files that exist only in the upper layer: the upper
/// tmpfs numbers with this bit, so they never equal a lower file's
/// (host file systems' numbers stay far below it; overlayfs's `xino`
/// does the same with high bits).
const UPPER_INO: u64 = 1 << 62;
/// Lower objects on another device than the lower root (the mounts under
/// the rootfs that the gofer sees: /proc, /dev, bind mounts) get their
/// device's index in these bits, so that two roots numbered 1 on two
/// devices stay two objects (overlayfs's `xino` idea).
const LOWER_DEV_SHIFT: u32 = 52;

/// One overlay: a lower root, an upper tmpfs tree and the overlay's own
/// bookkeeping of that tree.
pub struct OverlayFs {
    dev: u64,
    /// The lower root: what statfs describes (the upper layer's room is
    /// the container's memory).
    lower_root: Rc<dyn Inode>,
    /// Devices of lower objects met so far; the first is the lower root's.
    lower_devs: RefCell<Vec<u64>>,
    /// Upper directory inode → names it hides in the lower directory.
    whiteouts: RefCell<HashMap<u64, BTreeSet<Vec<u8>>>>,
    /// Upper directories that hide their lower directory entirely.
    opaque: RefCell<HashSet<u64>>,
    /// Upper inode → the inode number its lower original had (copy-up
    /// keeps st_ino, as overlayfs's "origin" does).
    origin: RefCell<HashMap<u64, u64>>,
    /// The pod container whose root this is (0: the sandbox's own, whose
    /// limit is the sandbox's), and the pages of its upper files.
    container: u32,
    files: RefCell<Vec<Weak<FileMem>>>,
    /// The children looked up most recently, kept alive (`children` only
    /// finds those something else holds): without them every walk
    /// through the overlay built each component's object again, from
    /// both layers. Inodes hold their file system, so this and they keep
    /// each other: a pod container's overlay is released explicitly when
    /// the container ends (`release_container`).
    recent: RefCell<Recent>,
}

/// (directory inode number, name) → the child, kept alive.
type Recent = WalkCache<NameKey, Rc<OvlInode>>;

/// Most children kept alive per overlay.
const RECENT_MAX: usize = 8192;

thread_local! {
    /// Overlays of pod containers, by container number.
    static OVERLAYS: RefCell<Vec<(u32, Weak<OverlayFs>)>> = const { RefCell::new(Vec::new()) };
}

/// Pod container `n` is gone (its mounts with it): its overlay keeps no
/// children alive any more, so the overlay and its layers go with the
/// last open file or working directory in it.
pub fn release_container(n: u32) {
    let gone: Vec<Rc<OverlayFs>> = OVERLAYS.with(|o| {
        let mut o = o.borrow_mut();
        let gone = o
            .iter()
            .filter(|(c, _)| *c == n)
            .filter_map(|(_, w)| w.upgrade())
            .collect();
        o.retain(|(c, w)| *c != n && w.strong_count() > 0);
        gone
    });
    for fs in gone {
        let recent = std::mem::replace(&mut *fs.recent.borrow_mut(), WalkCache::new(0));
        drop(recent);
    }
}

/// A file of the overlay: its lower object, its upper one, or both (a
/// merged directory, or a copied-up file whose lower original is kept
/// for its inode number).
pub struct OvlInode {
    fs: Rc<OverlayFs>,
    /// Where it is: its parent and its name there (None for the root). A
    /// copy-up makes it there.
    parent: RefCell<Option<(Rc<OvlInode>, Vec<u8>)>>,
    lower: Option<Rc<dyn Inode>>,
    upper: RefCell<Option<Rc<dyn Inode>>>,
    ino: u64,
    kind: FileType,
    /// Unlinked, or its name replaced: it may still be open (or a cwd),
    /// but nothing may be created in it and it is never copied up again.
    dead: Cell<bool>,
    /// Children looked up so far, while something holds them: one live
    /// object per name, so a copy-up is seen by every holder.
    /// foldhash, as the walk caches (`walkcache`): a walk looks here at
    /// every component, and SipHash was a visible share of an overlay stat.
    children: RefCell<HashMap<Vec<u8>, Weak<OvlInode>, foldhash::fast::RandomState>>,
    me: Weak<OvlInode>,
}

/// The upper layer's inodes are tmpfs inodes.
fn tmp(i: &Rc<dyn Inode>) -> &TmpInode {
    i.as_any()
        .downcast_ref::<TmpInode>()
        .expect("overlay upper layer is tmpfs")
}

/// An overlay over `lower` (the root of the rootfs of pod container
/// `container`, 0 for the sandbox's own). The upper root starts as a copy
/// of the lower root's attributes.
pub fn new_overlay(k: &Kernel, lower: Rc<dyn Inode>, container: u32) -> SysResult<Rc<dyn Inode>> {
    let st = lower.stat(k)?;
    let upper = TmpInode::new_root(st.st_mode & 0o7777, st.st_uid, st.st_gid);
    copy_up::set_times(&upper, &st);
    let fs = Rc::new(OverlayFs {
        dev: super::new_dev(),
        lower_root: lower.clone(),
        lower_devs: RefCell::new(vec![st.st_dev]),
        whiteouts: Default::default(),
        opaque: Default::default(),
        origin: RefCell::new(HashMap::from([(upper.ino, st.st_ino)])),
        container,
        files: Default::default(),
        recent: RefCell::new(WalkCache::new(RECENT_MAX)),
    });
    if container != 0 {
        OVERLAYS.with(|o| o.borrow_mut().push((container, Rc::downgrade(&fs))));
    }
    Ok(OvlInode::new(
        &fs,
        None,
        Some(lower),
        Some(upper as Rc<dyn Inode>),
        st.st_ino,
        FileType::Directory,
    ))
}

impl OverlayFs {
    fn is_whiteout(&self, dir: u64, name: &[u8]) -> bool {
        self.whiteouts
            .borrow()
            .get(&dir)
            .is_some_and(|s| s.contains(name))
    }
    fn add_whiteout(&self, dir: u64, name: &[u8]) {
        self.whiteouts
            .borrow_mut()
            .entry(dir)
            .or_default()
            .insert(name.to_vec());
    }
    /// Drops the whiteout of `name` in `dir`; whether there was one.
    fn take_whiteout(&self, dir: u64, name: &[u8]) -> bool {
        self.whiteouts
            .borrow_mut()
            .get_mut(&dir)
            .is_some_and(|s| s.remove(name))
    }
    /// An upper directory went: its bookkeeping goes with it.
    fn forget_dir(&self, dir: u64) {
        self.whiteouts.borrow_mut().remove(&dir);
        self.opaque.borrow_mut().remove(&dir);
    }
    fn is_opaque(&self, dir: u64) -> bool {
        self.opaque.borrow().contains(&dir)
    }
    /// The overlay's inode number of a lower object: its own on the lower
    /// root's device, with its device's index above it elsewhere.
    fn lower_ino(&self, (dev, ino): (u64, u64)) -> u64 {
        let mut devs = self.lower_devs.borrow_mut();
        let i = match devs.iter().position(|d| *d == dev) {
            Some(i) => i,
            None => {
                devs.push(dev);
                devs.len() - 1
            }
        } as u64;
        ino | (i << LOWER_DEV_SHIFT)
    }

    /// The overlay's inode number of an upper inode.
    fn upper_ino(&self, upper: u64) -> u64 {
        self.origin
            .borrow()
            .get(&upper)
            .copied()
            .unwrap_or(upper | UPPER_INO)
    }
}

impl OvlInode {
    fn new(
        fs: &Rc<OverlayFs>,
        parent: Option<(Rc<OvlInode>, Vec<u8>)>,
        lower: Option<Rc<dyn Inode>>,
        upper: Option<Rc<dyn Inode>>,
        ino: u64,
        kind: FileType,
    ) -> Rc<OvlInode> {
        Rc::new_cyclic(|me| OvlInode {
            fs: fs.clone(),
            parent: RefCell::new(parent),
            lower,
            upper: RefCell::new(upper),
            ino,
            kind,
            dead: Cell::new(false),
            children: Default::default(),
            me: me.clone(),
        })
    }

    fn rc(&self) -> Rc<OvlInode> {
        self.me.upgrade().expect("overlay inode alive")
    }

    fn upper(&self) -> Option<Rc<dyn Inode>> {
        self.upper.borrow().clone()
    }

    /// The layer that answers for it now: upper once it has one.
    fn top(&self) -> Rc<dyn Inode> {
        self.upper()
            .or_else(|| self.lower.clone())
            .expect("overlay inode has a layer")
    }

    /// Whether the lower layer shows through this directory.
    fn lower_visible(&self) -> Option<&Rc<dyn Inode>> {
        let opaque = self.upper().is_some_and(|u| self.fs.is_opaque(tmp(&u).ino));
        self.lower.as_ref().filter(|_| !opaque)
    }

    /// Whether the lower directory has `name` showing through here
    /// (removing or replacing it then needs a whiteout).
    fn lower_has(&self, k: &Kernel, name: &[u8]) -> SysResult<bool> {
        let Some(l) = self.lower_visible() else {
            return Ok(false);
        };
        match l.lookup(k, name) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The child `name`, as an overlay inode.
    fn child(&self, k: &Kernel, name: &[u8]) -> SysResult<Rc<OvlInode>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if self.dead.get() {
            return Err(Errno::ENOENT);
        }
        if let Some(c) = self.children.borrow().get(name).and_then(Weak::upgrade) {
            // Recently used again (it stays kept).
            drop(with_key(self.ino, name, |k| {
                self.fs.recent.borrow_mut().get(k)
            }));
            return Ok(c);
        }
        let upper = self.upper();
        let up = match &upper {
            Some(u) if self.fs.is_whiteout(tmp(u).ino, name) => return Err(Errno::ENOENT),
            Some(u) => match u.lookup(k, name) {
                Ok(i) => Some(i),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        // The lower layer counts for a lower-only name, and under an upper
        // directory for a merged directory.
        let want_lower = up.as_ref().is_none_or(|u| u.kind() == FileType::Directory);
        let low = match self.lower_visible() {
            Some(l) if want_lower => match l.lookup(k, name) {
                Ok(i) => Some(i),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let me = Some((self.rc(), name.to_vec()));
        let c = match (up, low) {
            (None, None) => return Err(Errno::ENOENT),
            (Some(u), low) => {
                let ino = self.fs.upper_ino(tmp(&u).ino);
                let kind = u.kind();
                // A lower directory under an upper one merges with it; any
                // other lower object is hidden by the upper one.
                let low = low.filter(|l| {
                    kind == FileType::Directory
                        && l.kind() == FileType::Directory
                        && !self.fs.is_opaque(tmp(&u).ino)
                });
                OvlInode::new(&self.fs, me, low, Some(u), ino, kind)
            }
            (None, Some(l)) => {
                let (ino, kind) = (self.fs.lower_ino(l.id()), l.kind());
                OvlInode::new(&self.fs, me, Some(l), None, ino, kind)
            }
        };
        self.children
            .borrow_mut()
            .insert(name.to_vec(), Rc::downgrade(&c));
        let evicted = self
            .fs
            .recent
            .borrow_mut()
            .insert(name_key(self.ino, name), c.clone());
        drop(evicted);
        Ok(c)
    }

    /// The name's cached object is no longer what the name leads to.
    fn forget_child(&self, name: &[u8]) {
        self.children.borrow_mut().remove(name);
        let gone = with_key(self.ino, name, |k| self.fs.recent.borrow_mut().remove(k));
        drop(gone);
    }

    /// The stat the overlay shows: the top layer's, on the overlay's
    /// device with the overlay's inode number.
    fn present(&self, mut st: libc::stat) -> libc::stat {
        st.st_dev = self.fs.dev;
        st.st_ino = self.ino;
        // A merged directory's link count is not known without listing
        // both layers: 1, as overlayfs reports, tells `find` not to count
        // on it.
        if self.kind == FileType::Directory && self.lower.is_some() && self.upper().is_some() {
            st.st_nlink = 1;
        }
        st
    }
}

fn as_ovl(i: &Rc<dyn Inode>) -> Option<&OvlInode> {
    i.as_any().downcast_ref::<OvlInode>()
}
