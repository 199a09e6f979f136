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
    /// membarrier registrations of the process (MEMBARRIER_CMD_REGISTER_*).
    pub membarrier: std::cell::Cell<u32>,
}

/// How mremap may move a mapping.
#[derive(Clone, Copy, Debug, Default)]
pub struct Remap {
    /// MREMAP_MAYMOVE.
    pub may_move: bool,
    /// MREMAP_FIXED: exactly there.
    pub fixed: Option<u64>,
    /// MREMAP_DONTUNMAP: the old range stays mapped (to new zero pages).
    pub dont_unmap: bool,
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
            membarrier: std::cell::Cell::new(0),
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
        // A mapping never reaches past its memory.
        if r.chunk_off.checked_add(len).is_none_or(|e| e > r.chunk.len) {
            return Err(Errno::EINVAL);
        }
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
        // The whole range must be mapped.
        let mut pos = addr;
        for (_, v) in self.vmas.range(..end) {
            if v.end <= pos {
                continue;
            }
            if v.start > pos {
                return Err(Errno::ENOMEM);
            }
            pos = v.end;
        }
        if pos < end {
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

    /// Maps `len` bytes of `chunk` from `chunk_off` at `addr` (a range the
    /// caller made free), as one VMA like `like`.
    fn place(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        len: u64,
        (chunk, chunk_off): (Rc<Chunk>, u64),
        like: &Vma,
        name_off: u64,
    ) -> SysResult<()> {
        let mut name = like.name.clone();
        if let VmaName::File { offset, .. } = &mut name {
            *offset += name_off;
        }
        self.map(
            p,
            MapRequest {
                addr,
                len,
                prot: like.prot,
                shared: like.shared,
                fixed: true,
                noreplace: false,
                chunk,
                chunk_off,
                name,
            },
        )?;
        Ok(())
    }

    /// Memory for `len` more bytes after `v`'s bytes up to `at`: more of
    /// the same chunk for a shared mapping (its pages are the object's), a
    /// fresh zero-filled one for a private mapping.
    fn extension(&self, v: &Vma, at: u64, len: u64) -> SysResult<(Rc<Chunk>, u64)> {
        let off = v.chunk_off + (at - v.start);
        if v.shared && off.checked_add(len).is_some_and(|e| e <= v.chunk.len) {
            return Ok((v.chunk.clone(), off));
        }
        // Past a shared object's end Linux maps pages that fault with
        // SIGBUS; here they are fresh zero pages of this mapping alone.
        Ok((self.mf.alloc(len)?, 0))
    }

    /// mremap(2), as Linux's: shrinking unmaps the tail (always allowed,
    /// whatever is mapped there); growing extends in place when the range
    /// ends its mapping and the space after is free, else moves it (with
    /// MREMAP_MAYMOVE) to a free range or to `how.fixed`; MREMAP_DONTUNMAP
    /// leaves the old range mapped to fresh memory. Pages move by
    /// reference, never by copy; memory a mapping grows by is new zeros
    /// (private) or more of the same object (shared).
    pub fn remap(
        &mut self,
        p: &mut dyn Platform,
        old: u64,
        old_len: u64,
        new_len: u64,
        how: Remap,
    ) -> SysResult {
        if !old.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        // PAGE_ALIGN wraps to zero in Linux: a length that large is EINVAL.
        let old_len = page_up(old_len).unwrap_or(0);
        let new_len = page_up(new_len).unwrap_or(0);
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if how.dont_unmap && old_len != new_len {
            return Err(Errno::EINVAL);
        }
        let mut old_len = old_len;
        if let Some(to) = how.fixed {
            if !to.is_multiple_of(PAGE_SIZE) || to.checked_add(new_len).is_none_or(|e| e > USER_END)
            {
                return Err(Errno::EINVAL);
            }
            if to < USER_START {
                return Err(Errno::EPERM);
            }
            // The ranges may not overlap.
            if old.saturating_add(old_len) > to && to + new_len > old {
                return Err(Errno::EINVAL);
            }
            self.unmap(p, to, new_len)?;
            if old_len > new_len {
                self.unmap(p, old + new_len, old_len - new_len)?;
                old_len = new_len;
            }
        } else if old_len >= new_len && !how.dont_unmap {
            if old_len > new_len {
                self.unmap(p, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        // The old range: contiguous VMAs of one kind (a mapping that grew
        // is several VMAs over different memory; Linux sees one).
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        let first = self.find(old).cloned().ok_or(Errno::EFAULT)?;
        let mut pieces = Vec::new();
        let mut pos = old;
        while pos < old_end {
            let v = self.find(pos).cloned().ok_or(Errno::EFAULT)?;
            if v.shared != first.shared || v.prot != first.prot {
                return Err(Errno::EFAULT);
            }
            let end = v.end.min(old_end);
            pieces.push((pos, end, v));
            pos = end;
        }
        if old_len == 0 && !first.shared {
            // Only a shared mapping can be duplicated this way.
            return Err(Errno::EINVAL);
        }
        if how.dont_unmap && (first.shared || !matches!(first.name, VmaName::Anon)) {
            return Err(Errno::EINVAL);
        }
        // The VMA the range ends in (what grows).
        let last = match pieces.last() {
            Some((_, _, v)) => v.clone(),
            None => first.clone(),
        };
        let grow = new_len - old_len;
        if how.fixed.is_none()
            && grow > 0
            && old_len > 0
            && old_end == last.end
            && old_end.checked_add(grow).is_some_and(|e| e <= USER_END)
            && !self.overlaps(old_end, old_end + grow)
        {
            let (c, off) = self.extension(&last, old_end, grow)?;
            self.place(p, old_end, grow, (c, off), &last, old_end - last.start)?;
            return Ok(old);
        }
        if !how.may_move {
            return Err(Errno::ENOMEM);
        }
        let target = match how.fixed {
            Some(t) => t,
            None => self.find_free(0, new_len).ok_or(Errno::ENOMEM)?,
        };
        let ext = if grow > 0 {
            let at = if old_len > 0 { old_end } else { old };
            Some(self.extension(&last, at, grow)?)
        } else {
            None
        };
        // The pages themselves go to the new place.
        for (s, e, v) in &pieces {
            let off = v.chunk_off + (s - v.start);
            self.place(
                p,
                target + (s - old),
                e - s,
                (v.chunk.clone(), off),
                v,
                s - v.start,
            )?;
        }
        if let Some((c, off)) = ext {
            let name_off = old_end.saturating_sub(last.start);
            self.place(p, target + old_len, grow, (c, off), &last, name_off)?;
        }
        if old_len > 0 && !first.shared {
            // Leave the old range without discarding what now lives at
            // the new one.
            p.apply(
                self.space,
                &[MapOp::Unmap {
                    addr: old,
                    len: old_len,
                }],
            )
            .map_err(|e| Errno::from_io(&e))?;
            self.remove_range(old, old_end);
            if how.dont_unmap {
                let c = self.mf.alloc(old_len)?;
                self.place(p, old, old_len, (c, 0), &first, old - first.start)?;
            }
        } else if old_len > 0 {
            // Shared pages stay valid through the new mapping.
            self.unmap(p, old, old_len)?;
        }
        Ok(target)
    }

    /// madvise(MADV_DONTNEED): private pages read back as zeros.
    pub fn dont_need(&mut self, addr: u64, len: u64) -> SysResult<()> {
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
        Ok(())
    }

    /// A copy of this address space for fork: private memory is copied,
    /// shared memory is shared.
    pub fn fork(&self, p: &mut dyn Platform) -> std::io::Result<AddressSpace> {
        let mut child = AddressSpace::new(p, self.mf.clone())?;
        child.mmap_top = self.mmap_top;
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.stack_top = self.stack_top;
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

    /// Whether every byte of `[addr, addr+len)` is mapped.
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let mut pos = addr;
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

    /// Resident-ish size for /proc: bytes mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.vmas.values().map(|v| v.end - v.start).sum()
    }
}
