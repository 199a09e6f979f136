//! The virtio-fs server's seccomp allowlist, tried on this host (no KVM
//! needed): the passthrough file system the VMM serves runs every kind
//! of request a guest makes, on a thread under the file server's filter.
//! The test compiles the filter to fail a forbidden call with an errno
//! nothing else returns (EOWNERDEAD) instead of killing the process, and
//! fails if any request got it.

use std::ffi::CStr;
use std::io;
use std::os::unix::fs::MetadataExt;

use atoll_vmm::seccomp::{self, Caps, Role, allowlist};
use fuse_backend_rs::abi::fuse_abi::CreateIn;
use fuse_backend_rs::api::filesystem::{Context, FileSystem, FsOptions, ROOT_ID, SetattrValid};
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use seccompiler::SeccompAction;

const FORBIDDEN: i32 = libc::EOWNERDEAD;

/// Fails if `r` is the filter's refusal; returns the result otherwise.
fn allowed<T>(what: &str, r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r {
        assert_ne!(
            e.raw_os_error(),
            Some(FORBIDDEN),
            "{what}: the file server's filter refused a syscall"
        );
    }
    r
}

fn ctx(uid: u32) -> Context {
    Context {
        uid,
        gid: uid,
        pid: 1,
    }
}

#[test]
fn the_file_server_serves_every_request_under_its_filter() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the file server switches uids, which needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let fs = PassthroughFs::<()>::new(Config {
        root_dir: root.clone(),
        cache_policy: CachePolicy::Auto,
        xattr: true,
        do_import: true,
        ..Default::default()
    })
    .unwrap();
    fs.import().unwrap();
    let prog = seccomp::compile(
        &allowlist::allowlist(Role::FsServer),
        SeccompAction::Errno(FORBIDDEN as u32),
    )
    .unwrap();
    let h = seccomp::spawn("fs-filter-test".into(), Some(prog), Caps::Keep, move || {
        let r = ctx(0);
        let user = ctx(65534);
        let name = |s: &'static CStr| s;
        allowed("init", fs.init(FsOptions::all())).unwrap();
        let d = allowed("mkdir", fs.mkdir(&r, ROOT_ID, name(c"d"), 0o777, 0)).unwrap();
        // A file created for a guest user (uid switch on this thread).
        let args = CreateIn {
            flags: libc::O_RDWR as u32,
            mode: libc::S_IFREG | 0o644,
            umask: 0,
            fuse_flags: 0,
        };
        let (f, handle, _, _) =
            allowed("create", fs.create(&user, d.inode, name(c"f"), args)).unwrap();
        let handle = handle.unwrap();
        allowed("flush", fs.flush(&user, f.inode, handle, 0)).unwrap();
        allowed("fsync", fs.fsync(&user, f.inode, false, handle)).unwrap();
        allowed("fdatasync", fs.fsync(&user, f.inode, true, handle)).unwrap();
        allowed("getattr", fs.getattr(&r, f.inode, Some(handle))).unwrap();
        let _ = allowed("fallocate", fs.fallocate(&r, f.inode, handle, 0, 0, 4096));
        allowed(
            "release",
            fs.release(&user, f.inode, 0, handle, false, false, None),
        )
        .unwrap();
        // setattr: mode, owner, size, times.
        // SAFETY: stat64 is plain old data.
        let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
        st.st_mode = 0o640;
        st.st_uid = 1000;
        st.st_gid = 1000;
        st.st_size = 100;
        st.st_atime = 1_000_000;
        st.st_mtime = 1_000_000;
        let valid = SetattrValid::MODE
            | SetattrValid::UID
            | SetattrValid::GID
            | SetattrValid::SIZE
            | SetattrValid::ATIME
            | SetattrValid::MTIME;
        allowed("setattr", fs.setattr(&r, f.inode, st, None, valid)).unwrap();
        let (fh, _, _) = allowed("open", fs.open(&r, f.inode, libc::O_RDWR as u32, 0)).unwrap();
        allowed(
            "release",
            fs.release(&r, f.inode, 0, fh.unwrap(), true, false, None),
        )
        .unwrap();
        allowed("lookup", fs.lookup(&r, d.inode, name(c"f"))).unwrap();
        let s = allowed(
            "symlink",
            fs.symlink(&user, name(c"f"), d.inode, name(c"s")),
        )
        .unwrap();
        assert_eq!(allowed("readlink", fs.readlink(&r, s.inode)).unwrap(), b"f");
        allowed("link", fs.link(&r, f.inode, d.inode, name(c"h"))).unwrap();
        allowed(
            "rename",
            fs.rename(&r, d.inode, name(c"h"), d.inode, name(c"h2"), 0),
        )
        .unwrap();
        allowed(
            "mknod fifo",
            fs.mknod(&user, d.inode, name(c"p"), libc::S_IFIFO | 0o600, 0, 0),
        )
        .unwrap();
        let sub = allowed("mkdir", fs.mkdir(&user, d.inode, name(c"sub"), 0o755, 0)).unwrap();
        allowed("statfs", fs.statfs(&r, d.inode)).unwrap();
        let (dh, _) = allowed("opendir", fs.opendir(&r, d.inode, 0)).unwrap();
        let mut names = Vec::new();
        allowed(
            "readdir",
            fs.readdir(&r, d.inode, dh.unwrap_or(0), 4096, 0, &mut |e| {
                names.push(String::from_utf8_lossy(e.name).into_owned());
                Ok(1)
            }),
        )
        .unwrap();
        assert!(names.iter().any(|n| n == "sub"), "{names:?}");
        let _ = allowed("releasedir", fs.releasedir(&r, d.inode, 0, dh.unwrap_or(0)));
        let _ = allowed("access", fs.access(&user, f.inode, libc::R_OK as u32));
        // xattrs: the backing file system may not have them (ENOTSUP is
        // an answer; the filter's refusal is not).
        let _ = allowed(
            "setxattr",
            fs.setxattr(&r, f.inode, name(c"user.atoll"), b"v", 0),
        );
        let _ = allowed(
            "getxattr",
            fs.getxattr(&r, f.inode, name(c"user.atoll"), 64),
        );
        let _ = allowed("listxattr", fs.listxattr(&r, f.inode, 256));
        let _ = allowed(
            "removexattr",
            fs.removexattr(&r, f.inode, name(c"user.atoll")),
        );
        allowed("rmdir", fs.rmdir(&r, d.inode, name(c"sub"))).unwrap();
        allowed("unlink", fs.unlink(&r, d.inode, name(c"h2"))).unwrap();
        fs.forget(&r, sub.inode, 1);
        fs.destroy();
    })
    .unwrap();
    h.join()
        .expect("a file server request failed under its filter");
    let f = std::fs::symlink_metadata(dir.path().join("d/f")).unwrap();
    assert_eq!(
        (f.uid(), f.gid(), f.mode() & 0o7777, f.size()),
        (1000, 1000, 0o640, 100)
    );
    let p = std::fs::symlink_metadata(dir.path().join("d/p")).unwrap();
    assert_eq!(p.uid(), 65534, "a file a guest user makes is that user's");
}
