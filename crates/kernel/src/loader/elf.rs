//! ELF64 loading into an address space. Segments are copied from the file
//! into the memory file (page-aligned, so pages shared by two segments
//! hold the same bytes they would in a file mapping), then mapped.

use std::rc::Rc;

use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};
use goblin::elf::{Header, ProgramHeader};

use crate::arch::{PAGE_SIZE, page_down, page_up};
use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::mm::{AddressSpace, Backing, MapRequest, VmaName};
use crate::platform::Platform;
use crate::vfs::{File, IoVecs};

/// Where an ELF image landed.
pub struct Image {
    pub entry: u64,
    pub base: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// End of the highest segment (the heap starts after it).
    pub end: u64,
    pub interp: Option<Vec<u8>>,
    pub exec_stack: bool,
}

/// Reads `len` bytes at `off` from an open file.
pub fn read_at(k: &Kernel, f: &File, off: u64, len: usize) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let iov = IoVecs::from_slice(&mut buf[done..]);
        let n = f.ops.read(k, f, &iov, off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

fn prot_of(flags: u32) -> i32 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= libc::PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= libc::PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= libc::PROT_EXEC;
    }
    p
}

/// Reads the ELF file `f` and prepares its segments for `mm`; the
/// returned requests are then mapped with [`map_image`]. `is_interp`
/// places it anywhere free (the dynamic linker); otherwise a PIE goes to a
/// randomized base near 0x555555554000 and a fixed executable where it says.
pub fn load_elf(
    k: &Kernel,
    mm: &AddressSpace,
    f: &Rc<File>,
    name: &[u8],
    is_interp: bool,
) -> SysResult<(Image, Vec<MapRequest>)> {
    let head = read_at(k, f, 0, 64)?;
    if head.len() < 64 {
        return Err(Errno::ENOEXEC);
    }
    let h: Header = goblin::elf::Elf::parse_header(&head).map_err(|_| Errno::ENOEXEC)?;
    if h.e_machine != EM_X86_64 || (h.e_type != ET_EXEC && h.e_type != ET_DYN) {
        return Err(Errno::ENOEXEC);
    }
    if h.e_phentsize as usize != std::mem::size_of::<goblin::elf64::program_header::ProgramHeader>()
        || h.e_phnum == 0
        || h.e_phnum > 512
    {
        return Err(Errno::ENOEXEC);
    }
    let ph_bytes = read_at(k, f, h.e_phoff, h.e_phnum as usize * h.e_phentsize as usize)?;
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let phdrs =
        ProgramHeader::parse(&ph_bytes, 0, h.e_phnum as usize, ctx).map_err(|_| Errno::ENOEXEC)?;

    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|ph| ph.p_type == PT_LOAD).collect();
    if loads.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let lo = page_down(loads.iter().map(|ph| ph.p_vaddr).min().unwrap());
    let hi = loads
        .iter()
        .map(|ph| ph.p_vaddr.saturating_add(ph.p_memsz))
        .max()
        .unwrap();
    let span = page_up(hi - lo).ok_or(Errno::ENOEXEC)?;

    let base = if h.e_type == ET_DYN {
        let hint = if is_interp {
            0
        } else {
            // Like Linux: 2/3 of the address space, randomized by up to 1 GiB.
            0x5555_5555_4000 + page_down(crate::kernel::random::u64() % (1 << 30))
        };
        let at = mm.find_free(hint, span).ok_or(Errno::ENOMEM)?;
        at - lo
    } else {
        0
    };

    let mut interp = None;
    let mut phdr_addr = 0;
    let mut exec_stack = false;
    for ph in &phdrs {
        match ph.p_type {
            PT_INTERP if !is_interp => {
                if ph.p_filesz == 0 || ph.p_filesz > 4096 {
                    return Err(Errno::ENOEXEC);
                }
                let mut s = read_at(k, f, ph.p_offset, ph.p_filesz as usize)?;
                if let Some(z) = s.iter().position(|b| *b == 0) {
                    s.truncate(z);
                }
                interp = Some(s);
            }
            PT_PHDR => phdr_addr = base + ph.p_vaddr,
            PT_GNU_STACK => exec_stack = ph.p_flags & PF_X != 0,
            _ => {}
        }
    }

    let mf = mm.memory_file().clone();
    let st = f.stat(k)?;
    let host_pages = f.ops.pages(k)?.filter(|m| m.is_host());
    let mut reqs = Vec::with_capacity(loads.len());
    for ph in &loads {
        if ph.p_filesz > ph.p_memsz {
            return Err(Errno::ENOEXEC);
        }
        let vaddr = base.checked_add(ph.p_vaddr).ok_or(Errno::ENOEXEC)?;
        let seg_start = page_down(vaddr);
        let seg_end = vaddr
            .checked_add(ph.p_memsz)
            .and_then(page_up)
            .ok_or(Errno::ENOEXEC)?;
        let lead = vaddr - seg_start;
        if ph.p_offset < lead {
            return Err(Errno::ENOEXEC);
        }
        // File bytes from the start of the page, like a file mapping.
        let file_len = lead + ph.p_filesz;
        let backing = match &host_pages {
            // Text and read-only data of a host file, wholly in the file:
            // its shared pages, as an mmap of it would get (see
            // `syscalls::mm`); the kernel copies a page only to patch it.
            Some(mem)
                if ph.p_flags & PF_W == 0
                    && page_up(file_len).is_some_and(|n| n >= seg_end - seg_start) =>
            {
                Backing::File {
                    mem: mem.clone(),
                    off: ph.p_offset - lead,
                }
            }
            _ => {
                let chunk = mf.alloc(seg_end - seg_start)?;
                match &host_pages {
                    // From the file's page cache, which keeps the bytes
                    // for the next run of the program.
                    Some(mem)
                        if file_len > 0 && file_len <= crate::mm::filemem::COPY_CACHED_MAX =>
                    {
                        mem.copy_to_chunk(ph.p_offset - lead, file_len, &chunk, 0)?;
                    }
                    _ if file_len > 0 => {
                        f.copy_into(k, ph.p_offset - lead, &chunk, 0, file_len)?;
                    }
                    _ => {}
                }
                Backing::anon(chunk)
            }
        };
        reqs.push(MapRequest {
            addr: seg_start,
            len: seg_end - seg_start,
            prot: prot_of(ph.p_flags),
            shared: false,
            fixed: true,
            noreplace: false,
            maywrite: true,
            backing,
            name: VmaName::File {
                path: String::from_utf8_lossy(name).into_owned(),
                offset: page_down(ph.p_offset),
                dev: st.st_dev,
                ino: st.st_ino,
            },
        });
    }
    if phdr_addr == 0 {
        // The program headers sit in the first segment that contains them.
        for ph in &loads {
            if ph.p_offset <= h.e_phoff && h.e_phoff < ph.p_offset + ph.p_filesz {
                phdr_addr = base + ph.p_vaddr + (h.e_phoff - ph.p_offset);
            }
        }
    }
    let _ = PAGE_SIZE;
    Ok((
        Image {
            entry: base + h.e_entry,
            base,
            phdr: phdr_addr,
            phnum: h.e_phnum as u64,
            phent: h.e_phentsize as u64,
            end: base + hi,
            interp,
            exec_stack,
        },
        reqs,
    ))
}

/// Maps the segments prepared by [`load_elf`].
pub fn map_image(
    p: &mut dyn Platform,
    mm: &mut AddressSpace,
    reqs: Vec<MapRequest>,
) -> SysResult<()> {
    for r in reqs {
        mm.map(p, r)?;
    }
    Ok(())
}
