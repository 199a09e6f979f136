//! `--strace`: every workload syscall with decoded arguments and result,
//! written to the sandbox log (like `runsc --strace`).

use crate::errno::{Errno, name as errno_name};
use crate::kernel::{Kernel, Tid};

/// Syscalls whose argument `i` is a path.
fn path_arg(name: &str) -> Option<usize> {
    match name {
        "open" | "stat" | "lstat" | "access" | "readlink" | "chdir" | "mkdir" | "rmdir"
        | "unlink" | "creat" | "chmod" | "chown" | "lchown" | "truncate" | "execve" | "statfs"
        | "chroot" | "rename" | "link" | "symlink" | "utimes" | "mknod" => Some(0),
        "openat" | "newfstatat" | "faccessat" | "faccessat2" | "readlinkat" | "mkdirat"
        | "unlinkat" | "renameat" | "renameat2" | "linkat" | "fchmodat" | "fchownat"
        | "utimensat" | "statx" | "mknodat" | "execveat" | "openat2" | "fchmodat2" => Some(1),
        _ => None,
    }
}

impl Kernel {
    pub fn strace(&mut self, tid: Tid, nr: u64, args: &[u64; 6], r: &Result<u64, Errno>) {
        let name = super::name(nr);
        let mut parts: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
        if let Some(i) = path_arg(name)
            && let Some(mm) = self.tasks.get(&tid).map(|t| t.mm.clone())
            && let Ok(p) = mm.borrow().read_cstr(args[i], 4096)
        {
            parts[i] = format!("{:?}", String::from_utf8_lossy(&p));
        }
        if matches!(
            name,
            "read" | "write" | "close" | "fstat" | "lseek" | "dup" | "dup2" | "ioctl" | "fcntl"
        ) {
            parts[0] = (args[0] as i32).to_string();
        }
        let ret = match r {
            Ok(v) => format!("{}", *v as i64),
            Err(Errno::EBLOCK) => "? <blocked>".into(),
            Err(Errno::EJUSTRETURN) => "? <returns to new context>".into(),
            Err(Errno::ENORESUME) => "? <exited>".into(),
            Err(e) => format!("-1 {}", errno_name(e.0)),
        };
        let line = format!("[{tid:>5}] {name}({}) = {ret}", parts.join(", "));
        self.log.line(&line);
    }
}
