//! The agent is the guest's pid 1: it reaps every process. A process the
//! agent started has a waiter, a pipe the exit status is written to.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

static WAITERS: Mutex<Option<HashMap<i32, OwnedFd>>> = Mutex::new(None);

/// Held while a process is started and its waiter registered, so that a
/// quick exit cannot be reaped before anyone waits for it.
pub fn lock() -> MutexGuard<'static, Option<HashMap<i32, OwnedFd>>> {
    WAITERS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn register(g: &mut MutexGuard<'static, Option<HashMap<i32, OwnedFd>>>, pid: i32, w: OwnedFd) {
    g.get_or_insert_with(HashMap::new).insert(pid, w);
}

pub fn start() {
    let _ = std::thread::Builder::new().name("reaper".into()).spawn(|| {
        loop {
            let mut st = 0;
            // SAFETY: waiting for any child.
            let pid = unsafe { libc::waitpid(-1, &mut st, 0) };
            if pid < 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            if let Some(w) = lock().as_mut().and_then(|m| m.remove(&pid)) {
                let b = st.to_be_bytes();
                // SAFETY: writing 4 bytes to the waiter's pipe.
                unsafe { libc::write(w.as_raw_fd(), b.as_ptr().cast(), 4) };
            }
        }
    });
}
