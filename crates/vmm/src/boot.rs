//! Linux's x86 64-bit boot protocol, Firecracker style: the uncompressed
//! `vmlinux` ELF is placed at its physical load address and entered in
//! long mode with `%rsi` pointing at the zero page, which carries the
//! command line, the initramfs and the memory map.
//!
//! Only the kernel's loadable segments are read, and of them only what
//! the file holds as data: `scripts/vm-assets.sh` punches holes where the
//! image is zero (its .bss, scratch space, padding: 15 of its 45 MB),
//! and guest RAM is zero already. (Mapping the files into guest RAM
//! instead, private and copy-on-write, made no copy at all, but cost the
//! guest more than it saved: measured in the test VM, its every first
//! touch of a page became a 4 KiB fault of a file mapping, where the
//! copy leaves 2 MiB huge pages of anonymous memory behind.)

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, anyhow, bail};
use linux_loader::loader::bootparam::boot_params;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryRegion};

use crate::layout::*;
use crate::memory::{Mem, low_end};

const E820_RAM: u32 = 1;
const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT_BYTES: u32 = 0x0100_0000;

/// Where the kernel was put.
pub struct Loaded {
    /// Physical address of the 64-bit entry point.
    pub entry: u64,
}

/// A loadable segment of the kernel's ELF.
struct Segment {
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// The parts of a vmlinux the loader needs.
struct Vmlinux {
    entry: u64,
    segments: Vec<Segment>,
}

/// Parses `kernel` as a bootable x86_64 vmlinux: an ELF64 executable for
/// x86_64 whose loadable segments lie within the file and contain the
/// entry point.
fn parse(kernel: &File) -> std::result::Result<Vmlinux, String> {
    let len = kernel.metadata().map_err(|e| e.to_string())?.len();
    let mut h = [0u8; 64];
    kernel
        .read_exact_at(&mut h, 0)
        .map_err(|_| "not an ELF file (too short)".to_string())?;
    if &h[..4] != b"\x7fELF" {
        return Err("not an ELF file (a vmlinux is needed, not a bzImage)".into());
    }
    if h[4] != 2 || h[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let u16_ = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let u64_ = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    if u16_(16) != 2 || u16_(18) != 0x3e {
        return Err("not an x86_64 executable".into());
    }
    let entry = u64_(24);
    let phoff = u64_(32);
    let phentsize = u64::from(u16_(54));
    let phnum = u64::from(u16_(56));
    if phentsize < 56 || phnum == 0 || phoff.saturating_add(phentsize * phnum) > len {
        return Err("its program headers are missing or truncated".into());
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    kernel
        .read_exact_at(&mut ph, phoff)
        .map_err(|e| e.to_string())?;
    let mut segments = Vec::new();
    for i in 0..phnum as usize {
        let p = &ph[i * phentsize as usize..];
        let field = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap());
        if u32::from_le_bytes(p[..4].try_into().unwrap()) != 1 {
            continue; // not PT_LOAD
        }
        let s = Segment {
            offset: field(8),
            paddr: field(24),
            filesz: field(32),
            memsz: field(40),
        };
        if s.offset.checked_add(s.filesz).is_none_or(|end| end > len) {
            return Err("a loadable segment lies beyond the end of the file (truncated?)".into());
        }
        if s.filesz > s.memsz || s.paddr.checked_add(s.memsz).is_none() {
            return Err("a loadable segment's sizes are inconsistent".into());
        }
        segments.push(s);
    }
    if !segments
        .iter()
        .any(|s| (s.paddr..s.paddr + s.memsz).contains(&entry))
    {
        return Err("its entry point is not in a loadable segment".into());
    }
    Ok(Vmlinux { entry, segments })
}

/// A piece of a file to copy into guest RAM.
struct Piece<'a> {
    file: &'a File,
    at: u64,
    /// Where it goes: a host address in guest RAM.
    host: usize,
    len: usize,
}

/// Pieces of at most this size, aligned on it in guest RAM: a huge page
/// is filled by one thread.
const PIECE: u64 = 2 << 20;

/// Adds the pieces that copy `len` bytes of `file` from `offset` to guest
/// address `gpa`, skipping the file's holes (SEEK_DATA/SEEK_HOLE): guest
/// RAM is fresh anonymous memory, zero already. The range must lie in
/// one RAM region.
fn pieces<'a>(
    mem: &Mem,
    file: &'a File,
    offset: u64,
    gpa: u64,
    len: u64,
    out: &mut Vec<Piece<'a>>,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let slice = mem
        .get_slice(GuestAddress(gpa), len as usize)
        .map_err(|e| anyhow!("{len} bytes at guest address {gpa:#x}: {e}"))?;
    let host = slice.ptr_guard_mut().as_ptr() as usize;
    let end = offset + len;
    let mut at = offset;
    while let Some((data, hole)) = data_extent(file, at, end) {
        let mut p = data;
        while p < hole {
            let g = gpa + (p - offset);
            let next = ((g / PIECE + 1) * PIECE - gpa + offset).min(hole);
            out.push(Piece {
                file,
                at: p,
                host: host + (p - offset) as usize,
                len: (next - p) as usize,
            });
            p = next;
        }
        at = hole;
    }
    Ok(())
}

/// Copies the pieces, on as many threads as the host has CPUs for this
/// process (at most 4): under the test VM's emulation a boot's copy of
/// the kernel took 0.5-2.7 s on one.
fn copy(pieces: &[Piece]) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(pieces.len().max(1));
    let run = |part: &[Piece]| -> Result<()> {
        for p in part {
            // SAFETY: each piece lies in guest RAM (checked by pieces()),
            // mapped by this process and not yet used by the guest, which
            // has not run; pieces do not overlap.
            let buf = unsafe { std::slice::from_raw_parts_mut(p.host as *mut u8, p.len) };
            p.file
                .read_exact_at(buf, p.at)
                .map_err(|e| anyhow!("reading {} bytes at file offset {}: {e}", p.len, p.at))?;
        }
        Ok(())
    };
    let per = pieces.len().div_ceil(threads);
    std::thread::scope(|sc| {
        let handles: Vec<_> = pieces
            .chunks(per.max(1))
            .skip(1)
            .map(|part| sc.spawn(move || run(part)))
            .collect();
        let first = run(&pieces[..per.min(pieces.len())]);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a loader thread panicked")))
            })
            .fold(first, |acc, r| acc.and(r))
    })
}

/// The next range of `file` at or after `at` (and before `end`) that
/// holds data, or None if the rest is a hole. A file system that cannot
/// tell has data everywhere.
fn data_extent(file: &File, at: u64, end: u64) -> Option<(u64, u64)> {
    let seek = |from: u64, whence| {
        // SAFETY: lseek on an open descriptor; it only moves the offset,
        // which the loader does not use (it reads with pread).
        let r = unsafe { libc::lseek(file.as_raw_fd(), from as libc::off_t, whence) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    let data = match seek(at, libc::SEEK_DATA) {
        Ok(d) if d >= end => return None,
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return None,
        Err(_) => return Some((at, end)),
    };
    let hole = seek(data, libc::SEEK_HOLE).map_or(end, |h| h.min(end));
    Some((data, hole))
}

/// Loads the kernel and initramfs and writes the command line and zero page.
pub fn load(mem: &Mem, kernel: &File, initrd: &File, cmdline: &str) -> Result<Loaded> {
    let k =
        parse(kernel).map_err(|e| anyhow!("guest kernel is not a loadable vmlinux ELF: {e}"))?;
    let top = low_end(mem);
    let too_small = || {
        anyhow!(
            "guest memory is too small: kernel and initramfs need more than {} MiB",
            top >> 20
        )
    };
    let mut kernel_end = 0;
    let mut todo = Vec::new();
    for s in &k.segments {
        if s.paddr < HIMEM_START {
            bail!(
                "guest kernel: a segment would load below 1 MiB ({:#x})",
                s.paddr
            );
        }
        if s.paddr + s.memsz > top {
            return Err(too_small());
        }
        pieces(mem, kernel, s.offset, s.paddr, s.filesz, &mut todo)
            .context("loading the guest kernel")?;
        // (memsz beyond filesz: the RAM around is fresh, hence zero.)
        kernel_end = kernel_end.max(s.paddr + s.memsz);
    }

    let size = initrd.metadata().context("guest initramfs")?.len();
    if size == 0 {
        bail!("guest initramfs is empty");
    }
    let initrd_addr = top
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|a| *a >= kernel_end)
        .ok_or_else(too_small)?;
    pieces(mem, initrd, 0, initrd_addr, size, &mut todo).context("loading the guest initramfs")?;
    copy(&todo).context("loading the guest kernel and initramfs")?;

    if cmdline.len() + 1 > CMDLINE_MAX_SIZE {
        bail!("guest kernel command line is longer than {CMDLINE_MAX_SIZE} bytes");
    }
    let mut c = cmdline.as_bytes().to_vec();
    c.push(0);
    mem.write_slice(&c, GuestAddress(CMDLINE_START))
        .map_err(|e| anyhow!("writing command line: {e}"))?;

    // SAFETY: boot_params is plain old data; all zeroes is its initial state.
    let mut p: boot_params = unsafe { std::mem::zeroed() };
    p.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    p.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    p.hdr.header = KERNEL_HDR_MAGIC;
    p.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT_BYTES;
    p.hdr.cmd_line_ptr = CMDLINE_START as u32;
    p.hdr.cmdline_size = cmdline.len() as u32;
    p.hdr.ramdisk_image = initrd_addr as u32;
    p.hdr.ramdisk_size = size as u32;
    p.acpi_rsdp_addr = ACPI_START;
    let mut n = 0;
    let mut add = |addr: u64, size: u64| {
        p.e820_table[n].addr = addr;
        p.e820_table[n].size = size;
        p.e820_table[n].type_ = E820_RAM;
        n += 1;
    };
    add(0, EBDA_START);
    for r in mem.iter() {
        let (start, end) = (
            r.start_addr().0.max(HIMEM_START),
            r.start_addr().0 + r.len(),
        );
        if end > start {
            add(start, end - start);
        }
    }
    p.e820_entries = n as u8;
    // SAFETY: viewing a plain-old-data struct as bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&p as *const boot_params).cast::<u8>(),
            std::mem::size_of::<boot_params>(),
        )
    };
    mem.write_slice(bytes, GuestAddress(ZERO_PAGE_START))
        .map_err(|e| anyhow!("writing zero page: {e}"))?;
    Ok(Loaded { entry: k.entry })
}

/// Checks that `kernel` looks like a bootable x86_64 vmlinux without
/// loading it: an ELF64 executable for x86_64 whose loadable segments lie
/// within the file and contain the entry point.
pub fn check_kernel(kernel: &mut File) -> std::result::Result<(), String> {
    parse(kernel).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The loader copies a file's data to its guest address, holes and
    /// all: what it skips (holes) reads back as zeros, pieces that cross
    /// a 2 MiB boundary land whole, and the bytes around stay untouched.
    #[test]
    fn pieces_copy_the_data_and_skip_the_holes() {
        use vm_memory::{Bytes, GuestMemoryMmap};
        let mem: Mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 8 << 20)]).unwrap();
        let f = tempfile::tempfile().unwrap();
        // Data, a 1 MiB hole, data across the 2 MiB line of guest RAM.
        let a: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
        let b: Vec<u8> = (0..(3 << 20) as u32).map(|i| (i % 241) as u8 + 1).collect();
        f.write_all_at(&a, 0).unwrap();
        f.write_all_at(&b, 1 << 20).unwrap();
        let len = (1 << 20) + b.len() as u64;
        let gpa = 0x10_0100; // not page-aligned, as a segment's tail may be
        let mut todo = Vec::new();
        pieces(&mem, &f, 0, gpa, len, &mut todo).unwrap();
        assert!(todo.len() > 2, "the data was not split at 2 MiB lines");
        // Where the file system reports the hole, it is not copied (the
        // blocks holding `a` are copied, the hole after them is not).
        let copied: usize = todo.iter().map(|p| p.len).sum();
        if data_extent(&f, 0, len).is_some_and(|(_, hole)| hole < 1 << 20) {
            assert!(
                copied <= a.len().next_multiple_of(4096) + b.len(),
                "the hole was copied: {copied} bytes"
            );
        } else {
            assert_eq!(copied, len as usize);
        }
        copy(&todo).unwrap();
        let mut got = vec![0u8; len as usize];
        mem.read_slice(&mut got, GuestAddress(gpa)).unwrap();
        assert_eq!(&got[..a.len()], &a[..]);
        assert!(got[a.len()..1 << 20].iter().all(|x| *x == 0));
        assert_eq!(&got[1 << 20..], &b[..]);
        let mut around = [1u8; 2];
        mem.read_slice(&mut around[..1], GuestAddress(gpa - 1))
            .unwrap();
        mem.read_slice(&mut around[1..], GuestAddress(gpa + len))
            .unwrap();
        assert_eq!(around, [0, 0]);
        // Beyond guest RAM: refused, nothing copied.
        let mut todo = Vec::new();
        assert!(pieces(&mem, &f, 0, (8 << 20) - 100, len, &mut todo).is_err());
    }

    #[test]
    fn garbage_and_truncated_kernels_are_refused() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"MZ this is a bzImage, not an ELF").unwrap();
        assert!(check_kernel(&mut f).unwrap_err().contains("not an ELF"));
        let mut f = tempfile::tempfile().unwrap();
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 2;
        h[18] = 0x3e;
        h[32] = 64; // phoff
        h[54] = 56; // phentsize
        h[56] = 4; // phnum, but no headers follow
        f.write_all(&h).unwrap();
        assert!(check_kernel(&mut f).unwrap_err().contains("truncated"));
    }
}
