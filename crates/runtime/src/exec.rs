//! `exec`: a new process in a running container. Native containers are
//! joined with libcontainer's tenant builder; userspace sandboxes start the
//! process inside the application kernel over its control socket.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use libcontainer::container::ContainerStatus;
use nix::unistd::Pid;

use crate::lifecycle::{Runtime, describe_libcontainer_error};
use crate::status;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    /// runtime-spec process JSON (takes precedence over args/env/...)
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
}

/// Parses `uid[:gid]`.
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .map_err(|_| anyhow!("user {s:?}: uid {u:?} is not a number"))?;
    let gid = g
        .map(|g| {
            g.parse()
                .map_err(|_| anyhow!("user {s:?}: gid {g:?} is not a number"))
        })
        .transpose()?;
    Ok((uid, gid))
}

impl Runtime {
    /// Checks that `exec` is possible; returns the container's level.
    pub fn exec_target(&self, id: &str) -> Result<crate::Isolation> {
        let (c, meta) = self.load(id)?;
        match c.status() {
            ContainerStatus::Running | ContainerStatus::Created => {}
            s => bail!(
                "cannot exec in container {id}: it is {}",
                status::status_str(s)
            ),
        }
        Ok(meta.map(|m| m.level).unwrap_or(crate::Isolation::Native))
    }

    /// Starts the process in a native container; returns its host pid.
    pub fn exec_native(&self, o: &ExecOptions) -> Result<Pid> {
        if let Some(p) = &o.process {
            crate::spec::load_process(p)?;
        } else if o.args.is_empty() {
            bail!("exec: no command given (pass a command or --process)");
        }
        let mut env = HashMap::new();
        for e in &o.env {
            let (k, v) = e
                .split_once('=')
                .ok_or_else(|| anyhow!("--env {e:?} is not of the form NAME=value"))?;
            env.insert(k.to_string(), v.to_string());
        }
        let mut b = libcontainer::container::builder::ContainerBuilder::new(
            o.id.clone(),
            libcontainer::syscall::syscall::SyscallType::default(),
        )
        .with_root_path(self.layout.root.clone())
        .map_err(|e| anyhow!("{e}"))?
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds)
        .with_executor(crate::executor::AtollExecutor::native(false));
        if let Some(p) = &o.pid_file {
            b = b.with_pid_file(Some(p)).map_err(|e| anyhow!("{e}"))?;
        }
        let mut t = b
            .as_tenant()
            .with_detach(o.detach)
            .with_cwd(o.cwd.as_ref())
            .with_env(env)
            .with_process(o.process.as_ref())
            .with_container_args(o.args.clone())
            .with_additional_gids(o.additional_gids.clone())
            .with_capabilities(o.caps.clone());
        if o.no_new_privs {
            t = t.with_no_new_privs(true);
        }
        if let Some((uid, gid)) = o.user {
            t = t.with_user(Some(uid)).with_group(gid);
        }
        t.build().map_err(|e| {
            anyhow!(
                "exec in container {}: {}",
                o.id,
                describe_libcontainer_error(&e)
            )
        })
    }
}

impl Runtime {
    /// The exec request for a userspace sandbox, from the options and the
    /// container's spec.
    fn exec_request(&self, o: &ExecOptions) -> Result<(serde_json::Value, bool)> {
        let spec = oci_spec::runtime::Spec::load(self.layout.atoll_dir(&o.id).join("config.json"))
            .map_err(|e| anyhow!("container {}: reading its spec: {e}", o.id))?;
        let sp = spec.process().clone().unwrap_or_default();
        let (args, mut env, cwd, user, caps, nnp, terminal) = match &o.process {
            Some(p) => {
                let p = crate::spec::load_process(p)?;
                let caps = p
                    .capabilities()
                    .as_ref()
                    .and_then(|c| c.effective().clone())
                    .map(|s| s.iter().map(|c| c.to_string()).collect::<Vec<_>>());
                (
                    p.args().clone().unwrap_or_default(),
                    p.env().clone().unwrap_or_default(),
                    p.cwd().display().to_string(),
                    Some((
                        p.user().uid(),
                        Some(p.user().gid()),
                        p.user().additional_gids().clone().unwrap_or_default(),
                    )),
                    caps,
                    p.no_new_privileges(),
                    p.terminal().unwrap_or(false),
                )
            }
            None => {
                if o.args.is_empty() {
                    bail!("exec: no command given (pass a command or --process)");
                }
                (
                    o.args.clone(),
                    sp.env().clone().unwrap_or_default(),
                    o.cwd
                        .as_ref()
                        .map(|c| c.display().to_string())
                        .unwrap_or_else(|| "/".into()),
                    o.user.map(|(u, g)| (u, g, o.additional_gids.clone())),
                    (!o.caps.is_empty()).then(|| o.caps.clone()),
                    o.no_new_privs.then_some(true),
                    o.tty,
                )
            }
        };
        for e in &o.env {
            let (k, _) = e
                .split_once('=')
                .ok_or_else(|| anyhow!("--env {e:?} is not of the form NAME=value"))?;
            env.retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
            env.push(e.clone());
        }
        let mut req = serde_json::json!({
            "op": "exec",
            "args": args,
            "env": env,
            "cwd": if o.process.is_none() && o.cwd.is_none() { sp.cwd().display().to_string() } else { cwd },
        });
        if let Some((u, g, groups)) = user {
            req["uid"] = u.into();
            if let Some(g) = g {
                req["gid"] = g.into();
            }
            req["additional_gids"] = groups.into();
        }
        if let Some(c) = caps {
            req["capabilities"] = c.into();
        }
        if let Some(n) = nnp {
            req["no_new_privileges"] = n.into();
        }
        Ok((req, terminal))
    }

    /// exec into a userspace sandbox. In the foreground atoll proxies the
    /// process (signals in, exit status out) and returns its exit code;
    /// detached, a proxy process is left behind for the caller to watch
    /// (its pid goes to the pid file) and 0 is returned.
    pub fn exec_userspace(&self, o: &ExecOptions) -> Result<i32> {
        let (req, terminal) = self.exec_request(o)?;
        let sock = self.layout.control_socket(&o.id);
        let mut pty: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> = None;
        if terminal {
            let Some(console) = &o.console_socket else {
                bail!("exec with a terminal needs --console-socket");
            };
            let p = nix::pty::openpty(None, None).map_err(|e| anyhow!("openpty: {e}"))?;
            crate::control::send_console(console, &p.master)?;
            pty = Some((p.master, p.slave));
        }
        let stdio: [std::os::fd::RawFd; 3] = match &pty {
            Some((_, slave)) => {
                let s = std::os::fd::AsRawFd::as_raw_fd(slave);
                [s, s, s]
            }
            None => [0, 1, 2],
        };
        let session = crate::control::start_exec(&sock, &req, stdio)
            .map_err(|e| anyhow!("exec in container {}: {e:#}", o.id))?;
        drop(pty);
        if !o.detach {
            if let Some(p) = &o.pid_file {
                std::fs::write(p, std::process::id().to_string())?;
            }
            return Ok(match session.proxy() {
                Some(st) => crate::control::exit_code(st),
                None => 255,
            });
        }
        // SAFETY: the CLI is single-threaded; the child only proxies and exits.
        match unsafe { nix::unistd::fork() }.map_err(|e| anyhow!("fork: {e}"))? {
            nix::unistd::ForkResult::Child => {
                let _ = nix::unistd::setsid();
                let status = session.proxy();
                crate::control::exit_like(status);
            }
            nix::unistd::ForkResult::Parent { child } => {
                if let Some(p) = &o.pid_file {
                    std::fs::write(p, child.as_raw().to_string())?;
                }
                Ok(0)
            }
        }
    }
}
