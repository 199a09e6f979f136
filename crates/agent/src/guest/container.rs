//! Containers in the guest and the processes in them. A container's init
//! is cloned into new mount, pid, UTS and IPC namespaces, pivots into its
//! rootfs (a virtio-fs share) and becomes the workload; an exec'd process
//! joins those namespaces. Everything the child needs is prepared before
//! the clone: the child itself only makes system calls.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use atoll_agent::proto::{Container, Process};

use super::cgroup;
use super::mounts::{self, Step};
use super::sys::{check, cstr, mount};

struct State {
    init_pid: i32,
}

static CONTAINERS: Mutex<Option<HashMap<String, State>>> = Mutex::new(None);
/// Serialises the pid-namespace switch of the spawning thread.
static SPAWN: Mutex<()> = Mutex::new(());

/// A started process: its pid and the agent's ends of its stdio.
pub struct Child {
    pub pid: i32,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    /// Readable once the process has exited: its wait status (4 bytes).
    pub exit: OwnedFd,
    /// The terminal's master side, for a process with a terminal.
    pub pty: Option<OwnedFd>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn share_dir(tag: &str) -> io::Result<String> {
    let dir = format!("/run/atoll/share/{tag}");
    if std::fs::metadata(format!("{dir}/."))
        .map(|m| m.is_dir())
        .unwrap_or(false)
        && is_mountpoint(&dir)
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    mount(tag, &dir, "virtiofs", 0, None)?;
    Ok(dir)
}

fn is_mountpoint(dir: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(dir)))
        .unwrap_or(false)
}

/// What the child does, prepared as C strings.
struct Plan {
    /// For an init: the rootfs steps; for an exec: namespaces to join.
    steps: Vec<Step>,
    rootfs: Option<CString>,
    readonly: bool,
    masked: Vec<CString>,
    readonly_paths: Vec<CString>,
    hostname: Option<CString>,
    join: Vec<(OwnedFd, libc::c_int)>,
    /// `cgroup.procs` of the container's group in the guest (its memory
    /// limit, cgroup.rs), which the child joins first.
    cgroup: Option<OwnedFd>,
    rlimits: Vec<(u32, libc::rlimit)>,
    no_new_privs: bool,
    /// seccomp(2) flags and program.
    seccomp: Option<(u32, Vec<libc::sock_filter>)>,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    caps: Option<Caps>,
    cwd: CString,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

struct Caps {
    bounding: Option<u64>,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: Vec<u32>,
}

fn mask(v: &Option<Vec<u32>>) -> u64 {
    v.iter()
        .flatten()
        .filter(|c| **c < 64)
        .fold(0, |m, c| m | (1u64 << c))
}

fn caps_of(p: &Process) -> Option<Caps> {
    if p.effective.is_none() && p.permitted.is_none() && p.bounding.is_none() {
        return None;
    }
    Some(Caps {
        bounding: p.bounding.as_ref().map(|_| mask(&p.bounding)),
        effective: mask(&p.effective),
        permitted: mask(&p.permitted),
        inheritable: mask(&p.inheritable),
        ambient: p.ambient.clone().unwrap_or_default(),
    })
}

/// The process's seccomp filter as the kernel takes it; an error for a
/// program it would refuse.
fn seccomp_of(p: &Process) -> io::Result<Option<(u32, Vec<libc::sock_filter>)>> {
    let Some(f) = &p.seccomp else {
        return Ok(None);
    };
    let n = f.program.len();
    if n == 0 || n > atoll_agent::proto::SECCOMP_MAX_INSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "seccomp program of {n} instructions (1 to {} allowed)",
                atoll_agent::proto::SECCOMP_MAX_INSNS
            ),
        ));
    }
    let prog = f
        .unpack()
        .map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
        .collect();
    Ok(Some((f.flags, prog)))
}

fn process_plan(p: &Process) -> io::Result<Plan> {
    if p.args.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "process.args is empty",
        ));
    }
    let seccomp = seccomp_of(p)?;
    let path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let candidates = if p.args[0].contains('/') {
        vec![cstr(&p.args[0])?]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| cstr(&format!("{}/{}", d.trim_end_matches('/'), p.args[0])))
            .collect::<io::Result<_>>()?
    };
    Ok(Plan {
        steps: Vec::new(),
        rootfs: None,
        readonly: false,
        masked: Vec::new(),
        readonly_paths: Vec::new(),
        hostname: None,
        join: Vec::new(),
        cgroup: None,
        rlimits: p
            .rlimits
            .iter()
            .map(|r| {
                (
                    r.resource,
                    libc::rlimit {
                        rlim_cur: r.soft,
                        rlim_max: r.hard,
                    },
                )
            })
            .collect(),
        no_new_privs: p.no_new_privileges,
        seccomp,
        uid: p.uid,
        gid: p.gid,
        groups: p.additional_gids.clone(),
        caps: caps_of(p),
        cwd: cstr(if p.cwd.is_empty() { "/" } else { &p.cwd })?,
        candidates,
        argv: p.args.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?,
        envp: p.env.iter().map(|e| cstr(e)).collect::<io::Result<_>>()?,
    })
}

/// Starts the container's init (making the container) or a process in
/// an existing container.
pub fn run(c: &Container, p: &Process, init: bool) -> io::Result<Child> {
    let mut plan = process_plan(p)?;
    let mut join_pidns = None;
    let existing = CONTAINERS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&c.id).map(|s| s.init_pid));
    if init {
        if existing.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("container {} exists", c.id),
            ));
        }
        let share = share_dir(&c.rootfs_tag)?;
        super::sys::trace("rootfs share mounted");
        super::sys::log(&format!("share {share} mounted"));
        let rootfs = format!("{share}/{}", c.rootfs_path.trim_start_matches('/'))
            .trim_end_matches('/')
            .to_string();
        if !std::path::Path::new(&rootfs).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("rootfs {} is not a directory in the share", c.rootfs_path),
            ));
        }
        plan.steps = mounts::plan(c, &rootfs, &share)?;
        plan.rootfs = Some(cstr(&rootfs)?);
        plan.readonly = c.readonly;
        plan.masked = c
            .masked_paths
            .iter()
            .map(|m| cstr(m))
            .collect::<io::Result<_>>()?;
        plan.readonly_paths = c
            .readonly_paths
            .iter()
            .map(|m| cstr(m))
            .collect::<io::Result<_>>()?;
        plan.hostname = c.hostname.as_deref().map(cstr).transpose()?;
        plan.cgroup = c
            .memory_limit
            .map(|l| cgroup::create(&c.id, l))
            .transpose()?;
        if !c.join_namespaces.is_empty() {
            let of = c.join_of.as_deref().unwrap_or_default();
            let pid = CONTAINERS
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(of).map(|s| s.init_pid))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "container {of}, whose namespaces {} joins, has no init in this guest",
                            c.id
                        ),
                    )
                })?;
            for ns in &c.join_namespaces {
                let flag = match ns.as_str() {
                    "uts" => libc::CLONE_NEWUTS,
                    "ipc" => libc::CLONE_NEWIPC,
                    "pid" => libc::CLONE_NEWPID,
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("joining a {other} namespace is not supported"),
                        ));
                    }
                };
                let f = std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))?;
                if flag == libc::CLONE_NEWPID {
                    join_pidns = Some(f);
                } else {
                    plan.join.push((f.into(), flag));
                }
            }
        }
    } else {
        let pid = existing.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("container {} has no init in this guest", c.id),
            )
        })?;
        plan.cgroup = cgroup::procs(&c.id)?;
        for (ns, flag) in [
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("mnt", libc::CLONE_NEWNS),
        ] {
            let f = std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))?;
            plan.join.push((f.into(), flag));
        }
    }
    let pidns_target = if init {
        join_pidns
    } else {
        let pid = existing.unwrap();
        Some(std::fs::File::open(format!("/proc/{pid}/ns/pid"))?)
    };
    let own_pidns = std::fs::File::open("/proc/self/ns/pid")?;

    // stdio
    let (pty, stdin_pair, out_pair, err_pair) = if p.terminal {
        // An exec'd process's terminal is one of its container's devpts
        // (where its /dev/pts/N names it: tty, ttyname, ssh-like tools);
        // an init's container has no devpts yet: the agent's.
        let root = existing
            .filter(|_| !init)
            .map(|pid| format!("/proc/{pid}/root"));
        let (master, slave) = openpty(p.console_size, root.as_deref())?;
        (Some((master, slave)), None, None, None)
    } else {
        (None, Some(pipe()?), Some(pipe()?), Some(pipe()?))
    };
    let (exit_r, exit_w) = pipe()?;
    let (err_r, err_w) = pipe()?;

    let spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut waiters = super::reaper::lock();
    // SAFETY: unshare/setns of this thread's pid namespace for children.
    unsafe {
        match &pidns_target {
            None => check(libc::unshare(libc::CLONE_NEWPID))?,
            Some(f) => check(libc::setns(f.as_raw_fd(), libc::CLONE_NEWPID))?,
        };
    }
    // An init makes the namespaces it does not join.
    let joined = plan.join.iter().fold(0, |a, (_, f)| a | f);
    let flags = if init {
        (libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) & !joined
    } else {
        0
    };
    // SAFETY: a fork-like clone; the child only makes system calls on
    // memory prepared above and ends in execve or _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    };
    if pid == 0 {
        let (i, o, e) = match &pty {
            Some((_, slave)) => (slave.as_raw_fd(), slave.as_raw_fd(), slave.as_raw_fd()),
            None => (
                stdin_pair.as_ref().unwrap().0.as_raw_fd(),
                out_pair.as_ref().unwrap().1.as_raw_fd(),
                err_pair.as_ref().unwrap().1.as_raw_fd(),
            ),
        };
        child(&plan, init, pty.is_some(), i, o, e, err_w.as_raw_fd());
    }
    // SAFETY: back to the agent's own pid namespace for this thread.
    unsafe { libc::setns(own_pidns.as_raw_fd(), libc::CLONE_NEWPID) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = pid as i32;
    super::sys::log(&format!("cloned {pid}"));
    super::reaper::register(&mut waiters, pid, exit_w);
    drop(waiters);
    drop(err_w);
    // The next start need not wait for this one's exec (a child slow to
    // exec from the share would hold every other Run up); its child must
    // not inherit this one's error pipe, closed just above.
    drop(spawning);
    // The child's ends close here; the error pipe closes on its exec.
    let mut msg = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(err_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            msg.extend_from_slice(&buf[..n as usize]);
            continue;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break;
    }
    super::sys::log(&format!(
        "child {pid} exec'd or failed: {:?}",
        String::from_utf8_lossy(&msg)
    ));
    if !msg.is_empty() {
        return Err(io::Error::other(String::from_utf8_lossy(&msg).into_owned()));
    }
    if init {
        CONTAINERS
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(c.id.clone(), State { init_pid: pid });
    }
    Ok(match pty {
        Some((master, _slave)) => Child {
            pid,
            stdin: None,
            stdout: master.try_clone()?,
            stderr: None,
            exit: exit_r,
            pty: Some(master),
        },
        None => Child {
            pid,
            stdin: Some(stdin_pair.unwrap().1),
            stdout: out_pair.unwrap().0,
            stderr: Some(err_pair.unwrap().0),
            exit: exit_r,
            pty: None,
        },
    })
}

/// The container's init is gone: forget the container.
pub fn init_exited(id: &str, pid: i32) {
    let mut g = CONTAINERS.lock().unwrap();
    if let Some(m) = g.as_mut()
        && m.get(id).is_some_and(|s| s.init_pid == pid)
    {
        m.remove(id);
        cgroup::remove(id);
    }
}

pub fn init_pid(id: &str) -> Option<i32> {
    CONTAINERS
        .lock()
        .unwrap()
        .as_ref()?
        .get(id)
        .map(|s| s.init_pid)
}

/// Pids (as the guest sees them) of the container's processes.
pub fn pids(id: &str) -> io::Result<Vec<i32>> {
    let init = init_pid(id).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("container {id} is not running"),
        )
    })?;
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid"))?;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A pseudo-terminal pair from the devpts instance of `root` (a
/// container's root seen from the agent), or the agent's own.
fn openpty(size: Option<(u16, u16)>, root: Option<&str>) -> io::Result<(OwnedFd, OwnedFd)> {
    let root = root.unwrap_or("");
    let ptmx = cstr(&format!("{root}/dev/ptmx"))?;
    // SAFETY: opening a pty pair and setting its window size.
    unsafe {
        let m = check(libc::open(
            ptmx.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let master = OwnedFd::from_raw_fd(m);
        check(libc::grantpt(m))?;
        check(libc::unlockpt(m))?;
        let mut n: libc::c_uint = 0;
        check(libc::ioctl(m, libc::TIOCGPTN, &mut n))?;
        let slave_path = cstr(&format!("{root}/dev/pts/{n}"))?;
        let s = check(libc::open(
            slave_path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(m, libc::TIOCSWINSZ, &ws);
        }
        Ok((master, OwnedFd::from_raw_fd(s)))
    }
}

/// Reports a failed step to the parent and exits (no allocation).
fn fail(err_fd: RawFd, what: &[u8]) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        let errno = *libc::__errno_location();
        let mut buf = [0u8; 160];
        let mut n = 0;
        for b in what.iter().chain(b": errno ".iter()) {
            if n < buf.len() {
                buf[n] = *b;
                n += 1;
            }
        }
        let mut digits = [0u8; 10];
        let mut d = 0;
        let mut e = errno.unsigned_abs();
        loop {
            digits[d] = b'0' + (e % 10) as u8;
            d += 1;
            e /= 10;
            if e == 0 {
                break;
            }
        }
        while d > 0 && n < buf.len() {
            d -= 1;
            buf[n] = digits[d];
            n += 1;
        }
        libc::write(err_fd, buf.as_ptr().cast(), n);
        libc::_exit(127);
    }
}

#[allow(clippy::too_many_arguments)]
fn child(plan: &Plan, init: bool, tty: bool, i: RawFd, o: RawFd, e: RawFd, err_fd: RawFd) -> ! {
    // SAFETY: this is the cloned child: only system calls on prepared data.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        // Into the container's cgroup before anything it allocates.
        if let Some(fd) = &plan.cgroup
            && libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) < 0
        {
            fail(err_fd, b"joining its cgroup (memory limit)");
        }
        if init {
            // A pod member's init: its pod's UTS and IPC namespaces.
            for (fd, flag) in &plan.join {
                if libc::setns(fd.as_raw_fd(), *flag) < 0 {
                    fail(err_fd, b"joining its pod's namespaces");
                }
            }
            if libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) < 0
            {
                fail(err_fd, b"making / private");
            }
            let root = plan.rootfs.as_ref().unwrap();
            if libc::mount(
                root.as_ptr(),
                root.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) < 0
            {
                fail(err_fd, b"binding the rootfs");
            }
            for s in &plan.steps {
                match s {
                    Step::Mkdir(p) => {
                        if libc::mkdir(p.as_ptr(), 0o755) < 0
                            && *libc::__errno_location() != libc::EEXIST
                        {
                            fail(err_fd, p.as_bytes());
                        }
                    }
                    Step::Mount {
                        src,
                        target,
                        fstype,
                        flags,
                        data,
                    } => {
                        let d = data
                            .as_ref()
                            .map_or(std::ptr::null(), |d| d.as_ptr().cast());
                        if libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), *flags, d)
                            < 0
                        {
                            fail(err_fd, target.as_bytes());
                        }
                    }
                    Step::Mknod(p, mode, dev) => {
                        if libc::mknod(p.as_ptr(), *mode, *dev) < 0
                            && *libc::__errno_location() != libc::EEXIST
                        {
                            fail(err_fd, p.as_bytes());
                        }
                    }
                    Step::Symlink(t, p) => {
                        libc::symlink(t.as_ptr(), p.as_ptr());
                    }
                    Step::Touch(p) => {
                        // An existing file is the mount point as it is
                        // (a read-only root has its mount points made by
                        // the host beforehand).
                        if libc::access(p.as_ptr(), libc::F_OK) < 0 {
                            let fd = libc::open(
                                p.as_ptr(),
                                libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                                0o644,
                            );
                            if fd < 0 {
                                fail(err_fd, p.as_bytes());
                            }
                            libc::close(fd);
                        }
                    }
                }
            }
            if libc::chdir(root.as_ptr()) < 0 {
                fail(err_fd, b"chdir to the rootfs");
            }
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) < 0 {
                fail(err_fd, b"pivot_root");
            }
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0 {
                fail(err_fd, b"detaching the old root");
            }
            libc::chdir(c"/".as_ptr());
            for m in &plan.masked {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(m.as_ptr(), &mut st) < 0 {
                    continue;
                }
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        m.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        std::ptr::null(),
                    );
                } else {
                    libc::mount(
                        c"/dev/null".as_ptr(),
                        m.as_ptr(),
                        null,
                        libc::MS_BIND,
                        std::ptr::null(),
                    );
                }
            }
            for m in &plan.readonly_paths {
                if libc::mount(
                    m.as_ptr(),
                    m.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) == 0
                {
                    libc::mount(
                        m.as_ptr(),
                        m.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                        std::ptr::null(),
                    );
                }
            }
            if plan.readonly
                && libc::mount(
                    c"/".as_ptr(),
                    c"/".as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ) < 0
            {
                fail(err_fd, b"read-only rootfs");
            }
            if let Some(h) = &plan.hostname
                && libc::sethostname(h.as_ptr(), h.as_bytes().len()) < 0
            {
                fail(err_fd, b"sethostname");
            }
        } else {
            for (fd, flag) in &plan.join {
                if libc::setns(fd.as_raw_fd(), *flag) < 0 {
                    fail(err_fd, b"joining the container's namespaces");
                }
            }
        }
        libc::setsid();
        if tty && libc::ioctl(i, libc::TIOCSCTTY, 0) < 0 {
            fail(err_fd, b"controlling terminal");
        }
        if libc::dup2(i, 0) < 0 || libc::dup2(o, 1) < 0 || libc::dup2(e, 2) < 0 {
            fail(err_fd, b"stdio");
        }
        for (res, lim) in &plan.rlimits {
            if libc::setrlimit(*res as _, lim) < 0 {
                fail(err_fd, b"setrlimit");
            }
        }
        if let Some(c) = &plan.caps
            && let Some(b) = c.bounding
        {
            for cap in 0..64u64 {
                if b & (1 << cap) == 0 {
                    libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
                }
            }
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
            fail(err_fd, b"keepcaps");
        }
        // Without no_new_privs the filter is loaded while the process
        // still has CAP_SYS_ADMIN, as runc does: what follows (setgroups
        // to execve) must then be allowed by the profile.
        if !plan.no_new_privs {
            load_seccomp(plan, err_fd);
        }
        // Raw system calls: glibc's wrappers would signal every thread of
        // the agent (which this clone does not have) and wait forever.
        if libc::syscall(libc::SYS_setgroups, plan.groups.len(), plan.groups.as_ptr()) < 0 {
            fail(err_fd, b"setgroups");
        }
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) < 0 {
            fail(err_fd, b"setgid");
        }
        if libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) < 0 {
            fail(err_fd, b"setuid");
        }
        if let Some(c) = &plan.caps {
            #[repr(C)]
            struct Hdr {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            let h = Hdr {
                version: 0x2008_0522,
                pid: 0,
            };
            let d = [
                Data {
                    effective: c.effective as u32,
                    permitted: c.permitted as u32,
                    inheritable: c.inheritable as u32,
                },
                Data {
                    effective: (c.effective >> 32) as u32,
                    permitted: (c.permitted >> 32) as u32,
                    inheritable: (c.inheritable >> 32) as u32,
                },
            ];
            if libc::syscall(libc::SYS_capset, &h, d.as_ptr()) < 0 {
                fail(err_fd, b"capset");
            }
            for a in &c.ambient {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    *a as libc::c_ulong,
                    0,
                    0,
                );
            }
        } else if plan.uid != 0 {
            // Without capabilities in the spec a non-root user has none.
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        }
        if plan.no_new_privs {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                fail(err_fd, b"no_new_privs");
            }
            load_seccomp(plan, err_fd);
        }
        if libc::chdir(plan.cwd.as_ptr()) < 0 {
            fail(err_fd, b"chdir to the process's cwd");
        }
        let mut argv: [*const libc::c_char; 256] = [std::ptr::null(); 256];
        for (k, a) in plan.argv.iter().take(255).enumerate() {
            argv[k] = a.as_ptr();
        }
        let mut envp: [*const libc::c_char; 512] = [std::ptr::null(); 512];
        for (k, a) in plan.envp.iter().take(511).enumerate() {
            envp[k] = a.as_ptr();
        }
        let mut last = libc::ENOENT;
        for cand in &plan.candidates {
            libc::execve(cand.as_ptr(), argv.as_ptr(), envp.as_ptr());
            let e = *libc::__errno_location();
            if e != libc::ENOENT && e != libc::ENOTDIR {
                last = e;
            }
        }
        *libc::__errno_location() = last;
        fail(err_fd, b"exec");
    }
}

/// Installs the process's seccomp filter, if it has one (in the cloned
/// child: system calls on prepared data only).
fn load_seccomp(plan: &Plan, err_fd: RawFd) {
    let Some((flags, prog)) = &plan.seccomp else {
        return;
    };
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at the plan's program for the call's duration.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1 as libc::c_ulong, // SECCOMP_SET_MODE_FILTER
            *flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        fail(err_fd, b"seccomp filter");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_agent::proto::Seccomp;

    fn process(program: Vec<u64>) -> Process {
        Process {
            args: vec!["/bin/true".into()],
            seccomp: Some(Seccomp { flags: 0, program }),
            ..Default::default()
        }
    }

    #[test]
    fn a_seccomp_program_becomes_the_kernels_instructions() {
        let p = process(vec![Seccomp::pack(0x06, 0, 0, 0x7fff_0000)]);
        let (flags, prog) = process_plan(&p).unwrap().seccomp.unwrap();
        assert_eq!(flags, 0);
        assert_eq!((prog[0].code, prog[0].k), (0x06, 0x7fff_0000));
    }

    #[test]
    fn seccomp_programs_the_kernel_would_refuse_are_refused() {
        for n in [0, atoll_agent::proto::SECCOMP_MAX_INSNS + 1] {
            let e = process_plan(&process(vec![0; n])).err().unwrap();
            assert!(e.to_string().contains("seccomp program of"), "{e}");
        }
    }
}
