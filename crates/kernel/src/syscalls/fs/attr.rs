//! Changing attributes: chmod, chown and file times.

use std::rc::Rc;

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::dentry::Dentry;
use crate::vfs::inode::{FileType, SetAttr, TimeSet};
use crate::vfs::inotify as fsnotify;
use crate::vfs::lookup::AT_FDCWD;
use crate::vfs::perm::{MAY_WRITE, cap};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("chmod", sys_chmod, Full, ""),
        ("fchmod", sys_fchmod, Full, ""),
        ("fchmodat", sys_fchmodat, Full, ""),
        ("fchmodat2", sys_fchmodat2, Full, ""),
        ("chown", sys_chown, Full, ""),
        ("lchown", sys_lchown, Full, ""),
        ("fchown", sys_fchown, Full, ""),
        ("fchownat", sys_fchownat, Full, ""),
        ("utimensat", sys_utimensat, Full, ""),
        ("utimes", sys_utimes, Full, ""),
        ("utime", sys_utime, Full, ""),
        ("futimesat", sys_futimesat, Full, ""),
    ]
}

/// A setattr as a syscall asks it: a chown (of any owner and group, even
/// none) takes set-ID bits away.
pub(super) enum Change {
    Attr(SetAttr),
    Chown(SetAttr),
}

impl From<SetAttr> for Change {
    fn from(a: SetAttr) -> Change {
        Change::Attr(a)
    }
}

fn setattr_checked(k: &mut Kernel, tid: Tid, d: &Rc<Dentry>, change: Change) -> SysResult<u64> {
    let (attr, chown) = match change {
        Change::Attr(a) => (a, false),
        Change::Chown(a) => (a, true),
    };
    if d.mount.readonly {
        return Err(Errno::EROFS);
    }
    let st = d.inode.stat_for_check(k)?;
    let c = k.cred(tid);
    let mut attr = attr;
    if attr.mode.is_some() {
        if !c.is_owner(&st) {
            return Err(Errno::EPERM);
        }
        // Non-members lose setgid.
        if let Some(m) = attr.mode.as_mut()
            && !c.in_group(st.st_gid)
            && !c.capable(cap::FSETID)
        {
            *m &= !libc::S_ISGID;
        }
    }
    if attr.uid.is_some() || attr.gid.is_some() {
        let uid_change = attr.uid.is_some_and(|u| u != st.st_uid);
        let gid_ok = attr
            .gid
            .is_none_or(|g| g == st.st_gid || (c.fsuid == st.st_uid && c.in_group(g)));
        if (uid_change || !gid_ok) && !c.capable(cap::CHOWN) {
            return Err(Errno::EPERM);
        }
    }
    if chown {
        // Even a chown to the same owner and group, or to neither.
        let kill = c.killed_by_chown(&st);
        if kill != 0 {
            attr.mode = Some(st.st_mode & 0o7777 & !kill);
        }
    }
    if attr.atime.is_some() || attr.mtime.is_some() {
        let now_only = matches!(attr.atime, None | Some(TimeSet::Now))
            && matches!(attr.mtime, None | Some(TimeSet::Now));
        if !(c.is_owner(&st) || (now_only && c.may_access(&st, MAY_WRITE).is_ok())) {
            return Err(if now_only {
                Errno::EACCES
            } else {
                Errno::EPERM
            });
        }
    }
    if let Some(size) = attr.size {
        if d.kind() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        c.may_access(&st, MAY_WRITE)?;
        k.fsize_check(tid, size)?;
        // As a write's (forced: a writer need not own the file).
        let kill = c.killed_by_write(st.st_mode);
        if kill != 0 {
            attr.mode = Some(attr.mode.unwrap_or(st.st_mode & 0o7777) & !kill);
        }
    }
    d.inode.setattr(k, &attr)?;
    let mask = fsnotify::setattr_mask(
        attr.size.is_some(),
        attr.atime.is_some(),
        attr.mtime.is_some(),
        attr.mode.is_some(),
        attr.uid.is_some() || attr.gid.is_some(),
    );
    fsnotify::notify_dentry(d, mask);
    Ok(0)
}

pub(super) fn path_setattr(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: u64,
    follow: bool,
    empty: bool,
    attr: impl Into<Change>,
) -> SysResult<u64> {
    let p = if path == 0 && empty {
        Vec::new()
    } else {
        k.read_path(tid, path)?
    };
    let d = k.lookup_at(tid, dirfd, &p, follow, empty)?;
    setattr_checked(k, tid, &d, attr.into())
}

fn fd_setattr(k: &mut Kernel, tid: Tid, fd: i32, attr: impl Into<Change>) -> SysResult<u64> {
    let f = get_file(k, tid, fd)?;
    let d = f.dentry.clone().ok_or(Errno::EBADF)?;
    setattr_checked(k, tid, &d, attr.into())
}

fn mode_attr(m: u64) -> SetAttr {
    SetAttr {
        mode: Some(m as u32 & 0o7777),
        ..Default::default()
    }
}

fn sys_chmod(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, mode_attr(a[1]))
}

fn sys_fchmod(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    fd_setattr(k, tid, a[0] as i32, mode_attr(a[1]))
}

fn sys_fchmodat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, a[0] as i32, a[1], true, false, mode_attr(a[2]))
}

fn sys_fchmodat2(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[3] as i32;
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        mode_attr(a[2]),
    )
}

fn owner_attr(uid: u64, gid: u64) -> Change {
    Change::Chown(SetAttr {
        uid: (uid as u32 != u32::MAX).then_some(uid as u32),
        gid: (gid as u32 != u32::MAX).then_some(gid as u32),
        ..Default::default()
    })
}

fn sys_chown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, owner_attr(a[1], a[2]))
}

fn sys_lchown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    path_setattr(k, tid, AT_FDCWD, a[0], false, false, owner_attr(a[1], a[2]))
}

fn sys_fchown(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    fd_setattr(k, tid, a[0] as i32, owner_attr(a[1], a[2]))
}

fn sys_fchownat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4] as i32;
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        owner_attr(a[2], a[3]),
    )
}

fn times_attr(t: Option<[libc::timespec; 2]>) -> SetAttr {
    let conv = |ts: libc::timespec| -> Option<TimeSet> {
        match ts.tv_nsec {
            libc::UTIME_OMIT => None,
            libc::UTIME_NOW => Some(TimeSet::Now),
            _ => Some(TimeSet::At(ts)),
        }
    };
    match t {
        None => SetAttr {
            atime: Some(TimeSet::Now),
            mtime: Some(TimeSet::Now),
            ..Default::default()
        },
        Some([a, m]) => SetAttr {
            atime: conv(a),
            mtime: conv(m),
            ..Default::default()
        },
    }
}

fn sys_utimensat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let times = if a[2] == 0 {
        None
    } else {
        Some(
            k.task_mm(tid)
                .borrow()
                .read_val::<[libc::timespec; 2]>(a[2])?,
        )
    };
    if let Some(t) = &times {
        for ts in t {
            if ts.tv_nsec != libc::UTIME_NOW
                && ts.tv_nsec != libc::UTIME_OMIT
                && !(0..1_000_000_000).contains(&ts.tv_nsec)
            {
                return Err(Errno::EINVAL);
            }
        }
    }
    let attr = times_attr(times);
    let flags = a[3] as i32;
    if a[1] == 0 {
        // futimens: the fd itself.
        return fd_setattr(k, tid, a[0] as i32, attr);
    }
    path_setattr(
        k,
        tid,
        a[0] as i32,
        a[1],
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags & libc::AT_EMPTY_PATH != 0,
        attr,
    )
}

fn timeval_pair(k: &Kernel, tid: Tid, addr: u64) -> SysResult<Option<[libc::timespec; 2]>> {
    if addr == 0 {
        return Ok(None);
    }
    let tv: [libc::timeval; 2] = k.task_mm(tid).borrow().read_val(addr)?;
    // As Linux's utimes: microseconds out of range are EINVAL.
    if tv.iter().any(|t| !(0..1_000_000).contains(&t.tv_usec)) {
        return Err(Errno::EINVAL);
    }
    Ok(Some([
        libc::timespec {
            tv_sec: tv[0].tv_sec,
            tv_nsec: tv[0].tv_usec * 1000,
        },
        libc::timespec {
            tv_sec: tv[1].tv_sec,
            tv_nsec: tv[1].tv_usec * 1000,
        },
    ]))
}

fn sys_utimes(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = timeval_pair(k, tid, a[1])?;
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, times_attr(t))
}

fn sys_futimesat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = timeval_pair(k, tid, a[2])?;
    path_setattr(k, tid, a[0] as i32, a[1], true, false, times_attr(t))
}

fn sys_utime(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let t = if a[1] == 0 {
        None
    } else {
        let u: [i64; 2] = k.task_mm(tid).borrow().read_val(a[1])?;
        Some([
            libc::timespec {
                tv_sec: u[0],
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: u[1],
                tv_nsec: 0,
            },
        ])
    };
    path_setattr(k, tid, AT_FDCWD, a[0], true, false, times_attr(t))
}
