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
    Ps,
    Stats,
    Signal { sig: i32 },
    KillAll { sig: i32 },
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

/// Receives one request line and up to 3 descriptors (blocking, short timeout).
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
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u8; 128];
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
        Request::Ps => {
            send_line(c, &serde_json::to_value(processes(k)).unwrap_or_default());
        }
        Request::Stats => {
            send_line(c, &serde_json::to_value(stats(k)).unwrap_or_default());
        }
        Request::KillAll { sig } => {
            let pids: Vec<i32> = k.pids();
            for p in pids {
                let _ = k.send_group(p, SigInfo::user(sig, SI_USER, 0, 0));
            }
            send_line(c, &serde_json::json!({"ok": true}));
        }
        Request::Signal { .. } => {
            send_line(
                c,
                &serde_json::json!({"error": "signal is only valid on an exec connection"}),
            );
        }
    }
    unsafe { libc::close(c) };
}

fn start_exec(k: &mut Kernel, e: &ExecRequest, fds: Vec<OwnedFd>) -> Result<i32, (String, i32)> {
    if e.args.is_empty() {
        return Err(("exec: no command".into(), 125));
    }
    let base = k.groups.get(&1).map(|g| (g.cred.clone(), g.rlimits));
    let (init_cred, rlimits) =
        base.unwrap_or_else(|| (k.config.cred.clone(), super::task::default_rlimits()));
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
        k.config
            .env
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    } else {
        e.env.clone()
    };
    let spec = ProcessSpec {
        args: e.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: env.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: e
            .cwd
            .clone()
            .unwrap_or_else(|| String::from_utf8_lossy(&k.config.cwd).into_owned())
            .into_bytes(),
        cred,
        rlimits,
    };
    k.spawn(&spec, stdio)
}

/// A control connection of an exec'd process is readable (or closed).
pub fn connection_ready(k: &mut Kernel, c: i32) {
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

fn close_exec(k: &mut Kernel, pid: i32) {
    if let Some(c) = k.exec_conns.remove(&pid) {
        super::poller::unregister_connection(c);
        unsafe { libc::close(c) };
    }
}

/// An exec'd process ended: tell its proxy.
pub fn exec_exited(k: &mut Kernel, pid: i32, status: i32) {
    if let Some(&c) = k.exec_conns.get(&pid) {
        send_line(c, &serde_json::json!({"exit": status}));
        close_exec(k, pid);
    }
}

pub fn processes(k: &Kernel) -> Vec<ProcessInfo> {
    k.groups
        .values()
        .filter(|g| !g.is_zombie())
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
            Some(ProcessInfo {
                pid: g.tgid,
                ppid: g.parent,
                uid: g.cred.uid,
                state: format!("{:?}", t.state),
                threads: g.threads.len(),
                cmd: cmd.join(" "),
            })
        })
        .collect()
}

pub fn stats(k: &Kernel) -> Stats {
    let name = |nr: &u64| crate::syscalls::name(*nr).to_string();
    Stats {
        syscalls: k.stats.syscalls,
        processes: k.groups.values().filter(|g| !g.is_zombie()).count(),
        threads: k.tasks.len(),
        enosys: k.stats.enosys.iter().map(|(n, c)| (name(n), *c)).collect(),
        refused: k.stats.refused.iter().map(|(n, c)| (name(n), *c)).collect(),
        memory_bytes: k.mf.allocated(),
    }
}
