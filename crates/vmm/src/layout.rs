//! Where things live in the guest's physical address space (x86_64), as
//! Firecracker lays them out: boot structures in the first megabyte, the
//! kernel at its linked physical address, the initramfs at the top of low
//! memory, and a hole below 4 GiB for the devices.

/// GDT and IDT of the 64-bit entry.
pub const GDT_START: u64 = 0x500;
pub const IDT_START: u64 = 0x520;
/// The Linux zero page (`struct boot_params`).
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Stack of the boot CPU until the kernel sets up its own.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity page tables for the first GiB (2 MiB pages).
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;
/// The kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// End of usable memory below the EBDA.
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables: the kernel scans 0xe0000..0x100000 for the RSDP.
pub const ACPI_START: u64 = 0xe0000;
pub const ACPI_END: u64 = 0x100000;
/// Start of high memory; the kernel is loaded above it.
pub const HIMEM_START: u64 = 0x100000;
/// Guest RAM stops here and resumes at 4 GiB: the hole holds the devices.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// virtio-mmio devices, one page each.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// Interrupt controllers (KVM's in-kernel ones).
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// The 16550 serial port (COM1) and its interrupt.
pub const SERIAL_PORT: u16 = 0x3f8;
pub const SERIAL_IRQ: u32 = 4;
/// First interrupt line for virtio devices (5, 6, 7, ... as Firecracker).
pub const VIRTIO_IRQ_BASE: u32 = 5;
/// KVM needs three pages for the TSS below 4 GiB on Intel.
pub const KVM_TSS_ADDRESS: usize = 0xfffb_d000;
