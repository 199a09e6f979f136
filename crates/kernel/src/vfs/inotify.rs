//! inotify: watches on inodes and the events the kernel's own file
//! operations generate (the syscalls call the `notify_*` functions below,
//! as Linux's VFS calls fsnotify).
//!
//! Watches are keyed by the inode's (device, inode number), so every path
//! and every hard link to a file reaches the same watch, and host files
//! (whose inode objects come and go with the gofer's walk cache) too.
//! Only changes made inside the sandbox are seen: a change made to a
//! shared host directory by the host or another container produces no
//! event (the kernel has no view of the host's own notifications).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::{Rc, Weak};

use super::dentry::Dentry;
use super::file::{File, FileOps, POLLIN};
use super::inode::FileType;
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;

/// Size of struct inotify_event without its name.
const EVENT_SIZE: usize = 16;
/// fs.inotify.max_queued_events.
const MAX_QUEUED: usize = 16384;
/// fs.inotify.max_user_watches (Linux's default for small machines).
const MAX_WATCHES: usize = 65536;

type InodeId = (u64, u64);
/// The watches of one inode: (instance, watch descriptor).
type Watchers = Vec<(Weak<Inotify>, i32)>;

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// Bytes on the wire: the name NUL-padded to a multiple of 16.
    fn size(&self) -> usize {
        EVENT_SIZE + Self::name_len(&self.name)
    }

    fn name_len(name: &[u8]) -> usize {
        if name.is_empty() {
            0
        } else {
            (name.len() + 1).next_multiple_of(EVENT_SIZE)
        }
    }
}

struct Watch {
    id: InodeId,
    mask: u32,
}

/// An inotify instance (the descriptor inotify_init returns).
pub struct Inotify {
    queue: RefCell<VecDeque<Event>>,
    watches: RefCell<BTreeMap<i32, Watch>>,
    next_wd: Cell<i32>,
    wq: WaitQueue,
    ino: u64,
    me: Weak<Inotify>,
}

thread_local! {
    /// Watched inodes: inode → (instance, watch descriptor).
    static WATCHED: RefCell<HashMap<InodeId, Watchers>> = RefCell::new(HashMap::new());
    /// Open file descriptions per inode (a deleted inode's IN_DELETE_SELF
    /// waits for the last close).
    static OPEN: RefCell<HashMap<InodeId, usize>> = RefCell::new(HashMap::new());
    /// Inodes unlinked for good while still open.
    static DELETED_OPEN: RefCell<HashSet<InodeId>> = RefCell::new(HashSet::new());
    /// Names removed while their inode was open: (directory, name, inode).
    /// Open files reached through them are "unlinked" (IN_EXCL_UNLINK).
    static UNLINKED: RefCell<HashSet<(InodeId, Vec<u8>, InodeId)>> = RefCell::new(HashSet::new());
    static COOKIE: Cell<u32> = const { Cell::new(0) };
}

fn any_watch() -> bool {
    WATCHED.with(|w| !w.borrow().is_empty()) || super::dnotify::any()
}

impl Inotify {
    pub fn new() -> Rc<Inotify> {
        Rc::new_cyclic(|me| Inotify {
            queue: RefCell::new(VecDeque::new()),
            watches: RefCell::new(BTreeMap::new()),
            next_wd: Cell::new(1),
            wq: WaitQueue::new(),
            ino: super::new_ino(),
            me: me.clone(),
        })
    }

    fn push(&self, ev: Event) {
        let mut q = self.queue.borrow_mut();
        // Identical to the last queued event: coalesced (as Linux).
        if let Some(last) = q.back()
            && last.wd == ev.wd
            && last.mask == ev.mask
            && last.cookie == ev.cookie
            && last.name == ev.name
        {
            return;
        }
        if q.len() >= MAX_QUEUED {
            if q.back().is_none_or(|l| l.mask != IN_Q_OVERFLOW) {
                q.push_back(Event {
                    wd: -1,
                    mask: IN_Q_OVERFLOW,
                    cookie: 0,
                    name: Vec::new(),
                });
            }
        } else {
            q.push_back(ev);
        }
        drop(q);
        self.wq.notify(POLLIN);
    }

    /// inotify_add_watch on an inode: the watch descriptor.
    pub fn add_watch(&self, id: InodeId, mask: u32) -> SysResult<i32> {
        let mut ws = self.watches.borrow_mut();
        if let Some((&wd, w)) = ws.iter_mut().find(|(_, w)| w.id == id) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            w.mask = if mask & IN_MASK_ADD != 0 {
                w.mask | mask
            } else {
                mask
            };
            return Ok(wd);
        }
        let total: usize = WATCHED.with(|w| w.borrow().values().map(|v| v.len()).sum());
        if total >= MAX_WATCHES {
            return Err(Errno::ENOSPC);
        }
        let wd = self.next_wd.get();
        self.next_wd.set(wd.checked_add(1).ok_or(Errno::ENOSPC)?);
        ws.insert(wd, Watch { id, mask });
        WATCHED.with(|w| {
            w.borrow_mut()
                .entry(id)
                .or_default()
                .push((self.me.clone(), wd))
        });
        Ok(wd)
    }

    /// Removes watch `wd` (inotify_rm_watch, IN_ONESHOT, the inode gone):
    /// IN_IGNORED is the last event it reports.
    pub fn remove_watch(&self, wd: i32) -> SysResult<()> {
        let w = self.watches.borrow_mut().remove(&wd).ok_or(Errno::EINVAL)?;
        WATCHED.with(|m| {
            let mut m = m.borrow_mut();
            if let Some(v) = m.get_mut(&w.id) {
                v.retain(|(i, d)| !(*d == wd && i.ptr_eq(&self.me)));
                if v.is_empty() {
                    m.remove(&w.id);
                }
            }
        });
        self.push(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: Vec::new(),
        });
        Ok(())
    }

    fn queued_bytes(&self) -> usize {
        self.queue.borrow().iter().map(|e| e.size()).sum()
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let ws = std::mem::take(&mut *self.watches.borrow_mut());
        // try_with: an instance dropped while its thread's locals are torn
        // down (a kernel kept in a thread-local at process exit, as the
        // fuzz driver keeps one) finds the watch table gone already, and
        // there is nothing left to unregister from.
        let _ = WATCHED.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                for (_, w) in ws {
                    if let Some(v) = m.get_mut(&w.id) {
                        v.retain(|(i, _)| i.strong_count() > 0);
                        if v.is_empty() {
                            m.remove(&w.id);
                        }
                    }
                }
            }
        });
    }
}

impl FileOps for Inotify {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        if dst.len < EVENT_SIZE {
            return Err(Errno::EINVAL);
        }
        let mut q = self.queue.borrow_mut();
        let Some(first) = q.front() else {
            return Err(Errno::EAGAIN);
        };
        if first.size() > dst.len {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::new();
        while let Some(e) = q.front() {
            if out.len() + e.size() > dst.len {
                break;
            }
            let e = q.pop_front().expect("front");
            let nl = Event::name_len(&e.name);
            out.extend_from_slice(&e.wd.to_ne_bytes());
            out.extend_from_slice(&e.mask.to_ne_bytes());
            out.extend_from_slice(&e.cookie.to_ne_bytes());
            out.extend_from_slice(&(nl as u32).to_ne_bytes());
            out.extend_from_slice(&e.name);
            out.resize(out.len() + nl - e.name.len(), 0);
        }
        Ok(dst.copy_in(0, &out))
    }
    fn poll(&self, _k: &Kernel) -> u32 {
        if self.queue.borrow().is_empty() {
            0
        } else {
            POLLIN | 0x40
        }
    }
    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.wq.add(tid, events);
        true
    }
    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.wq.remove(tid);
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.wq.seq(mask)
    }
    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        if cmd != libc::FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let n = self.queued_bytes() as i32;
        k.task_mm(tid).borrow().write_val(arg, &n)?;
        Ok(0)
    }
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(0, self.ino, 0o600, 1))
    }
    fn anon_name(&self) -> Option<String> {
        Some("anon_inode:inotify".into())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Delivers `mask` to the watches of `id` (`name` set: an event about a
/// child of the watched directory). `unlinked`: the child is no longer in
/// the directory (watches with IN_EXCL_UNLINK skip it).
fn deliver(id: InodeId, mask: u32, cookie: u32, name: &[u8], unlinked: bool) {
    // F_NOTIFY marks watch what happens in a directory: events about its
    // entries, and its own attributes.
    if !name.is_empty() || mask & IN_ATTRIB != 0 {
        super::dnotify::event(id, super::dnotify::dn_mask(mask));
    }
    let targets: Vec<(Rc<Inotify>, i32)> = WATCHED.with(|w| {
        w.borrow()
            .get(&id)
            .map(|v| {
                v.iter()
                    .filter_map(|(i, wd)| i.upgrade().map(|i| (i, *wd)))
                    .collect()
            })
            .unwrap_or_default()
    });
    for (ino, wd) in targets {
        let Some(wmask) = ino.watches.borrow().get(&wd).map(|w| w.mask) else {
            continue;
        };
        if wmask & mask & IN_ALL_EVENTS == 0 && mask & IN_ALL_EVENTS != 0 {
            continue;
        }
        if unlinked && wmask & IN_EXCL_UNLINK != 0 {
            continue;
        }
        ino.push(Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        });
        if wmask & IN_ONESHOT != 0 {
            let _ = ino.remove_watch(wd);
        }
    }
}

/// The inode's own watches go (it was deleted): IN_DELETE_SELF, IN_IGNORED.
fn inode_gone(id: InodeId) {
    deliver(id, IN_DELETE_SELF, 0, b"", false);
    let targets: Vec<(Rc<Inotify>, i32)> = WATCHED.with(|w| {
        w.borrow()
            .get(&id)
            .map(|v| {
                v.iter()
                    .filter_map(|(i, wd)| i.upgrade().map(|i| (i, *wd)))
                    .collect()
            })
            .unwrap_or_default()
    });
    for (ino, wd) in targets {
        let _ = ino.remove_watch(wd);
    }
}

fn dir_flag(kind: FileType) -> u32 {
    if kind == FileType::Directory {
        IN_ISDIR
    } else {
        0
    }
}

/// An event about the object `d` names: to its parent directory's
/// watches (with its name), then to its own. `path`: an event of an open
/// file's data (read, write, open, close), which watches with
/// IN_EXCL_UNLINK ignore once the name is unlinked; metadata events are
/// reported whatever the name (as Linux).
fn notify(d: &Dentry, mask: u32, path: bool) {
    if !any_watch() {
        return;
    }
    let id = d.inode.id();
    let mask = mask | dir_flag(d.kind());
    let unlinked = path
        && d.parent.as_ref().is_some_and(|p| {
            UNLINKED.with(|u| u.borrow().contains(&(p.inode.id(), d.name.clone(), id)))
        });
    if let Some(p) = &d.parent {
        deliver(p.inode.id(), mask, 0, &d.name, unlinked);
    }
    deliver(id, mask, 0, b"", unlinked);
}

/// A metadata event about the object `d` names (attributes, truncation).
pub fn notify_dentry(d: &Dentry, mask: u32) {
    notify(d, mask, false);
}

/// A data event about an open file (read, write, open, close...).
pub fn notify_file(f: &File, mask: u32) {
    if let Some(d) = &f.dentry
        && f.ops.anon_name().is_none()
    {
        notify(d, mask, true);
    }
}

/// As [`notify_file`], for a file being opened or closed by path.
pub fn notify_open_close(d: &Dentry, mask: u32) {
    notify(d, mask, true);
}

/// The event a setattr makes (Linux's fsnotify_change): a size change or
/// mtime alone is IN_MODIFY, atime alone IN_ACCESS, both times or
/// ownership or mode IN_ATTRIB, in one event.
pub fn setattr_mask(size: bool, atime: bool, mtime: bool, mode: bool, owner: bool) -> u32 {
    let mut m = 0;
    if size {
        m |= IN_MODIFY;
    }
    if atime && mtime {
        m |= IN_ATTRIB;
    } else if atime {
        m |= IN_ACCESS;
    } else if mtime {
        m |= IN_MODIFY;
    }
    if mode || owner {
        m |= IN_ATTRIB;
    }
    m
}

/// A new name `name` in directory `dir` (create, mkdir, mknod, symlink, link).
pub fn notify_create(dir: &Dentry, name: &[u8], kind: FileType) {
    if any_watch() {
        deliver(dir.inode.id(), IN_CREATE | dir_flag(kind), 0, name, false);
    }
}

/// A link count changed (link, unlink): IN_ATTRIB on the inode itself.
pub fn notify_link_count(id: InodeId) {
    if any_watch() {
        deliver(id, IN_ATTRIB, 0, b"", false);
    }
}

/// `name` was removed from `dir`; `nlink` is what the inode has left.
/// A file still open keeps its watches until the last close.
pub fn notify_remove(dir: &Dentry, name: &[u8], id: InodeId, kind: FileType, nlink: u64) {
    let gone = kind == FileType::Directory || nlink == 0;
    if OPEN.with(|o| o.borrow().contains_key(&id)) {
        UNLINKED.with(|u| u.borrow_mut().insert((dir.inode.id(), name.to_vec(), id)));
    }
    if kind != FileType::Directory {
        deliver(id, IN_ATTRIB, 0, b"", false);
    }
    if gone {
        if OPEN.with(|o| o.borrow().get(&id).is_some_and(|n| *n > 0)) {
            DELETED_OPEN.with(|d| d.borrow_mut().insert(id));
        } else {
            inode_gone(id);
        }
    }
    deliver(dir.inode.id(), IN_DELETE | dir_flag(kind), 0, name, false);
}

/// A rename replaced inode `id` (which has `nlink` links left).
pub fn notify_replaced(id: InodeId, kind: FileType, nlink: u64) {
    if !any_watch() {
        return;
    }
    if kind != FileType::Directory {
        deliver(id, IN_ATTRIB, 0, b"", false);
    }
    if kind == FileType::Directory || nlink == 0 {
        if OPEN.with(|o| o.borrow().get(&id).is_some_and(|n| *n > 0)) {
            DELETED_OPEN.with(|d| d.borrow_mut().insert(id));
        } else {
            inode_gone(id);
        }
    }
}

/// A rename from `old_dir/old` to `new_dir/new` of inode `id`.
pub fn notify_rename(
    old_dir: &Dentry,
    old: &[u8],
    new_dir: &Dentry,
    new: &[u8],
    id: InodeId,
    kind: FileType,
) {
    if !any_watch() {
        return;
    }
    let cookie = COOKIE.with(|c| {
        let v = c.get().wrapping_add(1).max(1);
        c.set(v);
        v
    });
    let isdir = dir_flag(kind);
    deliver(
        old_dir.inode.id(),
        IN_MOVED_FROM | isdir,
        cookie,
        old,
        false,
    );
    deliver(new_dir.inode.id(), IN_MOVED_TO | isdir, cookie, new, false);
    super::dnotify::renamed(old_dir.inode.id());
    deliver(id, IN_MOVE_SELF | isdir, 0, b"", false);
}

/// A file description was made for inode `id` (all of them count, so a
/// deleted file's IN_DELETE_SELF waits for the last close).
pub fn file_opened(id: InodeId) {
    OPEN.with(|o| *o.borrow_mut().entry(id).or_default() += 1);
}

/// The last reference to a file description went.
pub fn file_released(id: InodeId) {
    let last = OPEN.with(|o| {
        let mut o = o.borrow_mut();
        match o.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                o.remove(&id);
                true
            }
        }
    });
    if last {
        UNLINKED.with(|u| u.borrow_mut().retain(|(_, _, i)| *i != id));
        if DELETED_OPEN.with(|d| d.borrow_mut().remove(&id)) {
            inode_gone(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_padded_to_16_bytes() {
        let e = |n: &[u8]| Event {
            wd: 1,
            mask: IN_CREATE,
            cookie: 0,
            name: n.to_vec(),
        };
        assert_eq!(e(b"").size(), 16);
        assert_eq!(e(b"a").size(), 32);
        assert_eq!(e(&[b'x'; 15]).size(), 32);
        assert_eq!(e(&[b'x'; 16]).size(), 48);
    }

    #[test]
    fn setattr_events_follow_linux() {
        assert_eq!(setattr_mask(true, false, true, false, false), IN_MODIFY);
        assert_eq!(setattr_mask(false, true, true, false, false), IN_ATTRIB);
        assert_eq!(setattr_mask(false, true, false, false, false), IN_ACCESS);
        assert_eq!(setattr_mask(false, false, true, false, false), IN_MODIFY);
        assert_eq!(setattr_mask(false, false, false, true, false), IN_ATTRIB);
        assert_eq!(setattr_mask(false, false, false, false, true), IN_ATTRIB);
    }

    #[test]
    fn identical_events_coalesce_and_watches_go_with_the_instance() {
        let ino = Inotify::new();
        let id = (7, 42);
        let wd = ino.add_watch(id, IN_ALL_EVENTS).unwrap();
        assert_eq!(ino.add_watch(id, IN_ACCESS | IN_MASK_ADD).unwrap(), wd);
        assert_eq!(
            ino.add_watch(id, IN_ACCESS | IN_MASK_CREATE),
            Err(Errno::EEXIST)
        );
        deliver(id, IN_ACCESS, 0, b"", false);
        deliver(id, IN_ACCESS, 0, b"", false);
        deliver(id, IN_MODIFY, 0, b"", false);
        assert_eq!(ino.queue.borrow().len(), 2);
        drop(ino);
        assert!(!any_watch(), "the watches went with the instance");
    }
}
