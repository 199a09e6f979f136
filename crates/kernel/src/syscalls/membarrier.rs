//! membarrier(2). Workload threads run on host CPUs, so a barrier on
//! "every thread of the process" is a barrier on every CPU: the kernel
//! asks the host for MEMBARRIER_CMD_GLOBAL, which waits until every CPU
//! has passed through a full barrier (stub threads included). The
//! expedited and private commands are served the same way (a superset of
//! what they promise), with Linux's registration rules.

use super::{Handler, Status};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    vec![(
        "membarrier",
        sys_membarrier,
        Status::Partial,
        "all commands but the SYNC_CORE and RSEQ ones, each as a host-wide barrier",
    )]
}

const CMD_QUERY: u64 = 0;
const CMD_GLOBAL: u64 = 1;
const CMD_GLOBAL_EXPEDITED: u64 = 2;
const CMD_REGISTER_GLOBAL_EXPEDITED: u64 = 4;
const CMD_PRIVATE_EXPEDITED: u64 = 8;
const CMD_REGISTER_PRIVATE_EXPEDITED: u64 = 16;
const SUPPORTED: u64 = CMD_GLOBAL
    | CMD_GLOBAL_EXPEDITED
    | CMD_REGISTER_GLOBAL_EXPEDITED
    | CMD_PRIVATE_EXPEDITED
    | CMD_REGISTER_PRIVATE_EXPEDITED;

/// A full memory barrier on every host CPU.
fn host_barrier() -> SysResult<u64> {
    // SAFETY: membarrier takes no pointers.
    if unsafe { libc::syscall(libc::SYS_membarrier, CMD_GLOBAL as i32, 0, 0) } < 0 {
        return Err(Errno::from_io(&std::io::Error::last_os_error()));
    }
    Ok(0)
}

fn sys_membarrier(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let (cmd, flags) = (a[0] as i32 as u64, a[1] as u32);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = k.task_mm(tid);
    match cmd {
        CMD_QUERY => Ok(SUPPORTED),
        CMD_GLOBAL | CMD_GLOBAL_EXPEDITED => host_barrier(),
        CMD_REGISTER_GLOBAL_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED => {
            mm.borrow()
                .membarrier
                .set(mm.borrow().membarrier.get() | cmd as u32);
            Ok(0)
        }
        CMD_PRIVATE_EXPEDITED => {
            // The process must have registered first (Linux: EPERM).
            if mm.borrow().membarrier.get() & CMD_REGISTER_PRIVATE_EXPEDITED as u32 == 0 {
                return Err(Errno::EPERM);
            }
            host_barrier()
        }
        _ => Err(Errno::EINVAL),
    }
}
