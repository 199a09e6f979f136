//! `exec`: a new process in a running container. Native containers are
//! joined with libcontainer's tenant builder; userspace sandboxes start the
//! process inside the application kernel over its control socket.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use libcontainer::container::ContainerStatus;
use nix::unistd::Pid;

use crate::lifecycle::{Runtime, describe_libcontainer_error};
use crate::meta::Meta;
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

/// An exec process read from standard input, kept in a file until dropped.
struct StagedProcess {
    opts: ExecOptions,
    path: PathBuf,
}

impl Drop for StagedProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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

    /// The container's metadata and the spec exec starts from: the
    /// bundle's as created (its process is the workload's, whatever the
    /// level), else the effective spec.
    fn exec_base(&self, id: &str) -> Result<(Meta, oci_spec::runtime::Spec)> {
        let meta = Meta::load(&self.layout, id)
            .map_err(|e| anyhow!("cannot exec in container {id}: {}", crate::one_line(&e)))?;
        let mut spec = oci_spec::runtime::Spec::load(self.layout.atoll_dir(id).join("config.json"))
            .map_err(|e| anyhow!("container {id}: reading its spec: {e}"))?;
        if meta.process.is_some() {
            spec.set_process(meta.process.clone());
        }
        Ok((meta, spec))
    }

    /// The process `exec` will start, as policy must see it: the
    /// `--process` file, else the container's process with the flags
    /// merged in. Capabilities are the union of the container's and
    /// `--cap` (native adds them; userspace grants at most those).
    pub fn exec_process(
        &self,
        o: &ExecOptions,
        base: &oci_spec::runtime::Spec,
    ) -> Result<oci_spec::runtime::Process> {
        if let Some(p) = &o.process {
            return crate::spec::load_process(p);
        }
        let mut p = base.process().clone().unwrap_or_default();
        p.set_args(Some(o.args.clone()));
        let mut user = p.user().clone();
        if let Some((uid, gid)) = o.user {
            user.set_uid(uid);
            user.set_gid(gid.unwrap_or(0));
        }
        if !o.additional_gids.is_empty() {
            user.set_additional_gids(Some(o.additional_gids.clone()));
        }
        p.set_user(user);
        if !o.caps.is_empty() {
            use std::str::FromStr;
            let mut add = std::collections::HashSet::new();
            for c in &o.caps {
                let name = c.to_ascii_uppercase();
                let name = if name.starts_with("CAP_") {
                    name
                } else {
                    format!("CAP_{name}")
                };
                add.insert(
                    oci_spec::runtime::Capability::from_str(&name)
                        .map_err(|_| anyhow!("--cap {c:?} is not a capability"))?,
                );
            }
            let mut caps = p.capabilities().clone().unwrap_or_default();
            let union = |set: &Option<oci_spec::runtime::Capabilities>| {
                Some(
                    set.clone()
                        .unwrap_or_default()
                        .union(&add)
                        .copied()
                        .collect(),
                )
            };
            caps.set_bounding(union(caps.bounding()));
            caps.set_effective(union(caps.effective()));
            caps.set_permitted(union(caps.permitted()));
            if caps.inheritable().is_some() {
                caps.set_ambient(union(caps.ambient()));
            }
            p.set_capabilities(Some(caps));
        }
        if o.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        Ok(p)
    }

    /// Asks the admission plugin whether `o` may run; returns the
    /// container's metadata (for the report).
    fn admit_exec(&self, o: &ExecOptions) -> Result<Option<Meta>> {
        let Some(adm) = &self.plugins.admission else {
            return Ok(Meta::load(&self.layout, &o.id).ok());
        };
        let (meta, spec) = self.exec_base(&o.id)?;
        let process = self.exec_process(o, &spec)?;
        adm.admit_exec(&crate::lifecycle::ExecAdmissionRequest {
            id: &o.id,
            meta: &meta,
            spec: &spec,
            process: &process,
            user: o.user.map(|(u, g)| match g {
                Some(g) => format!("{u}:{g}"),
                None => u.to_string(),
            }),
            runtime: self,
        })?;
        Ok(Some(meta))
    }

    fn report_exec<T>(&self, o: &ExecOptions, meta: Option<&Meta>, r: &Result<T>) {
        let what = match &o.process {
            Some(p) => format!("process {}", p.display()),
            None => format!("{:?}", o.args),
        };
        let who = o
            .user
            .map(|(u, g)| format!(" as {u}{}", g.map(|g| format!(":{g}")).unwrap_or_default()))
            .unwrap_or_default();
        self.report(crate::lifecycle::Report {
            op: crate::lifecycle::Operation::Exec,
            id: &o.id,
            tenant: meta.map(|m| m.tenant.as_str()),
            level: meta.map(|m| m.level),
            level_source: meta.map(|m| m.level_source),
            detail: Some(format!("{what}{who}")),
            error: r.as_ref().err().map(crate::one_line),
            sandbox_stats: None,
        });
    }

    /// `--process -`: standard input can be read only once, but policy
    /// and the exec both read the process. It is kept in a file in the
    /// container's state directory for the exec's start.
    fn stage_stdin_process(&self, o: &ExecOptions) -> Result<Option<StagedProcess>> {
        if o.process.as_deref() != Some(std::path::Path::new("-")) {
            return Ok(None);
        }
        let process = crate::spec::load_process(std::path::Path::new("-"))?;
        let path = self
            .layout
            .atoll_dir(&o.id)
            .join(format!("exec-stdin-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(&process)?)
            .map_err(|e| anyhow!("container {}: keeping the exec process: {e}", o.id))?;
        let mut opts = o.clone();
        opts.process = Some(path.clone());
        Ok(Some(StagedProcess { opts, path }))
    }

    /// Starts the process in a native container; returns its host pid.
    pub fn exec_native(&self, o: &ExecOptions) -> Result<Pid> {
        let staged = self.stage_stdin_process(o)?;
        let o = staged.as_ref().map_or(o, |s| &s.opts);
        let meta = self.admit_exec(o)?;
        let r = self.exec_native_admitted(o);
        self.report_exec(o, meta.as_ref(), &r);
        r
    }

    fn exec_native_admitted(&self, o: &ExecOptions) -> Result<Pid> {
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
        match o.user {
            Some((uid, gid)) => t = t.with_user(Some(uid)).with_group(gid),
            // As runc: the container's user, not libcontainer's default
            // of root (a non-root container must not exec as root unasked).
            None if o.process.is_none() => {
                if let Ok((_, spec)) = self.exec_base(&o.id)
                    && let Some(p) = spec.process()
                {
                    let u = p.user();
                    t = t.with_user(Some(u.uid())).with_group(Some(u.gid()));
                    if o.additional_gids.is_empty()
                        && let Some(gids) = u.additional_gids()
                    {
                        t = t.with_additional_gids(gids.clone());
                    }
                }
            }
            None => {}
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
        let staged = self.stage_stdin_process(o)?;
        let o = staged.as_ref().map_or(o, |s| &s.opts);
        let meta = self.admit_exec(o)?;
        let started = self.start_in_sandbox(o);
        self.report_exec(o, meta.as_ref(), &started);
        let (session, pty) = started?;
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

    /// Starts `o` in its sandbox; returns the session and the terminal's
    /// ends (kept open until the process has its copy).
    #[allow(clippy::type_complexity)]
    fn start_in_sandbox(
        &self,
        o: &ExecOptions,
    ) -> Result<(
        crate::control::ExecSession,
        Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    )> {
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
        Ok((session, pty))
    }
}
