//! Memory syscalls.

use super::{Handler, Status};
use crate::arch::{PAGE_SIZE, page_up};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::mm::{MapRequest, VmaName};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("brk", sys_brk, Full, ""),
        (
            "mmap",
            sys_mmap,
            Partial,
            "MAP_SHARED writable mappings of host files unsupported (ENODEV)",
        ),
        ("munmap", sys_munmap, Full, ""),
        ("mprotect", sys_mprotect, Full, ""),
        (
            "mremap",
            sys_mremap,
            Partial,
            "growth past a shared object's end is zero pages, not SIGBUS; a private file mapping grows by zeros, not more of the file",
        ),
        (
            "madvise",
            sys_madvise,
            Partial,
            "DONTNEED/FREE release memory, other advice accepted",
        ),
        ("msync", sys_msync, Full, ""),
        ("mincore", sys_mincore, Full, ""),
        ("mlock", sys_nop, Full, "accepted"),
        ("mlock2", sys_nop, Full, "accepted"),
        ("munlock", sys_nop, Full, "accepted"),
        ("mlockall", sys_nop, Full, "accepted"),
        ("munlockall", sys_nop, Full, "accepted"),
    ]
}

const PROT_MASK: u64 = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;

fn sys_brk(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    let r = mm.borrow_mut().set_brk(&mut k.platform, a[0]);
    Ok(r)
}

fn sys_mmap(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2], a[3] as i32, a[4] as i32, a[5]);
    if len == 0 || off % PAGE_SIZE != 0 || prot & !PROT_MASK & !0x0300_0000 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let prot = (prot & PROT_MASK) as i32;
    let shared = match flags & 3 {
        libc::MAP_SHARED | 3 => true,
        libc::MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    let fixed = flags & libc::MAP_FIXED != 0;
    let noreplace = flags & libc::MAP_FIXED_NOREPLACE != 0;
    let hint = if flags & libc::MAP_32BIT != 0 && addr == 0 {
        0x4000_0000
    } else {
        addr
    };
    let mm = k.task_mm(tid);
    let mf = k.mf.clone();
    let (chunk, name) = if flags & libc::MAP_ANONYMOUS != 0 {
        (mf.alloc(len)?, VmaName::Anon)
    } else {
        let f = super::fs::get_file(k, tid, fd)?;
        if !f.readable() {
            return Err(Errno::EACCES);
        }
        if shared && prot & libc::PROT_WRITE != 0 && !f.writable() {
            return Err(Errno::EACCES);
        }
        let d = f.dentry.clone().ok_or(Errno::ENODEV)?;
        if prot & libc::PROT_EXEC != 0 && d.mount.noexec {
            return Err(Errno::EPERM);
        }
        let st = f.stat(k)?;
        let name = VmaName::File {
            path: String::from_utf8_lossy(&d.path(k)).into_owned(),
            offset: off,
            dev: st.st_dev,
            ino: st.st_ino,
        };
        if shared {
            if let Some(c) = f.ops.shared_memory(off + len) {
                let req = MapRequest {
                    addr: hint,
                    len,
                    prot,
                    shared: true,
                    fixed,
                    noreplace,
                    chunk: c,
                    chunk_off: off,
                    name,
                };
                return mm.borrow_mut().map(&mut k.platform, req);
            }
            if prot & libc::PROT_WRITE != 0 {
                // A writable shared mapping of a host file would need the
                // host file mapped into the stub; not offered.
                return Err(Errno::ENODEV);
            }
        }
        let zero_dev = f
            .ops
            .as_any()
            .downcast_ref::<crate::vfs::devfs::DevFile>()
            .is_some_and(|d| d.0 == crate::vfs::devfs::Dev::Zero);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFBLK => {}
            // /dev/zero maps as zero-filled memory; no other device maps.
            libc::S_IFCHR if zero_dev => {}
            _ => return Err(Errno::ENODEV),
        }
        // Private (or read-only shared): a copy of the file's bytes.
        let chunk = mf.alloc(len)?;
        if !zero_dev {
            f.copy_into(k, off, &chunk, 0, len)?;
        }
        (chunk, name)
    };
    let req = MapRequest {
        addr: hint,
        len,
        prot,
        shared: shared && flags & libc::MAP_ANONYMOUS != 0,
        fixed,
        noreplace,
        chunk,
        chunk_off: 0,
        name,
    };
    mm.borrow_mut().map(&mut k.platform, req)
}

fn sys_munmap(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let mm = k.task_mm(tid);
    mm.borrow_mut().unmap(&mut k.platform, a[0], a[1])?;
    Ok(0)
}

fn sys_mprotect(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if a[2] & !PROT_MASK & !0x0300_0000 != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    mm.borrow_mut()
        .protect(&mut k.platform, a[0], a[1], (a[2] & PROT_MASK) as i32)?;
    Ok(0)
}

fn sys_mremap(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[3];
    const MAYMOVE: u64 = 1;
    const FIXED: u64 = 2;
    const DONTUNMAP: u64 = 4;
    if flags & !(MAYMOVE | FIXED | DONTUNMAP) != 0
        || (flags & (FIXED | DONTUNMAP) != 0 && flags & MAYMOVE == 0)
    {
        return Err(Errno::EINVAL);
    }
    let how = crate::mm::Remap {
        may_move: flags & MAYMOVE != 0,
        fixed: (flags & FIXED != 0).then_some(a[4]),
        dont_unmap: flags & DONTUNMAP != 0,
    };
    let mm = k.task_mm(tid);
    mm.borrow_mut()
        .remap(&mut k.platform, a[0], a[1], a[2], how)
}

fn sys_madvise(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !a[0].is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    match a[2] as i32 {
        libc::MADV_DONTNEED | libc::MADV_FREE | libc::MADV_REMOVE => {
            k.task_mm(tid).borrow_mut().dont_need(a[0], a[1])?;
            Ok(0)
        }
        _ => Ok(0),
    }
}

fn sys_msync(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2] as i32;
    let known = libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE;
    if !a[0].is_multiple_of(PAGE_SIZE)
        || flags & !known != 0
        || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0)
    {
        return Err(Errno::EINVAL);
    }
    // The whole range must be mapped (what programs probe mappings with).
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    if !k.task_mm(tid).borrow().is_mapped(a[0], len) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

fn sys_mincore(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !a[0].is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    if !mm.is_mapped(a[0], len) {
        return Err(Errno::ENOMEM);
    }
    // Every page counts as resident; written a piece at a time.
    let ones = [1u8; 4096];
    let pages = len / PAGE_SIZE;
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(ones.len() as u64);
        mm.write_bytes(a[2] + done, &ones[..n as usize])?;
        done += n;
    }
    Ok(0)
}

fn sys_nop(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}
