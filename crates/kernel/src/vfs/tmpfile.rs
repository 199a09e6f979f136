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
    cred.may_access(&dir.inode.stat_for_check(k)?, MAY_WRITE | MAY_EXEC)?;
    let umask = k.task(tid).fs.borrow().umask;
    let inode = TmpInode::new(
        super::new_dev(),
        libc::S_IFREG | (mode & !umask & 0o7777),
        cred.fsuid,
        cred.fsgid,
        super::tmpfs::new_file_content(),
    );
    inode.meta.borrow_mut().st_nlink = 0;
    let ops = inode.open(k, flags & !libc::O_TMPFILE)?;
    let d = super::Dentry::child(&dir, b"#tmpfile", inode);
    Ok(File::new(
        ops,
        (flags & !libc::O_TMPFILE) | super::file::O_LARGEFILE,
        Some(d),
    ))
}

/// memfd_create: an anonymous regular file in the kernel's memory, named
/// `memfd:NAME` in /proc/PID/fd. With MFD_ALLOW_SEALING it starts without
/// seals (F_ADD_SEALS may add them), else sealed against sealing.
pub fn memfd(k: &mut Kernel, tid: Tid, name: &[u8], flags: u32) -> SysResult<Rc<File>> {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    const MFD_NOEXEC_SEAL: u32 = 8;
    const MFD_EXEC: u32 = 0x10;
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        // MFD_HUGETLB and unknown flags.
        return Err(Errno::EINVAL);
    }
    // Linux: the name is at most 249 bytes ("memfd:" + name <= NAME_MAX).
    if name.len() > 249 {
        return Err(Errno::EINVAL);
    }
    let cred = k.cred(tid);
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o666
    } else {
        0o777
    };
    let content = super::tmpfs::new_file_content();
    if let Content::File(m) = &content {
        use crate::mm::filemem::{SEAL_EXEC, SEAL_SEAL};
        let mut seals = if flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) != 0 {
            0
        } else {
            SEAL_SEAL
        };
        if flags & MFD_NOEXEC_SEAL != 0 {
            seals |= SEAL_EXEC;
        }
        m.seals.set(seals);
    }
    let inode = TmpInode::new(
        super::new_dev(),
        libc::S_IFREG | mode,
        cred.fsuid,
        cred.fsgid,
        content,
    );
    inode.meta.borrow_mut().st_nlink = 0;
    let ops = inode.open(k, libc::O_RDWR)?;
    let root = k.task(tid).fs.borrow().root.clone();
    let mut label = b"memfd:".to_vec();
    label.extend_from_slice(name);
    label.extend_from_slice(b" (deleted)");
    // Its own writable mount: a memfd is writable whatever the root is.
    let mount = Rc::new(super::mount::Mount {
        id: u32::MAX,
        root: inode.clone(),
        mountpoint: None,
        readonly: false,
        fstype: "tmpfs".into(),
        source: "memfd".into(),
        options: String::new(),
        noexec: false,
        nosuid: true,
        ns: 0,
    });
    let d = Rc::new(super::Dentry {
        name: label,
        parent: Some(root),
        inode,
        mount,
    });
    Ok(File::new(
        ops,
        libc::O_RDWR | super::file::O_LARGEFILE,
        Some(d),
    ))
}
