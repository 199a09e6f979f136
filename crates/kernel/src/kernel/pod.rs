//! One sandbox per pod: the containers of a Kubernetes pod that follow its
//! sandbox (pause) container run inside the sandbox's kernel, as gVisor
//! runs them in one Sentry.
//!
//! A pod container is a number (`ThreadGroup::container`, `Mount::ns`):
//! 0 is the sandbox's own container, every later one gets the next. Each
//! has
//! - its own rootfs and mounts: a root mount of its own namespace, over
//!   the detached clone of its rootfs that the runtime opened on the host
//!   and sent with the request (walked directly by the kernel, or, with
//!   direct access off, handed to the pod's gofer as one more root);
//!   directory bind mounts likewise; file bind mounts always through the
//!   gofer, which can reopen a single file's descriptor;
//! - its own process, user, capabilities, rlimits, seccomp profile, from
//!   its own OCI spec (parsed by the sandbox, which links oci-spec);
//! - its own lifecycle: the runtime's proxy for it on the host holds the
//!   control connection; `start` on it spawns the init, signals on it go
//!   to the init, the init's exit is reported on it and ends every other
//!   process of the container; the connection closing (the proxy killed,
//!   the container deleted) ends them too.
//!
//! What the pod shares is the kernel's: one network stack, one IPC
//! namespace (System V objects, POSIX message queues), one hostname.
//! Pid namespaces: see pidns.rs.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use super::boot::{MountSpec, ProcessSpec, SandboxConfig};
use super::signal::SigInfo;
use super::task::default_rlimits;
use super::{Kernel, Pid};
use crate::vfs::hostfs::HostFs;
use crate::vfs::{Dentry, FileOps, Inode};

/// Turns a pod container's OCI spec (JSON) into its configuration.
pub type SpecParser = fn(&serde_json::Value) -> Result<SandboxConfig, String>;

/// A container of the pod other than the sandbox's own.
pub struct PodContainer {
    /// Its OCI id.
    pub id: String,
    pub config: SandboxConfig,
    pub root: Rc<Dentry>,
    /// Its init once started.
    pub init: Option<Pid>,
    /// The control connection of its proxy on the host.
    pub conn: i32,
    /// Whether it joined the sandbox's pid namespace (else it has its
    /// own, numbered like the container).
    pub share_pids: bool,
}

#[derive(Default)]
pub struct Pod {
    pub containers: BTreeMap<u32, PodContainer>,
    next: u32,
    /// Set by the sandbox (which links oci-spec); without it the kernel
    /// takes no pod containers.
    pub parse_spec: Option<SpecParser>,
}

impl Pod {
    /// The number of the container with OCI id `id`.
    pub fn by_id(&self, id: &str) -> Option<u32> {
        self.containers
            .iter()
            .find(|(_, c)| c.id == id)
            .map(|(n, _)| *n)
    }

    /// The container whose proxy holds connection `conn` and has not
    /// started it yet.
    pub fn pending(&self, conn: i32) -> Option<u32> {
        self.containers
            .iter()
            .find(|(_, c)| c.conn == conn && c.init.is_none())
            .map(|(n, _)| *n)
    }

    /// The container whose init is `pid`.
    pub fn of_init(&self, pid: Pid) -> Option<u32> {
        self.containers
            .iter()
            .find(|(_, c)| c.init == Some(pid))
            .map(|(n, _)| *n)
    }

    /// A free container number: the next after the last one given,
    /// wrapping (numbers are pid namespace tags too, see pidns.rs, so a
    /// freed one is not reused at once).
    fn number(&self) -> Option<u32> {
        let span = super::pidns::MAX_NS - 1;
        (0..span)
            .map(|i| (self.next + i) % span + 1)
            .find(|n| !self.containers.contains_key(n))
    }
}

/// What the runtime sends to add a container (with the descriptors).
#[derive(serde::Deserialize, serde::Serialize, Debug, Clone, Default)]
pub struct ContainerRequest {
    /// The container's OCI id.
    pub id: String,
    /// Its OCI spec, as its bundle has it.
    pub spec: serde_json::Value,
    /// Index of its rootfs's descriptor among the ones sent.
    pub root_fd: usize,
    /// Per mount of the spec, in order: the index of its source's
    /// descriptor (bind mounts), or None.
    #[serde(default)]
    pub mount_fds: Vec<Option<usize>>,
    /// It joined the sandbox's pid namespace.
    #[serde(default)]
    pub share_pids: bool,
}

impl Kernel {
    /// Adds a pod container (not started): its configuration, rootfs and
    /// mounts. Returns its number.
    pub fn add_container(
        &mut self,
        r: &ContainerRequest,
        fds: Vec<OwnedFd>,
        conn: i32,
    ) -> Result<u32, String> {
        let parse = self
            .pod
            .parse_spec
            .ok_or("this sandbox takes no pod containers")?;
        if self.pod.by_id(&r.id).is_some() {
            return Err(format!("container {} is already in this pod", r.id));
        }
        let config = parse(&r.spec)?;
        let n = self.pod.number().ok_or("too many containers in this pod")?;
        let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
        let mut take = |i: Option<usize>| i.and_then(|i| fds.get_mut(i).and_then(|f| f.take()));
        let rootfd = take(Some(r.root_fd)).ok_or("no descriptor for the rootfs")?;
        let mut root_inode = self
            .donated_fs(rootfd, false)
            .map_err(|e| format!("rootfs: {e}"))?;
        let mut fstype = "atoll-gofer";
        if config.overlay == super::boot::RootOverlay::Memory && !config.readonly_root {
            // Each container's root gets an overlay of its own.
            root_inode = crate::vfs::overlay::new_overlay(self, root_inode, n)
                .map_err(|e| format!("rootfs overlay: {e}"))?;
            fstype = "overlay";
        }
        let root = self.mounts.borrow_mut().add_root(
            n,
            root_inode,
            fstype,
            "rootfs",
            config.readonly_root,
        );
        let mut binds: BTreeMap<Vec<u8>, OwnedFd> = BTreeMap::new();
        for (m, i) in config.mounts.iter().zip(r.mount_fds.iter()) {
            if let Some(fd) = take(*i) {
                binds.insert(m.abs_dest(), fd);
            }
        }
        let mut bind = |k: &mut Kernel, _m: &MountSpec, dest: &[u8]| -> Option<Rc<dyn Inode>> {
            let fd = binds.remove(dest)?;
            match k.donated_fs(fd, true) {
                Ok(i) => Some(i),
                Err(e) => {
                    k.log.line(&format!(
                        "pod container: bind mount {}: {e}",
                        String::from_utf8_lossy(dest)
                    ));
                    None
                }
            }
        };
        let mounts = config.mounts.clone();
        self.mount_all(&root, &mounts, &mut bind);
        self.pod.next = n;
        self.pod.containers.insert(
            n,
            PodContainer {
                id: r.id.clone(),
                config,
                root,
                init: None,
                conn,
                share_pids: r.share_pids,
            },
        );
        self.log
            .line(&format!("pod: container {} added as {n}", r.id));
        Ok(n)
    }

    /// A file system over a descriptor the runtime opened on the host:
    /// walked by the kernel itself (directories, with direct access on),
    /// else served by the gofer as one more root (which also reopens a
    /// single file's descriptor, as a file bind mount needs).
    fn donated_fs(&mut self, fd: OwnedFd, revalidate: bool) -> Result<Rc<dyn Inode>, String> {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e).to_string();
        if self.config.directfs {
            // SAFETY: fstat of a descriptor we own into a local struct.
            let is_dir = unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                libc::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut st) == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFDIR
            };
            if is_dir {
                let d = atoll_gofer::direct::DirectFiles::new(fd).map_err(errno)?;
                return HostFs::with(Rc::new(d), revalidate)
                    .root()
                    .map_err(|e| e.to_string());
            }
        }
        let (fid, _) = self.gofer.add_root(fd).map_err(errno)?;
        HostFs::at(self.gofer.clone(), fid, revalidate)
            .root()
            .map_err(|e| e.to_string())
    }

    /// Starts pod container `n`'s init with `stdio`.
    pub fn start_container(
        &mut self,
        n: u32,
        stdio: Vec<Rc<dyn FileOps>>,
    ) -> Result<Pid, (String, i32)> {
        let c = self
            .pod
            .containers
            .get(&n)
            .ok_or(("no such container".to_string(), 125))?;
        if c.init.is_some() {
            return Err(("the container has started already".into(), 125));
        }
        let config = &c.config;
        let mut rl = default_rlimits();
        for &(res, cur, max) in &config.rlimits {
            if (res as usize) < rl.len() {
                rl[res as usize] = libc::rlimit {
                    rlim_cur: cur,
                    rlim_max: max,
                };
            }
        }
        let spec = ProcessSpec {
            args: config.args.clone(),
            env: config.env.clone(),
            cwd: config.cwd.clone(),
            cred: config.cred.clone(),
            rlimits: rl,
            container: n,
            root: Some(c.root.clone()),
            umask: config.umask,
            session: None,
            pidns: if c.share_pids { 0 } else { n },
        };
        let pid = self.spawn(&spec, stdio)?;
        if let Some(c) = self.pod.containers.get_mut(&n) {
            c.init = Some(pid);
        }
        Ok(pid)
    }

    /// Processes (thread groups, not zombies) of pod container `n`.
    pub fn container_pids(&self, n: u32) -> Vec<Pid> {
        self.groups
            .values()
            .filter(|g| g.container == n && !g.is_zombie())
            .map(|g| g.tgid)
            .collect()
    }

    /// Pod container `n` is over (its init exited, or its proxy went
    /// away): every process it still has is killed, and its mounts go.
    pub fn remove_container(&mut self, n: u32) {
        let Some(c) = self.pod.containers.remove(&n) else {
            return;
        };
        for p in self.container_pids(n) {
            self.group_exit(p, libc::SIGKILL);
        }
        self.mounts.borrow_mut().drop_ns(n);
        crate::vfs::overlay::release_container(n);
        self.log
            .line(&format!("pod: container {} ({n}) removed", c.id));
    }

    /// A signal from the host for pod container `n`'s processes (`kill
    /// --all`).
    pub fn signal_container(&mut self, n: u32, sig: i32) {
        for p in self.container_pids(n) {
            let _ = self.send_group(p, SigInfo::user(sig, super::signal::SI_USER, 0, 0));
        }
    }
}
