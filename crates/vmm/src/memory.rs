//! Guest RAM: anonymous private mappings of the VMM (so they count against
//! the container's memory cgroup), split around the device hole below
//! 4 GiB.

use anyhow::{Result, anyhow, bail};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{
    GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    mmap::MmapRegionBuilder,
};

use crate::layout::{MMIO_GAP_END, MMIO_GAP_START};

pub type Mem = GuestMemoryMmap<()>;

/// The smallest guest that boots Debian's cloud kernel with atoll's
/// initramfs (measured: 96 MiB panics early, 128 MiB boots).
pub const MIN_MEM_MIB: u64 = 128;

/// Guest RAM ranges for `bytes` of memory.
pub fn ranges(bytes: u64) -> Vec<(GuestAddress, usize)> {
    let low = bytes.min(MMIO_GAP_START);
    let mut r = vec![(GuestAddress(0), low as usize)];
    if bytes > MMIO_GAP_START {
        r.push((
            GuestAddress(MMIO_GAP_END),
            (bytes - MMIO_GAP_START) as usize,
        ));
    }
    r
}

/// Maps the guest's RAM (hand it to KVM with [`register`]).
pub fn create(mem_mib: u64) -> Result<Mem> {
    if mem_mib < MIN_MEM_MIB {
        bail!("guest memory {mem_mib} MiB is too small to boot (at least {MIN_MEM_MIB} MiB)");
    }
    let mut regions = Vec::new();
    for (gpa, len) in ranges(mem_mib << 20) {
        let host = map_aligned(gpa.0, len)
            .map_err(|e| anyhow!("mapping {mem_mib} MiB of guest memory: {e}"))?;
        // SAFETY: `host` is a fresh private anonymous mapping of `len`
        // bytes that this process never unmaps (see map_aligned).
        let region = unsafe {
            MmapRegionBuilder::new(len)
                .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
                .with_mmap_flags(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE)
                .with_raw_mmap_pointer(host)
        }
        .build()
        .map_err(|e| anyhow!("guest memory: {e}"))?;
        regions.push(
            GuestRegionMmap::new(region, gpa).ok_or_else(|| anyhow!("guest memory: bad range"))?,
        );
    }
    GuestMemoryMmap::from_regions(regions).map_err(|e| anyhow!("guest memory: {e}"))
}

/// Hands the guest's RAM to KVM.
pub fn register(vm: &VmFd, mem: &Mem) -> Result<()> {
    for (slot, region) in mem.iter().enumerate() {
        let r = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the region stays mapped for the VM's lifetime (the VMM
        // owns `mem` until it exits).
        unsafe { vm.set_user_memory_region(r) }
            .map_err(|e| anyhow!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
    }
    Ok(())
}

/// Transparent huge pages' size on x86_64.
const HUGE: u64 = 2 << 20;

/// Maps `len` bytes of anonymous private memory for guest RAM at guest
/// address `gpa`, placed so that host and guest addresses agree modulo
/// 2 MiB: where the host backs the memory with transparent huge pages
/// (its policy decides; Debian's is `always`), KVM can then map the
/// guest's RAM with 2 MiB pages of its nested page tables, and a boot
/// faults in a few dozen of them rather than tens of thousands of 4 KiB
/// pages, each an exit to the host kernel (under the test VM's nested
/// emulation, tens of microseconds apiece: measured there, the guest's
/// boot to /init took 1.1-1.4 s in most boots, 2.0-2.5 s in a few,
/// against 1.9-2.6 s before). No MADV_HUGEPAGE: with the usual `defrag`
/// setting (`madvise`) it would have faults compact memory synchronously
/// until a huge page is free, a stall the host's policy avoids.
///
/// The mapping stays until the process exits: a VMM process runs one VM,
/// and its device threads use the memory for as long as they run.
fn map_aligned(gpa: u64, len: usize) -> std::io::Result<*mut u8> {
    let span = len + HUGE as usize;
    // SAFETY: a fresh anonymous mapping, trimmed below to the aligned part.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let b = base as u64;
    let start = b + (gpa.wrapping_sub(b) % HUGE);
    let head = (start - b) as usize;
    // SAFETY: unmapping the unused ends of the mapping just made.
    unsafe {
        if head > 0 {
            libc::munmap(base, head);
        }
        let tail = span - head - len;
        if tail > 0 {
            libc::munmap((start as usize + len) as *mut libc::c_void, tail);
        }
    }
    Ok(start as *mut u8)
}

/// Highest guest address below the device hole (where the initramfs goes).
pub fn low_end(mem: &Mem) -> u64 {
    mem.iter()
        .map(|r| r.start_addr().0 + r.len())
        .filter(|end| *end <= MMIO_GAP_START)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_the_device_hole() {
        assert_eq!(ranges(256 << 20), vec![(GuestAddress(0), 256 << 20)]);
        let r = ranges(4 << 30);
        assert_eq!(r[0], (GuestAddress(0), MMIO_GAP_START as usize));
        assert_eq!(r[1], (GuestAddress(1 << 32), (1 << 30) as usize));
    }
}
