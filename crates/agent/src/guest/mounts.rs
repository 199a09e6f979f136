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
pub fn plan(c: &Container, rootfs: &str) -> io::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut dev_done = false;
    for m in &c.mounts {
        add_mount(m, rootfs, &mut steps)?;
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
            &mut steps,
        )?;
        devices(rootfs, &mut steps)?;
    }
    Ok(steps)
}

fn add_mount(m: &Mount, rootfs: &str, steps: &mut Vec<Step>) -> io::Result<()> {
    let (flags, data, bind) = flags_of(&m.options);
    if bind {
        // Host paths do not exist in the guest: a bind mount's source would
        // have to be shared with the guest first.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "bind mount of {} on {}: not supported at the vm level",
                m.source, m.destination
            ),
        ));
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

    #[test]
    fn dotdot_destinations_are_refused() {
        let mut s = Vec::new();
        assert!(mkdirs("/r", "/a/../../etc", &mut s).is_err());
    }
}
