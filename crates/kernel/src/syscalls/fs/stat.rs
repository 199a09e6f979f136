//! File status: stat, lstat, fstat, newfstatat, statx, statfs, fstatfs.

use super::get_file_raw;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::lookup::AT_FDCWD;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("stat", sys_stat, Full, ""),
        ("lstat", sys_lstat, Full, ""),
        ("fstat", sys_fstat, Full, ""),
        ("newfstatat", sys_newfstatat, Full, ""),
        ("statx", sys_statx, Full, ""),
        ("statfs", sys_statfs, Full, ""),
        ("fstatfs", sys_fstatfs, Full, ""),
    ]
}

fn stat_path(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path_addr: u64,
    flags: i32,
) -> SysResult<libc::stat> {
    let path = k.read_path(tid, path_addr)?;
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            let d = k.task(tid).fs.borrow().cwd.clone();
            return d.inode.stat(k);
        }
        let f = get_file_raw(k, tid, dirfd)?;
        return f.stat(k);
    }
    let d = k.lookup_at(
        tid,
        dirfd,
        &path,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        false,
    )?;
    d.inode.stat(k)
}

fn put_stat(k: &Kernel, tid: Tid, addr: u64, st: &libc::stat) -> SysResult<u64> {
    k.task_mm(tid).borrow().write_val(addr, st)?;
    Ok(0)
}

fn sys_stat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, AT_FDCWD, a[0], 0)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_lstat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, AT_FDCWD, a[0], libc::AT_SYMLINK_NOFOLLOW)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_fstat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file_raw(k, tid, a[0] as i32)?;
    let st = f.stat(k)?;
    put_stat(k, tid, a[1], &st)
}

fn sys_newfstatat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let st = stat_path(k, tid, a[0] as i32, a[1], a[3] as i32)?;
    put_stat(k, tid, a[2], &st)
}

pub fn statx_of(st: &libc::stat, mnt_id: u64) -> libc::statx {
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    // STATX_BASIC_STATS and STATX_MNT_ID (no birth time).
    x.stx_mask = 0x7ff | 0x1000;
    x.stx_blksize = st.st_blksize as u32;
    x.stx_nlink = st.st_nlink as u32;
    x.stx_uid = st.st_uid;
    x.stx_gid = st.st_gid;
    x.stx_mode = st.st_mode as u16;
    x.stx_ino = st.st_ino;
    x.stx_size = st.st_size as u64;
    x.stx_blocks = st.st_blocks as u64;
    x.stx_atime.tv_sec = st.st_atime;
    x.stx_atime.tv_nsec = st.st_atime_nsec as u32;
    x.stx_mtime.tv_sec = st.st_mtime;
    x.stx_mtime.tv_nsec = st.st_mtime_nsec as u32;
    x.stx_ctime.tv_sec = st.st_ctime;
    x.stx_ctime.tv_nsec = st.st_ctime_nsec as u32;
    x.stx_rdev_major = libc::major(st.st_rdev);
    x.stx_rdev_minor = libc::minor(st.st_rdev);
    x.stx_dev_major = libc::major(st.st_dev);
    x.stx_dev_minor = libc::minor(st.st_dev);
    x.stx_mnt_id = mnt_id;
    x
}

fn sys_statx(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (dirfd, flags, mask) = (a[0] as i32, a[2] as i32, a[3] as u32);
    const AT_STATX_FORCE_SYNC: i32 = 0x2000;
    const AT_STATX_DONT_SYNC: i32 = 0x4000;
    const STATX_RESERVED: u32 = 0x8000_0000;
    let known = libc::AT_SYMLINK_NOFOLLOW
        | libc::AT_EMPTY_PATH
        | libc::AT_NO_AUTOMOUNT
        | AT_STATX_FORCE_SYNC
        | AT_STATX_DONT_SYNC;
    if flags & !known != 0
        || flags & (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)
            == AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC
        || mask & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, a[1])?;
    // The mount the file is on, for stx_mnt_id (as /proc/PID/mountinfo).
    let (st, mnt) = if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            let d = k.task(tid).fs.borrow().cwd.clone();
            (d.inode.stat(k)?, d.mount.id)
        } else {
            let f = get_file_raw(k, tid, dirfd)?;
            (f.stat(k)?, f.dentry.as_ref().map_or(0, |d| d.mount.id))
        }
    } else {
        let d = k.lookup_at(
            tid,
            dirfd,
            &path,
            flags & libc::AT_SYMLINK_NOFOLLOW == 0,
            false,
        )?;
        (d.inode.stat(k)?, d.mount.id)
    };
    let x = statx_of(&st, mnt as u64);
    k.task_mm(tid).borrow().write_val(a[4], &x)?;
    Ok(0)
}

fn put_statfs(k: &Kernel, tid: Tid, addr: u64, s: &libc::statfs) -> SysResult<u64> {
    k.task_mm(tid).borrow().write_val(addr, s)?;
    Ok(0)
}

fn sys_statfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let p = k.read_path(tid, a[0])?;
    let d = k.lookup(tid, &p, true)?;
    let mut s = d.inode.statfs(k)?;
    if d.mount.readonly {
        *crate::vfs::atime::statfs_flags(&mut s) |= libc::ST_RDONLY as i64;
    }
    put_statfs(k, tid, a[1], &s)
}

fn sys_fstatfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file_raw(k, tid, a[0] as i32)?;
    let s = match &f.dentry {
        Some(d) => d.inode.statfs(k)?,
        None => {
            // pipefs, sockfs, anon_inodefs: Linux's simple_statfs.
            // SAFETY: statfs is plain data.
            let mut s: libc::statfs = unsafe { std::mem::zeroed() };
            s.f_type = f.ops.fs_magic();
            s.f_bsize = 4096;
            s.f_namelen = 255;
            s
        }
    };
    put_statfs(k, tid, a[1], &s)
}
