//! The virtual file system: mounts from the spec, path resolution done by
//! the kernel (symlinks confined to the container root), and the
//! filesystems: host files through the gofer, tmpfs, procfs, sysfs,
//! devfs, pipes.

pub mod atime;
pub mod dentry;
pub mod devfs;
pub mod devpts;
pub mod dnotify;
pub mod epoll;
pub mod eventfd;
pub mod fdtable;
pub mod file;
pub mod hostfd;
pub mod hostfs;
pub mod hostwindow;
pub mod inode;
pub mod inotify;
pub mod iov;
pub mod ldisc;
pub mod lock;
pub mod lookup;
pub mod mount;
pub mod overlay;
pub mod perm;
pub mod pipe;
pub mod procfs;
pub mod procmem;
pub mod pty;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfile;
pub mod tmpfs;
pub mod tty;
pub mod walkcache;
pub mod xattr;

pub use dentry::Dentry;
pub use fdtable::FdTable;
pub use file::{File, FileOps};
pub use inode::{DirEntry, FileType, Inode, SetAttr, TimeSet};
pub use iov::IoVecs;
pub use mount::{Mount, MountTable};

use std::cell::Cell;

thread_local! {
    static NEXT_DEV: Cell<u64> = const { Cell::new(1) };
    static NEXT_INO: Cell<u64> = const { Cell::new(1) };
}

/// A device number for a new in-kernel filesystem instance (major 0, like
/// Linux's anonymous devices).
pub fn new_dev() -> u64 {
    NEXT_DEV.with(|d| {
        let v = d.get();
        d.set(v + 1);
        libc::makedev(0, v as u32)
    })
}

/// Inode numbers for in-kernel objects.
pub fn new_ino() -> u64 {
    NEXT_INO.with(|d| {
        let v = d.get();
        d.set(v + 1);
        v
    })
}

/// The current time as a timespec.
pub fn now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills ts.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts
}

/// A zeroed stat with the given identity and mode.
pub fn stat_of(dev: u64, ino: u64, mode: u32, nlink: u64) -> libc::stat {
    // SAFETY: stat is plain data.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = dev;
    st.st_ino = ino;
    st.st_mode = mode;
    st.st_nlink = nlink;
    st.st_blksize = 4096;
    let t = now();
    st.st_atime = t.tv_sec;
    st.st_atime_nsec = t.tv_nsec;
    st.st_mtime = t.tv_sec;
    st.st_mtime_nsec = t.tv_nsec;
    st.st_ctime = t.tv_sec;
    st.st_ctime_nsec = t.tv_nsec;
    st
}
