//! The syscall driver of the fuzzer, run over pseudo-random inputs: the
//! kernel answers every syscall with an errno or a result, never a panic
//! or an abort. `make fuzz` runs the same driver under libFuzzer
//! (fuzz/fuzz_targets/kernel_syscalls.rs), much longer.

use atoll_kernel::syscall_driver::{Driver, isolate_host};

#[test]
fn random_syscalls_never_kill_the_kernel() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root (namespaces, ptrace)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("atoll-driver-{}", std::process::id()));
    let root = isolate_host(&dir).expect("isolating the driver");
    let mut d = Driver::new(&root).expect("booting the kernel");
    // ATOLL_DRIVER_INPUTS and ATOLL_DRIVER_SEED make longer or other runs.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let inputs = env("ATOLL_DRIVER_INPUTS", 3000);
    let mut x: u64 = env("ATOLL_DRIVER_SEED", 0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..inputs {
        let len = 16 + (next() % 400) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        d.run_input(&input).expect("the driver lost its task");
    }
    drop(d);
    // The tmpfs goes with this thread's mount namespace; the directory
    // under it is the host's.
    let _ = std::fs::remove_dir(&dir);
}
