//! How the workload's syscalls are stopped and its address spaces managed.
//!
//! The kernel sees the platform through [`Platform`]: address spaces that
//! can be mapped into (always from the kernel's memory file), threads that
//! run in them, and stops. The first implementation is ptrace with
//! `PTRACE_SYSEMU` on stub processes; the trait is narrow enough that a
//! faster one (seccomp `RET_TRAP` with a shared-memory handoff, as gVisor's
//! systrap, or KVM) can replace it without touching the kernel.

pub mod ptrace;

use crate::arch::Regs;

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

pub trait Platform {
    /// A new, empty address space.
    fn new_space(&mut self) -> std::io::Result<SpaceId>;
    /// Releases an address space and every thread still in it.
    fn drop_space(&mut self, space: SpaceId);
    /// Applies mapping operations; returns each operation's result (0 or -errno).
    fn apply(&mut self, space: SpaceId, ops: &[MapOp]) -> std::io::Result<Vec<i64>>;
    /// A new thread in `space`, stopped, ready for registers.
    fn new_thread(&mut self, space: SpaceId) -> std::io::Result<ThreadId>;
    /// Ends a stopped thread.
    fn drop_thread(&mut self, thread: ThreadId);
    fn get_regs(&mut self, thread: ThreadId) -> std::io::Result<Regs>;
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
    /// A file descriptor that becomes readable when a stop may be pending.
    fn wakeup_fd(&self) -> std::os::fd::RawFd;
    /// Host children that are not platform threads and have exited
    /// (the gofer): pid and wait status.
    fn take_foreign_exits(&mut self) -> Vec<(i32, i32)>;
}
