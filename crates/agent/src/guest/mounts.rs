//! What the container's init does to its mount namespace before it
//! becomes the workload, computed before the fork (the child only makes
//! system calls on prepared strings).

use std::ffi::CString;
use std::io;

use atoll_agent::proto::{Container, Mount};

use super::sys::cstr;

pub enum Step {
    Mkdir(CString),
    Mount {
        src: CString,
        target: CString,
        fstype: CString,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    Mknod(CString, libc::mode_t, libc::dev_t),
    Symlink(CString, CString),
    /// An empty file to bind a file onto (kept if it exists).
    Touch(CString),
}

fn flags_of(options: &[String]) -> (libc::c_ulong, Vec<String>, bool) {
    let mut flags = 0;
    let mut data = Vec::new();
    let mut bind = false;
    for o in options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "noatime" => flags |= libc::MS_NOATIME,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= libc::MS_REC
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data, bind)
}

/// Every directory from `root` down to `path`, to create one by one.
fn mkdirs(root: &str, path: &str, steps: &mut Vec<Step>) -> io::Result<()> {
    let mut cur = root.trim_end_matches('/').to_string();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mount destination {path} has '..'"),
            ));
        }
        cur.push('/');
        cur.push_str(part);
        steps.push(Step::Mkdir(cstr(&cur)?));
    }
    Ok(())
}

/// The steps that give `rootfs` the container's mounts and devices.
/// `share` is where the container's share is mounted: the sources of
/// bind mounts are paths in it (the host staged them there).
pub fn plan(c: &Container, rootfs: &str, share: &str) -> io::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut dev_done = false;
    for m in &c.mounts {
        add_mount(m, rootfs, share, &mut steps)?;
        if m.destination.trim_end_matches('/') == "/dev" && m.typ == "tmpfs" {
            devices(rootfs, &mut steps)?;
            dev_done = true;
        }
    }
    if !dev_done {
        // No /dev in the spec: the runtime-spec's default devices still
        // exist, as runc makes them.
        add_mount(
            &Mount {
                destination: "/dev".into(),
                typ: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["nosuid".into(), "mode=755".into(), "size=65536k".into()],
            },
            rootfs,
            share,
            &mut steps,
        )?;
        devices(rootfs, &mut steps)?;
    }
    Ok(steps)
}

fn add_mount(m: &Mount, rootfs: &str, share: &str, steps: &mut Vec<Step>) -> io::Result<()> {
    let (flags, data, bind) = flags_of(&m.options);
    if bind || m.typ == "bind" {
        return add_bind(m, flags, rootfs, share, steps);
    }
    let typ = match m.typ.as_str() {
        // Inside the guest only cgroup v2 is mounted.
        "cgroup" | "cgroup2" => "cgroup2",
        t => t,
    };
    mkdirs(rootfs, &m.destination, steps)?;
    let target = format!(
        "{}/{}",
        rootfs.trim_end_matches('/'),
        m.destination.trim_start_matches('/')
    );
    let mut data = data;
    if typ == "devpts" && !data.iter().any(|d| d == "newinstance") {
        data.push("newinstance".into());
    }
    steps.push(Step::Mount {
        src: cstr(if m.source.is_empty() { typ } else { &m.source })?,
        target: cstr(&target)?,
        fstype: cstr(typ)?,
        flags,
        data: if data.is_empty() {
            None
        } else {
            Some(cstr(&data.join(","))?)
        },
    });
    Ok(())
}

/// A bind mount. Host paths do not exist in the guest: the host staged
/// the source in the container's share (vm_pod's staging directory,
/// Kata's shared directory), and `m.source` is its path there. A file is
/// bound onto a file, a directory onto a directory, as runc does; the
/// flags a bind mount cannot take at once (ro, nosuid, nodev, noexec)
/// come with a remount.
fn add_bind(
    m: &Mount,
    flags: libc::c_ulong,
    rootfs: &str,
    share: &str,
    steps: &mut Vec<Step>,
) -> io::Result<()> {
    if m.source.split('/').any(|p| p == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bind mount source {} has '..'", m.source),
        ));
    }
    let src = format!(
        "{}/{}",
        share.trim_end_matches('/'),
        m.source.trim_start_matches('/')
    );
    let meta = std::fs::metadata(&src).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("bind mount of {} on {}: {e}", m.source, m.destination),
        )
    })?;
    let target = format!(
        "{}/{}",
        rootfs.trim_end_matches('/'),
        m.destination.trim_start_matches('/')
    );
    if meta.is_dir() {
        mkdirs(rootfs, &m.destination, steps)?;
    } else {
        let parent = std::path::Path::new(&m.destination)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        mkdirs(rootfs, &parent, steps)?;
        steps.push(Step::Touch(cstr(&target)?));
    }
    steps.push(Step::Mount {
        src: cstr(&src)?,
        target: cstr(&target)?,
        fstype: cstr("none")?,
        flags: libc::MS_BIND | (flags & libc::MS_REC),
        data: None,
    });
    let remount = flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    if remount != 0 {
        steps.push(Step::Mount {
            src: cstr("none")?,
            target: cstr(&target)?,
            fstype: cstr("none")?,
            flags: libc::MS_BIND | libc::MS_REMOUNT | remount,
            data: None,
        });
    }
    Ok(())
}

/// The runtime-spec's default devices in the container's /dev.
fn devices(rootfs: &str, steps: &mut Vec<Step>) -> io::Result<()> {
    let dev = format!("{}/dev", rootfs.trim_end_matches('/'));
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        steps.push(Step::Mknod(
            cstr(&format!("{dev}/{name}"))?,
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        ));
    }
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ] {
        steps.push(Step::Symlink(
            cstr(target)?,
            cstr(&format!("{dev}/{name}"))?,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d, b) = flags_of(&["nosuid".into(), "ro".into(), "mode=755".into()]);
        assert_eq!(f, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(d, vec!["mode=755".to_string()]);
        assert!(!b);
    }

    fn bind(source: &str, destination: &str, options: &[&str]) -> Mount {
        Mount {
            destination: destination.into(),
            typ: "bind".into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn a_bind_mount_comes_from_the_share_file_onto_file_and_ro_by_remount() {
        let share = tempfile::tempdir().unwrap();
        let s = share.path().to_str().unwrap();
        std::fs::create_dir_all(format!("{s}/.atoll-pod/c1=binds/0")).unwrap();
        std::fs::write(format!("{s}/.atoll-pod/c1=binds/1"), "x").unwrap();
        let mut steps = Vec::new();
        add_mount(
            &bind("/.atoll-pod/c1=binds/0", "/dev/shm", &["rbind", "rw"]),
            "/r",
            s,
            &mut steps,
        )
        .unwrap();
        add_mount(
            &bind(
                "/.atoll-pod/c1=binds/1",
                "/etc/resolv.conf",
                &["rbind", "ro"],
            ),
            "/r",
            s,
            &mut steps,
        )
        .unwrap();
        let mounts: Vec<(String, String, libc::c_ulong)> = steps
            .iter()
            .filter_map(|st| match st {
                Step::Mount {
                    src, target, flags, ..
                } => Some((
                    src.to_str().unwrap().to_string(),
                    target.to_str().unwrap().to_string(),
                    *flags,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            mounts,
            vec![
                (
                    format!("{s}/.atoll-pod/c1=binds/0"),
                    "/r/dev/shm".to_string(),
                    libc::MS_BIND | libc::MS_REC
                ),
                (
                    format!("{s}/.atoll-pod/c1=binds/1"),
                    "/r/etc/resolv.conf".to_string(),
                    libc::MS_BIND | libc::MS_REC
                ),
                (
                    "none".to_string(),
                    "/r/etc/resolv.conf".to_string(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY
                ),
            ]
        );
        // The file's mount point is a file, its parents directories.
        assert!(
            steps.iter().any(
                |st| matches!(st, Step::Touch(p) if p.to_str().unwrap() == "/r/etc/resolv.conf")
            )
        );
        assert!(
            !steps.iter().any(
                |st| matches!(st, Step::Mkdir(p) if p.to_str().unwrap() == "/r/etc/resolv.conf")
            )
        );
    }

    #[test]
    fn a_bind_source_missing_from_the_share_or_with_dotdot_is_refused() {
        let share = tempfile::tempdir().unwrap();
        let s = share.path().to_str().unwrap();
        let mut steps = Vec::new();
        let e = add_mount(&bind("/nope", "/x", &["bind"]), "/r", s, &mut steps).unwrap_err();
        assert!(e.to_string().contains("bind mount of /nope on /x"), "{e}");
        let e = add_mount(&bind("/a/../../etc", "/x", &["bind"]), "/r", s, &mut steps).unwrap_err();
        assert!(e.to_string().contains("'..'"), "{e}");
    }

    #[test]
    fn dotdot_destinations_are_refused() {
        let mut s = Vec::new();
        assert!(mkdirs("/r", "/a/../../etc", &mut s).is_err());
    }
}
