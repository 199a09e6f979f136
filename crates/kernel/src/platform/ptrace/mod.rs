//! The ptrace platform: each address space is a stub process, each
//! workload thread a stub thread traced with `PTRACE_SYSEMU`, so a
//! workload syscall stops before it reaches the host kernel and is never
//! executed there. The kernel is the only tracer and is single-threaded,
//! so every ptrace request comes from the thread that attached.
//!
//! Each stub process keeps one extra thread, the control thread, stopped
//! at the stub's `int3`: mapping changes are injected through it while the
//! workload threads keep running.
//!
//! Stub processes are not forked from the kernel: the kernel forks one
//! stub, the zygote, while it is still unconfined, and every address space
//! after that is a clone of the zygote made by an injected `clone`. So no
//! stub ever inherits the kernel's own seccomp filter (which forbids
//! executable mappings), the kernel itself needs no fork after it confined
//! itself, and every stub carries the zygote's filter (see [`filter`]) and
//! none of its capabilities.

pub mod filter;
pub mod stub;

use std::collections::HashMap;
use std::io::{Error, Result};
use std::os::fd::RawFd;

use super::ceiling::TaskCeiling;
use super::{FpuState, MapOp, Platform, SpaceId, Stop, ThreadId};
use crate::arch::{PAGE_SIZE, Regs, STUB_BASE, STUB_DATA_SIZE, STUB_END};
use stub::{BATCH_CAPACITY, BatchEntry, ChildArgs, StubLayout};

const PTRACE_SYSEMU: libc::c_uint = 31;
const PTRACE_EVENT_STOP: i32 = 128;
const NT_X86_XSTATE: libc::c_int = 0x202;

/// Memory-file bytes this platform uses at offset 0: the stub code page,
/// then one data slot per stub process.
const PTRACE_REGION: u64 = 64 << 20;
const _: () = assert!(PTRACE_REGION <= super::PLATFORM_REGION);
const SLOT_SIZE: u64 = STUB_DATA_SIZE;

struct Space {
    pid: i32,
    /// The control thread (the stub process's main thread).
    ctl: i32,
    slot: u64,
    threads: Vec<i32>,
    ctl_regs: Regs,
}

pub struct PtracePlatform {
    layout: StubLayout,
    /// The kernel's view of the platform region (stub data pages).
    region: *mut u8,
    free_slots: Vec<u64>,
    next_slot: u64,
    spaces: HashMap<SpaceId, Space>,
    next_space: SpaceId,
    /// Host tid → space, for every workload thread.
    threads: HashMap<i32, SpaceId>,
    sigchld_fd: RawFd,
    xsave_size: usize,
    /// `xsave::full_size` and `xsave::user_features`, read once: CPUID
    /// traps to the hypervisor in a VM.
    full_xsave_size: usize,
    features: u64,
    foreign_exits: Vec<(i32, i32)>,
    /// The stub every address space is cloned from.
    zygote: Space,
    /// The container's pids limit as last seen (see [`TaskCeiling`]).
    task_ceiling: TaskCeiling,
    /// Stops collected from the host but not yet handed to the kernel.
    pending: std::collections::VecDeque<(ThreadId, Stop)>,
    /// Where every stub has the host's vDSO, if the zygote could move it.
    vdso: Option<u64>,
}

/// Makes `tracee` (stopped at its trap, registers `base`) execute one
/// clone with `flags` at the stub's syscall instruction `rip`, and returns
/// the new task once `tracee` is back at its trap. A clone the host refused
/// is that errno (EAGAIN at the container's pids limit), for the workload's
/// fork or pthread_create to get.
fn injected_clone(
    tracee: i32,
    base: &Regs,
    rip: u64,
    flags: u64,
    event: i32,
    what: &str,
) -> Result<i32> {
    let mut regs = *base;
    regs.rax = libc::SYS_clone as u64;
    regs.rdi = flags;
    regs.rsi = 0;
    regs.rdx = 0;
    regs.r10 = 0;
    regs.r8 = 0;
    regs.rip = rip;
    ptrace(
        libc::PTRACE_SETREGS,
        tracee,
        0,
        &regs as *const Regs as usize,
    )?;
    ptrace(libc::PTRACE_CONT, tracee, 0, 0)?;
    let status = wait_for(tracee)?;
    if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP && status >> 16 == 0 {
        // SAFETY: zeroed registers are valid; GETREGS fills them.
        let mut out: Regs = unsafe { std::mem::zeroed() };
        ptrace(
            libc::PTRACE_GETREGS,
            tracee,
            0,
            &mut out as *mut Regs as usize,
        )?;
        return Err(Error::from_raw_os_error((-(out.rax as i64)) as i32));
    }
    if !(libc::WIFSTOPPED(status) && (status >> 16) == event) {
        return Err(Error::other(format!("{what} clone: {}", describe(status))));
    }
    let mut new: libc::c_ulong = 0;
    ptrace(
        libc::PTRACE_GETEVENTMSG,
        tracee,
        0,
        &mut new as *mut _ as usize,
    )?;
    ptrace(libc::PTRACE_CONT, tracee, 0, 0)?;
    let status = wait_for(tracee)?;
    if !(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP) {
        return Err(Error::other(format!(
            "{what} after clone: {}",
            describe(status)
        )));
    }
    Ok(new as i32)
}

fn errno() -> Error {
    Error::last_os_error()
}

fn check(r: libc::c_long) -> Result<libc::c_long> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> Result<libc::c_long> {
    // SAFETY: ptrace with integer arguments; pointers passed by callers
    // point at live buffers of the size the request needs.
    check(unsafe { libc::ptrace(req, pid, addr, data) })
}

/// How long the kernel waits for one stub thread to stop or exit: a stub
/// that does not within this time is killed; the kernel never blocks on
/// one task for good.
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// waitpid for one specific thread, for at most [`WAIT_LIMIT`]
/// (ETIMEDOUT after that).
fn wait_for(tid: i32) -> Result<i32> {
    let mut status = 0;
    let start = std::time::Instant::now();
    let mut polls = 0u32;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == tid {
            return Ok(status);
        }
        if r < 0 && Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(errno());
        }
        if start.elapsed() > WAIT_LIMIT {
            return Err(Error::from_raw_os_error(libc::ETIMEDOUT));
        }
        // A stop comes within tens of microseconds: poll, then back off.
        polls += 1;
        if polls < 200 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        format!(
            "stopped by signal {} (event {})",
            libc::WSTOPSIG(status),
            status >> 16
        )
    } else {
        format!("status {status:#x}")
    }
}

/// Forks the zygote stub from the (still unconfined) kernel: it maps the
/// stub page and data slot `slot`, drops its capabilities, installs the
/// stub filter and traps, attached with `PTRACE_O_EXITKILL` so no stub
/// outlives the kernel.
fn fork_zygote(memfd: RawFd, slot: u64) -> Result<Space> {
    let prog = filter::stub_filter();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(errno());
    }
    let args = ChildArgs {
        memfd,
        code_offset: 0,
        data_offset: slot,
        sync_fd: fds[0],
        filter: &fprog,
        vdso: crate::platform::vdso::host_vdso(),
    };
    // SAFETY: the kernel is single-threaded; the child runs only
    // async-signal-safe code (child_setup) and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = errno();
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return Err(e);
    }
    if pid == 0 {
        unsafe { stub::child_setup(&args) }
    }
    unsafe { libc::close(fds[0]) };
    let opts = libc::PTRACE_O_EXITKILL
        | libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEFORK;
    let seized = ptrace(libc::PTRACE_SEIZE, pid, 0, opts as usize);
    // Release the child whether or not the seize worked (on failure it
    // dies with us anyway through PDEATHSIG and gets killed below).
    unsafe {
        libc::write(fds[1], b"x".as_ptr() as *const libc::c_void, 1);
        libc::close(fds[1]);
    }
    if let Err(e) = seized {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait_for(pid);
        return Err(e);
    }
    let status = wait_for(pid)?;
    if !(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait_for(pid);
        return Err(Error::other(format!(
            "stub {pid} failed to start: {}",
            describe(status)
        )));
    }
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    ptrace(
        libc::PTRACE_GETREGS,
        pid,
        0,
        &mut regs as *mut Regs as usize,
    )?;
    Ok(Space {
        pid,
        ctl: pid,
        slot,
        threads: Vec::new(),
        ctl_regs: regs,
    })
}

use super::xsave::{full_size, user_features, xsave_size};

impl PtracePlatform {
    /// Sets up the platform over the kernel's memory file. The caller has
    /// blocked SIGCHLD (the platform reads it from a signalfd).
    pub fn new(memfd: RawFd) -> Result<PtracePlatform> {
        let (code, layout) = stub::code();
        assert!(code.len() as u64 <= PAGE_SIZE, "stub code exceeds a page");
        // SAFETY: mapping our own memory file's platform region.
        let region = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PTRACE_REGION as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                memfd,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            return Err(errno());
        }
        let region = region as *mut u8;
        // SAFETY: the region is at least one page and writable.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), region, code.len()) };

        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain sigset manipulation on a local.
        let sigchld_fd = unsafe {
            libc::sigemptyset(&mut mask);
            libc::sigaddset(&mut mask, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
            libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        };
        if sigchld_fd < 0 {
            return Err(errno());
        }
        let zygote = fork_zygote(memfd, PAGE_SIZE)?;
        // SAFETY: the zygote's data slot in our region; the zygote runs no
        // workload code, so what it wrote there is its own.
        let moved = unsafe {
            (region.add((PAGE_SIZE + stub::VDSO_MOVED_AT) as usize) as *const u64).read_volatile()
        };
        let vdso = crate::platform::vdso::host_vdso()
            .filter(|_| moved == 1)
            .map(|v| v.in_stub());
        Ok(PtracePlatform {
            layout,
            region,
            free_slots: Vec::new(),
            next_slot: PAGE_SIZE + SLOT_SIZE,
            spaces: HashMap::new(),
            next_space: 1,
            threads: HashMap::new(),
            sigchld_fd,
            xsave_size: xsave_size(),
            full_xsave_size: full_size(),
            features: user_features(),
            foreign_exits: Vec::new(),
            zygote,
            task_ceiling: TaskCeiling::default(),
            pending: std::collections::VecDeque::new(),
            vdso,
        })
    }

    /// Host pid of the zygote stub (tests and /proc checks).
    pub fn zygote_pid(&self) -> i32 {
        self.zygote.pid
    }

    pub fn layout(&self) -> StubLayout {
        self.layout
    }

    /// A new workload thread in `space`: its control thread clones itself.
    fn clone_thread(&mut self, space: SpaceId) -> Result<ThreadId> {
        let sp = self
            .spaces
            .get(&space)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        let tid = injected_clone(
            sp.ctl,
            &sp.ctl_regs,
            self.layout.single,
            filter::THREAD_CLONE_FLAGS,
            libc::PTRACE_EVENT_CLONE,
            "stub",
        )?;
        let status = wait_for(tid)?;
        if !(libc::WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
            return Err(Error::other(format!(
                "new stub thread: {}",
                describe(status)
            )));
        }
        self.threads.insert(tid, space);
        self.spaces.get_mut(&space).unwrap().threads.push(tid);
        Ok(tid)
    }

    /// Host tasks the platform holds for the workload: each stub's control
    /// thread and every workload thread.
    fn host_tasks(&self) -> usize {
        self.spaces.len() + self.threads.len()
    }

    fn check_ceiling(&mut self, more: usize) -> Result<()> {
        let tasks = self.host_tasks();
        self.task_ceiling.check(tasks, more)
    }

    fn note_clone_error(&mut self, e: &Error) {
        let tasks = self.host_tasks();
        self.task_ceiling.note(tasks, e);
    }

    fn alloc_slot(&mut self) -> Result<u64> {
        if let Some(s) = self.free_slots.pop() {
            return Ok(s);
        }
        if self.next_slot + SLOT_SIZE > PTRACE_REGION {
            return Err(Error::from_raw_os_error(libc::EAGAIN));
        }
        let s = self.next_slot;
        self.next_slot += SLOT_SIZE;
        Ok(s)
    }

    fn batch_buffer(&self, slot: u64) -> *mut BatchEntry {
        // SAFETY: slots lie inside the mapped region.
        unsafe { self.region.add(slot as usize) as *mut BatchEntry }
    }

    /// Runs the control thread of `space` from `rip` with `regs` tweaks and
    /// waits for its trap.
    fn run_ctl(&mut self, space: SpaceId, set: impl FnOnce(&mut Regs)) -> Result<Regs> {
        let sp = self
            .spaces
            .get_mut(&space)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?;
        let mut regs = sp.ctl_regs;
        set(&mut regs);
        let (ctl, pid) = (sp.ctl, sp.pid);
        ptrace(libc::PTRACE_SETREGS, ctl, 0, &regs as *const Regs as usize)?;
        ptrace(libc::PTRACE_CONT, ctl, 0, 0)?;
        let status = wait_for(ctl).inspect_err(|_| {
            // SAFETY: the stub process is ours; its threads report as gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })?;
        if !(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP) {
            return Err(Error::other(format!(
                "stub control thread {ctl} {}",
                describe(status)
            )));
        }
        let mut out: Regs = unsafe { std::mem::zeroed() };
        ptrace(libc::PTRACE_GETREGS, ctl, 0, &mut out as *mut Regs as usize)?;
        Ok(out)
    }

    fn inject(&mut self, space: SpaceId, nr: u64, args: [u64; 6]) -> Result<i64> {
        let single = self.layout.single;
        let r = self.run_ctl(space, |r| {
            r.rax = nr;
            r.rdi = args[0];
            r.rsi = args[1];
            r.rdx = args[2];
            r.r10 = args[3];
            r.r8 = args[4];
            r.r9 = args[5];
            r.rip = single;
        })?;
        Ok(r.rax as i64)
    }

    fn op_entry(op: &MapOp, memfd_in_stub: u64) -> BatchEntry {
        let (nr, args) = match *op {
            MapOp::Map {
                addr,
                len,
                prot,
                offset,
            } => (
                libc::SYS_mmap as u64,
                [
                    addr,
                    len,
                    prot as u64,
                    filter::MAP_FLAGS,
                    memfd_in_stub,
                    offset,
                ],
            ),
            MapOp::Unmap { addr, len } => (libc::SYS_munmap as u64, [addr, len, 0, 0, 0, 0]),
            MapOp::Protect { addr, len, prot } => {
                (libc::SYS_mprotect as u64, [addr, len, prot as u64, 0, 0, 0])
            }
        };
        BatchEntry {
            nr,
            args,
            result: 0,
        }
    }

    /// A new stub process: the zygote clones itself (the clone becomes the
    /// kernel's child and is attached to it automatically), then the clone
    /// maps its own data slot over the zygote's.
    fn clone_zygote(&mut self, slot: u64) -> Result<SpaceId> {
        // SAFETY: zeroing the slot inside the mapped region.
        unsafe { std::ptr::write_bytes(self.region.add(slot as usize), 0, SLOT_SIZE as usize) };
        let pid = injected_clone(
            self.zygote.pid,
            &self.zygote.ctl_regs,
            self.layout.single,
            filter::SPACE_CLONE_FLAGS,
            libc::PTRACE_EVENT_FORK,
            "zygote",
        )?;
        let status = wait_for(pid)?;
        if !(libc::WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
            // SAFETY: the new stub is our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = wait_for(pid);
            return Err(Error::other(format!(
                "new stub {pid}: {}",
                describe(status)
            )));
        }
        let mut regs: Regs = unsafe { std::mem::zeroed() };
        ptrace(
            libc::PTRACE_GETREGS,
            pid,
            0,
            &mut regs as *mut Regs as usize,
        )?;
        let id = self.next_space;
        self.next_space += 1;
        self.spaces.insert(
            id,
            Space {
                pid,
                ctl: pid,
                slot,
                threads: Vec::new(),
                ctl_regs: regs,
            },
        );
        let data = self.inject(
            id,
            libc::SYS_mmap as u64,
            [
                crate::arch::STUB_DATA,
                STUB_DATA_SIZE,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                filter::MAP_FLAGS,
                filter::MEMFD_IN_STUB,
                slot,
            ],
        );
        if !matches!(data, Ok(r) if r == crate::arch::STUB_DATA as i64) {
            let sp = self.spaces.remove(&id).expect("just inserted");
            // SAFETY: the new stub is our child.
            unsafe { libc::kill(sp.pid, libc::SIGKILL) };
            let _ = wait_for(sp.pid);
            return Err(match data {
                Err(e) => e,
                Ok(r) => Error::from_raw_os_error((-r) as i32),
            });
        }
        Ok(id)
    }

    fn decode(&mut self, tid: i32, status: i32) -> Option<Stop> {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if let Some(space) = self.threads.remove(&tid) {
                if let Some(sp) = self.spaces.get_mut(&space) {
                    sp.threads.retain(|t| *t != tid);
                }
                return Some(Stop::Gone);
            }
            let is_stub = tid == self.zygote.pid
                || self.spaces.values().any(|s| s.pid == tid || s.ctl == tid);
            if !is_stub {
                self.foreign_exits.push((tid, status));
            }
            return None;
        }
        if !libc::WIFSTOPPED(status) || !self.threads.contains_key(&tid) {
            return None;
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        if sig == (libc::SIGTRAP | 0x80) {
            return Some(Stop::Syscall);
        }
        if event == PTRACE_EVENT_STOP || event != 0 {
            return Some(Stop::Interrupted);
        }
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        if ptrace(libc::PTRACE_GETSIGINFO, tid, 0, &mut si as *mut _ as usize).is_err() {
            return Some(Stop::Interrupted);
        }
        if si.si_code > 0 || sig == libc::SIGTRAP {
            // SAFETY: si_addr is valid for fault signals.
            let addr = unsafe { si.si_addr() } as u64;
            Some(Stop::Fault {
                signo: sig,
                code: si.si_code,
                addr,
            })
        } else {
            // A host signal sent to a stub thread from outside: swallowed.
            Some(Stop::Interrupted)
        }
    }
}

impl Platform for PtracePlatform {
    fn new_space(&mut self) -> Result<SpaceId> {
        // A space is useful with a thread: room for both.
        self.check_ceiling(2)?;
        let slot = self.alloc_slot()?;
        match self.clone_zygote(slot) {
            Ok(id) => Ok(id),
            Err(e) => {
                self.note_clone_error(&e);
                self.free_slots.push(slot);
                Err(e)
            }
        }
    }

    fn drop_space(&mut self, space: SpaceId) {
        let Some(sp) = self.spaces.remove(&space) else {
            return;
        };
        for t in &sp.threads {
            self.threads.remove(t);
        }
        self.pending
            .retain(|(t, _)| *t != sp.pid && !sp.threads.contains(t));
        // SAFETY: the stub process is ours.
        unsafe { libc::kill(sp.pid, libc::SIGKILL) };
        for t in sp.threads.iter().chain(std::iter::once(&sp.pid)) {
            let _ = wait_for(*t);
        }
        self.free_slots.push(sp.slot);
    }

    fn apply(&mut self, space: SpaceId, ops: &[MapOp]) -> Result<Vec<i64>> {
        const MEMFD_IN_STUB: u64 = filter::MEMFD_IN_STUB;
        if ops.len() == 1 {
            let e = Self::op_entry(&ops[0], MEMFD_IN_STUB);
            return Ok(vec![self.inject(space, e.nr, e.args)?]);
        }
        let slot = self
            .spaces
            .get(&space)
            .ok_or(Error::from_raw_os_error(libc::ESRCH))?
            .slot;
        let buf = self.batch_buffer(slot);
        let batch_entry = self.layout.batch;
        let mut results = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(BATCH_CAPACITY) {
            for (i, op) in chunk.iter().enumerate() {
                // SAFETY: i < BATCH_CAPACITY entries fit in the slot.
                unsafe { buf.add(i).write(Self::op_entry(op, MEMFD_IN_STUB)) };
            }
            let n = chunk.len() as u64;
            self.run_ctl(space, |r| {
                r.rbx = crate::arch::STUB_DATA;
                r.r12 = n;
                r.rip = batch_entry;
            })?;
            for i in 0..chunk.len() {
                // SAFETY: as above.
                results.push(unsafe { buf.add(i).read().result });
            }
        }
        Ok(results)
    }

    fn new_thread(&mut self, space: SpaceId) -> Result<ThreadId> {
        self.check_ceiling(1)?;
        let r = self.clone_thread(space);
        if let Err(e) = &r {
            self.note_clone_error(e);
        }
        r
    }

    fn drop_thread(&mut self, thread: ThreadId) {
        let Some(space) = self.threads.remove(&thread) else {
            return;
        };
        self.pending.retain(|(t, _)| *t != thread);
        if let Some(sp) = self.spaces.get_mut(&space) {
            sp.threads.retain(|t| *t != thread);
            let mut regs = sp.ctl_regs;
            regs.rip = self.layout.exit;
            if ptrace(
                libc::PTRACE_SETREGS,
                thread,
                0,
                &regs as *const Regs as usize,
            )
            .is_ok()
                && ptrace(libc::PTRACE_CONT, thread, 0, 0).is_ok()
            {
                let _ = wait_for(thread);
            }
        }
    }

    fn get_regs(&mut self, thread: ThreadId) -> Result<Regs> {
        let mut regs: Regs = unsafe { std::mem::zeroed() };
        ptrace(
            libc::PTRACE_GETREGS,
            thread,
            0,
            &mut regs as *mut Regs as usize,
        )?;
        Ok(regs)
    }

    fn set_regs(&mut self, thread: ThreadId, regs: &Regs) -> Result<()> {
        ptrace(
            libc::PTRACE_SETREGS,
            thread,
            0,
            regs as *const Regs as usize,
        )
        .map(|_| ())
    }

    /// The thread's XSAVE image of `xsave::user_features` (the regset's
    /// first bytes: its features beyond are the dynamic ones, unused).
    fn get_fpu(&mut self, thread: ThreadId) -> Result<FpuState> {
        let mut buf = vec![0u8; self.xsave_size];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        ptrace(
            libc::PTRACE_GETREGSET,
            thread,
            NT_X86_XSTATE as usize,
            &mut iov as *mut _ as usize,
        )?;
        buf.truncate(iov.iov_len);
        Ok(FpuState(buf))
    }

    /// Linux takes only a whole regset: the image padded to every
    /// enabled feature's, the dynamic ones in their initial state.
    fn set_fpu(&mut self, thread: ThreadId, fpu: &FpuState) -> Result<()> {
        let mut buf = fpu.0.clone();
        buf.truncate(self.xsave_size);
        buf.resize(self.full_xsave_size.max(buf.len()), 0);
        if buf.len() >= 520 {
            let bv = u64::from_ne_bytes(buf[512..520].try_into().unwrap()) & self.features;
            buf[512..520].copy_from_slice(&bv.to_ne_bytes());
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        ptrace(
            libc::PTRACE_SETREGSET,
            thread,
            NT_X86_XSTATE as usize,
            &mut iov as *mut _ as usize,
        )
        .map(|_| ())
    }

    fn resume(&mut self, thread: ThreadId) -> Result<()> {
        ptrace(PTRACE_SYSEMU, thread, 0, 0).map(|_| ())
    }

    fn interrupt(&mut self, thread: ThreadId) {
        let _ = ptrace(libc::PTRACE_INTERRUPT, thread, 0, 0);
    }

    fn stop_now(&mut self, thread: ThreadId) {
        if ptrace(libc::PTRACE_INTERRUPT, thread, 0, 0).is_ok() {
            // A stop already collected by poll_stop is the one waited for.
            if let Some(i) = self.pending.iter().position(|(t, _)| *t == thread) {
                self.pending.remove(i);
            } else {
                let _ = wait_for(thread);
            }
        }
    }

    fn poll_stop(&mut self) -> Option<(ThreadId, Stop)> {
        if let Some(s) = self.pending.pop_front() {
            return Some(s);
        }
        for round in 0..2 {
            // Collect every stop the host has, then serve them in order:
            // waitpid(-1) reports children in list order, so taking one at
            // a time would serve the same busy stub again and again (a fork
            // bomb's first child starved its parent).
            loop {
                let mut status = 0;
                // SAFETY: status is a valid out-pointer.
                let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
                if tid <= 0 {
                    break;
                }
                if let Some(stop) = self.decode(tid, status) {
                    self.pending.push_back((tid, stop));
                }
            }
            if let Some(s) = self.pending.pop_front() {
                return Some(s);
            }
            if round == 0 {
                // Drain SIGCHLD notifications, then look once more so a
                // stop that raced with the drain is not missed.
                let mut buf = [0u8; 128 * 8];
                while unsafe {
                    libc::read(
                        self.sigchld_fd,
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                    )
                } > 0
                {}
            }
        }
        None
    }

    fn wakeup_fds(&self) -> Vec<RawFd> {
        vec![self.sigchld_fd]
    }

    fn take_foreign_exits(&mut self) -> Vec<(i32, i32)> {
        std::mem::take(&mut self.foreign_exits)
    }

    fn vdso(&self) -> Option<u64> {
        self.vdso
    }
}

/// The address range a stub process owns, for checks elsewhere.
pub fn stub_range() -> std::ops::Range<u64> {
    STUB_BASE..STUB_END
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd() -> RawFd {
        let fd = unsafe { libc::memfd_create(c"atoll-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        assert_eq!(unsafe { libc::ftruncate(fd, 2 << 30) }, 0);
        fd
    }

    fn next_stop(p: &mut PtracePlatform) -> (ThreadId, Stop) {
        // A bound against hangs, not a timing check: a loaded machine
        // can take seconds.
        for _ in 0..60_000 {
            if let Some(s) = p.poll_stop() {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("no stop");
    }

    #[test]
    fn syscalls_stop_in_the_kernel_and_never_run_on_the_host() {
        let _one = crate::platform::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let fd = memfd();
        let mut p = PtracePlatform::new(fd).unwrap();
        let space = p.new_space().unwrap();
        // Code: getpid; mov %rax,%rdi; exit (both intercepted).
        let code: [u8; 17] = [
            0xb8, 39, 0, 0, 0, // mov $39,%eax
            0x0f, 0x05, // syscall
            0x48, 0x89, 0xc7, // mov %rax,%rdi
            0xb8, 60, 0, 0, 0, // mov $60,%eax
            0x0f, 0x05, // syscall
        ];
        let off = crate::platform::PLATFORM_REGION;
        let n = unsafe { libc::pwrite(fd, code.as_ptr() as *const _, code.len(), off as i64) };
        assert_eq!(n, code.len() as isize);
        let res = p
            .apply(
                space,
                &[MapOp::Map {
                    addr: 0x400000,
                    len: 4096,
                    prot: libc::PROT_READ | libc::PROT_EXEC,
                    offset: off,
                }],
            )
            .unwrap();
        assert_eq!(res, vec![0x400000]);
        let t = p.new_thread(space).unwrap();
        let mut regs = p.get_regs(t).unwrap();
        regs.rip = 0x400000;
        p.set_regs(t, &regs).unwrap();
        p.resume(t).unwrap();
        let (tid, stop) = next_stop(&mut p);
        assert_eq!((tid, stop), (t, Stop::Syscall));
        let mut regs = p.get_regs(t).unwrap();
        assert_eq!(regs.orig_rax, 39);
        regs.rax = 4242;
        p.set_regs(t, &regs).unwrap();
        p.resume(t).unwrap();
        let (_, stop) = next_stop(&mut p);
        assert_eq!(stop, Stop::Syscall);
        let regs = p.get_regs(t).unwrap();
        assert_eq!(regs.orig_rax, 60);
        assert_eq!(
            regs.rdi, 4242,
            "getpid's result came from the kernel, not the host"
        );
        // Batch: two maps and an unmap in one round trip.
        let res = p
            .apply(
                space,
                &[
                    MapOp::Map {
                        addr: 0x500000,
                        len: 4096,
                        prot: libc::PROT_READ,
                        offset: off,
                    },
                    MapOp::Map {
                        addr: 0x600000,
                        len: 4096,
                        prot: libc::PROT_READ,
                        offset: off,
                    },
                    MapOp::Unmap {
                        addr: 0x500000,
                        len: 4096,
                    },
                ],
            )
            .unwrap();
        assert_eq!(res, vec![0x500000, 0x600000, 0]);
        p.drop_thread(t);
        p.drop_space(space);
    }
}
