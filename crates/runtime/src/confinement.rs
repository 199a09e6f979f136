//! How a native container's process is confined right before its exec:
//! the container's seccomp filter, loaded by atoll's executor (see
//! seccomp_filter.rs), and the capabilities it ends with.

use std::collections::HashSet;

use libcontainer::workload::ExecutorError;
use oci_spec::runtime::{Capability, Process};

use crate::seccomp_filter::Bpf;

/// What a native container's process gets right before its exec.
#[derive(Clone, Debug)]
pub struct Confinement {
    /// The container's filter, compiled.
    pub filter: crate::seccomp_filter::Bpf,
    /// The process's own capabilities, when libcontainer set it up with
    /// CAP_SYS_ADMIN and CAP_SETPCAP lent for loading the filter without
    /// no_new_privs: dropped to these once the filter is loaded.
    pub final_caps: Option<oci_spec::runtime::LinuxCapabilities>,
}

impl Confinement {
    pub(crate) fn apply(&self) -> Result<(), ExecutorError> {
        self.filter.load().map_err(|e| {
            ExecutorError::Other(format!("loading the container's seccomp filter: {e}"))
        })?;
        if let Some(caps) = &self.final_caps {
            let syscall = libcontainer::syscall::syscall::create_syscall();
            libcontainer::capabilities::drop_privileges(caps, syscall.as_ref()).map_err(|e| {
                ExecutorError::Other(format!(
                    "dropping the capabilities lent for the seccomp filter: {e}"
                ))
            })?;
        }
        Ok(())
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
pub fn confine(process: &Process, filter: Option<Bpf>) -> (Process, Option<Confinement>) {
    let Some(filter) = filter else {
        return (process.clone(), None);
    };
    let confinement = |final_caps| {
        Some(Confinement {
            filter: filter.clone(),
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

    /// Any filter will do: these tests are about capabilities.
    fn bpf() -> Bpf {
        crate::seccomp_filter::compile(&oci_spec::runtime::LinuxSeccomp::default()).unwrap()
    }

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
        let (q, c) = confine(&p, Some(bpf()));
        let c = c.unwrap();
        assert!(c.final_caps.is_none());
        assert_eq!(q, p);
    }

    #[test]
    fn without_no_new_privs_sys_admin_is_lent_until_the_filter_is_loaded() {
        for nnp in [None, Some(false)] {
            let p = process(nnp, &[Capability::Kill]);
            let (q, c) = confine(&p, Some(bpf()));
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
        let (q, c) = confine(&p, Some(bpf()));
        assert!(c.unwrap().final_caps.is_none());
        assert_eq!(q, p);
    }
}
