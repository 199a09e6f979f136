//! Why a sandbox process died: the host kernel logs every seccomp kill as an
//! audit record (`type=1326`) in its ring buffer. When the application
//! kernel is killed by its own filter, the exit status only says SIGSYS;
//! the record names the syscall it attempted, which is what an operator
//! needs to tell a compromised or buggy kernel from a workload crash.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The sandbox log's last line when the kernel stopped by itself (its
/// init exited), followed by the sandbox's exit code. A kernel the host
/// killed (its seccomp filter, SIGKILL) never writes it.
pub const STOPPED_LINE: &str = "kernel stopped, exit code ";

/// One seccomp kill as the host logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompKill {
    pub pid: i32,
    pub comm: String,
    pub syscall: i64,
    /// Microseconds since boot (the ring buffer's clock).
    pub at_usec: u64,
}

impl SeccompKill {
    /// The syscall's name on this architecture, else its number.
    pub fn syscall_name(&self) -> String {
        i32::try_from(self.syscall)
            .ok()
            .and_then(|nr| libseccomp::ScmpSyscall::from(nr).get_name().ok())
            .unwrap_or_else(|| format!("syscall {}", self.syscall))
    }
}

/// Parses one /dev/kmsg record (`prio,seq,usec,flags;message`); `None`
/// unless it is a seccomp audit record that killed (not logged) a process.
pub fn parse_record(line: &str) -> Option<SeccompKill> {
    let (head, msg) = line.split_once(';')?;
    let at_usec = head.split(',').nth(2)?.parse().ok()?;
    if !msg.contains("type=1326") {
        return None;
    }
    let field = |name: &str| -> Option<&str> {
        msg.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    // SECCOMP_RET_KILL_PROCESS and KILL_THREAD; RET_LOG records are 0x7ffc0000.
    let code = field("code")?;
    if code != "0x80000000" && code != "0x0" {
        return None;
    }
    Some(SeccompKill {
        pid: field("pid")?.parse().ok()?,
        comm: field("comm")?.trim_matches('"').to_string(),
        syscall: field("syscall")?.parse().ok()?,
        at_usec,
    })
}

/// The last seccomp kill of `pid` logged at or after `since_usec` (since
/// boot), read from /dev/kmsg. `None` if there is none or the log cannot be
/// read (another consumer such as auditd may take audit records instead).
pub fn seccomp_kill_of(pid: i32, since_usec: u64) -> Option<SeccompKill> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut found = None;
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let line = String::from_utf8_lossy(&buf[..n]);
                if let Some(k) = parse_record(&line)
                    && k.pid == pid
                    && k.at_usec >= since_usec
                {
                    found = Some(k);
                }
            }
            // EPIPE: a record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    found
}

/// The last `max` bytes of the file at `path` (a sandbox log), as text.
pub(crate) fn read_tail(path: &std::path::Path, max: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max))).ok()?;
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether the sandbox log at `log` ends with the line a kernel writes
/// when it stops by itself.
pub fn stopped_cleanly(log: &std::path::Path) -> bool {
    read_tail(log, 4096).is_some_and(|t| {
        t.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.contains(STOPPED_LINE))
    })
}

/// Microseconds since boot now, on the ring buffer's clock (monotonic).
pub fn now_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_log_that_ends_with_the_stop_line_is_a_clean_stop() {
        let dir = std::env::temp_dir().join(format!("atoll-kmsg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sandbox.log");
        assert!(!stopped_cleanly(&log), "no log: not known to be clean");
        std::fs::write(&log, "booted\nstats {}\n").unwrap();
        assert!(!stopped_cleanly(&log), "killed before its last line");
        std::fs::write(&log, format!("booted\nstats {{}}\n{STOPPED_LINE}0\n\n")).unwrap();
        assert!(stopped_cleanly(&log));
        // A line after it (a later kernel appending to the same log) counts.
        std::fs::write(&log, format!("{STOPPED_LINE}0\nbooted\n")).unwrap();
        assert!(!stopped_cleanly(&log));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_a_seccomp_kill_record() {
        let r = "4,1234,98765432,-;audit: type=1326 audit(1763800000.123:45): auid=4294967295 \
                 uid=0 gid=0 ses=4294967295 subj=unconfined pid=4242 comm=\"atoll-kernel\" \
                 exe=\"/usr/bin/atoll\" sig=31 arch=c000003e syscall=257 compat=0 \
                 ip=0x7f0000001234 code=0x80000000";
        let k = parse_record(r).unwrap();
        assert_eq!(
            k,
            SeccompKill {
                pid: 4242,
                comm: "atoll-kernel".into(),
                syscall: 257,
                at_usec: 98765432
            }
        );
        assert_eq!(k.syscall_name(), "openat");
    }

    #[test]
    fn ignores_log_only_records_and_other_messages() {
        let log = "4,1,5,-;audit: type=1326 audit(1.2:3): pid=1 comm=\"x\" sig=0 syscall=257 code=0x7ffc0000";
        assert_eq!(parse_record(log), None);
        assert_eq!(parse_record("6,2,7,-;eth0: link up"), None);
        assert_eq!(parse_record("garbage"), None);
    }
}
