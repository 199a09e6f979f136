//! An address space: the VMAs of one workload process and their mirror in
//! a platform address space.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::memfile::{Chunk, MemoryFile};
use crate::arch::{PAGE_SIZE, USER_END, USER_START, page_down, page_up};
use crate::errno::{Errno, SysResult};
use crate::platform::{MapOp, Platform, SpaceId};

/// What a VMA shows as in /proc/[pid]/maps.
#[derive(Clone, Debug, PartialEq)]
pub enum VmaName {
    Anon,
    Heap,
    Stack,
    /// The table of patched syscall sites' trampolines.
    Usertrap,
    /// A file mapping: path, file offset of the VMA start, device and inode.
    File {
        path: String,
        offset: u64,
        dev: u64,
        ino: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: i32,
    /// MAP_SHARED: the pages are shared with other mappings of the same
    /// memory (and not copied on fork).
    pub shared: bool,
    /// Backing memory: byte `chunk_off + (addr - start)` of `chunk`.
    pub chunk: Rc<Chunk>,
    pub chunk_off: u64,
    pub name: VmaName,
}

impl Vma {
    fn file_offset(&self) -> u64 {
        self.chunk.offset + self.chunk_off
    }

    /// Splits at `addr` (inside the VMA); self keeps the low part.
    fn split_off(&mut self, addr: u64) -> Vma {
        let mut hi = self.clone();
        hi.start = addr;
        hi.chunk_off += addr - self.start;
        if let VmaName::File { offset, .. } = &mut hi.name {
            *offset += addr - self.start;
        }
        self.end = addr;
        hi
    }
}

/// A mapping to create.
pub struct MapRequest {
    /// Address hint, or the exact address with `fixed`.
    pub addr: u64,
    pub len: u64,
    pub prot: i32,
    pub shared: bool,
    pub fixed: bool,
    /// MAP_FIXED_NOREPLACE: fail with EEXIST instead of replacing.
    pub noreplace: bool,
    pub chunk: Rc<Chunk>,
    pub chunk_off: u64,
    pub name: VmaName,
}

pub struct AddressSpace {
    pub space: SpaceId,
    mf: Rc<MemoryFile>,
    vmas: BTreeMap<u64, Vma>,
    /// Top-down mmap allocations start below this address.
    pub mmap_top: u64,
    pub brk_start: u64,
    pub brk: u64,
    heap: Option<Rc<Chunk>>,
    /// Stack top of the main thread (for /proc naming and exec).
    pub stack_top: u64,
    /// Where the trampolines of patched syscall sites live, and how many
    /// there are (see `kernel::usertrap`); copied by fork with the memory.
    pub usertrap: Option<(u64, u32)>,
}

/// Most a heap (brk) may grow; beyond it malloc falls back to mmap.
pub const HEAP_MAX: u64 = 1 << 30;

impl AddressSpace {
    pub fn new(p: &mut dyn Platform, mf: Rc<MemoryFile>) -> std::io::Result<AddressSpace> {
        let space = p.new_space()?;
        Ok(AddressSpace {
            space,
            mf,
            vmas: BTreeMap::new(),
            mmap_top: USER_END,
            brk_start: 0,
            brk: 0,
            heap: None,
            stack_top: USER_END,
            usertrap: None,
        })
    }

    pub fn memory_file(&self) -> &Rc<MemoryFile> {
        &self.mf
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// A free range of `len` bytes: at `hint` if free, else top-down below
    /// `mmap_top`.
    pub fn find_free(&self, hint: u64, len: u64) -> Option<u64> {
        if hint >= USER_START
            && hint.checked_add(len).is_some_and(|e| e <= USER_END)
            && !self.overlaps(hint, hint + len)
        {
            return Some(hint);
        }
        let mut top = self.mmap_top;
        for (_, v) in self.vmas.range(..self.mmap_top).rev() {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        if top >= USER_START + len {
            return Some(top - len);
        }
        None
    }

    /// Splits VMAs so that `addr` is a boundary.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, _)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        let v = self.vmas.get_mut(&start).unwrap();
        if v.end > addr {
            let hi = v.split_off(addr);
            self.vmas.insert(addr, hi);
        }
    }

    /// Removes VMAs in `[start, end)` from the model (not the host).
    fn remove_range(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        for k in keys {
            self.vmas.remove(&k);
        }
    }

    pub fn map(&mut self, p: &mut dyn Platform, r: MapRequest) -> SysResult {
        let len = page_up(r.len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let addr = if r.fixed || r.noreplace {
            if !r.addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = r.addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if r.addr < USER_START || end > USER_END {
                return Err(if r.noreplace {
                    Errno::EPERM
                } else {
                    Errno::ENOMEM
                });
            }
            if r.noreplace && self.overlaps(r.addr, end) {
                return Err(Errno::EEXIST);
            }
            r.addr
        } else {
            self.find_free(page_down(r.addr), len)
                .ok_or(Errno::ENOMEM)?
        };
        assert!(r.chunk_off + len <= r.chunk.len, "mapping beyond its chunk");
        let res = p
            .apply(
                self.space,
                &[MapOp::Map {
                    addr,
                    len,
                    prot: r.prot,
                    offset: r.chunk.offset + r.chunk_off,
                }],
            )
            .map_err(|e| Errno::from_io(&e))?;
        if res[0] < 0 {
            return Err(Errno(-res[0] as i32));
        }
        self.remove_range(addr, addr + len);
        self.vmas.insert(
            addr,
            Vma {
                start: addr,
                end: addr + len,
                prot: r.prot,
                shared: r.shared,
                chunk: r.chunk,
                chunk_off: r.chunk_off,
                name: r.name,
            },
        );
        Ok(addr)
    }

    /// Anonymous private zero-filled memory.
    pub fn map_anon(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        len: u64,
        prot: i32,
        fixed: bool,
        name: VmaName,
    ) -> SysResult {
        let chunk = self.mf.alloc(len)?;
        self.map(
            p,
            MapRequest {
                addr,
                len,
                prot,
                shared: false,
                fixed,
                noreplace: false,
                chunk,
                chunk_off: 0,
                name,
            },
        )
    }

    pub fn unmap(&mut self, p: &mut dyn Platform, addr: u64, len: u64) -> SysResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > USER_END {
            return Err(Errno::EINVAL);
        }
        if self.overlaps(addr, end) {
            p.apply(self.space, &[MapOp::Unmap { addr, len }])
                .map_err(|e| Errno::from_io(&e))?;
            self.split_at(addr);
            self.split_at(end);
            // Private memory is mapped by exactly one VMA of one address
            // space (fork copies it), so it can go back to the host now.
            for v in self.vmas.range(addr..end).map(|(_, v)| v) {
                if !v.shared {
                    v.chunk.discard(v.chunk_off, v.end - v.start);
                }
            }
            self.remove_range(addr, end);
        }
        Ok(())
    }

    pub fn protect(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        len: u64,
        prot: i32,
    ) -> SysResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        if !self.fully_mapped(addr, end) {
            return Err(Errno::ENOMEM);
        }
        p.apply(self.space, &[MapOp::Protect { addr, len, prot }])
            .map_err(|e| Errno::from_io(&e))?;
        self.split_at(addr);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(addr..end) {
            v.prot = prot;
        }
        Ok(())
    }

    /// Sets up the heap right after the executable's image.
    pub fn init_brk(&mut self, start: u64) {
        self.brk_start = start;
        self.brk = start;
        self.heap = None;
    }

    /// brk(2): moves the program break; returns the new (or old) break.
    pub fn set_brk(&mut self, p: &mut dyn Platform, new: u64) -> u64 {
        if new < self.brk_start || new > self.brk_start + HEAP_MAX {
            return self.brk;
        }
        let old_end = page_up(self.brk).unwrap_or(self.brk);
        let new_end = match page_up(new) {
            Some(e) => e,
            None => return self.brk,
        };
        if new_end > old_end {
            if self.overlaps(old_end, new_end) {
                return self.brk;
            }
            let heap = match &self.heap {
                Some(h) => h.clone(),
                None => match self.mf.alloc(HEAP_MAX) {
                    Ok(h) => {
                        self.heap = Some(h.clone());
                        h
                    }
                    Err(_) => return self.brk,
                },
            };
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let r = self.map(
                p,
                MapRequest {
                    addr: old_end,
                    len: new_end - old_end,
                    prot,
                    shared: false,
                    fixed: true,
                    noreplace: false,
                    chunk: heap,
                    chunk_off: old_end - self.brk_start,
                    name: VmaName::Heap,
                },
            );
            if r.is_err() {
                return self.brk;
            }
        } else if new_end < old_end && self.unmap(p, new_end, old_end - new_end).is_err() {
            return self.brk;
        }
        self.brk = new;
        new
    }

    /// mremap(2) without MREMAP_FIXED/DONTUNMAP: shrink in place, grow in
    /// place when the range after is free, else move if allowed.
    pub fn remap(
        &mut self,
        p: &mut dyn Platform,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
    ) -> SysResult {
        if !old.is_multiple_of(PAGE_SIZE) || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::ENOMEM)?;
        let v = self.find(old).cloned().ok_or(Errno::EFAULT)?;
        if old + old_len > v.end {
            return Err(Errno::EFAULT);
        }
        if fixed_to.is_none() && new_len <= old_len {
            if new_len < old_len {
                self.unmap(p, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        // The data moves into a new chunk of the new size (shared mappings
        // cannot move away from their memory).
        if v.shared {
            return Err(Errno::EINVAL);
        }
        let in_place = fixed_to.is_none() && !self.overlaps(old + old_len, old + new_len);
        if !in_place && !may_move {
            return Err(Errno::ENOMEM);
        }
        let target = match fixed_to {
            Some(t) => t,
            None if in_place => old,
            None => self.find_free(0, new_len).ok_or(Errno::ENOMEM)?,
        };
        let chunk = self.mf.alloc(new_len)?;
        self.mf.copy_populated(
            v.chunk.offset + v.chunk_off + (old - v.start),
            chunk.offset,
            old_len.min(new_len),
        );
        let name = v.name.clone();
        if !in_place {
            self.unmap(p, old, old_len)?;
        }
        self.map(
            p,
            MapRequest {
                addr: target,
                len: new_len,
                prot: v.prot,
                shared: false,
                fixed: true,
                noreplace: false,
                chunk,
                chunk_off: 0,
                name,
            },
        )
    }

    /// madvise(MADV_DONTNEED): private pages read back as zeros.
    /// Whether every page of `[start, end)` belongs to a VMA.
    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut pos = start;
        for (_, v) in self.vmas.range(..end) {
            if v.end <= pos {
                continue;
            }
            if v.start > pos {
                return false;
            }
            pos = v.end;
        }
        pos >= end
    }

    /// madvise(MADV_DONTNEED): private pages of the range read as zeros
    /// again. Like Linux, the mapped parts are done and a hole in the
    /// range is ENOMEM.
    pub fn dont_need(&mut self, addr: u64, len: u64) -> SysResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(page_up(len).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        for (_, v) in self.vmas.range(..end) {
            if v.end <= addr {
                continue;
            }
            let s = addr.max(v.start);
            let e = end.min(v.end);
            if !v.shared {
                // Only safe if no other process shares this chunk's pages
                // (fork copies private memory, so this holds for private VMAs
                // unless the chunk is shared read-only cache).
                v.chunk.discard(v.chunk_off + (s - v.start), e - s);
            }
        }
        if self.fully_mapped(addr, end) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// A copy of this address space for fork: private memory is copied,
    /// shared memory is shared.
    pub fn fork(&self, p: &mut dyn Platform) -> std::io::Result<AddressSpace> {
        let mut child = AddressSpace::new(p, self.mf.clone())?;
        child.mmap_top = self.mmap_top;
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.stack_top = self.stack_top;
        child.usertrap = self.usertrap;
        let mut ops = Vec::with_capacity(self.vmas.len());
        let mut heap_copy: Option<Rc<Chunk>> = None;
        for v in self.vmas.values() {
            let mut nv = v.clone();
            if !v.shared {
                let is_heap = self.heap.as_ref().is_some_and(|h| Rc::ptr_eq(h, &v.chunk));
                if is_heap {
                    let h = match &heap_copy {
                        Some(h) => h.clone(),
                        None => {
                            let h = self.mf.alloc(HEAP_MAX)?;
                            heap_copy = Some(h.clone());
                            h
                        }
                    };
                    self.mf.copy_populated(
                        v.file_offset(),
                        h.offset + v.chunk_off,
                        v.end - v.start,
                    );
                    nv.chunk = h;
                } else {
                    let c = self.mf.alloc(v.end - v.start)?;
                    self.mf
                        .copy_populated(v.file_offset(), c.offset, v.end - v.start);
                    nv.chunk = c;
                    nv.chunk_off = 0;
                }
            }
            ops.push(MapOp::Map {
                addr: nv.start,
                len: nv.end - nv.start,
                prot: nv.prot,
                offset: nv.file_offset(),
            });
            child.vmas.insert(nv.start, nv);
        }
        child.heap = heap_copy;
        if !ops.is_empty() {
            let res = p.apply(child.space, &ops)?;
            if let Some(bad) = res.iter().find(|r| **r < 0) {
                p.drop_space(child.space);
                return Err(std::io::Error::from_raw_os_error(-*bad as i32));
            }
        }
        Ok(child)
    }

    /// Removes every mapping (exec reuses nothing of the old image).
    pub fn release(self, p: &mut dyn Platform) {
        p.drop_space(self.space);
    }

    /// Resident-ish size for /proc: bytes mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.vmas.values().map(|v| v.end - v.start).sum()
    }
}
