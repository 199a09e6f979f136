//! Reading directories: getdents, getdents64.

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::inode::FileType;
use crate::vfs::inotify as fsnotify;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("getdents64", sys_getdents64, Full, ""),
        ("getdents", sys_getdents, Full, ""),
    ]
}

fn dents(k: &mut Kernel, tid: Tid, a: [u64; 6], old: bool) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    if d.kind() != FileType::Directory || f.is_path_only() {
        return Err(if f.is_path_only() {
            Errno::EBADF
        } else {
            Errno::ENOTDIR
        });
    }
    if f.dir.borrow().is_none() || f.pos.get() == 0 {
        let mut list = vec![
            crate::vfs::DirEntry {
                name: b".".to_vec(),
                ino: d.inode.id().1,
                kind: FileType::Directory,
            },
            crate::vfs::DirEntry {
                name: b"..".to_vec(),
                ino: 1,
                kind: FileType::Directory,
            },
        ];
        list.extend(d.inode.readdir(k)?);
        *f.dir.borrow_mut() = Some(list);
    }
    // The count is an unsigned int; Linux refuses one that does not fit
    // an int.
    let cap = a[2] as u32 as usize;
    if cap > i32::MAX as usize {
        return Err(Errno::EINVAL);
    }
    let mut out = Vec::with_capacity(cap.min(65536));
    let list = f.dir.borrow();
    let list = list.as_ref().unwrap();
    let mut i = f.pos.get() as usize;
    // (entry index after it, bytes up to its end) for each entry.
    let mut ends = Vec::new();
    while i < list.len() {
        let e = &list[i];
        let base = if old { 18 } else { 19 };
        let reclen = (base + e.name.len() + 1 + if old { 1 } else { 0 }).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_ne_bytes());
        out.extend_from_slice(&((i + 1) as i64).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        if !old {
            out.push(e.kind.dirent_type());
        }
        out.extend_from_slice(&e.name);
        out.push(0);
        while out.len() < start + reclen - if old { 1 } else { 0 } {
            out.push(0);
        }
        if old {
            out.push(e.kind.dirent_type());
        }
        i += 1;
        ends.push((i, out.len()));
    }
    if out.is_empty() && i < list.len() {
        return Err(Errno::EINVAL);
    }
    // As Linux copies entry by entry: a buffer that is only partly
    // writable gets the entries that fit before the fault (EFAULT only
    // when not even the first does).
    let mm = k.task_mm(tid);
    if mm.borrow().write_bytes(a[1], &out).is_err() {
        let mut done = (f.pos.get() as usize, 0);
        let mut start = 0;
        for &(next, end) in &ends {
            if mm
                .borrow()
                .write_bytes(a[1] + start as u64, &out[start..end])
                .is_err()
            {
                break;
            }
            done = (next, end);
            start = end;
        }
        if done.1 == 0 {
            return Err(Errno::EFAULT);
        }
        out.truncate(done.1);
        i = done.0;
    }
    f.pos.set(i as u64);
    fsnotify::notify_file(&f, fsnotify::IN_ACCESS);
    Ok(out.len() as u64)
}

fn sys_getdents64(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    dents(k, tid, a, false)
}

fn sys_getdents(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    dents(k, tid, a, true)
}
