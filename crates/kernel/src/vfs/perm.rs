//! Credentials and permission checks, against the sandbox's virtual
//! identities (the workload's uid is never a host uid).

use crate::errno::{Errno, SysResult};

/// Linux capability numbers the checks below use.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_NICE: u32 = 23;
    pub const SYS_RESOURCE: u32 = 24;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub cap_bounding: u64,
    pub cap_inheritable: u64,
    pub cap_ambient: u64,
    pub no_new_privs: bool,
}

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

impl Cred {
    pub fn root() -> Cred {
        Cred {
            uid: 0,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            groups: Vec::new(),
            cap_effective: !0 >> 23,
            cap_permitted: !0 >> 23,
            cap_bounding: !0 >> 23,
            cap_inheritable: 0,
            cap_ambient: 0,
            no_new_privs: false,
        }
    }

    pub fn capable(&self, cap: u32) -> bool {
        self.cap_effective & (1u64 << cap) != 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// The group and mode of a file this caller makes with `mode` (its
    /// type bits included) in a directory whose mode and group are
    /// `dir_mode` and `dir_gid`. A set-group-ID directory passes its group
    /// on; a set-group-ID, group-executable mode of anything but a
    /// directory then keeps that bit only for a member of the group or a
    /// holder of CAP_FSETID (Linux's `mode_strip_sgid`): anyone else would
    /// make a program that runs with a group they are not in.
    pub fn new_file_owner(&self, dir_mode: u32, dir_gid: u32, mode: u32) -> (u32, u32) {
        if dir_mode & libc::S_ISGID == 0 {
            return (self.fsgid, mode);
        }
        let sgid_exec = libc::S_ISGID | libc::S_IXGRP;
        if mode & libc::S_IFMT != libc::S_IFDIR
            && mode & sgid_exec == sgid_exec
            && !self.in_group(dir_gid)
            && !self.capable(cap::FSETID)
        {
            return (dir_gid, mode & !libc::S_ISGID);
        }
        (dir_gid, mode)
    }

    /// The set-ID bits a write or a truncation by this caller takes away
    /// from the file of mode `mode` (Linux's `should_remove_suid`):
    /// set-user-ID, and set-group-ID with group execute (without it the
    /// bit marks mandatory locking and stays), from a regular file, unless
    /// the caller holds CAP_FSETID. A user who may write someone else's
    /// set-ID program would otherwise put code of theirs into it and keep
    /// the bit.
    pub fn killed_by_write(&self, mode: u32) -> u32 {
        if mode & libc::S_IFMT != libc::S_IFREG || self.capable(cap::FSETID) {
            return 0;
        }
        let mut kill = mode & libc::S_ISUID;
        if mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
            kill |= libc::S_ISGID;
        }
        kill
    }

    /// The set-ID bits any chown (even to the same owner and group) takes
    /// away from the file `st` (Linux's `chown_common` and
    /// `setattr_should_drop_sgid`): set-user-ID from anything but a
    /// directory, whatever the caller's capabilities; set-group-ID with
    /// group execute, or without it from a caller neither in the file's
    /// group nor holding CAP_FSETID.
    pub fn killed_by_chown(&self, st: &libc::stat) -> u32 {
        let mode = st.st_mode;
        if mode & libc::S_IFMT == libc::S_IFDIR {
            return 0;
        }
        let mut kill = mode & libc::S_ISUID;
        if mode & libc::S_ISGID != 0
            && (mode & libc::S_IXGRP != 0
                || !(self.in_group(st.st_gid) || self.capable(cap::FSETID)))
        {
            kill |= libc::S_ISGID;
        }
        kill
    }

    /// Linux's generic_permission: owner, group, other bits, then
    /// CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
    pub fn may_access(&self, st: &libc::stat, want: u32) -> SysResult<()> {
        let mode = st.st_mode;
        let bits = if self.fsuid == st.st_uid {
            (mode >> 6) & 7
        } else if self.in_group(st.st_gid) {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        if bits & want == want {
            return Ok(());
        }
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        if self.capable(cap::DAC_OVERRIDE) {
            // Exec needs at least one x bit on non-directories.
            if want & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0 {
                return Ok(());
            }
        }
        if self.capable(cap::DAC_READ_SEARCH)
            && (want == MAY_READ || (is_dir && want & MAY_WRITE == 0))
        {
            return Ok(());
        }
        Err(Errno::EACCES)
    }

    /// Owner or CAP_FOWNER (chmod, utimes with explicit times, ...).
    pub fn is_owner(&self, st: &libc::stat) -> bool {
        self.fsuid == st.st_uid || self.capable(cap::FOWNER)
    }
}

/// Capability bits from capability names (as in the OCI spec).
pub fn caps_from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    const NAMES: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let mut bits = 0u64;
    for n in names {
        let n = n.trim_start_matches("CAP_");
        if let Some(i) = NAMES.iter().position(|x| x.eq_ignore_ascii_case(n)) {
            bits |= 1 << i;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(gid: u32, groups: &[u32]) -> Cred {
        Cred {
            fsuid: 1000,
            fsgid: gid,
            groups: groups.to_vec(),
            cap_effective: 0,
            ..Cred::root()
        }
    }

    #[test]
    fn a_set_group_id_directory_passes_its_group_but_not_to_outsiders_programs() {
        let sgid_dir = libc::S_IFDIR | libc::S_ISGID | 0o777;
        let plain_dir = libc::S_IFDIR | 0o777;
        let outsider = user(1000, &[]);
        let member = user(1000, &[1234]);
        let root = Cred::root();
        let dir = libc::S_IFDIR;
        // (creator, directory mode, file mode asked) -> (group, mode):
        // an ordinary directory gives the creator's group and the mode as
        // asked; a set-group-ID one its own group, and an outsider's
        // set-group-ID program loses the bit, while a member's keeps it,
        // and so do a mode without group execute (mandatory locking's old
        // marker), a holder of CAP_FSETID and a directory.
        let cases = [
            (&outsider, plain_dir, 0o2755, (1000, 0o2755)),
            (&outsider, sgid_dir, 0o2755, (1234, 0o755)),
            (&member, sgid_dir, 0o2755, (1234, 0o2755)),
            (&outsider, sgid_dir, 0o2644, (1234, 0o2644)),
            (&root, sgid_dir, 0o2755, (1234, 0o2755)),
            (&outsider, sgid_dir, dir | 0o2755, (1234, dir | 0o2755)),
        ];
        for (i, (cred, dir, mode, want)) in cases.into_iter().enumerate() {
            assert_eq!(cred.new_file_owner(dir, 1234, mode), want, "case {i}");
        }
    }

    #[test]
    fn writes_and_chowns_take_set_id_bits_away_as_linux() {
        let user = user(1000, &[]);
        let root = Cred::root();
        let reg = libc::S_IFREG;
        let (suid, sgid) = (libc::S_ISUID, libc::S_ISGID);
        // (caller, mode) -> bits a write takes away: none from a holder of
        // CAP_FSETID or from anything but a regular file; set-group-ID
        // only with group execute.
        let writes = [
            (&user, reg | 0o6755, suid | sgid),
            (&user, reg | 0o6745, suid),
            (&user, reg | 0o2745, 0),
            (&user, reg | 0o755, 0),
            (&root, reg | 0o6755, 0),
            (&user, libc::S_IFDIR | 0o6755, 0),
        ];
        for (i, (cred, mode, want)) in writes.into_iter().enumerate() {
            assert_eq!(cred.killed_by_write(mode), want, "write case {i}");
        }
        let st = |mode: u32, gid: u32| {
            // SAFETY: a plain C struct; all zeros is a valid value.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            st.st_mode = mode;
            st.st_gid = gid;
            st
        };
        // A chown takes set-user-ID away even from root; set-group-ID
        // without group execute only from a non-member without
        // CAP_FSETID; nothing from a directory.
        let chowns = [
            (&root, st(reg | 0o6755, 0), suid | sgid),
            (&root, st(reg | 0o2745, 5), 0),
            (&user, st(reg | 0o2745, 1000), 0),
            (&user, st(reg | 0o2745, 5), sgid),
            (&user, st(libc::S_IFDIR | 0o6755, 5), 0),
        ];
        for (i, (cred, st, want)) in chowns.into_iter().enumerate() {
            assert_eq!(cred.killed_by_chown(&st), want, "chown case {i}");
        }
    }
}
