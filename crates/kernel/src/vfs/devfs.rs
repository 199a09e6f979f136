//! /dev: a tmpfs with the device nodes a container expects. None of them
//! reaches a host device: null, zero, full, random and urandom are served
//! here, console is the container's own terminal, tty the caller's
//! controlling terminal (a pseudo-terminal, or the console).

use std::any::Any;
use std::rc::Rc;

use super::file::{File, FileOps};
use super::inode::{FileType, Inode};
use super::iov::IoVecs;
use super::tmpfs::{Content, TmpInode};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    Null,
    Zero,
    Full,
    Random,
    URandom,
    Tty,
    Console,
}

impl Dev {
    fn rdev(self) -> u64 {
        let (ma, mi) = match self {
            Dev::Null => (1, 3),
            Dev::Zero => (1, 5),
            Dev::Full => (1, 7),
            Dev::Random => (1, 8),
            Dev::URandom => (1, 9),
            Dev::Tty => (5, 0),
            Dev::Console => (5, 1),
        };
        libc::makedev(ma, mi)
    }
}

pub struct DevInode {
    dev: u64,
    ino: u64,
    which: Dev,
}

impl Inode for DevInode {
    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mode = match self.which {
            Dev::Console => 0o600,
            _ => 0o666,
        };
        let mut st = super::stat_of(self.dev, self.ino, libc::S_IFCHR | mode, 1);
        st.st_rdev = self.which.rdev();
        Ok(st)
    }
    fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
    fn kind(&self) -> FileType {
        FileType::CharDev
    }
    fn open(&self, k: &Kernel, flags: i32) -> SysResult<Rc<dyn FileOps>> {
        match self.which {
            // /dev/tty is the caller's controlling terminal: a pty its
            // session took, else the container's console.
            Dev::Tty => {
                let tid = k.current.get();
                let sid = k.tasks.get(&tid).map(|t| k.groups[&t.tgid].sid);
                match sid.and_then(super::pty::ctty_of) {
                    Some(p) => Ok(p.open_slave(k, flags | libc::O_NOCTTY)?),
                    None => k.console.clone().ok_or(Errno::ENXIO),
                }
            }
            Dev::Console => k.console.clone().ok_or(Errno::ENXIO),
            d => Ok(Rc::new(DevFile(d))),
        }
    }
    fn setattr(&self, _k: &Kernel, _a: &super::SetAttr) -> SysResult<()> {
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub struct DevFile(pub Dev);

/// Bytes a device read produces at a time.
const CHUNK: usize = 1 << 20;

/// Fills `dst` a chunk at a time with what `fill` writes into a buffer,
/// until it is full or a part of it cannot be written; returns the count.
fn fill_chunks(dst: &IoVecs, mut fill: impl FnMut(&mut [u8])) -> usize {
    let mut buf = vec![0u8; dst.len.min(CHUNK)];
    let mut done = 0;
    while done < dst.len {
        let n = (dst.len - done).min(CHUNK);
        fill(&mut buf[..n]);
        let copied = dst.copy_in(done, &buf[..n]);
        done += copied;
        if copied < n {
            break;
        }
    }
    done
}

impl FileOps for DevFile {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        match self.0 {
            Dev::Null => Ok(0),
            // The whole count, as Linux's read_iter_zero and urandom do (up
            // to MAX_RW_COUNT, which the caller bounds), a chunk at a time.
            Dev::Zero | Dev::Full => Ok(fill_chunks(dst, |_| {})),
            Dev::Random | Dev::URandom => Ok(fill_chunks(dst, crate::kernel::random::fill)),
            _ => Err(Errno::EINVAL),
        }
    }
    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        match self.0 {
            Dev::Full => Err(Errno::ENOSPC),
            _ => Ok(src.len),
        }
    }
    fn seekable(&self) -> bool {
        true
    }
    fn ioctl(&self, _k: &mut Kernel, _f: &File, _t: Tid, _c: u64, _a: u64) -> SysResult<u64> {
        Err(Errno::ENOTTY)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Builds /dev.
pub fn new_devfs() -> Rc<TmpInode> {
    let root = TmpInode::new_root(0o755, 0, 0);
    let dev = root.dev;
    for (name, which) in [
        ("null", Dev::Null),
        ("zero", Dev::Zero),
        ("full", Dev::Full),
        ("random", Dev::Random),
        ("urandom", Dev::URandom),
        ("tty", Dev::Tty),
        ("console", Dev::Console),
    ] {
        root.add(
            name.as_bytes(),
            Rc::new(DevInode {
                dev,
                ino: super::new_ino(),
                which,
            }),
        );
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        root.add(
            name.as_bytes(),
            TmpInode::new(
                dev,
                libc::S_IFLNK | 0o777,
                0,
                0,
                Content::Symlink(target.as_bytes().to_vec()),
            ),
        );
    }
    // A devpts instance even when the bundle mounts none on /dev/pts, so
    // /dev/ptmx always makes pseudo-terminals.
    root.add_dir(b"pts", super::devpts::new_devpts());
    for d in ["shm", "mqueue"] {
        root.add_dir(
            d.as_bytes(),
            TmpInode::new(
                dev,
                libc::S_IFDIR | if d == "shm" { 0o1777 } else { 0o755 },
                0,
                0,
                Content::Dir(Default::default()),
            ),
        );
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_counts_a_link_for_each_of_its_directories() {
        // Linux's tmpfs /dev with pts, shm and mqueue lists 5 links; a
        // count without them went below zero at the third rmdir (after
        // unmounts), a panic in a debug build.
        let root = new_devfs();
        let dirs = match &*root.content.borrow() {
            Content::Dir(d) => d
                .values()
                .filter(|i| i.kind() == super::super::FileType::Directory)
                .count(),
            _ => unreachable!(),
        };
        assert_eq!(dirs, 3);
        assert_eq!(root.meta.borrow().st_nlink, 2 + dirs as u64);
    }
}
