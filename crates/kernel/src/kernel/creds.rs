//! Credential changes and what follows from them: the credentials a
//! program runs with after exec (set-user-ID and set-group-ID files), and
//! the parent-death signal a change drops (Linux's commit_creds).

use super::{Kernel, Tid};
use crate::vfs::perm::Cred;

/// The credentials of an exec and whether it is a privilege-raising one
/// (AT_SECURE).
pub struct ExecCred {
    pub cred: Cred,
    pub secure: bool,
}

/// Credentials after exec of a file with `mode`, `uid` and `gid` (Linux's
/// bprm_fill_uid and cap_bprm_creds_from_file; file capabilities are not
/// read). The set-ID bits count unless the mount is nosuid, the process
/// has no_new_privs, or its tracer could not have attached to the
/// privileged result (`tracer_capable` false: no CAP_SYS_PTRACE).
///
/// Without a set-ID bit that applies, only the saved and filesystem ids
/// follow the effective ones (capabilities stay as they were: the exec
/// capability rules for non-root programs are not modelled).
pub fn exec_cred(
    old: &Cred,
    mode: u32,
    uid: u32,
    gid: u32,
    nosuid: bool,
    tracer_capable: bool,
) -> ExecCred {
    let mut new = old.clone();
    if !nosuid && !old.no_new_privs {
        if mode & libc::S_ISUID != 0 {
            new.euid = uid;
        }
        // Set-group-ID without group execute is mandatory locking, not a
        // set-ID program.
        if mode & libc::S_ISGID != 0 && mode & libc::S_IXGRP != 0 {
            new.egid = gid;
        }
    }
    let is_setid = new.euid != old.uid || new.egid != old.gid;
    let ids_moved = new.euid != old.euid || new.egid != old.egid;
    if !ids_moved {
        new.suid = new.euid;
        new.fsuid = new.euid;
        new.sgid = new.egid;
        new.fsgid = new.egid;
        return ExecCred {
            cred: new,
            secure: is_setid,
        };
    }
    // A set-ID program: capabilities as Linux computes them without file
    // capabilities. Root (real or effective) gets the bounding set (and
    // the inheritable one) permitted, effective only when the effective
    // uid is root; setid clears the ambient set.
    new.cap_permitted = if new.euid == 0 || new.uid == 0 {
        old.cap_bounding | old.cap_inheritable
    } else {
        0
    };
    if !tracer_capable {
        // Traced by a tracer that could not attach to the result: no
        // more than the process had.
        new.euid = new.uid;
        new.egid = new.gid;
        new.cap_permitted &= old.cap_permitted;
    }
    new.cap_ambient = 0;
    new.cap_effective = if new.euid == 0 { new.cap_permitted } else { 0 };
    new.suid = new.euid;
    new.fsuid = new.euid;
    new.sgid = new.egid;
    new.fsgid = new.egid;
    let secure =
        new.euid != old.uid || new.egid != old.gid || (new.uid != 0 && new.cap_effective != 0);
    ExecCred { cred: new, secure }
}

/// Whether going from `old` to `new` is a change others must not keep
/// acting on (commit_creds's test): effective or filesystem ids changed,
/// or permitted capabilities gained.
pub fn is_privilege_change(old: &Cred, new: &Cred) -> bool {
    old.euid != new.euid
        || old.egid != new.egid
        || old.fsuid != new.fsuid
        || old.fsgid != new.fsgid
        || new.cap_permitted & !old.cap_permitted != 0
}

impl Kernel {
    /// After `tid`'s process's credentials went from `old` to what they
    /// are now: a change of privilege drops the parent-death signal its
    /// threads asked for, so the parent cannot signal a process that is
    /// now more privileged than it, and makes it non-dumpable, so
    /// processes of its old identity cannot ptrace it (Linux's
    /// commit_creds, with the default fs.suid_dumpable 0).
    pub fn creds_committed(&mut self, tid: Tid, old: &Cred) {
        if !is_privilege_change(old, &self.group_of(tid).cred) {
            return;
        }
        self.group_of_mut(tid).dumpable = false;
        for t in self.group_of(tid).threads.clone() {
            if let Some(t) = self.tasks.get_mut(&t) {
                t.pdeath_signal = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Cred {
        let mut c = Cred::root();
        (c.uid, c.euid, c.suid, c.fsuid) = (uid, uid, uid, uid);
        c.cap_effective = 0;
        c.cap_permitted = 0;
        c
    }

    #[test]
    fn a_setuid_file_changes_the_effective_and_saved_uid() {
        let e = exec_cred(&user(1000), 0o4755, 0, 0, false, true);
        assert_eq!(
            (e.cred.uid, e.cred.euid, e.cred.suid, e.cred.fsuid),
            (1000, 0, 0, 0)
        );
        assert_eq!(e.cred.cap_effective, e.cred.cap_bounding);
        assert!(e.secure);
        assert!(is_privilege_change(&user(1000), &e.cred));
    }

    #[test]
    fn nosuid_no_new_privs_or_an_incapable_tracer_keep_the_ids() {
        let old = user(1000);
        assert_eq!(exec_cred(&old, 0o4755, 0, 0, true, true).cred.euid, 1000);
        let mut nnp = old.clone();
        nnp.no_new_privs = true;
        assert_eq!(exec_cred(&nnp, 0o4755, 0, 0, false, true).cred.euid, 1000);
        let traced = exec_cred(&old, 0o4755, 0, 0, false, false);
        assert_eq!((traced.cred.euid, traced.cred.cap_permitted), (1000, 0));
    }

    #[test]
    fn setgid_needs_group_execute_and_plain_files_change_nothing() {
        let old = user(1000);
        assert_eq!(
            exec_cred(&old, 0o2745, 0, 50, false, true).cred.egid,
            old.egid
        );
        assert_eq!(exec_cred(&old, 0o2755, 0, 50, false, true).cred.egid, 50);
        let plain = exec_cred(&old, 0o755, 0, 0, false, true);
        assert_eq!(plain.cred, old);
        assert!(!plain.secure);
    }
}
