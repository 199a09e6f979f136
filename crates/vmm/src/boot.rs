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
