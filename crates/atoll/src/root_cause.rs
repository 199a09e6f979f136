//! The root cause of a failed create or exec, for the final error line.
//!
//! When the container's init (or an exec'd process) fails while
//! libcontainer sets it up, libcontainer hands the parent only the top of
//! the error ("failed syscall", "failed to prepare rootfs"); the cause
//! ("capset failure: Operation not permitted", "filesystem proc must be
//! mounted on ordinary directory") is only in what it logs in the child,
//! which atoll shows with --debug alone. So every process of this atoll
//! (the children are clones of it and share the descriptor) writes
//! libcontainer's and libcgroups' error events to an anonymous file, and
//! the final error line takes the first of them, the deepest, if it says
//! something the error does not.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::FromRawFd;
use std::sync::{Mutex, OnceLock};

static RECORD: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Creates the record (before anything forks). Without it, nothing is
/// recorded and errors stay as they are.
pub fn init() {
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is
    // owned by the File from here on.
    let fd = unsafe { libc::memfd_create(c"atoll-errors".as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        let _ = RECORD.set(Mutex::new(unsafe { std::fs::File::from_raw_fd(fd) }));
    }
}

/// Records one library error event (`msg` and its fields, as logged).
pub fn record(msg: &str, fields: &str) {
    let Some(file) = RECORD.get() else {
        return;
    };
    if let Ok(mut f) = file.lock() {
        // One write per event: the file offset is shared with the
        // children, so events of several processes follow each other.
        let line = format!("{}\t{}\n", msg.replace(['\n', '\t'], " "), fields.trim());
        let _ = f.write_all(line.as_bytes());
    }
}

/// `error` with the recorded root cause folded in, if there is one that
/// `error` does not already say.
pub fn fold_into(error: &str) -> String {
    let Some(file) = RECORD.get() else {
        return error.to_string();
    };
    let mut text = String::new();
    if let Ok(mut f) = file.lock() {
        let _ = f.seek(SeekFrom::Start(0));
        let _ = (&mut *f).take(1 << 20).read_to_string(&mut text);
    }
    match cause(&text) {
        None => error.to_string(),
        Some((_, detail)) if error.contains(&detail) => error.to_string(),
        Some((msg, detail)) if error.contains(&msg) => format!("{error}: {detail}"),
        Some((msg, detail)) => format!("{error}: {msg}: {detail}"),
    }
}

/// The first recorded event that carries an error value: its message and
/// what the value says.
fn cause(record: &str) -> Option<(String, String)> {
    record.lines().find_map(|l| {
        let (msg, fields) = l.split_once('\t')?;
        Some((msg.trim().to_string(), detail(fields)?))
    })
}

/// What an error field (`err=Kind(Inner("text"))`, Debug-formatted) says,
/// with the fields after it:
/// its only string, else an errno name's description, else the value.
fn detail(fields: &str) -> Option<String> {
    // The field libcontainer names the error by (err mostly; errno, e,
    // error and ret here and there), not one whose name merely ends so.
    let at = ["err=", "errno=", "error=", "e=", "ret="]
        .iter()
        .flat_map(|name| fields.match_indices(name))
        .filter(|(i, _)| *i == 0 || fields[..*i].ends_with(' '))
        .map(|(i, m)| (i, i + m.len()))
        .min()?
        .1;
    let value = fields[at..].trim();
    let strings = quoted(value);
    if strings.len() == 1 {
        return Some(strings[0].clone());
    }
    if strings.is_empty()
        && let Some(desc) = value
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find_map(errno_description)
    {
        return Some(desc);
    }
    Some(value.replace("\\\"", "\""))
}

/// The string literals of a Debug-formatted value, unescaped.
fn quoted(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                }
                '"' => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// `EPERM` → "Operation not permitted (EPERM)".
fn errno_description(name: &str) -> Option<String> {
    if !name.starts_with('E') || name.len() < 3 || !name.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    (1..134).find_map(|n| {
        let e = nix::errno::Errno::from_raw(n);
        (format!("{e:?}") == name).then(|| format!("{} ({name})", e.desc()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_with_an_error_value_is_the_cause() {
        let record = "failed to drop capabilities\terr=SetCaps(CapsError(\"capset failure: Operation not permitted (os error 1)\"))\n\
                      failed to initialize container process: failed syscall\t\n";
        assert_eq!(
            cause(record).unwrap(),
            (
                "failed to drop capabilities".to_string(),
                "capset failure: Operation not permitted (os error 1)".to_string()
            )
        );
        let record = "failed to prepare rootfs\terr=Mount(Other(\"filesystem proc must be mounted on ordinary directory\"))\n";
        assert_eq!(
            cause(record).unwrap().1,
            "filesystem proc must be mounted on ordinary directory"
        );
        let record = "failed to set uid and gid\terr=Nix(EPERM) uid=5 gid=5\n";
        assert_eq!(cause(record).unwrap().1, "Operation not permitted (EPERM)");
        let record = "failed to chdir\te=ENOENT\n";
        assert_eq!(
            cause(record).unwrap().1,
            "No such file or directory (ENOENT)"
        );
        assert_eq!(cause("failed to run intermediate process x\t\n"), None);
    }

    #[test]
    fn a_cause_the_error_already_gives_is_not_repeated() {
        init();
        record(
            "failed to prepare rootfs",
            "err=Mount(Other(\"proc must be a directory\"))",
        );
        assert_eq!(
            fold_into("create: failed to prepare rootfs"),
            "create: failed to prepare rootfs: proc must be a directory"
        );
        assert_eq!(
            fold_into("create: failed syscall"),
            "create: failed syscall: failed to prepare rootfs: proc must be a directory"
        );
        assert_eq!(
            fold_into("create: proc must be a directory"),
            "create: proc must be a directory"
        );
    }
}
