//! Syscall numbers and arguments straight into the application kernel's
//! dispatch: a real kernel (the default platform, systrap where the host
//! has it; a real memory file; an in-process file server over a scratch
//! rootfs) serves every syscall of the input for its one workload task,
//! with arguments that are raw values, pointers into the task's memory
//! (which holds the input), paths, sizes and descriptors it got back. Any
//! panic, abort or allocation past libFuzzer's malloc limit is a kernel
//! that a workload could kill with arguments. The driver is
//! `atoll_kernel::syscall_driver` (its smoke test runs in `cargo test`); it
//! runs in its own network and mount namespaces, over a 64 MiB tmpfs, so
//! the workload's sockets and files touch nothing of the host's. Needs
//! root.
#![no_main]

use std::cell::RefCell;

use atoll_kernel::syscall_driver::{Driver, isolate_host};
use libfuzzer_sys::fuzz_target;

/// The driver, kept until the process ends and never dropped: when the
/// fuzzing thread exits, the kernel's own thread-locals (wait queues,
/// inotify watches, locks) may be gone before this one, and dropping its
/// files then would panic in code no workload reaches. Its stubs die with
/// the process (PTRACE_O_EXITKILL), its tmpfs with the mount namespace.
struct Kept(Option<Driver>);

impl Drop for Kept {
    fn drop(&mut self) {
        std::mem::forget(self.0.take());
    }
}

thread_local! {
    static DRIVER: RefCell<Kept> = const { RefCell::new(Kept(None)) };
}

fuzz_target!(|data: &[u8]| {
    DRIVER.with(|d| {
        let mut d = d.borrow_mut();
        let driver = d.0.get_or_insert_with(|| {
            let dir = std::env::temp_dir().join(format!("atoll-fuzz-{}", std::process::id()));
            let root = isolate_host(&dir).expect("isolating the fuzzed kernel (run as root)");
            Driver::new(&root).expect("booting the fuzzed kernel")
        });
        driver
            .run_input(data)
            .expect("the driver lost its workload task");
    });
});
