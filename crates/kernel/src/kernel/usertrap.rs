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
//! - glibc's `read()` is `xor %eax,%eax; syscall; cmp $-4096,%rax` (its
//!   number is 0, so there is no `mov` to rewrite). That whole 10-byte
//!   sequence becomes `jmp *abs32; ud2; int3` through an entry whose
//!   address `0x06LL??` has a second byte `LL` that faults when followed
//!   by `06` (see [`faulting_lead`]), so the jump's operand bytes give the
//!   old instruction boundaries a meaning: from `site+2` (after the `xor`)
//!   the CPU reads `and $0x0006LL??,%eax` (0 stays 0) and then the `ud2`:
//!   SIGILL at `site+7`, sent to the trampoline's second half, which keeps
//!   %eax; from `site+4` (after the `syscall`) it reads `LL 06`: SIGILL or
//!   SIGSEGV at `site+4`, sent to the trampoline's tail, which does the
//!   `cmp` and jumps back to `site+10`. The trampoline's return address is that tail, so the
//!   syscall's rip (what restarts, signal frames and sigreturn see) is
//!   the tail, and the two bytes before it are a real `syscall`: a
//!   restart (`rip -= 2`) traps there through SIGSYS and is served. The
//!   bytes are written so that every intermediate state faults the same
//!   recognisable way (see `patch_steps`).
//! - Both kinds assume that no other code jumps into the middle of the
//!   sequence with another number in %eax (as gVisor's usertrap does);
//!   the sequence must match exactly and its number must be the one the
//!   handler saw.
//! - glibc's `openat(AT_FDCWD, …)` sites (`__open64_nocancel`, which
//!   ld.so and Python's start call dozens of times) load the number
//!   earlier and end in `mov $-100,%edi; syscall`: the same 7 bytes with
//!   another register. They are patched the same way through an entry
//!   that loads %edi instead and keeps %eax (see [`MovSite`]); a
//!   restart (%eax restored to the number) goes back through it too.
//! - `dev.atoll.syscall-patching: "false"` turns it off per container.

use super::{Kernel, Tid};
use crate::arch::PAGE_SIZE;
use crate::mm::{UsertrapTable, VmaName};
use crate::platform::Platform;

/// The call of a syscall site at which it is patched (see `try_patch`).
const PATCH_AFTER: u32 = 8;
/// Most sites counted per process (a program has a few hundred).
const SITE_CALLS_MAX: usize = 4096;
/// Most sites remembered as hot across processes (see [`HOT_SITES`]).
const HOT_SITES_MAX: usize = 16 * 1024;

thread_local! {
    /// Sites of files' code (device, inode, file offset of the return
    /// address) that some process of this sandbox made hot enough to
    /// patch. A program runs again and again (a shell's commands, `xargs`
    /// running `stat`, a build's compilers) and its libraries' hot sites
    /// are the same each time: a process patches them at their first
    /// call instead of paying PATCH_AFTER signals each. Only a hint of
    /// *when* to patch: the bytes at the site are checked as for any
    /// patch, so a file changed since patches nothing it should not.
    static HOT_SITES: std::cell::RefCell<std::collections::HashSet<(u64, u64, u64)>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Where `addr` (in VMA `v`) lies in the file `v` maps, if it maps one.
fn file_site(v: &crate::mm::Vma, addr: u64) -> Option<(u64, u64, u64)> {
    match &v.name {
        VmaName::File {
            offset, dev, ino, ..
        } => Some((*dev, *ino, offset.checked_add(addr - v.start)?)),
        _ => None,
    }
}

const TABLE_LO: u64 = 0x60000;
const TABLE_HI: u64 = 0x70000;
const ENTRY_SIZE: u64 = 64;
const TABLE_SIZE: u64 = 4 * PAGE_SIZE;
const ENTRIES: u32 = (TABLE_SIZE / ENTRY_SIZE) as u32;

/// `jmp *abs32` (ModRM 0x24, SIB 0x25: no base, no index).
const JMP_ABS: [u8; 3] = [0xff, 0x24, 0x25];
const BAD_OPCODE: u8 = 0x06;

/// glibc's `read()` site: `xor %eax,%eax; syscall; cmp $-4096,%rax`.
const XOR_SITE: [u8; 10] = [0x31, 0xc0, 0x0f, 0x05, 0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff];
/// Offsets in a `xor` site's trampoline entry.
const XOR_CODE: u64 = 8;
const XOR_KEEP_EAX: u64 = 10;
const XOR_TAIL: u64 = 36;

/// Whether an instruction starting with `b` and then `06` faults on
/// x86-64 (measured with a probe on this host's CPUs; every one of them
/// faults at its first byte): the one-byte opcodes invalid in 64-bit
/// mode (SIGILL), `0f 06` (`clts`) and `f4`/`fa`/`fb` (privileged:
/// SIGSEGV), and the REX.W prefixes, since `06` is invalid after any
/// prefix. A REX.W prefix before the old `3d` is still the site's own
/// `cmp $-4096,%rax`, and `0f 3d` is undefined: so `site+4` stays safe
/// while the patch is written.
/// Whether `addr` lies in the trampoline table of `table` (a process's).
pub fn in_table(table: Option<crate::mm::UsertrapTable>, addr: u64) -> bool {
    table
        .and_then(|t| t.at)
        .is_some_and(|at| addr >= at && addr - at < TABLE_SIZE)
}

pub fn faulting_lead(b: u8) -> bool {
    matches!(
        b,
        0x06 | 0x07
            | 0x0e
            | 0x0f
            | 0x16
            | 0x17
            | 0x1e
            | 0x1f
            | 0x27
            | 0x2f
            | 0x37
            | 0x3f
            | 0x48..=0x4f
            | 0x60
            | 0x61
            | 0x82
            | 0x9a
            | 0xce
            | 0xd4..=0xd6
            | 0xea
            | 0xf4
            | 0xfa
            | 0xfb
    )
}

/// Whether the table entry at `at` can serve a `xor` site.
fn xor_capable(at: u64) -> bool {
    faulting_lead((at >> 8) as u8)
}

/// The `n`th entry of the table at `base` of one kind.
fn nth_entry(base: u64, n: u32, xor: bool) -> Option<u64> {
    (0..ENTRIES)
        .map(|i| base + i as u64 * ENTRY_SIZE)
        .filter(|&at| xor_capable(at) == xor)
        .nth(n as usize)
}

/// The register a patchable `mov $imm32,%r32; syscall` site loads: its
/// opcode byte (`b8+r`), and the register's value at the stop that the
/// immediate must equal (a 32-bit move zero-extends).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MovSite {
    /// `mov $nr,%eax`: the number itself.
    Eax,
    /// `mov $imm,%edi`, the number loaded before (glibc's AT_FDCWD).
    Edi,
}

impl MovSite {
    fn of(opcode: u8) -> Option<MovSite> {
        match opcode {
            0xb8 => Some(MovSite::Eax),
            0xbf => Some(MovSite::Edi),
            _ => None,
        }
    }
    fn opcode(self) -> u8 {
        match self {
            MovSite::Eax => 0xb8,
            MovSite::Edi => 0xbf,
        }
    }
    /// The register it loads, in `regs`.
    fn reg(self, regs: &mut crate::arch::Regs) -> &mut u64 {
        match self {
            MovSite::Eax => &mut regs.rax,
            MovSite::Edi => &mut regs.rdi,
        }
    }
}

/// Whether `code` (the 7 bytes before the return address) is `mov
/// $nr,%eax; syscall` for syscall `nr`, or `mov $imm,%edi; syscall` with
/// `rdi` (its %rdi at the stop) equal to the zero-extended `imm`.
pub fn is_patchable(code: &[u8; 7], nr: u64, rdi: u64) -> Option<MovSite> {
    let kind = MovSite::of(code[0])?;
    let imm = u32::from_le_bytes(code[1..5].try_into().unwrap()) as u64;
    let want = match kind {
        MovSite::Eax => nr,
        MovSite::Edi => rdi,
    };
    (code[5..7] == [0x0f, 0x05] && imm == want).then_some(kind)
}

/// Whether `code` (from 4 bytes before the return address) is glibc's
/// `xor %eax,%eax; syscall; cmp $-4096,%rax` and the number was 0.
pub fn is_patchable_xor(code: &[u8; 10], nr: u64) -> bool {
    nr == 0 && *code == XOR_SITE
}

/// A trampoline entry at `at` for a site of `kind` loading `imm`,
/// returning to `ret`.
pub fn trampoline(
    at: u64,
    kind: MovSite,
    imm: u32,
    ret: u64,
    entry: u64,
) -> [u8; ENTRY_SIZE as usize] {
    let mut b = [0xccu8; ENTRY_SIZE as usize];
    b[0..8].copy_from_slice(&(at + 8).to_le_bytes());
    b[8] = kind.opcode(); // mov $imm, %eax or %edi
    b[9..13].copy_from_slice(&imm.to_le_bytes());
    b[13..15].copy_from_slice(&[0x48, 0xb9]); // movabs $ret, %rcx
    b[15..23].copy_from_slice(&ret.to_le_bytes());
    b[23..29].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
    b[29..37].copy_from_slice(&entry.to_le_bytes());
    b
}

/// The trampoline entry at `at` of the `xor` site at `site`:
/// `[8]` (from the jump) `xor %eax,%eax`; `[10]` (from the `ud2`, %eax
/// kept) `movabs $tail,%rcx; jmp *entry`; `[34]` `syscall` (a restart);
/// `[36]` the tail: `cmp $-4096,%rax; jmp *site+10` (flags kept).
pub fn xor_trampoline(at: u64, site: u64, entry: u64) -> [u8; ENTRY_SIZE as usize] {
    let mut b = [0xccu8; ENTRY_SIZE as usize];
    b[0..8].copy_from_slice(&(at + XOR_CODE).to_le_bytes());
    b[8..10].copy_from_slice(&[0x31, 0xc0]); // xor %eax, %eax
    b[10..12].copy_from_slice(&[0x48, 0xb9]); // movabs $tail, %rcx
    b[12..20].copy_from_slice(&(at + XOR_TAIL).to_le_bytes());
    b[20..26].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
    b[26..34].copy_from_slice(&entry.to_le_bytes());
    b[34..36].copy_from_slice(&[0x0f, 0x05]); // syscall
    b[36..42].copy_from_slice(&XOR_SITE[4..10]); // cmp $-4096, %rax
    b[42..48].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
    b[48..56].copy_from_slice(&(site + XOR_SITE.len() as u64).to_le_bytes());
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

/// The patch of a `xor` site whose trampoline entry is at `at`:
/// `jmp *at; ud2; int3`, where `at`'s bytes are `?? LL 06 00`.
pub fn xor_jump(at: u64) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[..7].copy_from_slice(&jump(at));
    b[7..10].copy_from_slice(&[0x0f, 0x0b, 0xcc]); // ud2; int3
    debug_assert!(faulting_lead(b[4]) && b[5..7] == [BAD_OPCODE, 0]);
    b
}

/// The writes that turn a site into `patch`, in order, each made visible
/// before the next. `mov` sites: the invalid byte on the old `syscall`,
/// the rest, the jump's first byte. `xor` sites: `site+4` first becomes
/// the faulting lead byte, then `site+5` the `06` (a thread entering at
/// `site+4` faults from then on), then the rest of the tail; the first
/// byte becomes the invalid `06` before the bytes a thread entering at
/// `site` or `site+2` would read change (`25 ..` is an `and` that leaves
/// 0 in %eax and ends at the `ud2`), and the jump's first byte is written
/// last.
fn patch_steps(patch: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let part = |a: usize, b: usize| (a, patch[a..b].to_vec());
    if patch.len() == XOR_SITE.len() {
        vec![
            part(4, 5),
            part(5, 6),
            part(6, 10),
            (0, vec![BAD_OPCODE]),
            part(2, 3),
            part(3, 4),
            part(1, 2),
            part(0, 1),
        ]
    } else {
        vec![part(5, 6), part(1, 7), part(0, 1)]
    }
}

/// What a SIGILL or SIGSEGV at a patched site turns out to be.
pub enum PatchedFault {
    /// Not a patched site: a real fault.
    No,
    /// Sent back to the jump or into the trampoline; resume.
    Rewound,
    /// A syscall to serve (`restart_syscall`).
    Syscall,
}

/// The table entry a patch at some site points to, if `code` (10 bytes
/// from the site) is a `xor` site's patch into `table`.
fn xor_entry(code: &[u8; 10], table: u64) -> Option<u64> {
    if code[..3] != JMP_ABS || code[7..9] != [0x0f, 0x0b] {
        return None;
    }
    let at = u32::from_le_bytes(code[3..7].try_into().unwrap()) as u64;
    let ok = (table..table + TABLE_SIZE).contains(&at)
        && (at - table).is_multiple_of(ENTRY_SIZE)
        && xor_capable(at);
    ok.then_some(at)
}

impl Kernel {
    /// Patches the call site of `tid`'s current syscall `nr` if it can.
    pub fn try_patch(&mut self, tid: Tid, nr: u64) {
        let Some(entry) = self.platform.usertrap_entry() else {
            return;
        };
        let (rip, rdi) = (self.task(tid).regs.rip, self.task(tid).regs.rdi);
        let mm = self.task_mm(tid);
        let mut m = mm.borrow_mut();
        if m.usertrap.is_some_and(|t| t.at.is_none()) {
            return;
        }
        // A patch costs a mapping change (the page's private copy: a
        // control round trip, ~20-40 µs here) and saves a signal's
        // delivery and return (~3 µs) at each later call of the site. Most
        // sites of a starting program run once or a few times, so a site
        // is patched at its PATCH_AFTER-th call: hot ones soon, one-offs
        // never.
        if m.site_calls.len() >= SITE_CALLS_MAX {
            m.site_calls.clear();
        }
        let calls = m.site_calls.entry(rip).or_insert(0);
        *calls += 1;
        let calls = *calls;
        let in_file = m.find(rip).and_then(|v| file_site(v, rip));
        let known_hot = in_file.is_some_and(|k| HOT_SITES.with(|h| h.borrow().contains(&k)));
        if calls < PATCH_AFTER && !known_hot {
            return;
        }
        m.site_calls.remove(&rip);
        // Which kind of site, and its bytes [site, end).
        let mut code = [0u8; 7];
        let mut xcode = [0u8; 10];
        let (site, end, kind) = if let Some(site) = rip.checked_sub(7)
            && m.read_bytes(site, &mut code).is_ok()
            && let Some(kind) = is_patchable(&code, nr, rdi)
        {
            (site, rip, Some(kind))
        } else if let Some(site) = rip.checked_sub(4)
            && m.read_bytes(site, &mut xcode).is_ok()
            && is_patchable_xor(&xcode, nr)
        {
            (site, site + XOR_SITE.len() as u64, None)
        } else {
            return;
        };
        let xor = kind.is_none();
        // Private executable memory of this process only, in one VMA.
        match m.find(site) {
            Some(v) if !v.shared && v.prot & libc::PROT_EXEC != 0 && v.end >= end => {}
            _ => return,
        }
        let mut table = match m.usertrap {
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
                UsertrapTable {
                    at: mapped.then_some(at),
                    sites: 0,
                    xor_sites: 0,
                }
            }
        };
        m.usertrap = Some(table);
        let Some(base) = table.at else {
            return;
        };
        // The entry: `xor` sites take the entries whose address bytes
        // fault where the old instructions began, `mov` sites the others.
        let count = if xor {
            &mut table.xor_sites
        } else {
            &mut table.sites
        };
        let n = *count;
        *count = count.saturating_add(1);
        m.usertrap = Some(table);
        let Some(at) = nth_entry(base, n, xor) else {
            return;
        };
        // A site in a library's text that still shares the file's pages
        // (see `AddressSpace::privatize`) gets this process's own copy of
        // its page(s) first: the patch must never reach the file's pages,
        // which every other process mapping the file sees.
        let (p0, p1) = (
            site & !(PAGE_SIZE - 1),
            (end + PAGE_SIZE - 1) & !(PAGE_SIZE - 1),
        );
        if m.privatize(&mut self.platform, p0, p1).is_err() {
            return;
        }
        let tramp = match kind {
            None => xor_trampoline(at, site, entry),
            Some(kind) => {
                let imm = u32::from_le_bytes(code[1..5].try_into().unwrap());
                trampoline(at, kind, imm, rip, entry)
            }
        };
        if m.write_force(at, &tramp).is_err() {
            return;
        }
        let patch: Vec<u8> = if xor {
            xor_jump(at).to_vec()
        } else {
            jump(at).to_vec()
        };
        for (off, bytes) in patch_steps(&patch) {
            if m.write_force(site + off as u64, &bytes).is_err() {
                return;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        }
        drop(m);
        if let Some(k) = in_file
            && !known_hot
        {
            HOT_SITES.with(|h| {
                let mut h = h.borrow_mut();
                if h.len() >= HOT_SITES_MAX {
                    h.clear();
                }
                h.insert(k);
            });
        }
        if xor {
            // This syscall returns into the trampoline's tail, not into
            // the middle of the patch.
            self.task_mut(tid).regs.rip = at + XOR_TAIL;
        }
    }

    /// `tid` is about to be single-stepped from the first byte of a
    /// patched `mov $imm,%eax` (or `%edi`) `; syscall` site: the step is
    /// the old `mov`, done here (the register gets the site's immediate,
    /// rip the old `syscall`,
    /// which faults back to the jump when run: see `usertrap_fault`), so
    /// the tracer sees the two instructions as two steps, as natively.
    /// False when rip is no such site (`xor` sites are stepped as one).
    pub fn usertrap_step_mov(&mut self, tid: Tid) -> bool {
        let rip = self.task(tid).regs.rip;
        let mm = self.task_mm(tid);
        let m = mm.borrow();
        let table = m.usertrap;
        let mut code = [0u8; 7];
        if m.read_bytes(rip, &mut code).is_err() || code[..3] != JMP_ABS || code[5] != BAD_OPCODE {
            return false;
        }
        let at = u32::from_le_bytes(code[3..7].try_into().unwrap()) as u64;
        if !in_table(table, at) {
            return false;
        }
        // The entry's own code starts with the site's `mov` (a `xor`
        // site's with its `xor`).
        let mut mov = [0u8; 5];
        if m.read_bytes(at + 8, &mut mov).is_err() {
            return false;
        }
        let Some(kind) = MovSite::of(mov[0]) else {
            return false;
        };
        drop(m);
        let imm = u32::from_le_bytes(mov[1..5].try_into().unwrap());
        let t = self.task_mut(tid);
        // A 32-bit move zero-extends; flags are untouched.
        *kind.reg(&mut t.regs) = imm as u64;
        t.regs.rip = rip + 5;
        true
    }

    /// A SIGILL or SIGSEGV of `tid` at a patched site: a thread that was
    /// inside the old sequence when it was patched, or had its syscall
    /// restarted there (see the module doc).
    pub fn usertrap_fault(&mut self, tid: Tid, signo: i32) -> PatchedFault {
        let regs = self.task(tid).regs;
        let mm = self.task_mm(tid);
        let m = mm.borrow();
        let Some(table) = m.usertrap.and_then(|t| t.at) else {
            return PatchedFault::No;
        };
        let xor_at = |site: Option<u64>| {
            let site = site?;
            let mut code = [0u8; 10];
            m.read_bytes(site, &mut code).ok()?;
            xor_entry(&code, table)
        };
        if signo != libc::SIGILL && signo != libc::SIGSEGV {
            return PatchedFault::No;
        }
        let rip = if let Some(at) = xor_at(regs.rip.checked_sub(4)) {
            // From `site+4`: the `syscall` was served, the `cmp` is next.
            at + XOR_TAIL
        } else if signo == libc::SIGSEGV {
            return PatchedFault::No;
        } else if let Some(at) = xor_at(regs.rip.checked_sub(7)) {
            // The `ud2`: entered after the `xor`, %eax kept.
            at + XOR_KEEP_EAX
        } else if xor_at(Some(regs.rip)).is_some() {
            // The jump's first byte was still the invalid one.
            regs.rip
        } else {
            let Some(site) = regs.rip.checked_sub(5) else {
                return PatchedFault::No;
            };
            let mut code = [0u8; 7];
            if m.read_bytes(site, &mut code).is_err()
                || code[..3] != JMP_ABS
                || code[5] != BAD_OPCODE
            {
                return PatchedFault::No;
            }
            if regs.rax == libc::SYS_restart_syscall as u64 {
                // The trampoline would load the site's number, not
                // restart_syscall's: serve restart_syscall as it stands.
                drop(m);
                let t = self.task_mut(tid);
                t.regs.orig_rax = regs.rax;
                t.regs.rip += 2;
                return PatchedFault::Syscall;
            }
            site
        };
        drop(m);
        self.task_mut(tid).regs.rip = rip;
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
        assert_eq!(is_patchable(&getppid, 110, 0), Some(MovSite::Eax));
        assert_eq!(
            is_patchable(&getppid, 39, 110),
            None,
            "another number in %eax"
        );
        assert_eq!(
            is_patchable(&[0x31, 0xc0, 0x90, 0x90, 0x90, 0x0f, 0x05], 0, 0),
            None
        );
        assert_eq!(
            is_patchable(&[0xb8, 110, 0, 0, 0, 0x0f, 0x34], 110, 0),
            None
        );
        // glibc's openat(AT_FDCWD, ...): the immediate is %edi's, zero-
        // extended into %rdi; any number may be in %eax.
        let openat = [0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05];
        assert_eq!(is_patchable(&openat, 257, 0xffff_ff9c), Some(MovSite::Edi));
        assert_eq!(is_patchable(&openat, 2, 0xffff_ff9c), Some(MovSite::Edi));
        assert_eq!(
            is_patchable(&openat, 257, u64::MAX - 99),
            None,
            "not what the mov made"
        );
        assert_eq!(is_patchable(&openat, 257, 3), None);
        // Other registers' moves are not sites.
        assert_eq!(is_patchable(&[0xbe, 3, 0, 0, 0, 0x0f, 0x05], 257, 3), None);
    }

    #[test]
    fn trampolines_load_the_number_and_the_return_address() {
        let t = trampoline(0x61000, MovSite::Eax, 110, 0x401007, 0x7ff0_0000_0400);
        assert_eq!(u64::from_le_bytes(t[0..8].try_into().unwrap()), 0x61008);
        assert_eq!(&t[8..13], &[0xb8, 110, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(t[15..23].try_into().unwrap()), 0x401007);
        assert_eq!(
            u64::from_le_bytes(t[29..37].try_into().unwrap()),
            0x7ff0_0000_0400
        );
        let t = trampoline(0x61040, MovSite::Edi, -100i32 as u32, 0x401007, 0x400);
        assert_eq!(
            &t[8..13],
            &[0xbf, 0x9c, 0xff, 0xff, 0xff],
            "mov $-100, %edi"
        );
        assert_eq!(&t[13..15], &[0x48, 0xb9]);
    }

    /// Every state a `xor` site passes through while it is patched leaves
    /// each old instruction boundary either intact or faulting in a way
    /// `usertrap_fault` recognises once the patch is complete.
    #[test]
    fn every_intermediate_state_of_a_xor_patch_is_safe_to_enter() {
        let table = 0x63000;
        let entries: Vec<u64> = (0..40).map_while(|n| nth_entry(table, n, true)).collect();
        assert!(entries.len() >= 20, "{entries:x?}");
        for &at in &entries {
            let patch = xor_jump(at);
            assert_eq!(xor_entry(&patch, table), Some(at), "{at:#x}");
            let mut code = XOR_SITE;
            let steps = patch_steps(&patch);
            for (n, (off, bytes)) in steps.iter().enumerate() {
                code[*off..off + bytes.len()].copy_from_slice(bytes);
                // From `site`: the old `xor; syscall` or a fault there.
                assert!(
                    code[..4] == XOR_SITE[..4] || code[0] == BAD_OPCODE || n == steps.len() - 1,
                    "site, step {n}: {code:02x?}"
                );
                // From `site+2`: the old `syscall`, or `and $imm32,%eax`
                // running into the `ud2`.
                assert!(
                    code[2..4] == XOR_SITE[2..4] || (code[2] == 0x25 && code[7..9] == [0x0f, 0x0b]),
                    "site+2, step {n}: {code:02x?}"
                );
                // From `site+4`: the old `cmp` (with any REX.W prefix), or
                // a fault.
                let rex_w = (0x48..=0x4f).contains(&code[4]);
                assert!(
                    code[5..] == XOR_SITE[5..] && (rex_w || code[4] == XOR_SITE[4])
                        || (faulting_lead(code[4]) && (!rex_w || code[5] == BAD_OPCODE)),
                    "site+4, step {n}: {code:02x?}"
                );
            }
            assert_eq!(code, patch);
        }
        // An entry outside the table, or one `mov` sites use, is not one.
        assert_eq!(xor_entry(&xor_jump(0x60700), table), None);
        let mov = nth_entry(table, 0, false).unwrap();
        assert!(!xor_capable(mov));
        let mut p = xor_jump(entries[0]);
        p[3] += 8;
        assert_eq!(xor_entry(&p, table), None, "not an entry's start");
        // Every placement of the table has room for both kinds.
        for page in 0..(TABLE_HI - TABLE_SIZE - TABLE_LO) / PAGE_SIZE {
            let base = TABLE_LO + page * PAGE_SIZE;
            assert!(nth_entry(base, 7, true).is_some(), "{base:#x}");
            assert!(nth_entry(base, 100, false).is_some(), "{base:#x}");
        }
    }

    #[test]
    fn xor_sites_are_glibc_reads_only() {
        assert!(is_patchable_xor(&XOR_SITE, 0));
        assert!(!is_patchable_xor(&XOR_SITE, 1));
        let mut other = XOR_SITE;
        other[9] = 0xfe;
        assert!(!is_patchable_xor(&other, 0));
    }

    #[test]
    fn a_xor_trampoline_returns_through_its_tail() {
        let (at, site) = (0x61f40, 0x7f00_1234_5678);
        let t = xor_trampoline(at, site, 0x7ff0_0000_0400);
        assert_eq!(
            u64::from_le_bytes(t[0..8].try_into().unwrap()),
            at + XOR_CODE
        );
        assert_eq!(&t[8..10], &[0x31, 0xc0]);
        assert_eq!(
            u64::from_le_bytes(t[12..20].try_into().unwrap()),
            at + XOR_TAIL
        );
        assert_eq!(&t[XOR_TAIL as usize - 2..XOR_TAIL as usize], &[0x0f, 0x05]);
        assert_eq!(&t[XOR_TAIL as usize..XOR_TAIL as usize + 6], &XOR_SITE[4..]);
        assert_eq!(u64::from_le_bytes(t[48..56].try_into().unwrap()), site + 10);
    }
}
