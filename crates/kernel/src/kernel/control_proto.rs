//! The control protocol: JSON lines over the control socket, with the
//! caller's stdio passed as SCM_RIGHTS on the request.
//!
//! - `exec`: start a process inside the sandbox; the connection stays
//!   open, carries `signal` requests for that process, and receives
//!   `{"exit": status}` when it ends. Closing it kills the process (the
//!   host-side proxy, which the container manager watches, died).
//! - `ps`: the sandbox's processes, with virtual pids.
//! - `stats`: syscall counters (metrics, audit of refused syscalls).
//! - `kill_all`: a signal to every process (`kill --all`).
//! - `container`: add a container of the pod (pod.rs), with its rootfs
//!   and bind mounts as descriptors; the connection stays open for its
//!   proxy: `start` on it (with the init's stdio) starts it, then it
//!   carries signals and the init's exit as an exec's does.
//!
//! `exec`, `ps`, `stats` and `kill_all` name a pod container with
//! `container` (its OCI id); without it they mean the sandbox's own.

use crate::platform::Platform as _;
use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::Kernel;
use super::boot::ProcessSpec;
use super::signal::{SI_USER, SigInfo};
use crate::vfs::FileOps;
use crate::vfs::hostfd::HostStream;
use crate::vfs::perm::caps_from_names;

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Exec(ExecRequest),
    Ps {
        #[serde(default)]
        container: Option<String>,
    },
    Stats {
        #[serde(default)]
        container: Option<String>,
    },
    Signal {
        sig: i32,
    },
    KillAll {
        sig: i32,
        #[serde(default)]
        container: Option<String>,
    },
    Container(super::pod::ContainerRequest),
    Start,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    /// The pod container to start it in (its OCI id).
    #[serde(default)]
    pub container: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub state: String,
    pub threads: usize,
    pub cmd: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub syscalls: u64,
    pub processes: usize,
    pub threads: usize,
    pub enosys: BTreeMap<String, u64>,
    pub refused: BTreeMap<String, u64>,
    pub memory_bytes: u64,
    /// `--network sandbox`: connects and sends the egress rules refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_refused: Vec<EgressRefused>,
    /// The platform's counters (see `Platform::counters`): the sandbox's,
    /// also for a pod container's stats.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platform: BTreeMap<String, u64>,
}

/// Refusals of one destination under one rule.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct EgressRefused {
    pub proto: String,
    /// `169.254.169.254:80`, `[fd00:ec2::254]:80`.
    pub destination: String,
    pub rule: String,
    pub count: u64,
}

fn send_line(fd: i32, v: &serde_json::Value) {
    let mut s = v.to_string();
    s.push('\n');
    let mut off = 0;
    while off < s.len() {
        // SAFETY: writing our buffer to our socket.
        let n = unsafe {
            libc::send(
                fd,
                s[off..].as_ptr() as *const libc::c_void,
                s.len() - off,
                libc::MSG_NOSIGNAL,
            )
        };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

/// Receives one request line and its descriptors (blocking, short timeout).
fn recv_request(fd: i32) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: socket options and recvmsg on our connection with valid buffers.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
    let mut buf = vec![0u8; 1 << 20];
    // Room for a pod container's rootfs and bind mounts.
    let mut cbuf = [0u8; 1024];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = cbuf.len();
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n <= 0 {
        return None;
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const i32;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(*data.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    buf.truncate(n as usize);
    if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
        buf.truncate(nl);
    }
    Some((buf, fds))
}

pub fn serve(k: &mut Kernel, listen_fd: i32) {
    loop {
        // SAFETY: accept4 on our listening socket.
        let c = unsafe {
            libc::accept4(
                listen_fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c < 0 {
            return;
        }
        handle_connection(k, c);
    }
}

fn handle_connection(k: &mut Kernel, c: i32) {
    let Some((line, fds)) = recv_request(c) else {
        unsafe { libc::close(c) };
        return;
    };
    let req: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            send_line(
                c,
                &serde_json::json!({"error": format!("bad request: {e}")}),
            );
            unsafe { libc::close(c) };
            return;
        }
    };
    match req {
        Request::Exec(e) => match start_exec(k, &e, fds) {
            Ok(pid) => {
                send_line(c, &serde_json::json!({"pid": pid}));
                // SAFETY: making our connection non-blocking for the poller.
                unsafe {
                    let fl = libc::fcntl(c, libc::F_GETFL);
                    libc::fcntl(c, libc::F_SETFL, fl | libc::O_NONBLOCK);
                }
                k.poller.add_connection(c);
                k.exec_conns.insert(pid, c);
                k.log
                    .line(&format!("exec: started pid {pid}: {:?}", e.args));
                return;
            }
            Err((msg, code)) => {
                send_line(c, &serde_json::json!({"error": msg, "code": code}));
            }
        },
        Request::Ps { container } => match container_number(k, container.as_deref()) {
            Ok(n) => send_line(
                c,
                &serde_json::to_value(processes_of(k, n)).unwrap_or_default(),
            ),
            Err(e) => send_line(c, &serde_json::json!({ "error": e })),
        },
        Request::Stats { container } => match container_number(k, container.as_deref()) {
            Ok(n) => send_line(c, &serde_json::to_value(stats_of(k, n)).unwrap_or_default()),
            Err(e) => send_line(c, &serde_json::json!({ "error": e })),
        },
        Request::KillAll { sig, container } => match container_number(k, container.as_deref()) {
            Ok(Some(n)) => {
                k.signal_container(n, sig);
                send_line(c, &serde_json::json!({"ok": true}));
            }
            Ok(None) => {
                let pids: Vec<i32> = k.pids();
                for p in pids {
                    let _ = k.send_group(p, SigInfo::user(sig, SI_USER, 0, 0));
                }
                send_line(c, &serde_json::json!({"ok": true}));
            }
            Err(e) => send_line(c, &serde_json::json!({ "error": e })),
        },
        Request::Container(r) => match k.add_container(&r, fds, c) {
            Ok(n) => {
                send_line(c, &serde_json::json!({"ok": true, "container": n}));
                // SAFETY: making our connection non-blocking for the poller.
                unsafe {
                    let fl = libc::fcntl(c, libc::F_GETFL);
                    libc::fcntl(c, libc::F_SETFL, fl | libc::O_NONBLOCK);
                }
                k.poller.add_connection(c);
                return;
            }
            Err(e) => send_line(c, &serde_json::json!({ "error": e, "code": 125 })),
        },
        Request::Signal { .. } | Request::Start => {
            send_line(
                c,
                &serde_json::json!({"error": "signal and start are only valid on an exec or container connection"}),
            );
        }
    }
    unsafe { libc::close(c) };
}

fn start_exec(k: &mut Kernel, e: &ExecRequest, fds: Vec<OwnedFd>) -> Result<i32, (String, i32)> {
    if e.args.is_empty() {
        return Err(("exec: no command".into(), 125));
    }
    let n = container_number(k, e.container.as_deref()).map_err(|m| (m, 125))?;
    // Defaults come from the container's init (the sandbox's or the pod
    // container's): credentials, rlimits, environment, cwd, root, session.
    let (init, config, root, pidns) = match n {
        Some(n) => {
            let c = &k.pod.containers[&n];
            let Some(init) = c.init else {
                return Err((format!("container {} has not started", c.id), 125));
            };
            (
                init,
                &c.config,
                Some(c.root.clone()),
                if c.share_pids { 0 } else { n },
            )
        }
        None => (1, &k.config, None, 0),
    };
    let base = k
        .groups
        .get(&init)
        .map(|g| (g.cred.clone(), g.rlimits, g.sid));
    let (init_cred, rlimits, session) =
        base.unwrap_or_else(|| (config.cred.clone(), super::task::default_rlimits(), init));
    let (default_env, default_cwd, umask) = (config.env.clone(), config.cwd.clone(), config.umask);
    let mut cred = init_cred;
    if let Some(u) = e.uid {
        cred.uid = u;
        cred.euid = u;
        cred.suid = u;
        cred.fsuid = u;
    }
    if let Some(g) = e.gid {
        cred.gid = g;
        cred.egid = g;
        cred.sgid = g;
        cred.fsgid = g;
    }
    if !e.additional_gids.is_empty() {
        cred.groups = e.additional_gids.clone();
    }
    if let Some(caps) = &e.capabilities {
        let bits = caps_from_names(caps.iter().map(|s| s.as_str())) & cred.cap_bounding;
        cred.cap_effective = bits;
        cred.cap_permitted = bits;
    }
    // The exec'd process's own value (runc): a new process, not a child
    // of the init, so the init's no_new_privs is not inherited.
    if let Some(nnp) = e.no_new_privileges {
        cred.no_new_privs = nnp;
    }
    let mut stdio: Vec<Rc<dyn FileOps>> = Vec::new();
    for fd in fds.into_iter().take(3) {
        stdio.push(Rc::new(HostStream::new(fd)));
    }
    let env = if e.env.is_empty() {
        default_env
    } else {
        e.env.iter().map(|a| a.as_bytes().to_vec()).collect()
    };
    let spec = ProcessSpec {
        args: e.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env,
        cwd: e.cwd.clone().map(|c| c.into_bytes()).unwrap_or(default_cwd),
        cred,
        rlimits,
        container: n.unwrap_or(0),
        root,
        umask,
        session: Some(session),
        pidns,
    };
    k.spawn(&spec, stdio)
}

/// A control connection of an exec'd process is readable (or closed).
pub fn connection_ready(k: &mut Kernel, c: i32) {
    if let Some(n) = k.pod.pending(c) {
        container_connection_ready(k, c, n);
        return;
    }
    let Some((&pid, _)) = k.exec_conns.iter().find(|(_, fd)| **fd == c) else {
        return;
    };
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading from our non-blocking connection.
        let n = unsafe { libc::recv(c, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN))
        {
            // The proxy is gone: so is its process.
            k.log
                .line(&format!("exec: connection of pid {pid} closed; killing it"));
            close_exec(k, pid);
            k.group_exit(pid, libc::SIGKILL);
            return;
        }
        if n < 0 {
            return;
        }
        for line in buf[..n as usize]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            if let Ok(Request::Signal { sig }) = serde_json::from_slice::<Request>(line)
                && (1..=64).contains(&sig)
            {
                let _ = k.send_group(pid, SigInfo::user(sig, SI_USER, 0, 0));
            }
        }
    }
}

/// The connection of a pod container not started yet: `start` (with the
/// init's stdio) or the proxy gone.
fn container_connection_ready(k: &mut Kernel, c: i32, n: u32) {
    let Some((line, fds)) = recv_request(c) else {
        k.log.line(&format!(
            "pod: the proxy of container {n} went away before start"
        ));
        super::poller::unregister_connection(c);
        unsafe { libc::close(c) };
        k.remove_container(n);
        return;
    };
    // SAFETY: back to non-blocking for the poller (recv_request blocks).
    unsafe {
        let fl = libc::fcntl(c, libc::F_GETFL);
        libc::fcntl(c, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    match serde_json::from_slice::<Request>(&line) {
        Ok(Request::Start) => {
            let stdio: Vec<Rc<dyn FileOps>> = fds
                .into_iter()
                .take(3)
                .map(|fd| Rc::new(HostStream::new(fd)) as Rc<dyn FileOps>)
                .collect();
            match k.start_container(n, stdio) {
                Ok(pid) => {
                    send_line(c, &serde_json::json!({"pid": pid}));
                    k.exec_conns.insert(pid, c);
                    k.log
                        .line(&format!("pod: container {n} started, init pid {pid}"));
                }
                Err((msg, code)) => {
                    send_line(c, &serde_json::json!({"error": msg, "code": code}));
                    super::poller::unregister_connection(c);
                    unsafe { libc::close(c) };
                    k.remove_container(n);
                }
            }
        }
        Ok(Request::Signal { .. }) => {}
        _ => send_line(
            c,
            &serde_json::json!({"error": "a container not started takes start"}),
        ),
    }
}

/// The pod container `name` names (None: the sandbox's own).
fn container_number(k: &Kernel, name: Option<&str>) -> Result<Option<u32>, String> {
    match name {
        None => Ok(None),
        Some(id) => k
            .pod
            .by_id(id)
            .map(Some)
            .ok_or_else(|| format!("container {id} is not in this pod")),
    }
}

fn close_exec(k: &mut Kernel, pid: i32) {
    if let Some(c) = k.exec_conns.remove(&pid) {
        super::poller::unregister_connection(c);
        unsafe { libc::close(c) };
    }
}

/// An exec'd process (or a pod container's init) ended: tell its proxy.
/// A pod container ends with its init.
pub fn exec_exited(k: &mut Kernel, pid: i32, status: i32) {
    if let Some(&c) = k.exec_conns.get(&pid) {
        send_line(c, &serde_json::json!({"exit": status}));
        close_exec(k, pid);
    }
    if let Some(n) = k.pod.of_init(pid) {
        k.remove_container(n);
    }
}

pub fn processes(k: &Kernel) -> Vec<ProcessInfo> {
    processes_of(k, None)
}

/// The processes of pod container `n` (None: the sandbox's own
/// container, whose view is the whole pod's when they share pids).
pub fn processes_of(k: &Kernel, n: Option<u32>) -> Vec<ProcessInfo> {
    let n = n.unwrap_or(0);
    k.groups
        .values()
        .filter(|g| !g.is_zombie() && g.container == n)
        .filter_map(|g| {
            let t = k.tasks.get(g.threads.first()?)?;
            let mut cmd: Vec<String> = g
                .cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if cmd.is_empty() {
                cmd.push(String::from_utf8_lossy(&t.comm).into_owned());
            }
            // Pids as the container's own namespace shows them.
            let local = |p: i32| match super::pidns::ns_of(p) {
                0 => p,
                _ => super::pidns::local(p),
            };
            Some(ProcessInfo {
                pid: local(g.tgid),
                ppid: local(g.parent),
                uid: g.cred.uid,
                state: format!("{:?}", t.state),
                threads: g.threads.len(),
                cmd: cmd.join(" "),
            })
        })
        .collect()
}

pub fn stats(k: &Kernel) -> Stats {
    stats_of(k, None)
}

/// The counters of pod container `n` (None: the sandbox's): its
/// processes, threads and memory; syscall counters are the pod's.
pub fn stats_of(k: &Kernel, n: Option<u32>) -> Stats {
    let name = |nr: &u64| crate::syscalls::name(*nr).to_string();
    let n = n.unwrap_or(0);
    let groups: Vec<&super::ThreadGroup> = k
        .groups
        .values()
        .filter(|g| !g.is_zombie() && g.container == n)
        .collect();
    Stats {
        syscalls: k.stats.syscalls,
        processes: groups.len(),
        threads: groups.iter().map(|g| g.threads.len()).sum(),
        enosys: k.stats.enosys.iter().map(|(n, c)| (name(n), *c)).collect(),
        refused: k.stats.refused.iter().map(|(n, c)| (name(n), *c)).collect(),
        // A pod container's own memory; without pod containers, the
        // sandbox's.
        memory_bytes: if n != 0 || !k.pod.containers.is_empty() {
            k.container_memory(n)
        } else {
            // Freed memory still retired (for a millisecond or so) is
            // not the workload's any more.
            k.mf.in_use()
        },
        // The stack is the sandbox's (a pod's containers share it).
        egress_refused: match (&k.netstack, n) {
            (Some(ns), 0) => ns
                .refusals()
                .into_iter()
                .map(|(proto, destination, rule, count)| EgressRefused {
                    proto,
                    destination,
                    rule,
                    count,
                })
                .collect(),
            _ => Vec::new(),
        },
        platform: k
            .platform
            .counters()
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
    }
}
