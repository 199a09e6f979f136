//! The initial stack of a new program: strings, argv, envp, auxv, as the
//! System V x86_64 ABI and Linux lay them out.

use crate::arch::{USER_END, page_down};
use crate::errno::{Errno, SysResult};
use crate::mm::{AddressSpace, VmaName};
use crate::platform::Platform;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Maps the main thread's stack (size from RLIMIT_STACK, at least 256 KiB
/// for the arguments and environment, which may take 128 KiB whatever
/// the limit, at most 256 MiB) just below a randomized top; a program
/// that outgrows it faults (SIGSEGV), as it would at Linux's
/// RLIMIT_STACK. Returns its top.
pub fn map_stack(p: &mut dyn Platform, mm: &mut AddressSpace, size: u64) -> SysResult<u64> {
    let size = page_down(size.clamp(256 << 10, 256 << 20));
    let top = page_down(USER_END - (crate::kernel::random::u64() % (1 << 28)));
    mm.map_anon(
        p,
        top - size,
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        true,
        VmaName::Stack,
    )?;
    mm.stack_top = top;
    // mmap allocations go below the stack, with a gap.
    mm.mmap_top = page_down(top - size - (crate::kernel::random::u64() % (1 << 28)) - (64 << 20));
    Ok(top)
}

/// Writes strings and vectors below `top`; returns the initial rsp.
/// What execve read is within Linux's limits already
/// (`AddressSpace::read_exec_args`: a quarter of RLIMIT_STACK at most),
/// so it fits the stack `map_stack` made; E2BIG if it did not.
pub fn build_stack(
    mm: &AddressSpace,
    top: u64,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    auxv: &[(u64, u64)],
) -> SysResult<u64> {
    // The strings, from the top down: the program's name, the
    // environment, the arguments, the platform; each in one piece, so
    // from the lowest address up the platform comes first. Written in
    // one copy (an `xargs` child has thousands).
    let strings: Vec<&[u8]> = std::iter::once(&b"x86_64"[..])
        .chain(argv.iter().map(|a| &a[..]))
        .chain(envp.iter().map(|e| &e[..]))
        .chain(std::iter::once(execfn))
        .collect();
    let size: usize = strings.iter().map(|s| s.len() + 1).sum();
    let room = mm.stack_size(top).ok_or(Errno::E2BIG)?;
    if size as u64 > room {
        return Err(Errno::E2BIG);
    }
    let mut sp = top - size as u64;
    let mut area = Vec::with_capacity(size);
    let mut addrs = Vec::with_capacity(strings.len());
    for s in &strings {
        addrs.push(sp + area.len() as u64);
        area.extend_from_slice(s);
        area.push(0);
    }
    mm.write_bytes(sp, &area)?;
    let platform = addrs[0];
    let arg_addrs = &addrs[1..1 + argv.len()];
    let env_addrs = &addrs[1 + argv.len()..1 + argv.len() + envp.len()];
    let execfn_addr = addrs[addrs.len() - 1];
    let mut rnd = [0u8; 16];
    crate::kernel::random::fill(&mut rnd);
    sp &= !15;
    sp -= 16;
    mm.write_bytes(sp, &rnd)?;
    let random_addr = sp;

    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(arg_addrs);
    words.push(0);
    words.extend(env_addrs);
    words.push(0);
    for &(k, v) in auxv {
        words.push(k);
        words.push(match k {
            AT_RANDOM => random_addr,
            AT_EXECFN => execfn_addr,
            AT_PLATFORM => platform,
            _ => v,
        });
    }
    words.push(AT_NULL);
    words.push(0);
    let bytes = words.len() as u64 * 8;
    sp = (sp - bytes) & !15;
    if top - sp > room {
        return Err(Errno::E2BIG);
    }
    let mut buf = Vec::with_capacity(words.len() * 8);
    for w in &words {
        buf.extend_from_slice(&w.to_ne_bytes());
    }
    mm.write_bytes(sp, &buf)?;
    Ok(sp)
}
