//! Small C programs compiled at test time (statically, so they run in any
//! rootfs), cached under target/testkit/bin by a hash of their source.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `source` (C) into a static binary; returns its path.
pub fn compile(name: &str, source: &str, extra_flags: &[&str]) -> PathBuf {
    build(name, source, extra_flags, true)
}

/// Compiles `source` into a binary linked against the host's glibc
/// (Debian bookworm, the same as the test rootfs).
pub fn compile_dynamic(name: &str, source: &str, extra_flags: &[&str]) -> PathBuf {
    build(name, source, extra_flags, false)
}

fn build(name: &str, source: &str, extra_flags: &[&str], static_: bool) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    extra_flags.hash(&mut h);
    static_.hash(&mut h);
    let dir = crate::cache_dir().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}-{:016x}", h.finish()));
    if out.exists() {
        return out;
    }
    let src = dir.join(format!("{}.c", crate::unique(name)));
    std::fs::write(&src, source).unwrap();
    let tmp = dir.join(crate::unique(name));
    let res = Command::new("gcc")
        .args(["-O2", "-Wall"])
        .args(if static_ { &["-static"][..] } else { &[][..] })
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .args(extra_flags)
        .output()
        .expect("running gcc");
    let _ = std::fs::remove_file(&src);
    assert!(
        res.status.success(),
        "gcc {name}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Copies a compiled program into a rootfs at `dest` (absolute in the rootfs).
pub fn install(bin: &Path, rootfs: &Path, dest: &str) {
    let target = rootfs.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(bin, &target).unwrap();
}

/// A probe that makes raw syscalls named on its command line and prints
/// `name=0` or `name=ERRNO_NAME` for each: the shared tool of the security
/// tests.
pub const SYSCALL_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/if_ether.h>

static const char *ename(int e) {
    switch (e) {
    case EPERM: return "EPERM"; case ENOSYS: return "ENOSYS"; case EACCES: return "EACCES";
    case EINVAL: return "EINVAL"; case ENOENT: return "ENOENT"; case EFAULT: return "EFAULT";
    case EBADF: return "EBADF"; case EROFS: return "EROFS"; case ESRCH: return "ESRCH";
    case ENOTDIR: return "ENOTDIR"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOMEM: return "ENOMEM"; case EEXIST: return "EEXIST";
    default: { static char b[32]; snprintf(b, sizeof b, "E%d", e); return b; }
    }
}

static long run(const char *n) {
    if (!strcmp(n, "getpid")) return syscall(SYS_getpid);
    if (!strcmp(n, "ptrace")) return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    if (!strcmp(n, "keyctl")) return syscall(SYS_keyctl, 0 /*GET_KEYRING_ID*/, -3 /*SESSION*/, 0);
    if (!strcmp(n, "add_key")) return syscall(SYS_add_key, "user", "atoll", "x", 1, -3);
    if (!strcmp(n, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(n, "unshare_mnt")) return syscall(SYS_unshare, CLONE_NEWNS);
    if (!strcmp(n, "clone_newuser")) return syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0) ;
    if (!strcmp(n, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
    if (!strcmp(n, "umount")) return syscall(SYS_umount2, "/proc", MNT_DETACH);
    if (!strcmp(n, "bpf")) return syscall(SYS_bpf, 0, 0, 0);
    if (!strcmp(n, "userfaultfd")) return syscall(SYS_userfaultfd, 0);
    if (!strcmp(n, "io_uring_setup")) return syscall(SYS_io_uring_setup, 1, 0);
    if (!strcmp(n, "perf_event_open")) return syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
    if (!strcmp(n, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, 0, 0);
    if (!strcmp(n, "init_module")) return syscall(SYS_init_module, 0, 0, "");
    if (!strcmp(n, "finit_module")) return syscall(SYS_finit_module, -1, "", 0);
    if (!strcmp(n, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, -1, 0, 0);
    if (!strcmp(n, "reboot")) return syscall(SYS_reboot, 0, 0, 0, 0);
    if (!strcmp(n, "swapon")) return syscall(SYS_swapon, "/nonexistent", 0);
    if (!strcmp(n, "pivot_root")) return syscall(SYS_pivot_root, "/tmp", "/tmp");
    if (!strcmp(n, "setns")) return syscall(SYS_setns, -1, 0);
    if (!strcmp(n, "process_vm_readv")) return syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0);
    if (!strcmp(n, "personality_bad")) return syscall(SYS_personality, 0x0040000 /*ADDR_NO_RANDOMIZE*/);
    if (!strcmp(n, "socket_raw")) return syscall(SYS_socket, AF_INET, SOCK_RAW, 1);
    if (!strcmp(n, "socket_packet")) return syscall(SYS_socket, AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (!strcmp(n, "socket_vsock")) return syscall(SYS_socket, 40, SOCK_STREAM, 0);
    if (!strcmp(n, "chroot")) return syscall(SYS_chroot, "/tmp");
    if (!strcmp(n, "mkdir")) return syscall(SYS_mkdir, "/tmp/probe-dir", 0755);
    fprintf(stderr, "probe: unknown syscall %s\n", n);
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = run(argv[i]);
        if (r == -2 && errno == 0) return 2;
        if (r < 0) printf("%s=%s\n", argv[i], ename(errno));
        else printf("%s=0\n", argv[i]);
        fflush(stdout);
    }
    return 0;
}
"#;

/// The syscall probe, compiled.
pub fn syscall_probe() -> PathBuf {
    compile("syscall-probe", SYSCALL_PROBE, &[])
}
