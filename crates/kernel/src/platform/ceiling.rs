//! The host's task limit as a platform sees it: once the host refused a
//! clone with EAGAIN (the container's pids limit), further clones at that
//! task count fail at once, so a fork bomb's failing forks cost what
//! Linux's do, not a stub creation each.

use std::io::{Error, Result};
use std::time::{Duration, Instant};

/// How long a refusal is trusted (the limit may be raised by `update`).
const EXPIRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct TaskCeiling(Option<(usize, Instant)>);

impl TaskCeiling {
    /// EAGAIN without trying when `tasks + more` would pass the ceiling.
    pub fn check(&mut self, tasks: usize, more: usize) -> Result<()> {
        if let Some((n, at)) = self.0 {
            if at.elapsed() > EXPIRY {
                self.0 = None;
            } else if tasks + more > n {
                return Err(Error::from_raw_os_error(libc::EAGAIN));
            }
        }
        Ok(())
    }

    /// Records a clone the host refused at `tasks` host tasks.
    pub fn note(&mut self, tasks: usize, e: &Error) {
        if e.raw_os_error() == Some(libc::EAGAIN) {
            self.0 = Some((tasks, Instant::now()));
        }
    }
}
