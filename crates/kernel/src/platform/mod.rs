//! How the workload's syscalls are stopped and its address spaces managed.
//!
//! The kernel sees the platform through [`Platform`]: address spaces that
//! can be mapped into (always from the kernel's memory file), threads that
//! run in them, and stops. Two implementations:
//! - [`ptrace`]: `PTRACE_SYSEMU` on stub processes; every stop is a
//!   ptrace stop, a sleep and a wake-up of two host threads.
//! - [`systrap`]: syscall user dispatch traps each workload syscall in
//!   the stub itself; a handler hands the registers to the kernel through
//!   a page of shared memory and spins or sleeps on it for the answer
//!   (gVisor's systrap is the model).

pub mod bpf;
pub mod ceiling;
pub mod child;
pub mod ptrace;
pub mod systrap;
pub mod vdso;
pub mod xsave;

use std::cell::Cell;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::arch::Regs;

/// Memory-file bytes the platforms keep for themselves at offset 0 (stub
/// code, control pages, per-thread areas; sparse).
/// Held by every test that starts a platform: each platform reaps its
/// stubs with `waitpid(-1)`, so two platforms in one test process (the
/// test harness runs tests on threads) would take each other's stops. In
/// atoll one kernel process runs one platform.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub const PLATFORM_REGION: u64 = systrap::layout::REGION_SIZE;

/// Which platform a sandbox runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlatformKind {
    Ptrace,
    #[default]
    Systrap,
}

impl PlatformKind {
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::Ptrace => "ptrace",
            PlatformKind::Systrap => "systrap",
        }
    }

    pub fn parse(s: &str) -> Option<PlatformKind> {
        match s {
            "ptrace" => Some(PlatformKind::Ptrace),
            "systrap" => Some(PlatformKind::Systrap),
            _ => None,
        }
    }
}

/// An address space (a stub process for ptrace).
pub type SpaceId = u32;
/// A thread that runs workload code (a stub thread for ptrace).
pub type ThreadId = i32;

/// An operation on an address space. Every mapping comes from the kernel's
/// memory file: the workload never maps a host file directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOp {
    /// Map `len` bytes of the memory file at `offset` to `addr` (MAP_FIXED|MAP_SHARED).
    Map {
        addr: u64,
        len: u64,
        prot: i32,
        offset: u64,
    },
    Unmap {
        addr: u64,
        len: u64,
    },
    Protect {
        addr: u64,
        len: u64,
        prot: i32,
    },
}

/// Why a thread stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It made a syscall; the registers hold number and arguments.
    Syscall,
    /// A synchronous fault in workload code (SIGSEGV, SIGBUS, SIGFPE,
    /// SIGILL, SIGTRAP from int3...).
    Fault { signo: i32, code: i32, addr: u64 },
    /// Stopped on request (see [`Platform::interrupt`]).
    Interrupted,
    /// The thread no longer exists.
    Gone,
}

/// Saved extended processor state (XSAVE area), opaque to the kernel
/// except for signal frames, which carry it.
#[derive(Clone)]
pub struct FpuState(pub Vec<u8>);

thread_local! {
    static KILLS: Cell<u64> = const { Cell::new(0) };
}

/// Stub processes killed so far by this thread's platform. Memory the
/// kernel frees is tagged with it (`MemoryFile`), and punched out once
/// every stub killed up to then is reaped ([`Platform::reaped_through`]):
/// a stub killed but not yet dead still maps its process's memory, and a
/// punch would unmap it from there too, at the cost of a TLB flush on the
/// CPU it runs on, and let it write into a freed range until it dies.
pub fn kills() -> u64 {
    KILLS.with(|k| k.get())
}

/// Counts a kill; returns its number.
pub(crate) fn note_kill() -> u64 {
    KILLS.with(|k| {
        k.set(k.get() + 1);
        k.get()
    })
}

pub trait Platform {
    /// A new, empty address space.
    fn new_space(&mut self) -> std::io::Result<SpaceId>;
    /// As [`Platform::new_space`], for an image that exec builds: the
    /// platform may keep every change back and make the host side only
    /// when a thread needs it ([`Platform::new_thread`]), or never, when
    /// [`Platform::exec_in_place`] hands it the exec'ing thread's own.
    fn new_space_for_exec(&mut self) -> std::io::Result<SpaceId> {
        self.new_space()
    }
    /// Whether [`Platform::exec_in_place`] will take `thread`: it is the
    /// only thread its space ever had (so nothing of another thread is
    /// left in the host process). The caller also knows that no other
    /// process shares the space (vfork, CLONE_VM).
    fn can_exec_in_place(&self, _thread: ThreadId) -> bool {
        false
    }
    /// Exec past its point of no return: `thread` keeps its host thread
    /// and process, which now carry `new` (from
    /// [`Platform::new_space_for_exec`]) and nothing of the old image;
    /// the old space is gone without being dropped; the thread's FPU
    /// state is the initial one. False (nothing changed) if
    /// [`Platform::can_exec_in_place`] would say no.
    fn exec_in_place(&mut self, _new: SpaceId, _thread: ThreadId) -> bool {
        false
    }
    /// A control call for `thread`'s host process is likely soon (an exec
    /// is about to build its image): the platform may wake what will
    /// serve it now, so that the wake-up overlaps the kernel's work.
    fn prewake(&mut self, _thread: ThreadId) {}
    /// Releases an address space and every thread still in it.
    fn drop_space(&mut self, space: SpaceId);
    /// Applies mapping operations; returns each operation's result (0 or -errno).
    fn apply(&mut self, space: SpaceId, ops: &[MapOp]) -> std::io::Result<Vec<i64>>;
    /// As [`Platform::apply`], for operations inside ranges where the
    /// space has nothing mapped yet (a new mapping, a new process's
    /// image): no workload access there can see an old mapping, so the
    /// platform may make them later, before the first access (a fault) or
    /// the next change that needs them. A deferred operation that then
    /// fails ends the space's threads (as [`Stop::Gone`]).
    fn apply_fresh(&mut self, space: SpaceId, ops: &[MapOp]) -> std::io::Result<()> {
        let res = self.apply(space, ops)?;
        match res.iter().find(|r| **r < 0) {
            Some(bad) => Err(std::io::Error::from_raw_os_error(-*bad as i32)),
            None => Ok(()),
        }
    }
    /// A new thread in `space`, stopped, ready for registers.
    fn new_thread(&mut self, space: SpaceId) -> std::io::Result<ThreadId>;
    /// Ends a stopped thread.
    fn drop_thread(&mut self, thread: ThreadId);
    fn get_regs(&mut self, thread: ThreadId) -> std::io::Result<Regs>;
    /// As `get_regs`, but rbx, rbp and r12-r15 may be what they were at
    /// an earlier stop: the caller calls `get_regs` before it reads or
    /// changes those (a syscall's handler needs none of them). None if
    /// the platform reads all registers at once anyway.
    fn get_regs_partial(&mut self, _thread: ThreadId) -> Option<Regs> {
        None
    }
    fn set_regs(&mut self, thread: ThreadId, regs: &Regs) -> std::io::Result<()>;
    fn get_fpu(&mut self, thread: ThreadId) -> std::io::Result<FpuState>;
    fn set_fpu(&mut self, thread: ThreadId, fpu: &FpuState) -> std::io::Result<()>;
    /// Runs the thread in user mode until its next stop.
    fn resume(&mut self, thread: ThreadId) -> std::io::Result<()>;
    /// Asks a running thread to stop soon (it reports [`Stop::Interrupted`]).
    fn interrupt(&mut self, thread: ThreadId);
    /// Stops a running thread now and consumes its stop (the thread is
    /// about to be dropped).
    fn stop_now(&mut self, thread: ThreadId);
    /// The next stop, if any is pending (never blocks).
    fn poll_stop(&mut self) -> Option<(ThreadId, Stop)>;
    /// Descriptors that become readable when a stop may be pending.
    fn wakeup_fds(&self) -> Vec<RawFd>;
    /// Host children that are not platform threads and have exited
    /// (the gofer): pid and wait status.
    fn take_foreign_exits(&mut self) -> Vec<(i32, i32)>;
    /// Waits up to `max` for a stop without sleeping (spinning while the
    /// workload runs on another CPU); true if one is pending.
    fn spin(&mut self, _max: Duration) -> bool {
        false
    }
    /// Called before the kernel blocks; false if a stop arrived meanwhile
    /// (the kernel must not block then).
    fn prepare_sleep(&mut self) -> bool {
        true
    }
    /// Called after the kernel's wait; bit i of `ready` is set if
    /// [`Platform::wakeup_fds`]`()[i]` was readable.
    fn after_wait(&mut self, _ready: u32) {}
    /// The highest kill number ([`kills`]) up to which every stub
    /// process the platform killed is gone (reaped): memory freed since
    /// its kill is mapped by no stub any more. A platform whose stubs die
    /// before `drop_space` returns says every one.
    fn reaped_through(&self) -> u64 {
        u64::MAX
    }
    /// Address of the vDSO every address space has, for `AT_SYSINFO_EHDR`.
    fn vdso(&self) -> Option<u64> {
        None
    }
    /// Whether the workload may set its own GS base (the systrap stub
    /// keeps GS for itself).
    fn workload_gs(&self) -> bool {
        true
    }
    /// Whether `thread`'s last stop was a syscall from a call site the
    /// kernel may rewrite into a jump to [`Platform::usertrap_entry`].
    fn patchable_stop(&self, _thread: ThreadId) -> bool {
        false
    }
    /// Where patched call sites enter the platform, if it has such a path.
    fn usertrap_entry(&self) -> Option<u64> {
        None
    }
    /// The stopped `thread`'s syscall blocks: its answer will not come
    /// soon, so it should sleep rather than wait actively.
    fn parked(&mut self, _thread: ThreadId) {}
    /// The platform's own counters (how often each side had to sleep or
    /// wake the other, control round trips), for the sandbox's stats.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// The platform a kernel runs on (static dispatch).
pub enum AnyPlatform {
    Ptrace(ptrace::PtracePlatform),
    Systrap(systrap::SystrapPlatform),
}

macro_rules! each {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyPlatform::Ptrace($p) => $e,
            AnyPlatform::Systrap($p) => $e,
        }
    };
}

impl AnyPlatform {
    /// Sets up `kind` over the kernel's memory file (before the kernel
    /// confines itself: it forks the zygote stub).
    pub fn new(kind: PlatformKind, memfd: RawFd) -> std::io::Result<AnyPlatform> {
        Ok(match kind {
            PlatformKind::Ptrace => AnyPlatform::Ptrace(ptrace::PtracePlatform::new(memfd)?),
            PlatformKind::Systrap => AnyPlatform::Systrap(systrap::SystrapPlatform::new(memfd)?),
        })
    }

    pub fn kind(&self) -> PlatformKind {
        match self {
            AnyPlatform::Ptrace(_) => PlatformKind::Ptrace,
            AnyPlatform::Systrap(_) => PlatformKind::Systrap,
        }
    }
}

impl Platform for AnyPlatform {
    fn new_space(&mut self) -> std::io::Result<SpaceId> {
        each!(self, p => p.new_space())
    }
    fn new_space_for_exec(&mut self) -> std::io::Result<SpaceId> {
        each!(self, p => p.new_space_for_exec())
    }
    fn can_exec_in_place(&self, thread: ThreadId) -> bool {
        each!(self, p => p.can_exec_in_place(thread))
    }
    fn exec_in_place(&mut self, new: SpaceId, thread: ThreadId) -> bool {
        each!(self, p => p.exec_in_place(new, thread))
    }
    fn prewake(&mut self, thread: ThreadId) {
        each!(self, p => p.prewake(thread))
    }
    fn drop_space(&mut self, space: SpaceId) {
        each!(self, p => p.drop_space(space))
    }
    fn apply(&mut self, space: SpaceId, ops: &[MapOp]) -> std::io::Result<Vec<i64>> {
        each!(self, p => p.apply(space, ops))
    }
    fn apply_fresh(&mut self, space: SpaceId, ops: &[MapOp]) -> std::io::Result<()> {
        each!(self, p => p.apply_fresh(space, ops))
    }
    fn new_thread(&mut self, space: SpaceId) -> std::io::Result<ThreadId> {
        each!(self, p => p.new_thread(space))
    }
    fn drop_thread(&mut self, thread: ThreadId) {
        each!(self, p => p.drop_thread(thread))
    }
    fn get_regs(&mut self, thread: ThreadId) -> std::io::Result<Regs> {
        each!(self, p => p.get_regs(thread))
    }
    fn get_regs_partial(&mut self, thread: ThreadId) -> Option<Regs> {
        each!(self, p => p.get_regs_partial(thread))
    }
    fn set_regs(&mut self, thread: ThreadId, regs: &Regs) -> std::io::Result<()> {
        each!(self, p => p.set_regs(thread, regs))
    }
    fn get_fpu(&mut self, thread: ThreadId) -> std::io::Result<FpuState> {
        each!(self, p => p.get_fpu(thread))
    }
    fn set_fpu(&mut self, thread: ThreadId, fpu: &FpuState) -> std::io::Result<()> {
        each!(self, p => p.set_fpu(thread, fpu))
    }
    fn resume(&mut self, thread: ThreadId) -> std::io::Result<()> {
        each!(self, p => p.resume(thread))
    }
    fn interrupt(&mut self, thread: ThreadId) {
        each!(self, p => p.interrupt(thread))
    }
    fn stop_now(&mut self, thread: ThreadId) {
        each!(self, p => p.stop_now(thread))
    }
    fn poll_stop(&mut self) -> Option<(ThreadId, Stop)> {
        each!(self, p => p.poll_stop())
    }
    fn wakeup_fds(&self) -> Vec<RawFd> {
        each!(self, p => p.wakeup_fds())
    }
    fn take_foreign_exits(&mut self) -> Vec<(i32, i32)> {
        each!(self, p => p.take_foreign_exits())
    }
    fn spin(&mut self, max: Duration) -> bool {
        each!(self, p => p.spin(max))
    }
    fn prepare_sleep(&mut self) -> bool {
        each!(self, p => p.prepare_sleep())
    }
    fn after_wait(&mut self, ready: u32) {
        each!(self, p => p.after_wait(ready))
    }
    fn reaped_through(&self) -> u64 {
        each!(self, p => p.reaped_through())
    }
    fn vdso(&self) -> Option<u64> {
        each!(self, p => p.vdso())
    }
    fn workload_gs(&self) -> bool {
        each!(self, p => p.workload_gs())
    }
    fn patchable_stop(&self, thread: ThreadId) -> bool {
        each!(self, p => p.patchable_stop(thread))
    }
    fn usertrap_entry(&self) -> Option<u64> {
        each!(self, p => p.usertrap_entry())
    }
    fn parked(&mut self, thread: ThreadId) {
        each!(self, p => p.parked(thread))
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        each!(self, p => p.counters())
    }
}
