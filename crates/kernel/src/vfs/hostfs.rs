//! Files of the container's rootfs (and its bind mounts), served by the
//! gofer. Each inode holds a gofer fid; I/O goes straight to the host
//! descriptor the gofer donated at open.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atoll_gofer::{Fid, FileService};

use super::atime::{self, Atime, AtimeRule};
use super::file::{File, FileOps};
use super::hostwindow;
use super::inode::{DirEntry, FileType, Inode, SetAttr, TimeSet};
use super::iov::IoVecs;
use super::perm::Cred;
use super::walkcache::{NameKey, WalkCache, name_key, with_key};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::mm::FileMem;
use crate::mm::filemem::PageSource;

pub struct HostFs {
    pub svc: Rc<dyn FileService>,
    /// Walk cache: (directory fid, name) → inode. Every walk of a path
    /// component would otherwise be a host walk (or a round trip to the
    /// gofer). Entries are dropped when the kernel changes the directory
    /// entry (create, unlink, rename, ...); the least recently used go
    /// when it is full (see `walkcache`).
    cache: RefCell<Walks>,
    /// On a revalidated file system, names the host said were not there
    /// (and the kernel has not made since: `forget`). The host finding
    /// one later is a change from outside that the workload has now seen
    /// (a host process made the file): news (`news_from_outside`), so
    /// what the kernel read from the host before it, a window's file
    /// size among it, is asked again rather than trusted for the rest of
    /// `RECHECK_AFTER`. At most `MISSING_MAX`, forgotten all at once past
    /// that (news then comes only with time).
    missing: RefCell<HashSet<NameKey>>,
    /// Check each cached walk against the file system (it may change from
    /// outside the sandbox: a bind mount shared with the host).
    revalidate: bool,
    /// Attribute generations: what the kernel changed through this file
    /// system since an inode's attributes were read (see [`Generations`]).
    gens: Rc<Generations>,
    /// The host mount's access-time rule whether or not `gens` follows
    /// it: a file whose reads it says move no access time each is on a
    /// local file system, and may stream through a window
    /// (`HostRegular::of`).
    local: AtimeRule,
    /// Not overlayfs, whose mapping of a file opened before a copy-up
    /// stays on the lower file while its reads move to the upper one
    /// (overlayfs's "non-standard behavior"): a window would read stale
    /// bytes. Its files read with `preadv`.
    mappable: bool,
    /// The changes the kernel made to files' mode, owner or group (see
    /// `HostInode::st_for_check`). Unlike `gens`, writes and reads leave
    /// them, so an inode's mode, owner and group outlive the data changes
    /// that a permission check does not care about.
    modes: FileChanges,
    /// The fid of this file system's root (the service's root, or a
    /// directory walked to for a bind mount).
    root_fid: Fid,
    /// Root inodes handed out (`root`) and still alive: a mount holds
    /// one. Cached inodes hold their file system and the cache holds
    /// them, so the pair would keep each other (and every cached walk's
    /// host descriptor or gofer fid) until the sandbox ends; a pod's
    /// member containers come and go, each with its rootfs and bind
    /// mounts. When the last root inode goes (the mount is gone and no
    /// process has its root as working directory or open file), the cache
    /// is dropped and no longer filled: inodes still held (a working
    /// directory below the old mount point, an open file) go on working,
    /// uncached, and the file system goes with the last of them.
    roots: Cell<usize>,
    /// Bytes of directory listings its inodes keep (`LISTED_MAX`).
    listed: Cell<usize>,
}

/// Most bytes of directory listings a file system's inodes keep in all
/// (see `HostInode::list`; names and entries, `listing_bytes`): the
/// tests' Debian rootfs has ~16k entries under /usr, /etc and /var, about
/// 1 MiB.
const LISTED_MAX: usize = 4 << 20;

/// What a kept listing costs against `LISTED_MAX`.
fn listing_bytes(list: &[DirEntry]) -> usize {
    list.iter()
        .map(|e| e.name.len() + std::mem::size_of::<DirEntry>())
        .sum()
}

/// (directory fid, name) → the inode the walk found.
type Walks = WalkCache<NameKey, Rc<HostInode>>;

/// How long a cached walk on a revalidated file system stays checked
/// (see `HostInode::checked`). A `tar -x` into a bind mount asked the
/// host about every directory of every path it touched, six host stats
/// per created file, a quarter of its time; within this window the
/// common directories of consecutive paths are asked about once. FUSE's
/// entry timeout (which virtiofs uses) is 1 s by default; this is 500
/// times shorter, and news from outside ends it at once
/// (`news_from_outside`).
pub const RECHECK_AFTER: Duration = Duration::from_millis(2);

/// Most names a revalidated file system remembers as missing (see
/// `HostFs::missing`): a few hundred bytes each.
const MISSING_MAX: usize = 1024;

thread_local! {
    /// Moves on with `news_from_outside`: checks made before are stale.
    static NEWS: Cell<u64> = const { Cell::new(0) };
}

/// The sandbox may have learnt of a change made outside it (it slept
/// until a host event, a timer or a host signal): the next walk of each
/// cached name on a revalidated file system asks the host again, however
/// recent its last check. A workload told of a change by a host signal,
/// or one that waits for it, therefore sees it at once, and so does one
/// that polls for a name the host then makes (`HostFs::missing`); one
/// that learns of it otherwise without waiting (data already in a host
/// pipe, a file's content) sees it at most `RECHECK_AFTER` late.
pub fn news_from_outside() {
    NEWS.with(|n| n.set(n.get().wrapping_add(1)));
}

pub(super) fn news() -> u64 {
    NEWS.with(|n| n.get())
}

/// Whether what the host said at `at`, when `news()` was `n`, still
/// stands on a revalidated file system: less than `RECHECK_AFTER` ago,
/// with no news from outside since.
pub(super) fn still_current(at: Instant, n: u64) -> bool {
    n == news() && crate::clock::now().saturating_duration_since(at) < RECHECK_AFTER
}

/// Most cached walks: about half a KiB of sandbox memory each, so 16 MiB
/// at most, reached only by a workload that walks that many files (the
/// tests' Debian rootfs has ~16k under /usr, /etc and /var). With direct
/// file access a cached directory holds an `O_PATH` descriptor in the
/// kernel (other files hold none until opened: `atoll_gofer::direct`);
/// through the gofer every cached walk holds one in the gofer.
const CACHE_MAX: usize = 32 * 1024;

/// The walk caches' capacity: `CACHE_MAX`, or through the gofer half its
/// descriptor limit when that is lower (the workload's open files are
/// host descriptors too). When the kernel or the gofer runs out of
/// descriptors anyway, a walk or open drops its file system's cache and
/// tries again (`retry_with_fds`). Set once at start, before the kernel
/// confines itself (its filter has no getrlimit).
static CACHE_CAPACITY: AtomicUsize = AtomicUsize::new(4096);

/// Sizes the walk caches for a kernel whose RLIMIT_NOFILE is `nofile`
/// (the gofer's is the same), with direct file access or not.
pub fn size_walk_caches(nofile: u64, direct: bool) {
    let half = usize::try_from(nofile / 2).unwrap_or(usize::MAX);
    let cap = if direct {
        CACHE_MAX
    } else {
        half.clamp(256, CACHE_MAX)
    };
    CACHE_CAPACITY.store(cap, Ordering::Relaxed);
}

pub struct HostInode {
    fs: Rc<HostFs>,
    fid: Fid,
    id: (u64, u64),
    kind: FileType,
    /// Stat from the last walk or stat: mode and ownership for path-walk
    /// permission checks.
    st: Cell<libc::stat>,
    /// When `st` was fetched (see [`Generations`]).
    st_gen: Cell<Stamp>,
    /// The syscall (`run::serving`) during which `st` was read by a
    /// revalidation: that syscall's stats take it instead of asking the
    /// host again (an open's permission check right after its walk). 0:
    /// none.
    fresh: Cell<u64>,
    /// When the host last confirmed the walk that found this inode (a
    /// fresh walk or a revalidation), and `news()` then: on a revalidated
    /// file system, a cached walk checked within `RECHECK_AFTER` with no
    /// news since is taken as is.
    checked: Cell<(Instant, u64)>,
    /// The kernel changed the attributes since `st` was read
    /// (`setattr`): `stat_cached` reads them again.
    st_changed: Cell<bool>,
    /// `st`'s mode, owner and group are what the kernel's own last
    /// `setattr` made them, though its other fields are stale: a
    /// permission check may take them (`st_for_check`). `tar -x` sets
    /// owner, mode and times of every file in turn, and each check would
    /// otherwise ask the host again.
    perm_current: Cell<bool>,
    /// When `st` was read from the host, `news()` then, and the file
    /// system's `modes` serial then: what `stat_for_check` trusts.
    st_read: Cell<(Instant, u64, u64)>,
    /// Handed out by `HostFs::root` (counted in `HostFs::roots`).
    mount_root: bool,
    /// A regular file's read-only host descriptor, lent by the service
    /// (`FileService::open_shared`) at its first plain read-only open and
    /// to every later one (see `shares_read_descriptor`).
    read_fd: RefCell<Option<Rc<OwnedFd>>>,
    /// On a revalidated mount: when the host last allowed a plain
    /// read-only open of this file (which gave `read_fd`), and `news()`
    /// then (see `open_regular`).
    read_allowed: Cell<Option<(Instant, u64)>>,
    /// A directory's entries as last listed, and when (see `list`).
    listing: RefCell<Option<(Stamp, Vec<DirEntry>)>>,
}

/// Whether an open with `flags` may take the inode's shared read-only
/// host descriptor instead of opening the file on the host again, as
/// gVisor's gofer dentries keep one read handle for all their files. Its
/// reads all name their offset (`preadv`), and locks, offsets and status
/// flags are the kernel's own, per open file, so nothing of the host's
/// open file is shared but the inode it reaches, the one this kernel
/// inode stands for (the first open checked it). Flags that change what
/// the host does with a descriptor (writing, appending, truncating,
/// synced I/O, no access time) open one of its own. On a mount that the
/// host may change (`HostFs::revalidate`), each open is the host's to
/// allow (a mode, owner, ACL or label changed there refuses the next
/// open), but for `RECHECK_AFTER` after its last yes, with no news from
/// outside since, as the mount's walks and permission checks
/// (`HostInode::open_regular`); and only with direct access.
fn shares_read_descriptor(flags: i32) -> bool {
    flags
        & (libc::O_ACCMODE
            | libc::O_TRUNC
            | libc::O_APPEND
            | libc::O_SYNC
            | libc::O_DSYNC
            | libc::O_DIRECT
            | libc::O_NOATIME
            | libc::O_PATH)
        == libc::O_RDONLY
}

impl Drop for HostInode {
    fn drop(&mut self) {
        self.keep_listing(None);
        if self.mount_root {
            self.fs.unmounted();
        }
        // A file system's root fid lives as long as the file system.
        if self.fid != self.fs.root_fid {
            self.fs.svc.release(self.fid);
        }
    }
}

impl HostInode {
    /// Opens this regular file for I/O with `flags`: from its shared
    /// read-only descriptor where the flags allow (`shares_read_descriptor`),
    /// otherwise on the host.
    fn open_regular(&self, flags: i32) -> SysResult<HostRegular> {
        if self.fs.revalidate && shares_read_descriptor(flags) && self.fs.svc.direct() {
            // A mount the host may change: the host allows each open, but
            // within `RECHECK_AFTER` of its last yes, with no news from
            // outside since, its answer stands, as the mount's walks and
            // permission checks do (`recently_checked`, `st_for_check`):
            // a web server opening the same file for every request makes
            // one host open (and close) per window, not one per request.
            if let Some((at, n)) = self.read_allowed.get()
                && still_current(at, n)
                && let Some(fd) = self.read_fd.borrow().clone()
            {
                return Ok(HostRegular::new(fd, self.id, flags).of(&self.fs));
            }
            let fd = Rc::new(
                self.fs
                    .retry_with_fds(|| self.fs.svc.open(self.fid, libc::O_RDONLY))?,
            );
            *self.read_fd.borrow_mut() = Some(fd.clone());
            self.read_allowed.set(Some((crate::clock::now(), news())));
            return Ok(HostRegular::new(fd, self.id, flags).of(&self.fs));
        }
        if !self.fs.revalidate && shares_read_descriptor(flags) {
            if let Some(fd) = self.read_fd.borrow().clone() {
                return Ok(HostRegular::new(fd, self.id, flags).of(&self.fs));
            }
            let lent = self
                .fs
                .retry_with_fds(|| self.fs.svc.open_shared(self.fid).transpose())?;
            if let Some(fd) = lent {
                *self.read_fd.borrow_mut() = Some(fd.clone());
                return Ok(HostRegular::new(fd, self.id, flags).of(&self.fs));
            }
        }
        let fd = Rc::new(
            self.fs
                .retry_with_fds(|| self.fs.svc.open(self.fid, flags))?,
        );
        if flags & libc::O_TRUNC != 0 {
            self.fs.changed();
            hostwindow::shrank();
            if flags & libc::O_ACCMODE != libc::O_RDONLY
                && let Some(m) = FileMem::find_host(self.id)
            {
                m.set_size(0);
            }
        }
        Ok(HostRegular::new(fd, self.id, flags).of(&self.fs))
    }

    /// The directory's entries. Where the file system's cache is trusted
    /// and the kernel makes the host calls itself (direct access), the
    /// last listing is kept and taken again while the tree and the
    /// directory are unchanged (`Generations`), as long as the host's
    /// listing would leave the directory's access time (relatime's rule:
    /// `atime`), so that what the workload sees of the directory is what
    /// a host listing would have left. gVisor keeps a directory's entries
    /// where its cached metadata is authoritative in the same way.
    fn list(&self) -> SysResult<Vec<DirEntry>> {
        let gens = &self.fs.gens;
        let keep = !self.fs.revalidate
            && self.fs.svc.direct()
            && gens.atime.for_file(self.id.0, true) != Atime::Always;
        if gens.read_moves_atime(self.id, true) {
            // A host listing may move the access time, and only this
            // directory's: its attributes (through any inode of it) are
            // asked for again, the rest of the mount's stand.
            gens.file_changed(self.id);
        } else if keep
            && let Some((at, list)) = &*self.listing.borrow()
            && gens.current(self.id, *at)
        {
            return Ok(list.clone());
        }
        let stamp = gens.stamp();
        let list: Vec<DirEntry> = self
            .fs
            .svc
            .readdir(self.fid)
            .map_err(gerr)?
            .into_iter()
            .map(|d| DirEntry {
                name: d.name,
                ino: d.ino,
                kind: match d.kind {
                    libc::DT_DIR => FileType::Directory,
                    libc::DT_LNK => FileType::Symlink,
                    libc::DT_CHR => FileType::CharDev,
                    libc::DT_BLK => FileType::BlockDev,
                    libc::DT_FIFO => FileType::Fifo,
                    libc::DT_SOCK => FileType::Socket,
                    _ => FileType::Regular,
                },
            })
            .collect();
        self.keep_listing(keep.then(|| (stamp, list.clone())));
        Ok(list)
    }

    /// Keeps `listing` (or none) as this directory's, within the file
    /// system's budget (`LISTED_MAX`): past it the listing is not kept.
    fn keep_listing(&self, listing: Option<(Stamp, Vec<DirEntry>)>) {
        let listed = &self.fs.listed;
        if let Some((_, old)) = self.listing.borrow_mut().take() {
            listed.set(listed.get() - listing_bytes(&old));
        }
        if let Some((at, list)) = listing {
            let bytes = listing_bytes(&list);
            if listed.get() + bytes <= LISTED_MAX {
                listed.set(listed.get() + bytes);
                *self.listing.borrow_mut() = Some((at, list));
            }
        }
    }

    /// `st` was just read from the host.
    fn read_now(&self) {
        self.st_read
            .set((crate::clock::now(), news(), self.fs.modes.now()));
    }

    /// `st`, when a permission check may take it (see `stat_for_check`).
    fn st_for_check(&self) -> Option<libc::stat> {
        let (at, n, serial) = self.st_read.get();
        let fs = &self.fs;
        let unchanged = (!self.st_changed.get() || self.perm_current.get())
            && fs.modes.unchanged_since(self.id, serial);
        (unchanged && (!fs.revalidate || still_current(at, n))).then(|| self.st.get())
    }

    /// The group and mode of what `cred` makes here with `mode` (its type
    /// bits included): a set-group-ID directory passes its group on, as
    /// in Linux and as the host itself did (a chown to the creator's group
    /// would undo it), and strips set-group-ID from an outsider's program
    /// (`Cred::new_file_owner`).
    fn child_owner(&self, k: &Kernel, cred: &Cred, mode: u32) -> (u32, u32) {
        match self.stat_for_check(k) {
            Ok(st) => cred.new_file_owner(st.st_mode, st.st_gid, mode),
            Err(_) => (cred.fsgid, mode),
        }
    }

    /// After the kernel's own `setattr` (`done`: the host took all of
    /// it): `st`'s mode, owner and group become what the host now has,
    /// for the permission checks that follow (`st_for_check`, within the
    /// `RECHECK_AFTER` and news of the last host read on a revalidated
    /// mount). Not after a size change, which may drop set-user-ID and
    /// set-group-ID bits on the host.
    fn keep_perm(&self, a: &SetAttr, done: bool) {
        if !done || a.size.is_some() {
            self.perm_current.set(false);
            return;
        }
        let mut st = self.st.get();
        if let Some(mode) = a.mode {
            st.st_mode = (st.st_mode & libc::S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = a.uid {
            st.st_uid = uid;
        }
        if let Some(gid) = a.gid {
            st.st_gid = gid;
        }
        self.st.set(st);
        self.perm_current.set(true);
        // Trusted from now on as far as the kernel's own changes go, and
        // no longer than what the host last said: the time and news of
        // that read stay (a host chmod meanwhile is seen when they run
        // out, as after a stat).
        let (at, news, _) = self.st_read.get();
        self.st_read.set((at, news, self.fs.modes.now()));
    }

    /// The host confirmed the walk to this inode a moment ago (see
    /// `checked`).
    fn recently_checked(&self) -> bool {
        let (at, n) = self.checked.get();
        still_current(at, n)
    }
}

fn gerr(e: i32) -> Errno {
    Errno(e)
}

fn bump(g: &Cell<u64>) {
    g.set(g.get().wrapping_add(1));
}

/// Most files a [`Generations`] knows to be settled: one per cached walk
/// (every walk reads a file's attributes), 40 bytes each.
const SETTLED_MAX: usize = CACHE_MAX;

/// Most files whose changes a [`FileChanges`] remembers.
const FILE_CHANGES_MAX: usize = 4096;

/// Which files the kernel changed (in some respect) since when: a serial
/// that every change moves on, the serial of each file's last change (by
/// device and inode, so that a change reaches all the file's names), and
/// past `FILE_CHANGES_MAX` files a floor below which everything counts as
/// changed (the record is emptied to bound its size).
struct FileChanges {
    serial: Cell<u64>,
    files: RefCell<HashMap<(u64, u64), u64, foldhash::fast::RandomState>>,
    floor: Cell<u64>,
}

impl FileChanges {
    fn new() -> FileChanges {
        FileChanges {
            serial: Cell::new(0),
            files: RefCell::new(HashMap::default()),
            floor: Cell::new(0),
        }
    }

    /// Now, for something read now.
    fn now(&self) -> u64 {
        self.serial.get()
    }

    /// File `id` changed.
    fn changed(&self, id: (u64, u64)) {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let mut files = self.files.borrow_mut();
        if files.len() >= FILE_CHANGES_MAX && !files.contains_key(&id) {
            files.clear();
            self.floor.set(serial);
        }
        files.insert(id, serial);
    }

    /// Whether file `id` is unchanged since serial `at`.
    fn unchanged_since(&self, id: (u64, u64), at: u64) -> bool {
        at >= self.floor.get() && self.files.borrow().get(&id).is_none_or(|c| *c <= at)
    }
}

/// When attributes read from the host are still what it would say, on a
/// file system that nothing outside changes: the kernel changed nothing
/// since that they show.
/// - A change of the tree (create, link, unlink, rename, setattr, an
///   `O_TRUNC` open) moves the whole file system's generation on: it
///   changes directories' times and links and other names' attributes.
/// - A read, write, truncation, allocation or write-back of one file
///   (which moves its own access, change or modification time and size,
///   and no other file's) is counted for that file alone, by device and
///   inode, so that it reaches the file's every name (hard links). Reading
///   one file used to move the whole file system's generation on, so a
///   `stat` of any file after any read (a program's start reads its
///   libraries) went to the host again.
/// - Past `FILE_CHANGES_MAX` files the record is emptied, and every
///   attributes read before it go with it.
///
/// A read counts as a change only where it may move the access time on
/// the host (`atime`): under `relatime` a file whose attributes, as last
/// read and still current, show an access time after its modification and
/// change times and less than a day old is `settled`, and reading it
/// changes nothing the kernel caches.
pub struct Generations {
    tree: Cell<u64>,
    files: FileChanges,
    /// How reads on this file system's host mount move access times.
    atime: AtimeRule,
    /// Files whose access time a read leaves (by attributes read at the
    /// stamp, valid while it is current): (device, inode) → (until when on
    /// the kernel's clock, stamp). Emptied past `SETTLED_MAX` files.
    settled: RefCell<Settled>,
}

/// When an inode's attributes were read: (tree generation, file serial).
type Stamp = (u64, u64);

/// (device, inode) → (until when reads leave its access time, when its
/// attributes were read).
type Settled = HashMap<(u64, u64), (Instant, Stamp), foldhash::fast::RandomState>;

impl Generations {
    fn new(atime: AtimeRule) -> Generations {
        Generations {
            tree: Cell::new(0),
            files: FileChanges::new(),
            atime,
            settled: RefCell::new(HashMap::default()),
        }
    }

    /// Attributes `st` of a file were read from the host at `at` (a stamp
    /// taken before the read): whether its reads leave its access time.
    fn attrs_read(&self, st: &libc::stat, at: Stamp) {
        let id = (st.st_dev, st.st_ino);
        let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if self.atime.for_file(id.0, dir) != Atime::Relative {
            return;
        }
        let mut settled = self.settled.borrow_mut();
        let left = atime::settled_for(st.st_atime, atime::now_secs());
        match left.filter(|_| atime::relatime_settled(st)) {
            Some(left) => {
                if settled.len() >= SETTLED_MAX && !settled.contains_key(&id) {
                    settled.clear();
                }
                settled.insert(id, (crate::clock::now() + left, at));
            }
            None => {
                settled.remove(&id);
            }
        }
    }

    /// File `id` (a directory or not) is read on the host: a change of
    /// its attributes if that may move its access time.
    fn file_read(&self, id: (u64, u64), dir: bool) {
        if self.read_moves_atime(id, dir) {
            self.file_changed(id);
        }
    }

    /// Whether a read of file `id` may move its access time on the host.
    fn read_moves_atime(&self, id: (u64, u64), dir: bool) -> bool {
        match self.atime.for_file(id.0, dir) {
            Atime::Never => false,
            Atime::Always => true,
            Atime::Relative => {
                let Some(&(until, at)) = self.settled.borrow().get(&id) else {
                    return true;
                };
                !(self.current(id, at) && crate::clock::now() < until)
            }
        }
    }

    /// The tree changed: every inode's attributes are to be read again.
    fn tree_changed(&self) {
        bump(&self.tree);
    }

    /// File `id` changed (or was read: its access time may move).
    fn file_changed(&self, id: (u64, u64)) {
        self.files.changed(id);
    }

    /// Now, for attributes read now.
    fn stamp(&self) -> Stamp {
        (self.tree.get(), self.files.now())
    }

    /// Whether attributes of file `id` read at `at` are still current.
    fn current(&self, id: (u64, u64), at: Stamp) -> bool {
        at.0 == self.tree.get() && self.files.unchanged_since(id, at.1)
    }
}

impl HostFs {
    pub fn new(svc: Rc<dyn FileService>) -> Rc<HostFs> {
        HostFs::with(svc, false)
    }

    /// A file system over `svc` whose cached walks are revalidated (or not).
    pub fn with(svc: Rc<dyn FileService>, revalidate: bool) -> Rc<HostFs> {
        let root_fid = svc.root();
        HostFs::at(svc, root_fid, revalidate)
    }

    /// A file system rooted at `root_fid` of `svc` (which it then owns).
    pub fn at(svc: Rc<dyn FileService>, root_fid: Fid, revalidate: bool) -> Rc<HostFs> {
        // Where the host may change files, their attributes are asked
        // for again anyway; a trusted mount's rule comes from its flags.
        let (local, mappable) = match (svc.statfs(root_fid), svc.stat(root_fid)) {
            (Ok(sf), Ok(st)) => (AtimeRule::of_mount(&sf, st.st_dev), mappable(&sf)),
            _ => (AtimeRule::ALWAYS, false),
        };
        let atime = if revalidate { AtimeRule::ALWAYS } else { local };
        Rc::new(HostFs {
            svc,
            cache: RefCell::new(WalkCache::new(CACHE_CAPACITY.load(Ordering::Relaxed))),
            missing: RefCell::new(HashSet::new()),
            revalidate,
            gens: Rc::new(Generations::new(atime)),
            local,
            mappable,
            modes: FileChanges::new(),
            root_fid,
            roots: Cell::new(0),
            listed: Cell::new(0),
        })
    }

    /// The root inode, for a mount: while one is alive, walks are cached.
    pub fn root(self: &Rc<Self>) -> SysResult<Rc<dyn Inode>> {
        let fid = self.root_fid;
        let st = self.svc.stat(fid).map_err(gerr)?;
        let mut root = self.inode(fid, &st);
        // Fresh, so the only reference.
        if let Some(r) = Rc::get_mut(&mut root) {
            r.mount_root = true;
            self.roots.set(self.roots.get() + 1);
        }
        Ok(root)
    }

    fn inode(self: &Rc<Self>, fid: Fid, st: &libc::stat) -> Rc<HostInode> {
        let stamp = self.gens.stamp();
        self.gens.attrs_read(st, stamp);
        Rc::new(HostInode {
            fs: self.clone(),
            fid,
            id: (st.st_dev, st.st_ino),
            kind: FileType::from_mode(st.st_mode),
            st: Cell::new(*st),
            st_gen: Cell::new(stamp),
            fresh: Cell::new(0),
            checked: Cell::new((crate::clock::now(), news())),
            st_changed: Cell::new(false),
            perm_current: Cell::new(false),
            st_read: Cell::new((crate::clock::now(), news(), self.modes.now())),
            mount_root: false,
            read_fd: RefCell::new(None),
            read_allowed: Cell::new(None),
            listing: RefCell::new(None),
        })
    }

    /// The kernel changed the mode, owner or group of file `id`: what
    /// any of its inodes read before is stale for permission checks.
    fn mode_changed(&self, id: (u64, u64)) {
        self.modes.changed(id);
    }

    /// The kernel changed something through this file system: every
    /// inode's attributes are to be fetched again.
    fn changed(&self) {
        self.gens.tree_changed();
    }

    /// The last root inode is gone: drop the cached walks (outside the
    /// borrow: dropping them releases their fids).
    fn unmounted(&self) {
        self.roots.set(self.roots.get() - 1);
        if self.roots.get() == 0 {
            let cached = std::mem::replace(&mut *self.cache.borrow_mut(), WalkCache::new(0));
            drop(cached);
        }
    }

    /// `op`, again after dropping this file system's walk cache if the
    /// kernel had no descriptor left for it (the cached walks' descriptors
    /// are released with the cache, except those still in use).
    fn retry_with_fds<T>(&self, op: impl Fn() -> Result<T, i32>) -> SysResult<T> {
        match op() {
            Err(e) if e == libc::EMFILE || e == libc::ENFILE => {
                let dropped = std::mem::replace(
                    &mut *self.cache.borrow_mut(),
                    WalkCache::new(CACHE_CAPACITY.load(Ordering::Relaxed)),
                );
                drop(dropped);
                op().map_err(gerr)
            }
            r => r.map_err(gerr),
        }
    }

    /// The walk of `name` in directory `dir`, from the cache when it holds
    /// it (and, on a file system that may change from outside, the host
    /// still has it).
    fn walk_cached(self: &Rc<Self>, dir: Fid, name: &[u8]) -> SysResult<Rc<HostInode>> {
        let hit = with_key(dir, name, |k| self.cache.borrow_mut().get(k));
        if let Some(i) = hit {
            if !self.revalidate || i.recently_checked() {
                return Ok(i);
            }
            match self.svc.revalidate_stat(dir, name, i.id) {
                Some(Some(st)) => {
                    let stamp = self.gens.stamp();
                    self.gens.attrs_read(&st, stamp);
                    i.st.set(st);
                    i.st_gen.set(stamp);
                    i.fresh.set(crate::kernel::run::serving());
                    i.checked.set((crate::clock::now(), news()));
                    i.read_now();
                    return Ok(i);
                }
                Some(None) => return Ok(i),
                // Gone or replaced on the host, which the kernel did not
                // do (its own changes forget the name first).
                None => news_from_outside(),
            }
            with_key(dir, name, |k| self.cache.borrow_mut().remove(k));
        }
        let (fid, st) = match self.retry_with_fds(|| self.svc.walk(dir, name)) {
            Ok(found) => found,
            Err(e) => {
                if self.revalidate && e == Errno(libc::ENOENT) {
                    let mut missing = self.missing.borrow_mut();
                    if missing.len() >= MISSING_MAX {
                        missing.clear();
                    }
                    missing.insert(name_key(dir, name));
                }
                return Err(e);
            }
        };
        if self.revalidate
            && !self.missing.borrow().is_empty()
            && with_key(dir, name, |k| self.missing.borrow_mut().remove(k))
        {
            news_from_outside();
        }
        let inode = self.inode(fid, &st);
        if self.roots.get() == 0 {
            return Ok(inode);
        }
        let evicted = self
            .cache
            .borrow_mut()
            .insert(name_key(dir, name), inode.clone());
        // An evicted walk still held elsewhere (an open FIFO, an O_PATH
        // descriptor) can no longer be pinned when its name goes (see
        // `forget_pinned`): pin it now. Opened files already hold their
        // descriptor, so this costs host calls only for such rare holders.
        for i in evicted {
            if Rc::strong_count(&i) > 1 {
                self.svc.pin(i.fid);
            }
        }
        Ok(inode)
    }

    fn forget(&self, dir: Fid, name: &[u8]) {
        with_key(dir, name, |k| {
            self.cache.borrow_mut().remove(k);
            self.missing.borrow_mut().remove(k);
        });
    }

    /// As `forget`, before the kernel removes or replaces the name: an
    /// inode still held elsewhere (an open FIFO, an O_PATH descriptor, the
    /// syscall's own victim) is pinned first, so its attributes stay
    /// reachable once the name is gone (`FileService::pin`).
    fn forget_pinned(&self, dir: Fid, name: &[u8]) {
        let gone = with_key(dir, name, |k| {
            self.missing.borrow_mut().remove(k);
            self.cache.borrow_mut().remove(k)
        });
        if let Some(i) = gone
            && Rc::strong_count(&i) > 1
        {
            self.svc.pin(i.fid);
        }
    }
}

fn to_gofer_time(t: Option<TimeSet>) -> Option<atoll_gofer::Time> {
    t.map(|t| match t {
        TimeSet::Now => atoll_gofer::Time::Now,
        TimeSet::At(ts) => atoll_gofer::Time::At(ts.tv_sec, ts.tv_nsec),
    })
}

impl Inode for HostInode {
    /// On a file system whose cache is trusted (nothing outside the
    /// sandbox changes it: see docs/architecture.md, "Caching"), the
    /// attributes of the last walk or stat while the kernel changed
    /// nothing through it since; else, and for a file whose page cache
    /// may hold writes the host has not seen yet, the host's.
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let trusted = !self.fs.revalidate
            && (self.kind != FileType::Regular || FileMem::find_host(self.id).is_none());
        if self.fs.gens.current(self.id, self.st_gen.get())
            && (trusted || self.fresh.get() == crate::kernel::run::serving())
        {
            // Trusted, or read by this syscall's walk a moment ago (the
            // file may change on the host at any time: a stat a few
            // microseconds older within one syscall is one the host
            // could have raced anyway).
            return Ok(self.st.get());
        }
        let generation = self.fs.gens.stamp();
        let st = self.fs.svc.stat(self.fid).map_err(gerr)?;
        self.fs.gens.attrs_read(&st, generation);
        self.st.set(st);
        self.st_gen.set(generation);
        self.st_changed.set(false);
        self.read_now();
        Ok(st)
    }
    /// From `st` when it still tells this file's mode, owner and group:
    /// the kernel changed none of them since (through any name: the
    /// changes are counted per file), and on a file system that may
    /// change from outside it was read within `RECHECK_AFTER` with no
    /// news since, the rule its cached walks follow. (gVisor's permission
    /// checks take its cached mode, owner and group even on mounts it
    /// revalidates.)
    fn stat_for_check(&self, k: &Kernel) -> SysResult<libc::stat> {
        match self.st_for_check() {
            Some(st) => Ok(st),
            None => self.stat(k),
        }
    }
    fn stat_cached(&self, k: &Kernel) -> SysResult<libc::stat> {
        if self.st_changed.get()
            && let Ok(st) = self.stat(k)
        {
            return Ok(st);
        }
        Ok(self.st.get())
    }
    fn id(&self) -> (u64, u64) {
        self.id
    }
    fn kind(&self) -> FileType {
        self.kind
    }
    fn lookup(&self, _k: &Kernel, name: &[u8]) -> SysResult<Rc<dyn Inode>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.fs.walk_cached(self.fid, name)?)
    }
    fn readdir(&self, _k: &Kernel) -> SysResult<Vec<DirEntry>> {
        self.list()
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        match self.kind {
            FileType::Directory => Ok(Rc::new(DirFile)),
            FileType::Regular => Ok(Rc::new(self.open_regular(flags)?)),
            FileType::Fifo => k.fifos.open(k, self.id, flags),
            _ => Err(Errno::ENXIO),
        }
    }
    fn readlink(&self, _k: &Kernel) -> SysResult<Vec<u8>> {
        if self.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.fs.svc.readlink(self.fid).map_err(gerr)
    }
    fn create(
        &self,
        k: &Kernel,
        name: &[u8],
        mode: u32,
        flags: i32,
        cred: &Cred,
    ) -> SysResult<(Rc<dyn Inode>, Rc<dyn FileOps>)> {
        self.fs.forget(self.fid, name);
        let (gid, mode) = self.child_owner(k, cred, mode);
        let (fid, st, fd) = self
            .fs
            .svc
            .create(self.fid, name, flags, mode, cred.fsuid, gid)
            .map_err(gerr)?;
        self.fs.changed();
        if flags & libc::O_TRUNC != 0 {
            // A name made on the host meanwhile was truncated.
            hostwindow::shrank();
        }
        let id = (st.st_dev, st.st_ino);
        Ok((
            self.fs.inode(fid, &st),
            Rc::new(HostRegular::new(Rc::new(fd), id, flags).of(&self.fs)),
        ))
    }
    fn create_excl_checks_name(&self) -> bool {
        true
    }
    fn mkdir(&self, k: &Kernel, name: &[u8], mode: u32, cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        let (gid, _) = self.child_owner(k, cred, libc::S_IFDIR | mode);
        self.fs.changed();
        self.fs
            .svc
            .mkdir(self.fid, name, mode, cred.fsuid, gid)
            .map_err(gerr)
    }
    fn mknod(&self, k: &Kernel, name: &[u8], mode: u32, _dev: u64, cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        let (gid, mode) = self.child_owner(k, cred, mode);
        self.fs.changed();
        self.fs
            .svc
            .mknod(self.fid, name, mode, cred.fsuid, gid)
            .map_err(gerr)
    }
    fn symlink(&self, k: &Kernel, name: &[u8], target: &[u8], cred: &Cred) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        let (gid, _) = self.child_owner(k, cred, libc::S_IFLNK | 0o777);
        self.fs.changed();
        self.fs
            .svc
            .symlink(self.fid, name, target, cred.fsuid, gid)
            .map_err(gerr)
    }
    fn link(&self, _k: &Kernel, name: &[u8], target: &Rc<dyn Inode>) -> SysResult<()> {
        let t = target
            .as_any()
            .downcast_ref::<HostInode>()
            .ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        self.fs.forget(self.fid, name);
        self.fs.changed();
        self.fs.svc.link(t.fid, self.fid, name).map_err(gerr)
    }
    fn unlink(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.fs.forget_pinned(self.fid, name);
        self.fs.changed();
        self.fs.svc.unlink(self.fid, name, 0).map_err(gerr)
    }
    fn rmdir(&self, _k: &Kernel, name: &[u8]) -> SysResult<()> {
        self.fs.forget(self.fid, name);
        self.fs.changed();
        self.fs
            .svc
            .unlink(self.fid, name, libc::AT_REMOVEDIR)
            .map_err(gerr)
    }
    fn rename(
        &self,
        _k: &Kernel,
        old: &[u8],
        new_dir: &Rc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        let nd = new_dir
            .as_any()
            .downcast_ref::<HostInode>()
            .ok_or(Errno::EXDEV)?;
        if !Rc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        self.fs.forget_pinned(self.fid, old);
        self.fs.forget_pinned(nd.fid, new);
        self.fs.changed();
        self.fs
            .svc
            .rename(self.fid, old, nd.fid, new, flags)
            .map_err(gerr)
    }
    fn setattr(&self, _k: &Kernel, a: &SetAttr) -> SysResult<()> {
        let r = self
            .fs
            .svc
            .setattr(
                self.fid,
                &atoll_gofer::SetAttr {
                    mode: a.mode,
                    uid: a.uid,
                    gid: a.gid,
                    size: a.size,
                    atime: to_gofer_time(a.atime),
                    mtime: to_gofer_time(a.mtime),
                },
            )
            .map_err(gerr);
        self.fs.changed();
        // Changed: what the walk read is stale now. The next stat asks the
        // host (the generation moved on); so does the next check of
        // `stat_cached`, and only then: a `tar -x` sets owner, mode and
        // times of every file it makes and then never looks at them.
        self.fresh.set(0);
        self.st_changed.set(true);
        if a.mode.is_some() || a.uid.is_some() || a.gid.is_some() {
            self.fs.mode_changed(self.id);
        }
        if a.size.is_some() {
            hostwindow::shrank();
        }
        self.keep_perm(a, r.is_ok());
        if r.is_ok()
            && let Some(size) = a.size
            && let Some(m) = FileMem::find_host(self.id)
        {
            m.set_size(size);
        }
        r
    }
    fn statfs(&self, _k: &Kernel) -> SysResult<libc::statfs> {
        self.fs.svc.statfs(self.fid).map_err(gerr)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open directory; entries come from the inode (getdents).
pub struct DirFile;

impl FileOps for DirFile {
    fn read(&self, _k: &Kernel, _f: &File, _d: &IoVecs, _o: u64) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }
    fn seekable(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A regular host file: reads and writes go to the donated descriptor,
/// through the file's page cache while it has one (while something maps
/// the file), so they agree with what the mappings see.
pub struct HostRegular {
    pub fd: Rc<OwnedFd>,
    /// (device, inode) on the host: the key of the file's page cache.
    id: (u64, u64),
    writable: bool,
    /// Its page cache may outlive its users (a mount whose cache is
    /// trusted: see `FileMem::retain`).
    retain: bool,
    /// The attribute generations of its file system, which every read,
    /// write and size change moves on for this file (see [`Generations`]).
    gens: Option<Rc<Generations>>,
    /// Streaming reads through a mapped window of the file, on a file
    /// system whose cache is trusted (see `hostwindow`).
    stream: Option<hostwindow::Stream>,
}

/// The host descriptor as the source of a page cache.
struct HostPages {
    fd: Rc<OwnedFd>,
    writable: bool,
    /// The file's (device, inode) and its file system's generations, which
    /// write-back moves on for it (see [`Generations`]).
    id: (u64, u64),
    gens: Option<Rc<Generations>>,
}

fn last_errno() -> Errno {
    Errno::from_io(&std::io::Error::last_os_error())
}

/// One `preadv` or `pwritev` (`op`) of `iov` at `off` on host descriptor
/// `fd`.
///
/// # Safety
/// The iovecs must point at memory `op` may write (preadv) or read
/// (pwritev) for their stated lengths.
unsafe fn host_iov(
    op: unsafe extern "C" fn(i32, *const libc::iovec, i32, i64) -> isize,
    fd: i32,
    iov: &IoVecs,
    off: u64,
) -> SysResult<usize> {
    // SAFETY: the caller vouches for the iovecs.
    let n = unsafe { op(fd, iov.iovs.as_ptr(), iov.iovs.len() as i32, off as i64) };
    if n < 0 {
        return Err(last_errno());
    }
    Ok(n as usize)
}

impl PageSource for HostPages {
    fn read_at(&self, dst: &mut [u8], off: u64) -> SysResult<usize> {
        // An access time may move.
        if let Some(g) = &self.gens {
            g.file_read(self.id, false);
        }
        // SAFETY: dst is a valid buffer of its length.
        let n = unsafe {
            libc::pread(
                self.fd.as_raw_fd(),
                dst.as_mut_ptr() as *mut libc::c_void,
                dst.len(),
                off as i64,
            )
        };
        if n < 0 {
            return Err(last_errno());
        }
        Ok(n as usize)
    }
    fn write_at(&self, src: &[u8], off: u64) -> SysResult<usize> {
        if let Some(g) = &self.gens {
            g.file_changed(self.id);
        }
        // SAFETY: src is a valid buffer of its length.
        let n = unsafe {
            libc::pwrite(
                self.fd.as_raw_fd(),
                src.as_ptr() as *const libc::c_void,
                src.len(),
                off as i64,
            )
        };
        if n < 0 {
            return Err(last_errno());
        }
        Ok(n as usize)
    }
    fn size(&self) -> SysResult<u64> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } != 0 {
            return Err(last_errno());
        }
        Ok(st.st_size as u64)
    }
    fn writable(&self) -> bool {
        self.writable
    }
}

impl HostRegular {
    pub fn new(fd: Rc<OwnedFd>, id: (u64, u64), flags: i32) -> HostRegular {
        HostRegular {
            fd,
            id,
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            retain: false,
            gens: None,
            // O_DIRECT reads bypass the page cache a window would read.
            stream: (flags & libc::O_DIRECT == 0).then(hostwindow::Stream::default),
        }
    }

    /// Its file's attributes (times, size) may have changed on the host.
    fn changed(&self) {
        if let Some(g) = &self.gens {
            g.file_changed(self.id);
        }
    }

    /// A file of `fs`: its page cache is kept after its users go where
    /// `fs` is trusted, and its reads and writes move the file's attribute
    /// generation in `fs` on.
    fn of(mut self, fs: &HostFs) -> HostRegular {
        self.retain = !fs.revalidate;
        self.gens = Some(fs.gens.clone());
        // A mount that updates access times on every read: reads from a
        // mapping would leave them (its pages fault in once). The same
        // rule keeps windows off file systems that are not local ones
        // (NFS, FUSE: `AtimeRule::of_mount`), whose mappings may see a
        // change from outside later than their reads; overlayfs is kept
        // off too (`mappable`).
        if !streams(fs.mappable, &fs.local, self.id.0) {
            self.stream = None;
        } else if fs.revalidate && self.stream.is_some() {
            self.stream = Some(hostwindow::Stream::revalidated());
        }
        self
    }

    fn cache(&self) -> Option<Rc<FileMem>> {
        FileMem::find_host(self.id)
    }
}

impl FileOps for HostRegular {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        // An access time may move.
        if let Some(g) = &self.gens {
            g.file_read(self.id, false);
        }
        if let Some(m) = self.cache() {
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
            return Ok(done);
        }
        // SAFETY: the iovecs point at writable memory of their stated length.
        let preadv = || unsafe { host_iov(libc::preadv, self.fd.as_raw_fd(), dst, off) };
        match &self.stream {
            Some(s) => s.read(self.fd.as_raw_fd(), dst, off, preadv),
            None => preadv(),
        }
    }
    fn write(&self, _k: &Kernel, f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        self.changed();
        // SAFETY: the iovecs point at readable memory of their stated
        // length. With O_APPEND the host appends whatever `off` says.
        let n = unsafe { host_iov(libc::pwritev, self.fd.as_raw_fd(), src, off)? };
        if let Some(m) = self.cache() {
            // The cached pages get the same bytes (where it went: O_APPEND
            // writes at the end whatever `off` says).
            let mut at = if f.flags.get() & libc::O_APPEND != 0 {
                m.refresh_size().saturating_sub(n as u64)
            } else {
                off
            };
            let mut left = n as usize;
            for iov in &src.iovs {
                if left == 0 {
                    break;
                }
                let k = iov.iov_len.min(left);
                // SAFETY: the iovec points at iov_len readable bytes.
                let buf = unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, k) };
                m.host_written(at, buf);
                at += k as u64;
                left -= k;
            }
        }
        Ok(n as usize)
    }
    fn seekable(&self) -> bool {
        true
    }
    fn truncate(&self, _k: &Kernel, len: u64) -> SysResult<()> {
        self.changed();
        hostwindow::shrank();
        if unsafe { libc::ftruncate(self.fd.as_raw_fd(), len as i64) } < 0 {
            return Err(last_errno());
        }
        if let Some(m) = self.cache() {
            m.set_size(len);
        }
        Ok(())
    }
    fn sync(&self) -> SysResult<()> {
        // What mappings wrote is part of the file's data (fsync and
        // fdatasync flush it too).
        if let Some(m) = self.cache() {
            m.sync_all()?;
        }
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }
    fn allocate(&self, mode: i32, off: u64, len: u64) -> SysResult<()> {
        self.changed();
        // FALLOC_FL_COLLAPSE_RANGE shortens the file.
        hostwindow::shrank();
        if unsafe { libc::fallocate(self.fd.as_raw_fd(), mode, off as i64, len as i64) } < 0 {
            return Err(last_errno());
        }
        if let Some(m) = self.cache() {
            if mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
                m.zero_range(off, len);
            }
            m.refresh_size();
        }
        Ok(())
    }
    fn host_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }
    fn size(&self, _k: &Kernel) -> Option<u64> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } == 0).then_some(st.st_size as u64)
    }
    fn pages(&self, k: &Kernel) -> SysResult<Option<Rc<FileMem>>> {
        let src = Rc::new(HostPages {
            fd: self.fd.clone(),
            writable: self.writable,
            id: self.id,
            gens: self.gens.clone(),
        });
        let m = FileMem::for_host(&k.mf, self.id, src)?;
        if self.retain {
            m.retain();
        }
        Ok(Some(m))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for HostRegular {
    fn drop(&mut self) {
        // close: what mappings wrote reaches the host file.
        if let Some(m) = self.cache() {
            let _ = m.sync_all();
        }
    }
}

/// Whether a mapping of a file of the host mount `sf` describes reads
/// what its `read` would: not on overlayfs, whose mapping of a file opened
/// before a copy-up stays on the lower file.
fn mappable(sf: &libc::statfs) -> bool {
    sf.f_type != atime::OVERLAYFS_MAGIC
}

/// Whether reads of a file on device `dev` may stream through a window
/// (`hostwindow`): the mount is mappable, and a local file system whose
/// reads do not move access times every time (`AtimeRule::of_mount`: NFS,
/// FUSE, any other device below the mount's root and `strictatime` read
/// with `preadv`).
fn streams(mappable: bool, local: &AtimeRule, dev: u64) -> bool {
    mappable && local.for_file(dev, false) != Atime::Always
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    #[test]
    fn only_local_file_systems_on_the_mounts_own_device_stream_through_windows() {
        let sf = |f_type: i64, flags: libc::c_ulong| {
            // SAFETY: statfs is plain data.
            let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
            sf.f_type = f_type as _;
            *atime::statfs_flags(&mut sf) = flags as i64;
            sf
        };
        let relatime = libc::ST_RELATIME;
        // (f_type, mount flags, device of the file, streams?): the mount's
        // root is on device 7.
        let cases = [
            (0xEF53, relatime, 7, true),                  // ext4
            (0x0102_1994, relatime, 7, true),             // tmpfs
            (0x5846_5342, libc::ST_NOATIME, 7, true),     // xfs, noatime
            (0xEF53, 0, 7, false),                        // strictatime
            (0xEF53, relatime, 8, false),                 // another device below
            (0x6969, relatime, 7, false),                 // NFS
            (0x6573_5546, relatime, 7, false),            // FUSE
            (0x0000_9fa0, relatime, 7, false),            // proc
            (atime::OVERLAYFS_MAGIC, relatime, 7, false), // overlayfs
        ];
        for (i, (f_type, flags, dev, want)) in cases.into_iter().enumerate() {
            let sf = sf(f_type, flags);
            let local = AtimeRule::of_mount(&sf, 7);
            assert_eq!(streams(mappable(&sf), &local, dev), want, "case {i}");
        }
    }

    /// A kernel out of host descriptors drops its cached walks and walks
    /// on, instead of failing the workload's lookups with EMFILE.
    #[test]
    fn walks_go_on_when_the_cache_has_taken_every_descriptor() {
        let dir = std::env::temp_dir().join(format!("atoll-walkcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Directories: with direct access each cached one holds a
        // descriptor.
        for i in 0..200 {
            std::fs::create_dir_all(dir.join(format!("f{i}"))).unwrap();
        }
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // In a child: the descriptor limit is the process's.
        // SAFETY: fork in a test; the child only runs this code and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = std::panic::catch_unwind(|| {
                // SAFETY: open of a path we made; setrlimit of this child.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
                assert!(fd >= 0);
                let root = unsafe { OwnedFd::from_raw_fd(fd) };
                let svc: Rc<dyn FileService> =
                    Rc::new(atoll_gofer::direct::DirectFiles::new(root).unwrap());
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
                let fs = HostFs::new(svc.clone());
                let _mounted = fs.root().unwrap();
                let root_fid = svc.root();
                let mut held = Vec::new();
                for i in 0..200 {
                    let name = format!("f{i}");
                    held.push(fs.walk_cached(root_fid, name.as_bytes()).unwrap());
                    // Only the cache holds the walks.
                    held.clear();
                }
                assert!(fs.cache.borrow().len() < 64);
                assert!(!fs.cache.borrow().is_empty());
            })
            .is_ok();
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(if code { 0 } else { 1 }) };
        }
        let status = crate::testing::wait_child(pid);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed: {status:#x}"
        );
    }

    /// Direct access to the host directory `dir`, as the gofer donates it.
    fn direct_service(dir: &std::path::Path) -> Rc<dyn FileService> {
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: open of a path we made.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        assert!(fd >= 0);
        // SAFETY: a descriptor we just opened and own.
        let root_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Rc::new(atoll_gofer::direct::DirectFiles::new(root_fd).unwrap())
    }

    /// On a revalidated file system a cached walk the host confirmed
    /// less than `RECHECK_AFTER` ago, with no news from outside since, is
    /// taken without asking the host; past that, or after news, the host
    /// is asked and a name replaced on the host is walked anew.
    #[test]
    fn cached_walks_are_checked_again_after_a_moment_or_news_from_outside() {
        let dir = std::env::temp_dir().join(format!("atoll-recheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"1").unwrap();
        let svc = direct_service(&dir);
        let fs = HostFs::with(svc.clone(), true);
        let _root = fs.root().unwrap();
        // Replaces f on the host by a new file, a new inode (the old one
        // stays, under another name, so that its number is not reused).
        let kept = std::cell::Cell::new(0);
        let replace = || {
            kept.set(kept.get() + 1);
            std::fs::rename(&f, dir.join(format!("old{}", kept.get()))).unwrap();
            std::fs::write(&f, b"2").unwrap();
        };
        let first = fs.walk_cached(svc.root(), b"f").unwrap().id;
        replace();
        let again = fs.walk_cached(svc.root(), b"f").unwrap().id;
        assert_eq!(again, first, "checked a moment ago: taken as is");
        news_from_outside();
        let after_news = fs.walk_cached(svc.root(), b"f").unwrap().id;
        assert_ne!(after_news, first, "news from outside: asked again");
        replace();
        std::thread::sleep(RECHECK_AFTER + Duration::from_millis(1));
        let later = fs.walk_cached(svc.root(), b"f").unwrap().id;
        assert_ne!(later, after_news, "past the window: asked again");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// On a revalidated file system, a name the host said was missing and
    /// then has (a host process made it) is news from outside, and so is
    /// a cached name the host no longer has: what was read before is
    /// asked again. A name the kernel made itself is no news; nor is
    /// anything on a trusted file system.
    #[test]
    fn a_name_that_appears_or_goes_on_the_host_is_news() {
        let dir = std::env::temp_dir().join(format!("atoll-appears-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for revalidate in [true, false] {
            let svc = direct_service(&dir);
            let fs = HostFs::with(svc.clone(), revalidate);
            let _root = fs.root().unwrap();
            let root = svc.root();
            let n0 = news();
            assert!(fs.walk_cached(root, b"go").is_err());
            assert_eq!(news(), n0, "missing: no news yet");
            std::fs::write(dir.join("go"), b"").unwrap();
            fs.walk_cached(root, b"go").unwrap();
            assert_eq!(news() != n0, revalidate, "appeared from outside");
            // Made by the kernel: `create` forgets the name first.
            let n1 = news();
            assert!(fs.walk_cached(root, b"mine").is_err());
            fs.forget(root, b"mine");
            std::fs::write(dir.join("mine"), b"").unwrap();
            fs.walk_cached(root, b"mine").unwrap();
            assert_eq!(news(), n1, "the kernel's own name: no news");
            // Gone from outside, seen once its check is stale.
            std::fs::remove_file(dir.join("go")).unwrap();
            std::thread::sleep(RECHECK_AFTER + Duration::from_millis(1));
            let walked = fs.walk_cached(root, b"go");
            assert_eq!(walked.is_err(), revalidate, "trusted: the cache holds it");
            assert_eq!(news() != n1, revalidate, "gone from outside");
            std::fs::remove_file(dir.join("mine")).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A permission check takes the attributes read a moment ago unless
    /// the kernel changed the file's mode or owner since, through any of
    /// its names; on a revalidated file system only within
    /// `RECHECK_AFTER` of the read and with no news from outside since.
    #[test]
    fn checks_take_recent_attributes_unless_the_mode_changed_through_any_name() {
        let dir = std::env::temp_dir().join(format!("atoll-modecheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"1").unwrap();
        std::fs::hard_link(dir.join("f"), dir.join("g")).unwrap();
        std::fs::write(dir.join("other"), b"2").unwrap();
        for revalidate in [true, false] {
            let svc = direct_service(&dir);
            let fs = HostFs::with(svc.clone(), revalidate);
            let _root = fs.root().unwrap();
            let f = fs.walk_cached(svc.root(), b"f").unwrap();
            let g = fs.walk_cached(svc.root(), b"g").unwrap();
            let other = fs.walk_cached(svc.root(), b"other").unwrap();
            assert_eq!(f.id, g.id);
            assert!(f.st_for_check().is_some() && g.st_for_check().is_some());
            fs.mode_changed(f.id);
            assert!(f.st_for_check().is_none(), "changed through this name");
            assert!(g.st_for_check().is_none(), "changed through the other name");
            assert!(other.st_for_check().is_some(), "another file keeps its own");
            // Read again from the host: taken again.
            f.st.set(svc.stat(f.fid).unwrap());
            f.read_now();
            assert!(f.st_for_check().is_some());
            news_from_outside();
            assert_eq!(
                f.st_for_check().is_none(),
                revalidate,
                "news from outside: asked again where revalidated"
            );
            f.read_now();
            std::thread::sleep(RECHECK_AFTER + Duration::from_millis(1));
            assert_eq!(
                f.st_for_check().is_none(),
                revalidate,
                "past the window: asked again where revalidated"
            );
            f.read_now();
            // Too many changes to remember: everything read before is asked again.
            for i in 0..FILE_CHANGES_MAX as u64 + 1 {
                fs.mode_changed((u64::MAX, i));
            }
            assert!(f.st_for_check().is_none() && other.st_for_check().is_none());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file system whose mount is gone is freed with its cached walks
    /// and their host descriptors (a pod's member containers come and go):
    /// the cache and its inodes no longer keep each other alive.
    #[test]
    fn an_unmounted_file_system_releases_its_cached_walks() {
        let dir = std::env::temp_dir().join(format!("atoll-unmount-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/f"), b"x").unwrap();
        let svc = direct_service(&dir);
        let fs = HostFs::new(svc.clone());
        let weak = Rc::downgrade(&fs);
        let root = fs.root().unwrap();
        let a = fs.walk_cached(svc.root(), b"a").unwrap();
        fs.walk_cached(a.fid, b"b").unwrap();
        fs.walk_cached(a.fid, b"f").unwrap();
        assert_eq!(fs.cache.borrow().len(), 3);
        drop(fs);
        // A directory still held (a working directory below the mount)
        // outlives the mount and still walks, uncached.
        drop(root);
        assert!(weak.upgrade().is_some());
        assert!(weak.upgrade().unwrap().cache.borrow().is_empty());
        let f = a.fs.walk_cached(a.fid, b"f").unwrap();
        assert_eq!(f.kind, FileType::Regular);
        assert!(a.fs.cache.borrow().is_empty());
        drop(f);
        drop(a);
        assert!(
            weak.upgrade().is_none(),
            "the file system outlived its mount"
        );
        // Every descriptor of the service is closed with it.
        assert_eq!(Rc::strong_count(&svc), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With direct access, on a mount whose cache is trusted, plain
    /// read-only opens of a file share one host descriptor, which lives as
    /// long as the inode; an open that writes, appends, truncates or syncs
    /// gets one of its own, and so does the same file reached through a
    /// new inode (a walk that found the name replaced), and every open
    /// through the gofer. On a revalidated mount the host allows each
    /// open, but its yes stands for `RECHECK_AFTER` with no news since.
    #[test]
    fn read_only_opens_share_one_host_descriptor() {
        let dir = std::env::temp_dir().join(format!("atoll-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"abc").unwrap();
        let svc = direct_service(&dir);
        let fs = HostFs::with(svc.clone(), false);
        let _root = fs.root().unwrap();
        let f = fs.walk_cached(svc.root(), b"f").unwrap();
        let a = f.open_regular(libc::O_RDONLY).unwrap();
        let b = f
            .open_regular(libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .unwrap();
        assert!(Rc::ptr_eq(&a.fd, &b.fd));
        for flags in [
            libc::O_RDWR,
            libc::O_WRONLY,
            libc::O_RDONLY | libc::O_APPEND,
            libc::O_RDONLY | libc::O_SYNC,
            libc::O_RDONLY | libc::O_DSYNC,
            libc::O_RDONLY | libc::O_NOATIME,
            libc::O_RDONLY | libc::O_TRUNC,
        ] {
            let own = f.open_regular(flags).unwrap();
            assert!(!Rc::ptr_eq(&a.fd, &own.fd), "flags {flags:#o}");
        }
        let raw = a.fd.as_raw_fd();
        drop(a);
        drop(b);
        // Kept for the next open.
        assert!(Rc::ptr_eq(
            &f.open_regular(libc::O_RDONLY).unwrap().fd,
            f.read_fd.borrow().as_ref().unwrap()
        ));
        // A new inode of the same file has its own.
        *fs.cache.borrow_mut() = WalkCache::new(CACHE_CAPACITY.load(Ordering::Relaxed));
        let g = fs.walk_cached(svc.root(), b"f").unwrap();
        assert!(!Rc::ptr_eq(&g, &f));
        let c = g.open_regular(libc::O_RDONLY).unwrap();
        let old = f.read_fd.borrow().clone().unwrap();
        assert!(!Rc::ptr_eq(&c.fd, &old));
        drop(old);
        // The inode's end closes it.
        drop(f);
        // SAFETY: F_GETFD only asks whether the number is open.
        assert!(unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0);
        // On a mount the host may change, the host's yes stands for a
        // moment, with no news from outside.
        {
            let fs = HostFs::with(svc.clone(), true);
            let _root = fs.root().unwrap();
            let f = fs.walk_cached(svc.root(), b"f").unwrap();
            // One syscall's clock (`clock::enter`): no preemption of this
            // test makes the moment pass.
            let prev = crate::clock::enter(Instant::now());
            let a = f.open_regular(libc::O_RDONLY).unwrap();
            let b = f.open_regular(libc::O_RDONLY | libc::O_NONBLOCK).unwrap();
            assert!(Rc::ptr_eq(&a.fd, &b.fd), "within the moment");
            let w = f.open_regular(libc::O_RDWR).unwrap();
            assert!(!Rc::ptr_eq(&a.fd, &w.fd), "a write: its own");
            news_from_outside();
            let c = f.open_regular(libc::O_RDONLY).unwrap();
            assert!(!Rc::ptr_eq(&a.fd, &c.fd), "news: the host asked again");
            assert!(Rc::ptr_eq(
                &c.fd,
                &f.open_regular(libc::O_RDONLY).unwrap().fd
            ));
            crate::clock::leave(prev);
            std::thread::sleep(RECHECK_AFTER + Duration::from_millis(1));
            let d = f.open_regular(libc::O_RDONLY).unwrap();
            assert!(!Rc::ptr_eq(&c.fd, &d.fd), "past the moment: asked again");
        }
        // Through the gofer, every open is the gofer's.
        let gofer: Rc<dyn FileService> = Rc::new(atoll_gofer::FileServer::new(&dir).unwrap());
        for revalidate in [true, false] {
            let fs = HostFs::with(gofer.clone(), revalidate);
            let _root = fs.root().unwrap();
            let f = fs.walk_cached(gofer.root(), b"f").unwrap();
            let a = f.open_regular(libc::O_RDONLY).unwrap();
            let b = f.open_regular(libc::O_RDONLY).unwrap();
            assert!(!Rc::ptr_eq(&a.fd, &b.fd), "gofer, revalidate {revalidate}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Under relatime a read changes a file's cached attributes only while
    /// its access time, as last read and still current, is not after its
    /// modification and change times or is a day old; under noatime never,
    /// under strictatime (or on another device than the mount's) always.
    #[test]
    fn a_read_changes_attributes_only_where_it_moves_the_access_time() {
        // SAFETY: stat is plain data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_dev = 1;
        st.st_mode = libc::S_IFREG | 0o644;
        let now = super::atime::now_secs();
        // File `ino`'s attributes are read from the host with these
        // access, modification and change times, then the file is read:
        // whether that read left them current.
        let read_leaves = |g: &Generations, ino: u64, (a, m, c): (i64, i64, i64)| {
            let mut st = st;
            st.st_ino = ino;
            (st.st_atime, st.st_mtime, st.st_ctime) = (a, m, c);
            g.attrs_read(&st, g.stamp());
            let seen = g.stamp();
            g.file_read((1, ino), false);
            g.current((1, ino), seen)
        };
        let read_today = (now - 5, now - 100, now - 100);
        let relatime = AtimeRule {
            dev: 1,
            files: Atime::Relative,
            dirs: Atime::Never,
        };
        let g = Generations::new(relatime);
        // Read since it last changed, today: reads leave it.
        assert!(read_leaves(&g, 10, read_today), "a settled access time");
        // Not read since its last change, or a day ago: a read moves it.
        for (ino, a, m, c) in [
            (11, now - 100, now - 5, now - 100),
            (12, now - 100, now - 100, now - 5),
            (13, now - 100, now - 100, now - 100),
            (14, now - 2 * 86400, now - 3 * 86400, now - 3 * 86400),
        ] {
            assert!(!read_leaves(&g, ino, (a, m, c)), "ino {ino}");
        }
        // Never read from the host: a read may move it.
        let seen = g.stamp();
        g.file_read((1, 20), false);
        assert!(!g.current((1, 20), seen));
        // Another device than the mount's: it may have other flags.
        let seen = g.stamp();
        g.file_read((2, 10), false);
        assert!(!g.current((2, 10), seen));
        // nodiratime: a listing never moves a directory's.
        let seen = g.stamp();
        g.file_read((1, 30), true);
        assert!(g.current((1, 30), seen));
        // The kernel's own change (a write) ends the settled record: the
        // next read counts until its attributes are read again.
        g.file_changed((1, 10));
        let seen = g.stamp();
        g.file_read((1, 10), false);
        assert!(!g.current((1, 10), seen), "after a write");
        assert!(read_leaves(&g, 10, read_today), "read again");
        g.tree_changed();
        let seen = g.stamp();
        g.file_read((1, 10), false);
        assert!(!g.current((1, 10), seen), "after a change of the tree");
        // strictatime and noatime.
        for (rule, stays) in [(Atime::Always, false), (Atime::Never, true)] {
            let g = Generations::new(AtimeRule {
                dev: 1,
                files: rule,
                dirs: rule,
            });
            assert_eq!(read_leaves(&g, 10, read_today), stays, "{rule:?}");
        }
    }

    /// A directory's listing is kept where the mount is trusted and the
    /// kernel makes the host calls itself, and taken again until the tree
    /// changes or a listing may move the directory's access time; on a
    /// revalidated mount every listing is the host's.
    #[test]
    fn a_trusted_directory_listing_is_kept_until_the_tree_changes() {
        let dir = std::env::temp_dir().join(format!("atoll-listing-{}", std::process::id()));
        let d = dir.join("d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a"), b"").unwrap();
        let names = |i: &HostInode| {
            let mut v: Vec<String> = i
                .list()
                .unwrap()
                .into_iter()
                .map(|e| String::from_utf8(e.name).unwrap())
                .collect();
            v.sort();
            v.join(",")
        };
        // The directory's access and modification times (seconds).
        let set_times = |atime: u64, mtime: u64| {
            let at = |secs| std::time::UNIX_EPOCH + Duration::from_secs(secs);
            let times = std::fs::FileTimes::new()
                .set_accessed(at(atime))
                .set_modified(at(mtime));
            std::fs::File::open(&d).unwrap().set_times(times).unwrap();
        };
        // Its access time after its other times: a listing leaves it
        // (relatime, this machine's default).
        let settle = || {
            let now = super::atime::now_secs() as u64;
            set_times(now + 60, now - 60);
        };
        settle();
        let svc = direct_service(&dir);
        let fs = HostFs::with(svc.clone(), false);
        let _root = fs.root().unwrap();
        if fs.gens.atime.dirs != Atime::Relative {
            // (CI's machines have it on ext4 with relatime.)
            eprintln!(
                "skipped: the temporary directory is not on a relatime mount of a local file system ({:?})",
                fs.gens.atime
            );
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        }
        let i = fs.walk_cached(svc.root(), b"d").unwrap();
        assert_eq!(names(&i), "a");
        // Made behind the kernel's back on a mount it trusts: not seen...
        std::fs::write(d.join("b"), b"").unwrap();
        assert_eq!(names(&i), "a", "kept");
        // ...until the kernel changes the tree (as its own creates do).
        fs.changed();
        assert_eq!(names(&i), "a,b");
        // A listing that may move the access time goes to the host.
        std::fs::write(d.join("c"), b"").unwrap();
        let fs2 = HostFs::with(svc.clone(), false);
        let _root2 = fs2.root().unwrap();
        set_times(1, 1);
        let j = fs2.walk_cached(svc.root(), b"d").unwrap();
        assert_eq!(names(&j), "a,b,c");
        std::fs::write(d.join("e"), b"").unwrap();
        assert_eq!(names(&j), "a,b,c,e", "its access time is old: not kept");
        // Revalidated: every listing is the host's.
        settle();
        let fs3 = HostFs::with(svc.clone(), true);
        let _root3 = fs3.root().unwrap();
        let k = fs3.walk_cached(svc.root(), b"d").unwrap();
        assert_eq!(names(&k), "a,b,c,e");
        std::fs::write(d.join("f"), b"").unwrap();
        assert_eq!(names(&k), "a,b,c,e,f");
        let kept = listing_bytes(&i.list().unwrap());
        assert_eq!(fs.listed.get(), kept);
        // Past the mount's budget a listing is not kept.
        let big: Vec<DirEntry> = (0..LISTED_MAX / 256)
            .map(|n| DirEntry {
                name: format!("{n:0>255}").into_bytes(),
                ino: n as u64,
                kind: FileType::Regular,
            })
            .collect();
        i.keep_listing(Some((fs.gens.stamp(), big)));
        assert!(i.listing.borrow().is_none() && fs.listed.get() == 0);
        // Unmounted: the cached walks go, and their listings with them.
        drop((i, j, k, _root, _root2, _root3));
        assert_eq!(
            fs.listed.get() + fs2.listed.get() + fs3.listed.get(),
            0,
            "dropped with their inodes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file's own change (a read's access time, a write) makes only
    /// that file's attributes stale, through every inode of it (its
    /// other names); a change of the tree makes every file's stale; past
    /// the most files remembered, everything read before is stale.
    #[test]
    fn a_files_own_change_makes_only_its_attributes_stale() {
        let g = Generations::new(AtimeRule::ALWAYS);
        let (a, b) = ((1, 10), (1, 11));
        let before = g.stamp();
        assert!(g.current(a, before) && g.current(b, before));
        g.file_changed(a);
        assert!(!g.current(a, before));
        assert!(g.current(b, before));
        let after = g.stamp();
        assert!(g.current(a, after));
        g.file_changed(a);
        assert!(!g.current(a, after));
        g.tree_changed();
        let now = g.stamp();
        assert!(!g.current(b, after) && g.current(b, now) && g.current(a, now));
        assert!(!g.current(a, (u64::MAX, 0)));
        // `a` and as many others as are remembered.
        for i in 0..FILE_CHANGES_MAX as u64 - 1 {
            g.file_changed((2, i));
        }
        assert!(g.current(a, now) && g.current(b, now));
        // One more file than remembered: everything read before is stale.
        g.file_changed((3, 0));
        assert!(!g.current(a, now) && !g.current(b, now));
        assert!(g.current(b, g.stamp()));
    }
}
