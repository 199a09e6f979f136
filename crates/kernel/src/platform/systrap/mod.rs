//! The systrap platform: workload syscalls trap inside the stub process
//! itself and reach the kernel through shared memory, not ptrace.
//!
//! Each workload address space is a stub process cloned by the zygote;
//! each workload thread is a thread of it, 1:1. A thread's syscall raises
//! SIGSYS (syscall user dispatch: every syscall from outside the blob is
//! dispatched; the seccomp filter traps as a backstop). The blob's handler
//! (see [`blob`]) copies the registers from its signal frame into the
//! thread's slot, publishes the stop in the slot's state word and waits:
//! it spins while the kernel runs on another CPU, else sleeps on the
//! word. The kernel polls the state words of running threads (spinning a
//! while after each stop, then sleeping on the doorbell eventfd, which a
//! stub rings only when the kernel announced it sleeps), serves the
//! syscall, writes the registers back and flips the word. No host thread
//! is traced; ptrace is not used at all.
//!
//! Mapping changes and new threads are requests to the stub's control
//! thread: the kernel writes them on the stub's read-only request page
//! and the control thread executes them (see `blob`), then proves it
//! through the done eventfd, which no workload thread may write. New
//! stub processes are made the same way by the zygote, which runs no
//! workload code, so its answers (the new pid) can be trusted.
//!
//! Everything a stub writes is treated as untrusted: registers are the
//! workload's own, results of a workload stub's requests are hints that
//! only affect that stub, pointers are checked against the thread's own
//! area before the kernel reads through them.

pub mod blob;
mod deferred;
use deferred::Deferred;
pub mod filter;
pub mod layout;

use std::collections::{HashMap, VecDeque};

/// The maps looked up on every stop (several times): foldhash, seeded per
/// map, instead of std's SipHash. Their keys are host thread ids and the
/// kernel's own space ids, which the workload does not choose.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::io::{Error, Result};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use super::ceiling::TaskCeiling;
use super::vdso::{HostVdso, host_vdso};
use super::{FpuState, MapOp, Platform, SpaceId, Stop, ThreadId};
use crate::arch::{PAGE_SIZE, REG_WORDS, Regs, TASK_SIZE_MAX, USER_END, regs_words, words_regs};
use blob::BlobLayout;
use layout::*;

/// The x86 trap flag (single-stepping).
const EFLAGS_TF: u64 = 0x100;

fn errno() -> Error {
    Error::last_os_error()
}

/// How long the kernel waits for a stub's control thread or a thread it
/// stops before it gives up on that stub process and kills it.
const STUB_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the kernel spins for a control thread's answer before it
/// sleeps on the done eventfd.
const CTL_SPIN: Duration = Duration::from_micros(30);
/// How long a stub waits actively for the kernel's answer before it
/// sleeps (converted to PAUSE iterations for KSTATE): about one cross-CPU
/// wake-up of a halted vCPU, which is what sleeping would cost.
const STUB_SPIN: Duration = Duration::from_micros(20);

struct Space {
    /// The stub process; 0 while it has none yet (an image exec builds:
    /// see `new_space_for_exec`), when every change is kept back.
    pid: i32,
    /// Memory-file offset of its control pages.
    ctl: u64,
    seq: u64,
    threads: Vec<ThreadId>,
    /// Areas mapped in this stub: (address, memory-file offset).
    areas: Vec<(u64, u64)>,
    /// Areas of ended threads: index into `areas`, the old host tid.
    free_areas: Vec<(usize, i32)>,
    /// Mapping changes the stub has not made yet (see `Deferred`).
    deferred: Deferred,
    /// How many times kept-back changes were made (see `poll_stop`).
    flushes: u64,
}

/// Whether a control call's result is an error (-4095..-1).
fn failed(r: i64) -> bool {
    (-4095..0).contains(&r)
}

struct Thread {
    space: SpaceId,
    area: u64,
    mf: u64,
    regs: Regs,
    /// Running workload code (its stop not yet collected).
    running: bool,
    /// Has entered the workload at least once.
    started: bool,
    /// FPU state to load at the next resume.
    fpu: Option<FpuState>,
    /// The last stop came through a patched site (FPU state live in the
    /// thread), not the handler (FPU state in its frame).
    patched: bool,
    /// The last stop was a syscall dispatched to the handler from a site
    /// the kernel may patch.
    patchable: bool,
    /// Its space's `flushes` when it was last resumed.
    flushes_seen: u64,
    /// The registers its slot holds (as last collected or written), if
    /// known: `resume` writes only the words that differ, so that the
    /// slot's cache lines it leaves alone stay shared with the stub's CPU
    /// (the stub saves only changed words too). A workload that rewrites
    /// its slot meanwhile changes only its own registers, as it can today
    /// between the kernel's write and the stub's read.
    in_slot: Option<Regs>,
    /// rbx, rbp and r12-r15 in `regs` and `in_slot` are what the kernel
    /// last knew, not what the slot holds: the last stop left them there
    /// (see `collect`) and `get_regs` reads them when the kernel asks.
    callee_in_slot: bool,
}

/// Words 0..CALLEE_WORDS of `struct user_regs_struct`: r15, r14, r13,
/// r12, rbp, rbx, the registers a function call preserves. The slot's
/// block starts so that they fill one cache line of their own
/// (`SLOT_REGS`).
const CALLEE_WORDS: usize = 6;

/// Reads the callee-saved registers a stop left in the slot (see
/// `collect`) into the thread's registers and what its slot is known to
/// hold.
fn load_callee_saved(region: *mut u8, t: &mut Thread) {
    if !t.callee_in_slot || t.running {
        return;
    }
    // SAFETY: the thread's slot in the region (see `ptr`); the words are
    // the workload's and only copied.
    let block = unsafe { region.add((t.mf + AREA_SLOT + SLOT_REGS) as usize) } as *const u64;
    let mut w = regs_words(&t.regs);
    let mut known = t.in_slot.map(|r| regs_words(&r));
    for (i, w) in w.iter_mut().enumerate().take(CALLEE_WORDS) {
        // SAFETY: inside the block.
        *w = unsafe { block.add(i).read_volatile() };
        if let Some(k) = known.as_mut() {
            k[i] = *w;
        }
    }
    t.regs = words_regs(w);
    t.in_slot = known.map(words_regs);
    t.callee_in_slot = false;
}

/// A space that was killed, until its process is reaped: then its
/// memory-file pages may be used again.
struct Dying {
    ctl: u64,
    areas: Vec<u64>,
    /// Its number among kills (`super::kills`).
    kill: u64,
}

/// How the handoffs went (see `Platform::counters`): the costly cases
/// are the ones where a side slept and had to be woken (~20 µs each way
/// across CPUs here).
#[derive(Default)]
struct Counters {
    /// Control round trips (mapping changes, new threads, new stubs).
    ctl_calls: u64,
    /// ... whose control thread slept and was woken.
    ctl_woken: u64,
    /// Control threads woken ahead of a call (`prewake`).
    ctl_prewoken: u64,
    /// ... whose answer the kernel had to sleep for.
    ctl_slept: u64,
    /// Time spent in them, in microseconds.
    ctl_us: u64,
    /// Resumes of a workload thread that slept on its state word.
    stub_woken: u64,
    /// Wake-ups of the kernel by the doorbell.
    doorbell_wakes: u64,
    /// Control round trips by cause: [`CtlCause`].
    ctl_by: [u64; 7],
    /// Their time by cause, in microseconds (sums to `ctl_us`).
    ctl_us_by: [u64; 7],
}

/// The counters of control calls by cause, in the order of [`CtlCause`].
const CTL_CAUSE_NAMES: [&str; 7] = [
    "ctl_space",
    "ctl_thread",
    "ctl_fault",
    "ctl_fresh",
    "ctl_mapped",
    "ctl_other",
    "ctl_exec",
];
/// Their time by cause, in the same order.
const CTL_CAUSE_US_NAMES: [&str; 7] = [
    "ctl_us_space",
    "ctl_us_thread",
    "ctl_us_fault",
    "ctl_us_fresh",
    "ctl_us_mapped",
    "ctl_us_other",
    "ctl_us_exec",
];

/// Why the kernel made a control call (the breakdown of `ctl_calls`).
#[derive(Clone, Copy)]
enum CtlCause {
    /// The zygote: a new stub process.
    Space = 0,
    /// A new thread (and its area's pages).
    Thread = 1,
    /// A fault on a kept-back range: the kept-back changes.
    Fault = 2,
    /// Mapping changes of fresh ranges that could not be kept back.
    Fresh = 3,
    /// Changes inside ranges the host maps: unmaps, protections.
    Mapped = 4,
    /// Anything else (the zygote's first call).
    Other = 5,
    /// An exec in place: the old image out, the new one in.
    Exec = 6,
}

pub struct SystrapPlatform {
    counters: Counters,
    region: *mut u8,
    blob: BlobLayout,
    zygote_pid: i32,
    zygote_ctl: u64,
    zygote_seq: u64,
    spaces: FastMap<SpaceId, Space>,
    next_space: SpaceId,
    /// The cause of the control calls being made (for the counters).
    ctl_cause: CtlCause,
    threads: FastMap<ThreadId, Thread>,
    /// Threads running workload code, with their state words.
    running: Vec<(ThreadId, *const AtomicU32)>,
    pending: VecDeque<(ThreadId, Stop)>,
    dying: HashMap<i32, Dying>,
    /// Memory-file units (one area each) free for reuse, and the next new one.
    free_units: Vec<u64>,
    next_unit: u64,
    doorbell: RawFd,
    done: RawFd,
    sigchld_fd: RawFd,
    foreign_exits: Vec<(i32, i32)>,
    task_ceiling: TaskCeiling,
    xsave_size: usize,
    xcr0: u64,
    /// Where stubs have the vDSO, if the zygote could move it there.
    vdso: Option<u64>,
    /// The kernel's own waiting policy (see [`SpinPolicy`]).
    spin: SpinPolicy,
}

/// When the kernel waits actively for the next stop. Spinning pays when a
/// thread makes syscalls in quick succession on another CPU (its next stop
/// comes within the window); it costs a CPU otherwise. So after two windows
/// in a row without a stop the kernel skips 2, 4, ... 64 chances before it
/// tries again: a workload that computes without syscalls loses at most a
/// window now and then.
///
/// It spins however many threads run. It once spun only while fewer ran
/// than there are CPUs, so as not to take a CPU from the workload; but
/// threads that make syscalls mostly wait for the kernel, and with as many
/// of them as CPUs (a pipeline such as `find | xargs stat`, two threads on
/// two vCPUs) the kernel then slept after every service and each next stop
/// paid a ~20 µs wake-up. Measured side by side on an idle 2-vCPU host:
/// `find | xargs stat` 407-510 -> 184-199 ms, 2 threads of getppid
/// 105-178K -> 287-344K calls/s, one thread and `java -version` unchanged.
#[derive(Default)]
struct SpinPolicy {
    misses: u32,
    skip: u32,
}

impl SpinPolicy {
    fn should_spin(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    fn record(&mut self, hit: bool) {
        if hit {
            self.misses = 0;
        } else {
            self.misses += 1;
            if self.misses >= 2 {
                self.skip = 1 << self.misses.min(6);
            }
        }
    }
}

/// PAUSE iterations that take about `d` on this CPU.
fn pause_iterations(d: Duration) -> u32 {
    const N: u32 = 20_000;
    let start = Instant::now();
    for _ in 0..N {
        std::hint::spin_loop();
    }
    let per = start.elapsed().as_nanos().max(1) as f64 / N as f64;
    ((d.as_nanos() as f64 / per) as u32).clamp(100, 200_000)
}

use super::xsave::{DYNAMIC_KNOWN, dynamic_features, user_features, xsave_size};

/// The low half of the stub's XSAVE/XRSTOR feature mask (the high half is
/// all ones): every component but `DYNAMIC_KNOWN`.
pub(crate) const XSAVE_MASK_LO: u32 = !(DYNAMIC_KNOWN as u32);

/// Whether this CPU and host kernel have what the platform needs.
pub fn supported() -> std::result::Result<(), String> {
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let leaf1 = core::arch::x86_64::__cpuid(1);
    if leaf7.ebx & 1 == 0 {
        return Err("the CPU has no FSGSBASE".into());
    }
    if leaf7.ecx & (1 << 22) == 0 {
        return Err("the CPU has no RDPID".into());
    }
    if leaf1.ecx & (1 << 27) == 0 {
        return Err("the CPU has no OSXSAVE".into());
    }
    if dynamic_features() & !DYNAMIC_KNOWN != 0 {
        return Err(format!(
            "the CPU has dynamically enabled XSAVE features (mask {:#x}) other than AMX tile data",
            dynamic_features()
        ));
    }
    if xsave_size() > (PAGE_SIZE - 4) as usize {
        return Err("the XSAVE area exceeds a page".into());
    }
    Ok(())
}

/// The kernel's FPU image format: the XSAVE layout with the software
/// bytes signal frames carry (ptrace's NT_X86_XSTATE is the same).
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const SW_BYTES: usize = 464;

fn eventfd() -> Result<RawFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 { Err(errno()) } else { Ok(fd) }
}

fn drain(fd: RawFd) -> u64 {
    let mut v = 0u64;
    // SAFETY: reading 8 bytes into a u64.
    let n = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    if n == 8 { v } else { 0 }
}

fn futex_wake(word: *const AtomicU32) {
    // SAFETY: a shared futex on a page of the memory file; waking has no
    // effect on memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, 1, 0, 0, 0);
    }
}

/// The CPU this thread runs on.
/// Writes `regs` into a slot's register block `at`, only the words that
/// differ from `known` (what the block holds) when that is known.
///
/// # Safety
/// `at` points at a slot's register block in the region.
unsafe fn write_regs(at: *mut u8, regs: &Regs, known: Option<&Regs>) {
    const RAX_WORD: usize = (regs::RAX / 8) as usize;
    let new = regs_words(regs);
    let at = at as *mut u64;
    match known {
        Some(old) => {
            let old = regs_words(old);
            for i in 0..REG_WORDS {
                // rax goes back in SLOT_RAX; the block's word is the
                // signal path's to write.
                if new[i] != old[i] && i != RAX_WORD {
                    // SAFETY: inside the block (the caller's promise).
                    unsafe { at.add(i).write_volatile(new[i]) };
                }
            }
        }
        // SAFETY: the caller's promise.
        None => unsafe { (at as *mut Regs).write_volatile(*regs) },
    }
}

/// Publishes the kernel's CPU in the stubs' shared state word (they spin
/// only against a kernel on another CPU). Written only when it moved: a
/// store would take the line from every stub CPU that reads it, on every
/// stop.
fn publish_cpu(word: &AtomicU32) {
    let c = cpu();
    if word.load(Ordering::Relaxed) != c {
        word.store(c, Ordering::Relaxed);
    }
}

fn cpu() -> u32 {
    let r: u64;
    // SAFETY: rdpid reads TSC_AUX (supported() checked for it).
    unsafe { std::arch::asm!("rdpid {}", out(reg) r, options(nomem, nostack)) };
    (r & 0xfff) as u32
}

/// What the zygote needs, captured before fork (no allocation after).
struct ZygoteArgs {
    memfd: RawFd,
    doorbell: RawFd,
    done: RawFd,
    ctl: u64,
    filter: *const libc::sock_fprog,
    handler: u64,
    restorer: u64,
    entry: u64,
    vdso: Option<HostVdso>,
}

const SA_RESTORER: u64 = 0x0400_0000;

/// The kernel's `struct sigaction` for rt_sigaction.
#[repr(C)]
struct KSigAction {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

/// Runs in the forked zygote. Async-signal-safe: raw syscalls only.
///
/// # Safety
/// Only in a freshly forked child of a single-threaded parent.
unsafe fn zygote_setup(a: &ZygoteArgs) -> ! {
    use super::child::{drop_all_capabilities, unregister_rseq};
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"atoll-stub".as_ptr());
        let all: u64 = !0;
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            0usize,
            8usize,
        );
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        unregister_rseq();
        // The memory file, the doorbell and the done eventfd become 3, 4
        // and 5; nothing else stays open.
        let m = libc::fcntl(a.memfd, libc::F_DUPFD, 10);
        let d = libc::fcntl(a.doorbell, libc::F_DUPFD, 10);
        let e = libc::fcntl(a.done, libc::F_DUPFD, 10);
        libc::dup2(m, MEMFD as i32);
        libc::dup2(d, DOORBELL_FD as i32);
        libc::dup2(e, DONE_FD as i32);
        libc::syscall(libc::SYS_close_range, DONE_FD as u32 + 1, u32::MAX, 0u32);
        for fd in 0..3 {
            libc::close(fd);
        }
        let fixed = libc::MAP_SHARED | libc::MAP_FIXED;
        let maps = [
            (CODE, CODE_SIZE, libc::PROT_READ | libc::PROT_EXEC, MF_CODE),
            (KSTATE, PAGE_SIZE, libc::PROT_READ, MF_KSTATE),
            (CTL_REQ, CTL_REQ_SIZE, libc::PROT_READ, a.ctl),
            (
                CTL_RES,
                CTL_RES_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                a.ctl + CTL_REQ_SIZE,
            ),
        ];
        for (addr, len, prot, off) in maps {
            let r = libc::mmap(
                addr as *mut libc::c_void,
                len as usize,
                prot,
                fixed,
                MEMFD as i32,
                off as i64,
            );
            if r as u64 != addr {
                libc::_exit(125);
            }
        }
        // The host's vDSO moves to where every stub keeps it; if it cannot
        // move, it goes with the rest (no vDSO for the workload).
        let keep = match a.vdso {
            Some(v) if v.relocate_raw() => {
                *((CTL_RES + RES_VDSO_MOVED) as *mut u64) = 1;
                v.kept()
            }
            _ => (TASK_SIZE_MAX, TASK_SIZE_MAX),
        };
        // Seal the blob and the kernel's page (hosts before 6.10 lack
        // mseal: the filters alone keep them in place there).
        libc::syscall(462 /* mseal */, CODE, CODE_SIZE + PAGE_SIZE, 0);
        for sig in [
            libc::SIGSYS,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            SIG_INTERRUPT,
        ] {
            let act = KSigAction {
                handler: a.handler,
                flags: (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER,
                restorer: a.restorer,
                mask: !0,
            };
            if libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KSigAction,
                0usize,
                8usize,
            ) != 0
            {
                libc::_exit(125);
            }
        }
        drop_all_capabilities();
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if libc::syscall(libc::SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, a.filter) != 0 {
            libc::_exit(126);
        }
        std::arch::asm!(
            "jmp *{}",
            in(reg) a.entry,
            in("r12") keep.0,
            in("r13") keep.1,
            options(noreturn, att_syntax)
        );
    }
}

impl SystrapPlatform {
    /// Sets up the platform over the kernel's memory file and forks the
    /// zygote. The caller has blocked SIGCHLD (read from a signalfd).
    pub fn new(memfd: RawFd) -> Result<SystrapPlatform> {
        supported().map_err(Error::other)?;
        let work = filter::work_filter();
        let (image, blob) = blob::image(&work);
        // SAFETY: mapping our own memory file's platform region.
        let region = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                memfd,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            return Err(errno());
        }
        let region = region as *mut u8;
        // SAFETY: the region holds the code pages and the kernel's page.
        unsafe {
            std::ptr::copy_nonoverlapping(
                image.as_ptr(),
                region.add(MF_CODE as usize),
                image.len(),
            );
            let ks = region.add(MF_KSTATE as usize);
            (ks.add(KS_ONE as usize) as *mut u64).write(1);
            (ks.add(KS_SPIN as usize) as *mut u32).write(pause_iterations(STUB_SPIN));
            (ks.add(KS_CPU as usize) as *mut u32).write(u32::MAX);
        }
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain sigset manipulation on a local.
        let sigchld_fd = unsafe {
            libc::sigemptyset(&mut mask);
            libc::sigaddset(&mut mask, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
            libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        };
        if sigchld_fd < 0 {
            return Err(errno());
        }
        let doorbell = eventfd()?;
        let done = eventfd()?;
        let mut p = SystrapPlatform {
            counters: Counters::default(),
            region,
            blob,
            zygote_pid: 0,
            zygote_ctl: 0,
            zygote_seq: 0,
            spaces: FastMap::default(),
            next_space: 1,
            ctl_cause: CtlCause::Other,
            threads: FastMap::default(),
            running: Vec::new(),
            pending: VecDeque::new(),
            dying: HashMap::new(),
            free_units: Vec::new(),
            next_unit: MF_POOL,
            doorbell,
            done,
            sigchld_fd,
            foreign_exits: Vec::new(),
            task_ceiling: TaskCeiling::default(),
            xsave_size: xsave_size(),
            xcr0: user_features(),
            vdso: None,
            spin: SpinPolicy::default(),
        };
        p.zygote_ctl = p.alloc_unit()?;
        let vdso = host_vdso();
        p.fork_zygote(memfd, vdso)?;
        // SAFETY: the zygote's result page; the zygote runs no workload
        // code, so what it wrote there is its own.
        let moved = unsafe {
            (p.ptr(p.zygote_ctl + CTL_REQ_SIZE + RES_VDSO_MOVED) as *const u64).read_volatile()
        };
        p.vdso = vdso.filter(|_| moved == 1).map(|v| v.in_stub());
        Ok(p)
    }

    /// Host pid of the zygote (tests and /proc checks).
    pub fn zygote_pid(&self) -> i32 {
        self.zygote_pid
    }

    fn fork_zygote(&mut self, memfd: RawFd, vdso: Option<HostVdso>) -> Result<()> {
        let prog = filter::stub_filter();
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        let args = ZygoteArgs {
            memfd,
            doorbell: self.doorbell,
            done: self.done,
            ctl: self.zygote_ctl,
            filter: &fprog,
            handler: self.blob.handler,
            restorer: self.blob.restorer,
            entry: self.blob.zygote,
            vdso,
        };
        // SAFETY: the kernel is single-threaded here; the child runs only
        // async-signal-safe code and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(errno());
        }
        if pid == 0 {
            unsafe { zygote_setup(&args) }
        }
        self.zygote_pid = pid;
        // The zygote answers a first (empty) request once it is ready:
        // this also proves its filter let the control loop run.
        self.zygote_call(&[]).map_err(|e| {
            // SAFETY: our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let mut st = 0;
            unsafe { libc::waitpid(pid, &mut st, 0) };
            Error::other(format!("the stub zygote did not start: {e}"))
        })?;
        Ok(())
    }

    fn ptr(&self, off: u64) -> *mut u8 {
        debug_assert!(off < REGION_SIZE);
        // SAFETY: offsets inside the mapped region.
        unsafe { self.region.add(off as usize) }
    }

    fn kstate_u32(&self, field: u64) -> &AtomicU32 {
        // SAFETY: an aligned word of the kernel's page.
        unsafe { &*(self.ptr(MF_KSTATE + field) as *const AtomicU32) }
    }

    fn alloc_unit(&mut self) -> Result<u64> {
        if let Some(u) = self.free_units.pop() {
            return Ok(u);
        }
        if self.next_unit + AREA_SIZE > REGION_SIZE {
            return Err(Error::from_raw_os_error(libc::EAGAIN));
        }
        let u = self.next_unit;
        self.next_unit += AREA_SIZE;
        Ok(u)
    }

    /// Returns a unit's pages to the host and the unit to the pool.
    fn free_unit(&mut self, off: u64) {
        // SAFETY: our own mapping of the unit; MADV_REMOVE punches the
        // same hole in the memory file.
        unsafe {
            libc::madvise(
                self.ptr(off) as *mut libc::c_void,
                AREA_SIZE as usize,
                libc::MADV_REMOVE,
            );
        }
        self.free_units.push(off);
    }

    fn host_tasks(&self) -> usize {
        self.spaces.values().filter(|sp| sp.pid > 0).count() + self.threads.len()
    }

    fn zygote_call(&mut self, entries: &[[u64; 8]]) -> Result<Vec<i64>> {
        let (pid, ctl) = (self.zygote_pid, self.zygote_ctl);
        let mut seq = self.zygote_seq;
        let r = self.ctl_call(pid, ctl, &mut seq, entries);
        self.zygote_seq = seq;
        r
    }

    fn space_call(&mut self, space: SpaceId, entries: &[[u64; 8]]) -> Result<Vec<i64>> {
        if self.spaces.get(&space).is_some_and(|sp| sp.pid == 0) {
            // An exec's image that needs its stub now (a new thread).
            let cause = self.ctl_cause;
            let (pid, ctl) = self.spawn_stub()?;
            self.ctl_cause = cause;
            let sp = self.spaces.get_mut(&space).unwrap();
            sp.pid = pid;
            sp.ctl = ctl;
        }
        let sp = self
            .spaces
            .get(&space)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        let (pid, ctl) = (sp.pid, sp.ctl);
        let mut seq = sp.seq;
        // The space's stopped threads wait for the kernel, spinning while
        // it runs on another CPU; the control thread needs a CPU now, and
        // on a 2-CPU host one of them is taken by such a spinner until its
        // budget runs out (~20 µs): let them yield to it (NOSPIN_CTL).
        // Their next resume clears this.
        for t in &sp.threads {
            if let Some(th) = self.threads.get(t)
                && !th.running
                && th.started
            {
                // SAFETY: the slot's flag word in our region.
                unsafe {
                    (self.slot(th).add(SLOT_NOSPIN as usize) as *mut u32).write_volatile(NOSPIN_CTL)
                };
            }
        }
        let r = self.ctl_call(pid, ctl, &mut seq, entries);
        if let Some(sp) = self.spaces.get_mut(&space) {
            sp.seq = seq;
        }
        if r.is_err() {
            self.kill_space(space);
        }
        r
    }

    /// Runs `entries` through the control thread of stub `pid` (control
    /// pages at `ctl`) and returns their results once the done eventfd
    /// proves they ran.
    fn ctl_call(
        &mut self,
        pid: i32,
        ctl: u64,
        seq: &mut u64,
        entries: &[[u64; 8]],
    ) -> Result<Vec<i64>> {
        assert!(entries.len() as u64 <= CTL_CAP);
        let req = self.ptr(ctl);
        let res = self.ptr(ctl + CTL_REQ_SIZE);
        // A stub killed after a timeout may have rung just before it died.
        drain(self.done);
        *seq += 1;
        // SAFETY: the request page is ours to write; entries fit (asserted).
        unsafe {
            for (i, e) in entries.iter().enumerate() {
                let at = req.add((REQ_ENTRIES + i as u64 * ENTRY_SIZE) as usize) as *mut [u64; 8];
                at.write_volatile(*e);
            }
            (req.add(REQ_COUNT as usize) as *mut u64).write_volatile(entries.len() as u64);
            let seq_word = &*(req.add(REQ_SEQ as usize) as *const AtomicU64);
            seq_word.store(*seq, Ordering::Release);
            fence(Ordering::SeqCst);
            let sleeping = &*(res.add(RES_SLEEPING as usize) as *const AtomicU32);
            if sleeping.load(Ordering::Relaxed) != 0 {
                futex_wake(req as *const AtomicU32);
                self.counters.ctl_woken += 1;
            }
        }
        self.counters.ctl_calls += 1;
        let cause = self.ctl_cause as usize;
        self.counters.ctl_by[cause] += 1;
        self.ctl_cause = CtlCause::Other;
        let done_hint = unsafe { &*(res.add(RES_DONE as usize) as *const AtomicU64) };
        // Wait for the answer actively only about as long as a control
        // thread running on another CPU needs to give it (a wake-up there
        // costs ~20 µs), and by yielding, not spinning: the control
        // thread may be waiting for this very CPU (on two vCPUs it often
        // is), and a yield hands it over at once where a spin held it
        // for the whole window and then a sleep cost a wake-up of this
        // CPU. Past the window it may wait for a CPU elsewhere, and a
        // kernel that kept at it would only delay it (a loaded machine
        // made every mapping change of the workload cost a whole time
        // slice): sleep on the done eventfd instead.
        let start = Instant::now();
        let mut spins = 0u32;
        let mut slept = false;
        loop {
            if done_hint.load(Ordering::Acquire) == *seq && drain(self.done) > 0 {
                break;
            }
            spins += 1;
            if !spins.is_multiple_of(8) || start.elapsed() < CTL_SPIN {
                // SAFETY: no arguments, no memory.
                unsafe { libc::sched_yield() };
                continue;
            }
            let mut pfd = libc::pollfd {
                fd: self.done,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 10) };
            if !slept {
                slept = true;
                self.counters.ctl_slept += 1;
            }
            if drain(self.done) > 0 {
                break;
            }
            // A slow (or lying) stub: watch that it still lives.
            if !alive(pid) || start.elapsed() > STUB_TIMEOUT {
                return Err(Error::from_raw_os_error(libc::EIO));
            }
        }
        let us = start.elapsed().as_micros() as u64;
        self.counters.ctl_us += us;
        self.counters.ctl_us_by[cause] += us;
        let mut out = Vec::with_capacity(entries.len());
        for i in 0..entries.len() {
            // SAFETY: results lie inside the result page.
            out.push(unsafe {
                (res.add((RES_RESULTS + 8 * i as u64) as usize) as *const i64).read_volatile()
            });
        }
        Ok(out)
    }

    /// Keeps `ops` back (see [`Deferred`]) if they may wait: `fresh`
    /// ones (the host gives no access in their ranges), or ones inside
    /// ranges whose changes are already kept back.
    fn defer(&mut self, space: SpaceId, ops: &[MapOp], fresh: bool) -> bool {
        let Some(sp) = self.spaces.get_mut(&space) else {
            return false;
        };
        if ops.is_empty() || (!fresh && sp.deferred.is_empty()) {
            return false;
        }
        let mut d = sp.deferred.clone();
        if !ops.iter().all(|o| d.add(o, fresh)) {
            return false;
        }
        sp.deferred = d;
        true
    }

    /// Runs the space's kept-back changes, then `entries`, in as few
    /// control calls as fit; returns the results of `entries`. A kept-back
    /// change that fails (the host is out of mappings or memory) ends the
    /// stub process: the kernel already told the workload it succeeded.
    fn call_with_deferred(&mut self, space: SpaceId, entries: Vec<[u64; 8]>) -> Result<Vec<i64>> {
        let mut all = match self.spaces.get_mut(&space) {
            Some(sp) => sp.deferred.take(),
            None => Vec::new(),
        };
        let kept = all.len();
        if kept > 0
            && let Some(sp) = self.spaces.get_mut(&space)
        {
            sp.flushes += 1;
        }
        all.extend(entries);
        let mut out = Vec::with_capacity(all.len());
        for chunk in all.chunks(CTL_CAP as usize) {
            out.extend(self.space_call(space, chunk)?);
        }
        if out[..kept].iter().any(|r| failed(*r)) {
            tracing::warn!(space, "a deferred mapping change failed: the process ends");
            self.kill_space(space);
            return Err(Error::from_raw_os_error(libc::ENOMEM));
        }
        Ok(out.split_off(kept))
    }

    /// Makes the space's kept-back changes now; false if that failed
    /// (the space is gone then).
    fn flush_deferred(&mut self, space: SpaceId) -> bool {
        let pending = self
            .spaces
            .get(&space)
            .is_some_and(|sp| !sp.deferred.is_empty());
        !pending || self.call_with_deferred(space, Vec::new()).is_ok()
    }

    /// Kills a stub process that misbehaved: its threads are gone.
    fn kill_space(&mut self, space: SpaceId) {
        let Some(sp) = self.spaces.get(&space) else {
            return;
        };
        let threads = sp.threads.clone();
        self.drop_space(space);
        for t in threads {
            self.pending.push_back((t, Stop::Gone));
        }
    }

    fn slot(&self, t: &Thread) -> *mut u8 {
        self.ptr(t.mf + AREA_SLOT)
    }

    fn state_word(&self, t: &Thread) -> *const AtomicU32 {
        self.ptr(t.mf + AREA_SLOT + SLOT_STATE) as *const AtomicU32
    }

    /// Takes the stop `st` of thread `tid` out of its slot. One lookup of
    /// the thread, and the registers read straight into its records: this
    /// runs between a stop and its answer.
    fn collect(&mut self, tid: ThreadId, st: u32) -> Stop {
        let region = self.region;
        let t = self.threads.get_mut(&tid).expect("running thread");
        // SAFETY: the thread's slot in the region (see `ptr`); the content
        // is the workload's and only copied.
        let slot = unsafe { region.add((t.mf + AREA_SLOT) as usize) };
        let block = unsafe { slot.add(SLOT_REGS as usize) } as *const u64;
        // The callee-saved registers stay in the slot (their line is the
        // one a workload's loop writes most: a counter, a pointer): a
        // syscall's handler does not need them, and the kernel reading
        // that line would make the stub's next store to it wait for the
        // line to come back. `get_regs` reads them; what the kernel knew
        // stands in for them until then.
        let lazy = t.in_slot.is_some();
        let mut w = match &t.in_slot {
            Some(known) => regs_words(known),
            None => [0; REG_WORDS],
        };
        let from = if lazy { CALLEE_WORDS } else { 0 };
        for (i, w) in w.iter_mut().enumerate().skip(from) {
            // SAFETY: inside the block.
            *w = unsafe { block.add(i).read_volatile() };
        }
        let in_slot = words_regs(w);
        // SAFETY: fields of the slot.
        let (signo, code, addr, path, rax) = unsafe {
            (
                (slot.add(SLOT_SIGNO as usize) as *const i32).read_volatile(),
                (slot.add(SLOT_CODE as usize) as *const i32).read_volatile(),
                (slot.add(SLOT_ADDR as usize) as *const u64).read_volatile(),
                (slot.add(SLOT_PATH as usize) as *const u32).read_volatile(),
                (slot.add(SLOT_RAX as usize) as *const u64).read_volatile(),
            )
        };
        t.in_slot = Some(in_slot);
        t.callee_in_slot = lazy;
        let regs = &mut t.regs;
        *regs = in_slot;
        if path == PATH_PATCHED {
            // The patched path leaves the block's rax alone (see the
            // blob): at its syscall stop rax is -ENOSYS, as at a ptrace
            // syscall stop; interrupted on its way out, the thread holds
            // what the kernel gave it. The signal path saves rax in the
            // block (-ENOSYS there too for a syscall).
            regs.rax = if st == ST_SYSCALL {
                (-libc::ENOSYS as i64) as u64
            } else {
                rax
            };
        }
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.ds = 0;
        regs.es = 0;
        regs.fs = 0;
        regs.gs = 0;
        regs.gs_base = 0;
        t.running = false;
        t.patched = path == PATH_PATCHED;
        // si_code SYS_USER_DISPATCH: the call came from the workload's code
        // through dispatch (not the filter's backstop).
        t.patchable = st == ST_SYSCALL && !t.patched && signo == libc::SIGSYS && code == 2;
        match st {
            ST_SYSCALL => Stop::Syscall,
            ST_FAULT
                if matches!(
                    signo,
                    libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP
                ) =>
            {
                Stop::Fault { signo, code, addr }
            }
            _ => Stop::Interrupted,
        }
    }

    /// Collects every stop of a running thread into `pending`.
    fn scan(&mut self) -> bool {
        let mut found = false;
        let mut i = 0;
        while i < self.running.len() {
            let (tid, word) = self.running[i];
            // SAFETY: the word lies in the region while the thread exists.
            let st = unsafe { (*word).load(Ordering::Acquire) };
            if matches!(st, ST_SYSCALL | ST_FAULT | ST_INTERRUPTED) {
                self.running.swap_remove(i);
                let stop = self.collect(tid, st);
                self.pending.push_back((tid, stop));
                found = true;
            } else {
                i += 1;
            }
        }
        found
    }

    fn unwatch(&mut self, tid: ThreadId) {
        if let Some(i) = self.running.iter().position(|(t, _)| *t == tid) {
            self.running.swap_remove(i);
        }
    }

    /// Reaps exited children: stubs (their threads are gone, their pages
    /// free again) and foreign children (the gofer).
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if let Some(d) = self.dying.remove(&pid) {
                self.free_unit(d.ctl);
                for a in d.areas {
                    self.free_unit(a);
                }
                continue;
            }
            if let Some(id) = self
                .spaces
                .iter()
                .find(|(_, s)| s.pid == pid)
                .map(|(id, _)| *id)
            {
                // A stub died by itself (its filter, the host OOM killer):
                // its threads are gone. Reaped already, so never signalled.
                let sp = self.spaces.remove(&id).unwrap();
                for t in &sp.threads {
                    self.threads.remove(t);
                    self.unwatch(*t);
                    self.pending.push_back((*t, Stop::Gone));
                }
                self.free_unit(sp.ctl);
                for (_, mf) in sp.areas {
                    self.free_unit(mf);
                }
                continue;
            }
            if pid == self.zygote_pid {
                self.zygote_pid = -1;
                continue;
            }
            self.foreign_exits.push((pid, status));
        }
    }

    /// Records a new space with stub process `pid` (0: none yet) and
    /// control pages `ctl`, nothing of it made yet but `deferred`.
    fn insert_space(&mut self, pid: i32, ctl: u64, deferred: Deferred) -> SpaceId {
        let id = self.next_space;
        self.next_space += 1;
        self.spaces.insert(
            id,
            Space {
                pid,
                ctl,
                seq: 0,
                threads: Vec::new(),
                areas: Vec::new(),
                free_areas: Vec::new(),
                deferred,
                flushes: 0,
            },
        );
        id
    }

    /// A new stub process from the zygote: its pid and control pages.
    fn spawn_stub(&mut self) -> Result<(i32, u64)> {
        let tasks = self.host_tasks();
        self.task_ceiling.check(tasks, 2)?;
        if self.zygote_pid <= 0 {
            return Err(Error::from_raw_os_error(libc::ENOMEM));
        }
        let ctl = self.alloc_unit()?;
        // SAFETY: zeroing the new stub's control pages.
        unsafe { std::ptr::write_bytes(self.ptr(ctl), 0, AREA_SIZE as usize) };
        self.ctl_cause = CtlCause::Space;
        let r = self.zygote_call(&[[
            libc::SYS_clone as u64,
            SPACE_CLONE_FLAGS,
            0,
            0,
            0,
            0,
            0,
            ctl,
        ]]);
        let pid = match r {
            Ok(v) if v[0] > 0 => v[0] as i32,
            Ok(v) => {
                let e = Error::from_raw_os_error((-v[0]) as i32);
                self.task_ceiling.note(tasks, &e);
                self.free_units.push(ctl);
                return Err(e);
            }
            Err(e) => {
                self.free_units.push(ctl);
                return Err(e);
            }
        };
        Ok((pid, ctl))
    }

    /// Before an exec in place: what the old image left in the thread's
    /// signal stack (register and FPU images of earlier stops) is wiped,
    /// as Linux's exec leaves the new image nothing of the old one's
    /// registers. What the stop being answered still needs stays: on the
    /// handler's path its frame (whose FPU image the answer replaces,
    /// see `resume`); the patched path uses none of the stack.
    fn scrub_for_exec(&self, thread: ThreadId) {
        let t = &self.threads[&thread];
        if !t.started {
            // Never ran workload code (a process `spawn` starts): its
            // stack holds only the frame it will enter through.
            return;
        }
        let alt = t.area + AREA_ALT;
        let end = t.area + AREA_SIZE;
        let zero = |from: u64, to: u64| {
            if from < to {
                // SAFETY: inside the thread's area (callers clamp to it).
                unsafe {
                    std::ptr::write_bytes(self.ptr(t.mf + (from - t.area)), 0, (to - from) as usize)
                };
            }
        };
        let frame = (!t.patched)
            // SAFETY: reading the slot word; the value is checked.
            .then(|| unsafe {
                (self.slot(t).add(SLOT_FRAME as usize) as *const u64).read_volatile()
            })
            .filter(|f| *f >= alt + 8 && f.checked_add(uc::SIZE).is_some_and(|e| e <= end));
        let Some(frame) = frame else {
            zero(alt, end);
            return;
        };
        // (The word below the frame is its return address, the blob's.)
        zero(alt, frame - 8);
        if let Some(fp) = self.frame_fpstate(t) {
            zero(fp, fp + self.xsave_size as u64 + 4);
        }
    }

    fn init_fpu(&self) -> FpuState {
        let mut b = vec![0u8; self.xsave_size];
        b[0..2].copy_from_slice(&0x037fu16.to_ne_bytes()); // fcw
        b[24..28].copy_from_slice(&0x1f80u32.to_ne_bytes()); // mxcsr
        b[28..32].copy_from_slice(&0xffffu32.to_ne_bytes()); // mxcsr_mask
        self.sw_bytes(&mut b);
        FpuState(b)
    }

    /// Fills in the software bytes a signal frame's FPU image needs.
    fn sw_bytes(&self, b: &mut [u8]) {
        let size = self.xsave_size as u32;
        b[SW_BYTES..SW_BYTES + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_ne_bytes());
        b[SW_BYTES + 4..SW_BYTES + 8].copy_from_slice(&(size + 4).to_ne_bytes());
        b[SW_BYTES + 8..SW_BYTES + 16].copy_from_slice(&self.xcr0.to_ne_bytes());
        b[SW_BYTES + 16..SW_BYTES + 20].copy_from_slice(&size.to_ne_bytes());
    }

    /// The FPU image in a stopped thread's signal frame, if the frame and
    /// its image lie in the thread's own signal stack.
    fn frame_fpu(&self, t: &Thread) -> Option<FpuState> {
        let fp = self.frame_fpstate(t)?;
        let mut b = vec![0u8; self.xsave_size];
        // SAFETY: inside the thread's area (checked by frame_fpstate).
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr(t.mf + (fp - t.area)), b.as_mut_ptr(), b.len())
        };
        Some(FpuState(b))
    }

    /// Where the FPU image of a stopped thread's signal frame lies (its
    /// address in the stub), if the frame and the image lie in the
    /// thread's own signal stack.
    fn frame_fpstate(&self, t: &Thread) -> Option<u64> {
        let slot = self.slot(t);
        let alt = t.area + AREA_ALT;
        let end = t.area + AREA_SIZE;
        // SAFETY: reading the slot word; the value is checked below.
        let frame = unsafe { (slot.add(SLOT_FRAME as usize) as *const u64).read_volatile() };
        if frame < alt || frame.checked_add(uc::SIZE)? > end {
            return None;
        }
        // SAFETY: inside the thread's area (checked).
        let fp = unsafe {
            (self.ptr(t.mf + (frame + uc::FPSTATE - t.area)) as *const u64).read_unaligned()
        };
        let size = self.xsave_size as u64;
        if fp == 0 || fp < alt || fp.checked_add(size + 4)? > end || fp % 64 != 0 {
            return None;
        }
        Some(fp)
    }

    /// The FPU state of a thread stopped on the patched path: it saves its
    /// registers into its FPU page on request.
    fn live_fpu(&mut self, thread: ThreadId) -> Result<FpuState> {
        let t = &self.threads[&thread];
        let (word, slot, space) = (self.state_word(t), self.slot(t), t.space);
        // SAFETY: the thread's slot words in our region.
        unsafe {
            (*word).store(ST_XSAVE, Ordering::Release);
            fence(Ordering::SeqCst);
            if (slot.add(SLOT_SLEEPING as usize) as *const u32).read_volatile() != 0 {
                futex_wake(word);
            }
        }
        let start = Instant::now();
        // SAFETY: as above.
        while unsafe { (*word).load(Ordering::Acquire) } != ST_ACK {
            if start.elapsed() > STUB_TIMEOUT / 5 {
                self.kill_space(space);
                return Err(Error::from_raw_os_error(libc::EIO));
            }
            std::hint::spin_loop();
        }
        let t = &self.threads[&thread];
        let mut b = vec![0u8; self.xsave_size];
        // SAFETY: the FPU page holds the image (xsave_size <= a page).
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr(t.mf + AREA_FPU), b.as_mut_ptr(), b.len())
        };
        self.sw_bytes(&mut b);
        Ok(FpuState(b))
    }

    /// Writes `fpu` into the thread's FPU page for the stub to load.
    fn put_fpu(&self, t: &Thread, fpu: &FpuState) {
        let mut b = vec![0u8; self.xsave_size + 4];
        let n = fpu.0.len().min(self.xsave_size);
        b[..n].copy_from_slice(&fpu.0[..n]);
        if b.len() >= 576 {
            // The XSAVE header: only features this host enabled, standard
            // (not compacted) format, reserved bytes zero.
            let bv = u64::from_ne_bytes(b[512..520].try_into().unwrap()) & self.xcr0;
            b[512..520].copy_from_slice(&bv.to_ne_bytes());
            b[520..576].fill(0);
        }
        self.sw_bytes(&mut b);
        let size = self.xsave_size;
        b[size..size + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_ne_bytes());
        // SAFETY: the FPU page is a page; the image fits (supported()).
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr(t.mf + AREA_FPU), b.len());
        }
    }

    /// A new thread area in `space`: one of an ended thread's (gone from
    /// the host) or a new one; and whether it must still be mapped.
    fn take_area(&mut self, space: SpaceId) -> Result<(u64, u64, bool)> {
        let sp = self.spaces.get_mut(&space).unwrap();
        let pid = sp.pid;
        if let Some(i) = sp
            .free_areas
            .iter()
            .position(|&(_, tid)| !thread_alive(pid, tid))
        {
            let (idx, _) = sp.free_areas.swap_remove(i);
            let (va, mf) = sp.areas[idx];
            return Ok((va, mf, false));
        }
        let idx = sp.areas.len() as u64;
        if idx >= MAX_AREAS {
            return Err(Error::from_raw_os_error(libc::EAGAIN));
        }
        let mf = self.alloc_unit()?;
        let va = area_addr(idx);
        self.spaces.get_mut(&space).unwrap().areas.push((va, mf));
        Ok((va, mf, true))
    }
}

/// Whether process `pid` (our child) has not exited.
fn alive(pid: i32) -> bool {
    // SAFETY: waitid with WNOWAIT only peeks.
    unsafe {
        let mut si: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut si,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && si.si_pid() == 0
    }
}

/// Whether thread `tid` of process `pid` exists.
fn thread_alive(pid: i32, tid: i32) -> bool {
    // SAFETY: signal 0 only checks.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) == 0 }
}

fn map_entry(op: &MapOp) -> [u64; 8] {
    // The kernel never maps over the stub's own pages.
    let bad = |addr: u64, len: u64| addr.checked_add(len).is_none_or(|e| e > USER_END);
    match *op {
        MapOp::Map {
            addr,
            len,
            prot,
            offset,
        } => {
            assert!(!bad(addr, len), "mapping over the stub region");
            [
                libc::SYS_mmap as u64,
                addr,
                len,
                prot as u64,
                MAP_FLAGS,
                MEMFD,
                offset,
                0,
            ]
        }
        MapOp::Unmap { addr, len } => {
            assert!(!bad(addr, len), "unmapping the stub region");
            [libc::SYS_munmap as u64, addr, len, 0, 0, 0, 0, 0]
        }
        MapOp::Protect { addr, len, prot } => {
            assert!(!bad(addr, len), "protecting the stub region");
            [
                libc::SYS_mprotect as u64,
                addr,
                len,
                prot as u64,
                0,
                0,
                0,
                0,
            ]
        }
    }
}

impl Platform for SystrapPlatform {
    fn new_space(&mut self) -> Result<SpaceId> {
        let (pid, ctl) = self.spawn_stub()?;
        Ok(self.insert_space(pid, ctl, Deferred::default()))
    }

    fn new_space_for_exec(&mut self) -> Result<SpaceId> {
        // No stub process yet: `exec_in_place` gives it the exec'ing
        // thread's, or the first control call makes one (`space_call`).
        Ok(self.insert_space(0, 0, Deferred::nothing_mapped()))
    }

    fn can_exec_in_place(&self, thread: ThreadId) -> bool {
        // The only thread the stub process ever had (one area): nothing
        // of another thread of the old image (its registers, its signal
        // frames) is left in the process for the new image to read.
        self.threads.get(&thread).is_some_and(|t| {
            !t.running
                && self.spaces.get(&t.space).is_some_and(|sp| {
                    sp.pid > 0
                        && sp.threads == [thread]
                        && sp.areas.len() == 1
                        && sp.free_areas.is_empty()
                })
        })
    }

    fn exec_in_place(&mut self, new: SpaceId, thread: ThreadId) -> bool {
        let fresh = self
            .spaces
            .get(&new)
            .is_some_and(|sp| sp.pid == 0 && sp.threads.is_empty() && sp.areas.is_empty());
        if !fresh || !self.can_exec_in_place(thread) {
            return false;
        }
        let old_id = self.threads[&thread].space;
        let old = self.spaces.remove(&old_id).unwrap();
        // The old image's kept-back changes go with it: the new image's
        // start (`Deferred::nothing_mapped`) rewrites the whole range.
        let sp = self.spaces.get_mut(&new).unwrap();
        let deferred = std::mem::take(&mut sp.deferred);
        *sp = Space {
            deferred,
            threads: vec![thread],
            ..old
        };
        self.scrub_for_exec(thread);
        let init = self.init_fpu();
        let t = self.threads.get_mut(&thread).unwrap();
        t.space = new;
        t.fpu = Some(init);
        t.patchable = false;
        // Now, before the kernel frees the old image's memory: the
        // stub maps none of it once this returns. A failure ends the
        // stub process (the thread's next stop is `Stop::Gone`).
        self.ctl_cause = CtlCause::Exec;
        self.flush_deferred(new);
        true
    }

    fn prewake(&mut self, thread: ThreadId) {
        let Some(sp) = self
            .threads
            .get(&thread)
            .and_then(|t| self.spaces.get(&t.space))
        else {
            return;
        };
        if sp.pid == 0 {
            return;
        }
        let (req, res) = (self.ptr(sp.ctl), self.ptr(sp.ctl + CTL_REQ_SIZE));
        // SAFETY: the stub's control pages in our region. A control
        // thread woken without a request yields a while, then sleeps.
        unsafe {
            let sleeping = &*(res.add(RES_SLEEPING as usize) as *const AtomicU32);
            if sleeping.load(Ordering::Relaxed) != 0 {
                futex_wake(req as *const AtomicU32);
                self.counters.ctl_prewoken += 1;
            }
        }
    }

    fn drop_space(&mut self, space: SpaceId) {
        if self.spaces.get(&space).is_some_and(|sp| sp.pid == 0) {
            // No stub process: only the areas a failed new thread took.
            let sp = self.spaces.remove(&space).unwrap();
            for (_, mf) in sp.areas {
                self.free_unit(mf);
            }
            return;
        }
        let Some(sp) = self.spaces.remove(&space) else {
            return;
        };
        for t in &sp.threads {
            self.threads.remove(t);
            self.unwatch(*t);
        }
        self.pending.retain(|(t, _)| !sp.threads.contains(t));
        // SAFETY: the stub process is our child.
        unsafe { libc::kill(sp.pid, libc::SIGKILL) };
        self.dying.insert(
            sp.pid,
            Dying {
                ctl: sp.ctl,
                areas: sp.areas.iter().map(|(_, mf)| *mf).collect(),
                kill: super::note_kill(),
            },
        );
    }

    fn apply(&mut self, space: SpaceId, ops: &[MapOp]) -> Result<Vec<i64>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        if self.defer(space, ops, false) {
            return Ok(vec![0; ops.len()]);
        }
        let entries: Vec<[u64; 8]> = ops.iter().map(map_entry).collect();
        self.ctl_cause = CtlCause::Mapped;
        self.call_with_deferred(space, entries)
    }

    fn apply_fresh(&mut self, space: SpaceId, ops: &[MapOp]) -> Result<()> {
        if self.defer(space, ops, true) {
            return Ok(());
        }
        let entries: Vec<[u64; 8]> = ops.iter().map(map_entry).collect();
        self.ctl_cause = CtlCause::Fresh;
        let res = self.call_with_deferred(space, entries)?;
        match res.iter().find(|r| failed(**r)) {
            Some(bad) => Err(Error::from_raw_os_error(-*bad as i32)),
            None => Ok(()),
        }
    }

    fn new_thread(&mut self, space: SpaceId) -> Result<ThreadId> {
        let tasks = self.host_tasks();
        self.task_ceiling.check(tasks, 1)?;
        if !self.spaces.contains_key(&space) {
            return Err(Error::from_raw_os_error(libc::ESRCH));
        }
        let (va, mf, fresh) = self.take_area(space)?;
        // SAFETY: the area's pages in our region: a clean slot in state
        // NEW, and the stack description the new thread will read.
        unsafe {
            std::ptr::write_bytes(self.ptr(mf), 0, (AREA_FPU + PAGE_SIZE) as usize);
            (*(self.ptr(mf + SLOT_STATE) as *const AtomicU32)).store(ST_NEW, Ordering::Release);
            let ro = self.ptr(mf + AREA_RO + RO_STACK) as *mut u64;
            ro.write(va + AREA_ALT); // ss_sp
            ro.add(1).write(0); // ss_flags
            ro.add(2).write(ALT_SIZE); // ss_size
            (self.ptr(mf + AREA_RO + RO_ALT_TOP) as *mut u64).write(va + AREA_SIZE);
        }
        let mut entries = Vec::new();
        if fresh {
            let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
            let map = |addr: u64, len: u64, prot: u64, off: u64| {
                [
                    libc::SYS_mmap as u64,
                    addr,
                    len,
                    prot,
                    MAP_FLAGS,
                    MEMFD,
                    off,
                    0,
                ]
            };
            entries.push(map(va, 2 * PAGE_SIZE, rw, mf));
            entries.push(map(
                va + AREA_RO,
                PAGE_SIZE,
                libc::PROT_READ as u64,
                mf + AREA_RO,
            ));
            entries.push(map(va + AREA_ALT, ALT_SIZE, rw, mf + AREA_ALT));
        }
        entries.push([
            libc::SYS_clone as u64,
            THREAD_CLONE_FLAGS,
            0,
            0,
            0,
            0,
            0,
            va,
        ]);
        // The new thread may run at once: what the space has kept back
        // goes first, in the same call.
        self.ctl_cause = CtlCause::Thread;
        let res = self.call_with_deferred(space, entries.clone())?;
        let pid = self.spaces[&space].pid;
        let maps_ok = entries
            .iter()
            .zip(&res)
            .take(entries.len() - 1)
            .all(|(e, r)| *r as u64 == e[1]);
        let tid = *res.last().unwrap();
        let failed = (-4095..0).contains(&tid);
        if !maps_ok || (!failed && (tid == 0 || !thread_alive(pid, tid as i32))) {
            // The thread's pages were not mapped where they must be, or the
            // control thread's results are forged (a workload thread wrote
            // the result page): the stub process goes, as gVisor does with a
            // stub whose shared memory was tampered with.
            self.kill_space(space);
            return Err(Error::from_raw_os_error(libc::ESRCH));
        }
        if failed {
            let e = Error::from_raw_os_error((-tid) as i32);
            self.task_ceiling.note(tasks, &e);
            let idx = self.spaces[&space]
                .areas
                .iter()
                .position(|a| a.0 == va)
                .unwrap();
            self.spaces
                .get_mut(&space)
                .unwrap()
                .free_areas
                .push((idx, 0));
            return Err(e);
        }
        let tid = tid as i32;
        // SAFETY: zeroed registers are valid.
        let mut regs: Regs = unsafe { std::mem::zeroed() };
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.eflags = 0x202;
        self.threads.insert(
            tid,
            Thread {
                space,
                area: va,
                mf,
                regs,
                running: false,
                started: false,
                fpu: None,
                patched: false,
                patchable: false,
                flushes_seen: 0,
                in_slot: None,
                callee_in_slot: false,
            },
        );
        self.spaces.get_mut(&space).unwrap().threads.push(tid);
        Ok(tid)
    }

    fn drop_thread(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.remove(&thread) else {
            return;
        };
        self.unwatch(thread);
        self.pending.retain(|(x, _)| *x != thread);
        let word = self.state_word(&t);
        // SAFETY: the slot's state word in our region.
        unsafe { (*word).store(ST_EXIT, Ordering::Release) };
        fence(Ordering::SeqCst);
        futex_wake(word);
        if let Some(sp) = self.spaces.get_mut(&t.space) {
            sp.threads.retain(|x| *x != thread);
            if let Some(idx) = sp.areas.iter().position(|a| a.0 == t.area) {
                sp.free_areas.push((idx, thread));
            }
        }
    }

    fn get_regs(&mut self, thread: ThreadId) -> Result<Regs> {
        let region = self.region;
        let t = self
            .threads
            .get_mut(&thread)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        load_callee_saved(region, t);
        Ok(t.regs)
    }

    fn get_regs_partial(&mut self, thread: ThreadId) -> Option<Regs> {
        self.threads.get(&thread).map(|t| t.regs)
    }

    fn set_regs(&mut self, thread: ThreadId, regs: &Regs) -> Result<()> {
        let region = self.region;
        let t = self
            .threads
            .get_mut(&thread)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        if regs_words(regs)[..CALLEE_WORDS] != regs_words(&t.regs)[..CALLEE_WORDS] {
            // Set without being fetched: what the slot holds must be
            // known, or a value equal to the stand-in would not be
            // written at the resume.
            load_callee_saved(region, t);
        }
        t.regs = *regs;
        Ok(())
    }

    fn get_fpu(&mut self, thread: ThreadId) -> Result<FpuState> {
        let t = self
            .threads
            .get(&thread)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        if let Some(f) = &t.fpu {
            return Ok(f.clone());
        }
        if !t.started {
            return Ok(self.init_fpu());
        }
        if t.patched {
            return self.live_fpu(thread);
        }
        Ok(self.frame_fpu(t).unwrap_or_else(|| self.init_fpu()))
    }

    fn set_fpu(&mut self, thread: ThreadId, fpu: &FpuState) -> Result<()> {
        let t = self
            .threads
            .get_mut(&thread)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        t.fpu = Some(fpu.clone());
        Ok(())
    }

    fn resume(&mut self, thread: ThreadId) -> Result<()> {
        let t = self
            .threads
            .get(&thread)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        if t.regs.eflags & EFLAGS_TF != 0 && t.patched && t.fpu.is_none() {
            // The trap flag returns through a signal frame (see the blob),
            // which carries the FPU state still live in the thread.
            let fpu = self.live_fpu(thread)?;
            self.threads.get_mut(&thread).unwrap().fpu = Some(fpu);
        }
        let t = &self.threads[&thread];
        if let Some(f) = &t.fpu {
            self.put_fpu(t, f);
            // SAFETY: the slot's flag word.
            unsafe { (self.slot(t).add(SLOT_FPU_DIRTY as usize) as *mut u32).write_volatile(1) };
        }
        let flushes = self.spaces.get(&t.space).map_or(0, |sp| sp.flushes);
        // One lookup from here to the answer's store.
        let region = self.region;
        let t = self.threads.get_mut(&thread).unwrap();
        // SAFETY: the thread's slot in the region (see `ptr`).
        let slot = unsafe { region.add((t.mf + AREA_SLOT) as usize) };
        let mut regs = t.regs;
        if regs.fs_base >= 1 << 47 {
            // Not canonical: the stub could not load it.
            regs.fs_base = 0;
        }
        let word = unsafe { slot.add(SLOT_STATE as usize) } as *const AtomicU32;
        // SAFETY: the slot lies in our region.
        unsafe {
            write_regs(slot.add(SLOT_REGS as usize), &regs, t.in_slot.as_ref());
            (slot.add(SLOT_RAX as usize) as *mut u64).write_volatile(regs.rax);
            (slot.add(SLOT_NOSPIN as usize) as *mut u32).write_volatile(0);
            (*word).store(ST_RUN, Ordering::Release);
            fence(Ordering::SeqCst);
            if (slot.add(SLOT_SLEEPING as usize) as *const u32).read_volatile() != 0 {
                futex_wake(word);
                self.counters.stub_woken += 1;
            }
        }
        t.in_slot = Some(regs);
        t.flushes_seen = flushes;
        t.fpu = None;
        t.started = true;
        t.running = true;
        self.running.push((thread, word));
        Ok(())
    }

    fn interrupt(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(&thread) else {
            return;
        };
        if !t.running {
            return;
        }
        if let Some(sp) = self.spaces.get(&t.space) {
            // SAFETY: a signal to a thread of our stub process.
            unsafe { libc::syscall(libc::SYS_tgkill, sp.pid, thread, SIG_INTERRUPT) };
        }
    }

    fn stop_now(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(&thread) else {
            return;
        };
        if !t.running {
            self.pending.retain(|(x, _)| *x != thread);
            return;
        }
        let (space, word) = (t.space, self.state_word(t));
        self.interrupt(thread);
        let start = Instant::now();
        loop {
            // SAFETY: the thread's state word.
            let st = unsafe { (*word).load(Ordering::Acquire) };
            if matches!(st, ST_SYSCALL | ST_FAULT | ST_INTERRUPTED) {
                self.unwatch(thread);
                self.collect(thread, st);
                return;
            }
            if start.elapsed() > STUB_TIMEOUT / 5 {
                // It does not stop (its signals blocked by a forged frame,
                // or it exited behind the kernel's back): the process goes.
                self.kill_space(space);
                return;
            }
            std::thread::yield_now();
        }
    }

    fn poll_stop(&mut self) -> Option<(ThreadId, Stop)> {
        if self.pending.is_empty() && self.scan() {
            // Stubs spin only against a kernel on another CPU.
            publish_cpu(self.kstate_u32(KS_CPU));
        }
        while let Some((tid, stop)) = self.pending.pop_front() {
            if let Stop::Fault {
                signo: libc::SIGSEGV | libc::SIGBUS,
                ..
            } = stop
                && let Some(t) = self.threads.get(&tid)
                && let Some(sp) = self.spaces.get(&t.space)
            {
                let space = t.space;
                if !sp.deferred.is_empty() {
                    // Possibly an access to a mapping kept back: make them
                    // and let the thread try again; a fault that remains
                    // comes back with nothing kept back, for the kernel.
                    self.ctl_cause = CtlCause::Fault;
                    if !self.flush_deferred(space) {
                        // The space is gone: its threads' stops are queued.
                        continue;
                    }
                    if self.resume(tid).is_ok() {
                        continue;
                    }
                } else if t.flushes_seen != sp.flushes && self.resume(tid).is_ok() {
                    // Kept-back changes were made after this thread last
                    // ran: it may have faulted on one of them before (two
                    // threads touching a new mapping at once). Again.
                    continue;
                }
            }
            return Some((tid, stop));
        }
        None
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let mut out = vec![
            ("ctl_calls", c.ctl_calls),
            ("ctl_woken", c.ctl_woken),
            ("ctl_prewoken", c.ctl_prewoken),
            ("ctl_slept", c.ctl_slept),
            ("ctl_us", c.ctl_us),
            ("stub_woken", c.stub_woken),
            ("doorbell_wakes", c.doorbell_wakes),
        ];
        // Control calls by cause (`ctl_space`, ...), then their time
        // (`ctl_us_space`, ...), in the order of [`CtlCause`].
        let calls = CTL_CAUSE_NAMES.iter().zip(c.ctl_by);
        let time = CTL_CAUSE_US_NAMES.iter().zip(c.ctl_us_by);
        out.extend(calls.chain(time).map(|(name, n)| (*name, n)));
        out
    }

    fn wakeup_fds(&self) -> Vec<RawFd> {
        vec![self.doorbell, self.sigchld_fd]
    }

    fn take_foreign_exits(&mut self) -> Vec<(i32, i32)> {
        std::mem::take(&mut self.foreign_exits)
    }

    fn spin(&mut self, max: Duration) -> bool {
        if !self.pending.is_empty() {
            return true;
        }
        if self.running.is_empty() || !self.spin.should_spin() {
            return false;
        }
        publish_cpu(self.kstate_u32(KS_CPU));
        // The clock is read only once the first round found nothing: a
        // thread that makes syscalls in a loop is back within it, and a
        // clock read is a tenth of the kernel's own work per syscall.
        let mut start = None;
        loop {
            for _ in 0..64 {
                if self.scan() {
                    self.spin.record(true);
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.get_or_insert_with(Instant::now).elapsed() >= max {
                self.spin.record(false);
                return false;
            }
        }
    }

    fn prepare_sleep(&mut self) -> bool {
        self.kstate_u32(KS_SLEEPING).store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.scan() || !self.pending.is_empty() {
            self.kstate_u32(KS_SLEEPING).store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn after_wait(&mut self, ready: u32) {
        self.kstate_u32(KS_SLEEPING).store(0, Ordering::Relaxed);
        publish_cpu(self.kstate_u32(KS_CPU));
        // Bits in the order of `wakeup_fds`. A ring of the doorbell (a
        // stop while the kernel slept: the common wake-up) costs one read;
        // the SIGCHLD descriptor is read, and children reaped, only when
        // it has something (two host calls per wake-up less).
        if ready & 1 != 0 {
            drain(self.doorbell);
            self.counters.doorbell_wakes += 1;
        }
        if ready & 2 != 0 {
            let mut buf = [0u8; 128 * 8];
            // SAFETY: draining the SIGCHLD signalfd into a local buffer.
            while unsafe {
                libc::read(
                    self.sigchld_fd,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            } > 0
            {}
            self.reap();
        }
    }

    fn reaped_through(&self) -> u64 {
        self.dying
            .values()
            .map(|d| d.kill - 1)
            .min()
            .unwrap_or_else(super::kills)
    }

    fn vdso(&self) -> Option<u64> {
        self.vdso
    }

    fn workload_gs(&self) -> bool {
        false
    }

    fn patchable_stop(&self, thread: ThreadId) -> bool {
        self.threads.get(&thread).is_some_and(|t| t.patchable)
    }

    fn usertrap_entry(&self) -> Option<u64> {
        Some(self.blob.syshandler)
    }

    fn parked(&mut self, thread: ThreadId) {
        if let Some(t) = self.threads.get(&thread) {
            // SAFETY: the slot's flag word in our region.
            unsafe {
                (self.slot(t).add(SLOT_NOSPIN as usize) as *mut u32).write_volatile(NOSPIN_BLOCKED)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::platform::PLATFORM_REGION;

    fn memfd() -> RawFd {
        let fd = unsafe { libc::memfd_create(c"atoll-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        assert_eq!(unsafe { libc::ftruncate(fd, 4 << 30) }, 0);
        fd
    }

    fn next_stop(p: &mut SystrapPlatform) -> (ThreadId, Stop) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(s) = p.poll_stop() {
                return s;
            }
            p.after_wait(!0);
            std::thread::sleep(Duration::from_micros(100));
        }
        panic!("no stop");
    }

    /// Maps `code` at 0x400000 in a new space and starts a thread there.
    fn start(p: &mut SystrapPlatform, fd: RawFd, code: &[u8]) -> (SpaceId, ThreadId) {
        let off = PLATFORM_REGION;
        let n = unsafe { libc::pwrite(fd, code.as_ptr() as *const _, code.len(), off as i64) };
        assert_eq!(n, code.len() as isize);
        let space = p.new_space().unwrap();
        let res = p
            .apply(
                space,
                &[MapOp::Map {
                    addr: 0x400000,
                    len: 4096,
                    prot: libc::PROT_READ | libc::PROT_EXEC,
                    offset: off,
                }],
            )
            .unwrap();
        assert_eq!(res, vec![0x400000]);
        let t = p.new_thread(space).unwrap();
        let mut regs = p.get_regs(t).unwrap();
        regs.rip = 0x400000;
        p.set_regs(t, &regs).unwrap();
        p.resume(t).unwrap();
        (space, t)
    }

    #[test]
    fn syscalls_stop_in_the_kernel_and_never_run_on_the_host() {
        let _one = crate::platform::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if supported().is_err() {
            return;
        }
        let fd = memfd();
        let mut p = SystrapPlatform::new(fd).unwrap();
        // getpid; mov %rax,%rdi; exit (both intercepted).
        let code: [u8; 17] = [
            0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc7, 0xb8, 60, 0, 0, 0, 0x0f, 0x05,
        ];
        let (space, t) = start(&mut p, fd, &code);
        let (tid, stop) = next_stop(&mut p);
        assert_eq!((tid, stop), (t, Stop::Syscall));
        let mut regs = p.get_regs(t).unwrap();
        assert_eq!(regs.orig_rax, 39);
        assert_eq!(regs.rip, 0x400007);
        regs.rax = 4242;
        p.set_regs(t, &regs).unwrap();
        p.resume(t).unwrap();
        let (_, stop) = next_stop(&mut p);
        assert_eq!(stop, Stop::Syscall);
        let regs = p.get_regs(t).unwrap();
        assert_eq!(regs.orig_rax, 60);
        assert_eq!(regs.rdi, 4242, "getpid's result came from the kernel");
        // A batch: two maps and an unmap in one request.
        let res = p
            .apply(
                space,
                &[
                    MapOp::Map {
                        addr: 0x500000,
                        len: 4096,
                        prot: libc::PROT_READ,
                        offset: PLATFORM_REGION,
                    },
                    MapOp::Map {
                        addr: 0x600000,
                        len: 4096,
                        prot: libc::PROT_READ,
                        offset: PLATFORM_REGION,
                    },
                    MapOp::Unmap {
                        addr: 0x500000,
                        len: 4096,
                    },
                ],
            )
            .unwrap();
        assert_eq!(res, vec![0x500000, 0x600000, 0]);
        p.drop_thread(t);
        p.drop_space(space);
    }

    #[test]
    fn faults_and_interrupts_stop_the_thread() {
        let _one = crate::platform::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if supported().is_err() {
            return;
        }
        let fd = memfd();
        let mut p = SystrapPlatform::new(fd).unwrap();
        // mov (0),%rax: a SIGSEGV at address 0.
        let (space, t) = start(&mut p, fd, &[0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]);
        let (_, stop) = next_stop(&mut p);
        assert_eq!(
            stop,
            Stop::Fault {
                signo: libc::SIGSEGV,
                code: 1, // SEGV_MAPERR
                addr: 0
            }
        );
        p.drop_thread(t);
        p.drop_space(space);
        // jmp . : runs until interrupted.
        let (space, t) = start(&mut p, fd, &[0xeb, 0xfe]);
        std::thread::sleep(Duration::from_millis(20));
        assert!(p.poll_stop().is_none());
        p.interrupt(t);
        let (_, stop) = next_stop(&mut p);
        assert_eq!(stop, Stop::Interrupted);
        assert_eq!(p.get_regs(t).unwrap().rip, 0x400000);
        p.drop_thread(t);
        p.drop_space(space);
    }
}
