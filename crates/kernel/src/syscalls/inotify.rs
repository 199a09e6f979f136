//! inotify syscalls (the instance and the events are in vfs/inotify.rs).

use std::rc::Rc;

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::vfs::File;
use crate::vfs::inode::FileType;
use crate::vfs::inotify::{
    IN_ALL_EVENTS, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_MASK_ADD, IN_MASK_CREATE, IN_ONESHOT,
    IN_ONLYDIR, Inotify,
};
use crate::vfs::lookup::AT_FDCWD;
use crate::vfs::perm::MAY_READ;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "inotify_init",
            sys_inotify_init,
            Full,
            "changes made inside the sandbox (not those made from outside on shared mounts)",
        ),
        ("inotify_init1", sys_inotify_init1, Full, "as inotify_init"),
        ("inotify_add_watch", sys_inotify_add_watch, Full, ""),
        ("inotify_rm_watch", sys_inotify_rm_watch, Full, ""),
    ]
}

fn init(k: &mut Kernel, tid: Tid, flags: i32) -> SysResult<u64> {
    if flags & !(libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = File::new(
        Inotify::new(),
        libc::O_RDONLY | (flags & libc::O_NONBLOCK),
        None,
    );
    super::fs::install_fd(k, tid, f, flags & libc::O_CLOEXEC != 0)
}

fn sys_inotify_init(k: &mut Kernel, tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    init(k, tid, 0)
}

fn sys_inotify_init1(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    init(k, tid, a[0] as i32)
}

/// The file of inotify descriptor `fd`: EBADF for no file, EINVAL for
/// another kind.
fn instance(k: &Kernel, tid: Tid, fd: i32) -> SysResult<Rc<File>> {
    let f = super::fs::get_file(k, tid, fd)?;
    if f.ops.as_any().downcast_ref::<Inotify>().is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

fn sys_inotify_add_watch(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (fd, mask) = (a[0] as i32, a[2] as u32);
    let f = instance(k, tid, fd)?;
    let known = IN_ALL_EVENTS
        | IN_ONLYDIR
        | IN_DONT_FOLLOW
        | IN_EXCL_UNLINK
        | IN_MASK_CREATE
        | IN_MASK_ADD
        | IN_ONESHOT;
    if mask & IN_ALL_EVENTS == 0
        || mask & !known != 0
        || (mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0)
    {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, a[1])?;
    let d = k.lookup_at(tid, AT_FDCWD, &path, mask & IN_DONT_FOLLOW == 0, false)?;
    if mask & IN_ONLYDIR != 0 && d.kind() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let st = d.inode.stat(k)?;
    k.cred(tid).may_access(&st, MAY_READ)?;
    let ino = f.ops.as_any().downcast_ref::<Inotify>().expect("checked");
    Ok(ino.add_watch(d.inode.id(), mask)? as u64)
}

fn sys_inotify_rm_watch(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = instance(k, tid, a[0] as i32)?;
    let ino = f.ops.as_any().downcast_ref::<Inotify>().expect("checked");
    ino.remove_watch(a[1] as i32)?;
    Ok(0)
}
