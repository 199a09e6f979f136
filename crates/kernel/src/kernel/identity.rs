//! What the sandbox says it is: uname, /proc/version, and its own kernel
//! log (dmesg), which shows the sandbox booting and never the host's.

use std::time::Instant;

pub const SYSNAME: &str = "Linux";
/// Release reported by uname -r: atoll's own, not the host's.
pub const RELEASE: &str = "6.1.0-atoll";
pub const VERSION: &str = "#1 SMP PREEMPT atoll application kernel";
pub const MACHINE: &str = "x86_64";

pub struct Syslog {
    boot: Instant,
    lines: Vec<(f64, String)>,
}

impl Syslog {
    pub fn new() -> Syslog {
        Syslog {
            boot: Instant::now(),
            lines: Vec::new(),
        }
    }

    pub fn log(&mut self, msg: impl Into<String>) {
        let t = self.boot.elapsed().as_secs_f64();
        self.lines.push((t, msg.into()));
    }

    /// The log as dmesg reads it through syslog(2): "<6>[    0.000000] msg".
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (t, m) in &self.lines {
            s.push_str(&format!("<6>[{t:12.6}] {m}\n"));
        }
        s
    }

    /// Lines for /dev/kmsg style readers: "6,seq,usec,-;msg".
    pub fn render_kmsg(&self) -> String {
        let mut s = String::new();
        for (i, (t, m)) in self.lines.iter().enumerate() {
            s.push_str(&format!("6,{i},{},-;{m}\n", (t * 1e6) as u64));
        }
        s
    }
}

impl Default for Syslog {
    fn default() -> Self {
        Self::new()
    }
}

/// The sandbox's boot messages.
pub fn boot_log(log: &mut Syslog, hostname: &str, cpus: usize, mem_limit: Option<u64>) {
    log.log("Starting atoll...");
    log.log(format!("Linux version {RELEASE} (atoll) {VERSION}"));
    log.log("Platform: ptrace (PTRACE_SYSEMU), every syscall served by the application kernel");
    log.log(format!("CPUs: {cpus}"));
    match mem_limit {
        Some(m) => log.log(format!("Memory: {} MiB (container limit)", m >> 20)),
        None => log.log("Memory: unlimited (no container limit)"),
    }
    log.log("Mounting the container's file systems through the gofer...");
    log.log("Synthesizing /proc, /sys and /dev...");
    log.log(format!("Setting hostname to {hostname}"));
    log.log("Ready!");
}
