//! Thin wrappers over the system calls the agent makes.

use std::ffi::CString;
use std::io;

pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in string"))
}

pub fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let (s, t, f) = (cstr(src)?, cstr(target)?, cstr(fstype)?);
    let d = data.map(cstr).transpose()?;
    // SAFETY: NUL-terminated strings that outlive the call.
    check(unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    })
    .map(|_| ())
    .map_err(|e| io::Error::new(e.kind(), format!("mount {fstype} on {target}: {e}")))
}

pub fn kernel_cmdline_has(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .map(|c| c.split_whitespace().any(|w| w == flag))
        .unwrap_or(false)
}

/// Writes a line to the kernel's log when debugging (printk reaches the
/// console synchronously, whatever the state of the serial driver).
pub fn log(msg: &str) {
    if crate::guest::init::debug() {
        let _ = std::fs::write("/dev/kmsg", format!("atoll-agent: {msg}\n"));
    }
}

/// `atoll.boottrace` on the kernel command line: the agent prints the
/// guest's uptime at each step of its boot and of a container's start on
/// the console (where `atoll-vmm --console` shows it), to see where a
/// boot's time goes.
pub fn trace(what: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| kernel_cmdline_has("atoll.boottrace")) {
        println!("atoll-agent: {:.3} {what}", uptime());
    }
}

/// Seconds since the guest kernel started (CLOCK_BOOTTIME: no /proc needed).
pub fn uptime() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}
