//! Memory syscalls.

use super::{Handler, Status};
use crate::arch::{PAGE_SIZE, page_up};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::mm::filemem::{COPY_CACHED_MAX, SEAL_FUTURE_WRITE, SEAL_WRITE};
use crate::mm::{Backing, MapRequest, VmaName};
use crate::vfs::IoVecs;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        ("brk", sys_brk, Full, ""),
        (
            "mmap",
            sys_mmap,
            Full,
            "MAP_SHARED of host files, tmpfs, /dev/shm, memfd and /dev/zero share the file's pages; host files' pages are cached while mapped (changes from outside the sandbox are not seen then); ENOMEM at RLIMIT_AS, RLIMIT_DATA and the container's memory limit",
        ),
        ("munmap", sys_munmap, Full, ""),
        ("mprotect", sys_mprotect, Full, ""),
        ("mremap", sys_mremap, Full, ""),
        (
            "madvise",
            sys_madvise,
            Partial,
            "DONTNEED/FREE/REMOVE, DONTFORK/DOFORK and WIPEONFORK/KEEPONFORK act; other advice is accepted without effect",
        ),
        (
            "msync",
            sys_msync,
            Full,
            "writes dirty pages of host files back",
        ),
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
    let (old, grow) = {
        let m = mm.borrow();
        let old_end = page_up(m.brk).unwrap_or(m.brk);
        let new_end = page_up(a[0]).unwrap_or(0);
        (m.brk, new_end.saturating_sub(old_end))
    };
    // A break that would pass RLIMIT_AS, RLIMIT_DATA (the heap and the
    // data segment against the soft limit, no exception for zero) or the
    // container's memory stays where it is (brk reports the old break).
    if grow > 0 && a[0] > old {
        let data_lim = k.rlimit(tid, libc::RLIMIT_DATA).rlim_cur;
        let m = mm.borrow();
        if (data_lim != libc::RLIM_INFINITY && m.data_bytes().saturating_add(grow) > data_lim)
            || k.may_expand(tid, &m, grow, grow, grow).is_err()
        {
            return Ok(old);
        }
    }
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
    let anon = flags & libc::MAP_ANONYMOUS != 0;
    if flags & 3 == 3 {
        // MAP_SHARED_VALIDATE: only for files, and only known flags.
        if anon {
            return Err(Errno::EINVAL);
        }
        const KNOWN: i32 = 3
            | libc::MAP_FIXED
            | libc::MAP_ANONYMOUS
            | libc::MAP_DENYWRITE
            | libc::MAP_EXECUTABLE
            | libc::MAP_GROWSDOWN
            | libc::MAP_LOCKED
            | libc::MAP_NORESERVE
            | libc::MAP_POPULATE
            | libc::MAP_NONBLOCK
            | libc::MAP_STACK
            | libc::MAP_HUGETLB
            | libc::MAP_FIXED_NOREPLACE
            | libc::MAP_32BIT;
        if flags & !KNOWN != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
    }
    if !anon && off.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
        return Err(Errno::EOVERFLOW);
    }
    let fixed = flags & libc::MAP_FIXED != 0;
    let noreplace = flags & libc::MAP_FIXED_NOREPLACE != 0;
    let hint = if flags & libc::MAP_32BIT != 0 && addr == 0 {
        0x4000_0000
    } else {
        addr
    };
    let mm = k.task_mm(tid);
    let mf = k.mf.clone();
    let mut maywrite = true;
    let (backing, name, shared) = if anon {
        (Backing::anon(mf.alloc(len)?), VmaName::Anon, shared)
    } else {
        let f = super::fs::get_file(k, tid, fd)?;
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        if !f.readable() {
            return Err(Errno::EACCES);
        }
        if shared {
            maywrite = f.writable() && f.flags.get() & libc::O_APPEND == 0;
            if prot & libc::PROT_WRITE != 0 && !maywrite {
                return Err(Errno::EACCES);
            }
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
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            // /dev/zero: fresh anonymous memory, shared or private.
            libc::S_IFCHR if st.st_rdev == libc::makedev(1, 5) => {
                let data = if !shared && prot & libc::PROT_WRITE != 0 {
                    len
                } else {
                    0
                };
                let commit = if prot != libc::PROT_NONE { len } else { 0 };
                k.may_expand(tid, &mm.borrow(), len, data, commit)?;
                return mm.borrow_mut().map(
                    &mut k.platform,
                    MapRequest {
                        addr: hint,
                        len,
                        prot,
                        shared,
                        fixed,
                        noreplace,
                        maywrite: true,
                        backing: Backing::anon(mf.alloc(len)?),
                        name,
                    },
                );
            }
            _ => return Err(Errno::ENODEV),
        }
        match f.ops.pages(k)? {
            Some(mem) if shared => {
                if mem.seals.get() & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
                    if prot & libc::PROT_WRITE != 0 {
                        return Err(Errno::EPERM);
                    }
                    maywrite = false;
                }
                (Backing::File { mem, off }, name, true)
            }
            // Private and not writable, of a host file (program text,
            // read-only data, the first mapping ld.so makes of a library):
            // the file's own pages, read-only, shared with every other
            // mapping of the file, as Linux's page cache is until a write.
            // Nothing is copied at mmap or fork; a page is read from the
            // host at its first touch. mprotect(PROT_WRITE) and syscall-site
            // patching give the range its own copy first
            // (`AddressSpace::privatize`), so no write ever reaches these
            // pages through this mapping.
            Some(mem) if prot & libc::PROT_WRITE == 0 && mem.is_host() => {
                (Backing::File { mem, off }, name, false)
            }
            Some(mem) => {
                // Private: a copy of the file's bytes up to its end (past
                // it the mapping raises SIGBUS until the file grows).
                let chunk = mf.alloc(len)?;
                let n = len.min(page_up(mem.size().saturating_sub(off)).unwrap_or(len));
                if n > 0 && (!mem.is_host() || n <= COPY_CACHED_MAX) {
                    mem.copy_to_chunk(off, n, &chunk, 0)?;
                } else if n > 0 {
                    // SAFETY: the first n bytes of the new chunk, in the kernel's mapping.
                    let dst = unsafe { std::slice::from_raw_parts_mut(chunk.ptr(0), n as usize) };
                    mem.read_into(dst, off)?;
                }
                (
                    Backing::Chunk {
                        chunk,
                        off: 0,
                        file: Some((mem, off)),
                    },
                    name,
                    false,
                )
            }
            None => {
                if shared && prot & libc::PROT_WRITE != 0 {
                    return Err(Errno::ENODEV);
                }
                // Regular files of other filesystems (procfs): a copy.
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
                        Err(e) => return Err(e),
                    }
                }
                (Backing::anon(chunk), name, false)
            }
        }
    };
    // RLIMIT_AS, RLIMIT_DATA, and the container's memory: private copies
    // of files take memory now, writable anonymous memory once touched.
    let is_data = !shared && prot & libc::PROT_WRITE != 0 && flags & libc::MAP_GROWSDOWN == 0;
    let commit = match &backing {
        Backing::Chunk { file: Some(_), .. } => len,
        Backing::Chunk { .. } if prot != libc::PROT_NONE && flags & libc::MAP_NORESERVE == 0 => len,
        _ => 0,
    };
    {
        let m = mm.borrow();
        let (replaced, replaced_data) = if fixed {
            m.mapped_in(hint, hint.saturating_add(len))
        } else {
            (0, 0)
        };
        let data = if is_data {
            len.saturating_sub(replaced_data)
        } else {
            0
        };
        k.may_expand(tid, &m, len.saturating_sub(replaced), data, commit)?;
    }
    let req = MapRequest {
        addr: hint,
        len,
        prot,
        shared,
        fixed,
        noreplace,
        maywrite,
        backing,
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
    let prot = (a[2] & PROT_MASK) as i32;
    if let Some(end) = page_up(a[1]).and_then(|l| a[0].checked_add(l)) {
        let (data, commit) = mm.borrow().protect_growth(a[0], end, prot);
        if data > 0 || commit > 0 {
            k.may_expand(tid, &mm.borrow(), 0, data, commit)?;
        }
    }
    mm.borrow_mut().protect(&mut k.platform, a[0], a[1], prot)?;
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
    let (old_len, new_len) = (page_up(a[1]).unwrap_or(0), page_up(a[2]).unwrap_or(0));
    if new_len > old_len {
        let grow = new_len - old_len;
        let m = mm.borrow();
        let (data, commit) = match m.find(a[0]) {
            Some(v) if !v.shared => {
                let d = if v.prot & libc::PROT_WRITE != 0 {
                    grow
                } else {
                    0
                };
                (d, if v.prot != libc::PROT_NONE { grow } else { 0 })
            }
            _ => (0, 0),
        };
        k.may_expand(tid, &m, grow, data, commit)?;
    }
    mm.borrow_mut()
        .remap(&mut k.platform, a[0], a[1], a[2], how)
}

fn sys_madvise(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    const MADV_WIPEONFORK: i32 = 18;
    const MADV_KEEPONFORK: i32 = 19;
    let (addr, advice) = (a[0], a[2] as i32);
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(a[1]).ok_or(Errno::EINVAL)?;
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    match advice {
        0..=4 | 8..=17 | MADV_WIPEONFORK | MADV_KEEPONFORK | 20..=25 => {}
        // MADV_HWPOISON, MADV_SOFT_OFFLINE: memory-failure injection.
        100 | 101 => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    if len == 0 {
        return Ok(0);
    }
    let mm = k.task_mm(tid);
    let mut mm = mm.borrow_mut();
    match advice {
        libc::MADV_DONTNEED | libc::MADV_FREE => mm.dont_need(addr, len)?,
        libc::MADV_REMOVE => mm.remove_pages(addr, len)?,
        libc::MADV_DONTFORK | libc::MADV_DOFORK => {
            mm.set_fork_policy(addr, end, |v| v.dontfork = advice == libc::MADV_DONTFORK)?
        }
        MADV_WIPEONFORK | MADV_KEEPONFORK => {
            // Only private anonymous memory can be wiped in the child.
            if advice == MADV_WIPEONFORK
                && mm
                    .vmas_in(addr, end)
                    .any(|v| v.shared || !matches!(v.backing, Backing::Chunk { file: None, .. }))
            {
                return Err(Errno::EINVAL);
            }
            mm.set_fork_policy(addr, end, |v| v.wipeonfork = advice == MADV_WIPEONFORK)?
        }
        _ => {}
    }
    // Advice over a range with holes applies to what is mapped, then says so.
    if mm.mapped_in(addr, end).0 < len {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// msync(2): what the range's shared file mappings wrote goes to the
/// files (MS_ASYNC does the same work now; MS_INVALIDATE has nothing to
/// drop: every mapping already sees the file's own pages).
fn sys_msync(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (addr, flags) = (a[0], a[2] as i32);
    if !addr.is_multiple_of(PAGE_SIZE)
        || flags & !(libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE) != 0
        || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0)
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    // The file pages to write, and whether the whole range is mapped.
    let mut todo = Vec::new();
    let mut pos = addr;
    {
        let mm = k.task_mm(tid);
        let mm = mm.borrow();
        for v in mm.vmas_in(addr, end) {
            if v.end <= pos {
                continue;
            }
            if v.start > pos {
                break;
            }
            if let Backing::File { mem, off } = &v.backing
                && mem.is_host()
                && v.shared
            {
                let s = pos.max(v.start);
                let e = end.min(v.end);
                let p0 = (off + (s - v.start)) / PAGE_SIZE;
                todo.push((mem.clone(), p0, p0 + (e - s) / PAGE_SIZE));
            }
            pos = v.end;
        }
    }
    for (mem, p0, p1) in todo {
        k.sync_file_pages(&mem, p0, p1)?;
    }
    if pos < end {
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

/// fcntl F_ADD_SEALS / F_GET_SEALS: seals of in-memory files (memfd
/// allows them when created with MFD_ALLOW_SEALING; tmpfs files carry
/// F_SEAL_SEAL); other files have none (EINVAL).
pub fn fcntl_seals(k: &mut Kernel, f: &crate::vfs::File, cmd: i32, arg: u64) -> SysResult<u64> {
    use crate::mm::filemem::{SEAL_EXEC, SEAL_GROW, SEAL_SEAL, SEAL_SHRINK};
    let mem = match f.ops.pages(k)? {
        Some(m) if !m.is_host() => m,
        _ => return Err(Errno::EINVAL),
    };
    if cmd == libc::F_GET_SEALS {
        return Ok(mem.seals.get() as u64);
    }
    let add = arg as u32;
    let known = SEAL_SEAL | SEAL_SHRINK | SEAL_GROW | SEAL_WRITE | SEAL_FUTURE_WRITE | SEAL_EXEC;
    if arg > u32::MAX as u64 || add & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() || mem.seals.get() & SEAL_SEAL != 0 {
        return Err(Errno::EPERM);
    }
    if add & SEAL_WRITE != 0 && mem.seals.get() & SEAL_WRITE == 0 {
        // Not while a shared mapping could still write the pages.
        for mm in k.address_spaces() {
            let busy = mm.borrow().vmas().any(|v| {
                v.shared && v.maywrite && matches!(&v.backing, Backing::File { mem: m, .. } if std::rc::Rc::ptr_eq(m, &mem))
            });
            if busy {
                return Err(Errno::EBUSY);
            }
        }
    }
    mem.seals.set(mem.seals.get() | add);
    Ok(0)
}
