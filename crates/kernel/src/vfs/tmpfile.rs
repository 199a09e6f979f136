//! O_TMPFILE: an unnamed regular file. It lives in the kernel's memory
//! (like a tmpfs file that was never linked) whatever directory it was
//! opened in; linking it into a host directory later is not supported.

use std::rc::Rc;

use super::File;
use super::tmpfs::{Content, TmpInode};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::vfs::inode::{FileType, Inode};
use crate::vfs::perm::{MAY_EXEC, MAY_WRITE};

pub fn open_tmpfile(
    k: &mut Kernel,
    tid: Tid,
    dirfd: i32,
    path: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Rc<File>> {
    let acc = flags & libc::O_ACCMODE;
    if acc == libc::O_RDONLY {
        return Err(Errno::EINVAL);
    }
    let dir = k.lookup_at(tid, dirfd, path, true, false)?;
    if dir.kind() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if dir.mount.readonly {
        return Err(Errno::EROFS);
    }
    let cred = k.cred(tid);
    cred.may_access(&dir.inode.stat(k)?, MAY_WRITE | MAY_EXEC)?;
    let umask = k.task(tid).fs.borrow().umask;
    let inode = TmpInode::new(
        super::new_dev(),
        libc::S_IFREG | (mode & !umask & 0o7777),
        cred.fsuid,
        cred.fsgid,
        Content::File(Vec::new()),
    );
    inode.meta.borrow_mut().st_nlink = 0;
    let ops = inode.open(k, flags & !libc::O_TMPFILE)?;
    let d = super::Dentry::child(&dir, b"#tmpfile", inode);
    Ok(File::new(
        ops,
        (flags & !libc::O_TMPFILE) | libc::O_LARGEFILE,
        Some(d),
    ))
}
