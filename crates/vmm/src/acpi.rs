//! ACPI tables that tell the guest kernel where its devices are.
//!
//! Debian's kernels have no `virtio_mmio.device=` command-line discovery,
//! but they bind virtio-mmio devices that the DSDT describes (`LNRO0005`,
//! one `Memory32Fixed` window and one edge-triggered interrupt each), as
//! Firecracker's guests do. The FADT is hardware-reduced (no PM timer, no
//! SCI, no legacy ACPI hardware to emulate); the MADT lists the CPUs' local
//! APICs and KVM's IOAPIC.

use acpi_tables::Aml;
use acpi_tables::aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use anyhow::{Result, anyhow, bail};
use vm_memory::{Bytes, GuestAddress};

use crate::layout::{ACPI_END, ACPI_START, IOAPIC_ADDR, LAPIC_ADDR, SERIAL_IRQ, SERIAL_PORT};
use crate::memory::Mem;

const OEM_ID: [u8; 6] = *b"ATOLL ";
const OEM_TABLE: [u8; 8] = *b"ATOLLVM ";

/// A virtio-mmio device as the guest must see it.
#[derive(Clone, Copy, Debug)]
pub struct MmioDevice {
    pub base: u64,
    pub size: u64,
    pub irq: u32,
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(36);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0); // checksum of the first 20 bytes
    r.extend_from_slice(&OEM_ID);
    r.push(2); // revision: ACPI 2.0+, XSDT
    r.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.push(0); // extended checksum
    r.extend_from_slice(&[0; 3]);
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// The DSDT's AML: one device per virtio-mmio window under `\_SB`.
fn dsdt(devices: &[MmioDevice]) -> Vec<u8> {
    let mut body = Vec::new();
    let crs: Vec<(aml::Memory32Fixed, aml::Interrupt)> = devices
        .iter()
        .map(|d| {
            (
                aml::Memory32Fixed::new(true, d.base as u32, d.size as u32),
                // consumer, edge-triggered, active-high, exclusive
                aml::Interrupt::new(true, true, false, false, d.irq),
            )
        })
        .collect();
    let templates: Vec<aml::ResourceTemplate> = crs
        .iter()
        .map(|(m, i)| aml::ResourceTemplate::new(vec![m, i]))
        .collect();
    let hid = aml::Name::new("_HID".into(), &"LNRO0005");
    let uids: Vec<aml::Name> = (0..devices.len())
        .map(|i| aml::Name::new("_UID".into(), &(i as u32)))
        .collect();
    let crs_names: Vec<aml::Name> = templates
        .iter()
        .map(|t| aml::Name::new("_CRS".into(), t))
        .collect();
    let devs: Vec<aml::Device> = (0..devices.len())
        .map(|i| {
            aml::Device::new(
                format!("V{i:03X}").as_str().into(),
                vec![&hid, &uids[i], &crs_names[i]],
            )
        })
        .collect();
    // COM1: in hardware-reduced ACPI there is no legacy PIC, so the
    // serial port's interrupt exists only if the DSDT describes the port.
    let com_io = aml::IO::new(SERIAL_PORT, SERIAL_PORT, 1, 8);
    let com_irq = aml::Interrupt::new(true, true, false, false, SERIAL_IRQ);
    let com_crs = aml::ResourceTemplate::new(vec![&com_io, &com_irq]);
    let com_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501"));
    let com_uid = aml::Name::new("_UID".into(), &aml::ZERO);
    let com_crs_name = aml::Name::new("_CRS".into(), &com_crs);
    let com = aml::Device::new("COM1".into(), vec![&com_hid, &com_uid, &com_crs_name]);
    let mut children: Vec<&dyn Aml> = vec![&com];
    children.extend(devs.iter().map(|d| d as &dyn Aml));
    aml::Scope::new("\\_SB_".into(), children).to_aml_bytes(&mut body);
    let mut t = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE, 1);
    t.append_slice(&body);
    let mut out = Vec::new();
    t.to_aml_bytes(&mut out);
    out
}

fn madt(vcpus: u8) -> Vec<u8> {
    let mut m = MADT::new(
        OEM_ID,
        OEM_TABLE,
        1,
        LocalInterruptController::Address(LAPIC_ADDR),
    );
    for i in 0..vcpus {
        m.add_structure(ProcessorLocalApic::new(i, i, EnabledStatus::Enabled));
    }
    m.add_structure(IoApic::new(0, IOAPIC_ADDR, 0));
    let mut out = Vec::new();
    m.to_aml_bytes(&mut out);
    // PCAT_COMPAT: there is a PC's 8259 pair (KVM's), so the ISA
    // interrupts (the serial port's IRQ 4) keep their identity mapping.
    out[40] |= 1;
    out[9] = 0;
    out[9] = checksum(&out);
    out
}

fn fadt(dsdt: u64) -> Vec<u8> {
    let f = FADTBuilder::new(OEM_ID, OEM_TABLE, 1)
        .dsdt_64(dsdt)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .finalize();
    let mut out = Vec::new();
    f.to_aml_bytes(&mut out);
    out
}

fn align(a: u64) -> u64 {
    (a + 15) & !15
}

/// Writes RSDP, XSDT, FADT, DSDT and MADT into the BIOS area.
pub fn write(mem: &Mem, vcpus: u8, devices: &[MmioDevice]) -> Result<()> {
    let dsdt_bytes = dsdt(devices);
    let madt_bytes = madt(vcpus);
    let xsdt_addr = align(ACPI_START + 36);
    // XSDT: header + 2 entries.
    let fadt_addr = align(xsdt_addr + 36 + 16);
    let fadt_bytes = {
        // the FADT's size does not depend on its content
        fadt(0)
    };
    let dsdt_addr = align(fadt_addr + fadt_bytes.len() as u64);
    let madt_addr = align(dsdt_addr + dsdt_bytes.len() as u64);
    let end = madt_addr + madt_bytes.len() as u64;
    if end > ACPI_END {
        bail!("ACPI tables do not fit below 1 MiB");
    }
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE, 1);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let mut xsdt_bytes = Vec::new();
    xsdt.to_aml_bytes(&mut xsdt_bytes);
    for (addr, bytes) in [
        (ACPI_START, rsdp(xsdt_addr)),
        (xsdt_addr, xsdt_bytes),
        (fadt_addr, fadt(dsdt_addr)),
        (dsdt_addr, dsdt_bytes),
        (madt_addr, madt_bytes),
    ] {
        mem.write_slice(&bytes, GuestAddress(addr))
            .map_err(|e| anyhow!("writing ACPI tables: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_checksum_to_zero() {
        let r = rsdp(0xe0040);
        assert_eq!(r.len(), 36);
        assert_eq!(r[..20].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(r.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        let d = dsdt(&[MmioDevice {
            base: 0xd000_0000,
            size: 0x1000,
            irq: 5,
        }]);
        assert_eq!(&d[..4], b"DSDT");
        assert_eq!(
            u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize,
            d.len()
        );
        assert_eq!(d.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        // the device's hardware id is in the AML
        assert!(d.windows(8).any(|w| w == b"LNRO0005"));
        let m = madt(2);
        assert_eq!(m.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }
}
