//! Syscall-site patching (gVisor's usertrap is the model): a workload
//! syscall that reached the kernel through the platform's SIGSYS handler
//! from the common `mov $nr,%eax; syscall` sequence has that sequence
//! rewritten into `jmp *abs32`, through a per-site trampoline, into the
//! platform's syscall entry. The next call at that site reaches the kernel
//! without a signal.
//!
//! - The trampolines live in a table mapped read+exec in the workload's
//!   address space at a random page in [0x60000, 0x70000). Each entry:
//!   a pointer to its own code (what the `jmp *abs32` reads), then
//!   `mov $nr,%eax; movabs $ret,%rcx; jmp *0(%rip)` and the entry point.
//!   A trampoline is ordinary workload code: an interrupt there is
//!   delivered like anywhere in the workload.
//! - Because the table is below 0x70000 and above 0x5ffff, the sixth byte
//!   of the 7-byte `jmp *abs32` is 0x06, an invalid opcode in 64-bit mode,
//!   and it lands exactly on the first byte of the old `syscall`. The
//!   patch is written in three steps: that byte first, then bytes 1..6,
//!   then the jump's first byte. A thread that executed the old `mov`
//!   before the patch meets 0x06 and faults with SIGILL; [`Kernel::usertrap_fault`]
//!   sends it back to the jump. A syscall restarted by the kernel
//!   (`rip -= 2`) meets the same byte and takes the same way back, through
//!   the trampoline that loads the number again.
//! - Only private, executable memory of the calling process is patched
//!   (fork copies private memory, so children inherit the patches and the
//!   table together). The sequence must match exactly and its immediate
//!   must equal the syscall number the handler saw.
//! - `dev.atoll.syscall-patching: "false"` turns it off per container.

use super::{Kernel, Tid};
use crate::arch::PAGE_SIZE;
use crate::mm::VmaName;
use crate::platform::Platform;

const TABLE_LO: u64 = 0x60000;
const TABLE_HI: u64 = 0x70000;
const ENTRY_SIZE: u64 = 64;
const TABLE_SIZE: u64 = 4 * PAGE_SIZE;
const ENTRIES: u32 = (TABLE_SIZE / ENTRY_SIZE) as u32;
/// `next` value of a table that has no room (or none could be mapped):
/// stop trying.
const FULL: u32 = u32::MAX;

/// `jmp *abs32` (ModRM 0x24, SIB 0x25: no base, no index).
const JMP_ABS: [u8; 3] = [0xff, 0x24, 0x25];
const BAD_OPCODE: u8 = 0x06;

/// Whether `code` (the 7 bytes before the return address) is `mov
/// $nr,%eax; syscall`.
pub fn is_patchable(code: &[u8; 7], nr: u64) -> bool {
    code[0] == 0xb8
        && code[5..7] == [0x0f, 0x05]
        && u32::from_le_bytes(code[1..5].try_into().unwrap()) as u64 == nr
}

/// A trampoline entry at `at` for syscall `nr` returning to `ret`.
pub fn trampoline(at: u64, nr: u32, ret: u64, entry: u64) -> [u8; ENTRY_SIZE as usize] {
    let mut b = [0xccu8; ENTRY_SIZE as usize];
    b[0..8].copy_from_slice(&(at + 8).to_le_bytes());
    b[8] = 0xb8; // mov $nr, %eax
    b[9..13].copy_from_slice(&nr.to_le_bytes());
    b[13..15].copy_from_slice(&[0x48, 0xb9]); // movabs $ret, %rcx
    b[15..23].copy_from_slice(&ret.to_le_bytes());
    b[23..29].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
    b[29..37].copy_from_slice(&entry.to_le_bytes());
    b
}

/// The patch for a site whose trampoline entry is at `at`.
pub fn jump(at: u64) -> [u8; 7] {
    let mut b = [0u8; 7];
    b[..3].copy_from_slice(&JMP_ABS);
    b[3..].copy_from_slice(&(at as u32).to_le_bytes());
    debug_assert_eq!(b[5], BAD_OPCODE);
    b
}

/// What a SIGILL at a patched site turns out to be.
pub enum PatchedFault {
    /// Not a patched site: a real SIGILL.
    No,
    /// Sent back to the jump; resume.
    Rewound,
    /// A syscall to serve (`restart_syscall`).
    Syscall,
}

impl Kernel {
    /// Patches the call site of `tid`'s current syscall `nr` if it can.
    pub fn try_patch(&mut self, tid: Tid, nr: u64) {
        let Some(entry) = self.platform.usertrap_entry() else {
            return;
        };
        let rip = self.task(tid).regs.rip;
        let Some(site) = rip.checked_sub(7) else {
            return;
        };
        let mm = self.task_mm(tid);
        let mut m = mm.borrow_mut();
        if m.usertrap.is_some_and(|(_, n)| n == FULL) {
            return;
        }
        let mut code = [0u8; 7];
        if m.read_bytes(site, &mut code).is_err() || !is_patchable(&code, nr) {
            return;
        }
        // Private executable memory of this process only, in one VMA, with
        // its own copy of the file's bytes (not the file's shared pages).
        match m.find(site) {
            Some(v) if !v.shared && v.prot & libc::PROT_EXEC != 0 && v.end >= rip => {}
            _ => return,
        }
        if m.privatize(&mut self.platform, site, rip).is_err() {
            return;
        }
        let (table, next) = match m.usertrap {
            Some(t) => t,
            None => {
                let pages = (TABLE_HI - TABLE_SIZE - TABLE_LO) / PAGE_SIZE;
                let at = TABLE_LO + (super::random::u64() % pages) * PAGE_SIZE;
                let free = m.find_free(at, TABLE_SIZE) == Some(at);
                let mapped = free
                    && m.map_anon(
                        &mut self.platform,
                        at,
                        TABLE_SIZE,
                        libc::PROT_READ | libc::PROT_EXEC,
                        true,
                        VmaName::Usertrap,
                    )
                    .is_ok();
                if !mapped {
                    m.usertrap = Some((0, FULL));
                    return;
                }
                (at, 0)
            }
        };
        if next >= ENTRIES {
            m.usertrap = Some((table, FULL));
            return;
        }
        let at = table + next as u64 * ENTRY_SIZE;
        let ok = m
            .write_force(at, &trampoline(at, nr as u32, rip, entry))
            .is_ok();
        m.usertrap = Some((table, next + 1));
        if !ok {
            return;
        }
        let patch = jump(at);
        // Three steps, each visible before the next (see the module doc).
        let steps: [(u64, &[u8]); 3] = [
            (site + 5, &patch[5..6]),
            (site + 1, &patch[1..7]),
            (site, &patch[0..1]),
        ];
        for (addr, bytes) in steps {
            if m.write_force(addr, bytes).is_err() {
                return;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A SIGILL at the 0x06 byte of a patched site: the thread had run
    /// the old `mov` (or had its syscall restarted) before the patch.
    pub fn usertrap_fault(&mut self, tid: Tid) -> PatchedFault {
        let regs = self.task(tid).regs;
        let Some(site) = regs.rip.checked_sub(5) else {
            return PatchedFault::No;
        };
        let mut code = [0u8; 7];
        let mm = self.task_mm(tid);
        if mm.borrow().read_bytes(site, &mut code).is_err()
            || code[..3] != JMP_ABS
            || code[5] != BAD_OPCODE
        {
            return PatchedFault::No;
        }
        let t = self.task_mut(tid);
        if regs.rax == libc::SYS_restart_syscall as u64 {
            // The trampoline would load the site's number, not
            // restart_syscall's: serve restart_syscall as it stands.
            t.regs.orig_rax = regs.rax;
            t.regs.rip += 2;
            return PatchedFault::Syscall;
        }
        t.regs.rip = site;
        PatchedFault::Rewound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_puts_an_invalid_opcode_on_the_old_syscall() {
        for at in [TABLE_LO, TABLE_LO + 0x1234, TABLE_HI - ENTRY_SIZE] {
            let j = jump(at);
            assert_eq!(&j[..3], &JMP_ABS);
            assert_eq!(j[5], BAD_OPCODE, "{at:#x}");
        }
    }

    #[test]
    fn only_the_exact_sequence_with_the_same_number_is_patched() {
        let getppid = [0xb8, 110, 0, 0, 0, 0x0f, 0x05];
        assert!(is_patchable(&getppid, 110));
        assert!(!is_patchable(&getppid, 39), "another number in %eax");
        assert!(!is_patchable(
            &[0x31, 0xc0, 0x90, 0x90, 0x90, 0x0f, 0x05],
            0
        ));
        assert!(!is_patchable(&[0xb8, 110, 0, 0, 0, 0x0f, 0x34], 110));
    }

    #[test]
    fn trampolines_load_the_number_and_the_return_address() {
        let t = trampoline(0x61000, 110, 0x401007, 0x7ff0_0000_0400);
        assert_eq!(u64::from_le_bytes(t[0..8].try_into().unwrap()), 0x61008);
        assert_eq!(&t[8..13], &[0xb8, 110, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(t[15..23].try_into().unwrap()), 0x401007);
        assert_eq!(
            u64::from_le_bytes(t[29..37].try_into().unwrap()),
            0x7ff0_0000_0400
        );
    }
}
