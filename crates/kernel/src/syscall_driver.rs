//! Drives workload syscalls straight into the kernel's dispatch, from
//! inside one host process: what the syscall fuzzer (fuzz/fuzz_targets/
//! kernel_syscalls.rs) and its smoke test run. The kernel is booted as a
//! sandbox would boot it (real platform, real memory file, an in-process
//! file server over a scratch rootfs); its one workload task is a tiny
//! program stopped at its first syscall, and every input's syscalls are
//! served for that task as if it had made them, without ever resuming it.
//! Whatever the arguments, the kernel must answer with an errno: a panic,
//! an abort or an unbounded allocation is a bug.
//!
//! The caller isolates the host first ([`isolate_host`]): the workload's
//! TCP/UDP sockets are host sockets and its files host files, so the
//! driver runs in a network namespace of its own and over a small tmpfs.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::errno::Errno;
use crate::kernel::boot::{ProcessSpec, SandboxConfig};
use crate::kernel::task::{TaskState, default_rlimits};
use crate::kernel::timer::TimerAction;
use crate::kernel::{Kernel, Tid, waitq};
use crate::platform::{Platform, Stop};
use crate::syscalls;
use crate::vfs::hostfd::HostStream;
use crate::vfs::perm::Cred;
use crate::vfs::{FileOps, FileType, Inode};

/// The workload's program, on a read-only mount.
const INIT: &[u8] = b"/ro/init";

/// Bytes of workload memory the arguments point into.
pub const SCRATCH_LEN: u64 = 64 * 1024;
/// Syscalls of one input at most.
const MAX_CALLS: usize = 16;
/// Inputs after which the workload process is replaced by a fresh one
/// (its descriptors, mappings and credentials drift with every input).
const RESPAWN_EVERY: u64 = 500;

/// A static x86-64 ELF whose code is `getpid(); loop`: the workload task
/// stops at its first syscall and is never resumed by the driver; tasks
/// it forks run the same loop until the driver ends them.
fn tiny_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code: &[u8] = &[
        0xb8, 0x27, 0, 0, 0, // mov eax, 39 (getpid)
        0x0f, 0x05, // syscall
        0xeb, 0xf7, // jmp back to the mov
    ];
    let total = 64 + 56 + code.len() as u64;
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    // PT_LOAD, R|X, the whole file at BASE.
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&5u32.to_le_bytes());
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(code);
    e
}

/// Puts the calling thread in a network namespace and a mount namespace of
/// its own (unshare(2) affects only the caller's thread there) and mounts
/// a 64 MiB tmpfs at `dir`, holding the workload's rootfs: /ro/init (a
/// read-only mount, so the workload cannot take its program away), /tmp,
/// /proc, /dev. Returns the rootfs. Needs root.
pub fn isolate_host(dir: &Path) -> Result<PathBuf, String> {
    let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: namespace and mount calls with valid arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET) != 0 {
            return Err(err("unshare"));
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(err("mount --make-rprivate /"));
        }
        let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        if libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=64m,mode=0755".as_ptr().cast(),
        ) != 0
        {
            return Err(err("mount tmpfs"));
        }
    }
    let root = dir.join("rootfs");
    for d in ["tmp", "proc", "dev", "sys", "ro"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    let init = root.join("ro/init");
    std::fs::write(&init, tiny_elf()).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(root)
}

/// Removes everything below `dir` (best effort: what cannot go stays).
fn empty_dir(k: &Kernel, dir: &Rc<dyn Inode>) {
    let Ok(entries) = dir.readdir(k) else {
        return;
    };
    for e in entries {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        if e.kind == FileType::Directory {
            if let Ok(sub) = dir.lookup(k, &e.name) {
                empty_dir(k, &sub);
            }
            let _ = dir.rmdir(k, &e.name);
        } else {
            let _ = dir.unlink(k, &e.name);
        }
    }
}

fn dev_null() -> Result<OwnedFd, String> {
    // SAFETY: open of a constant path.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("/dev/null: {}", std::io::Error::last_os_error()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel and its one workload task.
pub struct Driver {
    pub k: Kernel,
    tid: Tid,
    scratch: u64,
    /// Values syscalls returned (descriptors, mostly), for later arguments.
    fds: Vec<u64>,
    inputs: u64,
    /// Syscall numbers with a handler, which inputs mostly pick from.
    served: Vec<u64>,
}

impl Driver {
    /// Boots a kernel over `root` (made by [`isolate_host`]).
    pub fn new(root: &Path) -> Result<Driver, String> {
        crate::vfs::procfs::capture_host_facts(2);
        let files: Rc<dyn atoll_gofer::FileService> =
            Rc::new(atoll_gofer::FileServer::new(root).map_err(|e| format!("file server: {e}"))?);
        let mount = |dest: &[u8], fstype: &str, options: &[&str]| crate::kernel::boot::MountSpec {
            dest: dest.to_vec(),
            fstype: fstype.to_string(),
            source: fstype.to_string(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        let config = SandboxConfig {
            args: vec![INIT.to_vec()],
            env: Vec::new(),
            mounts: vec![
                mount(b"/proc", "proc", &[]),
                mount(b"/tmp", "tmpfs", &[]),
                mount(b"/ro", "bind", &["rbind", "ro"]),
            ],
            // In-kernel file data is budgeted from this.
            mem_limit: Some(256 << 20),
            cpus: 2,
            ..SandboxConfig::default()
        };
        let stdio = [dev_null()?, dev_null()?, dev_null()?];
        let k = Kernel::boot(config, files, stdio, None, &mut || Ok(()))
            .map_err(|e| format!("boot: {}", e.message))?;
        // The kernel took the signals it forwards to its init; the host
        // process (a fuzzer) needs them back (its timeouts are SIGALRM).
        // SAFETY: unblocking signals of this thread.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
        }
        let served = syscalls::table()
            .iter()
            .filter(|e| e.handler.is_some())
            .map(|e| e.nr)
            .collect();
        let mut d = Driver {
            k,
            tid: 1,
            scratch: 0,
            fds: Vec::new(),
            inputs: 0,
            served,
        };
        d.settle(1)?;
        Ok(d)
    }

    /// Serves stops until task `tid` is stopped at a syscall (then it is
    /// the driver's), ending every other task that stops on the way.
    fn settle(&mut self, tid: Tid) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Some((host, stop)) = self.k.platform.poll_stop() {
                let Some(&t) = self.k.host_tids.get(&host) else {
                    continue;
                };
                if stop == Stop::Gone {
                    let tgid = self.k.task(t).tgid;
                    self.k.group_exit(tgid, libc::SIGKILL);
                    self.k.exit_task(t);
                    continue;
                }
                let Ok(regs) = self.k.platform.get_regs(host) else {
                    continue;
                };
                let task = self.k.task_mut(t);
                task.regs = regs;
                task.state = TaskState::InKernel;
                if t == tid && stop == Stop::Syscall {
                    return Ok(());
                }
                // Pages of the program's file come in on first touch (its
                // code is the file's own pages, see `loader::elf`): a fault
                // the memory manager serves is resumed, not the end.
                if let Stop::Fault { signo, code, addr } = stop
                    && t == tid
                    && self.k.page_fault(t, signo, code, addr).is_none()
                {
                    self.k.resume(t);
                    continue;
                }
                // Anything else is ended: it goes when resumed.
                let tgid = self.k.task(t).tgid;
                self.k.group_exit(tgid, libc::SIGKILL);
                self.k.resume(t);
                if !self.k.tasks.contains_key(&tid) {
                    return Err("the workload task died before its first syscall".into());
                }
            }
            if Instant::now() > deadline {
                return Err("the workload task never stopped".into());
            }
            self.wait_host(10);
        }
    }

    /// Ends every task but the driver's; with `all`, the driver's too.
    fn reap(&mut self, all: bool) -> Result<(), String> {
        let me = self.k.tasks.get(&self.tid).map(|t| t.tgid);
        let others: Vec<_> = self
            .k
            .groups
            .keys()
            .copied()
            .filter(|g| all || Some(*g) != me)
            .collect();
        for g in others {
            self.k.group_exit(g, libc::SIGKILL);
        }
        // Tasks in the kernel (the driver's) end now; running ones when
        // they stop.
        let in_kernel: Vec<Tid> = self
            .k
            .tasks
            .iter()
            .filter(|(_, t)| t.state == TaskState::InKernel && t.exiting)
            .map(|(tid, _)| *tid)
            .collect();
        for t in in_kernel {
            self.k.exit_task(t);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .k
            .tasks
            .keys()
            .any(|t| all || Some(self.k.task(*t).tgid) != me)
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "tasks that do not end: {:?}",
                    self.k.tasks.keys().collect::<Vec<_>>()
                ));
            }
            match self.k.platform.poll_stop() {
                Some((host, stop)) => {
                    let Some(&t) = self.k.host_tids.get(&host) else {
                        continue;
                    };
                    if stop != Stop::Gone
                        && let Ok(regs) = self.k.platform.get_regs(host)
                    {
                        self.k.task_mut(t).regs = regs;
                    }
                    self.k.task_mut(t).state = TaskState::InKernel;
                    self.k.resume(t);
                    if self.k.tasks.contains_key(&t) {
                        self.k.exit_task(t);
                    }
                }
                None => {
                    self.wait_host(10);
                }
            }
        }
        waitq::take_woken();
        Ok(())
    }

    /// Waits up to `ms` for the platform to have a stop to report.
    fn wait_host(&self, ms: i32) {
        let mut fds: Vec<libc::pollfd> = self
            .k
            .platform
            .wakeup_fds()
            .into_iter()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds.len() valid pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }

    /// A fresh workload process, stopped at its first syscall, with its
    /// scratch memory mapped.
    fn respawn(&mut self) -> Result<(), String> {
        self.reap(true)?;
        self.purge();
        // What the kernel's loop does after every wait: dead stubs are
        // reaped (their control pages and thread areas in the platform's
        // region go back; never reaped, they filled the sandbox's memory
        // limit after some thousands of processes), and memory freed
        // while stubs that mapped it were dying, now mapped by none, is
        // released.
        self.k.platform.after_wait(!0);
        self.k
            .mf
            .release_retired_through(self.k.platform.reaped_through());
        let spec = ProcessSpec {
            args: vec![INIT.to_vec()],
            env: Vec::new(),
            cwd: b"/".to_vec(),
            cred: Cred::root(),
            rlimits: default_rlimits(),
            container: 0,
            root: None,
            umask: 0o022,
            session: None,
            pidns: 0,
        };
        let stdio: Vec<Rc<dyn FileOps>> = (0..3)
            .map(|_| dev_null().map(|fd| Rc::new(HostStream::new(fd)) as Rc<dyn FileOps>))
            .collect::<Result<_, _>>()?;
        let pid = self.k.spawn(&spec, stdio).map_err(|(m, _)| m)?;
        self.tid = pid;
        self.fds.clear();
        self.settle(pid)?;
        self.map_scratch()
    }

    /// Empties what outlives the driver's processes in the sandbox's
    /// memory: the files under its /tmp (a tmpfs) and the IPC objects.
    /// Inputs write files and make segments that every later task finds:
    /// kept, a long run could fill the sandbox's memory limit with them,
    /// and a spawn would fail with ENOMEM (as on Linux: no kernel bug).
    fn purge(&mut self) {
        crate::ipc::with(|ns| *ns = crate::ipc::Namespace::default());
        let roots: Vec<Rc<dyn Inode>> = self
            .k
            .mounts
            .borrow()
            .all()
            .iter()
            .filter(|m| {
                m.fstype == "tmpfs" && m.mountpoint.as_ref().is_some_and(|d| d.name == b"tmp")
            })
            .map(|m| m.root.clone())
            .collect();
        for root in roots {
            empty_dir(&self.k, &root);
        }
    }

    fn map_scratch(&mut self) -> Result<(), String> {
        let args = [
            0,
            SCRATCH_LEN,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
            u64::MAX,
            0,
        ];
        let r = syscalls::dispatch(&mut self.k, self.tid, libc::SYS_mmap as u64, args);
        self.finish(&r);
        self.scratch = r.map_err(|e| {
            format!(
                "mmap scratch: {e} (memory file: {} allocated, {} in use, {} resident, {} of it in the platform's region; {} VMAs)",
                self.k.mf.allocated(),
                self.k.mf.in_use(),
                self.k.mf.resident(),
                self.k.mf.resident_in(0, crate::platform::PLATFORM_REGION),
                self.k.task_mm(self.tid).borrow().vmas().count()
            )
        })?;
        Ok(())
    }

    /// What the event loop does when a syscall ends, minus resuming the
    /// task: it stays the driver's.
    fn finish(&mut self, _r: &Result<u64, Errno>) {
        let tid = self.tid;
        self.k.futexes.forget(tid);
        self.k.timers.cancel(&TimerAction::Wake(tid));
        if let Some(t) = self.k.tasks.get_mut(&tid) {
            t.sys = Default::default();
            t.blocked_on = None;
            t.sigwait = crate::kernel::signal::SigSet::EMPTY;
            t.state = TaskState::InKernel;
            if let Some(m) = t.saved_mask.take() {
                t.sigmask = m;
            }
        }
        // Nobody re-runs sleepers here.
        waitq::take_woken();
    }

    /// Whether the driver's task can take another syscall.
    fn usable(&self) -> bool {
        self.k.tasks.get(&self.tid).is_some_and(|t| {
            !t.exiting
                && self
                    .k
                    .groups
                    .get(&t.tgid)
                    .is_some_and(|g| g.group_exit.is_none() && !g.stopped && g.threads.len() == 1)
        }) && self.k.groups.values().filter(|g| !g.is_zombie()).count() == 1
    }

    /// Serves the syscalls `data` encodes.
    pub fn run_input(&mut self, data: &[u8]) -> Result<(), String> {
        self.inputs += 1;
        if self.scratch == 0 || !self.usable() || self.inputs.is_multiple_of(RESPAWN_EVERY) {
            self.respawn()?;
        }
        // The input itself is the scratch memory's first bytes.
        let n = data.len().min(SCRATCH_LEN as usize / 2);
        let mm = self.k.task_mm(self.tid);
        let _ = mm.borrow().write_bytes(self.scratch, &data[..n]);
        drop(mm);
        let mut r = Reader { data, pos: 0 };
        for _ in 0..MAX_CALLS {
            if r.done() || !self.usable() {
                break;
            }
            let nr = self.pick_nr(&mut r);
            let mut args = [0u64; 6];
            for (i, a) in args.iter_mut().enumerate() {
                *a = self.arg(&mut r, i);
            }
            let res = syscalls::dispatch(&mut self.k, self.tid, nr, args);
            if let Ok(v) = res
                && v < 4096
                && self.fds.len() < 64
            {
                self.fds.push(v);
            }
            if res == Err(Errno::EJUSTRETURN) || res == Err(Errno::ENORESUME) {
                // execve, sigreturn, exit: the task is not what it was;
                // the next input starts a fresh one.
                self.finish(&res);
                self.scratch = 0;
                break;
            }
            self.finish(&res);
        }
        Ok(())
    }

    fn pick_nr(&self, r: &mut Reader) -> u64 {
        let b = r.u16();
        if b & 0x8000 != 0 {
            // Any number at all, served or not (and out of the table).
            return (b & 0x7fff) as u64 % 1024;
        }
        self.served[b as usize % self.served.len()]
    }

    fn arg(&mut self, r: &mut Reader, slot: usize) -> u64 {
        const SIZES: [u64; 16] = [
            0,
            1,
            8,
            16,
            64,
            4096,
            65536,
            1 << 20,
            1 << 31,
            1 << 32,
            i32::MAX as u64,
            u32::MAX as u64,
            i64::MAX as u64,
            u64::MAX,
            u64::MAX - 4095,
            0x7fff_f000,
        ];
        const PATHS: [&[u8]; 16] = [
            b"/tmp/f",
            b"/tmp",
            b"/tmp/d/e",
            b"/proc/self/maps",
            b"/proc/self/fd/3",
            b"/proc/1/status",
            b"/dev/null",
            b"/dev/zero",
            b"/ro/init",
            b"",
            b".",
            b"..",
            b"/tmp/s",
            b"/sys/devices/system/cpu/online",
            b"/tmp/f/../f",
            b"/proc/self/exe",
        ];
        match r.u8() % 8 {
            0 => r.u64(),
            1 => r.u8() as i8 as i64 as u64,
            2 => self.scratch + r.u16() as u64 % SCRATCH_LEN,
            3 => match r.u8() as usize {
                i if i < self.fds.len() => self.fds[i],
                i => (i % 8) as u64,
            },
            4 => {
                // Each argument slot has its own string area.
                let p = PATHS[r.u8() as usize % PATHS.len()];
                let at = self.scratch + SCRATCH_LEN - 4096 * (slot as u64 + 1);
                let mut s = p.to_vec();
                s.push(0);
                let _ = self.k.task_mm(self.tid).borrow().write_bytes(at, &s);
                at
            }
            5 => SIZES[r.u8() as usize % SIZES.len()],
            6 => r.u32() as u64,
            _ => 0,
        }
    }
}

/// The input, read front to back; zeros past its end.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for x in b.iter_mut() {
            *x = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
        b
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}
