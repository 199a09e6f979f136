//! Guest RAM: anonymous private mappings of the VMM (so they count against
//! the container's memory cgroup), split around the device hole below
//! 4 GiB.

use anyhow::{Result, anyhow, bail};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};

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

/// Maps the guest's RAM and hands it to KVM.
pub fn create(vm: &VmFd, mem_mib: u64) -> Result<Mem> {
    if mem_mib < MIN_MEM_MIB {
        bail!("guest memory {mem_mib} MiB is too small to boot (at least {MIN_MEM_MIB} MiB)");
    }
    let mem = GuestMemoryMmap::from_ranges(&ranges(mem_mib << 20))
        .map_err(|e| anyhow!("mapping {mem_mib} MiB of guest memory: {e}"))?;
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
    Ok(mem)
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
