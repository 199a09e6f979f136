//! The memory file: one memfd that backs all workload memory.
//!
//! Every workload page lives in this file. Stubs map ranges of it (the
//! platform injects `mmap(MAP_SHARED|MAP_FIXED, memfd, offset)`), and the
//! kernel maps the whole file once into its own address space, so reading
//! or writing workload memory is a memcpy, not a syscall. Freed ranges are
//! punched out so their memory returns to the host (and the container's
//! cgroup, which is charged for it).
//!
//! Where the kernel asks for it ([`MemoryFile::defer_release`]), freed
//! ranges are first retired, tagged with the platform's kill count
//! ([`crate::platform::kills`]), and punched later, once every stub
//! process killed up to then is reaped
//! ([`MemoryFile::release_retired_through`]). The reason is the host's
//! cost of a punch: it unmaps the range from every process that still
//! maps it. A process that exits or execs frees its memory just after its
//! stub process was killed, which still maps it, often on the other CPU;
//! each punch then zapped that stub's page tables and flushed its TLB
//! there with an IPI (a sixth of the kernel's time in a loop of fork+exec
//! of `/bin/true`). Once the stub is reaped, the same punch only drops the
//! kernel's own mapping. A retired range is neither reused nor counted
//! free until it is punched, so no one sees its old contents, and a stub
//! that runs on for a moment after its kill cannot write into memory
//! another process was given.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Error, Result};
use std::os::fd::RawFd;
use std::rc::Rc;

use crate::arch::{PAGE_SIZE, page_up};

/// Size of the (sparse) memory file; also the cap on allocated memory.
pub const FILE_SIZE: u64 = 1 << 40;

thread_local! {
    /// The kernel's memory file (the kernel is single-threaded): in-memory
    /// files are made in places that have no kernel at hand.
    static CURRENT: RefCell<Option<std::rc::Weak<MemoryFile>>> = const { RefCell::new(None) };
}

pub struct MemoryFile {
    fd: RawFd,
    base: *mut u8,
    /// Offsets below this belong to the platform (stub code and data).
    reserved: u64,
    free: RefCell<Allocator>,
    retired: RefCell<Retired>,
}

/// Freed ranges not punched yet (see the module's doc): offset, length
/// and the kill count when they were freed.
#[derive(Default)]
struct Retired {
    defer: bool,
    ranges: Vec<(u64, u64, u64)>,
    /// The kill number through which the platform last reported every
    /// killed stub reaped.
    through: u64,
}

/// Retired ranges past which a free punches them all at once, whatever
/// the kernel waits for. A bound on the list, not on memory: ranges are
/// address space (a heap's reservation is 1 GiB of it), of which the
/// host charges only the pages that were touched; the memory limit's
/// checks release everything before they refuse memory
/// (`Kernel::may_commit`), and the kernel's loop releases what is due
/// at least once a millisecond.
const RETIRED_MAX: usize = 4096;

/// First-fit allocator over file offsets; free extents keyed by offset.
struct Allocator {
    free: BTreeMap<u64, u64>,
    allocated: u64,
}

impl Allocator {
    fn alloc(&mut self, len: u64) -> Option<u64> {
        let (&off, &flen) = self.free.iter().find(|(_, l)| **l >= len)?;
        self.free.remove(&off);
        if flen > len {
            self.free.insert(off + len, flen - len);
        }
        self.allocated += len;
        Some(off)
    }

    fn release(&mut self, mut off: u64, mut len: u64) {
        self.allocated -= len;
        // Merge with the following extent.
        if let Some(&next_len) = self.free.get(&(off + len)) {
            self.free.remove(&(off + len));
            len += next_len;
        }
        // Merge with the preceding extent.
        if let Some((&prev, &prev_len)) = self.free.range(..off).next_back()
            && prev + prev_len == off
        {
            self.free.remove(&prev);
            off = prev;
            len += prev_len;
        }
        self.free.insert(off, len);
    }
}

/// A contiguous, owned range of the memory file; released when dropped.
pub struct Chunk {
    file: Rc<MemoryFile>,
    pub offset: u64,
    pub len: u64,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({:#x}+{:#x})", self.offset, self.len)
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.file.retire(self.offset, self.len);
    }
}

impl Chunk {
    pub fn file(&self) -> &Rc<MemoryFile> {
        &self.file
    }

    /// Kernel pointer to byte `off` of the chunk.
    pub fn ptr(&self, off: u64) -> *mut u8 {
        debug_assert!(off <= self.len);
        self.file.ptr(self.offset + off)
    }

    /// Writes `src` at byte `at` of the chunk (see
    /// [`MemoryFile::write_at`]).
    pub fn write(&self, at: u64, src: &[u8]) {
        assert!(
            at.checked_add(src.len() as u64)
                .is_some_and(|e| e <= self.len)
        );
        self.file.write_at(self.offset + at, src);
    }

    /// As [`Chunk::write`], but only the pages of `src` (counted from its
    /// start, which `at` puts on a page of the chunk) that hold a nonzero
    /// byte, runs of them in one write each: pages of zeros stay holes,
    /// which take no memory until touched.
    pub fn write_sparse(&self, at: u64, src: &[u8]) {
        let page = PAGE_SIZE as usize;
        let mut run: Option<usize> = None;
        for (i, piece) in src.chunks(page).enumerate() {
            let data = piece.iter().any(|b| *b != 0);
            match (data, run) {
                (true, None) => run = Some(i * page),
                (false, Some(from)) => {
                    self.write(at + from as u64, &src[from..i * page]);
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(from) = run {
            self.write(at + from as u64, &src[from..]);
        }
    }

    /// Releases the memory of a page-aligned subrange (it reads as zeros).
    pub fn discard(&self, off: u64, len: u64) {
        self.file.punch(self.offset + off, len);
    }

    /// Makes the chunk's pages in `[off, off+len)` resident (zero-filled
    /// where they were holes): what fallocate reserves on a tmpfs file.
    /// Each page is written with a compare-exchange of its first byte
    /// with itself, which changes no byte a workload thread may be
    /// writing at the same time (an idempotent `or 0` would not do: the
    /// compiler turns it into a load, and a load of a hole maps the zero
    /// page); a host fallocate would not do either, as shmem counts its
    /// pages as holes until written (SEEK_DATA, which `resident_in` uses).
    pub fn populate(&self, off: u64, len: u64) {
        let end = off.saturating_add(len).min(self.len);
        let mut at = off - off % PAGE_SIZE;
        while at < end {
            // SAFETY: the page lies inside this chunk, mapped by the
            // kernel for its whole life; an AtomicU8 has u8's layout.
            let b = unsafe { &*(self.ptr(at) as *const std::sync::atomic::AtomicU8) };
            let v = b.load(std::sync::atomic::Ordering::Relaxed);
            let _ = b.compare_exchange(
                v,
                v,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
            at += PAGE_SIZE;
        }
    }
}

impl MemoryFile {
    /// Creates the memory file and maps it into the kernel. `reserved`
    /// bytes at the start are left to the platform.
    pub fn create(reserved: u64) -> Result<Rc<MemoryFile>> {
        // SAFETY: plain syscalls; results checked.
        unsafe {
            let fd = libc::memfd_create(c"atoll-memory".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(Error::last_os_error());
            }
            if libc::ftruncate(fd, FILE_SIZE as i64) != 0 {
                let e = Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            let base = libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            );
            if base == libc::MAP_FAILED {
                let e = Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            let mut free = BTreeMap::new();
            free.insert(reserved, FILE_SIZE - reserved);
            let mf = Rc::new(MemoryFile {
                fd,
                base: base as *mut u8,
                reserved,
                free: RefCell::new(Allocator { free, allocated: 0 }),
                retired: RefCell::default(),
            });
            CURRENT.with(|c| *c.borrow_mut() = Some(Rc::downgrade(&mf)));
            Ok(mf)
        }
    }

    /// The memory file made last on this thread (the kernel's); one is
    /// made if there is none (unit tests).
    pub fn current() -> Rc<MemoryFile> {
        if let Some(mf) = CURRENT.with(|c| c.borrow().as_ref().and_then(|w| w.upgrade())) {
            return mf;
        }
        MemoryFile::create(PAGE_SIZE).expect("memory file")
    }

    /// Bytes of the memory file that hold memory now (the host charges
    /// them to the container).
    pub fn resident(&self) -> u64 {
        // SAFETY: fstat on our own fd into a local.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.fd, &mut st) } != 0 {
            return 0;
        }
        st.st_blocks as u64 * 512
    }

    /// Bytes of `[off, off + len)` that hold memory now: the data extents
    /// of the memory file there (SEEK_DATA/SEEK_HOLE), page-exact.
    pub fn resident_in(&self, off: u64, len: u64) -> u64 {
        let mut total = 0;
        self.each_data(off, len, |s, e| total += e - s);
        total
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub fn ptr(&self, off: u64) -> *mut u8 {
        debug_assert!(off >= self.reserved && off < FILE_SIZE);
        // SAFETY: off is within the mapping.
        unsafe { self.base.add(off as usize) }
    }

    /// Writes `src` at file offset `off` through the file, not the
    /// kernel's mapping of it: the host then makes a page that is not in
    /// the file yet (a fresh chunk's) with its bytes, where a store
    /// through the mapping takes a fault per page and has the page zeroed
    /// first. On this 2-vCPU VM 1.3 MiB into fresh pages took ~1 ms by
    /// memcpy and ~0.5 ms by pwrite (a program's writable data, which
    /// exec and a private file mapping copy, or a fork's memory). Falls
    /// back to the mapping if the host refuses (it has no reason to).
    pub fn write_at(&self, off: u64, src: &[u8]) {
        debug_assert!(off >= self.reserved && off.saturating_add(src.len() as u64) <= FILE_SIZE);
        let mut done = 0usize;
        while done < src.len() {
            let rest = &src[done..];
            // SAFETY: pwrite from a slice to our own fd.
            let n = unsafe {
                libc::pwrite(
                    self.fd,
                    rest.as_ptr() as *const libc::c_void,
                    rest.len(),
                    (off + done as u64) as i64,
                )
            };
            if n <= 0 {
                // SAFETY: [off + done, off + len) lies in the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        rest.as_ptr(),
                        self.ptr(off + done as u64),
                        rest.len(),
                    )
                };
                return;
            }
            done += n as usize;
        }
    }

    /// Bytes of address space handed out (not necessarily resident).
    pub fn allocated(&self) -> u64 {
        self.free.borrow().allocated
    }

    /// Bytes in use: [`MemoryFile::allocated`] less the retired ranges,
    /// which were freed and wait only for the stubs that may map them.
    pub fn in_use(&self) -> u64 {
        let retired: u64 = self.retired.borrow().ranges.iter().map(|r| r.1).sum();
        self.allocated().saturating_sub(retired)
    }

    /// Allocates `len` bytes (rounded up to pages), zero-filled.
    pub fn alloc(self: &Rc<Self>, len: u64) -> Result<Rc<Chunk>> {
        let len = page_up(len.max(PAGE_SIZE)).ok_or(Error::from_raw_os_error(libc::ENOMEM))?;
        let mut off = self.free.borrow_mut().alloc(len);
        if off.is_none() && self.sweep(false) {
            // Retired ranges hold offsets too: the ones due may do.
            off = self.free.borrow_mut().alloc(len);
        }
        let off = off.ok_or(Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Rc::new(Chunk {
            file: self.clone(),
            offset: off,
            len,
        }))
    }

    /// From now on, freed ranges wait for the stubs that may map them
    /// ([`MemoryFile::release_retired_through`]), or for more than
    /// [`RETIRED_MAX`] of them to gather, before they are punched.
    pub fn defer_release(&self) {
        self.retired.borrow_mut().defer = true;
    }

    /// Frees `[off, off+len)`: at once, or retired until the next sweep.
    fn retire(&self, off: u64, len: u64) {
        let mut r = self.retired.borrow_mut();
        if !r.defer {
            drop(r);
            self.punch(off, len);
            self.free.borrow_mut().release(off, len);
            return;
        }
        r.ranges.push((off, len, crate::platform::kills()));
        let full = r.ranges.len() > RETIRED_MAX;
        drop(r);
        if full && !self.sweep(true) {
            // Stubs that do not die keep every range back: give them up
            // (the old way, a punch unmaps them from the dying stubs too)
            // rather than hold the memory file's space forever.
            self.release_all();
        }
    }

    /// Memory pressure (the container's memory limit): every retired
    /// range is punched now, which returns its pages to the host, and
    /// those that no dying stub may map are free again. False if nothing
    /// was retired.
    pub fn release_retired(&self) -> bool {
        !self.retired.borrow().ranges.is_empty() && {
            self.sweep(true);
            true
        }
    }

    /// The platform reports every stub killed up to kill number
    /// `through` gone: the ranges retired until then are punched
    /// (adjacent ones in one call) and free again. False if none were.
    pub fn release_retired_through(&self, through: u64) -> bool {
        self.retired.borrow_mut().through = through;
        self.sweep(false)
    }

    /// Punches the retired ranges that are due (retired at a kill count
    /// the platform last reported reaped), and the others too if
    /// `all_pages`; makes the due ones free. False if none was due.
    fn sweep(&self, all_pages: bool) -> bool {
        let due = {
            let mut r = self.retired.borrow_mut();
            let through = r.through;
            let mut due = Vec::new();
            r.ranges.retain(|&range| {
                let keep = range.2 > through;
                if !keep {
                    due.push(range);
                }
                keep
            });
            if all_pages {
                self.punch_all(&r.ranges);
            }
            due
        };
        self.free_ranges(&due);
        !due.is_empty()
    }

    /// Every retired range, punched and free again, due or not.
    fn release_all(&self) {
        let all = std::mem::take(&mut self.retired.borrow_mut().ranges);
        self.free_ranges(&all);
    }

    /// Punches `ranges` and makes them free.
    fn free_ranges(&self, ranges: &[(u64, u64, u64)]) {
        self.punch_all(ranges);
        let mut free = self.free.borrow_mut();
        for &(off, len, _) in ranges {
            free.release(off, len);
        }
    }

    /// Punches `ranges`, adjacent ones in one call.
    fn punch_all(&self, ranges: &[(u64, u64, u64)]) {
        if ranges.is_empty() {
            return;
        }
        let mut sorted: Vec<(u64, u64)> = ranges.iter().map(|&(o, l, _)| (o, l)).collect();
        sorted.sort_unstable();
        let mut run: Option<(u64, u64)> = None;
        for (off, len) in sorted {
            run = match run {
                Some((o, l)) if o + l == off => Some((o, l + len)),
                Some((o, l)) => {
                    self.punch(o, l);
                    Some((off, len))
                }
                None => Some((off, len)),
            };
        }
        if let Some((o, l)) = run {
            self.punch(o, l);
        }
    }

    fn punch(&self, off: u64, len: u64) {
        // SAFETY: fallocate on our own fd.
        unsafe {
            libc::fallocate(
                self.fd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
    }

    /// Calls `f` with each range `[start, end)` of `[src, src+len)` that
    /// holds data (pages ever written and not discarded since).
    fn each_data(&self, src: u64, len: u64, mut f: impl FnMut(u64, u64)) {
        let end = src.saturating_add(len);
        let mut pos = src;
        while pos < end {
            // SAFETY: lseek on our own fd; the file offset is used by
            // nothing else (all other I/O is positional or mapped).
            let data = unsafe { libc::lseek(self.fd, pos as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            let data = data as u64;
            // SAFETY: lseek on our own fd.
            let hole = unsafe { libc::lseek(self.fd, data as i64, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            f(data, hole);
            pos = hole;
        }
    }

    /// Copies `len` bytes from `src` to `dst` (file offsets), skipping
    /// holes so untouched memory is not materialized (fork of a process
    /// with a large, mostly empty heap stays cheap).
    pub fn copy_populated(&self, src: u64, dst: u64, len: u64) {
        self.each_data(src, len, |data, hole| {
            // SAFETY: the source range is inside an allocated chunk of
            // the file, in the kernel's mapping of it for the chunk's life.
            let from =
                unsafe { std::slice::from_raw_parts(self.ptr(data), (hole - data) as usize) };
            self.write_at(dst + (data - src), from);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_and_merge() {
        let f = MemoryFile::create(1 << 20).unwrap();
        let a = f.alloc(3).unwrap();
        assert_eq!(a.len, PAGE_SIZE);
        assert_eq!(a.offset, 1 << 20);
        let b = f.alloc(2 * PAGE_SIZE).unwrap();
        unsafe { std::ptr::copy_nonoverlapping(b"abcd".as_ptr(), a.ptr(0), 4) };
        assert_eq!(unsafe { std::slice::from_raw_parts(a.ptr(0), 4) }, b"abcd");
        drop(a);
        drop(b);
        assert_eq!(f.allocated(), 0);
        assert_eq!(f.free.borrow().free.len(), 1, "extents merged");
    }

    #[test]
    fn retired_memory_is_neither_reused_nor_zeroed_until_released() {
        let f = MemoryFile::create(1 << 20).unwrap();
        f.defer_release();
        let a = f.alloc(2 * PAGE_SIZE).unwrap();
        let b = f.alloc(PAGE_SIZE).unwrap();
        let far = f.alloc(PAGE_SIZE).unwrap();
        let (a_off, b_off) = (a.offset, b.offset);
        unsafe {
            a.ptr(0).write(7);
            a.ptr(PAGE_SIZE).write(7);
            b.ptr(0).write(8);
        }
        // `a` goes before a stub is killed, `b` after.
        let before = crate::platform::kills();
        drop(a);
        let kill = crate::platform::note_kill();
        drop(b);
        // Retired: still counted, still holding the old bytes (a dying
        // stub may map them), and not handed out again.
        assert_eq!(f.allocated(), 4 * PAGE_SIZE);
        assert_eq!(f.in_use(), PAGE_SIZE, "in use: only `far`");
        assert_eq!(f.resident_in(a_off, 3 * PAGE_SIZE), 3 * PAGE_SIZE);
        let c = f.alloc(PAGE_SIZE).unwrap();
        assert!(c.offset != a_off && c.offset != b_off);
        drop(c);
        // While the killed stub lives, only what was freed before its
        // kill goes.
        assert!(f.release_retired_through(before));
        assert_eq!(f.resident_in(a_off, 2 * PAGE_SIZE), 0, "a punched");
        assert_eq!(f.resident_in(b_off, PAGE_SIZE), PAGE_SIZE, "b kept");
        assert!(!f.release_retired_through(before));
        // Memory pressure punches b too, but does not free it yet.
        assert!(f.release_retired());
        assert_eq!(f.resident_in(b_off, PAGE_SIZE), 0, "b punched");
        assert_eq!(f.allocated(), 3 * PAGE_SIZE, "b, c and `far`");
        assert_eq!(f.in_use(), PAGE_SIZE, "b and c are punched, not yet free");
        assert!(f.release_retired_through(kill));
        assert!(!f.release_retired(), "nothing is left to release");
        assert_eq!(f.allocated(), PAGE_SIZE, "only `far` is left");
        assert_eq!(f.resident_in(a_off, 3 * PAGE_SIZE), 0, "punched");
        // Released memory is reused, and reads as zeros.
        let d = f.alloc(3 * PAGE_SIZE).unwrap();
        assert_eq!(d.offset, a_off);
        assert_eq!(unsafe { d.ptr(0).read() }, 0);
        assert_eq!(unsafe { d.ptr(2 * PAGE_SIZE).read() }, 0);
        drop(d);
        drop(far);
        assert!(f.release_retired());
        // Past the cap, with the stubs killed since never reaped, a
        // free releases everything at once.
        crate::platform::note_kill();
        let many: Vec<_> = (0..=RETIRED_MAX)
            .map(|_| f.alloc(PAGE_SIZE).unwrap())
            .collect();
        drop(many);
        assert_eq!(f.allocated(), 0);
        assert!(!f.release_retired());
    }

    #[test]
    fn copy_skips_holes() {
        let f = MemoryFile::create(1 << 20).unwrap();
        let a = f.alloc(64 * PAGE_SIZE).unwrap();
        let b = f.alloc(64 * PAGE_SIZE).unwrap();
        unsafe { std::ptr::copy_nonoverlapping(b"xyz".as_ptr(), a.ptr(10 * PAGE_SIZE), 3) };
        f.copy_populated(a.offset, b.offset, a.len);
        assert_eq!(
            unsafe { std::slice::from_raw_parts(b.ptr(10 * PAGE_SIZE), 3) },
            b"xyz"
        );
    }
}
