//! exec into a native container: libcontainer's tenant builder joins the
//! container's namespaces and cgroup. atoll hands it the whole process as a
//! file (so nothing of it comes from libcontainer's defaults, which would
//! turn `noNewPrivileges: false` into true and cap the open files at 1024),
//! and confines it as runc confines an exec'd process: under the
//! container's seccomp filter, which libcontainer 0.7's tenant builder
//! drops (it rebuilds the spec's `linux` section from the namespaces,
//! cgroup path, personality and time offsets only).

use std::collections::HashSet;

use anyhow::{Result, anyhow, bail};
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxSeccomp, Process};

use crate::exec::{ExecOptions, Prepared, StagedFile};
use crate::executor::{AtollExecutor, ExecConfinement};
use crate::lifecycle::{Runtime, describe_libcontainer_error};

impl Runtime {
    /// Starts the process in a native container; returns its host pid.
    pub fn exec_native(&self, o: &ExecOptions) -> Result<Pid> {
        let prepared = self.prepare_exec(o)?;
        let r = self.exec_native_prepared(o, &prepared);
        self.report_exec(o, Some(&prepared.meta), &r);
        r
    }

    fn exec_native_prepared(&self, o: &ExecOptions, p: &Prepared) -> Result<Pid> {
        let seccomp = p.spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        if seccomp
            .as_ref()
            .is_some_and(libcontainer::seccomp::is_notify)
        {
            bail!(
                "cannot exec in container {}: its seccomp profile hands syscalls to a \
                 notifier (SCMP_ACT_NOTIFY), which exec does not support",
                o.id
            );
        }
        let (process, confinement) = confine(&p.process, seccomp);
        let staged = StagedFile(
            self.layout
                .atoll_dir(&o.id)
                .join(format!("exec-{}.json", std::process::id())),
        );
        std::fs::write(&staged.0, serde_json::to_vec(&process)?)
            .map_err(|e| anyhow!("container {}: writing the exec process: {e}", o.id))?;
        let mut executor = AtollExecutor::native(false);
        executor.exec_confinement = confinement;
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

/// The process libcontainer is to set up, and what the executor does in
/// the new process after libcontainer is done and before it execs.
///
/// The container's filter is loaded as late as possible, as runc does.
/// With no_new_privs that needs no privilege. Without it the kernel wants
/// CAP_SYS_ADMIN, which libcontainer has dropped by then (runc loads the
/// filter before dropping capabilities in that case; libcontainer gives no
/// hook there): so the process is set up with CAP_SYS_ADMIN and
/// CAP_SETPCAP lent, and the executor loads the filter, then drops to the
/// process's own capabilities (bounding set included) before the exec.
/// No code of the workload runs in between.
pub(crate) fn confine(
    process: &Process,
    seccomp: Option<LinuxSeccomp>,
) -> (Process, Option<ExecConfinement>) {
    let Some(seccomp) = seccomp else {
        return (process.clone(), None);
    };
    let confinement = |final_caps| {
        Some(ExecConfinement {
            seccomp: seccomp.clone(),
            final_caps,
        })
    };
    if process.no_new_privileges() == Some(true) {
        return (process.clone(), confinement(None));
    }
    // No capabilities (or no effective set) in the process: libcontainer
    // leaves the effective set as it is (everything root holds).
    let Some(wanted) = process.capabilities().clone() else {
        return (process.clone(), confinement(None));
    };
    match wanted.effective() {
        None => return (process.clone(), confinement(None)),
        Some(e) if e.contains(&Capability::SysAdmin) => {
            return (process.clone(), confinement(None));
        }
        Some(_) => {}
    }
    let lend = |set: &Option<HashSet<Capability>>| {
        let mut s = set.clone().unwrap_or_default();
        s.insert(Capability::SysAdmin);
        s.insert(Capability::Setpcap);
        Some(s)
    };
    let mut lent = wanted.clone();
    lent.set_bounding(lend(wanted.bounding()));
    lent.set_effective(lend(wanted.effective()));
    lent.set_permitted(lend(wanted.permitted()));
    let mut p = process.clone();
    p.set_capabilities(Some(lent));
    (p, confinement(Some(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(nnp: Option<bool>, effective: &[Capability]) -> Process {
        let mut p = Process::default();
        p.set_no_new_privileges(nnp);
        let mut c = p.capabilities().clone().unwrap();
        let set: HashSet<Capability> = effective.iter().copied().collect();
        c.set_bounding(Some(set.clone()));
        c.set_effective(Some(set.clone()));
        c.set_permitted(Some(set));
        p.set_capabilities(Some(c));
        p
    }

    #[test]
    fn no_profile_no_confinement() {
        let p = process(None, &[Capability::Kill]);
        let (q, c) = confine(&p, None);
        assert!(c.is_none());
        assert_eq!(q, p);
    }

    #[test]
    fn with_no_new_privs_the_filter_needs_nothing_lent() {
        let p = process(Some(true), &[Capability::Kill]);
        let (q, c) = confine(&p, Some(LinuxSeccomp::default()));
        let c = c.unwrap();
        assert!(c.final_caps.is_none());
        assert_eq!(q, p);
    }

    #[test]
    fn without_no_new_privs_sys_admin_is_lent_until_the_filter_is_loaded() {
        for nnp in [None, Some(false)] {
            let p = process(nnp, &[Capability::Kill]);
            let (q, c) = confine(&p, Some(LinuxSeccomp::default()));
            let c = c.unwrap();
            assert_eq!(c.final_caps.as_ref(), p.capabilities().as_ref());
            let lent = q.capabilities().clone().unwrap();
            for set in [lent.bounding(), lent.effective(), lent.permitted()] {
                let set = set.clone().unwrap();
                assert!(set.contains(&Capability::SysAdmin));
                assert!(set.contains(&Capability::Setpcap));
                assert!(set.contains(&Capability::Kill));
            }
            // Everything else of the process is as asked.
            assert_eq!(q.no_new_privileges(), nnp);
        }
        // A process that holds CAP_SYS_ADMIN itself loads the filter as it is.
        let p = process(None, &[Capability::SysAdmin]);
        let (q, c) = confine(&p, Some(LinuxSeccomp::default()));
        assert!(c.unwrap().final_caps.is_none());
        assert_eq!(q, p);
    }
}
