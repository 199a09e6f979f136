//! The host clock as the kernel reads it while it serves a syscall.
//!
//! Serving one syscall may ask "how long ago?" several times: each cached
//! walk of a path component and each permission check on a revalidated
//! file system compares its last host check with `RECHECK_AFTER`
//! (`vfs::hostfs`). A clock read costs a few percent of a whole cheap
//! syscall, so those questions take the instant the syscall entered the
//! kernel, read once for its CPU account (`syscalls::dispatch`). Their
//! windows (milliseconds) are far longer than a syscall the kernel
//! serves without blocking; a syscall that blocks enters again when it
//! is retried, with a new reading.
//!
//! A leaf module: it knows nothing of the kernel's other layers.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static ENTERED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The syscall being served entered the kernel at `at`; returns what was
/// set before (to give back to `leave`).
pub fn enter(at: Instant) -> Option<Instant> {
    ENTERED.with(|e| e.replace(Some(at)))
}

/// The syscall is served: `prev` is what `enter` returned.
pub fn leave(prev: Option<Instant>) {
    ENTERED.with(|e| e.set(prev));
}

/// When the syscall being served entered the kernel; outside a syscall,
/// the clock now.
pub fn now() -> Instant {
    ENTERED.with(|e| e.get()).unwrap_or_else(Instant::now)
}
