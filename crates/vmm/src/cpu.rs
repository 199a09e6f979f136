//! vCPU state at the kernel's 64-bit entry: CPUID as KVM supports it with
//! the hypervisor bit set (without it Debian's kernel ignores kvm-clock,
//! calibrates by delay loop and takes about twice the exits), long mode
//! with identity-mapped page tables for the first GiB, a flat GDT, and the
//! local APIC's LINT0/LINT1 wired as a PC's.

use anyhow::{Result, anyhow};
use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment,
};
use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::{Bytes, GuestAddress};

use crate::layout::*;
use crate::memory::Mem;

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_IA32_MISC_ENABLE_FAST_STRING: u64 = 0x1;
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// The CPUID the guest sees: KVM's supported set, the hypervisor bit, and
/// each vCPU's APIC id and count.
pub fn cpuid(kvm: &Kvm, id: u8, count: u8) -> Result<CpuId> {
    let mut c = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| anyhow!("KVM_GET_SUPPORTED_CPUID: {e}"))?;
    for e in c.as_mut_slice() {
        match e.function {
            1 => {
                e.ecx |= 1 << 31; // hypervisor
                e.ebx = (e.ebx & 0x00ff_ffff) | ((id as u32) << 24);
                e.ebx = (e.ebx & 0xff00_ffff) | ((count as u32) << 16);
                if count > 1 {
                    e.edx |= 1 << 28; // HTT: several logical processors
                }
            }
            // Cache/topology leaves describe the host; say one core per
            // package for each vCPU instead of the host's layout.
            0xb if e.index == 0 => {
                e.edx = id as u32;
            }
            _ => {}
        }
    }
    Ok(c)
}

fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((u64::from(base) & 0xff00_0000) << (56 - 24))
        | ((u64::from(flags) & 0x0000_f0ff) << 40)
        | ((u64::from(limit) & 0x000f_0000) << (48 - 16))
        | ((u64::from(base) & 0x00ff_ffff) << 16)
        | (u64::from(limit) & 0x0000_ffff)
}

fn segment(entry: u64, index: u8) -> kvm_segment {
    kvm_segment {
        base: ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000),
        limit: {
            let l = ((entry & 0xffff) | ((entry >> 32) & 0x000f_0000)) as u32;
            if (entry >> 55) & 1 == 1 {
                (l << 12) | 0xfff
            } else {
                l
            }
        },
        selector: u16::from(index) * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g: ((entry >> 55) & 1) as u8,
        avl: ((entry >> 52) & 1) as u8,
        padding: 0,
        unusable: u8::from((entry >> 47) & 1 == 0),
    }
}

/// Writes the GDT and the identity page tables (shared by all vCPUs).
pub fn write_boot_tables(mem: &Mem) -> Result<()> {
    let gdt = [
        gdt_entry(0, 0, 0),
        gdt_entry(0xa09b, 0, 0xfffff), // code, 64-bit
        gdt_entry(0xc093, 0, 0xfffff), // data
        gdt_entry(0x808b, 0, 0xfffff), // TSS
    ];
    for (i, e) in gdt.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(GDT_START + i as u64 * 8))
            .map_err(|e| anyhow!("GDT: {e}"))?;
    }
    mem.write_obj(0u64, GuestAddress(IDT_START))
        .map_err(|e| anyhow!("IDT: {e}"))?;
    mem.write_obj(PDPTE_START | 0x03, GuestAddress(PML4_START))
        .map_err(|e| anyhow!("PML4: {e}"))?;
    mem.write_obj(PDE_START | 0x03, GuestAddress(PDPTE_START))
        .map_err(|e| anyhow!("PDPTE: {e}"))?;
    for i in 0..512u64 {
        mem.write_obj((i << 21) | 0x83, GuestAddress(PDE_START + i * 8))
            .map_err(|e| anyhow!("PDE: {e}"))?;
    }
    Ok(())
}

/// Puts a vCPU at the kernel's 64-bit entry (the boot CPU) or leaves it
/// for the kernel to start with INIT/SIPI (the others).
pub fn setup(kvm: &Kvm, vcpu: &VcpuFd, id: u8, count: u8, entry: u64) -> Result<()> {
    vcpu.set_cpuid2(&cpuid(kvm, id, count)?)
        .map_err(|e| anyhow!("KVM_SET_CPUID2: {e}"))?;
    let msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_IA32_MISC_ENABLE,
        data: MSR_IA32_MISC_ENABLE_FAST_STRING,
        ..Default::default()
    }])
    .map_err(|e| anyhow!("MSRs: {e:?}"))?;
    vcpu.set_msrs(&msrs)
        .map_err(|e| anyhow!("KVM_SET_MSRS: {e}"))?;
    // LINT0 as ExtINT (the PIC), LINT1 as NMI.
    let mut lapic = vcpu
        .get_lapic()
        .map_err(|e| anyhow!("KVM_GET_LAPIC: {e}"))?;
    let set = |regs: &mut [i8], off: usize, mode: u32| {
        let mut v = u32::from_le_bytes([
            regs[off] as u8,
            regs[off + 1] as u8,
            regs[off + 2] as u8,
            regs[off + 3] as u8,
        ]);
        v = (v & !0x700) | (mode << 8);
        for (i, b) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *b as i8;
        }
    };
    set(&mut lapic.regs, APIC_LVT0, APIC_MODE_EXTINT);
    set(&mut lapic.regs, APIC_LVT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic)
        .map_err(|e| anyhow!("KVM_SET_LAPIC: {e}"))?;
    if id != 0 {
        return Ok(());
    }
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu)
        .map_err(|e| anyhow!("KVM_SET_FPU: {e}"))?;
    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_START,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
        .map_err(|e| anyhow!("KVM_SET_REGS: {e}"))?;
    let mut s = vcpu
        .get_sregs()
        .map_err(|e| anyhow!("KVM_GET_SREGS: {e}"))?;
    let code = segment(gdt_entry(0xa09b, 0, 0xfffff), 1);
    let data = segment(gdt_entry(0xc093, 0, 0xfffff), 2);
    let tss = segment(gdt_entry(0x808b, 0, 0xfffff), 3);
    s.gdt.base = GDT_START;
    s.gdt.limit = 4 * 8 - 1;
    s.idt.base = IDT_START;
    s.idt.limit = 7;
    s.cs = code;
    s.ds = data;
    s.es = data;
    s.fs = data;
    s.gs = data;
    s.ss = data;
    s.tr = tss;
    s.cr0 |= X86_CR0_PE | X86_CR0_PG;
    s.cr3 = PML4_START;
    s.cr4 |= X86_CR4_PAE;
    s.efer |= EFER_LME | EFER_LMA;
    vcpu.set_sregs(&s)
        .map_err(|e| anyhow!("KVM_SET_SREGS: {e}"))?;
    Ok(())
}
