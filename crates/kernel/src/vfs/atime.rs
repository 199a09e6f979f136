//! Whether a read on the host moves a file's access time: Linux's rule
//! (`atime_needs_update` and `relatime_need_update` in fs/inode.c), from
//! the flags of the host mount a file system of the kernel serves.
//!
//! The kernel caches a file's attributes on a mount whose cache it trusts
//! (see `hostfs::Generations`) and must ask the host again once something
//! it did may have changed them. A read may move the access time, so every
//! read used to count as such a change: a `stat` after a directory listing
//! or a program's start (the loader reads and maps its libraries) went to
//! the host again. Under `relatime`, the default mount option, a read
//! moves the access time only while it is not after the modification and
//! change times, or is a day old; once a file was read, its access time is
//! past both and further reads leave it for a day. This module decides
//! that from the attributes the kernel last read, which on a trusted mount
//! are the host's until the kernel itself changes the file (and that
//! change makes them stale anyway).
//!
//! The rule is applied only where the kernel knows the host follows it:
//! the local file systems that keep times in the inode (ext4, xfs, btrfs,
//! tmpfs, overlayfs) and the device of the mount's root (a file system
//! mounted below it on the host may have other flags). Anywhere else
//! every read counts as a change, as before.

/// How reads on a mount move access times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atime {
    /// Never (`noatime`, `nodiratime` for directories, a read-only mount).
    Never,
    /// `relatime`: while the access time is not after the modification
    /// and change times, or is a day old.
    Relative,
    /// At every read (`strictatime`), or the kernel cannot tell.
    Always,
}

/// The rule of one mount: for files and for directories, on `dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtimeRule {
    pub dev: u64,
    pub files: Atime,
    pub dirs: Atime,
}

/// Local file systems whose reads go through Linux's generic access-time
/// update (their `statfs` f_type).
const LOCAL_FS: [i64; 5] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    OVERLAYFS_MAGIC,
];

/// overlayfs's `statfs` f_type.
pub const OVERLAYFS_MAGIC: i64 = 0x794C_7630;

/// Linux's `relatime` threshold: an access time this old moves at the
/// next read whatever the other times say.
const DAY_SECS: i64 = 24 * 60 * 60;
/// Slack on the day: the host's clock at its read and this kernel's at its
/// check differ by the time between them, and Linux compares coarse
/// seconds.
const DAY_SLACK_SECS: i64 = 120;

impl AtimeRule {
    /// Every read counts (what the kernel assumes without knowing more).
    pub const ALWAYS: AtimeRule = AtimeRule {
        dev: u64::MAX,
        files: Atime::Always,
        dirs: Atime::Always,
    };

    /// The rule of the host mount `statfs` describes, whose root is on
    /// device `dev`.
    pub fn of_mount(sf: &libc::statfs, dev: u64) -> AtimeRule {
        if !LOCAL_FS.contains(&{ sf.f_type }) {
            return AtimeRule::ALWAYS;
        }
        let mut sf = *sf;
        let flags = *statfs_flags(&mut sf) as libc::c_ulong;
        let files = if flags & (libc::ST_RDONLY | libc::ST_NOATIME) != 0 {
            Atime::Never
        } else if flags & libc::ST_RELATIME != 0 {
            Atime::Relative
        } else {
            Atime::Always
        };
        let dirs = if flags & libc::ST_NODIRATIME != 0 {
            Atime::Never
        } else {
            files
        };
        AtimeRule { dev, files, dirs }
    }

    /// How reads of a file on device `dev` move its access time.
    pub fn for_file(&self, dev: u64, dir: bool) -> Atime {
        if dev != self.dev {
            return Atime::Always;
        }
        if dir { self.dirs } else { self.files }
    }
}

/// The `f_flags` of a statfs (the `ST_*` mount flags): libc hides it in
/// the padding after `f_frsize`.
pub fn statfs_flags(sf: &mut libc::statfs) -> &mut i64 {
    const _: () = assert!(std::mem::size_of::<libc::statfs>() == 120);
    // SAFETY: statfs is 120 bytes (checked above); bytes 80..88 are the
    // kernel's f_flags, an aligned i64.
    unsafe { &mut *((sf as *mut libc::statfs as *mut u8).add(80) as *mut i64) }
}

/// Whether, by `st` (read from the host), a read leaves the access time
/// under `relatime` (while it is not a day old: [`settled_for`]).
pub fn relatime_settled(st: &libc::stat) -> bool {
    let a = (st.st_atime, st.st_atime_nsec);
    a > (st.st_mtime, st.st_mtime_nsec) && a > (st.st_ctime, st.st_ctime_nsec)
}

/// How much longer, from `now_secs`, an access time of `atime_secs`
/// settled by [`relatime_settled`] stays at a read (None: no longer). A
/// duration, so that reads, which are many, compare it with the kernel's
/// monotonic clock instead of reading the realtime clock each.
pub fn settled_for(atime_secs: i64, now_secs: i64) -> Option<std::time::Duration> {
    let left = atime_secs
        .saturating_add(DAY_SECS - DAY_SLACK_SECS)
        .saturating_sub(now_secs);
    (left > 0).then(|| std::time::Duration::from_secs(left as u64))
}

/// The host's realtime clock, in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statfs(f_type: i64, flags: libc::c_ulong) -> libc::statfs {
        // SAFETY: statfs is plain data.
        let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
        sf.f_type = f_type as _;
        *statfs_flags(&mut sf) = flags as i64;
        sf
    }

    #[test]
    fn the_rule_follows_the_mount_flags() {
        let ext4 = 0xEF53;
        let r = AtimeRule::of_mount(&statfs(ext4, libc::ST_RELATIME), 7);
        assert_eq!((r.files, r.dirs), (Atime::Relative, Atime::Relative));
        let r = AtimeRule::of_mount(&statfs(ext4, 0), 7);
        assert_eq!(
            (r.files, r.dirs),
            (Atime::Always, Atime::Always),
            "strictatime"
        );
        let r = AtimeRule::of_mount(&statfs(ext4, libc::ST_NOATIME | libc::ST_RELATIME), 7);
        assert_eq!((r.files, r.dirs), (Atime::Never, Atime::Never));
        let r = AtimeRule::of_mount(&statfs(ext4, libc::ST_RDONLY), 7);
        assert_eq!((r.files, r.dirs), (Atime::Never, Atime::Never));
        let r = AtimeRule::of_mount(&statfs(ext4, libc::ST_NODIRATIME | libc::ST_RELATIME), 7);
        assert_eq!((r.files, r.dirs), (Atime::Relative, Atime::Never));
        // NFS (0x6969) keeps times on its server: every read counts.
        let r = AtimeRule::of_mount(&statfs(0x6969, libc::ST_NOATIME), 7);
        assert_eq!(r, AtimeRule::ALWAYS);
        // Another device than the mount's root: every read counts.
        let r = AtimeRule::of_mount(&statfs(ext4, libc::ST_NOATIME), 7);
        assert_eq!(r.for_file(7, false), Atime::Never);
        assert_eq!(r.for_file(8, false), Atime::Always);
        assert_eq!(r.for_file(8, true), Atime::Always);
    }

    #[test]
    fn relatime_as_linux() {
        // SAFETY: stat is plain data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let set = |st: &mut libc::stat, a: (i64, i64), m: (i64, i64), c: (i64, i64)| {
            (st.st_atime, st.st_atime_nsec) = a;
            (st.st_mtime, st.st_mtime_nsec) = m;
            (st.st_ctime, st.st_ctime_nsec) = c;
        };
        set(&mut st, (100, 1), (100, 0), (100, 0));
        assert!(relatime_settled(&st), "after both, by a nanosecond");
        set(&mut st, (100, 0), (100, 0), (50, 0));
        assert!(!relatime_settled(&st), "equal to the modification time");
        set(&mut st, (100, 0), (50, 0), (100, 5));
        assert!(!relatime_settled(&st), "before the change time");
        let day = DAY_SECS - DAY_SLACK_SECS;
        assert_eq!(
            settled_for(1000, 1000),
            Some(std::time::Duration::from_secs(day as u64))
        );
        assert_eq!(
            settled_for(1000, 1000 + day - 1),
            Some(std::time::Duration::from_secs(1))
        );
        assert_eq!(settled_for(1000, 1000 + day), None);
        assert_eq!(settled_for(1000, 1000 + DAY_SECS), None);
    }
}
