//! `exec`: a new process in a running container. What the process is
//! follows runc: the `--process` file as given, else the container's own
//! process with the command line's flags merged in. Native containers are
//! joined with libcontainer's tenant builder (`exec_native.rs`); userspace
//! sandboxes start the process inside the application kernel over its
//! control socket (`exec_userspace.rs`).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use libcontainer::container::ContainerStatus;
use oci_spec::runtime::{Capability, Process, Spec};

use crate::lifecycle::Runtime;
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
    /// Exec into a paused container too (the process runs once it is resumed).
    pub ignore_paused: bool,
}

/// A file in the container's state directory, removed when dropped: the
/// process read from standard input (`--process -`), or the process a
/// native exec hands libcontainer.
pub(crate) struct StagedFile(pub PathBuf);

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The process an exec will start, decided once: policy sees it, the
/// level runs it.
pub(crate) struct Prepared {
    pub meta: Meta,
    /// The container's spec: the effective spec with the bundle's process.
    pub spec: Spec,
    pub process: Process,
    /// Holds the stdin process file while the exec needs it.
    pub _stdin: Option<StagedFile>,
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

/// A capability as runc's `--cap` takes it: `CAP_KILL`, and also `KILL`,
/// in any case.
pub fn parse_capability(s: &str) -> Result<Capability> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare)
        .map_err(|_| anyhow!("--cap {s:?} is not a capability (e.g. CAP_KILL or KILL)"))
}

impl Runtime {
    /// Checks that `exec` is possible; returns the container's level.
    pub fn exec_target(&self, id: &str, ignore_paused: bool) -> Result<crate::Isolation> {
        let (c, meta) = self.load(id)?;
        match c.status() {
            ContainerStatus::Running | ContainerStatus::Created => {}
            ContainerStatus::Paused if ignore_paused => {}
            ContainerStatus::Paused => bail!(
                "cannot exec in container {id}: it is paused (resume it, or exec with --ignore-paused)"
            ),
            s => bail!(
                "cannot exec in container {id}: it is {}",
                status::status_str(s)
            ),
        }
        Ok(meta.map(|m| m.level).unwrap_or(crate::Isolation::Native))
    }

    /// The container's metadata and the spec exec starts from: the
    /// effective spec with the bundle's process as created (its process
    /// is the workload's whatever the level, and `noNewPrivileges: false`
    /// is still false there).
    fn exec_base(&self, id: &str) -> Result<(Meta, Spec)> {
        let meta = Meta::load(&self.layout, id)
            .map_err(|e| anyhow!("cannot exec in container {id}: {}", crate::one_line(&e)))?;
        let mut spec = Spec::load(self.layout.atoll_dir(id).join("config.json"))
            .map_err(|e| anyhow!("container {id}: reading its spec: {e}"))?;
        if meta.process.is_some() {
            spec.set_process(meta.process.clone());
        }
        Ok((meta, spec))
    }

    /// The process `exec` will start, as runc makes it: the `--process`
    /// file as given, else the container's process with the flags merged
    /// in (command, `--env` over the container's environment, `--cwd`,
    /// `--user`, `--additional-gids`, `--cap` added to the container's
    /// capabilities, `--no-new-privs`, `--tty`). Everything else (rlimits,
    /// noNewPrivileges, umask...) is the container's.
    pub fn exec_process(&self, o: &ExecOptions, base: &Spec) -> Result<Process> {
        if let Some(p) = &o.process {
            return crate::spec::load_process(p);
        }
        if o.args.is_empty() {
            bail!("exec: no command given (pass a command or --process)");
        }
        let mut p = base.process().clone().unwrap_or_default();
        p.set_args(Some(o.args.clone()));
        p.set_command_line(None);
        p.set_terminal(Some(o.tty));
        let mut env = p.env().clone().unwrap_or_default();
        for e in &o.env {
            let (k, _) = e
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| anyhow!("--env {e:?} is not of the form NAME=value"))?;
            env.retain(|x| x.split_once('=').map_or(x.as_str(), |(n, _)| n) != k);
            env.push(e.clone());
        }
        p.set_env(Some(env));
        if let Some(cwd) = &o.cwd {
            if !cwd.is_absolute() {
                bail!("--cwd {:?} is not an absolute path", cwd.display());
            }
            p.set_cwd(cwd.clone());
        }
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
            let add = o
                .caps
                .iter()
                .map(|c| parse_capability(c))
                .collect::<Result<std::collections::HashSet<_>>>()?;
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
            // Ambient only with an inheritable set, never the inheritable
            // set itself (runc, GHSA-f3fp-gc8g-vw66).
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

    /// Reads the process once (`--process -` is standard input, kept in a
    /// file), asks the admission plugin whether it may run, and returns it.
    pub(crate) fn prepare_exec(&self, o: &ExecOptions) -> Result<Prepared> {
        let (meta, spec) = self.exec_base(&o.id)?;
        let mut opts = o.clone();
        let stdin = self.stage_stdin_process(o)?;
        if let Some(s) = &stdin {
            opts.process = Some(s.0.clone());
        }
        let process = self.exec_process(&opts, &spec)?;
        if let Some(adm) = &self.plugins.admission {
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
        }
        Ok(Prepared {
            meta,
            spec,
            process,
            _stdin: stdin,
        })
    }

    pub(crate) fn report_exec<T>(&self, o: &ExecOptions, meta: Option<&Meta>, r: &Result<T>) {
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

    /// `--process -`: standard input can be read only once; it is kept in
    /// a file in the container's state directory for as long as the exec
    /// needs it.
    fn stage_stdin_process(&self, o: &ExecOptions) -> Result<Option<StagedFile>> {
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
        Ok(Some(StagedFile(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_with_or_without_the_prefix() {
        for s in ["CAP_KILL", "KILL", "kill", "cap_kill"] {
            assert_eq!(parse_capability(s).unwrap(), Capability::Kill, "{s}");
        }
        assert_eq!(
            parse_capability("CAP_NET_BIND_SERVICE").unwrap(),
            Capability::NetBindService
        );
        let e = parse_capability("CAP_NOPE").unwrap_err().to_string();
        assert!(e.contains("\"CAP_NOPE\" is not a capability"), "{e}");
    }

    fn runtime() -> (tempfile::TempDir, Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(dir.path(), false, crate::Config::default());
        (dir, rt)
    }

    fn base(nnp: Option<bool>) -> Spec {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap();
        p.set_no_new_privileges(nnp);
        p.set_env(Some(vec!["PATH=/bin".into(), "FOO=spec".into()]));
        p.set_cwd("/work".into());
        p.set_terminal(Some(true));
        spec.set_process(Some(p));
        spec
    }

    #[test]
    fn the_containers_process_with_the_flags_merged() {
        let (_d, rt) = runtime();
        let o = ExecOptions {
            args: vec!["sh".into()],
            env: vec!["FOO=flag".into(), "BAR=1".into()],
            caps: vec!["KILL".into(), "CAP_NET_RAW".into()],
            ..Default::default()
        };
        let p = rt.exec_process(&o, &base(Some(false))).unwrap();
        assert_eq!(p.env().clone().unwrap(), ["PATH=/bin", "FOO=flag", "BAR=1"]);
        assert_eq!(p.cwd(), std::path::Path::new("/work"));
        // The spec's noNewPrivileges, not libcontainer's default of true.
        assert_eq!(p.no_new_privileges(), Some(false));
        // A terminal only with --tty, whatever the container's process had.
        assert_eq!(p.terminal(), Some(false));
        let caps = p.capabilities().clone().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.clone().unwrap();
            assert!(set.contains(&Capability::Kill) && set.contains(&Capability::NetRaw));
        }
    }

    #[test]
    fn no_new_privs_flag_and_bad_flags() {
        let (_d, rt) = runtime();
        let o = ExecOptions {
            args: vec!["sh".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = rt.exec_process(&o, &base(None)).unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let bad = ExecOptions {
            args: vec!["sh".into()],
            env: vec!["=x".into()],
            ..Default::default()
        };
        assert!(rt.exec_process(&bad, &base(None)).is_err());
        let bad = ExecOptions {
            args: vec!["sh".into()],
            cwd: Some("tmp".into()),
            ..Default::default()
        };
        let e = rt.exec_process(&bad, &base(None)).unwrap_err().to_string();
        assert!(e.contains("not an absolute path"), "{e}");
        let none = ExecOptions::default();
        let e = rt.exec_process(&none, &base(None)).unwrap_err().to_string();
        assert!(e.contains("no command"), "{e}");
    }
}
