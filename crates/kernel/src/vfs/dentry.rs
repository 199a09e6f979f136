//! Dentries and path resolution.
//!
//! Resolution is done here, in the kernel, one component at a time:
//! `..` never leaves the process root, mounts are crossed explicitly, and
//! symlink targets are resolved again from the (virtual) root or the
//! symlink's directory, so a symlink can never lead outside the sandbox's
//! file tree. The gofer only ever sees single names relative to a
//! directory it already holds.

use std::rc::Rc;

use super::inode::{FileType, Inode};
use super::mount::Mount;
use super::perm::{Cred, MAY_EXEC};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

pub const MAX_SYMLINKS: u32 = 40;
pub const NAME_MAX: usize = 255;

pub struct Dentry {
    pub name: Vec<u8>,
    /// None at the root of a mount.
    pub parent: Option<Rc<Dentry>>,
    pub inode: Rc<dyn Inode>,
    pub mount: Rc<Mount>,
}

impl Dentry {
    pub fn mount_root(m: Rc<Mount>) -> Rc<Dentry> {
        Rc::new(Dentry {
            name: Vec::new(),
            parent: None,
            inode: m.root.clone(),
            mount: m,
        })
    }

    /// A dentry for `inode` that belongs to no directory (what a /proc
    /// magic link of a pipe or socket leads to).
    pub fn mount_root_with(m: Rc<Mount>, inode: Rc<dyn Inode>) -> Rc<Dentry> {
        Rc::new(Dentry {
            name: Vec::new(),
            parent: None,
            inode,
            mount: m,
        })
    }

    pub fn child(parent: &Rc<Dentry>, name: &[u8], inode: Rc<dyn Inode>) -> Rc<Dentry> {
        Rc::new(Dentry {
            name: name.to_vec(),
            parent: Some(parent.clone()),
            inode,
            mount: parent.mount.clone(),
        })
    }

    /// Same object through the same mount.
    pub fn same(&self, other: &Dentry) -> bool {
        self.mount.id == other.mount.id && self.inode.id() == other.inode.id()
    }

    pub fn kind(&self) -> FileType {
        self.inode.kind()
    }

    /// Absolute path from the sandbox's root.
    pub fn path(self: &Rc<Self>, _k: &Kernel) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut d = self.clone();
        loop {
            if let Some(p) = d.parent.clone() {
                parts.push(d.name.clone());
                d = p;
            } else if let Some(mp) = d.mount.mountpoint.clone() {
                d = mp;
            } else {
                break;
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}

/// Where resolution starts and what confines it.
pub struct Walk<'a> {
    pub k: &'a Kernel,
    pub cred: &'a Cred,
    /// The process root: `..` stops here, absolute paths start here.
    pub root: &'a Rc<Dentry>,
}

impl Walk<'_> {
    fn parent_of(&self, d: &Rc<Dentry>) -> Rc<Dentry> {
        let mut cur = d.clone();
        loop {
            if cur.same(self.root) {
                return cur;
            }
            if let Some(p) = &cur.parent {
                return p.clone();
            }
            // At a mount root: continue from the mount point.
            match &cur.mount.mountpoint {
                Some(mp) => cur = mp.clone(),
                None => return cur,
            }
        }
    }

    /// Follows mounts stacked on `d`.
    fn cross_mounts(&self, mut d: Rc<Dentry>) -> Rc<Dentry> {
        let mounts = self.k.mounts.borrow();
        while let Some(m) = mounts.covering(&d) {
            d = Dentry::mount_root(m);
        }
        d
    }

    /// Resolves `path` from `start`; the last component is followed if it
    /// is a symlink and `follow` is set.
    pub fn resolve(&self, start: &Rc<Dentry>, path: &[u8], follow: bool) -> SysResult<Rc<Dentry>> {
        let mut links = 0;
        self.walk(start, path, follow, &mut links)
    }

    /// Resolves all but the last component; returns the parent directory
    /// and the last name ("." or ".." when the path ends in one).
    pub fn resolve_parent(
        &self,
        start: &Rc<Dentry>,
        path: &[u8],
    ) -> SysResult<(Rc<Dentry>, Vec<u8>)> {
        let Some((dir, name)) = split_parent(path)? else {
            // The path is "/" (or only slashes).
            return Ok((self.root.clone(), b".".to_vec()));
        };
        let mut links = 0;
        let parent = self.walk(start, dir, true, &mut links)?;
        if parent.kind() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        // Looking up the last name needs search permission on its
        // directory, checked before the name is (Linux's may_lookup for
        // every component): EACCES, not ENOENT or EEXIST.
        let st = parent.inode.stat_cached(self.k)?;
        self.cred.may_access(&st, MAY_EXEC)?;
        Ok((parent, name.to_vec()))
    }

    fn walk(
        &self,
        start: &Rc<Dentry>,
        path: &[u8],
        follow: bool,
        links: &mut u32,
    ) -> SysResult<Rc<Dentry>> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = if path[0] == b'/' {
            self.root.clone()
        } else {
            start.clone()
        };
        let (comps, trailing_slash) = components(path);
        let mut comps = comps.peekable();
        while let Some(c) = comps.next() {
            let last = comps.peek().is_none();
            if cur.kind() != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            let st = cur.inode.stat_cached(self.k)?;
            self.cred.may_access(&st, MAY_EXEC)?;
            if c == b"." {
                continue;
            }
            if c == b".." {
                cur = self.parent_of(&cur);
                continue;
            }
            if c.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            let inode = cur.inode.lookup(self.k, c)?;
            let d = self.cross_mounts(Dentry::child(&cur, c, inode));
            if d.kind() == FileType::Symlink && (!last || follow || trailing_slash) {
                *links += 1;
                if *links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                cur = match d.inode.magic_link(self.k) {
                    Some(target) => target?,
                    None => {
                        let target = d.inode.readlink(self.k)?;
                        if target.is_empty() {
                            return Err(Errno::ENOENT);
                        }
                        self.walk(&cur, &target, true, links)?
                    }
                };
            } else {
                cur = d;
            }
        }
        if trailing_slash && cur.kind() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

/// A path's components (the empty ones repeated slashes make dropped) and
/// whether it ends in a slash, which requires the last to be a directory.
/// Pure, like [`split_parent`], so the fuzzers can drive what resolution
/// makes of the workload's bytes.
pub fn split_path(path: &[u8]) -> (Vec<&[u8]>, bool) {
    let (comps, trailing_slash) = components(path);
    (comps.collect(), trailing_slash)
}

/// [`split_path`] without collecting the components (a walk takes them
/// one at a time; a path syscall then allocates no list of them).
pub fn components(path: &[u8]) -> (impl Iterator<Item = &[u8]>, bool) {
    let trailing_slash = path.len() > 1 && path.ends_with(b"/");
    let comps = path.split(|b| *b == b'/').filter(|c| !c.is_empty());
    (comps, trailing_slash)
}

/// The directory to walk and the last name of `path`, for the calls that
/// create, remove or rename a name; `None` when the path is only slashes
/// (the root itself).
pub fn split_parent(path: &[u8]) -> SysResult<Option<(&[u8], &[u8])>> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let trimmed = trim_trailing_slashes(path);
    let (dir, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|b| *b == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    if name.is_empty() {
        return Ok(None);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(Some((dir, name)))
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}
