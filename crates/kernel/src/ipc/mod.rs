//! System V IPC (shared memory, semaphores, message queues) and POSIX
//! message queues, in the kernel.
//!
//! The sandbox is one IPC namespace: its objects are the kernel's (no host
//! IPC object is ever created), shared by all of its processes, and gone
//! with the sandbox. The namespace keeps the three System V registries,
//! the POSIX queue names and the limits `/proc/sys` shows (Linux's
//! defaults; the writable ones may be changed from inside).

pub mod ids;
pub mod mqueue;
pub mod msg;
pub mod proc;
pub mod sem;
pub mod shm;

use std::cell::RefCell;

pub use ids::{IpcPerm, Registry};

/// Commands shared by shmctl, semctl and msgctl.
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;
/// Old-ABI marker glibc ORs into commands (the 64-bit layouts are the
/// only ones on x86_64).
pub const IPC_64: i32 = 0x100;

pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;

/// Limits of the namespace, as Linux's defaults (/proc/sys/kernel/...).
#[derive(Clone, Debug)]
pub struct Limits {
    pub shmmax: u64,
    pub shmall: u64,
    pub shmmni: u64,
    /// kernel.shm_rmid_forced: segments nobody is attached to go when
    /// their creator exits (and at detach if the creator is gone).
    pub shm_rmid_forced: bool,
    /// kernel.sem: SEMMSL SEMMNS SEMOPM SEMMNI.
    pub semmsl: i32,
    pub semmns: i32,
    pub semopm: i32,
    pub semmni: i32,
    pub msgmax: i32,
    pub msgmnb: i32,
    pub msgmni: i32,
    /// fs.mqueue.*
    pub mq_queues_max: u32,
    pub mq_msg_max: i64,
    pub mq_msgsize_max: i64,
    pub mq_msg_default: i64,
    pub mq_msgsize_default: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            shmmax: u64::MAX - (1 << 24),
            shmall: u64::MAX - (1 << 24),
            shmmni: 4096,
            shm_rmid_forced: false,
            semmsl: 32000,
            semmns: 1_024_000_000,
            semopm: 500,
            semmni: 32000,
            msgmax: 8192,
            msgmnb: 16384,
            msgmni: 32000,
            mq_queues_max: 256,
            mq_msg_max: 10,
            mq_msgsize_max: 8192,
            mq_msg_default: 10,
            mq_msgsize_default: 8192,
        }
    }
}

/// Largest semaphore value.
pub const SEMVMX: i32 = 32767;

/// One IPC namespace.
#[derive(Default)]
pub struct Namespace {
    pub limits: Limits,
    pub shm: Registry<shm::Segment>,
    pub sem: Registry<sem::SemSet>,
    pub msg: Registry<msg::Queue>,
    pub mq: mqueue::Names,
    /// SEM_UNDO adjustments of each process.
    pub undo: sem::UndoLists,
}

thread_local! {
    /// The sandbox's IPC namespace (the kernel is single-threaded).
    static NS: RefCell<Namespace> = RefCell::new(Namespace::default());
}

/// Runs `f` on the sandbox's IPC namespace.
pub fn with<R>(f: impl FnOnce(&mut Namespace) -> R) -> R {
    NS.with(|ns| f(&mut ns.borrow_mut()))
}

/// Seconds since the epoch, for IPC timestamps.
pub fn now() -> i64 {
    crate::vfs::now().tv_sec
}
