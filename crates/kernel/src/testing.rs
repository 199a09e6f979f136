//! Helpers of the crate's unit tests.

/// A xorshift64 generator from `seed` (not zero): the same sequence on
/// every run, so a failing randomized test fails again.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Waits for the forked child `pid` and returns its wait status; a child
/// still there after a minute is killed and the test fails. A child of
/// the multithreaded test process can hang (one did, in CI, when two
/// tests raced to install the same fault handler): the test must fail
/// then, never hang the run.
pub fn wait_child(pid: libc::pid_t) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return status;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung for a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
