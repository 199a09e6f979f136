//! Guest RAM: one sealed memfd, mapped shared by the VMM and split around
//! the device hole below 4 GiB. Shared, because the file server is a
//! process of its own that maps the same memory to serve the virtio-fs
//! queues (vhost-user's SET_MEM_TABLE hands it the memfd). Its pages are
//! shmem charged to the memory cgroup of the task that first touches
//! them: the VMM (the kernel loader, KVM's faults for the guest), which
//! runs in the container's cgroup, so guest RAM still counts against the
//! container's memory limit.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{
    FileOffset, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
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

/// Maps the guest's RAM (hand it to KVM with [`register`]). Each region
/// carries its place in the memfd ([`GuestMemoryRegion::file_offset`]),
/// which is what the file server is sent.
pub fn create(mem_mib: u64) -> Result<Mem> {
    if mem_mib < MIN_MEM_MIB {
        bail!("guest memory {mem_mib} MiB is too small to boot (at least {MIN_MEM_MIB} MiB)");
    }
    let file = Arc::new(memfd(mem_mib << 20).map_err(|e| anyhow!("guest memory memfd: {e}"))?);
    let mut regions = Vec::new();
    let mut offset = 0u64;
    for (gpa, len) in ranges(mem_mib << 20) {
        let host = map_aligned(gpa.0, len, &file, offset)
            .map_err(|e| anyhow!("mapping {mem_mib} MiB of guest memory: {e}"))?;
        // SAFETY: `host` is a fresh shared mapping of `len` bytes of the
        // memfd at `offset`, which this process never unmaps (see
        // map_aligned).
        let region = unsafe {
            MmapRegionBuilder::new(len)
                .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
                .with_mmap_flags(libc::MAP_SHARED)
                .with_file_offset(FileOffset::from_arc(file.clone(), offset))
                .with_raw_mmap_pointer(host)
        }
        .build()
        .map_err(|e| anyhow!("guest memory: {e}"))?;
        regions.push(
            GuestRegionMmap::new(region, gpa).ok_or_else(|| anyhow!("guest memory: bad range"))?,
        );
        offset += len as u64;
    }
    GuestMemoryMmap::from_regions(regions).map_err(|e| anyhow!("guest memory: {e}"))
}

/// A memfd of `bytes`, sealed at that size: the file server gets a
/// writable descriptor of it, and a shrink by it would have the VMM (and
/// KVM) fault on pages that are gone; the seals make ftruncate fail
/// instead. Close-on-exec, like every descriptor of the VMM.
fn memfd(bytes: u64) -> std::io::Result<File> {
    // SAFETY: memfd_create with a C string name; the result is checked.
    let fd = unsafe {
        libc::memfd_create(
            c"atoll-guest-ram".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(bytes)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on the descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
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

/// Maps `len` bytes of the memfd at `offset` for guest RAM at guest
/// address `gpa`, placed so that host and guest addresses agree modulo
/// 2 MiB: where the host backs the memory with transparent huge pages,
/// KVM can then map the guest's RAM with 2 MiB pages of its nested page
/// tables, and a boot faults in a few dozen of them rather than tens of
/// thousands of 4 KiB pages, each an exit to the host kernel (under the
/// test VM's nested emulation, tens of microseconds apiece: measured
/// there with anonymous memory, the guest's boot to /init took 1.1-1.4 s
/// in most boots against 1.9-2.6 s before). For shared memory the host's
/// shmem policy decides (`/sys/kernel/mm/transparent_hugepage/
/// shmem_enabled`, `never` by default on Debian): the placement costs
/// nothing where it does not help. No MADV_HUGEPAGE: with the usual
/// `defrag` setting it would have faults compact memory synchronously.
///
/// The mapping stays until the process exits: a VMM process runs one VM,
/// and its device threads use the memory for as long as they run.
fn map_aligned(gpa: u64, len: usize, file: &File, offset: u64) -> std::io::Result<*mut u8> {
    let span = len + HUGE as usize;
    // SAFETY: a fresh reservation of address space, replaced below by the
    // memfd's pages at the aligned start and trimmed around them.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_NONE,
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
    // SAFETY: MAP_FIXED over part of the reservation just made (nothing
    // else lives there).
    let got = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            file.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if got == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        // SAFETY: the reservation made above.
        unsafe { libc::munmap(base, span) };
        return Err(e);
    }
    // SAFETY: unmapping the unused ends of the reservation.
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

    /// Guest RAM is one memfd that a second mapping (the file server's)
    /// sees written, at the offsets the regions record, and that cannot
    /// be shrunk under the VMM.
    #[test]
    fn guest_ram_is_a_sealed_shared_memfd() {
        let mem = create(MIN_MEM_MIB).unwrap();
        let r = mem.iter().next().unwrap();
        let fo = r.file_offset().expect("regions record their memfd");
        assert_eq!(fo.start(), 0);
        assert_eq!(r.as_ptr() as u64 % HUGE, 0, "2 MiB congruent with gpa 0");
        use vm_memory::Bytes;
        mem.write_obj(0x1234_5678u32, GuestAddress(0x20_0000))
            .unwrap();
        let mut b = [0u8; 4];
        use std::os::unix::fs::FileExt;
        fo.file().read_exact_at(&mut b, 0x20_0000).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0x1234_5678);
        assert!(fo.file().set_len(4096).is_err(), "sealed against shrinking");
    }
}
