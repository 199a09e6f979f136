//! Memory syscalls.

use super::{Handler, Status};
use crate::arch::{PAGE_SIZE, page_up};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::mm::{MapRequest, VmaName};
use crate::vfs::IoVecs;

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
            "MREMAP_DONTUNMAP unsupported",
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
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFBLK => {}
            libc::S_IFCHR => {}
            _ => return Err(Errno::ENODEV),
        }
        // Private (or read-only shared): a copy of the file's bytes.
        let chunk = mf.alloc(len)?;
        let mut done = 0usize;
        while done < len as usize {
            let iov = IoVecs {
                iovs: vec![libc::iovec {
                    iov_base: chunk.ptr(done as u64) as *mut libc::c_void,
                    iov_len: len as usize - done,
                }],
                len: len as usize - done,
            };
            match f.ops.read(k, &f, &iov, off + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EINVAL) if done == 0 => {
                    // /dev/zero and friends: zero-filled memory.
                    break;
                }
                Err(e) => return Err(e),
            }
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
    if flags & !(MAYMOVE | FIXED) != 0 || (flags & FIXED != 0 && flags & MAYMOVE == 0) {
        return Err(Errno::EINVAL);
    }
    let fixed_to = (flags & FIXED != 0).then_some(a[4]);
    if let Some(t) = fixed_to
        && t % PAGE_SIZE != 0
    {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    mm.borrow_mut().remap(
        &mut k.platform,
        a[0],
        a[1],
        a[2],
        flags & MAYMOVE != 0,
        fixed_to,
    )
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

fn sys_msync(_k: &mut Kernel, _tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !a[0].is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

fn sys_mincore(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    if !a[0].is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let pages = page_up(a[1]).ok_or(Errno::ENOMEM)? / PAGE_SIZE;
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    for i in 0..pages {
        if mm.find(a[0] + i * PAGE_SIZE).is_none() {
            return Err(Errno::ENOMEM);
        }
    }
    mm.write_bytes(a[2], &vec![1u8; pages as usize])?;
    Ok(0)
}

fn sys_nop(_k: &mut Kernel, _tid: Tid, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}
