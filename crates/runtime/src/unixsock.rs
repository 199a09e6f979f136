//! Unix sockets at paths longer than `sun_path` holds (107 bytes).
//!
//! A userspace sandbox's control socket lives at
//! `<root>/.atoll/<id>/control.sock`. Clients choose deep state roots
//! (Docker: `/var/run/docker/runtime-runc/moby`) and 64-character ids
//! (Docker, CRI), which together exceed the limit, and `bind`/`connect`
//! fail with "path must be shorter than SUN_LEN". Long paths are reached
//! through the directory's descriptor instead: `/proc/self/fd/N/<name>`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Longest path passed to the kernel as is.
const MAX_DIRECT: usize = 100;

/// Runs `f` with a path to `path` short enough for a socket address; the
/// directory descriptor stays open while `f` runs.
fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= MAX_DIRECT {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    let r = f(&short);
    drop::<File>(d);
    r
}

/// `UnixListener::bind` for any path length.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    with_short_path(path, |p| UnixListener::bind(p))
}

/// `UnixStream::connect` for any path length.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    with_short_path(path, |p| UnixStream::connect(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn long_paths_bind_and_connect() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("d".repeat(60)).join("e".repeat(64));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("control.sock");
        assert!(path.as_os_str().len() > 108);
        assert!(
            UnixListener::bind(&path).is_err(),
            "the kernel limit applies"
        );
        let l = bind(&path).unwrap();
        assert!(path.exists(), "the socket is where it was asked to be");
        let mut c = connect(&path).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
    }
}
