//! devpts: the filesystem of /dev/pts. `ptmx` makes a new pseudo-terminal
//! pair on each open (its master); `N` is the slave of pair N while its
//! master is open. Each mount is its own instance (Linux's newinstance),
//! so pty numbers of one container are not seen by another.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use super::file::FileOps;
use super::inode::{DirEntry, FileType, Inode, SetAttr};
use super::pty::Pty;
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;

pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// /proc/sys/kernel/pty/max: more pairs at once is ENOSPC.
pub const PTY_MAX: u32 = 4096;

/// The live pairs of one instance, by number.
#[derive(Default)]
pub struct PtyTable {
    ptys: BTreeMap<u32, Weak<Pty>>,
}

impl PtyTable {
    /// The lowest free number, as Linux hands them out.
    fn alloc(&self) -> SysResult<u32> {
        (0..PTY_MAX)
            .find(|i| !self.ptys.contains_key(i))
            .ok_or(Errno::ENOSPC)
    }

    pub fn free(&mut self, index: u32) {
        self.ptys.remove(&index);
    }

    fn get(&self, index: u32) -> Option<Rc<Pty>> {
        self.ptys
            .get(&index)
            .and_then(|w| w.upgrade())
            .filter(|p| !p.master_gone())
    }
}

struct Devpts {
    dev: u64,
    table: Rc<RefCell<PtyTable>>,
}

/// The root directory of a devpts instance.
pub struct DevptsRoot(Rc<Devpts>);

pub fn new_devpts() -> Rc<dyn Inode> {
    Rc::new(DevptsRoot(Rc::new(Devpts {
        dev: super::new_dev(),
        table: Rc::new(RefCell::new(PtyTable::default())),
    })))
}

fn parse_index(name: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(name).ok()?;
    // "01" is not a pty's name.
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

impl Inode for DevptsRoot {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(self.0.dev, 1, libc::S_IFDIR | 0o755, 2))
    }
    fn id(&self) -> (u64, u64) {
        (self.0.dev, 1)
    }
    fn kind(&self) -> FileType {
        FileType::Directory
    }
    fn lookup(&self, _k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        if name == b"ptmx" {
            return Ok(Rc::new(Ptmx(self.0.clone())));
        }
        let i = parse_index(name).ok_or(Errno::ENOENT)?;
        let pty = self.0.table.borrow().get(i).ok_or(Errno::ENOENT)?;
        Ok(Rc::new(PtsNode(pty)))
    }
    fn readdir(&self, _k: &Kernel) -> SysResult<Vec<DirEntry>> {
        let mut v = vec![DirEntry {
            name: b"ptmx".to_vec(),
            ino: 2,
            kind: FileType::CharDev,
        }];
        let t = self.0.table.borrow();
        for i in t.ptys.keys() {
            if t.get(*i).is_some() {
                v.push(DirEntry {
                    name: i.to_string().into_bytes(),
                    ino: *i as u64 + 3,
                    kind: FileType::CharDev,
                });
            }
        }
        Ok(v)
    }
    fn open(&self, _k: &Kernel, _flags: i32) -> SysResult<Rc<dyn FileOps>> {
        Ok(Rc::new(super::hostfs::DirFile))
    }
    fn statfs(&self, _k: &Kernel) -> SysResult<libc::statfs> {
        // SAFETY: statfs is plain data.
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        s.f_type = DEVPTS_SUPER_MAGIC;
        s.f_bsize = 4096;
        s.f_frsize = 4096;
        s.f_namelen = 255;
        Ok(s)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// /dev/pts/ptmx: each open is a new pair's master.
struct Ptmx(Rc<Devpts>);

impl Inode for Ptmx {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mut st = super::stat_of(self.0.dev, 2, libc::S_IFCHR | 0o666, 1);
        st.st_rdev = libc::makedev(5, 2);
        Ok(st)
    }
    fn id(&self) -> (u64, u64) {
        (self.0.dev, 2)
    }
    fn kind(&self) -> FileType {
        FileType::CharDev
    }
    fn open(&self, k: &Kernel, _flags: i32) -> SysResult<Rc<dyn FileOps>> {
        let index = self.0.table.borrow().alloc()?;
        let tid = k.current.get();
        // The slave belongs to whoever made the pair, mode 0620 (devpts's
        // default mode= option).
        let owner = match k.tasks.get(&tid) {
            Some(t) => {
                let c = &k.groups[&t.tgid].cred;
                (c.fsuid, c.fsgid, 0o620)
            }
            None => (0, 0, 0o620),
        };
        let pty = Pty::new(index, self.0.dev, owner, Rc::downgrade(&self.0.table));
        self.0
            .table
            .borrow_mut()
            .ptys
            .insert(index, Rc::downgrade(&pty));
        Ok(pty.master())
    }
    fn setattr(&self, _k: &Kernel, _a: &SetAttr) -> SysResult<()> {
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// /dev/pts/N: opens pair N's slave.
struct PtsNode(Rc<Pty>);

impl Inode for PtsNode {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.0.slave_stat())
    }
    fn id(&self) -> (u64, u64) {
        (self.0.dev, self.0.index as u64 + 3)
    }
    fn kind(&self) -> FileType {
        FileType::CharDev
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        Ok(self.0.open_slave(k, flags)?)
    }
    /// chmod and chown of the slave (grantpt in older C libraries).
    fn setattr(&self, _k: &Kernel, a: &SetAttr) -> SysResult<()> {
        let (mut uid, mut gid, mut mode) = self.0.owner.get();
        if let Some(m) = a.mode {
            mode = m & 0o7777;
        }
        if let Some(u) = a.uid {
            uid = u;
        }
        if let Some(g) = a.gid {
            gid = g;
        }
        self.0.owner.set((uid, gid, mode));
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::parse_index;

    #[test]
    fn only_canonical_numbers_name_ptys() {
        assert_eq!(parse_index(b"0"), Some(0));
        assert_eq!(parse_index(b"17"), Some(17));
        assert_eq!(parse_index(b"017"), None);
        assert_eq!(parse_index(b"x"), None);
        assert_eq!(parse_index(b""), None);
    }
}
