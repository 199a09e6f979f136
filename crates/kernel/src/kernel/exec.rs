//! execve: replace a process's image.
//!
//! The new image is built in a fresh address space (a new stub process)
//! while the old one still runs, so a failure leaves the caller intact;
//! only then are the other threads ended and the task moved over.

use std::cell::RefCell;
use std::rc::Rc;

use super::task::TaskState;
use super::{Kernel, Tid, waitq};
use crate::arch::{PAGE_SIZE, page_up};
use crate::errno::{Errno, SysResult};
use crate::loader::{self, Format, stack};
use crate::mm::AddressSpace;
use crate::platform::Platform;
use crate::vfs::inode::FileType;
use crate::vfs::perm::MAY_EXEC;
use crate::vfs::{Dentry, File};

/// Most nested `#!` interpreters (Linux allows 4 levels too).
const MAX_INTERP_DEPTH: usize = 4;

/// What an exec calls its program, as Linux's `bprm`.
pub struct ExecName {
    /// `bprm->filename`: the path as given when it is absolute or relative
    /// to the working directory; else `/dev/fd/N/path`, or `/dev/fd/N`
    /// for the descriptor alone. AT_EXECFN, a script's argument, the task
    /// name, and counted with the arguments.
    pub filename: Vec<u8>,
    /// Named by a descriptor alone (`execveat(fd, "", AT_EMPTY_PATH)`):
    /// the task name is then the program file's own.
    pub by_fd: bool,
    /// The name is gone once the exec is done (below a close-on-exec
    /// descriptor): a script's interpreter could not open it, so a script
    /// does not run (ENOENT, Linux's BINPRM_FLAGS_PATH_INACCESSIBLE).
    pub inaccessible: bool,
}

impl ExecName {
    /// A program named by a path from the working directory.
    pub fn path(path: Vec<u8>) -> ExecName {
        ExecName {
            filename: path,
            by_fd: false,
            inaccessible: false,
        }
    }
}

fn basename(p: &[u8]) -> Vec<u8> {
    let b = p.rsplit(|c| *c == b'/').next().unwrap_or(p);
    b[..b.len().min(15)].to_vec()
}

impl Kernel {
    /// Opens an executable for exec: regular file, x permission, not on a
    /// noexec mount.
    fn open_exec(&self, tid: Tid, d: &Rc<Dentry>) -> SysResult<Rc<File>> {
        if d.kind() != FileType::Regular {
            return Err(Errno::EACCES);
        }
        if d.mount.noexec {
            return Err(Errno::EACCES);
        }
        let st = d.inode.stat(self)?;
        self.cred(tid).may_access(&st, MAY_EXEC)?;
        let ops = d.inode.open(self, libc::O_RDONLY)?;
        let f = File::new(ops, libc::O_RDONLY, Some(d.clone()));
        // Opened and read for the exec, closed when the image is built.
        f.notify_close.set(true);
        crate::vfs::inotify::notify_open_close(d, crate::vfs::inotify::IN_OPEN);
        crate::vfs::inotify::notify_open_close(d, crate::vfs::inotify::IN_ACCESS);
        Ok(f)
    }

    /// Finds and opens the program an exec names: the first thing an
    /// exec does, before it reads the arguments (as Linux's
    /// `do_execveat_common`: a missing or unexecutable file wins over
    /// bad or too long arguments).
    pub fn open_execve(
        &mut self,
        tid: Tid,
        dirfd: i32,
        path: &[u8],
        flags: i32,
    ) -> SysResult<(Rc<File>, Rc<Dentry>)> {
        if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
            return Err(Errno::EINVAL);
        }
        let d = self.lookup_at(
            tid,
            dirfd,
            path,
            flags & libc::AT_SYMLINK_NOFOLLOW == 0,
            flags & libc::AT_EMPTY_PATH != 0,
        )?;
        let f = self.open_exec(tid, &d)?;
        Ok((f, d))
    }

    /// The name task `tid`'s exec gives the program at `path` from
    /// `dirfd` (see [`ExecName`]).
    pub fn exec_name(&self, tid: Tid, dirfd: i32, path: &[u8]) -> ExecName {
        if dirfd == crate::vfs::lookup::AT_FDCWD || path.first() == Some(&b'/') {
            return ExecName::path(path.to_vec());
        }
        let mut filename = format!("/dev/fd/{dirfd}").into_bytes();
        if !path.is_empty() {
            filename.push(b'/');
            filename.extend_from_slice(path);
        }
        let inaccessible = self
            .task(tid)
            .files
            .borrow()
            .entry(dirfd)
            .is_some_and(|e| e.cloexec);
        ExecName {
            filename,
            by_fd: path.is_empty(),
            inaccessible,
        }
    }

    /// Runs the program `opened` ([`Self::open_execve`]), called `name`,
    /// with `argv` and `envp`.
    pub fn do_execve(
        &mut self,
        tid: Tid,
        name: ExecName,
        opened: (Rc<File>, Rc<Dentry>),
        mut argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> SysResult<u64> {
        let ExecName {
            filename: execfn,
            by_fd,
            inaccessible,
        } = name;
        // Exec in place (see below) ends in a control call of this
        // process's stub: its control thread wakes while the image is
        // read and built.
        let caller_host = self.task(tid).host;
        let in_place = Rc::strong_count(&self.task(tid).mm) == 1
            && self.platform.can_exec_in_place(caller_host);
        if in_place {
            self.platform.prewake(caller_host);
        }
        // What a script's interpreter is given as the script: the name
        // the exec was made with, then each interpreter's as its `#!`
        // line names it (Linux's bprm->interp).
        let mut shown = execfn.clone();
        let mut depth = 0;
        let mut opened = Some(opened);
        let (file, dentry) = loop {
            // The first round runs the file opened; an interpreter is
            // looked up as Linux's open_exec does: from the working
            // directory, following symlinks.
            let (f, d) = match opened.take() {
                Some(o) => o,
                None => self.open_execve(tid, crate::vfs::lookup::AT_FDCWD, &shown, 0)?,
            };
            let head = loader::elf::read_at(self, &f, 0, 256)?;
            match loader::classify(&head) {
                Some(Format::Elf) => break (f, d),
                Some(Format::Script { interp, arg }) => {
                    if inaccessible {
                        return Err(Errno::ENOENT);
                    }
                    depth += 1;
                    if depth > MAX_INTERP_DEPTH {
                        return Err(Errno::ELOOP);
                    }
                    let mut nargv = vec![interp.clone()];
                    nargv.extend(arg);
                    nargv.push(shown);
                    nargv.extend(argv.into_iter().skip(1));
                    argv = nargv;
                    shown = interp;
                }
                None => return Err(Errno::ENOEXEC),
            }
        };
        let exe_path = dentry.path(self);

        // The credentials the program runs with (set-ID files).
        let old_cred = self.cred(tid);
        let st = dentry.inode.stat(self)?;
        let readable = old_cred.may_access(&st, crate::vfs::perm::MAY_READ).is_ok();
        let tracer_capable = self.task(tid).ptrace.as_ref().is_none_or(|p| {
            self.tasks.contains_key(&p.tracer)
                && self
                    .cred(p.tracer)
                    .capable(crate::vfs::perm::cap::SYS_PTRACE)
        });
        let super::creds::ExecCred { cred, secure } = super::creds::exec_cred(
            &old_cred,
            st.st_mode,
            st.st_uid,
            st.st_gid,
            dentry.mount.nosuid,
            tracer_capable,
        );
        let stack_limit = self.rlimit(tid, libc::RLIMIT_STACK).rlim_cur;
        // Build the new image in a new address space (from here on, a
        // failure releases it). Its host side comes later: the caller's
        // own host process when nothing else shares it (see below), else
        // a new one with the new thread.
        let mut mm = AddressSpace::for_exec(&mut self.platform, self.mf.clone())
            .map_err(|e| Errno::from_io(&e))?;
        let built = self.build_image(
            tid,
            &mut mm,
            &file,
            &exe_path,
            &argv,
            &envp,
            &execfn,
            &cred,
            secure,
            stack_limit,
        );
        let (entry, sp) = match built {
            Ok(v) => v,
            Err(e) => {
                mm.release(&mut self.platform);
                return Err(e);
            }
        };
        let new_space = mm.space;
        // Exec in place: a process alone on its address space (no vfork
        // parent, no CLONE_VM sibling) whose only thread ever is the
        // caller keeps its host process and thread for the new image,
        // instead of a new stub process and thread and the old one's end
        // (two control round trips and a process creation saved on every
        // fork+exec). Anything else gets a new host thread now, before
        // the point of no return, so that a failure still returns.
        let new_host = if in_place {
            None
        } else {
            match self.platform.new_thread(new_space) {
                Ok(h) => Some(h),
                Err(e) => {
                    mm.release(&mut self.platform);
                    return Err(if e.raw_os_error() == Some(libc::EAGAIN) {
                        Errno::EAGAIN
                    } else {
                        Errno::ENOMEM
                    });
                }
            }
        };

        // Point of no return: the other threads go. A traced one whose
        // tracer asked for PTRACE_EVENT_EXIT stops there first, and the
        // exec waits until its tracer lets it go (Linux's de_thread).
        if self.end_other_threads(tid) {
            if let Some(h) = new_host {
                self.platform.drop_thread(h);
            }
            mm.release(&mut self.platform);
            return Err(Errno::EBLOCK);
        }
        let host = match new_host {
            Some(h) => h,
            // The old image leaves the host process here, before its
            // memory is freed below.
            None if self.platform.exec_in_place(new_space, caller_host) => caller_host,
            None => match self.platform.new_thread(new_space) {
                // Not expected (nothing changed since the check above, and
                // the caller was the only thread): a new host thread, as
                // for any other exec.
                Ok(h) => h,
                Err(_) => {
                    mm.release(&mut self.platform);
                    return Err(Errno::ENOMEM);
                }
            },
        };
        let tgid = self.task(tid).tgid;
        // Locks of robust mutexes held by the old image are dead now, and
        // its PI locks with waiters go to them (Linux's futex_exec_release).
        self.exit_robust_list(tid);
        self.exit_pi_state_list(tid);
        let renumbered = tid != tgid;
        // PTRACE_EVENT_EXEC's message: the thread id the exec was made as.
        let old_tid = tid;
        let tid = if tid != tgid {
            // The exec'ing thread becomes the group leader.
            let mut t = self.tasks.remove(&tid).unwrap();
            t.tid = tgid;
            self.host_tids.insert(t.host, tgid);
            self.tasks.insert(tgid, t);
            let g = self.groups.get_mut(&tgid).unwrap();
            g.threads = vec![tgid];
            // Its children's parent thread is the leader's id now.
            for c in g.children.clone() {
                if let Some(cg) = self.groups.get_mut(&c)
                    && cg.parent_thread == tid
                {
                    cg.parent_thread = tgid;
                }
            }
            let g = self.groups.get_mut(&tgid).unwrap();
            // The old leader's exit was the exec's doing, not the process's.
            g.leader_tracer = None;
            self.yama_leader_replaced(tgid, tid);
            tgid
        } else {
            tid
        };

        let old_host = self.task(tid).host;
        let old_mm = std::mem::replace(&mut self.task_mut(tid).mm, Rc::new(RefCell::new(mm)));
        self.host_tids.remove(&old_host);
        if host == old_host {
            // In place: the old space went with `exec_in_place`.
        } else if Rc::strong_count(&old_mm) == 1 {
            let space = old_mm.borrow().space;
            self.platform.drop_space(space);
        } else {
            self.platform.drop_thread(old_host);
        }
        drop(old_mm);
        let mut regs = self
            .platform
            .get_regs(host)
            .map_err(|e| Errno::from_io(&e))?;
        regs.rip = entry;
        regs.rsp = sp;
        for r in [
            &mut regs.rax,
            &mut regs.rbx,
            &mut regs.rcx,
            &mut regs.rdx,
            &mut regs.rsi,
            &mut regs.rdi,
            &mut regs.rbp,
            &mut regs.r8,
            &mut regs.r9,
            &mut regs.r10,
            &mut regs.r11,
            &mut regs.r12,
            &mut regs.r13,
            &mut regs.r14,
            &mut regs.r15,
        ] {
            *r = 0;
        }
        regs.fs_base = 0;
        regs.gs_base = 0;
        regs.eflags = 0x202;
        regs.orig_rax = u64::MAX;
        self.host_tids.insert(host, tid);

        let t = self.task_mut(tid);
        t.host = host;
        t.regs = regs;
        t.altstack = Default::default();
        t.saved_mask = None;
        t.clear_child_tid = 0;
        t.robust_list = 0;
        // Like Linux: the name the program was started as, not its
        // target; the file's own name when a descriptor alone named it.
        t.comm = if by_fd {
            basename(&dentry.name)
        } else {
            basename(&execfn)
        };
        t.restart = None;
        if Rc::strong_count(&t.files) > 1 {
            let copy = t.files.borrow().clone();
            t.files = Rc::new(RefCell::new(copy));
        }
        if Rc::strong_count(&t.sighand) > 1 {
            let copy = t.sighand.borrow().clone();
            t.sighand = Rc::new(RefCell::new(copy));
        }
        t.sighand.borrow_mut().reset_for_exec();
        let closed = t.files.borrow_mut().close_on_exec();
        drop(closed);
        // A traced task: PTRACE_EVENT_EXEC when its syscall returns, or
        // (attached without PTRACE_SEIZE and no option) a SIGTRAP.
        if let Some(p) = t.ptrace.as_mut() {
            if p.options & super::ptrace::O_TRACEEXEC != 0 {
                p.pending_event = Some((super::ptrace::PTRACE_EVENT_EXEC, old_tid as u64));
            } else if !p.seized {
                t.pending.push(super::signal::SigInfo::new(
                    libc::SIGTRAP,
                    super::signal::SI_USER,
                ));
            }
        }
        if let Some(p) = t.vfork_parent.take()
            && let Some(pt) = self.tasks.get_mut(&p)
        {
            pt.sys.woken = true;
            waitq::wake(p);
        }
        let g = self.groups.get_mut(&tgid).unwrap();
        g.exe = exe_path;
        g.cmdline = nul_joined(&argv);
        g.environ = nul_joined(&envp);
        g.cred = cred;
        // A new image is dumpable unless the process ran with other
        // effective ids than its real ones or cannot read the program
        // (Linux's begin_new_exec, which looks at the old credentials),
        // and then not if the exec raised its privileges.
        g.dumpable = old_cred.euid == old_cred.uid && old_cred.egid == old_cred.gid && readable;
        self.creds_committed(tid, &old_cred);
        if renumbered {
            // The caller's thread id is gone (it is the leader's now), so
            // whoever finishes the syscall by that id would not find it:
            // finish it here and resume it under its new id.
            let t = self.task_mut(tid);
            t.sys = Default::default();
            t.blocked_on = None;
            self.resume(tid);
            return Err(Errno::ENORESUME);
        }
        Err(Errno::EJUSTRETURN)
    }

    /// Ends every thread of `tid`'s process but `tid` (exec): true while
    /// some still wait in their PTRACE_EVENT_EXIT stop (the exec sleeps
    /// and is tried again when they are gone: exit_task wakes it).
    fn end_other_threads(&mut self, tid: Tid) -> bool {
        let tgid = self.task(tid).tgid;
        let others: Vec<Tid> = self.groups[&tgid]
            .threads
            .iter()
            .copied()
            .filter(|t| *t != tid)
            .collect();
        for o in others {
            let t = self.task(o);
            if t.exiting && t.state == TaskState::Traced {
                // In its exit stop already, from an earlier try.
                continue;
            }
            if t.state == TaskState::Running {
                let h = t.host;
                self.platform.stop_now(h);
            }
            let t = self.task_mut(o);
            t.state = TaskState::InKernel;
            // Resumed from its exit stop, it goes on exiting.
            t.exiting = true;
            self.exit_task(o);
        }
        self.groups[&tgid].threads.len() > 1
    }

    #[allow(clippy::too_many_arguments)]
    fn build_image(
        &mut self,
        tid: Tid,
        mm: &mut AddressSpace,
        file: &Rc<File>,
        exe_path: &[u8],
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
        execfn: &[u8],
        cred: &crate::vfs::perm::Cred,
        secure: bool,
        stack_limit: u64,
    ) -> SysResult<(u64, u64)> {
        // The stack first: mmap placement (the interpreter) goes below it.
        let top = stack::map_stack(&mut self.platform, mm, stack_limit)?;
        let (image, reqs) = loader::load_elf(self, mm, file, exe_path, false)?;
        loader::map_image(&mut self.platform, mm, reqs)?;
        let mut entry = image.entry;
        let mut interp_base = 0;
        if let Some(ip) = &image.interp {
            let d = self.lookup(tid, ip, true)?;
            let f = self.open_exec(tid, &d)?;
            let ipath = d.path(self);
            let (interp, reqs) = loader::load_elf(self, mm, &f, &ipath, true)?;
            loader::map_image(&mut self.platform, mm, reqs)?;
            entry = interp.entry;
            interp_base = interp.base;
        }
        let brk = page_up(image.end).unwrap_or(image.end)
            + (crate::kernel::random::u64() % (32 << 20)) / PAGE_SIZE * PAGE_SIZE;
        mm.init_brk(brk);
        let hwcap = core::arch::x86_64::__cpuid(1).edx as u64;
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        let mut auxv = vec![
            (stack::AT_PHDR, image.phdr),
            (stack::AT_PHENT, image.phent),
            (stack::AT_PHNUM, image.phnum),
            (stack::AT_PAGESZ, PAGE_SIZE),
            (stack::AT_BASE, interp_base),
            (stack::AT_FLAGS, 0),
            (stack::AT_ENTRY, image.entry),
            (stack::AT_UID, cred.uid as u64),
            (stack::AT_EUID, cred.euid as u64),
            (stack::AT_GID, cred.gid as u64),
            (stack::AT_EGID, cred.egid as u64),
            (stack::AT_SECURE, secure as u64),
            (stack::AT_HWCAP, hwcap),
            (stack::AT_HWCAP2, hwcap2),
            (stack::AT_CLKTCK, 100),
            (stack::AT_MINSIGSTKSZ, 4096),
            (stack::AT_RANDOM, 0),
            (stack::AT_EXECFN, 0),
            (stack::AT_PLATFORM, 0),
        ];
        // The vDSO every stub keeps (the host's): clock_gettime,
        // gettimeofday, time and getcpu without a syscall.
        if let Some(vdso) = self.platform.vdso() {
            auxv.push((stack::AT_SYSINFO_EHDR, vdso));
        }
        let sp = stack::build_stack(mm, top, argv, envp, execfn, &auxv)?;
        Ok((entry, sp))
    }
}

/// The strings each followed by a NUL, in one buffer (/proc/PID/cmdline
/// and environ). Copied a string at a time: an `xargs` child's are
/// 128 KiB.
fn nul_joined(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.len() + 1).sum());
    for s in strings {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}
