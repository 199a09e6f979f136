//! Writing back and advice: fsync, fdatasync, sync, syncfs, sync_file_range, fadvise64, readahead.

use super::get_file;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("fsync", sys_fsync, Full, ""),
        ("fdatasync", sys_fsync, Full, ""),
        ("sync", sys_sync, Full, ""),
        ("syncfs", sys_syncfs, Full, ""),
        ("sync_file_range", sys_sync_range, Full, ""),
        ("fadvise64", sys_fadvise, Full, "advice accepted, no effect"),
        ("readahead", sys_fadvise, Full, "no effect"),
    ]
}

fn sys_fsync(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    f.ops.sync()?;
    Ok(0)
}

fn sys_sync(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}

fn sys_syncfs(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    get_file(k, tid, a[0] as i32)?;
    Ok(0)
}

fn sys_sync_range(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    f.ops.sync()?;
    Ok(0)
}

fn sys_fadvise(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
