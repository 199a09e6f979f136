//! Removing a container whatever state it is in: after a failed create,
//! for `delete --force`, and when the state directory is damaged.
//!
//! Order matters: kill every process in the cgroup (a cgroup with
//! processes cannot be removed), remove the cgroup, then the directories.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libcgroups::common::CgroupManager;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::effective::default_cgroup_path;
use crate::lifecycle::Runtime;
use crate::meta::Meta;

/// The container's cgroup path and whether it is systemd-managed, from the
/// best source still readable: metadata, effective spec, or the default.
pub fn cgroup_of(rt: &Runtime, id: &str) -> (PathBuf, bool) {
    if let Ok(meta) = Meta::load(&rt.layout, id)
        && !meta.cgroup_path.as_os_str().is_empty()
    {
        return (meta.cgroup_path, meta.systemd_cgroup);
    }
    let eff = rt.layout.atoll_dir(id).join("config.json");
    if let Ok(spec) = oci_spec::runtime::Spec::load(&eff)
        && let Some(p) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone())
    {
        return (p, rt.systemd_cgroup);
    }
    (
        default_cgroup_path(id, rt.systemd_cgroup).into(),
        rt.systemd_cgroup,
    )
}

/// Kills the container's processes and removes its cgroup and state.
/// Best effort: each step runs even if an earlier one failed.
pub fn remove_everything(rt: &Runtime, id: &str) {
    // The init pid from libcontainer's state, if readable.
    let state = rt.layout.container_dir(id).join("state.json");
    if let Ok(text) = std::fs::read_to_string(&state)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(pid) = v.get("pid").and_then(|p| p.as_i64())
        && pid > 1
        && pid_in_container(rt, id, pid as i32)
    {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    // Before the cgroup: a create killed early leaves libcontainer's helper
    // processes behind, possibly not yet in the cgroup.
    kill_orphaned_helpers(rt, id);
    remove_cgroup(id, cgroup_of(rt, id));
    remove_state(rt, id);
}

/// Removes both state directories of a container that libcontainer has
/// deleted (its processes and cgroup are gone).
pub fn remove_state(rt: &Runtime, id: &str) {
    // A vm-level pod's directory (its sandbox's) or its rootfs in one (a
    // member's): unmounted, never removed recursively.
    crate::vm_pod::remove_member(&rt.layout, id);
    crate::vm_pod::teardown(&rt.layout, id);
    // The tc filter on the pod's interface (the tap went with the VMM).
    crate::vm_net::teardown_recorded(&rt.layout.atoll_dir(id));
    let _ = std::fs::remove_dir_all(rt.layout.container_dir(id));
    let _ = std::fs::remove_dir_all(rt.layout.atoll_dir(id));
}

/// libcontainer's helper processes of container `id` under this state
/// root: they keep the argv of the `atoll create|run` that cloned them
/// (no exec) and rename themselves `youki:[1:INTER]`, `youki:[2:INIT]`.
/// When that atoll is killed before it records the init's pid, the init
/// waits for a start forever, and may not even be in the cgroup yet.
pub fn orphaned_helpers(rt: &Runtime, id: &str) -> Vec<i32> {
    let root = rt.layout.root.to_string_lossy().into_owned();
    let is_default = rt.layout.root == std::path::Path::new(crate::layout::DEFAULT_ROOT);
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.starts_with("youki:") {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let has_id = args.iter().skip(1).any(|a| a == id);
        let root_arg = args
            .iter()
            .position(|a| a == "--root")
            .and_then(|i| args.get(i + 1).cloned())
            .or_else(|| {
                args.iter()
                    .find_map(|a| a.strip_prefix("--root=").map(str::to_string))
            });
        let same_root = match root_arg {
            Some(r) => r == root,
            None => is_default,
        };
        if has_id && same_root {
            found.push(pid);
        }
    }
    found
}

/// The last step of `delete --force`, with the cgroup `cgroup` the
/// container had (read before its state went): helpers of a create that
/// was killed (see [`orphaned_helpers`]) may still have been setting the
/// container up while it was deleted, and made its cgroup again after it
/// was removed (or before its state was written at all). Kills them,
/// waits for them to exit, and then empties and removes that cgroup.
/// Only when there were such helpers: they prove the cgroup is this
/// aborted create's.
pub fn sweep_aborted_create(rt: &Runtime, id: &str, cgroup: (PathBuf, bool)) {
    let helpers = orphaned_helpers(rt, id);
    if helpers.is_empty() {
        return;
    }
    for &pid in &helpers {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    for &pid in &helpers {
        crate::dying::wait_exited(pid, Duration::from_secs(2));
    }
    remove_cgroup(id, cgroup);
}

/// Kills what is left in container `id`'s cgroup (path, systemd) and
/// removes it.
fn remove_cgroup(id: &str, (path, systemd): (PathBuf, bool)) {
    if let Ok(m) = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
        cgroup_path: path,
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    }) {
        kill_all(&m);
        let _ = m.remove();
    }
}

fn kill_orphaned_helpers(rt: &Runtime, id: &str) {
    for pid in orphaned_helpers(rt, id) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Only kill a pid from a state file if it is in the container's cgroup:
/// a stale file must never make atoll kill an unrelated process.
fn pid_in_container(rt: &Runtime, id: &str, pid: i32) -> bool {
    let (path, _) = cgroup_of(rt, id);
    let want = path.to_string_lossy().trim_start_matches('/').to_string();
    let name = want.rsplit([':', '/']).next().unwrap_or(id).to_string();
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|c| c.lines().any(|l| l.ends_with(&want) || l.ends_with(&name)))
        .unwrap_or(false)
}

/// Kills whatever is still in the cgroup of a stopped container and waits
/// (bounded) until it is empty, so that it can be removed.
pub fn empty_cgroup(rt: &Runtime, id: &str) {
    let (path, systemd) = cgroup_of(rt, id);
    if let Ok(m) = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
        cgroup_path: path,
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    }) && m.get_all_pids().is_ok_and(|p| !p.is_empty())
    {
        kill_all(&m);
    }
}

fn kill_all(m: &dyn CgroupManager<Error = impl std::error::Error>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // A frozen cgroup holds SIGKILLed tasks; thaw it first.
    let _ = m.freeze(libcgroups::common::FreezerState::Thawed);
    loop {
        let pids = m.get_all_pids().unwrap_or_default();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for p in pids {
            let _ = kill(p, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
