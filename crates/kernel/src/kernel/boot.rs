//! Starting a sandbox: the kernel's own setup, the mounts of the spec,
//! the workload's first process.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

use atoll_gofer::FileService;

use super::signal::{SigHandlers, SigQueue, SigSet};
use super::task::{FsContext, Task, TaskState, ThreadGroup, default_rlimits};
use super::waitq::WaitQueue;
use super::{Kernel, Stats};
use crate::errno::Errno;
use crate::mm::{AddressSpace, MemoryFile};
use crate::platform::{AnyPlatform, PLATFORM_REGION, Platform, PlatformKind};
use crate::vfs::dentry::Walk;
use crate::vfs::hostfd::HostStream;
use crate::vfs::hostfs::HostFs;
use crate::vfs::perm::Cred;
use crate::vfs::pipe::FifoTable;
use crate::vfs::tmpfs::TmpInode;
use crate::vfs::{Dentry, FdTable, File, FileOps, Inode, MountTable};

/// A mount of the spec, as the kernel needs it.
#[derive(Clone, Debug)]
pub struct MountSpec {
    pub dest: Vec<u8>,
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

impl MountSpec {
    /// A bind mount of a host path (libcontainer made it; the gofer sees it).
    pub fn is_bind(&self) -> bool {
        self.fstype == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    /// The destination as an absolute path.
    pub fn abs_dest(&self) -> Vec<u8> {
        if self.dest.starts_with(b"/") {
            self.dest.clone()
        } else {
            [b"/".as_slice(), &self.dest].concat()
        }
    }
}

/// Everything the kernel needs to know about the workload.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub cred: Cred,
    /// (resource, soft, hard)
    pub rlimits: Vec<(u32, u64, u64)>,
    pub hostname: Vec<u8>,
    pub mounts: Vec<MountSpec>,
    pub readonly_root: bool,
    pub strace: bool,
    pub mem_limit: Option<u64>,
    /// The spec's pids limit: enforced by the kernel for a pod container
    /// (tasks, as the pids controller counts them); the sandbox's own is
    /// its host cgroup's.
    pub pids_limit: Option<u64>,
    pub cpus: usize,
    pub gofer_pid: Option<i32>,
    pub umask: u32,
    /// The spec's seccomp profile, enforced on the workload's syscalls.
    pub seccomp: Option<crate::seccomp::Profile>,
    /// How workload syscalls reach the kernel.
    pub platform: PlatformKind,
    /// Rewrite syscall sites into jumps (platforms that have such a path).
    pub syscall_patching: bool,
    /// Walk and open the rootfs and bind mounts directly on descriptors
    /// the gofer donated (directfs), rather than through the gofer.
    pub directfs: bool,
    /// Bind mounts (destinations) whose host directory nothing else
    /// changes: cached walks are trusted instead of revalidated.
    pub exclusive_mounts: Vec<Vec<u8>>,
    /// Who serves the workload's AF_INET and AF_INET6 sockets.
    pub network: NetworkMode,
    /// Where writes to the rootfs go.
    pub overlay: RootOverlay,
    /// With `network` sandbox: the container's interfaces the init took
    /// over (their packet sockets and configuration); none: loopback only.
    pub links: Vec<super::packet_link::HostLink>,
    /// With `network` sandbox: where the workload may connect and send.
    pub egress: atoll_netstack::Egress,
}

/// Where writes to the container's rootfs go (gVisor's `--overlay2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootOverlay {
    /// To the bundle's rootfs, as with runc.
    #[default]
    None,
    /// To an upper layer in the kernel's memory (vfs/overlay): the rootfs
    /// is read-only from the host's side.
    Memory,
}

impl RootOverlay {
    /// `none` or `root:memory`; an error says what is accepted.
    pub fn parse(s: &str) -> Result<RootOverlay, String> {
        match s {
            "none" => Ok(RootOverlay::None),
            "root:memory" => Ok(RootOverlay::Memory),
            "root:self" => Err(
                "overlay \"root:self\" (a file-backed upper layer) is not built yet (expected none or root:memory)"
                    .into(),
            ),
            _ => Err(format!(
                "unknown overlay {s:?} (expected none or root:memory)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RootOverlay::None => "none",
            RootOverlay::Memory => "root:memory",
        }
    }
}

/// Who serves the workload's AF_INET and AF_INET6 sockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Host sockets the kernel owns in the container's network namespace.
    #[default]
    Host,
    /// The kernel's own TCP/IP stack (atoll-netstack): loopback plus the
    /// container's interfaces, taken over at start (their frames move
    /// through AF_PACKET sockets); no host socket is opened for them.
    Sandbox,
}

impl NetworkMode {
    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s {
            "host" => Some(NetworkMode::Host),
            "sandbox" => Some(NetworkMode::Sandbox),
            _ => None,
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            args: vec![b"/bin/sh".to_vec()],
            env: vec![
                b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec(),
            ],
            cwd: b"/".to_vec(),
            cred: Cred::root(),
            rlimits: Vec::new(),
            hostname: b"atoll".to_vec(),
            mounts: Vec::new(),
            readonly_root: false,
            strace: false,
            mem_limit: None,
            pids_limit: None,
            cpus: 1,
            gofer_pid: None,
            umask: 0o022,
            seccomp: None,
            platform: PlatformKind::default(),
            syscall_patching: true,
            directfs: true,
            network: NetworkMode::Host,
            exclusive_mounts: Vec::new(),
            overlay: RootOverlay::None,
            links: Vec::new(),
            egress: Default::default(),
        }
    }
}

/// The sandbox's own log (kernel messages, strace, refused syscalls).
pub struct SandboxLog {
    pub file: Option<std::fs::File>,
}

impl SandboxLog {
    pub fn line(&mut self, msg: &str) {
        if let Some(f) = &mut self.file {
            let mut s = String::with_capacity(msg.len() + 1);
            s.push_str(msg);
            s.push('\n');
            let _ = f.write_all(s.as_bytes());
        }
    }
}

/// Host signals the kernel receives and forwards to the workload's init.
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGURG,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

fn setup_host_signals() -> std::io::Result<i32> {
    // SAFETY: signal mask and disposition changes of this process.
    unsafe {
        // A closed stdout must give the workload EPIPE, not kill the kernel.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Copies out of mapped host files survive a fault (`mm::safecopy`);
        // the confined kernel may not change dispositions later.
        crate::mm::safecopy::install()?;
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        for s in FORWARDED {
            libc::sigaddset(&mut mask, *s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// A process to start in the sandbox.
#[derive(Clone)]
pub struct ProcessSpec {
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub cred: Cred,
    pub rlimits: [libc::rlimit; 16],
    /// The pod container it starts in (0: the sandbox's own).
    pub container: u32,
    /// Its root: the container's rootfs (None: the sandbox's).
    pub root: Option<Rc<Dentry>>,
    pub umask: u32,
    /// The session it joins (exec'd processes: their init's); None for a
    /// session of its own (an init).
    pub session: Option<super::Pid>,
    /// Its pid namespace (pidns.rs): 0, or its container's own.
    pub pidns: u32,
}

/// Boot failure, with the exit code the container reports.
pub struct BootError {
    pub message: String,
    pub code: i32,
}

/// Gives a bind mount (its spec and guest path) its file system, or none.
pub type BindSource<'a> = dyn FnMut(&mut Kernel, &MountSpec, &[u8]) -> Option<Rc<dyn Inode>> + 'a;

impl Kernel {
    /// Sets up the kernel over `files` (the gofer) with the container's
    /// stdio, and starts the workload's init. `log` receives the sandbox log.
    /// `confine` runs once the platform exists (its zygote stub forked) and
    /// before the kernel reads anything the workload controls (the rootfs,
    /// its binaries): from there on the kernel runs confined.
    pub fn boot(
        config: SandboxConfig,
        files: Rc<dyn FileService>,
        stdio: [OwnedFd; 3],
        log: Option<std::fs::File>,
        confine: &mut dyn FnMut() -> Result<(), String>,
    ) -> Result<Kernel, BootError> {
        let fail = |m: String| BootError {
            message: m,
            code: 125,
        };
        // The container's init may have been made non-dumpable by its
        // credential changes; the kernel must be able to trace its stubs.
        // SAFETY: prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        let signal_fd = setup_host_signals().map_err(|e| fail(format!("signals: {e}")))?;
        let mf =
            MemoryFile::create(PLATFORM_REGION).map_err(|e| fail(format!("memory file: {e}")))?;
        mf.defer_release();
        let platform = AnyPlatform::new(config.platform, mf.fd())
            .map_err(|e| fail(format!("platform {}: {e}", config.platform.name())))?;
        let poller = super::poller::Poller::new().map_err(|e| fail(format!("epoll: {e}")))?;
        for (i, fd) in platform.wakeup_fds().into_iter().enumerate() {
            poller
                .add_source(fd, super::poller::platform_token(i))
                .map_err(|e| fail(format!("epoll: {e}")))?;
        }
        poller
            .add_source(signal_fd, super::poller::TOKEN_SIGNALS)
            .map_err(|e| fail(format!("epoll: {e}")))?;
        confine().map_err(fail)?;

        // Direct access: a file system per mount root the gofer donated;
        // the rootfs is the sandbox's own (its cached walks are trusted),
        // bind mounts may change from outside (revalidated).
        let mut direct = HashMap::new();
        if config.directfs {
            for i in 0.. {
                let Ok((dest, fd)) = files.mount_root(i) else {
                    break;
                };
                if let Ok(d) = atoll_gofer::direct::DirectFiles::new(fd) {
                    let exclusive = dest == b"/" || config.exclusive_mounts.contains(&dest);
                    direct.insert(dest, HostFs::with(Rc::new(d), !exclusive));
                }
            }
        }
        let hostfs = direct
            .remove(b"/".as_slice())
            .unwrap_or_else(|| HostFs::new(files.clone()));
        let root = hostfs.root().map_err(|e| fail(format!("rootfs: {e}")))?;
        let mounts = MountTable::new(root, "atoll-gofer", "rootfs", config.readonly_root);

        let streams: Vec<Rc<HostStream>> = stdio
            .into_iter()
            .map(|fd| Rc::new(HostStream::new(fd)))
            .collect();
        let console: Option<Rc<dyn FileOps>> = streams
            .iter()
            .find(|s| s.tty)
            .map(|s| s.clone() as Rc<dyn FileOps>);

        let mut k = Kernel {
            platform,
            mf,
            tasks: BTreeMap::new(),
            host_tids: HashMap::default(),
            groups: BTreeMap::new(),
            next_pids: HashMap::new(),
            mounts: RefCell::new(mounts),
            fifos: FifoTable::default(),
            console,
            poller,
            timers: Default::default(),
            futexes: Default::default(),
            tty_pgrp: Cell::new(1),
            hostname: config.hostname.clone(),
            domainname: b"(none)".to_vec(),
            syslog: super::identity::Syslog::new(),
            config: config.clone(),
            stats: Stats::default(),
            init_status: None,
            boot_time: Instant::now(),
            served_at: None,
            signal_fd,
            log: SandboxLog { file: log },
            current: Cell::new(1),
            control_fd: None,
            exec_conns: HashMap::new(),
            pod: Default::default(),
            gofer: files,
            netstack: (config.network == NetworkMode::Sandbox).then(|| {
                Rc::new(super::netstack::NetStack::new(
                    config.links.clone(),
                    config.egress.clone(),
                ))
            }),
        };
        if config.overlay == RootOverlay::Memory && !config.readonly_root {
            // The rootfs becomes the overlay's lower layer; the mounts of
            // the spec go on top of the overlay.
            let lower = k.mounts.borrow().root_mount().root.clone();
            let top = crate::vfs::overlay::new_overlay(&k, lower, 0)
                .map_err(|e| fail(format!("rootfs overlay: {e}")))?;
            *k.mounts.borrow_mut() = MountTable::new(top, "overlay", "rootfs", false);
        }
        if let Some(n) = &k.netstack {
            // Frames arriving on a link wake the event loop, which pumps
            // the stack (level-triggered: a pump that stopped at its
            // budget is called again).
            for &fd in n.link_fds() {
                k.poller
                    .add_source(fd, super::poller::TOKEN_NET)
                    .map_err(|e| fail(format!("epoll: link: {e}")))?;
            }
        }
        k.mount_spec(&config, direct).map_err(fail)?;
        super::identity::boot_log(
            &mut k.syslog,
            &String::from_utf8_lossy(&config.hostname),
            config.cpus,
            config.mem_limit,
        );
        k.start_init(&config, streams)?;
        Ok(k)
    }

    /// Mounts the spec's filesystems over the rootfs. Bind mounts need
    /// nothing here: libcontainer made them in the container's mount
    /// namespace, where the gofer already sees them.
    /// `direct`: the bind mounts the gofer donated for direct access.
    fn mount_spec(
        &mut self,
        config: &SandboxConfig,
        mut direct: HashMap<Vec<u8>, Rc<HostFs>>,
    ) -> Result<(), String> {
        let root = self.mounts.borrow().root_dentry();
        let exclusive = config.exclusive_mounts.clone();
        let mut bind = |k: &mut Kernel, _m: &MountSpec, dest: &[u8]| -> Option<Rc<dyn Inode>> {
            if let Some(fs) = direct.remove(dest) {
                return fs.root().ok();
            }
            // libcontainer made the bind in the container's mount
            // namespace, where the gofer sees it; the kernel gives it a
            // mount and a file system of its own, so its read-only flag (and
            // EXDEV across it) apply there and not the rootfs's, and its
            // cached walks are checked (unless the mount is exclusive). The
            // path is resolved in the kernel's view first (symlinks of the
            // rootfs).
            let root = k.mounts.borrow().root_dentry();
            let path = (Walk {
                k,
                cred: &Cred::root(),
                root: &root,
            })
            .resolve(&root, dest, true)
            .map(|d| d.path(k))
            .unwrap_or_else(|_| dest.to_vec());
            bind_through_gofer(&k.gofer, &path, !exclusive.iter().any(|e| e == dest))
                .and_then(|fs| fs.root().ok())
        };
        self.mount_all(&root, &config.mounts, &mut bind);
        Ok(())
    }

    /// Mounts `mounts` below `root` (the sandbox's rootfs, or a pod
    /// container's), with `bind` giving each bind mount's file system;
    /// /dev and /proc are always the kernel's own.
    pub fn mount_all(
        &mut self,
        root: &Rc<Dentry>,
        mounts: &[MountSpec],
        bind: &mut BindSource<'_>,
    ) {
        let root_cred = Cred::root();
        let mut have_dev = false;
        let mut have_proc = false;
        for m in mounts {
            let dest = m.abs_dest();
            let ro = m.options.iter().any(|o| o == "ro");
            let noexec = m.options.iter().any(|o| o == "noexec");
            let nosuid = m.options.iter().any(|o| o == "nosuid");
            let fs: Option<(Rc<dyn Inode>, &str)> = match m.fstype.as_str() {
                "proc" => {
                    have_proc = true;
                    Some((crate::vfs::procfs::new_procfs(), "proc"))
                }
                "sysfs" => Some((crate::vfs::sysfs::new_sysfs(self), "sysfs")),
                "tmpfs" if dest == b"/dev" => {
                    have_dev = true;
                    Some((crate::vfs::devfs::new_devfs() as Rc<dyn Inode>, "tmpfs"))
                }
                "tmpfs" => {
                    let mode = m
                        .options
                        .iter()
                        .find_map(|o| o.strip_prefix("mode="))
                        .and_then(|v| u32::from_str_radix(v, 8).ok())
                        .unwrap_or(0o1777);
                    Some((TmpInode::new_root(mode, 0, 0) as Rc<dyn Inode>, "tmpfs"))
                }
                "devpts" => Some((crate::vfs::devpts::new_devpts(), "devpts")),
                _ if m.is_bind() => bind(self, m, &dest).map(|i| (i, "bind")),
                "mqueue" | "cgroup" | "cgroup2" => Some((
                    TmpInode::new_root(0o755, 0, 0) as Rc<dyn Inode>,
                    m.fstype.as_str(),
                )),
                _ => None,
            };
            let Some((inode, fstype)) = fs else {
                continue;
            };
            let at = Walk {
                k: self,
                cred: &root_cred,
                root,
            }
            .resolve(root, &dest, true);
            let at = match at {
                Ok(d) => d,
                Err(e) => {
                    self.log.line(&format!(
                        "mount {} on {}: {e}, skipped",
                        m.fstype,
                        String::from_utf8_lossy(&dest)
                    ));
                    continue;
                }
            };
            let opts = m
                .options
                .iter()
                .filter(|o| *o != "ro" && *o != "rw")
                .cloned()
                .collect::<Vec<_>>()
                .join(",");
            self.mounts
                .borrow_mut()
                .mount(at, inode, fstype, &m.source, ro, &opts, noexec, nosuid);
        }
        // The workload never sees the host's /dev or /proc, whatever the spec says.
        for (path, need) in [(&b"/dev"[..], !have_dev), (&b"/proc"[..], !have_proc)] {
            if !need {
                continue;
            }
            if let Ok(at) = (Walk {
                k: self,
                cred: &root_cred,
                root,
            })
            .resolve(root, path, true)
            {
                let inode: Rc<dyn Inode> = if path == b"/dev" {
                    crate::vfs::devfs::new_devfs()
                } else {
                    crate::vfs::procfs::new_procfs()
                };
                let t = if path == b"/dev" { "tmpfs" } else { "proc" };
                self.mounts
                    .borrow_mut()
                    .mount(at, inode, t, t, false, "", false, false);
            }
        }
    }

    fn start_init(
        &mut self,
        config: &SandboxConfig,
        stdio: Vec<Rc<HostStream>>,
    ) -> Result<(), BootError> {
        let mut rl = default_rlimits();
        for &(res, cur, max) in &config.rlimits {
            if (res as usize) < rl.len() {
                rl[res as usize] = libc::rlimit {
                    rlim_cur: cur,
                    rlim_max: max,
                };
            }
        }
        let spec = ProcessSpec {
            args: config.args.clone(),
            env: config.env.clone(),
            cwd: config.cwd.clone(),
            cred: config.cred.clone(),
            rlimits: rl,
            container: 0,
            root: None,
            umask: config.umask,
            session: None,
            pidns: 0,
        };
        let stdio: Vec<Rc<dyn FileOps>> = stdio.into_iter().map(|s| s as Rc<dyn FileOps>).collect();
        self.spawn(&spec, stdio)
            .map_err(|(message, code)| BootError { message, code })?;
        Ok(())
    }

    /// Starts a new process with no parent inside the sandbox (the init,
    /// and processes started by `atoll exec`). Returns its pid, or a
    /// message and the exit code a shell would give.
    pub fn spawn(
        &mut self,
        p: &ProcessSpec,
        stdio: Vec<Rc<dyn FileOps>>,
    ) -> Result<super::Pid, (String, i32)> {
        let fail = |m: String| (m, 125);
        let mm = AddressSpace::new(&mut self.platform, self.mf.clone())
            .map_err(|e| fail(format!("stub: {e}")))?;
        let host = match self.platform.new_thread(mm.space) {
            Ok(h) => h,
            Err(e) => {
                mm.release(&mut self.platform);
                return Err(fail(format!("stub thread: {e}")));
            }
        };
        let regs = self
            .platform
            .get_regs(host)
            .map_err(|e| fail(format!("stub regs: {e}")))?;
        let root = p
            .root
            .clone()
            .unwrap_or_else(|| self.mounts.borrow().root_dentry());
        let mut files = FdTable::new();
        for (i, s) in stdio.into_iter().enumerate() {
            files.put(i as i32, File::new(s, libc::O_RDWR, None), false);
        }
        let cwd = match (Walk {
            k: self,
            cred: &p.cred,
            root: &root,
        })
        .resolve(&root, &p.cwd, true)
        {
            Ok(d) if d.kind() == crate::vfs::FileType::Directory => d,
            Ok(_) => {
                self.platform.drop_space(mm.space);
                return Err((
                    format!("cwd {}: not a directory", String::from_utf8_lossy(&p.cwd)),
                    128,
                ));
            }
            Err(e) => {
                self.platform.drop_space(mm.space);
                return Err((format!("cwd {}: {e}", String::from_utf8_lossy(&p.cwd)), 128));
            }
        };
        let tid = match self.alloc_pid_in(p.pidns) {
            Ok(t) => t,
            Err(_) => {
                self.platform.drop_space(mm.space);
                return Err(fail("no free pid".into()));
            }
        };
        let task = Task {
            tid,
            tgid: tid,
            host,
            regs,
            callee_partial: false,
            mm: Rc::new(RefCell::new(mm)),
            files: Rc::new(RefCell::new(files)),
            fs: Rc::new(RefCell::new(FsContext {
                root: root.clone(),
                cwd,
                umask: p.umask,
            })),
            sighand: Rc::new(RefCell::new(SigHandlers::default())),
            sigmask: SigSet::EMPTY,
            saved_mask: None,
            pending: SigQueue::default(),
            sigwait: SigSet::EMPTY,
            altstack: Default::default(),
            state: TaskState::InKernel,
            clear_child_tid: 0,
            robust_list: 0,
            blocked_on: None,
            sys: Default::default(),
            restart: None,
            vfork_parent: None,
            comm: b"init".to_vec(),
            exiting: false,
            cpu_time: Default::default(),
            started: Instant::now(),
            ptrace: None,
            pdeath_signal: 0,
        };
        self.host_tids.insert(host, tid);
        self.tasks.insert(tid, task);
        let (pgid, sid) = (tid, p.session.unwrap_or(tid));
        self.groups.insert(
            tid,
            ThreadGroup {
                tgid: tid,
                parent: 0,
                parent_thread: 0,
                pgid,
                sid,
                threads: vec![tid],
                children: Vec::new(),
                cred: p.cred.clone(),
                rlimits: p.rlimits,
                shared_pending: SigQueue::default(),
                exit_signal: libc::SIGCHLD,
                group_exit: None,
                zombie: None,
                stopped: false,
                stop_report: None,
                stop_sig: 0,
                continued_report: false,
                traced_exits: Vec::new(),
                ptrace_held: false,
                leader_tracer: None,
                child_waitq: Rc::new(WaitQueue::new()),
                exe: Vec::new(),
                cmdline: Vec::new(),
                environ: Vec::new(),
                start: Instant::now(),
                children_cpu: Default::default(),
                personality: 0,
                subreaper: false,
                dumpable: true,
                ptracer: None,
                itimer_real_interval: Default::default(),
                cpu_itimers: Default::default(),
                posix_timers: Default::default(),
                container: p.container,
            },
        );
        let program = self.find_program(tid, &p.args[0], &p.env);
        let at = crate::vfs::lookup::AT_FDCWD;
        let r = self.open_execve(tid, at, &program, 0).and_then(|opened| {
            let name = super::exec::ExecName::path(program);
            self.do_execve(tid, name, opened, p.args.clone(), p.env.clone())
        });
        match r {
            Err(Errno::EJUSTRETURN) => {}
            Err(e) => {
                // Undo: the process never ran.
                self.exit_task(tid);
                self.groups.remove(&tid);
                let code = if e == Errno::ENOENT { 127 } else { 126 };
                return Err((
                    format!(
                        "exec {}: {}",
                        String::from_utf8_lossy(&p.args[0]),
                        std::io::Error::from_raw_os_error(e.0)
                    ),
                    code,
                ));
            }
            Ok(_) => unreachable!("execve returns EJUSTRETURN on success"),
        }
        self.resume(tid);
        Ok(tid)
    }

    /// execvp-style search of `name` in the spec's PATH.
    fn find_program(&self, tid: super::Tid, name: &[u8], env: &[Vec<u8>]) -> Vec<u8> {
        if name.contains(&b'/') {
            return name.to_vec();
        }
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
        for dir in path.split(|b| *b == b':') {
            let cand = [dir, b"/", name].concat();
            if let Ok(d) = self.lookup(tid, &cand, true)
                && d.kind() == crate::vfs::FileType::Regular
            {
                return cand;
            }
        }
        name.to_vec()
    }
}

/// A file system over the gofer rooted at absolute `path` (a bind mount's
/// destination), walked name by name; None if a component is missing.
fn bind_through_gofer(
    svc: &Rc<dyn atoll_gofer::FileService>,
    path: &[u8],
    revalidate: bool,
) -> Option<Rc<HostFs>> {
    let mut fid = svc.root();
    for name in path.split(|b| *b == b'/').filter(|n| !n.is_empty()) {
        let next = svc.walk(fid, name).ok().map(|(f, _)| f);
        if fid != svc.root() {
            svc.release(fid);
        }
        fid = next?;
    }
    Some(HostFs::at(svc.clone(), fid, revalidate))
}

/// Duplicates the kernel's stdio for the workload.
pub fn dup_stdio() -> std::io::Result<[OwnedFd; 3]> {
    let d = |fd: i32| -> std::io::Result<OwnedFd> {
        // SAFETY: dup of a standard descriptor.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    let fds = [d(0)?, d(1)?, d(2)?];
    let _ = fds[0].as_raw_fd();
    Ok(fds)
}
