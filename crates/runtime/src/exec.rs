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
