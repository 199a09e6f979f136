//! The pages of one file in the memory file.
//!
//! Two kinds of file have a [`FileMem`]:
//! - in-memory files (tmpfs, memfd, /dev/shm, System V shared memory):
//!   the pages *are* the file; a hole reads as zeros;
//! - host files (served by the gofer) while something maps them: the
//!   pages are a cache of the host file, filled on first use and written
//!   back when dirty (msync, fsync, munmap, close, when the last mapping
//!   goes).
//!
//! Every shared mapping of the file, in every process, maps these same
//! pages of the memory file, and read(2)/write(2) go through them too, so
//! all of them see the same bytes. Pages live in *segments*: chunks of
//! the memory file that grow geometrically with the file offset (64 KiB,
//! 64 KiB, 128 KiB, ... up to 1 GiB, then 1 GiB each), allocated when a
//! page of theirs is first needed, so a sparse or huge file costs memory
//! only for pages that hold data and a mapping needs one host mapping per
//! segment, not per page.
//!
//! Dirty pages of host files are tracked by write protection: a page of a
//! writable shared mapping is mapped read-only until its first write
//! faults (see `AddressSpace::fault`), which marks it dirty and maps it
//! writable. Write-back write-protects again (by unmapping) before it
//! copies, so a write racing with it faults and is not lost.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use super::memfile::{Chunk, MemoryFile};
use super::rangeset::RangeSet;
use crate::arch::PAGE_SIZE;
use crate::errno::{Errno, SysResult};
use crate::platform::MapOp;

/// Where a host file's bytes come from and go back to.
pub trait PageSource {
    /// Reads up to `dst.len()` bytes at `off`; fewer at end of file.
    fn read_at(&self, dst: &mut [u8], off: u64) -> SysResult<usize>;
    fn write_at(&self, src: &[u8], off: u64) -> SysResult<usize>;
    fn size(&self) -> SysResult<u64>;
    /// Whether write-back can go through this source.
    fn writable(&self) -> bool;
}

/// memfd seals (fcntl F_ADD_SEALS).
pub const SEAL_SEAL: u32 = 1;
pub const SEAL_SHRINK: u32 = 2;
pub const SEAL_GROW: u32 = 4;
pub const SEAL_WRITE: u32 = 8;
pub const SEAL_FUTURE_WRITE: u32 = 0x10;
pub const SEAL_EXEC: u32 = 0x20;

/// Largest size of an in-memory file (Linux's MAX_LFS_FILESIZE).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Most host files whose page caches are kept unused ([`FileMem::retain`]).
pub const RETAIN_FILES: usize = 64;
/// Most pages those caches may hold together (64 MiB).
pub const RETAIN_PAGES: u64 = (64 << 20) / PAGE_SIZE;

/// Largest private copy of a host file (a program's writable segment at
/// exec, a writable private mapping) made through its page cache
/// ([`FileMem::copy_to_chunk`]), which then keeps those bytes too; a
/// larger one is read from the host straight into the copy.
pub const COPY_CACHED_MAX: u64 = 16 << 20;

/// The buffer a fill of the cache reads the host's bytes into.
const FILL_BUF: usize = 256 << 10;

const FIRST_SEG_PAGES: u64 = 16;
const MAX_SEG_PAGES: u64 = 1 << 18;

/// The segment holding `page`: (index, first page, pages).
fn segment_of(page: u64) -> (u64, u64, u64) {
    if page < FIRST_SEG_PAGES {
        return (0, 0, FIRST_SEG_PAGES);
    }
    if page < MAX_SEG_PAGES {
        // Segment k >= 1 covers [16 << (k-1), 16 << k).
        let k = 64 - (page / FIRST_SEG_PAGES).leading_zeros() as u64;
        let start = FIRST_SEG_PAGES << (k - 1);
        return (k, start, start);
    }
    let n = page / MAX_SEG_PAGES;
    (14 + n, n * MAX_SEG_PAGES, MAX_SEG_PAGES)
}

/// How [`FileMem::visit`] treats pages that are not in memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Look only: pages not in memory are reported as absent.
    Peek,
    /// Bring every page into memory (allocate, read host pages).
    Fill,
    /// As Fill, and the pages will be written: host pages become dirty.
    Dirty,
}

struct HostCache {
    source: RefCell<Rc<dyn PageSource>>,
    /// Pages whose bytes are in memory.
    cached: RefCell<RangeSet>,
    /// Cached pages that differ from the host file.
    dirty: RefCell<RangeSet>,
}

pub struct FileMem {
    mf: Rc<MemoryFile>,
    /// Segment index → its chunk of the memory file.
    segs: RefCell<BTreeMap<u64, Rc<Chunk>>>,
    host: Option<HostCache>,
    /// File size: authoritative for in-memory files, last known for host files.
    size: Cell<u64>,
    pub seals: Cell<u32>,
    /// Host files: (device, inode), the key in the registry.
    key: Option<(u64, u64)>,
}

impl std::fmt::Debug for FileMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileMem(size {}, host {:?})", self.size.get(), self.key)
    }
}

thread_local! {
    /// Host files that have a page cache, by (device, inode).
    static HOST_FILES: RefCell<HashMap<(u64, u64), Weak<FileMem>>> = RefCell::new(HashMap::new());
    /// Page caches of host files kept after their last mapping went, most
    /// recently used last (see [`FileMem::retain`]).
    static RETAINED: RefCell<std::collections::VecDeque<Rc<FileMem>>> =
        const { RefCell::new(std::collections::VecDeque::new()) };
    /// Truncations whose pages must leave every address space (applied by
    /// the kernel after the syscall, where it can reach the platform).
    static INVALIDATE: RefCell<Vec<Invalidation>> = const { RefCell::new(Vec::new()) };
}

/// Pages of a file from `from_page` on are gone (truncated): every mapping
/// must unmap them so that touching them raises SIGBUS.
pub struct Invalidation {
    pub mem: Weak<FileMem>,
    pub from_page: u64,
    /// Segments dropped by the truncation, kept until no stub maps them.
    _segments: Vec<Rc<Chunk>>,
}

/// Truncations since the last call, for the kernel to apply.
pub fn take_invalidations() -> Vec<Invalidation> {
    INVALIDATE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

pub fn has_invalidations() -> bool {
    INVALIDATE.with(|q| !q.borrow().is_empty())
}

impl FileMem {
    /// An empty in-memory file.
    pub fn new_memory(mf: &Rc<MemoryFile>) -> Rc<FileMem> {
        Rc::new(FileMem {
            mf: mf.clone(),
            segs: RefCell::new(BTreeMap::new()),
            host: None,
            size: Cell::new(0),
            seals: Cell::new(0),
            key: None,
        })
    }

    /// The page cache of host file `id`, made if it has none. A writable
    /// source replaces a read-only one (write-back needs it).
    pub fn for_host(
        mf: &Rc<MemoryFile>,
        id: (u64, u64),
        source: Rc<dyn PageSource>,
    ) -> SysResult<Rc<FileMem>> {
        if let Some(m) = Self::find_host(id) {
            let h = m.host.as_ref().expect("host cache");
            if source.writable() && !h.source.borrow().writable() {
                *h.source.borrow_mut() = source;
            }
            return Ok(m);
        }
        let size = source.size()?;
        let m = Rc::new(FileMem {
            mf: mf.clone(),
            segs: RefCell::new(BTreeMap::new()),
            host: Some(HostCache {
                source: RefCell::new(source),
                cached: RefCell::new(RangeSet::new()),
                dirty: RefCell::new(RangeSet::new()),
            }),
            size: Cell::new(size),
            seals: Cell::new(0),
            key: Some(id),
        });
        HOST_FILES.with(|h| h.borrow_mut().insert(id, Rc::downgrade(&m)));
        Ok(m)
    }

    /// Keeps this host file's page cache after its last user goes, as
    /// Linux's page cache outlives the processes that read a file: the
    /// next program that maps the same library or executable finds its
    /// pages in memory instead of reading them from the host again (every
    /// exec of python3 maps the same few megabytes). Only for files whose
    /// cache is trusted (mounts nothing outside the sandbox changes, see
    /// docs/architecture.md "File access"); a cache in use is never
    /// dropped. At most [`RETAIN_FILES`] files and [`RETAIN_PAGES`] pages
    /// are kept, the least recently used going first, and all of them
    /// go when the sandbox's memory limit is reached
    /// ([`FileMem::drop_retained`]).
    pub fn retain(self: &Rc<FileMem>) {
        let gone: Vec<Rc<FileMem>> = RETAINED.with(|r| {
            let Ok(mut r) = r.try_borrow_mut() else {
                return Vec::new();
            };
            if let Some(i) = r.iter().position(|m| Rc::ptr_eq(m, self)) {
                r.remove(i);
            }
            r.push_back(self.clone());
            let mut gone = Vec::new();
            let mut pages: u64 = r.iter().map(|m| m.resident_pages()).sum();
            while r.len() > RETAIN_FILES || (pages > RETAIN_PAGES && r.len() > 1) {
                let m = r.pop_front().expect("not empty");
                pages = pages.saturating_sub(m.resident_pages());
                gone.push(m);
            }
            gone
        });
        // Dropped outside the borrow: a last reference writes back.
        drop(gone);
    }

    /// Lets every retained page cache go (those still in use stay, held
    /// by their users); returns whether any was retained.
    pub fn drop_retained() -> bool {
        let gone: Vec<Rc<FileMem>> = RETAINED.with(|r| match r.try_borrow_mut() {
            Ok(mut r) => r.drain(..).collect(),
            Err(_) => Vec::new(),
        });
        !gone.is_empty()
    }

    /// The page cache of host file `id`, if it has one.
    pub fn find_host(id: (u64, u64)) -> Option<Rc<FileMem>> {
        HOST_FILES.with(|h| h.borrow().get(&id).and_then(|w| w.upgrade()))
    }

    pub fn is_host(&self) -> bool {
        self.host.is_some()
    }

    pub fn size(&self) -> u64 {
        self.size.get()
    }

    /// Host files: the size as the host has it now (it may have changed
    /// from outside, or through another descriptor).
    pub fn refresh_size(&self) -> u64 {
        if let Some(h) = &self.host
            && let Ok(s) = h.source.borrow().size()
        {
            self.size.set(s);
        }
        self.size.get()
    }

    /// Bytes of the memory file reserved for this file's segments.
    pub fn reserved(&self) -> u64 {
        self.segs.borrow().values().map(|c| c.len).sum()
    }

    /// Bytes of the file's pages in memory that hold data (st_blocks).
    pub fn allocated(&self) -> u64 {
        self.segs
            .borrow()
            .values()
            .map(|c| self.mf.resident_in(c.offset, c.len))
            .sum()
    }

    /// The segment of `page`, allocating it if `alloc`.
    fn segment(&self, page: u64, alloc: bool) -> SysResult<Option<(Rc<Chunk>, u64, u64)>> {
        let (idx, start, pages) = segment_of(page);
        if let Some(c) = self.segs.borrow().get(&idx) {
            return Ok(Some((c.clone(), start, pages)));
        }
        if !alloc {
            return Ok(None);
        }
        let c = self
            .mf
            .alloc(pages * PAGE_SIZE)
            .map_err(|_| Errno::ENOMEM)?;
        self.segs.borrow_mut().insert(idx, c.clone());
        Ok(Some((c, start, pages)))
    }

    /// Reads host pages `[p0, p1)` of segment `c` (first page `start`)
    /// into memory, those not cached yet.
    fn fill(&self, c: &Chunk, start: u64, p0: u64, p1: u64) -> SysResult<()> {
        let Some(h) = &self.host else {
            return Ok(());
        };
        let gaps = h.cached.borrow().gaps(p0, p1);
        // The host's bytes go through a buffer into the memory file
        // (`Chunk::write`): read straight into the kernel's mapping of
        // the new pages, each would fault and be zeroed first.
        let mut buf = Vec::new();
        for (g0, g1) in gaps {
            let len = ((g1 - g0) * PAGE_SIZE) as usize;
            let at = (g0 - start) * PAGE_SIZE;
            buf.resize(len.min(FILL_BUF), 0);
            let mut done = 0;
            while done < len {
                let want = buf.len().min(len - done);
                let n = h
                    .source
                    .borrow()
                    .read_at(&mut buf[..want], g0 * PAGE_SIZE + done as u64)?;
                if n == 0 {
                    break;
                }
                c.write(at + done as u64, &buf[..n]);
                done += n;
            }
            // Past the end of the file the pages stay zero (fresh chunk
            // pages are holes of the memory file).
            h.cached.borrow_mut().insert(g0, g1);
        }
        Ok(())
    }

    /// Visits file bytes `[off, off+len)` piece by piece, each piece inside
    /// one segment: `f(at, ptr, n)` with `at` relative to `off` and `ptr`
    /// the kernel's pointer to the bytes, or None where the page is not in
    /// memory (a hole of an in-memory file; an uncached host page under
    /// [`Access::Peek`]).
    pub fn visit(
        &self,
        off: u64,
        len: u64,
        access: Access,
        mut f: impl FnMut(u64, Option<*mut u8>, u64),
    ) -> SysResult<()> {
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        let mut pos = off;
        while pos < end {
            let page = pos / PAGE_SIZE;
            let (_, start, pages) = segment_of(page);
            let seg_end = (start + pages) * PAGE_SIZE;
            let piece_end = end.min(seg_end);
            let seg = self.segment(page, access != Access::Peek)?;
            match seg {
                None => f(pos - off, None, piece_end - pos),
                Some((c, start, _)) => {
                    let p0 = page;
                    let p1 = piece_end.div_ceil(PAGE_SIZE);
                    if access != Access::Peek {
                        self.fill(&c, start, p0, p1)?;
                        if access == Access::Dirty
                            && let Some(h) = &self.host
                        {
                            h.dirty.borrow_mut().insert(p0, p1);
                        }
                        f(
                            pos - off,
                            Some(c.ptr(pos - start * PAGE_SIZE)),
                            piece_end - pos,
                        );
                    } else if let Some(h) = &self.host {
                        // Only cached runs are in memory.
                        let mut at = pos;
                        let cached = h.cached.borrow().within(p0, p1);
                        for (c0, c1) in cached {
                            let s = (c0 * PAGE_SIZE).max(pos);
                            let e = (c1 * PAGE_SIZE).min(piece_end);
                            if s > at {
                                f(at - off, None, s - at);
                            }
                            f(s - off, Some(c.ptr(s - start * PAGE_SIZE)), e - s);
                            at = e;
                        }
                        if at < piece_end {
                            f(at - off, None, piece_end - at);
                        }
                    } else {
                        f(
                            pos - off,
                            Some(c.ptr(pos - start * PAGE_SIZE)),
                            piece_end - pos,
                        );
                    }
                }
            }
            pos = piece_end;
        }
        Ok(())
    }

    /// The kernel's pointer to file byte `off`, with the bytes contiguous
    /// from it (at most `len`), brought into memory (dirty if `write`).
    pub fn span(&self, off: u64, len: u64, write: bool) -> SysResult<(*mut u8, u64)> {
        let page = off / PAGE_SIZE;
        let (_, start, pages) = segment_of(page);
        let n = len.min((start + pages) * PAGE_SIZE - off);
        let mut out = None;
        let access = if write { Access::Dirty } else { Access::Fill };
        self.visit(off, n, access, |_, p, _| {
            if out.is_none() {
                out = p;
            }
        })?;
        Ok((out.ok_or(Errno::EFAULT)?, n))
    }

    /// The memory-file offset of file byte `off` (futex keys), bringing
    /// its page into memory.
    pub fn memfile_offset(&self, off: u64) -> SysResult<u64> {
        let page = off / PAGE_SIZE;
        let (c, start, _) = self.segment(page, true)?.expect("allocated");
        self.fill(&c, start, page, page + 1)?;
        Ok(c.offset + off - start * PAGE_SIZE)
    }

    /// Mapping operations that map file bytes `[off, off+len)` at `addr`
    /// with `prot`, the pages brought into memory. Clean pages of host
    /// files are mapped without PROT_WRITE, so their first write faults
    /// and marks them dirty.
    pub fn map_ops(&self, addr: u64, off: u64, len: u64, prot: i32) -> SysResult<Vec<MapOp>> {
        self.map_ops_of(addr, off, len, prot, Access::Fill)
    }

    /// As [`FileMem::map_ops`], for the pages already in memory only
    /// (nothing is read from the host): a new mapping of a host file whose
    /// cache holds pages (another process maps it, or it was retained)
    /// gets them at once instead of one fault per window.
    pub fn map_ops_cached(
        &self,
        addr: u64,
        off: u64,
        len: u64,
        prot: i32,
    ) -> SysResult<Vec<MapOp>> {
        self.map_ops_of(addr, off, len, prot, Access::Peek)
    }

    fn map_ops_of(
        &self,
        addr: u64,
        off: u64,
        len: u64,
        prot: i32,
        access: Access,
    ) -> SysResult<Vec<MapOp>> {
        let mut pieces = Vec::new();
        self.visit(off, len, access, |at, p, n| {
            if p.is_some() {
                pieces.push((at, n))
            }
        })?;
        let mut ops = Vec::new();
        for (at, n) in pieces {
            let foff = off + at;
            let (c, start, _) = self
                .segment(foff / PAGE_SIZE, false)?
                .expect("filled segment");
            let mfoff = |o: u64| c.offset + o - start * PAGE_SIZE;
            match &self.host {
                Some(h) if prot & libc::PROT_WRITE != 0 => {
                    let p0 = foff / PAGE_SIZE;
                    let p1 = (foff + n) / PAGE_SIZE;
                    let dirty = h.dirty.borrow().within(p0, p1);
                    let mut pos = p0;
                    let mut push = |a: u64, b: u64, pr: i32| {
                        ops.push(MapOp::Map {
                            addr: addr + a * PAGE_SIZE - off,
                            len: (b - a) * PAGE_SIZE,
                            prot: pr,
                            offset: mfoff(a * PAGE_SIZE),
                        })
                    };
                    for (d0, d1) in dirty {
                        if d0 > pos {
                            push(pos, d0, prot & !libc::PROT_WRITE);
                        }
                        push(d0, d1, prot);
                        pos = d1;
                    }
                    if pos < p1 {
                        push(pos, p1, prot & !libc::PROT_WRITE);
                    }
                }
                _ => ops.push(MapOp::Map {
                    addr: addr + at,
                    len: n,
                    prot,
                    offset: mfoff(foff),
                }),
            }
        }
        Ok(ops)
    }

    /// Copies file bytes `[off, off+len)` to byte `at` of `chunk` (a
    /// private copy: a program's writable segment at exec, a writable
    /// private mapping). A host file's bytes come from this cache, which
    /// it fills from the host first where it lacks pages (a program run
    /// again then costs no host read); an in-memory file's holes are
    /// zeros. Pages of zeros stay holes of the chunk
    /// ([`Chunk::write_sparse`]). Stops at the end of the file; returns
    /// the bytes copied.
    pub fn copy_to_chunk(&self, off: u64, len: u64, chunk: &Chunk, at: u64) -> SysResult<u64> {
        if at.checked_add(len).is_none_or(|e| e > chunk.len) {
            return Err(Errno::EINVAL);
        }
        let size = self.refresh_size();
        if off >= size {
            return Ok(0);
        }
        let n = len.min(size - off);
        let access = if self.host.is_some() {
            Access::Fill
        } else {
            Access::Peek
        };
        self.visit(off, n, access, |pos, p, plen| {
            // (None: a hole of an in-memory file, zeros)
            if let Some(p) = p {
                // SAFETY: the piece lies in a segment of this file's
                // pages, mapped by the kernel for the chunk's life.
                let src = unsafe { std::slice::from_raw_parts(p as *const u8, plen as usize) };
                chunk.write_sparse(at + pos, src);
            }
        })?;
        Ok(n)
    }

    /// Reads file bytes at `off` into `dst`, up to the end of the file:
    /// from memory where the pages are (they may hold what a mapping
    /// wrote), else from the host file, else zeros (holes). Returns the
    /// bytes read.
    pub fn read_into(&self, dst: &mut [u8], off: u64) -> SysResult<usize> {
        let size = self.refresh_size();
        if off >= size {
            return Ok(0);
        }
        let n = (dst.len() as u64).min(size - off);
        let mut err = None;
        let base = dst.as_mut_ptr();
        self.visit(off, n, Access::Peek, |at, p, len| {
            // SAFETY: at+len <= n <= dst.len().
            let out =
                unsafe { std::slice::from_raw_parts_mut(base.add(at as usize), len as usize) };
            match (p, &self.host) {
                (Some(p), _) => unsafe { std::ptr::copy(p, out.as_mut_ptr(), out.len()) },
                (None, Some(h)) => {
                    let mut done = 0;
                    while done < out.len() {
                        match h
                            .source
                            .borrow()
                            .read_at(&mut out[done..], off + at + done as u64)
                        {
                            Ok(0) => break,
                            Ok(r) => done += r,
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                    out[done..].fill(0);
                }
                (None, None) => out.fill(0),
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(n as usize),
        }
    }

    /// Writes `src` at `off` into an in-memory file, growing it.
    pub fn write_from(&self, src: &[u8], off: u64) -> SysResult<usize> {
        let end = off
            .checked_add(src.len() as u64)
            .filter(|e| *e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        self.visit(off, src.len() as u64, Access::Dirty, |at, p, n| {
            if let Some(p) = p {
                // SAFETY: p points at n bytes in memory; at+n <= src.len().
                unsafe { std::ptr::copy(src.as_ptr().add(at as usize), p, n as usize) };
            }
        })
        .map_err(|e| if e == Errno::ENOMEM { Errno::ENOSPC } else { e })?;
        self.extend(end);
        Ok(src.len())
    }

    /// Marks host page `page` dirty; false if it already was.
    pub fn mark_dirty(&self, page: u64) -> bool {
        match &self.host {
            Some(h) => {
                let mut d = h.dirty.borrow_mut();
                if d.contains(page) {
                    false
                } else {
                    d.insert(page, page + 1);
                    true
                }
            }
            None => false,
        }
    }

    pub fn is_dirty(&self, page: u64) -> bool {
        self.host
            .as_ref()
            .is_some_and(|h| h.dirty.borrow().contains(page))
    }

    /// Dirty page runs inside pages `[p0, p1)`.
    pub fn dirty_runs(&self, p0: u64, p1: u64) -> Vec<(u64, u64)> {
        match &self.host {
            Some(h) => h.dirty.borrow().within(p0, p1),
            None => Vec::new(),
        }
    }

    /// Writes dirty host pages inside pages `[p0, p1)` back to the host
    /// file (never past its end); `clean` forgets they were dirty (the
    /// caller made sure no mapping can write them unnoticed).
    pub fn writeback(&self, p0: u64, p1: u64, clean: bool) -> SysResult<()> {
        let Some(h) = &self.host else {
            return Ok(());
        };
        let runs = h.dirty.borrow().within(p0, p1);
        if runs.is_empty() {
            return Ok(());
        }
        let size = self.refresh_size();
        let mut result = Ok(());
        for (r0, r1) in runs {
            let s = r0 * PAGE_SIZE;
            let e = (r1 * PAGE_SIZE).min(size);
            if s < e {
                let r = self.visit(s, e - s, Access::Peek, |at, p, n| {
                    let Some(p) = p else { return };
                    // SAFETY: p points at n cached bytes in the kernel's mapping.
                    let src = unsafe { std::slice::from_raw_parts(p, n as usize) };
                    let mut done = 0;
                    while done < src.len() {
                        match h
                            .source
                            .borrow()
                            .write_at(&src[done..], s + at + done as u64)
                        {
                            Ok(0) => break,
                            Ok(w) => done += w,
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = r {
                    result = Err(e);
                }
            }
            if clean && result.is_ok() {
                h.dirty.borrow_mut().remove(r0, r1);
            }
        }
        result
    }

    /// Everything dirty back to the host file, keeping it dirty (a
    /// mapping may still write it).
    pub fn sync_all(&self) -> SysResult<()> {
        self.writeback(0, u64::MAX, false)
    }

    /// A write through a descriptor of a host file reached the host:
    /// cached pages get the same bytes, the size grows.
    pub fn host_written(&self, off: u64, data: &[u8]) {
        let _ = self.visit(off, data.len() as u64, Access::Peek, |at, p, n| {
            if let Some(p) = p {
                // SAFETY: p points at n cached bytes; at+n <= data.len().
                unsafe { std::ptr::copy(data.as_ptr().add(at as usize), p, n as usize) };
            }
        });
        let end = off + data.len() as u64;
        if end > self.size.get() {
            self.size.set(end);
        }
    }

    /// The file is now `len` bytes long (ftruncate, O_TRUNC). When it
    /// shrank, pages past the end are released, the rest of the last page
    /// is zeroed (a later extension reads zeros, as on Linux), and every
    /// mapping is told to unmap them (touching them raises SIGBUS).
    pub fn set_size(self: &Rc<Self>, len: u64) {
        let old = self.size.replace(len);
        if len >= old {
            return;
        }
        let first_gone = len.div_ceil(PAGE_SIZE);
        if !len.is_multiple_of(PAGE_SIZE) {
            let tail = PAGE_SIZE - len % PAGE_SIZE;
            let _ = self.visit(len, tail, Access::Peek, |_, p, n| {
                if let Some(p) = p {
                    // SAFETY: p points at n bytes of the page in memory.
                    unsafe { std::ptr::write_bytes(p, 0, n as usize) };
                }
            });
        }
        let mut dropped = Vec::new();
        {
            let mut segs = self.segs.borrow_mut();
            let idxs: Vec<u64> = segs.keys().copied().collect();
            for idx in idxs {
                let (_, start, pages) = segment_of(Self::first_page_of(idx));
                if start >= first_gone {
                    dropped.push(segs.remove(&idx).unwrap());
                } else if start + pages > first_gone {
                    segs[&idx].discard(
                        (first_gone - start) * PAGE_SIZE,
                        (start + pages - first_gone) * PAGE_SIZE,
                    );
                }
            }
        }
        if let Some(h) = &self.host {
            h.cached.borrow_mut().remove(first_gone, u64::MAX);
            h.dirty.borrow_mut().remove(first_gone, u64::MAX);
        }
        INVALIDATE.with(|q| {
            q.borrow_mut().push(Invalidation {
                mem: Rc::downgrade(self),
                from_page: first_gone,
                _segments: dropped,
            })
        });
    }

    /// Grows an in-memory file (write past the end, fallocate) without
    /// touching its pages.
    pub fn extend(&self, len: u64) {
        if len > self.size.get() {
            self.size.set(len);
        }
    }

    /// Gives file bytes `[off, off+len)` memory of their own, as Linux's
    /// shmem does for fallocate (and st_blocks then counts them): their
    /// segments are allocated and the pages made resident.
    pub fn populate(&self, off: u64, len: u64) -> SysResult<()> {
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        let mut pos = off - off % PAGE_SIZE;
        while pos < end {
            let page = pos / PAGE_SIZE;
            let (_, start, pages) = segment_of(page);
            let piece_end = end.min((start + pages) * PAGE_SIZE);
            if let Some((c, start, _)) = self.segment(page, true)? {
                let rel = pos - start * PAGE_SIZE;
                c.populate(rel, piece_end.next_multiple_of(PAGE_SIZE) - pos);
            }
            pos = piece_end.next_multiple_of(PAGE_SIZE);
        }
        Ok(())
    }

    /// Zeroes file bytes `[off, off+len)` in memory (fallocate punch and
    /// zero range): whole pages are released, partial ones cleared.
    pub fn zero_range(&self, off: u64, len: u64) {
        let end = off.saturating_add(len);
        let _ = self.visit(off, end - off, Access::Peek, |at, p, n| {
            if let Some(p) = p {
                let s = off + at;
                let e = s + n;
                let ps = s.next_multiple_of(PAGE_SIZE);
                let pe = e - e % PAGE_SIZE;
                // SAFETY: p points at n bytes in memory.
                unsafe { std::ptr::write_bytes(p, 0, n as usize) };
                if ps < pe
                    && let Ok(Some((c, start, _))) = self.segment(ps / PAGE_SIZE, false)
                {
                    c.discard(ps - start * PAGE_SIZE, pe - ps);
                }
            }
        });
    }

    /// First page of segment `idx` (inverse of `segment_of`).
    fn first_page_of(idx: u64) -> u64 {
        match idx {
            0 => 0,
            k if k < 15 => FIRST_SEG_PAGES << (k - 1),
            k => (k - 14) * MAX_SEG_PAGES,
        }
    }

    /// Pages of the file that are in memory.
    pub fn resident_pages(&self) -> u64 {
        match &self.host {
            Some(h) => h.cached.borrow().count(),
            None => self.size.get().div_ceil(PAGE_SIZE),
        }
    }
}

impl Drop for FileMem {
    fn drop(&mut self) {
        if self.host.is_some() {
            // The last mapping went: nothing written through it is lost.
            let _ = self.writeback(0, u64::MAX, true);
        }
        if let Some(id) = self.key {
            // try_with: kept caches (RETAINED) are dropped while the
            // thread's locals are destroyed, the registry perhaps first.
            let _ = HOST_FILES.try_with(|h| {
                if let Ok(mut h) = h.try_borrow_mut()
                    && h.get(&id).is_some_and(|w| w.strong_count() == 0)
                {
                    h.remove(&id);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_tile_the_file() {
        let mut expect = 0;
        let mut last_idx = None;
        for page in 0..(3 * MAX_SEG_PAGES) {
            let (idx, start, pages) = segment_of(page);
            if Some(idx) != last_idx {
                assert_eq!(start, expect, "segment {idx} starts where the last ended");
                assert_eq!(FileMem::first_page_of(idx), start);
                expect = start + pages;
                last_idx = Some(idx);
            }
            assert!(page >= start && page < start + pages);
        }
        let (_, s, n) = segment_of(u64::MAX / PAGE_SIZE);
        assert!(s <= u64::MAX / PAGE_SIZE && n == MAX_SEG_PAGES);
    }

    #[test]
    fn memory_file_write_read_truncate() {
        let mf = MemoryFile::create(1 << 20).unwrap();
        let m = FileMem::new_memory(&mf);
        let data = b"hello pages";
        let off = 20 * PAGE_SIZE - 3;
        m.visit(off, data.len() as u64, Access::Dirty, |at, p, n| unsafe {
            std::ptr::copy(data.as_ptr().add(at as usize), p.unwrap(), n as usize)
        })
        .unwrap();
        m.extend(off + data.len() as u64);
        let mut back = vec![0u8; data.len()];
        m.visit(off, data.len() as u64, Access::Peek, |at, p, n| unsafe {
            std::ptr::copy(p.unwrap(), back.as_mut_ptr().add(at as usize), n as usize)
        })
        .unwrap();
        assert_eq!(&back, data);
        // A hole reads as absent (zeros) without allocating.
        let before = m.reserved();
        m.visit(100 * PAGE_SIZE, 10, Access::Peek, |_, p, _| {
            assert!(p.is_none())
        })
        .unwrap();
        assert_eq!(m.reserved(), before);
        // Truncating inside the data zeroes the rest of the page.
        m.set_size(off + 2);
        m.extend(off + data.len() as u64);
        let mut back = vec![0xffu8; data.len()];
        m.visit(off, data.len() as u64, Access::Peek, |at, p, n| unsafe {
            let dst = back.as_mut_ptr().add(at as usize);
            match p {
                Some(p) => std::ptr::copy(p, dst, n as usize),
                None => std::ptr::write_bytes(dst, 0, n as usize),
            }
        })
        .unwrap();
        assert_eq!(&back[..2], b"he");
        assert!(back[2..].iter().all(|b| *b == 0), "{back:?}");
        let inv = take_invalidations();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].from_page, 20);
    }

    /// A host file in memory that counts its reads.
    struct CountingSource {
        data: Vec<u8>,
        reads: Cell<usize>,
    }

    impl PageSource for CountingSource {
        fn read_at(&self, dst: &mut [u8], off: u64) -> SysResult<usize> {
            self.reads.set(self.reads.get() + 1);
            let off = (off as usize).min(self.data.len());
            let n = dst.len().min(self.data.len() - off);
            dst[..n].copy_from_slice(&self.data[off..off + n]);
            Ok(n)
        }
        fn write_at(&self, _src: &[u8], _off: u64) -> SysResult<usize> {
            Err(Errno::EROFS)
        }
        fn size(&self) -> SysResult<u64> {
            Ok(self.data.len() as u64)
        }
        fn writable(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_copy_to_a_chunk_comes_from_the_cache_and_leaves_zero_pages_holes() {
        let mf = MemoryFile::create(1 << 20).unwrap();
        // Pages: data, zeros, data, then half a page of data (the end).
        let mut data = vec![0u8; 3 * PAGE_SIZE as usize + 100];
        data[5] = 1;
        data[2 * PAGE_SIZE as usize + 7] = 2;
        data[3 * PAGE_SIZE as usize + 99] = 3;
        let src = Rc::new(CountingSource {
            data: data.clone(),
            reads: Cell::new(0),
        });
        let m = FileMem::for_host(&mf, (7, 7), src.clone()).unwrap();
        for round in 0..2 {
            let c = mf.alloc(5 * PAGE_SIZE).unwrap();
            // From the second page of the chunk on, at most 4 pages.
            let n = m.copy_to_chunk(0, 4 * PAGE_SIZE, &c, PAGE_SIZE).unwrap();
            assert_eq!(n, data.len() as u64, "stops at the end of the file");
            // (looked at before the bytes are: a read of a hole through
            // the mapping makes the page)
            let resident = |p: u64| mf.resident_in(c.offset + p * PAGE_SIZE, PAGE_SIZE);
            assert_eq!(resident(0), 0, "before the copy: untouched");
            assert_eq!(resident(2), 0, "a page of zeros stays a hole");
            assert_eq!(resident(1) + resident(3) + resident(4), 3 * PAGE_SIZE);
            let mut back = vec![0u8; data.len()];
            // SAFETY: inside the chunk.
            unsafe { std::ptr::copy(c.ptr(PAGE_SIZE), back.as_mut_ptr(), back.len()) };
            assert!(back == data, "round {round}: the file's bytes");
            // The first round read the host; the second only the cache.
            if round == 0 {
                assert!(src.reads.get() > 0);
                src.reads.set(0);
            } else {
                assert_eq!(src.reads.get(), 0, "the second copy read the host");
            }
        }
        // Out of the chunk's bounds: refused.
        let c = mf.alloc(PAGE_SIZE).unwrap();
        assert_eq!(m.copy_to_chunk(0, PAGE_SIZE, &c, 1), Err(Errno::EINVAL));
    }

    #[test]
    fn writes_past_the_end_and_over_data_read_back() {
        let mf = MemoryFile::create(1 << 20).unwrap();
        let m = FileMem::new_memory(&mf);
        let read = |off: u64, len: usize| {
            let mut b = vec![0u8; len];
            m.read_into(&mut b, off).unwrap();
            b
        };
        // An append that starts inside the last page and ends in new
        // ones, then a write over the data.
        m.write_from(&[1u8; 100], 0).unwrap();
        m.write_from(&[2u8; 2 * PAGE_SIZE as usize], 50).unwrap();
        let b = read(0, 3 * PAGE_SIZE as usize);
        assert!(b[..50].iter().all(|x| *x == 1));
        assert!(b[50..50 + 2 * PAGE_SIZE as usize].iter().all(|x| *x == 2));
        assert!(b[50 + 2 * PAGE_SIZE as usize..].iter().all(|x| *x == 0));
        m.write_from(&[3u8; 10], PAGE_SIZE - 5).unwrap();
        assert_eq!(
            read(PAGE_SIZE - 6, 12),
            [2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2]
        );
        // Shrunk and written again past the end: the old bytes are gone.
        m.set_size(10);
        m.write_from(&[4u8; 5], PAGE_SIZE + 1).unwrap();
        let b = read(0, PAGE_SIZE as usize + 6);
        assert!(b[..10].iter().all(|x| *x == 1));
        assert!(b[10..PAGE_SIZE as usize + 1].iter().all(|x| *x == 0));
        assert_eq!(&b[PAGE_SIZE as usize + 1..], [4, 4, 4, 4, 4]);
        assert_eq!(m.size(), PAGE_SIZE + 6);
    }

    #[test]
    fn huge_offsets_do_not_allocate() {
        let mf = MemoryFile::create(1 << 20).unwrap();
        let m = FileMem::new_memory(&mf);
        m.extend(MAX_FILE_SIZE);
        assert_eq!(m.size(), MAX_FILE_SIZE);
        assert_eq!(m.reserved(), 0);
        m.set_size(0);
        assert_eq!(m.size(), 0);
        take_invalidations();
    }
}
