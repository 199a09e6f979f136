//! A process that has been killed but has not finished exiting yet.
//!
//! `kill -9` returns as soon as the signal is queued; the process then
//! takes a moment to exit (it may first have to leave the kernel, release
//! its memory, and in a pid namespace take the namespace's other
//! processes with it). Until it is a zombie, libcontainer reports its
//! container as running, so a `delete` right after the kill was refused.
//! delete waits for such an exit instead (bounded).

use std::time::{Duration, Instant};

/// The kernel's flag of a task in do_exit (include/linux/sched.h).
const PF_EXITING: u64 = 0x4;
const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);

/// What /proc says of a process.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Gone,
    /// A zombie or dead: exited, as far as its container goes.
    Exited,
    Dying,
    Alive,
}

fn look(pid: i32) -> Seen {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Seen::Gone;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
    };
    if matches!(field("State:").chars().next(), Some('Z' | 'X')) {
        return Seen::Exited;
    }
    let pending = |name| u64::from_str_radix(field(name), 16).unwrap_or(0);
    if (pending("SigPnd:") | pending("ShdPnd:")) & SIGKILL_BIT != 0 {
        return Seen::Dying;
    }
    let flags = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command's closing parenthesis: state is the
            // first of them, flags the seventh.
            let rest = s.rsplit_once(')')?.1;
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    if flags & PF_EXITING != 0 {
        Seen::Dying
    } else {
        Seen::Alive
    }
}

/// Whether `pid` has a SIGKILL pending or is exiting. Looked at a few
/// times: between taking SIGKILL off its queue and marking itself
/// exiting, a process shows neither.
pub fn is_dying(pid: i32) -> bool {
    for i in 0..3 {
        match look(pid) {
            Seen::Alive => {}
            _ => return true,
        }
        if i < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    false
}

/// Waits until `pid` has exited (a zombie or gone), at most `limit`.
/// Returns whether it has.
pub fn wait_exited(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if matches!(look(pid), Seen::Gone | Seen::Exited) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_child_is_dying_then_exited() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(look(pid), Seen::Alive);
        assert!(!is_dying(pid));
        // SAFETY: our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(is_dying(pid));
        assert!(wait_exited(pid, Duration::from_secs(10)));
        // Not reaped yet: a zombie.
        assert_eq!(look(pid), Seen::Exited);
        child.wait().unwrap();
        assert_eq!(look(pid), Seen::Gone);
    }
}
