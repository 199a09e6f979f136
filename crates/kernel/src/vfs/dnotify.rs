//! dnotify (fcntl F_NOTIFY): a signal to a directory descriptor's owner
//! when something in the directory is accessed, modified, created,
//! deleted, renamed or has its attributes changed. The events are
//! inotify's (inotify.rs hands every event it delivers to an inode here
//! too); a mark is kept per open directory description and ends with it.
//!
//! Like the signals of O_ASYNC, the kernel sends them once the syscall
//! that caused the event is served (the file code holds only a shared
//! kernel borrow).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::file::File;
use super::inotify::{
    IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO,
};

pub const DN_ACCESS: u32 = 0x1;
pub const DN_MODIFY: u32 = 0x2;
pub const DN_CREATE: u32 = 0x4;
pub const DN_DELETE: u32 = 0x8;
pub const DN_RENAME: u32 = 0x10;
pub const DN_ATTRIB: u32 = 0x20;
pub const DN_MULTISHOT: u32 = 0x8000_0000;

type InodeId = (u64, u64);

struct Mark {
    file: Weak<File>,
    /// The descriptor F_NOTIFY was called on (si_fd of the signal).
    fd: i32,
    mask: u32,
}

thread_local! {
    static MARKS: RefCell<HashMap<InodeId, Vec<Mark>>> = RefCell::new(HashMap::new());
    /// Events to signal: (file, descriptor), drained by the kernel.
    static FIRED: RefCell<Vec<(Weak<File>, i32)>> = const { RefCell::new(Vec::new()) };
}

/// Whether any directory is watched (inotify skips its work otherwise).
pub fn any() -> bool {
    MARKS.with(|m| !m.borrow().is_empty())
}

/// F_NOTIFY on `file` (descriptor `fd`) of directory `dir`: watch for
/// `mask`'s events too (a file's marks add up, as Linux's attach_dn), or
/// stop with no event bit set.
pub fn set(dir: InodeId, file: &Rc<File>, fd: i32, mask: u32) {
    MARKS.with(|m| {
        let mut m = m.borrow_mut();
        let list = m.entry(dir).or_default();
        list.retain(|k| k.file.strong_count() > 0);
        let mine = list
            .iter()
            .position(|k| std::ptr::eq(k.file.as_ptr(), &**file));
        match mine {
            _ if mask & !DN_MULTISHOT == 0 => {
                if let Some(i) = mine {
                    list.remove(i);
                }
            }
            Some(i) => {
                list[i].mask |= mask;
                list[i].fd = fd;
            }
            None => list.push(Mark {
                file: Rc::downgrade(file),
                fd,
                mask,
            }),
        }
        if list.is_empty() {
            m.remove(&dir);
        }
    });
}

/// The dnotify events of an inotify event mask: a name moved in is a
/// creation, moved out a deletion (Linux's convert_arg); DN_RENAME is the
/// rename itself, one event to the old directory (`renamed`).
pub fn dn_mask(in_mask: u32) -> u32 {
    let mut m = 0;
    for (i, d) in [
        (IN_ACCESS, DN_ACCESS),
        (IN_MODIFY, DN_MODIFY),
        (IN_CREATE | IN_MOVED_TO, DN_CREATE),
        (IN_DELETE | IN_MOVED_FROM, DN_DELETE),
        (IN_ATTRIB, DN_ATTRIB),
    ] {
        if in_mask & i != 0 {
            m |= d;
        }
    }
    m
}

/// A rename out of directory `id`.
pub fn renamed(id: InodeId) {
    event(id, DN_RENAME);
}

/// Events `dn` in directory `id`: the marks they match fire; a mark
/// without DN_MULTISHOT fires once.
pub fn event(id: InodeId, dn: u32) {
    if dn == 0 {
        return;
    }
    MARKS.with(|m| {
        let mut m = m.borrow_mut();
        let Some(list) = m.get_mut(&id) else {
            return;
        };
        list.retain(|k| {
            if k.file.strong_count() == 0 {
                return false;
            }
            if k.mask & dn == 0 {
                return true;
            }
            FIRED.with(|f| f.borrow_mut().push((k.file.clone(), k.fd)));
            k.mask & DN_MULTISHOT != 0
        });
        if list.is_empty() {
            m.remove(&id);
        }
    });
}

/// Takes the fired marks since the last call.
pub fn take_fired() -> Vec<(Weak<File>, i32)> {
    FIRED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}
