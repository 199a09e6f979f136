//! fcntl and flock.

use super::{get_file, get_file_raw, nofile};
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Tid};
use crate::syscalls::{Handler, Status};
use crate::vfs::File;
use crate::vfs::file::{F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID, Owner};
use crate::vfs::perm::cap;
use std::rc::Rc;

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "fcntl",
            sys_fcntl,
            Partial,
            "no leases; SIGIO for pipes, FIFOs, unix sockets and ptys; F_NOTIFY for changes made in the sandbox",
        ),
        ("flock", sys_flock, Partial, "advisory, within the sandbox"),
    ]
}

const F_NOTIFY: i32 = 1026;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;

fn sys_fcntl(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let fd = a[0] as i32;
    let f = get_file_raw(k, tid, fd)?;
    let cmd = a[1] as i32;
    // An O_PATH descriptor only dups and has descriptor flags (Linux's
    // check_fcntl_cmd).
    if f.is_path_only()
        && !matches!(
            cmd,
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL
        )
    {
        return Err(Errno::EBADF);
    }
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let limit = nofile(k, tid);
            if a[2] >= limit {
                return Err(Errno::EINVAL);
            }
            let n = k.task(tid).files.borrow_mut().alloc(
                f,
                a[1] as i32 == libc::F_DUPFD_CLOEXEC,
                a[2] as i32,
                limit,
            )?;
            Ok(n as u64)
        }
        libc::F_GETFD => Ok(k
            .task(tid)
            .files
            .borrow()
            .entry(fd)
            .map_or(0, |e| e.cloexec as u64)),
        libc::F_SETFD => {
            k.task(tid)
                .files
                .borrow_mut()
                .set_cloexec(fd, a[2] & 1 != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok((f.flags.get() & !libc::O_CLOEXEC) as u64),
        libc::F_SETFL => {
            let settable = libc::O_APPEND
                | libc::O_NONBLOCK
                | libc::O_ASYNC
                | libc::O_DIRECT
                | libc::O_NOATIME;
            let fl = (f.flags.get() & !settable) | (a[2] as i32 & settable);
            set_async(&f, fd, fl & libc::O_ASYNC != 0);
            f.flags.set(fl);
            Ok(0)
        }
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => crate::vfs::lock::fcntl_lock(k, tid, &f, a[1] as i32, a[2]),
        libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ => {
            let Some(pipe) = crate::vfs::pipe::pipe_of(&*f.ops) else {
                return Err(Errno::EBADF);
            };
            if a[1] as i32 == libc::F_GETPIPE_SZ {
                Ok(pipe.capacity() as u64)
            } else {
                let privileged = k.cred(tid).capable(cap::SYS_RESOURCE);
                Ok(pipe.set_capacity(a[2], privileged)? as u64)
            }
        }
        libc::F_GETOWN => Ok(match f.owner.get() {
            Some(o) if o.kind == F_OWNER_PGRP => (-o.id) as i64 as u64,
            Some(o) => o.id as u64,
            None => 0,
        }),
        libc::F_SETOWN => {
            let arg = a[2] as i32;
            // Negative: a process group; -INT_MIN does not exist.
            let owner = match arg {
                i32::MIN => return Err(Errno::EINVAL),
                0 => None,
                p if p > 0 => Some(Owner {
                    kind: F_OWNER_PID,
                    id: p,
                }),
                p => Some(Owner {
                    kind: F_OWNER_PGRP,
                    id: -p,
                }),
            };
            set_owner(k, &f, owner)
        }
        F_GETOWN_EX => {
            let (kind, id) = f.owner.get().map_or((F_OWNER_PID, 0), |o| (o.kind, o.id));
            // As the caller's pid namespace names it (pidns.rs).
            let id = k.pid_out(tid, id);
            k.task_mm(tid).borrow().write_val(a[2], &[kind, id])?;
            Ok(0)
        }
        F_SETOWN_EX => {
            let [kind, id]: [i32; 2] = k.task_mm(tid).borrow().read_val(a[2])?;
            if !matches!(kind, F_OWNER_TID | F_OWNER_PID | F_OWNER_PGRP) {
                return Err(Errno::EINVAL);
            }
            let id = match id {
                0 => 0,
                id => k.pid_in(tid, id).ok_or(Errno::ESRCH)?,
            };
            set_owner(k, &f, (id != 0).then_some(Owner { kind, id }))
        }
        F_SETSIG => {
            let sig = a[2] as i64;
            if !(0..=64).contains(&sig) {
                return Err(Errno::EINVAL);
            }
            f.sig.set(sig as i32);
            Ok(0)
        }
        F_GETSIG => Ok(f.sig.get() as u64),
        F_NOTIFY => {
            let Some(d) = f.dentry.clone() else {
                return Err(Errno::ENOTDIR);
            };
            if d.kind() != crate::vfs::FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            // Linux takes the argument as an unsigned long (DN_MULTISHOT
            // is bit 31).
            let mask = a[2] as u32;
            // A mark's signal goes to the file's owner: the caller, if it
            // has none yet (fcntl_dirnotify's __f_setown).
            if mask & !crate::vfs::dnotify::DN_MULTISHOT != 0 && f.owner.get().is_none() {
                f.owner.set(Some(Owner {
                    kind: F_OWNER_PID,
                    id: k.task(tid).tgid,
                }));
            }
            crate::vfs::dnotify::set(d.inode.id(), &f, fd, mask);
            Ok(0)
        }
        libc::F_ADD_SEALS | libc::F_GET_SEALS => {
            crate::syscalls::mm::fcntl_seals(k, &f, a[1] as i32, a[2])
        }
        _ => Err(Errno::EINVAL),
    }
}

/// F_SETOWN/F_SETOWN_EX: the owner must exist (ESRCH).
fn set_owner(k: &Kernel, f: &Rc<File>, owner: Option<Owner>) -> SysResult<u64> {
    if let Some(o) = owner {
        let exists = match o.kind {
            F_OWNER_TID => k.tasks.contains_key(&o.id),
            F_OWNER_PID => k.groups.get(&o.id).is_some_and(|g| !g.is_zombie()),
            _ => k.groups.values().any(|g| g.pgid == o.id && !g.is_zombie()),
        };
        if !exists {
            return Err(Errno::ESRCH);
        }
    }
    f.owner.set(owner);
    Ok(0)
}

/// O_ASYNC turned on or off: the file joins or leaves the fasync list of
/// its object; `fd` is what its signals will name (si_fd).
pub fn set_async(f: &Rc<File>, fd: i32, on: bool) {
    let was = f.flags.get() & libc::O_ASYNC != 0;
    if on == was {
        return;
    }
    if on {
        f.async_fd.set(fd);
    }
    f.ops.fasync(f, on);
}

fn sys_flock(k: &mut Kernel, tid: Tid, a: [u64; 6]) -> SysResult<u64> {
    let f = get_file(k, tid, a[0] as i32)?;
    crate::vfs::lock::flock(k, tid, &f, a[1] as i32)
}
