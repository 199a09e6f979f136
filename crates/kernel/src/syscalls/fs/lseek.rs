//! lseek.

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::inode::FileType;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![("lseek", sys_lseek, Full, "")]
}

fn sys_lseek(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = a[1] as i64;
    let base: i64 = match a[2] as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => f.pos.get() as i64,
        // seq_file-like files (procfs) and tmpfs directories
        // (dcache_dir_lseek) have no end to seek from (Linux: EINVAL);
        // procfs, sysfs and disk directories do.
        libc::SEEK_END
            if !f.ops.seek_end()
                || f.dentry.as_ref().is_some_and(|d| {
                    d.kind() == FileType::Directory && d.mount.fstype == "tmpfs"
                }) =>
        {
            return Err(Errno::EINVAL);
        }
        libc::SEEK_END => f
            .ops
            .size(k)
            .map(|s| s as i64)
            .or_else(|| f.stat(k).ok().map(|s| s.st_size))
            .unwrap_or(0),
        libc::SEEK_DATA | libc::SEEK_HOLE => {
            let Some(hfd) = f.ops.host_fd() else {
                // No holes in in-kernel files: data everywhere, hole at the end.
                let size = f.ops.size(k).unwrap_or(0) as i64;
                if off >= size {
                    return Err(Errno::ENXIO);
                }
                let r = if a[2] as i32 == libc::SEEK_DATA {
                    off
                } else {
                    size
                };
                f.pos.set(r as u64);
                return Ok(r as u64);
            };
            let r = unsafe { libc::lseek(hfd, off, a[2] as i32) };
            if r < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            f.pos.set(r as u64);
            return Ok(r as u64);
        }
        _ => return Err(Errno::EINVAL),
    };
    // Past the largest offset is EINVAL on 64-bit (vfs_setpos).
    let new = base.checked_add(off).ok_or(Errno::EINVAL)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    f.pos.set(new as u64);
    if f.dentry
        .as_ref()
        .is_some_and(|d| d.kind() == FileType::Directory)
        && new == 0
    {
        *f.dir.borrow_mut() = None;
    }
    Ok(new as u64)
}
