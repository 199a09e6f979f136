//! exec into a native container: libcontainer's tenant builder joins the
//! container's namespaces and cgroup. atoll hands it the whole process as a
//! file (so nothing of it comes from libcontainer's defaults, which would
//! turn `noNewPrivileges: false` into true and cap the open files at 1024),
//! and confines it as runc confines an exec'd process: under the
//! container's seccomp filter, which libcontainer 0.7's tenant builder
//! would drop anyway (it rebuilds the spec's `linux` section from the
//! namespaces, cgroup path, personality and time offsets only).

use anyhow::{Result, anyhow, bail};
use nix::unistd::Pid;

use crate::confinement::confine;
use crate::exec::{ExecOptions, Prepared, StagedFile};
use crate::executor::AtollExecutor;
use crate::lifecycle::{Runtime, describe_libcontainer_error};
use crate::seccomp_filter::{self, Bpf};

impl Runtime {
    /// Starts the process in a native container; returns its host pid.
    pub fn exec_native(&self, o: &ExecOptions) -> Result<Pid> {
        let prepared = self.prepare_exec(o)?;
        let r = self.exec_native_prepared(o, &prepared);
        self.report_exec(o, Some(&prepared.meta), &r);
        r
    }

    /// The container's filter: the one create compiled, else (containers
    /// of an older atoll) its profile in the effective spec.
    fn container_filter(&self, id: &str, p: &Prepared) -> Result<Option<Bpf>> {
        let saved = self.layout.seccomp_filter(id);
        if saved.exists() {
            return Bpf::read(&saved)
                .map(Some)
                .map_err(|e| anyhow!("cannot exec in container {id}: {e:#}"));
        }
        let Some(profile) = p.spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
            return Ok(None);
        };
        if !seccomp_filter::loadable(&profile) {
            bail!(
                "cannot exec in container {id}: its seccomp profile hands syscalls to a \
                 notifier (SCMP_ACT_NOTIFY), which exec does not support"
            );
        }
        seccomp_filter::cached(&self.layout.seccomp_cache(), &profile)
            .map(Some)
            .map_err(|e| anyhow!("cannot exec in container {id}: {e:#}"))
    }

    fn exec_native_prepared(&self, o: &ExecOptions, p: &Prepared) -> Result<Pid> {
        let filter = self.container_filter(&o.id, p)?;
        let (process, confinement) = confine(&p.process, filter);
        let staged = StagedFile(
            self.layout
                .atoll_dir(&o.id)
                .join(format!("exec-{}.json", std::process::id())),
        );
        std::fs::write(&staged.0, serde_json::to_vec(&process)?)
            .map_err(|e| anyhow!("container {}: writing the exec process: {e}", o.id))?;
        let mut executor = AtollExecutor::native(false);
        executor.confinement = confinement;
        let mut b = libcontainer::container::builder::ContainerBuilder::new(
            o.id.clone(),
            libcontainer::syscall::syscall::SyscallType::default(),
        )
        .with_root_path(self.layout.root.clone())
        .map_err(|e| anyhow!("{e}"))?
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds)
        .with_executor(executor);
        if let Some(pid_file) = &o.pid_file {
            b = b
                .with_pid_file(Some(pid_file))
                .map_err(|e| anyhow!("{e}"))?;
        }
        b.as_tenant()
            .with_detach(o.detach)
            .with_ignore_paused(o.ignore_paused)
            .with_process(Some(&staged.0))
            .build()
            .map_err(|e| {
                anyhow!(
                    "exec in container {}: {}",
                    o.id,
                    describe_libcontainer_error(&e)
                )
            })
    }
}
