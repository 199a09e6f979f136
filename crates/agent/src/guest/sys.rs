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
