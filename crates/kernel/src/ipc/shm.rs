//! System V shared memory: shmget, shmat, shmdt, shmctl.
//!
//! A segment is an in-memory file (a [`FileMem`] in the memory file, as
//! Linux's are shmem files); shmat maps it shared like mmap would, so
//! attachments in every process share its pages, and fork shares them.
//! The number of attachments is the number of VMAs that hold the segment's
//! pages (as Linux counts them); a segment marked for removal goes when it
//! reaches zero.

use std::rc::Rc;

use super::ids::{IpcPerm, PERM_SIZE};
use super::{IPC_64, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, Namespace};
use crate::arch::{PAGE_SIZE, page_down, page_up};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Pid, Tid};
use crate::mm::{Backing, FileMem, MapRequest, VmaName};

pub const SHM_RDONLY: i32 = 0o10000;
pub const SHM_RND: i32 = 0o20000;
pub const SHM_REMAP: i32 = 0o40000;
pub const SHM_EXEC: i32 = 0o100000;
const SHM_HUGETLB: i32 = 0o4000;

const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// Mode flags of a segment.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// CAP_IPC_LOCK.
const CAP_IPC_LOCK: u32 = 14;

pub struct Segment {
    pub mem: Rc<FileMem>,
    pub size: u64,
    pub cpid: Pid,
    pub lpid: Pid,
    pub atime: i64,
    pub dtime: i64,
    /// The creating process (kernel.shm_rmid_forced).
    pub creator: Pid,
    /// The creator has exited.
    pub orphan: bool,
}

impl Segment {
    /// Attachments: VMAs holding the pages (the registry holds one more).
    pub fn nattch(&self) -> u64 {
        Rc::strong_count(&self.mem) as u64 - 1
    }
}

/// Segments are destroyed once nobody is attached if they were removed
/// (IPC_RMID), or if kernel.shm_rmid_forced is set and their creator
/// exited.
pub fn purge(ns: &mut Namespace) {
    let forced = ns.limits.shm_rmid_forced;
    let gone = ns.shm.ids_where(|o| {
        o.inner.nattch() == 0 && (o.perm.mode & SHM_DEST != 0 || (forced && o.inner.orphan))
    });
    for id in gone {
        ns.shm.remove(id);
    }
}

/// Total pages of all segments.
fn total_pages(ns: &Namespace) -> u64 {
    ns.shm
        .iter()
        .map(|o| o.inner.size.div_ceil(PAGE_SIZE))
        .sum()
}

pub fn shmget(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (key, size, flg) = (a[0] as i32, a[1], a[2] as i32);
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    super::with(|ns| {
        purge(ns);
        if let Some(id) = ns.shm.find_key(key) {
            if flg & IPC_CREAT != 0 && flg & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let o = ns.shm.get(id)?;
            o.perm.check(
                &cred,
                (flg as u32 >> 6) & 0o7 | (flg as u32 >> 3) & 0o7 | flg as u32 & 0o7,
            )?;
            if size > o.inner.size {
                return Err(Errno::EINVAL);
            }
            return Ok(id as u64);
        }
        if key != 0 && flg & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        if flg & SHM_HUGETLB != 0 {
            return Err(Errno::EINVAL);
        }
        if size < 1 || size > ns.limits.shmmax {
            return Err(Errno::EINVAL);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        if total_pages(ns).saturating_add(pages) > ns.limits.shmall {
            return Err(Errno::ENOSPC);
        }
        let mem = FileMem::new_memory(&k.mf);
        mem.extend(size);
        let seg = Segment {
            mem,
            size,
            cpid: pid,
            lpid: 0,
            atime: 0,
            dtime: 0,
            creator: pid,
            orphan: false,
        };
        let max = ns.limits.shmmni;
        let id = ns
            .shm
            .insert(IpcPerm::new(key, flg as u32, &cred), seg, max)?;
        Ok(id as u64)
    })
}

/// The name an attachment shows in /proc/PID/maps.
fn vma_name(key: i32, id: i32) -> VmaName {
    VmaName::File {
        path: format!("/SYSV{:08x} (deleted)", key as u32),
        offset: 0,
        dev: 0,
        ino: id as u64,
    }
}

pub fn shmat(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, addr, flg) = (a[0] as i32, a[1], a[2] as i32);
    let cred = k.cred(tid);
    let pid = k.task(tid).tgid;
    let addr = if addr != 0 && !addr.is_multiple_of(PAGE_SIZE) {
        if flg & SHM_RND == 0 {
            return Err(Errno::EINVAL);
        }
        page_down(addr)
    } else {
        addr
    };
    if addr == 0 && flg & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let mut want = 0o4;
    let mut prot = libc::PROT_READ;
    if flg & SHM_RDONLY == 0 {
        want |= 0o2;
        prot |= libc::PROT_WRITE;
    }
    if flg & SHM_EXEC != 0 {
        want |= 0o1;
        prot |= libc::PROT_EXEC;
    }
    let (mem, size, key) = super::with(|ns| {
        purge(ns);
        let o = ns.shm.get(id)?;
        o.perm.check(&cred, want)?;
        Ok::<_, Errno>((o.inner.mem.clone(), o.inner.size, o.perm.key))
    })?;
    let len = page_up(size).ok_or(Errno::EINVAL)?;
    let mm = k.task_mm(tid);
    if addr != 0 && flg & SHM_REMAP == 0 {
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if mm.borrow().vmas().any(|v| v.start < end && v.end > addr) {
            return Err(Errno::EINVAL);
        }
    }
    let r = mm.borrow_mut().map(
        &mut k.platform,
        MapRequest {
            addr,
            len,
            prot,
            shared: true,
            fixed: addr != 0,
            noreplace: false,
            maywrite: flg & SHM_RDONLY == 0,
            backing: Backing::File { mem, off: 0 },
            name: vma_name(key, id),
        },
    )?;
    super::with(|ns| {
        if let Ok(o) = ns.shm.get_mut(id) {
            o.inner.atime = super::now();
            o.inner.lpid = pid;
        }
    });
    Ok(r)
}

pub fn shmdt(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let addr = a[0];
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let pid = k.task(tid).tgid;
    // The attachment starting at addr: VMAs of that segment from there on
    // whose file offset matches their distance from addr.
    let segs: Vec<(i32, Rc<FileMem>, u64)> = super::with(|ns| {
        ns.shm
            .iter()
            .map(|o| (o.id, o.inner.mem.clone(), o.inner.size))
            .collect()
    });
    let mm = k.task_mm(tid);
    let mut found = None;
    {
        let m = mm.borrow();
        if let Some(v) = m.find(addr)
            && v.start == addr
            && let Backing::File { mem, off: 0 } = &v.backing
        {
            found = segs.iter().find(|(_, s, _)| Rc::ptr_eq(s, mem)).cloned();
        }
    }
    let Some((id, mem, size)) = found else {
        return Err(Errno::EINVAL);
    };
    let end = addr + page_up(size).unwrap_or(size);
    let parts: Vec<(u64, u64)> = mm
        .borrow()
        .vmas()
        .filter(|v| v.start >= addr && v.start < end)
        .filter(|v| matches!(&v.backing, Backing::File { mem: m, off } if Rc::ptr_eq(m, &mem) && *off == v.start - addr))
        .map(|v| (v.start, v.end - v.start))
        .collect();
    drop(mem);
    drop(segs);
    for (s, l) in parts {
        mm.borrow_mut().unmap(&mut k.platform, s, l)?;
    }
    super::with(|ns| {
        if let Ok(o) = ns.shm.get_mut(id) {
            o.inner.dtime = super::now();
            o.inner.lpid = pid;
        }
        purge(ns);
    });
    Ok(0)
}

/// struct shmid64_ds.
fn encode_ds(o: &super::ids::Object<Segment>) -> [u8; 112] {
    let mut b = [0u8; 112];
    o.perm.encode(&mut b[..PERM_SIZE]);
    let s = &o.inner;
    b[48..56].copy_from_slice(&s.size.to_ne_bytes());
    b[56..64].copy_from_slice(&s.atime.to_ne_bytes());
    b[64..72].copy_from_slice(&s.dtime.to_ne_bytes());
    b[72..80].copy_from_slice(&o.ctime.to_ne_bytes());
    b[80..84].copy_from_slice(&s.cpid.to_ne_bytes());
    b[84..88].copy_from_slice(&s.lpid.to_ne_bytes());
    b[88..96].copy_from_slice(&s.nattch().to_ne_bytes());
    b
}

pub fn shmctl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32 & !IPC_64, a[2]);
    let cred = k.cred(tid);
    let mm = k.task_mm(tid);
    let mm = mm.borrow();
    super::with(|ns| {
        purge(ns);
        match cmd {
            IPC_INFO => {
                let l = &ns.limits;
                let mut b = [0u8; 72];
                for (i, v) in [l.shmmax, 1, l.shmmni, l.shmmni, l.shmall]
                    .iter()
                    .enumerate()
                {
                    b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
                }
                mm.write_bytes(buf, &b)?;
                Ok(ns.shm.max_index() as u64)
            }
            SHM_INFO => {
                let mut b = [0u8; 48];
                let tot = total_pages(ns);
                let rss: u64 = ns.shm.iter().map(|o| o.inner.mem.resident_pages()).sum();
                b[0..4].copy_from_slice(&(ns.shm.len() as i32).to_ne_bytes());
                b[8..16].copy_from_slice(&tot.to_ne_bytes());
                b[16..24].copy_from_slice(&rss.to_ne_bytes());
                mm.write_bytes(buf, &b)?;
                Ok(ns.shm.max_index() as u64)
            }
            SHM_STAT | SHM_STAT_ANY => {
                let o = ns.shm.by_index(id)?;
                if cmd == SHM_STAT {
                    o.perm.check(&cred, 0o4)?;
                }
                mm.write_bytes(buf, &encode_ds(o))?;
                Ok(o.id as u64)
            }
            IPC_STAT => {
                let o = ns.shm.get(id)?;
                o.perm.check(&cred, 0o4)?;
                mm.write_bytes(buf, &encode_ds(o))?;
                Ok(0)
            }
            IPC_SET => {
                let raw = mm.read_vec(buf, PERM_SIZE)?;
                let o = ns.shm.get_mut(id)?;
                o.perm.check_owner(&cred)?;
                o.perm.set_from(&raw);
                o.ctime = super::now();
                Ok(0)
            }
            IPC_RMID => {
                let o = ns.shm.get_mut(id)?;
                o.perm.check_owner(&cred)?;
                // Not found by key any more; destroyed once detached.
                o.perm.mode |= SHM_DEST;
                o.perm.key = 0;
                purge(ns);
                Ok(0)
            }
            SHM_LOCK | SHM_UNLOCK => {
                let o = ns.shm.get_mut(id)?;
                if !cred.capable(CAP_IPC_LOCK) {
                    o.perm.check_owner(&cred)?;
                }
                if cmd == SHM_LOCK {
                    o.perm.mode |= SHM_LOCKED;
                } else {
                    o.perm.mode &= !SHM_LOCKED;
                }
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    })
}

/// Process `pid` exited: with kernel.shm_rmid_forced, the segments it
/// created go as soon as nobody is attached.
pub fn process_exited(ns: &mut Namespace, pid: Pid) {
    for o in ns.shm.iter_mut() {
        if o.inner.creator == pid {
            o.inner.orphan = true;
        }
    }
    purge(ns);
}
