//! Linux's x86 64-bit boot protocol, Firecracker style: the uncompressed
//! `vmlinux` ELF is copied to its physical load address and entered in
//! long mode with `%rsi` pointing at the zero page, which carries the
//! command line, the initramfs and the memory map.

use std::fs::File;

use anyhow::{Context, Result, anyhow, bail};
use linux_loader::loader::{KernelLoader, bootparam::boot_params, elf::Elf};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryRegion, ReadVolatile};

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

/// Loads the kernel and initramfs and writes the command line and zero page.
pub fn load(mem: &Mem, kernel: &mut File, initrd: &mut File, cmdline: &str) -> Result<Loaded> {
    let k = Elf::load(mem, None, kernel, Some(GuestAddress(HIMEM_START)))
        .map_err(|e| anyhow!("guest kernel is not a loadable vmlinux ELF: {e}"))?;
    let entry = k.kernel_load.0;
    let kernel_end = k.kernel_end;

    let size = initrd.metadata().context("guest initramfs")?.len();
    if size == 0 {
        bail!("guest initramfs is empty");
    }
    let top = low_end(mem);
    let initrd_addr = top
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|a| *a >= kernel_end)
        .ok_or_else(|| {
            anyhow!(
                "guest memory is too small: kernel and initramfs need more than {} MiB",
                top >> 20
            )
        })?;
    let mut slice = mem
        .get_slice(GuestAddress(initrd_addr), size as usize)
        .map_err(|e| anyhow!("initramfs placement: {e}"))?;
    initrd
        .read_exact_volatile(&mut slice)
        .map_err(|e| anyhow!("reading guest initramfs: {e}"))?;

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
    Ok(Loaded { entry })
}

/// Checks that `kernel` looks like a bootable x86_64 vmlinux without
/// loading it: an ELF64 executable for x86_64 whose loadable segments lie
/// within the file and contain the entry point. Rewinds the file.
pub fn check_kernel(kernel: &mut File) -> std::result::Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let len = kernel.metadata().map_err(|e| e.to_string())?.len();
    let mut h = [0u8; 64];
    kernel
        .seek(SeekFrom::Start(0))
        .and_then(|_| kernel.read_exact(&mut h))
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
    if phentsize < 56 || phnum == 0 || phoff + phentsize * phnum > len {
        return Err("its program headers are missing or truncated".into());
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    kernel
        .seek(SeekFrom::Start(phoff))
        .and_then(|_| kernel.read_exact(&mut ph))
        .map_err(|e| e.to_string())?;
    let mut entry_found = false;
    let mut loads = 0;
    for i in 0..phnum as usize {
        let p = &ph[i * phentsize as usize..];
        let ty = u32::from_le_bytes(p[..4].try_into().unwrap());
        if ty != 1 {
            continue;
        }
        loads += 1;
        let off = u64::from_le_bytes(p[8..16].try_into().unwrap());
        let paddr = u64::from_le_bytes(p[24..32].try_into().unwrap());
        let filesz = u64::from_le_bytes(p[32..40].try_into().unwrap());
        let memsz = u64::from_le_bytes(p[40..48].try_into().unwrap());
        if off.checked_add(filesz).is_none_or(|end| end > len) {
            return Err("a loadable segment lies beyond the end of the file (truncated?)".into());
        }
        if (paddr..paddr.saturating_add(memsz)).contains(&entry) {
            entry_found = true;
        }
    }
    if loads == 0 || !entry_found {
        return Err("its entry point is not in a loadable segment".into());
    }
    kernel.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
