//! exec into a userspace sandbox: the process starts inside the
//! application kernel, asked over its control socket; the kernel applies
//! the spec's seccomp profile to it as to every workload task.

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::Process;

use crate::exec::ExecOptions;
use crate::lifecycle::Runtime;

/// The kernel's exec request for `p`, and whether it wants a terminal.
fn exec_request(p: &Process) -> (serde_json::Value, bool) {
    let user = p.user();
    let mut req = serde_json::json!({
        "op": "exec",
        "args": p.args().clone().unwrap_or_default(),
        "env": p.env().clone().unwrap_or_default(),
        "cwd": p.cwd().display().to_string(),
        "uid": user.uid(),
        "gid": user.gid(),
        "additional_gids": user.additional_gids().clone().unwrap_or_default(),
        // The process's own value: false is false even if the
        // container's init set no_new_privs.
        "no_new_privileges": p.no_new_privileges().unwrap_or(false),
    });
    if let Some(e) = p
        .capabilities()
        .as_ref()
        .and_then(|c| c.effective().clone())
    {
        let mut names: Vec<String> = e.iter().map(|c| format!("CAP_{c}")).collect();
        names.sort();
        req["capabilities"] = names.into();
    }
    (req, p.terminal().unwrap_or(false))
}

impl Runtime {
    /// exec into a userspace sandbox. In the foreground atoll proxies the
    /// process (signals in, exit status out) and returns its exit code;
    /// detached, a proxy process is left behind for the caller to watch
    /// (its pid goes to the pid file) and 0 is returned.
    pub fn exec_userspace(&self, o: &ExecOptions) -> Result<i32> {
        let prepared = self.prepare_exec(o)?;
        let started = self.start_in_sandbox(o, &prepared.process);
        self.report_exec(o, Some(&prepared.meta), &started);
        drop(prepared);
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

    /// Starts `process` in the sandbox of `o.id`; returns the session and
    /// the terminal's ends (kept open until the process has its copy).
    #[allow(clippy::type_complexity)]
    fn start_in_sandbox(
        &self,
        o: &ExecOptions,
        process: &Process,
    ) -> Result<(
        crate::control::ExecSession,
        Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    )> {
        let (mut req, terminal) = exec_request(process);
        let (sock, container) = self.control_of(&o.id);
        if let Some(c) = container {
            req["container"] = c.into();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_whole_process() {
        let mut p = Process::default();
        p.set_args(Some(vec!["id".into()]));
        p.set_no_new_privileges(Some(false));
        let (req, terminal) = exec_request(&p);
        assert!(!terminal);
        assert_eq!(req["no_new_privileges"], false);
        assert_eq!(req["args"], serde_json::json!(["id"]));
        let caps = req["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_KILL"), "{caps:?}");
    }
}
