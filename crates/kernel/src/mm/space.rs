//! An address space: the VMAs of one workload process and their mirror in
//! a platform address space.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::filemem::FileMem;
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

/// Where the bytes of a VMA live.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Anonymous memory (private, or MAP_SHARED|MAP_ANONYMOUS shared by
    /// fork), or a private mapping's own copy of a file: byte
    /// `off + (addr - start)` of `chunk`. `file` names the file of a
    /// private file mapping and the file offset of the VMA start: pages
    /// past its end raise SIGBUS, and a truncation takes them away.
    Chunk {
        chunk: Rc<Chunk>,
        off: u64,
        file: Option<(Rc<FileMem>, u64)>,
    },
    /// A shared mapping of a file: file byte `off + (addr - start)`, in
    /// the file's own pages (see [`FileMem`]). Host mappings are made on
    /// first touch (a fault), never past the end of the file.
    File { mem: Rc<FileMem>, off: u64 },
}

impl Backing {
    /// Anonymous memory at the start of `chunk`.
    pub fn anon(chunk: Rc<Chunk>) -> Backing {
        Backing::Chunk {
            chunk,
            off: 0,
            file: None,
        }
    }

    fn advance(&mut self, by: u64) {
        match self {
            Backing::Chunk { off, file, .. } => {
                *off += by;
                if let Some((_, fo)) = file {
                    *fo += by;
                }
            }
            Backing::File { off, .. } => *off += by,
        }
    }

    /// The file whose pages (or end) this VMA depends on.
    pub fn file(&self) -> Option<&Rc<FileMem>> {
        match self {
            Backing::Chunk { file, .. } => file.as_ref().map(|(m, _)| m),
            Backing::File { mem, .. } => Some(mem),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: i32,
    /// MAP_SHARED: the pages are shared with other mappings of the same
    /// memory (and not copied on fork).
    pub shared: bool,
    /// Whether mprotect may add PROT_WRITE (a shared mapping of a file
    /// opened read-only, or of a write-sealed memfd, may not).
    pub maywrite: bool,
    pub backing: Backing,
    pub name: VmaName,
    /// MADV_DONTFORK: the child of a fork does not get this range.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: the child gets this range zeroed.
    pub wipeonfork: bool,
}

impl Vma {
    /// Splits at `addr` (inside the VMA); self keeps the low part.
    fn split_off(&mut self, addr: u64) -> Vma {
        let mut hi = self.clone();
        hi.start = addr;
        hi.backing.advance(addr - self.start);
        if let VmaName::File { offset, .. } = &mut hi.name {
            *offset += addr - self.start;
        }
        self.end = addr;
        hi
    }

    /// The memory-file chunk of an anonymous or private VMA.
    pub fn chunk(&self) -> Option<(&Rc<Chunk>, u64)> {
        match &self.backing {
            Backing::Chunk { chunk, off, .. } => Some((chunk, *off)),
            Backing::File { .. } => None,
        }
    }

    /// The kernel's pointer to the byte at `addr` and how many bytes are
    /// contiguous from there (at most `len`, inside the VMA). For file
    /// pages they are brought into memory (and marked dirty if `write`);
    /// past the end of the file there is nothing: EFAULT, as Linux's
    /// copy to or from user memory that would raise SIGBUS.
    pub fn kernel_span(&self, addr: u64, len: u64, write: bool) -> SysResult<(*mut u8, u64)> {
        let n = len.min(self.end - addr);
        match &self.backing {
            Backing::Chunk {
                chunk,
                off,
                file: Some((mem, fo)),
            } => {
                // A private copy of a file: nothing past the file's end.
                let fo = fo + (addr - self.start);
                let eof = page_up(mem.size()).unwrap_or(u64::MAX);
                if fo >= eof {
                    return Err(Errno::EFAULT);
                }
                Ok((chunk.ptr(off + (addr - self.start)), n.min(eof - fo)))
            }
            Backing::Chunk { chunk, off, .. } => Ok((chunk.ptr(off + (addr - self.start)), n)),
            Backing::File { mem, off } => {
                let fo = off + (addr - self.start);
                let eof = page_up(mem.size()).unwrap_or(u64::MAX);
                if fo >= eof {
                    return Err(Errno::EFAULT);
                }
                mem.span(fo, n.min(eof - fo), write)
            }
        }
    }

    /// The memory-file offset of the byte at `addr` (futex keys: equal
    /// for every mapping of the same memory).
    pub fn memfile_offset(&self, addr: u64) -> SysResult<u64> {
        match &self.backing {
            Backing::Chunk { chunk, off, .. } => Ok(chunk.offset + off + (addr - self.start)),
            Backing::File { mem, off } => {
                let fo = off + (addr - self.start);
                if fo >= page_up(mem.size()).unwrap_or(u64::MAX) {
                    return Err(Errno::EFAULT);
                }
                mem.memfile_offset(fo)
            }
        }
    }

    /// Bytes of the VMA from its start that lie inside its file (all of it
    /// for anonymous memory).
    fn in_file_len(&self) -> u64 {
        let (mem, fo) = match &self.backing {
            Backing::Chunk {
                file: Some((m, fo)),
                ..
            } => (m, *fo),
            Backing::File { mem, off } => (mem, *off),
            _ => return self.end - self.start,
        };
        let eof = page_up(mem.size()).unwrap_or(u64::MAX);
        eof.saturating_sub(fo).min(self.end - self.start)
    }
}

/// What a fault in workload code turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// Served (a file page mapped in, or made writable): retry the access.
    Handled,
    /// Past the end of a mapped file: SIGBUS.
    SigBus,
    /// A real fault: the signal the host raised.
    NotMine,
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
    pub maywrite: bool,
    pub backing: Backing,
    pub name: VmaName,
}

/// A process's table of syscall-site trampolines (`kernel::usertrap`):
/// where it is mapped and the next free entry of each kind; `None` in
/// `at` once no table could be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsertrapTable {
    pub at: Option<u64>,
    /// Entries handed to `mov $nr,%eax; syscall` sites.
    pub sites: u32,
    /// Entries handed to `xor %eax,%eax; syscall` sites.
    pub xor_sites: u32,
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
    pub usertrap: Option<UsertrapTable>,
    /// Calls seen so far at syscall sites not patched yet (see
    /// `kernel::usertrap`); not copied by fork.
    pub site_calls: HashMap<u64, u32>,
    /// membarrier registrations of the process (MEMBARRIER_CMD_REGISTER_*).
    pub membarrier: std::cell::Cell<u32>,
    /// Where `find_free`'s top-down search resumes (see [`FreeCache`]).
    free_cache: std::cell::Cell<FreeCache>,
}

/// Linux's old `free_area_cache`: a top-down search for a free range
/// resumes below the mapping it placed last, instead of walking every VMA
/// down from `mmap_top` (with tens of thousands of mappings, each mmap
/// walked them all: 65,000 one-page mmaps took ~40 s). Invariant: no free
/// gap between `below` and `mmap_top` is larger than `hole`, so a request
/// of more than `hole` bytes finds its place below `below` as a walk from
/// the top would; a smaller one walks from the top. Removing VMAs above
/// `below` makes gaps there: it resets the cache.
#[derive(Clone, Copy, Debug)]
struct FreeCache {
    below: u64,
    hole: u64,
    /// The last search's answer (address, length) and the largest gap
    /// it passed, taken as the cache once a VMA of that length is placed
    /// there.
    pending: Option<(u64, u64, u64)>,
}

impl FreeCache {
    const EMPTY: FreeCache = FreeCache {
        below: u64::MAX,
        hole: 0,
        pending: None,
    };
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

/// Host mappings a stub needs beside one per VMA: its own code, control
/// pages and thread areas, and host mappings a VMA can take more than one
/// of (patched pages, windows of a file).
const STUB_MAPPINGS: usize = 8_192;

/// Most VMAs a process may have (Linux's `vm.max_map_count`, which
/// /proc/sys/vm/max_map_count shows): past it mmap, and an mprotect or
/// munmap that would split a mapping, fail with ENOMEM, as on Linux. It
/// is the host's limit (read at boot, before the kernel confines itself:
/// [`set_host_max_map_count`]; the default 65,530 until then) less
/// `STUB_MAPPINGS`. A stub at the host's limit cannot take the mappings
/// the kernel gives it: a failed deferred mapping then ends the process,
/// a refused unmap of file pages kills it (`Kernel::apply_invalidations`).
static MAX_MAP_COUNT: AtomicUsize = AtomicUsize::new(65_530 - STUB_MAPPINGS);

/// The map limit now (see `MAX_MAP_COUNT`).
pub fn max_map_count() -> usize {
    MAX_MAP_COUNT.load(Ordering::Relaxed)
}

/// The sandbox's map limit on a host whose `vm.max_map_count` is `host`:
/// that less what the stub needs; half of it on a host that set it too
/// low for that; never below 1,024.
pub fn map_limit_for_host(host: usize) -> usize {
    if host >= 2 * STUB_MAPPINGS {
        host - STUB_MAPPINGS
    } else {
        (host / 2).max(1_024)
    }
}

/// The host's `vm.max_map_count` (at boot).
pub fn set_host_max_map_count(host: usize) {
    MAX_MAP_COUNT.store(map_limit_for_host(host), Ordering::Relaxed);
}

impl AddressSpace {
    pub fn new(p: &mut dyn Platform, mf: Rc<MemoryFile>) -> std::io::Result<AddressSpace> {
        let space = p.new_space()?;
        Ok(Self::on(space, mf))
    }

    /// A new address space for the image an exec builds (see
    /// [`Platform::new_space_for_exec`]).
    pub fn for_exec(p: &mut dyn Platform, mf: Rc<MemoryFile>) -> std::io::Result<AddressSpace> {
        let space = p.new_space_for_exec()?;
        Ok(Self::on(space, mf))
    }

    fn on(space: SpaceId, mf: Rc<MemoryFile>) -> AddressSpace {
        AddressSpace {
            space,
            mf,
            vmas: BTreeMap::new(),
            mmap_top: USER_END,
            brk_start: 0,
            brk: 0,
            heap: None,
            stack_top: USER_END,
            usertrap: None,
            site_calls: HashMap::new(),
            membarrier: std::cell::Cell::new(0),
            free_cache: std::cell::Cell::new(FreeCache::EMPTY),
        }
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

    /// The size of the stack mapping that ends at `top` (what exec's
    /// stack builder may fill), if there is one.
    pub fn stack_size(&self, top: u64) -> Option<u64> {
        let v = self.find(top.checked_sub(1)?)?;
        (v.end == top && v.name == VmaName::Stack).then(|| top - v.start)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// Whether no access to `[start, end)` can succeed on the host: every
    /// VMA there is PROT_NONE. The host maps nothing outside VMAs, and a
    /// PROT_NONE VMA has nothing there or a PROT_NONE mapping (`map`
    /// leaves a fresh reservation empty, `protect` makes a range PROT_NONE
    /// on the host before the VMA says so, and opens one only with a
    /// mapping of the memory it should show).
    fn no_host_access(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .all(|(_, v)| v.prot == libc::PROT_NONE)
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
        let mut c = self.free_cache.get();
        let from_cache = c.below < self.mmap_top && len > c.hole;
        let found = from_cache
            .then(|| self.find_free_below(c.below, len, c.hole))
            .flatten()
            .or_else(|| self.find_free_below(self.mmap_top, len, 0));
        c.pending = found.map(|(at, hole)| (at, len, hole));
        self.free_cache.set(c);
        found.map(|(at, _)| at)
    }

    /// The highest free range of `len` bytes below `top`, and the largest
    /// gap above it that was passed for being too small (at least `hole`).
    fn find_free_below(&self, mut top: u64, len: u64, mut hole: u64) -> Option<(u64, u64)> {
        for (_, v) in self.vmas.range(..top).rev() {
            if v.end <= top {
                if top - v.end >= len {
                    return Some((top - len, hole));
                }
                hole = hole.max(top - v.end);
            }
            top = top.min(v.start);
        }
        (top >= USER_START + len).then(|| (top - len, hole))
    }

    /// A VMA of `len` bytes now starts at `addr`: if the last free-range
    /// search chose that range, later searches resume below it.
    fn placed_at(&self, addr: u64, len: u64) {
        let mut c = self.free_cache.get();
        if let Some((at, l, hole)) = c.pending.take()
            && (at, l) == (addr, len)
        {
            c.below = at;
            c.hole = hole;
        }
        self.free_cache.set(c);
    }

    /// ENOMEM if making `start` and `end` boundaries would take the
    /// process past [`max_map_count`] VMAs, as Linux's `__split_vma`
    /// refuses. `removed`: the range then goes (munmap), so only a hole
    /// inside one VMA adds one.
    fn may_split(&self, start: u64, end: u64, removed: bool) -> SysResult<()> {
        // The VMA each edge falls strictly inside, if any.
        let inside = |a: u64| self.find(a).filter(|v| v.start != a).map(|v| v.start);
        let (s, e) = (inside(start), inside(end));
        let grow = if removed {
            usize::from(s.is_some() && s == e)
        } else {
            usize::from(s.is_some()) + usize::from(e.is_some())
        };
        if grow > 0 && self.vmas.len() + grow > max_map_count() {
            return Err(Errno::ENOMEM);
        }
        Ok(())
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
        if !keys.is_empty() && end > self.free_cache.get().below {
            // A gap above where searches resume (see FreeCache).
            self.free_cache.set(FreeCache::EMPTY);
        }
        for k in keys {
            self.vmas.remove(&k);
        }
    }

    /// Host operations that make `v` (or its part `[s, e)`) present:
    /// anonymous and private memory whole, file pages only up to the end
    /// of the file (past it the host has nothing mapped, so a touch
    /// faults and becomes SIGBUS). Pages of host files are mapped where
    /// the file's cache already holds them, the rest left to their first
    /// touch (see [`AddressSpace::fault`]); in-memory files are mapped
    /// now, their pages allocated as they are written.
    fn present_ops(v: &Vma, s: u64, e: u64) -> SysResult<Vec<MapOp>> {
        let in_file_end = v.start + v.in_file_len();
        match &v.backing {
            Backing::Chunk { chunk, off, file } => {
                let e = if file.is_some() {
                    e.min(in_file_end)
                } else {
                    e
                };
                if s >= e {
                    return Ok(Vec::new());
                }
                Ok(vec![MapOp::Map {
                    addr: s,
                    len: e - s,
                    prot: v.prot,
                    offset: chunk.offset + off + (s - v.start),
                }])
            }
            Backing::File { mem, off } => {
                let e = e.min(in_file_end);
                if s >= e || v.prot == libc::PROT_NONE {
                    return Ok(Vec::new());
                }
                if mem.is_host() {
                    return mem.map_ops_cached(s, off + (s - v.start), e - s, v.prot);
                }
                mem.map_ops(s, off + (s - v.start), e - s, v.prot)
            }
        }
    }

    fn apply(&self, p: &mut dyn Platform, ops: &[MapOp]) -> SysResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let res = p.apply(self.space, ops).map_err(|e| Errno::from_io(&e))?;
        if let Some(bad) = res.iter().find(|r| **r < 0) {
            return Err(Errno(-*bad as i32));
        }
        Ok(())
    }

    pub fn map(&mut self, p: &mut dyn Platform, r: MapRequest) -> SysResult {
        let len = page_up(r.len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if self.vmas.len() >= max_map_count() {
            return Err(Errno::ENOMEM);
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
        if let Backing::Chunk { chunk, off, .. } = &r.backing
            && off.checked_add(len).is_none_or(|e| e > chunk.len)
        {
            return Err(Errno::EINVAL);
        }
        let v = Vma {
            start: addr,
            end: addr + len,
            prot: r.prot,
            shared: r.shared,
            maywrite: r.maywrite,
            backing: r.backing,
            name: r.name,
            dontfork: false,
            wipeonfork: false,
        };
        // The host maps nothing in the workload's range outside VMAs, so
        // a range no VMA covers needs no unmapping, and memory no one may
        // touch there (a PROT_NONE reservation, as Go's arenas and guard
        // pages are) needs no host mapping until `protect` opens it: an
        // mmap and its munmap of such a range cost no host call.
        let empty = !self.overlaps(addr, addr + len);
        // Where the host gives no access yet (nothing there, or only
        // PROT_NONE reservations: a library mapped into the dynamic
        // loader's aligned reservation), the same holds.
        let fresh = empty || self.no_host_access(addr, addr + len);
        let mut ops = if empty && v.prot == libc::PROT_NONE {
            Vec::new()
        } else {
            Self::present_ops(&v, addr, addr + len)?
        };
        // Whatever was mapped there before goes, also where the new
        // mapping leaves the host empty (a reservation's PROT_NONE
        // mapping of pages about to be freed too: kept back with the
        // rest, it never gives access).
        let mapped: u64 = ops
            .iter()
            .map(|o| match o {
                MapOp::Map { len, .. } => *len,
                _ => 0,
            })
            .sum();
        // A fresh mapping's empty parts (pages of a host file not read
        // yet) are said too: the platform then keeps the whole range back,
        // and the segments the dynamic loader maps over it next are inside
        // what it keeps.
        if mapped < len && (!empty || !ops.is_empty()) {
            ops.insert(0, MapOp::Unmap { addr, len });
        }
        if fresh {
            // Nothing of the host's there yet: the platform may map it
            // when first touched (one round trip for a library's
            // segments, protections and first page instead of several).
            if !ops.is_empty() {
                p.apply_fresh(self.space, &ops)
                    .map_err(|e| Errno::from_io(&e))?;
            }
        } else {
            self.apply(p, &ops)?;
        }
        self.remove_range(addr, addr + len);
        self.vmas.insert(addr, v);
        self.placed_at(addr, len);
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
                maywrite: true,
                backing: Backing::anon(chunk),
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
            self.may_split(addr, end, true)?;
            let op = [MapOp::Unmap { addr, len }];
            if self.no_host_access(addr, end) {
                // Nothing there gives access on the host (glibc's malloc
                // and dynamic loader trim the ends of aligned PROT_NONE
                // reservations): the platform may keep this back.
                p.apply_fresh(self.space, &op)
                    .map_err(|e| Errno::from_io(&e))?;
            } else {
                // The host's munmap can fail (ENOMEM: splitting a mapping
                // would pass the stub's map count). Then the stub still
                // maps the range, so it stays as it is here too: its
                // memory must not be freed (and handed to another
                // process) while the stub can reach it. Linux's munmap
                // fails the same way.
                self.apply(p, &op)?;
            }
            self.split_at(addr);
            self.split_at(end);
            for v in self.vmas.range(addr..end).map(|(_, v)| v) {
                match &v.backing {
                    // Private memory is mapped by exactly one VMA of one
                    // address space (fork copies it), so it can go back to
                    // the host now.
                    Backing::Chunk { chunk, off, .. } if !v.shared => {
                        chunk.discard(*off, v.end - v.start);
                    }
                    // What was written through the mapping reaches the
                    // host file (it stays dirty: another mapping may
                    // still write it).
                    Backing::File { mem, off } if v.shared => {
                        let p0 = off / PAGE_SIZE;
                        let _ = mem.writeback(p0, p0 + (v.end - v.start) / PAGE_SIZE, false);
                    }
                    _ => {}
                }
            }
            self.remove_range(addr, end);
        }
        Ok(())
    }

    /// Private mappings of host files that share the file's pages
    /// (read-only ones, see the module doc of `syscalls::mm`) in
    /// `[start, end)` get their own copy of those pages, as a write to a
    /// private mapping gets one on Linux: before mprotect adds PROT_WRITE
    /// and before the kernel patches a syscall site in them. The range is
    /// split out of larger VMAs, so only it is copied.
    pub fn privatize(&mut self, p: &mut dyn Platform, start: u64, end: u64) -> SysResult<()> {
        let needs = self
            .overlapping(start, end)
            .any(|v| !v.shared && matches!(v.backing, Backing::File { .. }));
        if !needs {
            return Ok(());
        }
        self.split_at(start);
        self.split_at(end);
        let mut ops = Vec::new();
        for (_, v) in self.vmas.range_mut(start..end) {
            let Backing::File { mem, off } = &v.backing else {
                continue;
            };
            if v.shared {
                continue;
            }
            let (mem, off) = (mem.clone(), *off);
            let len = v.end - v.start;
            let chunk = self.mf.alloc(len)?;
            let n = v.in_file_len();
            if n > 0 {
                // SAFETY: the first n bytes of the new chunk, in the kernel's mapping.
                let dst = unsafe { std::slice::from_raw_parts_mut(chunk.ptr(0), n as usize) };
                mem.read_into(dst, off)?;
            }
            v.backing = Backing::Chunk {
                chunk,
                off: 0,
                file: Some((mem, off)),
            };
            // Mapped over the file's pages in one step (MAP_FIXED
            // replaces): another thread running this code meanwhile never
            // finds the range empty. Past the end of the file nothing was
            // mapped and nothing is.
            ops.extend(Self::present_ops(v, v.start, v.end)?);
        }
        self.apply(p, &ops)
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
        for (_, v) in self.vmas.range(self.first_at(addr)..end) {
            if v.end <= pos {
                continue;
            }
            if v.start > pos {
                return Err(Errno::ENOMEM);
            }
            if prot & libc::PROT_WRITE != 0 && !v.maywrite {
                return Err(Errno::EACCES);
            }
            pos = v.end;
        }
        if pos < end {
            return Err(Errno::ENOMEM);
        }
        self.may_split(addr, end, false)?;
        if prot & libc::PROT_WRITE != 0 {
            self.privatize(p, addr, end)?;
        }
        self.split_at(addr);
        self.split_at(end);
        // Memory of the chunk kind changes protection in place; file pages
        // leave the host and come back on their next touch with the new
        // protection (clean pages of host files without PROT_WRITE).
        let mut ops = Vec::new();
        // Whether every operation opens a range no access could reach on
        // the host (PROT_NONE, mapped or not there).
        let mut opening = true;
        for (_, v) in self.vmas.range_mut(addr..end) {
            let was = std::mem::replace(&mut v.prot, prot);
            match &v.backing {
                // A PROT_NONE range may have nothing on the host (see
                // `map`): mapped now, with its new protection.
                Backing::Chunk { .. } if was == libc::PROT_NONE && prot != libc::PROT_NONE => {
                    ops.extend(Self::present_ops(v, v.start, v.end)?);
                }
                Backing::Chunk { .. } => {
                    opening = false;
                    let e = v.start + v.in_file_len();
                    if e > v.start {
                        ops.push(MapOp::Protect {
                            addr: v.start,
                            len: e - v.start,
                            prot,
                        });
                    }
                }
                Backing::File { .. } => {
                    opening = false;
                    ops.push(MapOp::Unmap {
                        addr: v.start,
                        len: v.end - v.start,
                    });
                    ops.extend(Self::present_ops(v, v.start, v.end)?);
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        if opening {
            // Until these are made, every access there faults on the host
            // as it did before: the platform may defer them (see `map`).
            p.apply_fresh(self.space, &ops)
                .map_err(|e| Errno::from_io(&e))?;
        } else {
            p.apply(self.space, &ops).map_err(|e| Errno::from_io(&e))?;
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
                    maywrite: true,
                    backing: Backing::Chunk {
                        chunk: heap,
                        off: old_end - self.brk_start,
                        file: None,
                    },
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

    /// mremap(2), as Linux's: shrinking unmaps the tail (always allowed,
    /// whatever is mapped there); growing extends in place when the range
    /// ends its mapping and the space after is free, else moves it (with
    /// MREMAP_MAYMOVE) to a free range or to `how.fixed`; MREMAP_DONTUNMAP
    /// leaves the old range mapped, as if just mapped. Private memory
    /// moves into a new chunk; shared memory (a file's pages, shared
    /// anonymous memory) keeps its pages, only its addresses change. An
    /// old length of 0 maps the same shared pages once more.
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
        // The old address must be mapped, also for a shrink (Linux 6's
        // vma_lookup before anything): nothing outside the workload's
        // address space is touched.
        if self.find(old).is_none() {
            return Err(Errno::EFAULT);
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
            // Room for what the unmaps may split, before anything goes
            // (Linux's mremap_to).
            if self.vmas.len() + 2 >= max_map_count() - 3 {
                return Err(Errno::ENOMEM);
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
        let v = self.find(old).cloned().ok_or(Errno::EFAULT)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        // The old range lies in one VMA (Linux's vma_to_resize).
        if old_end > v.end {
            return Err(Errno::EFAULT);
        }
        if old_len == 0 && !v.shared {
            // Only a shared mapping can be duplicated this way.
            return Err(Errno::EINVAL);
        }
        // A private copy of a file does not stay behind (Linux 6: EINVAL).
        if how.dont_unmap && !v.shared && v.backing.file().is_some() {
            return Err(Errno::EINVAL);
        }
        let grow = new_len - old_len;
        let in_place = how.fixed.is_none()
            && !how.dont_unmap
            && old_len > 0
            && old_end.checked_add(grow).is_some_and(|e| e <= USER_END)
            && !self.overlaps(old_end, old_end + grow);
        if !in_place && !how.may_move {
            return Err(Errno::ENOMEM);
        }
        // A move may split the old VMA in three (Linux's move_vma).
        if !in_place && self.vmas.len() >= max_map_count() - 3 {
            return Err(Errno::ENOMEM);
        }
        let target = match how.fixed {
            Some(t) => t,
            None if in_place => old,
            None => self.find_free(0, new_len).ok_or(Errno::ENOMEM)?,
        };
        let at = old - v.start;
        // The new range's memory: `keep` bytes from the old backing, the
        // rest (a shared anonymous object grown past its end) fresh.
        let (backing, keep) = match &v.backing {
            Backing::File { mem, off } => (
                Backing::File {
                    mem: mem.clone(),
                    off: off + at,
                },
                new_len,
            ),
            Backing::Chunk { chunk, off, .. } if v.shared => {
                let o = off + at;
                let room = page_down(chunk.len.saturating_sub(o));
                (
                    Backing::Chunk {
                        chunk: chunk.clone(),
                        off: o,
                        file: None,
                    },
                    new_len.min(room),
                )
            }
            Backing::Chunk { chunk, off, file } => {
                let c = self.mf.alloc(new_len)?;
                self.mf
                    .copy_populated(chunk.offset + off + at, c.offset, old_len);
                // A private copy of a file grows by the file's next bytes
                // (up to its end; past it the pages raise SIGBUS).
                if let Some((m, fo)) = file {
                    // SAFETY: bytes [old_len, new_len) of the new chunk.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(c.ptr(old_len), (new_len - old_len) as usize)
                    };
                    m.read_into(dst, fo + at + old_len)?;
                }
                (
                    Backing::Chunk {
                        chunk: c,
                        off: 0,
                        file: file.as_ref().map(|(m, fo)| (m.clone(), fo + at)),
                    },
                    new_len,
                )
            }
        };
        let mut name = v.name.clone();
        if let VmaName::File { offset, .. } = &mut name {
            *offset += at;
        }
        if !in_place && old_len > 0 && !how.dont_unmap {
            self.unmap(p, old, old_len)?;
        }
        let req = |addr, len, backing, name| MapRequest {
            addr,
            len,
            prot: v.prot,
            shared: v.shared,
            fixed: true,
            noreplace: false,
            maywrite: v.maywrite,
            backing,
            name,
        };
        self.map(p, req(target, keep, backing, name.clone()))?;
        if keep < new_len {
            // Past a shared anonymous object's end (a shmem file in Linux)
            // every touch raises SIGBUS: pages of an empty file, never
            // mapped in (see `fault`).
            let past = Backing::Chunk {
                chunk: self.mf.alloc(new_len - keep)?,
                off: 0,
                file: Some((FileMem::new_memory(&self.mf), 0)),
            };
            self.map(p, req(target + keep, new_len - keep, past, name))?;
        }
        if how.dont_unmap && !v.shared {
            // The old range stays mapped, its pages gone with the move:
            // private anonymous memory reads as zeros (a shared mapping
            // still shows its object).
            self.dont_need(old, old_len)?;
        }
        Ok(target)
    }

    /// Whether every page of `[start, end)` belongs to a VMA.
    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut pos = start;
        for (_, v) in self.vmas.range(self.first_at(start)..end) {
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

    /// madvise(MADV_DONTFORK and friends): `f` on the VMAs in `[start, end)`
    /// (split at the edges).
    pub fn set_fork_policy(&mut self, start: u64, end: u64, f: impl Fn(&mut Vma)) -> SysResult<()> {
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            f(v);
        }
        Ok(())
    }

    /// madvise(MADV_DONTNEED): private pages read back as zeros (shared
    /// ones keep their contents, as on Linux). Like Linux, the mapped parts
    /// are done and a hole in the range is ENOMEM.
    pub fn dont_need(&mut self, addr: u64, len: u64) -> SysResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(page_up(len).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        for (_, v) in self.vmas.range(self.first_at(addr)..end) {
            if v.end <= addr {
                continue;
            }
            let s = addr.max(v.start);
            let e = end.min(v.end);
            if let Backing::Chunk { chunk, off, file } = &v.backing
                && !v.shared
            {
                // Private memory belongs to this VMA alone (fork copies it).
                chunk.discard(off + (s - v.start), e - s);
                // A private copy of a file reads the file again.
                if let Some((mem, fo)) = file {
                    // SAFETY: [s, e) of the VMA's chunk, in the kernel's mapping.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            chunk.ptr(off + (s - v.start)),
                            (e - s) as usize,
                        )
                    };
                    let _ = mem.read_into(dst, fo + (s - v.start));
                }
            }
        }
        if self.fully_mapped(addr, end) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// madvise(MADV_REMOVE): the file range of a shared mapping becomes a
    /// hole (zeros) for every mapping of it.
    pub fn remove_pages(&mut self, addr: u64, len: u64) -> SysResult<()> {
        let end = addr
            .checked_add(page_up(len).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        for (_, v) in self.vmas.range(self.first_at(addr)..end) {
            if v.end <= addr {
                continue;
            }
            let s = addr.max(v.start);
            let e = end.min(v.end);
            match &v.backing {
                Backing::File { mem, off } if !mem.is_host() => {
                    mem.zero_range(off + (s - v.start), e - s)
                }
                Backing::Chunk { chunk, off, .. } => chunk.discard(off + (s - v.start), e - s),
                _ => return Err(Errno::EOPNOTSUPP),
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
        if let Err(e) = self.copy_into(&mut child, p) {
            // Its stub process goes before its memory (see `release`).
            let space = child.space;
            p.drop_space(space);
            drop(child);
            return Err(e);
        }
        Ok(child)
    }

    /// The rest of `fork`: `child` gets a copy of this space.
    fn copy_into(&self, child: &mut AddressSpace, p: &mut dyn Platform) -> std::io::Result<()> {
        child.mmap_top = self.mmap_top;
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.stack_top = self.stack_top;
        child.usertrap = self.usertrap;
        let mut ops = Vec::with_capacity(self.vmas.len());
        let mut heap_copy: Option<Rc<Chunk>> = None;
        for v in self.vmas.values() {
            if v.dontfork {
                continue;
            }
            let mut nv = v.clone();
            if v.wipeonfork {
                // A fresh zeroed copy.
                nv.backing = Backing::anon(self.mf.alloc(v.end - v.start)?);
            } else if let Backing::Chunk { chunk, off, file } = &v.backing
                && !v.shared
            {
                let src = chunk.offset + off;
                let is_heap = self.heap.as_ref().is_some_and(|h| Rc::ptr_eq(h, chunk));
                let (c, coff) = if is_heap {
                    let h = match &heap_copy {
                        Some(h) => h.clone(),
                        None => {
                            let h = self.mf.alloc(HEAP_MAX)?;
                            heap_copy = Some(h.clone());
                            h
                        }
                    };
                    (h, *off)
                } else {
                    (self.mf.alloc(v.end - v.start)?, 0)
                };
                self.mf
                    .copy_populated(src, c.offset + coff, v.end - v.start);
                nv.backing = Backing::Chunk {
                    chunk: c,
                    off: coff,
                    file: file.clone(),
                };
            }
            ops.extend(
                Self::present_ops(&nv, nv.start, nv.end)
                    .map_err(|e| std::io::Error::from_raw_os_error(e.0))?,
            );
            child.vmas.insert(nv.start, nv);
        }
        child.heap = heap_copy;
        // A new space: nothing of it is mapped on the host yet.
        if !ops.is_empty() {
            p.apply_fresh(child.space, &ops)?;
        }
        Ok(())
    }

    /// A fault of workload code at `addr` (`maperr`: nothing mapped there,
    /// else a protection fault). File pages are brought in here: the
    /// first touch of a file page maps it (a window around it), the first
    /// write to a clean page of a host file makes it dirty and writable.
    /// `retried`: the same thread faulted at the same address last time
    /// and was told to retry (a protection fault on a page already dirty
    /// can be a race between two threads writing it, once; twice it is a
    /// real fault).
    pub fn fault(&mut self, p: &mut dyn Platform, addr: u64, maperr: bool, retried: bool) -> Fault {
        let Some(v) = self.find(addr) else {
            return Fault::NotMine;
        };
        if v.prot == libc::PROT_NONE {
            return Fault::NotMine;
        }
        let page_addr = page_down(addr);
        let (mem, fo_start) = match &v.backing {
            Backing::File { mem, off } => (mem.clone(), *off),
            Backing::Chunk {
                file: Some((m, fo)),
                ..
            } if maperr => (m.clone(), *fo),
            _ => return Fault::NotMine,
        };
        let fo = fo_start + (page_addr - v.start);
        let mut eof = page_up(mem.size()).unwrap_or(u64::MAX);
        if fo >= eof {
            // The file may have grown behind our back (another descriptor).
            eof = page_up(mem.refresh_size()).unwrap_or(u64::MAX);
            if fo >= eof {
                return Fault::SigBus;
            }
        }
        let v = v.clone();
        let ops = match (&v.backing, maperr) {
            (Backing::File { .. }, true) => {
                // A window around the page: the whole mapping for
                // in-memory files (nothing to read), 64 pages for host files.
                let (ws, we) = if mem.is_host() {
                    let w = 64 * PAGE_SIZE;
                    let ws = (page_addr & !(w - 1)).max(v.start);
                    (ws, (ws + w).min(v.end))
                } else {
                    (v.start, v.end)
                };
                let we = we.min(v.start + (eof - fo_start.min(eof)));
                match mem.map_ops(ws, fo_start + (ws - v.start), we - ws, v.prot) {
                    Ok(ops) => ops,
                    Err(_) => return Fault::SigBus,
                }
            }
            (Backing::File { .. }, false) => {
                if v.prot & libc::PROT_WRITE == 0 || !mem.is_host() {
                    return Fault::NotMine;
                }
                if !mem.mark_dirty(fo / PAGE_SIZE) && retried {
                    return Fault::NotMine;
                }
                vec![MapOp::Protect {
                    addr: page_addr,
                    len: PAGE_SIZE,
                    prot: v.prot,
                }]
            }
            (Backing::Chunk { chunk, off, .. }, _) => {
                // A private mapping's page that was past the end of the
                // file when mapped (or truncated away): a fresh copy.
                let dst = chunk.ptr(off + (page_addr - v.start));
                // SAFETY: one page of the VMA's chunk in the kernel's mapping.
                let page = unsafe { std::slice::from_raw_parts_mut(dst, PAGE_SIZE as usize) };
                match mem.read_into(page, fo) {
                    Ok(n) => page[n..].fill(0),
                    Err(_) => return Fault::SigBus,
                }
                vec![MapOp::Map {
                    addr: page_addr,
                    len: PAGE_SIZE,
                    prot: v.prot,
                    offset: chunk.offset + off + (page_addr - v.start),
                }]
            }
        };
        match self.apply(p, &ops) {
            Ok(()) => Fault::Handled,
            Err(_) => Fault::NotMine,
        }
    }

    /// Pages of `mem` from `from_page` on were truncated away: unmap them
    /// from every VMA of this space that maps them, shared or private
    /// (Linux discards even private copies of truncated pages).
    ///
    /// Err: the host refused to unmap (see [`Kernel::apply_invalidations`]
    /// for what then becomes of the processes of this space).
    ///
    /// [`Kernel::apply_invalidations`]: crate::kernel::Kernel::apply_invalidations
    pub fn invalidate(
        &mut self,
        p: &mut dyn Platform,
        mem: &Rc<FileMem>,
        from_page: u64,
    ) -> SysResult<()> {
        let mut ops = Vec::new();
        for v in self.vmas.values() {
            let fo = match &v.backing {
                Backing::File { mem: m, off } if Rc::ptr_eq(m, mem) => *off,
                Backing::Chunk {
                    file: Some((m, fo)),
                    ..
                } if Rc::ptr_eq(m, mem) => *fo,
                _ => continue,
            };
            let cut = from_page * PAGE_SIZE;
            let s = if cut > fo {
                v.start.saturating_add(cut - fo)
            } else {
                v.start
            };
            if s >= v.end {
                continue;
            }
            if let Backing::Chunk { chunk, off, .. } = &v.backing {
                chunk.discard(off + (s - v.start), v.end - s);
            }
            ops.push(MapOp::Unmap {
                addr: s,
                len: v.end - s,
            });
        }
        self.apply(p, &ops)
    }

    /// Unmaps the dirty pages of `mem` inside file pages `[p0, p1)` from
    /// this space, so that the next write to them faults (before a
    /// write-back that forgets they were dirty).
    ///
    /// Err: the host refused (a hole in a mapping takes a host VMA more,
    /// and a stub can be at the host's `max_map_count`).
    pub fn write_protect(
        &mut self,
        p: &mut dyn Platform,
        mem: &Rc<FileMem>,
        p0: u64,
        p1: u64,
    ) -> SysResult<()> {
        let mut ops = Vec::new();
        for v in self.vmas.values() {
            let Backing::File { mem: m, off } = &v.backing else {
                continue;
            };
            if !Rc::ptr_eq(m, mem) || v.prot & libc::PROT_WRITE == 0 {
                continue;
            }
            let vp0 = off / PAGE_SIZE;
            let vp1 = vp0 + (v.end - v.start) / PAGE_SIZE;
            for (d0, d1) in mem.dirty_runs(p0.max(vp0), p1.min(vp1)) {
                ops.push(MapOp::Unmap {
                    addr: v.start + (d0 - vp0) * PAGE_SIZE,
                    len: (d1 - d0) * PAGE_SIZE,
                });
            }
        }
        self.apply(p, &ops)
    }

    /// Removes every mapping (exec reuses nothing of the old image).
    pub fn release(self, p: &mut dyn Platform) {
        p.drop_space(self.space);
    }

    /// Whether every byte of `[addr, addr+len)` is mapped.
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len)
            .is_some_and(|end| self.fully_mapped(addr, end))
    }

    /// Resident-ish size for /proc: bytes mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.vmas.values().map(|v| v.end - v.start).sum()
    }

    /// The memory-file ranges of this space's private and anonymous
    /// memory (offset, length), for per-container accounting.
    pub fn private_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.vmas.values().filter_map(|v| match &v.backing {
            Backing::Chunk { chunk, off, .. } => Some((chunk.offset + off, v.end - v.start)),
            Backing::File { .. } => None,
        })
    }

    /// Bytes of "data" (RLIMIT_DATA's: private, writable, not the stack).
    pub fn data_bytes(&self) -> u64 {
        self.vmas
            .values()
            .filter(|v| is_data(v))
            .map(|v| v.end - v.start)
            .sum()
    }

    /// Where a walk up from `addr` starts: the VMA containing it or the
    /// one below (a walk from the lowest VMA would pass every one below:
    /// a process can have tens of thousands).
    fn first_at(&self, addr: u64) -> u64 {
        self.vmas
            .range(..=addr)
            .next_back()
            .map_or(addr, |(&k, _)| k)
    }

    /// The VMAs that overlap `[start, end)`, in address order.
    pub fn vmas_in(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        self.vmas
            .range(self.first_at(start)..end.max(start))
            .map(|(_, v)| v)
            .filter(move |v| v.end > start)
    }

    /// The VMAs that overlap `[start, end)`, from the highest down (a
    /// walk of those alone: a process can have tens of thousands).
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        self.vmas
            .range(..end)
            .rev()
            .map(|(_, v)| v)
            .take_while(move |v| v.end > start)
    }

    /// Bytes already mapped in `[start, end)`, and how many of them are
    /// data (what a MAP_FIXED mapping there replaces).
    pub fn mapped_in(&self, start: u64, end: u64) -> (u64, u64) {
        let (mut total, mut data) = (0, 0);
        for v in self.overlapping(start, end) {
            let (s, e) = (v.start.max(start), v.end.min(end));
            if s < e {
                total += e - s;
                if is_data(v) {
                    data += e - s;
                }
            }
        }
        (total, data)
    }

    /// What mprotect(`prot`) of `[start, end)` adds: bytes becoming data,
    /// and bytes of reservations (PROT_NONE) becoming usable memory.
    pub fn protect_growth(&self, start: u64, end: u64, prot: i32) -> (u64, u64) {
        let (mut data, mut commit) = (0, 0);
        for v in self.overlapping(start, end) {
            let (s, e) = (v.start.max(start), v.end.min(end));
            if s >= e || v.shared {
                continue;
            }
            if prot & libc::PROT_WRITE != 0 && !is_data(v) && v.name != VmaName::Stack {
                data += e - s;
            }
            if v.prot == libc::PROT_NONE && prot != libc::PROT_NONE {
                commit += e - s;
            }
        }
        (data, commit)
    }
}

/// RLIMIT_DATA counts private writable memory that is not the stack.
fn is_data(v: &Vma) -> bool {
    v.prot & libc::PROT_WRITE != 0 && !v.shared && v.name != VmaName::Stack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Regs;
    use crate::platform::{FpuState, Stop, ThreadId};
    use std::os::fd::RawFd;

    /// A platform that accepts every mapping change and runs nothing.
    struct Accepting;

    impl Platform for Accepting {
        fn new_space(&mut self) -> std::io::Result<SpaceId> {
            Ok(1)
        }
        fn drop_space(&mut self, _: SpaceId) {}
        fn apply(&mut self, _: SpaceId, ops: &[MapOp]) -> std::io::Result<Vec<i64>> {
            Ok(vec![0; ops.len()])
        }
        fn new_thread(&mut self, _: SpaceId) -> std::io::Result<ThreadId> {
            unimplemented!()
        }
        fn drop_thread(&mut self, _: ThreadId) {}
        fn get_regs(&mut self, _: ThreadId) -> std::io::Result<Regs> {
            unimplemented!()
        }
        fn set_regs(&mut self, _: ThreadId, _: &Regs) -> std::io::Result<()> {
            unimplemented!()
        }
        fn get_fpu(&mut self, _: ThreadId) -> std::io::Result<FpuState> {
            unimplemented!()
        }
        fn set_fpu(&mut self, _: ThreadId, _: &FpuState) -> std::io::Result<()> {
            unimplemented!()
        }
        fn resume(&mut self, _: ThreadId) -> std::io::Result<()> {
            unimplemented!()
        }
        fn interrupt(&mut self, _: ThreadId) {}
        fn stop_now(&mut self, _: ThreadId) {}
        fn poll_stop(&mut self) -> Option<(ThreadId, Stop)> {
            None
        }
        fn wakeup_fds(&self) -> Vec<RawFd> {
            Vec::new()
        }
        fn take_foreign_exits(&mut self) -> Vec<(i32, i32)> {
            Vec::new()
        }
    }

    /// Where a walk of every VMA down from `mmap_top` puts `len` bytes
    /// (what `find_free` did before it had a cache).
    fn walk_from_the_top(mm: &AddressSpace, len: u64) -> Option<u64> {
        let mut top = mm.mmap_top;
        for v in mm.vmas().collect::<Vec<_>>().into_iter().rev() {
            if v.start >= mm.mmap_top {
                continue;
            }
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        (top >= USER_START + len).then(|| top - len)
    }

    #[test]
    fn the_free_range_cache_places_mappings_as_a_walk_from_the_top() {
        let mut p = Accepting;
        let mut mm = AddressSpace::new(&mut p, MemoryFile::create(1 << 20).unwrap()).unwrap();
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        // Mappings of 1-8 pages; now and then one goes whole, or a page
        // of one (a hole, a trimmed end), so gaps open above and below
        // where searches resume.
        let mut mapped: Vec<(u64, u64)> = Vec::new();
        for _ in 0..4000 {
            let r = next();
            if r.is_multiple_of(5) && !mapped.is_empty() {
                let (a, l) = mapped.swap_remove((r >> 8) as usize % mapped.len());
                let pages = l / PAGE_SIZE;
                let cut = (r >> 20) % pages;
                if r.is_multiple_of(3) || pages == 1 {
                    mm.unmap(&mut p, a, l).unwrap();
                } else {
                    let at = a + cut * PAGE_SIZE;
                    mm.unmap(&mut p, at, PAGE_SIZE).unwrap();
                    if at > a {
                        mapped.push((a, at - a));
                    }
                    if at + PAGE_SIZE < a + l {
                        mapped.push((at + PAGE_SIZE, a + l - at - PAGE_SIZE));
                    }
                }
                continue;
            }
            let len = PAGE_SIZE * (1 + (r >> 16) % 8);
            let want = walk_from_the_top(&mm, len).unwrap();
            let got = mm
                .map_anon(&mut p, 0, len, libc::PROT_READ, false, VmaName::Anon)
                .unwrap();
            assert_eq!(got, want, "{len} bytes");
            mapped.push((got, len));
        }
    }

    #[test]
    fn the_map_limit_follows_the_hosts() {
        assert_eq!(map_limit_for_host(65_530), 57_338);
        assert_eq!(map_limit_for_host(262_144), 253_952);
        // A host set below twice what the stub needs: half of it.
        assert_eq!(map_limit_for_host(10_000), 5_000);
        assert_eq!(map_limit_for_host(100), 1_024);
    }

    #[test]
    fn splits_past_the_map_limit_are_enomem() {
        let mut p = Accepting;
        let mut mm = AddressSpace::new(&mut p, MemoryFile::create(1 << 20).unwrap()).unwrap();
        let three = mm
            .map_anon(
                &mut p,
                0,
                3 * PAGE_SIZE,
                libc::PROT_READ,
                false,
                VmaName::Anon,
            )
            .unwrap();
        while mm.vmas.len() < max_map_count() {
            mm.map_anon(&mut p, 0, PAGE_SIZE, libc::PROT_READ, false, VmaName::Anon)
                .unwrap();
        }
        let one = |mm: &mut AddressSpace, p: &mut Accepting| {
            mm.map_anon(p, 0, PAGE_SIZE, libc::PROT_READ, false, VmaName::Anon)
        };
        assert_eq!(one(&mut mm, &mut p), Err(Errno::ENOMEM));
        let mid = three + PAGE_SIZE;
        assert_eq!(
            mm.protect(&mut p, mid, PAGE_SIZE, libc::PROT_NONE),
            Err(Errno::ENOMEM)
        );
        assert_eq!(mm.unmap(&mut p, mid, PAGE_SIZE), Err(Errno::ENOMEM));
        // Trimming an end takes no VMA more; the whole range, none at all.
        assert_eq!(mm.unmap(&mut p, three, PAGE_SIZE), Ok(()));
        assert_eq!(
            mm.protect(&mut p, mid, 2 * PAGE_SIZE, libc::PROT_NONE),
            Ok(())
        );
        assert_eq!(mm.vmas.len(), max_map_count());
        assert_eq!(mm.unmap(&mut p, mid, 2 * PAGE_SIZE), Ok(()));
        assert!(one(&mut mm, &mut p).is_ok());
        // A move needs the count below the limit less three (room for
        // the splits of its unmaps) first, as on Linux.
        let grow = Remap {
            may_move: true,
            ..Remap::default()
        };
        let last = one(&mut mm, &mut p).map(|_| ()).err();
        assert_eq!(last, Some(Errno::ENOMEM));
        // A page that cannot grow where it is (its next page is mapped).
        let boxed_in = |mm: &AddressSpace| {
            mm.vmas()
                .find(|v| v.end - v.start == PAGE_SIZE && mm.find(v.end).is_some())
                .unwrap()
                .start
        };
        let at = boxed_in(&mm);
        assert_eq!(
            mm.remap(&mut p, at, PAGE_SIZE, 2 * PAGE_SIZE, grow),
            Err(Errno::ENOMEM)
        );
        for _ in 0..4 {
            let v = mm.vmas().last().unwrap().start;
            mm.unmap(&mut p, v, PAGE_SIZE).unwrap();
        }
        let at = boxed_in(&mm);
        assert!(mm.remap(&mut p, at, PAGE_SIZE, 2 * PAGE_SIZE, grow).is_ok());
    }
}
