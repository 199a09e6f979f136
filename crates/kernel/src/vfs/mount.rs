//! Mounts: which filesystem is seen at which directory.

use std::collections::HashSet;
use std::rc::Rc;

use super::dentry::Dentry;
use super::inode::Inode;

pub struct Mount {
    pub id: u32,
    pub root: Rc<dyn Inode>,
    /// Where it is mounted (None for the root mount).
    pub mountpoint: Option<Rc<Dentry>>,
    pub readonly: bool,
    pub fstype: String,
    pub source: String,
    /// Mount options as /proc/mounts shows them (besides rw/ro).
    pub options: String,
    pub noexec: bool,
    pub nosuid: bool,
    /// The mount namespace: 0 for the sandbox's, a pod container's
    /// number for the mounts of its rootfs (see kernel/pod.rs).
    pub ns: u32,
}

pub struct MountTable {
    mounts: Vec<Rc<Mount>>,
    next_id: u32,
    /// (mount, inode) of every mountpoint. A path walk asks [`covering`]
    /// at each component and the answer is nearly always no: one hash
    /// lookup instead of a look at every mount (foldhash, as the walk
    /// cache's: the keys are the sandbox's own).
    ///
    /// [`covering`]: MountTable::covering
    covered: HashSet<(u32, (u64, u64)), foldhash::fast::RandomState>,
    /// A filter in front of `covered`: the bit of every mountpoint's key
    /// (`filter_bit`) is set. Nearly every directory a walk passes is no
    /// mountpoint, and its bit is clear (a few dozen mountpoints set a
    /// few dozen of 1,024 bits): one bit test instead of hashing the key
    /// (a twentieth of the kernel's time in a loop of `stat` of a
    /// three-component path).
    covered_bits: [u64; FILTER_WORDS],
}

const FILTER_WORDS: usize = 16;

/// The filter bit of a mountpoint key: its inode number mixed with its
/// device and mount (neighbouring inode numbers land on different bits).
fn filter_bit((mount, (dev, ino)): (u32, (u64, u64))) -> usize {
    let x = ino ^ dev.rotate_left(23) ^ (mount as u64).rotate_left(47);
    let x = x ^ (x >> 11) ^ (x >> 29);
    x as usize % (FILTER_WORDS * 64)
}

impl MountTable {
    /// A table whose root mount is `root`.
    pub fn new(root: Rc<dyn Inode>, fstype: &str, source: &str, readonly: bool) -> MountTable {
        let m = Rc::new(Mount {
            id: 1,
            root,
            mountpoint: None,
            readonly,
            fstype: fstype.into(),
            source: source.into(),
            options: String::new(),
            noexec: false,
            nosuid: false,
            ns: 0,
        });
        MountTable {
            mounts: vec![m],
            next_id: 2,
            covered: HashSet::default(),
            covered_bits: [0; FILTER_WORDS],
        }
    }

    pub fn root_mount(&self) -> Rc<Mount> {
        self.mounts[0].clone()
    }

    pub fn root_dentry(&self) -> Rc<Dentry> {
        Dentry::mount_root(self.root_mount())
    }

    /// Mounts `fs` on `at` (the newest mount on a directory wins).
    #[allow(clippy::too_many_arguments)]
    pub fn mount(
        &mut self,
        at: Rc<Dentry>,
        fs: Rc<dyn Inode>,
        fstype: &str,
        source: &str,
        readonly: bool,
        options: &str,
        noexec: bool,
        nosuid: bool,
    ) -> Rc<Mount> {
        let ns = at.mount.ns;
        self.cover((at.mount.id, at.inode.id()));
        let m = Rc::new(Mount {
            id: self.next_id,
            root: fs,
            mountpoint: Some(at),
            readonly,
            fstype: fstype.into(),
            source: source.into(),
            options: options.into(),
            noexec,
            nosuid,
            ns,
        });
        self.next_id += 1;
        self.mounts.push(m.clone());
        m
    }

    /// A root mount of namespace `ns` (a pod container's rootfs): mounted
    /// nowhere, reached only through the root of that container's
    /// processes.
    pub fn add_root(
        &mut self,
        ns: u32,
        fs: Rc<dyn Inode>,
        fstype: &str,
        source: &str,
        readonly: bool,
    ) -> Rc<Dentry> {
        let m = Rc::new(Mount {
            id: self.next_id,
            root: fs,
            mountpoint: None,
            readonly,
            fstype: fstype.into(),
            source: source.into(),
            options: String::new(),
            noexec: false,
            nosuid: false,
            ns,
        });
        self.next_id += 1;
        self.mounts.push(m.clone());
        Dentry::mount_root(m)
    }

    /// Forgets every mount of namespace `ns` (its container is gone).
    pub fn drop_ns(&mut self, ns: u32) {
        if ns != 0 {
            self.mounts.retain(|m| m.ns != ns);
            let keys: Vec<_> = self
                .mounts
                .iter()
                .filter_map(|m| m.mountpoint.as_ref())
                .map(|mp| (mp.mount.id, mp.inode.id()))
                .collect();
            self.covered.clear();
            self.covered_bits = [0; FILTER_WORDS];
            for key in keys {
                self.cover(key);
            }
        }
    }

    /// Records the mountpoint `key` in `covered` and its filter.
    fn cover(&mut self, key: (u32, (u64, u64))) {
        let bit = filter_bit(key);
        self.covered_bits[bit / 64] |= 1 << (bit % 64);
        self.covered.insert(key);
    }

    /// The mount covering dentry `d`, if any (topmost first).
    pub fn covering(&self, d: &Dentry) -> Option<Rc<Mount>> {
        let want = (d.mount.id, d.inode.id());
        let bit = filter_bit(want);
        if self.covered_bits[bit / 64] & (1 << (bit % 64)) == 0 || !self.covered.contains(&want) {
            return None;
        }
        self.mounts
            .iter()
            .rev()
            .find(|m| {
                m.mountpoint
                    .as_ref()
                    .is_some_and(|mp| (mp.mount.id, mp.inode.id()) == want)
            })
            .cloned()
    }

    pub fn all(&self) -> &[Rc<Mount>] {
        &self.mounts
    }
}
