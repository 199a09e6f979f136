//! The container lifecycle: create, start, kill, delete, pause, resume,
//! update, on libcontainer, with atoll's checks in front so that every
//! refusal is one clear sentence and every failure leaves nothing behind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use crate::cleanup;
use crate::config::Config;
use crate::effective;
use crate::executor::{AtollExecutor, SandboxEntry, SandboxLaunch, SandboxOptions};
use crate::id;
use crate::layout::Layout;
use crate::level::{self, Isolation, LevelSource};
use crate::meta::Meta;
use crate::spec;
use crate::status::{self, State};

/// How long kill and delete wait for a sandbox's counters.
const STATS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long delete waits for a killed init to finish exiting.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Hooks the binary plugs in: the application kernel entry, the tenant
/// policy and the audit trail (kept out of this crate so each component
/// stays its own crate).
#[derive(Clone, Default)]
pub struct Plugins {
    pub sandbox_entry: Option<SandboxEntry>,
    /// The vm level's VMM, and its check of a guest kernel image.
    pub vm_entry: Option<crate::vm_level::VmEntry>,
    pub vm_kernel_check: Option<crate::vm_level::KernelCheck>,
    pub admission: Option<std::sync::Arc<dyn Admission>>,
    pub audit: Option<std::sync::Arc<dyn Audit>>,
}

/// Decides whether a container may be created, and may raise its level;
/// and whether a process may be exec'd into one.
pub trait Admission: Send + Sync {
    /// Returns the level to use (possibly raised) or a refusal message.
    /// Called before anything of the container is made.
    fn admit_create(&self, req: &AdmissionRequest<'_>) -> Result<AdmissionDecision>;

    /// Returns an error to refuse the exec. Called before the process is
    /// started.
    fn admit_exec(&self, _req: &ExecAdmissionRequest<'_>) -> Result<()> {
        Ok(())
    }
}

pub struct AdmissionRequest<'a> {
    pub id: &'a str,
    /// The bundle's spec as written (root.path made absolute).
    pub spec: &'a Spec,
    /// The absolute bundle directory (relative bind sources are relative to it).
    pub bundle: &'a Path,
    pub level: Isolation,
    pub level_source: LevelSource,
    /// The network asked for by `--network` or the annotation (not the
    /// node's default).
    pub network: Option<&'a str>,
    pub runtime: &'a Runtime,
}

pub struct AdmissionDecision {
    pub tenant: String,
    pub level: Isolation,
    pub level_source: LevelSource,
    /// Held until create has finished (made the container or cleaned up):
    /// e.g. a lock that keeps a tenant's concurrent creates from all
    /// passing a container count.
    pub hold: Option<Box<dyn std::any::Any + Send>>,
    /// The tenant's containers run on the sandbox's network stack
    /// (`--network sandbox`) with these egress rules.
    pub sandbox_network: Option<crate::executor::EgressOptions>,
}

/// A process about to be exec'd into a container.
pub struct ExecAdmissionRequest<'a> {
    pub id: &'a str,
    pub meta: &'a Meta,
    /// The container's spec: the bundle's as created, with its process.
    pub spec: &'a Spec,
    /// The exec'd process, the CLI flags merged in as the level will run it.
    pub process: &'a oci_spec::runtime::Process,
    /// `--user`, as `uid[:gid]`.
    pub user: Option<String>,
    pub runtime: &'a Runtime,
}

/// Lifecycle operations reported to the audit plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Start,
    Exec,
    Kill,
    Delete,
}

/// One lifecycle operation on a container, after it was attempted.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub op: Operation,
    pub id: &'a str,
    /// The container's tenant, level and where the level came from, when known.
    pub tenant: Option<&'a str>,
    pub level: Option<Isolation>,
    pub level_source: Option<LevelSource>,
    /// What was done, for humans: the signal, the exec'd command.
    pub detail: Option<String>,
    /// Why it failed (one line), if it did.
    pub error: Option<String>,
    /// At delete of a userspace container: its kernel's syscall counters
    /// (the control socket's `stats` reply), read before the state went.
    pub sandbox_stats: Option<serde_json::Value>,
}

/// Receives a report of every create, start, exec, kill and delete of a
/// container atoll knows (refusals are the admission plugin's to record).
pub trait Audit: Send + Sync {
    fn report(&self, report: &Report<'_>);
}

/// One runtime instance: the state root and node configuration.
#[derive(Clone)]
pub struct Runtime {
    pub layout: Layout,
    pub systemd_cgroup: bool,
    pub config: Config,
    pub plugins: Plugins,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// `--isolation` flag, if given.
    pub isolation: Option<Isolation>,
    /// false for a foreground `run`.
    pub detach: bool,
    pub sandbox: SandboxOptions,
}

/// A created container, as `create` leaves it.
pub struct Created {
    pub pid: Pid,
    pub meta: Meta,
}

/// Joins an error chain into one line: "outer: cause: cause".
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        let s = s.trim();
        if s.is_empty() || parts.last().is_some_and(|p| p.contains(s)) {
            continue;
        }
        parts.push(s.replace('\n', " "));
    }
    parts.join(": ")
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>, systemd_cgroup: bool, config: Config) -> Runtime {
        Runtime {
            layout: Layout::new(root),
            systemd_cgroup,
            config,
            plugins: Plugins::default(),
        }
    }

    fn builder(&self, id: &str) -> Result<ContainerBuilder> {
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(self.layout.root.clone())
            .map_err(|e| anyhow!("state root {}: {e}", self.layout.root.display()))
    }

    /// Loads a container, refreshing its status from the process table.
    pub fn load(&self, id: &str) -> Result<(Container, Option<Meta>)> {
        id::validate(id)?;
        let dir = self.layout.container_dir(id);
        if !dir.exists() {
            if self.layout.atoll_dir(id).exists() {
                bail!("container {id} was not fully created (use delete --force to remove it)");
            }
            bail!("container {id} does not exist");
        }
        // libcontainer rewrites state.json in place (no rename): a reader
        // racing a create or start can see it empty or cut short for a
        // moment. Read again briefly before calling it unreadable.
        let mut tries = 0;
        let mut c = loop {
            match Container::load(dir.clone()) {
                Ok(c) => break c,
                Err(_) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => bail!("container {id}: state is unreadable: {e}"),
            }
        };
        c.refresh_status()
            .map_err(|e| anyhow!("container {id}: cannot read status: {e}"))?;
        let meta = Meta::load(&self.layout, id).ok();
        Ok((c, meta))
    }

    /// Picks the level, applies policy, writes the effective spec and runs
    /// libcontainer's create. On any failure, removes everything it made.
    pub fn create(&self, opts: &CreateOptions) -> Result<Created> {
        id::validate(&opts.id)?;
        if self.layout.exists(&opts.id) {
            bail!("container {} already exists", opts.id);
        }
        let bundle = spec::load_bundle(&opts.bundle)?;
        let annotation = bundle
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(level::ISOLATION_ANNOTATION))
            .map(String::as_str);
        let (mut level, mut source) =
            level::select(opts.isolation, annotation, self.config.isolation)?;
        self.platform(opts, &bundle.spec)?;
        let mut tenant = "default".to_string();
        let mut _hold = None;
        let forced: CreateOptions;
        let mut opts = opts;
        if let Some(adm) = &self.plugins.admission {
            let asked = opts.sandbox.network.as_deref().or_else(|| {
                bundle
                    .spec
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(level::NETWORK_ANNOTATION))
                    .map(String::as_str)
            });
            let d = adm.admit_create(&AdmissionRequest {
                id: &opts.id,
                spec: &bundle.spec,
                bundle: &bundle.path,
                level,
                level_source: source,
                network: asked,
                runtime: self,
            })?;
            tenant = d.tenant;
            level = d.level;
            source = d.level_source;
            _hold = d.hold;
            if let Some(mut egress) = d.sandbox_network {
                // The tenant's network policy: the sandbox's stack, which
                // enforces its rules (admission refused any other ask).
                egress.node = crate::netns::node_addresses();
                let mut o = opts.clone();
                o.sandbox.network = Some("sandbox".into());
                o.sandbox.egress = Some(egress);
                forced = o;
                opts = &forced;
            }
        }
        let pod = self.pod_sandbox(&opts.id, &bundle.spec, level, &tenant);
        let made = pod.and_then(|pod| {
            self.create_admitted(opts, &bundle, level, source, tenant.clone(), pod)
        });
        self.report(Report {
            op: Operation::Create,
            id: &opts.id,
            tenant: Some(&tenant),
            level: Some(level),
            level_source: Some(source),
            detail: None,
            error: made.as_ref().err().map(one_line),
            sandbox_stats: None,
        });
        made
    }

    /// For a pod's container (CRI annotations): its sandbox container must
    /// exist here with the same tenant and level. At the userspace level
    /// the container joins the sandbox's kernel: its id is returned.
    fn pod_sandbox(
        &self,
        id: &str,
        spec: &Spec,
        level: Isolation,
        tenant: &str,
    ) -> Result<Option<String>> {
        let crate::pod::PodRole::Member(sid) = crate::pod::role(spec) else {
            return Ok(None);
        };
        let Ok(sandbox) = Meta::load(&self.layout, &sid) else {
            if level != Isolation::Native {
                bail!(
                    "container {id}: its pod's sandbox container {sid} does not exist in {}",
                    self.layout.root.display()
                );
            }
            // A native container whose sandbox another runtime runs.
            return Ok(None);
        };
        if sandbox.tenant != tenant || sandbox.level != level {
            bail!(
                "container {id} (tenant {tenant}, level {level}) cannot join pod sandbox {sid} (tenant {}, level {}): a pod's containers share one tenant and level",
                sandbox.tenant,
                sandbox.level
            );
        }
        if level == Isolation::Vm && sandbox.pod_sandbox.is_some() {
            bail!(
                "container {id}: {sid} is itself a member of pod sandbox {}, not a pod's sandbox container",
                sandbox.pod_sandbox.unwrap_or_default()
            );
        }
        Ok((level != Isolation::Native).then_some(sid))
    }

    /// The userspace platform create asks for (see `level::select_platform`).
    fn platform(
        &self,
        opts: &CreateOptions,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<String>> {
        let annotation = annotation(spec, level::PLATFORM_ANNOTATION);
        level::select_platform(
            opts.sandbox.platform.as_deref(),
            annotation,
            self.config.platform.as_deref(),
        )
    }

    /// The network the container asks for itself (`--network`, the
    /// annotation), checked at every level.
    fn asked_network(
        &self,
        opts: &CreateOptions,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<String>> {
        level::asked_network(
            opts.sandbox.network.as_deref(),
            annotation(spec, level::NETWORK_ANNOTATION),
        )
    }

    /// Who serves the userspace level's AF_INET sockets (see
    /// `level::select_network`: the sandbox's stack unless the container
    /// shares the node's network namespace).
    fn network(&self, opts: &CreateOptions, spec: &oci_spec::runtime::Spec) -> Result<String> {
        level::select_network(
            self.asked_network(opts, spec)?,
            crate::netns::spec_has_own_netns(spec),
            self.config.network.as_deref(),
        )
    }

    /// Where rootfs writes go, as create asks (see `level::select_overlay`).
    fn overlay(
        &self,
        opts: &CreateOptions,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<String>> {
        let annotation = annotation(spec, level::OVERLAY_ANNOTATION);
        level::select_overlay(
            opts.sandbox.overlay.as_deref(),
            annotation,
            self.config.overlay.as_deref(),
        )
    }

    /// The rest of create, once the level and tenant are settled.
    fn create_admitted(
        &self,
        opts: &CreateOptions,
        bundle: &spec::Bundle,
        level: Isolation,
        source: LevelSource,
        tenant: String,
        pod: Option<String>,
    ) -> Result<Created> {
        if level == Isolation::Userspace && self.plugins.sandbox_entry.is_none() {
            bail!("isolation level userspace is not available in this build");
        }
        if level == Isolation::Vm && self.plugins.vm_entry.is_none() {
            bail!("isolation level vm is not available in this build");
        }
        if level == Isolation::Vm && pod.is_none() {
            // Before any state exists: a host that cannot boot the guest
            // is refused with the reason, and nothing is left to clean.
            // (A pod's member boots nothing: it runs in its sandbox's VM.)
            crate::vm_level::preflight(
                &bundle.spec,
                &crate::vm_level::assets_dir(self.config.vm_assets.as_deref()),
                self.plugins.vm_kernel_check,
            )?;
            if crate::pod::role(&bundle.spec) != crate::pod::PodRole::Sandbox {
                crate::vm_pod::refuse_binds(&bundle.spec)
                    .with_context(|| format!("container {}", opts.id))?;
            }
        }
        if level != Isolation::Userspace
            && self.asked_network(opts, &bundle.spec)?.as_deref() == Some("sandbox")
        {
            bail!(
                "network sandbox needs the userspace level (the other levels use the host's or the guest's stack)"
            );
        }
        if level != Isolation::Userspace
            && self.overlay(opts, &bundle.spec)?.as_deref() == Some("root:memory")
        {
            bail!(
                "overlay root:memory needs the userspace level (the other levels write the bundle's rootfs)"
            );
        }
        if opts.console_socket.is_some() && !terminal(&bundle.spec) {
            bail!("--console-socket given but process.terminal is false in config.json");
        }
        if opts.console_socket.is_none() && terminal(&bundle.spec) && opts.detach {
            bail!("process.terminal is true in config.json: --console-socket is required");
        }

        let pid_file_existed = opts.pid_file.as_ref().is_some_and(|p| p.exists());
        let made = self.create_inner(opts, bundle, level, source, tenant, pod);
        if made.is_err() {
            cleanup::remove_everything(self, &opts.id);
            if let (Some(p), false) = (&opts.pid_file, pid_file_existed) {
                let _ = std::fs::remove_file(p);
            }
        }
        made
    }

    fn create_inner(
        &self,
        opts: &CreateOptions,
        bundle: &spec::Bundle,
        level: Isolation,
        level_source: LevelSource,
        tenant: String,
        pod: Option<String>,
    ) -> Result<Created> {
        let id = &opts.id;
        let mut eff =
            effective::effective_spec(&bundle.spec, id, &bundle.path, level, self.systemd_cgroup);
        if level == Isolation::Userspace
            && pod.is_none()
            && self.network(opts, &bundle.spec)? == "sandbox"
        {
            crate::userspace_spec::add_init_caps(&mut eff, crate::userspace_spec::LINK_CAPS);
        }
        let atoll_dir = self.layout.atoll_dir(id);
        std::fs::create_dir_all(self.layout.root.join(".atoll"))
            .with_context(|| format!("state root {}", self.layout.root.display()))?;
        std::fs::create_dir(&atoll_dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!("container {id} already exists"),
            _ => anyhow!("{}: {e}", atoll_dir.display()),
        })?;
        if level == Isolation::Vm {
            if pod.is_some() {
                // The init is only the member's proxy on the host: it
                // needs no capabilities.
                crate::userspace_spec::init_as_root(&mut eff, &[]);
            } else if crate::pod::role(&bundle.spec) == crate::pod::PodRole::Sandbox {
                // The pod's VM: members' rootfs appear in its share.
                let m = crate::vm_pod::prepare(&self.layout, id)
                    .with_context(|| format!("container {id}"))?;
                let mut mounts = eff.mounts().clone().unwrap_or_default();
                mounts.push(m);
                eff.set_mounts(Some(mounts));
            }
        }
        let confinement = self.take_seccomp(id, &mut eff)?;
        eff.save(atoll_dir.join("config.json"))
            .map_err(|e| anyhow!("writing effective spec: {e}"))?;
        let meta = Meta {
            id: id.clone(),
            bundle: bundle.path.clone(),
            rootfs: bundle.rootfs.clone(),
            level,
            level_source,
            tenant,
            created: chrono::Utc::now(),
            owner_uid: nix::unistd::geteuid().as_raw(),
            annotations: bundle.spec.annotations().clone().unwrap_or_default(),
            cgroup_path: eff
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().clone())
                .unwrap_or_default(),
            systemd_cgroup: self.systemd_cgroup,
            process: bundle.spec.process().clone(),
            sandbox_log: (level != Isolation::Native).then(|| {
                opts.sandbox
                    .log_file
                    .clone()
                    .unwrap_or_else(|| atoll_dir.join("sandbox.log"))
            }),
            pod_sandbox: pod.clone(),
        };
        meta.save(&self.layout)?;

        let mut executor = AtollExecutor::native(!opts.no_new_keyring);
        executor.confinement = confinement;
        let mut preserve_fds = opts.preserve_fds;
        // Kept open until build has forked the init (which inherits them).
        let mut _sandbox_fds: Vec<std::os::fd::OwnedFd> = Vec::new();
        if let Some(sid) = pod.as_ref().filter(|_| level == Isolation::Vm) {
            let slot = 3 + opts.preserve_fds;
            let (conn, req) = self.vm_member(id, sid, bundle)?;
            crate::fds::place(&conn, slot).context("pod connection descriptor")?;
            preserve_fds += 1;
            _sandbox_fds.push(std::os::fd::OwnedFd::from(conn));
            executor.level = Isolation::Vm;
            executor.vm_member = Some((slot, req));
        } else if let Some(sid) = &pod {
            // A pod's container: it joins the sandbox's kernel, its init
            // is its proxy (pod.rs); the log slot keeps the proxy's errors.
            let log_path = meta
                .sandbox_log
                .clone()
                .unwrap_or_else(|| atoll_dir.join("sandbox.log"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("sandbox log {}", log_path.display()))?;
            // The pod's kernel reads the container's overlay from its
            // spec: the one create resolved (flag, annotation, config).
            let overlay = self.overlay(opts, &bundle.spec)?;
            let mut spec = bundle.spec.clone();
            if let Some(o) = &overlay {
                let mut a = spec.annotations().clone().unwrap_or_default();
                a.insert(level::OVERLAY_ANNOTATION.to_string(), o.clone());
                spec.set_annotations(Some(a));
            }
            let donated = crate::pod::donate(
                &spec,
                &bundle.path,
                &bundle.rootfs,
                overlay.as_deref() == Some("root:memory"),
            )
            .with_context(|| format!("container {id}"))?;
            let conn = crate::pod::join(&self.layout.control_socket(sid), id, &spec, &donated)
                .with_context(|| format!("container {id}: joining pod sandbox {sid}"))?;
            drop(donated);
            let slot = 3 + opts.preserve_fds;
            crate::fds::place(&log, slot).context("sandbox log descriptor")?;
            crate::fds::place(&conn, slot + 1).context("pod connection descriptor")?;
            preserve_fds += crate::fds::SANDBOX_FDS;
            _sandbox_fds.push(log.into());
            _sandbox_fds.push(std::os::fd::OwnedFd::from(conn));
            executor.level = Isolation::Userspace;
            executor.pod_member = Some(slot + 1);
        } else if level == Isolation::Userspace {
            let mut options = opts.sandbox.clone();
            options.platform = self.platform(opts, &bundle.spec)?;
            options.network = Some(self.network(opts, &bundle.spec)?);
            options.overlay = self.overlay(opts, &bundle.spec)?;
            options.runtime_netns = crate::netns::identity("/proc/self/ns/net");
            let log_path = meta
                .sandbox_log
                .clone()
                .unwrap_or_else(|| atoll_dir.join("sandbox.log"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("sandbox log {}", log_path.display()))?;
            // Long state roots + 64-char ids exceed sun_path (Docker, CRI).
            let control =
                crate::unixsock::bind(&self.layout.control_socket(id)).context("control socket")?;
            control.set_nonblocking(true)?;
            let slot = 3 + opts.preserve_fds;
            crate::fds::place(&log, slot).context("sandbox log descriptor")?;
            crate::fds::place(&control, slot + 1).context("control socket descriptor")?;
            options.log_fd = Some(slot);
            options.control_fd = Some(slot + 1);
            options.preserved_fds = opts.preserve_fds;
            preserve_fds += crate::fds::SANDBOX_FDS;
            _sandbox_fds.push(log.into());
            _sandbox_fds.push(std::os::fd::OwnedFd::from(control));
            executor.level = Isolation::Userspace;
            executor.sandbox = self.plugins.sandbox_entry.map(|entry| {
                (
                    entry,
                    SandboxLaunch {
                        spec: bundle.spec.clone(),
                        id: id.clone(),
                        control_socket: self.layout.control_socket(id),
                        options,
                    },
                )
            });
        }

        if level == Isolation::Vm && pod.is_none() {
            let slot = 3 + opts.preserve_fds;
            let mut launch = self.vm_launch(
                id,
                &bundle.spec,
                &atoll_dir,
                meta.sandbox_log.as_deref(),
                slot,
                &mut _sandbox_fds,
            )?;
            // The guest has no host paths: a sandbox's bind mounts reach
            // it through its pod directory (vm_pod.rs).
            if crate::pod::role(&bundle.spec) == crate::pod::PodRole::Sandbox {
                crate::vm_pod::stage_binds(&self.layout, id, id, &bundle.path, &mut launch.spec)
                    .with_context(|| format!("container {id}"))?;
            }
            preserve_fds += crate::vm_level::VM_FDS + launch.net.is_some() as i32;
            executor.level = Isolation::Vm;
            executor.vm = self.plugins.vm_entry.map(|entry| (entry, launch));
        }

        let mut b = self
            .builder(id)?
            .with_executor(executor)
            .with_console_socket(opts.console_socket.as_ref())
            .with_preserved_fds(preserve_fds);
        if let Some(p) = &opts.pid_file {
            b = b
                .with_pid_file(Some(p))
                .map_err(|e| anyhow!("pid file {}: {e}", p.display()))?;
        }
        let container = b
            .as_init(&atoll_dir)
            .with_systemd(self.systemd_cgroup)
            .with_detach(opts.detach)
            .with_no_pivot(opts.no_pivot)
            .build()
            .map_err(|e| anyhow!("{}", describe_libcontainer_error(&e)))?;
        let pid = container
            .pid()
            .ok_or_else(|| anyhow!("container {id} has no init process after create"))?;
        if crate::netns::creates_netns(&bundle.spec) {
            crate::netns::loopback_up(pid.as_raw())
                .with_context(|| format!("container {id}: loopback interface"))?;
        }
        Ok(Created { pid, meta })
    }

    /// A pod member at the vm level (vm_pod.rs): its rootfs into the
    /// pod's share, a connection to the pod's guest agent (the sandbox
    /// must be running, its guest up), and the request its proxy sends at
    /// start.
    fn vm_member(
        &self,
        id: &str,
        sid: &str,
        bundle: &spec::Bundle,
    ) -> Result<(std::os::unix::net::UnixStream, atoll_agent::proto::Request)> {
        let running = self
            .load(sid)
            .map(|(c, _)| c.status())
            .map_err(|e| anyhow!("container {id}: its pod's sandbox container: {e:#}"))?;
        if running != ContainerStatus::Running {
            bail!(
                "container {id}: its pod's sandbox container {sid} is not running (it is {}): its VM boots at start",
                status::status_str(running)
            );
        }
        let process = bundle
            .spec
            .process()
            .clone()
            .ok_or_else(|| anyhow!("container {id}: config.json has no process"))?;
        let mut spec = bundle.spec.clone();
        crate::vm_pod::stage_binds(&self.layout, sid, id, &bundle.path, &mut spec)
            .with_context(|| format!("container {id}"))?;
        let mut container = crate::vm_level::agent_container(id, &spec);
        container.join_namespaces = crate::vm_level::joined_namespaces(&spec);
        container.join_of = Some(sid.to_string());
        // The VM is the sandbox's size; the member's own limit is held by
        // a cgroup of its own in the guest.
        container.memory_limit = crate::vm_level::memory_limit(&bundle.spec);
        container.rootfs_path = crate::vm_pod::add_member(&self.layout, sid, id, &bundle.rootfs)
            .with_context(|| format!("container {id}"))?;
        let conn = self
            .ready_agent(sid)
            .with_context(|| format!("container {id}: its pod's VM"))?;
        let req = atoll_agent::proto::Request::Run {
            container: Box::new(container),
            process: Box::new(atoll_agent::proto::Process {
                seccomp: Some(crate::vm_level::guest_seccomp(
                    &self.layout,
                    id,
                    &bundle.spec,
                )?),
                ..crate::vm_level::agent_process(&process)
            }),
            init: true,
        };
        Ok((conn, req))
    }

    /// Opens what a vm-level init inherits (log, vsock socket, /dev/kvm,
    /// kernel, initramfs), places it at `slot..slot+VM_FDS` and keeps it
    /// open in `keep` until the init has been forked.
    fn vm_launch(
        &self,
        id: &str,
        spec: &Spec,
        atoll_dir: &Path,
        log: Option<&Path>,
        slot: i32,
        keep: &mut Vec<std::os::fd::OwnedFd>,
    ) -> Result<crate::vm_level::VmLaunch> {
        use crate::vm_level;
        let mem_mib = vm_level::guest_memory(spec)?;
        let assets = vm_level::assets_dir(self.config.vm_assets.as_deref());
        let r = vm_level::resources(&assets, self.plugins.vm_kernel_check)?;
        let log_path = log
            .map(Path::to_path_buf)
            .unwrap_or_else(|| atoll_dir.join("sandbox.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("VMM log {}", log_path.display()))?;
        let vsock = crate::unixsock::bind(&self.layout.vsock_socket(id)).context("vsock socket")?;
        let fds: [std::os::fd::OwnedFd; 5] = [
            log.into(),
            vsock.into(),
            r.kvm.into(),
            r.kernel.into(),
            r.initrd.into(),
        ];
        for (i, f) in fds.iter().enumerate() {
            crate::fds::place(f, slot + i as i32).context("VMM descriptors")?;
        }
        keep.extend(fds);
        // The pod's network: the tap and the tc redirect are made in its
        // namespace now, recorded first thing so that a failure from here
        // on (remove_state) undoes them.
        let net = match crate::vm_net::prepare(spec)? {
            Some(p) => {
                if let Err(e) = crate::vm_net::save(atoll_dir, &p.record) {
                    crate::vm_net::teardown(&p.record);
                    return Err(e);
                }
                let tap_slot = slot + vm_level::VM_FDS;
                let tap: std::os::fd::OwnedFd = p.tap.into();
                crate::fds::place(&tap, tap_slot).context("the tap's descriptor")?;
                keep.push(tap);
                Some((tap_slot, p.guest))
            }
            None => None,
        };
        Ok(vm_level::VmLaunch {
            spec: spec.clone(),
            id: id.to_string(),
            mem_mib,
            vcpus: vm_level::guest_vcpus(spec),
            log_fd: slot,
            vsock_fd: slot + 1,
            kvm_fd: slot + 2,
            kernel_fd: slot + 3,
            initrd_fd: slot + 4,
            console: tracing::enabled!(tracing::Level::DEBUG),
            seccomp: vm_level::guest_seccomp(&self.layout, id, spec)?,
            net,
        })
    }

    /// The native level's seccomp filter, which atoll's executor loads
    /// instead of libcontainer (compiled once per profile; see
    /// seccomp_filter.rs): taken out of the spec libcontainer gets, kept
    /// for exec, and the process's capabilities lent what loading it
    /// without no_new_privs needs. A profile with a notifier stays with
    /// libcontainer.
    fn take_seccomp(
        &self,
        id: &str,
        eff: &mut Spec,
    ) -> Result<Option<crate::confinement::Confinement>> {
        let Some(mut linux) = eff.linux().clone() else {
            return Ok(None);
        };
        let Some(profile) = linux.seccomp().clone() else {
            return Ok(None);
        };
        if !crate::seccomp_filter::loadable(&profile) {
            return Ok(None);
        }
        let filter = crate::seccomp_filter::cached_with_copy(
            &self.layout.seccomp_cache(),
            &profile,
            &self.layout.seccomp_filter(id),
        )
        .with_context(|| format!("container {id}: seccomp profile"))?;
        let process = eff.process().clone().unwrap_or_default();
        let (process, confinement) = crate::confinement::confine(&process, Some(filter));
        linux.set_seccomp(None);
        eff.set_linux(Some(linux));
        eff.set_process(Some(process));
        Ok(confinement)
    }

    /// Tells the audit plugin about an operation on a container that
    /// exists (`meta` is its metadata, if readable).
    fn report_op<T>(
        &self,
        op: Operation,
        id: &str,
        meta: Option<&Meta>,
        detail: Option<String>,
        result: &Result<T>,
        sandbox_stats: Option<serde_json::Value>,
    ) {
        self.report(Report {
            op,
            id,
            tenant: meta.map(|m| m.tenant.as_str()),
            level: meta.map(|m| m.level),
            level_source: meta.map(|m| m.level_source),
            detail,
            error: result.as_ref().err().map(one_line),
            sandbox_stats,
        });
    }

    pub(crate) fn report(&self, report: Report<'_>) {
        if let Some(audit) = &self.plugins.audit {
            audit.report(&report);
        }
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let (mut c, meta) = self.load(id)?;
        let r = Self::start_loaded(id, &mut c);
        self.report_op(Operation::Start, id, meta.as_ref(), None, &r, None);
        r
    }

    fn start_loaded(id: &str, c: &mut Container) -> Result<()> {
        match c.status() {
            ContainerStatus::Created => {}
            ContainerStatus::Stopped => bail!("cannot start container {id}: it has stopped"),
            s => bail!(
                "cannot start container {id}: it is {} (only a created container can be started)",
                status::status_str(s)
            ),
        }
        c.start()
            .map_err(|e| anyhow!("starting container {id}: {e}"))
    }

    pub fn state(&self, id: &str) -> Result<State> {
        let (c, meta) = self.load(id)?;
        Ok(self.truthful(id, &c, state_of(&c, meta.as_ref())))
    }

    /// libcontainer says "stopped" when it never recorded the init's pid
    /// (the creating atoll was killed in between), though that init may
    /// live on, in the container's cgroup or about to join it, waiting for
    /// a start that never comes. A container whose init pid was never
    /// recorded never ran, so it is not "stopped" either. Report both as
    /// "creating":
    /// `delete` kills those helpers (cleanup.rs).
    fn truthful(&self, id: &str, c: &Container, mut st: State) -> State {
        if st.status == "stopped"
            && (c.pid().is_none()
                || self.pids(id).is_ok_and(|p| !p.is_empty())
                || !crate::cleanup::orphaned_helpers(self, id).is_empty())
        {
            st.status = "creating".to_string();
        }
        st
    }

    pub fn list(&self) -> Result<Vec<State>> {
        let mut out = Vec::new();
        let ids = self
            .layout
            .ids()
            .with_context(|| format!("state root {}", self.layout.root.display()))?;
        for id in ids {
            if let Ok((c, meta)) = self.load(&id) {
                out.push(self.truthful(&id, &c, state_of(&c, meta.as_ref())));
            }
        }
        Ok(out)
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let (mut c, meta) = self.load(id)?;
        let r = self.kill_loaded(id, &mut c, meta.as_ref(), signal, all);
        let detail = format!(
            "signal {signal}{}",
            if all { " to all processes" } else { "" }
        );
        self.report_op(Operation::Kill, id, meta.as_ref(), Some(detail), &r, None);
        r
    }

    fn kill_loaded(
        &self,
        id: &str,
        c: &mut Container,
        meta: Option<&Meta>,
        signal: i32,
        all: bool,
    ) -> Result<()> {
        // In a sandbox, --all means every process *inside* it; the
        // kernel, gofer and stubs are not the workload's processes.
        if all
            && signal != libc::SIGKILL
            && meta.is_some_and(|m| m.level == Isolation::Userspace)
            && c.status() == ContainerStatus::Running
        {
            let (sock, container) = self.control_of(id);
            crate::control::request(
                &sock,
                &serde_json::json!({"op": "kill_all", "sig": signal, "container": container}),
            )?;
            return Ok(());
        }
        // At the vm level, --all means every process in the guest's
        // container; the init (the VMM) forwards other signals itself.
        if all
            && signal != libc::SIGKILL
            && meta.is_some_and(|m| m.level == Isolation::Vm)
            && c.status() == ContainerStatus::Running
        {
            return self.vm_signal_all(id, signal);
        }
        if !c.can_kill() {
            // runc's words: containerd's runc shim takes "container not
            // running" for "already finished" (and would otherwise keep a
            // container whose init has exited in the running state).
            bail!(
                "cannot kill container {id}: container not running (it is {})",
                status::status_str(c.status())
            );
        }
        let sig = nix::sys::signal::Signal::try_from(signal)
            .map_err(|_| anyhow!("signal {signal} cannot be sent"))?;
        // SIGKILL gives a sandbox's kernel no chance to log its final
        // counters: keep what it says now for delete's audit records.
        if signal == libc::SIGKILL
            && c.status() == ContainerStatus::Running
            && let Some(m) = meta.filter(|m| m.level == Isolation::Userspace)
            && let Ok(v) = self.sandbox_stats_within(id, STATS_TIMEOUT)
        {
            let _ = std::fs::write(self.stats_snapshot(&m.id), v.to_string());
        }
        match c.kill(sig, all) {
            // libcontainer records the state after the signal. A container
            // that the signal ended may be deleted by its own `atoll run`
            // at once (it removes libcontainer's state first), and the
            // record then fails on a state file that is gone: the signal
            // did its work (or the container ended by itself meanwhile:
            // either way it no longer runs, which is what kill asks).
            Err(_)
                if std::fs::symlink_metadata(self.layout.container_dir(id).join("state.json"))
                    .is_err() =>
            {
                Ok(())
            }
            r => r.map_err(|e| anyhow!("killing container {id}: {e}")),
        }
    }

    /// Where kill keeps a sandbox's counters before SIGKILL.
    fn stats_snapshot(&self, id: &str) -> PathBuf {
        self.layout.atoll_dir(id).join("sandbox-stats.json")
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        id::validate(id)?;
        // (before the state goes: the cgroup may be named there)
        let cgroup = force.then(|| cleanup::cgroup_of(self, id));
        if !self.layout.exists(id) {
            if let Some(cg) = cgroup {
                // A create killed before it wrote any state.
                cleanup::sweep_aborted_create(self, id, cg);
            }
            bail!("container {id} does not exist");
        }
        let meta = Meta::load(&self.layout, id).ok();
        let mut stats = None;
        let r = self.delete_existing(id, force, meta.as_ref(), &mut stats);
        if let Some(cg) = cgroup {
            cleanup::sweep_aborted_create(self, id, cg);
        }
        let detail = force.then(|| "forced".to_string());
        self.report_op(Operation::Delete, id, meta.as_ref(), detail, &r, stats);
        r
    }

    /// delete of a container whose state exists; fills `stats` with a
    /// userspace sandbox's counters once it is sure to remove the state.
    fn delete_existing(
        &self,
        id: &str,
        force: bool,
        meta: Option<&Meta>,
        stats: &mut Option<serde_json::Value>,
    ) -> Result<()> {
        let userspace = meta.filter(|m| m.level == Isolation::Userspace);
        match self.load(id) {
            Ok((mut c, _)) => {
                if !force {
                    self.wait_for_a_dying_init(id, &mut c)?;
                }
                match c.status() {
                    ContainerStatus::Running
                    | ContainerStatus::Paused
                    | ContainerStatus::Creating
                        if !force =>
                    {
                        bail!(
                            "cannot delete container {id}: it is {} (stop it first or use --force)",
                            status::status_str(c.status())
                        )
                    }
                    _ => {}
                }
                if let Some(m) = userspace {
                    // Only a running kernel answers: a created one has not
                    // booted yet and a paused one is frozen.
                    let live = c.status() == ContainerStatus::Running;
                    *stats = self.sandbox_counters(m, live);
                    if c.status() == ContainerStatus::Stopped
                        && let Some(pid) = c.pid()
                    {
                        let log = m
                            .sandbox_log
                            .clone()
                            .unwrap_or_else(|| self.layout.atoll_dir(&m.id).join("sandbox.log"));
                        report_seccomp_kill(m, &log, pid.as_raw());
                    }
                }
                // A create cut short (atoll killed before it recorded the
                // init) can leave libcontainer's helpers outside the cgroup:
                // only then is the slow search for them needed.
                let never_ran = c.pid().is_none() || c.status() == ContainerStatus::Creating;
                let mut deleted = c.delete(force);
                if deleted.is_err() && c.status() == ContainerStatus::Stopped {
                    // The init is gone, but in a pid namespace its last
                    // processes may still be exiting, and a cgroup with
                    // tasks cannot be removed (libcgroups gives up after
                    // 0.1 s): wait for them, then again.
                    cleanup::empty_cgroup(self, id);
                    deleted = c.delete(force);
                }
                match deleted {
                    // libcontainer killed what was left and removed the
                    // cgroup: atoll's own state remains.
                    Ok(()) if !never_ran => cleanup::remove_state(self, id),
                    Ok(()) => cleanup::remove_everything(self, id),
                    Err(e) => {
                        if !force {
                            return Err(anyhow!("deleting container {id}: {e}"));
                        }
                        tracing::warn!(
                            "libcontainer delete of {id} failed ({e}); cleaning up by hand"
                        );
                        cleanup::remove_everything(self, id);
                    }
                }
            }
            Err(e) => {
                if !force {
                    return Err(e.context("use delete --force to remove it"));
                }
                if let Some(m) = userspace {
                    *stats = self.sandbox_counters(m, false);
                }
                cleanup::remove_everything(self, id);
            }
        }
        if self.layout.exists(id) {
            bail!("container {id}: could not remove all of its state");
        }
        Ok(())
    }

    /// A `kill -9` returns before the init has exited, and until then
    /// libcontainer reports it running: a delete right after waits for
    /// that exit (bounded) and then sees the container stopped.
    fn wait_for_a_dying_init(&self, id: &str, c: &mut Container) -> Result<()> {
        let Some(pid) = c.pid() else {
            return Ok(());
        };
        if c.status() != ContainerStatus::Running || !crate::dying::is_dying(pid.as_raw()) {
            return Ok(());
        }
        if !crate::dying::wait_exited(pid.as_raw(), EXIT_WAIT) {
            bail!(
                "cannot delete container {id}: its init (pid {pid}) was killed but is still \
                 exiting after {}s (try again, or use --force)",
                EXIT_WAIT.as_secs()
            );
        }
        c.refresh_status()
            .map_err(|e| anyhow!("container {id}: cannot read status: {e}"))
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (mut c, _) = self.load(id)?;
        if !c.can_pause() {
            bail!(
                "cannot pause container {id}: it is {}",
                status::status_str(c.status())
            );
        }
        c.pause()
            .map_err(|e| anyhow!("pausing container {id}: {e}"))
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (mut c, _) = self.load(id)?;
        if !c.can_resume() {
            bail!(
                "cannot resume container {id}: it is {} (not paused)",
                status::status_str(c.status())
            );
        }
        c.resume()
            .map_err(|e| anyhow!("resuming container {id}: {e}"))
    }

    /// Cgroup manager of a container.
    pub fn cgroup_manager(&self, id: &str) -> Result<libcgroups::common::AnyCgroupManager> {
        let (path, systemd) = cleanup::cgroup_of(self, id);
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: path,
            systemd_cgroup: systemd,
            container_name: id.to_string(),
        })
        .map_err(|e| anyhow!("cgroup of container {id}: {e}"))
    }

    /// The processes inside a userspace sandbox, as its kernel sees them
    /// (virtual pids).
    pub fn sandbox_processes(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        let (sock, container) = self.control_of(id);
        let v = crate::control::request(
            &sock,
            &serde_json::json!({"op": "ps", "container": container}),
        )?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Syscall counters of a userspace sandbox.
    pub fn sandbox_stats(&self, id: &str) -> Result<serde_json::Value> {
        self.sandbox_stats_within(id, std::time::Duration::from_secs(5))
    }

    /// [`Runtime::sandbox_stats`], giving up after `timeout` (a wedged
    /// kernel must not hold up a kill, a delete or a metrics scrape).
    pub fn sandbox_stats_within(
        &self,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<serde_json::Value> {
        let (sock, container) = self.control_of(id);
        crate::control::request_with_timeout(
            &sock,
            &serde_json::json!({"op": "stats", "container": container}),
            Some(timeout),
        )
    }

    /// The control socket serving userspace container `id`, and the name
    /// its kernel knows it by: a pod's container is served by its sandbox
    /// container's kernel (pod.rs).
    pub fn control_of(&self, id: &str) -> (PathBuf, Option<String>) {
        match Meta::load(&self.layout, id)
            .ok()
            .and_then(|m| m.pod_sandbox)
        {
            Some(sid) => (self.layout.control_socket(&sid), Some(id.to_string())),
            None => (self.layout.control_socket(id), None),
        }
    }

    /// A userspace sandbox's syscall counters for the record: from its
    /// control socket while its kernel may still answer (`live`), else the
    /// last `stats {json}` line its kernel wrote to the sandbox log when it
    /// exited, else what `kill` saved before a SIGKILL. None if none has
    /// them (the kernel was killed by someone else).
    pub fn sandbox_counters(&self, meta: &Meta, live: bool) -> Option<serde_json::Value> {
        if live && let Ok(v) = self.sandbox_stats_within(&meta.id, STATS_TIMEOUT) {
            return Some(v);
        }
        let log = meta
            .sandbox_log
            .clone()
            .unwrap_or_else(|| self.layout.atoll_dir(&meta.id).join("sandbox.log"));
        // A snapshot is taken by `atoll kill -9` just before the kill, so
        // it is newer than any counters line the kernel logged before
        // (refusals log one as they happen: see the kernel's
        // `note_egress`); without a snapshot the log's last line counts.
        std::fs::read(self.stats_snapshot(&meta.id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .or_else(|| last_stats_line(&log))
    }

    /// Containers of `tenant` in this state root that are not stopped
    /// (created, running, paused). A container of the tenant whose state
    /// cannot be read counts too, until it is deleted: a count that is a
    /// limit must not be lowered by damage.
    pub fn containers_of_tenant(&self, tenant: &str) -> Result<usize> {
        let ids = self
            .layout
            .ids()
            .with_context(|| format!("state root {}", self.layout.root.display()))?;
        let mut n = 0;
        for id in ids {
            let Ok(meta) = Meta::load(&self.layout, &id) else {
                continue;
            };
            if meta.tenant != tenant {
                continue;
            }
            match self.load(&id) {
                Ok((c, _)) if c.status() == ContainerStatus::Stopped => {}
                _ => n += 1,
            }
        }
        Ok(n)
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let _ = self.load(id)?;
        use libcgroups::common::CgroupManager;
        let m = self.cgroup_manager(id)?;
        let mut pids: Vec<i32> = m
            .get_all_pids()
            .map_err(|e| anyhow!("listing processes of {id}: {e}"))?
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (c, _) = self.load(id)?;
        if c.status() == ContainerStatus::Stopped {
            bail!("cannot update container {id}: it has stopped");
        }
        use libcgroups::common::{CgroupManager, ControllerOpt};
        let m = self.cgroup_manager(id)?;
        m.apply(&ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| anyhow!("updating resources of {id}: {e}"))
    }
}

fn terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Logs, as a sandbox failure, a userspace kernel that its own seccomp
/// filter killed (the host's audit record names the syscall it tried).
fn report_seccomp_kill(meta: &Meta, log: &Path, pid: i32) {
    // A kernel that stopped by itself says so last; only one that did not
    // can have been killed by its filter. Reading the host's whole ring
    // buffer costs tens of milliseconds, so a clean stop skips it.
    if crate::kmsg::stopped_cleanly(log) {
        return;
    }
    let age = (chrono::Utc::now() - meta.created)
        .num_microseconds()
        .unwrap_or(i64::MAX)
        .max(0) as u64;
    // Records older than the container (an earlier process with this pid)
    // do not count; a second of slack for the clocks' different bases.
    let since = crate::kmsg::now_usec().saturating_sub(age + 1_000_000);
    if let Some(k) = crate::kmsg::seccomp_kill_of(pid, since) {
        tracing::error!(
            "container {}: sandbox {} (pid {pid}) killed by its seccomp filter: host syscall {} ({})",
            meta.id,
            k.comm,
            k.syscall_name(),
            k.syscall
        );
    }
}

pub fn state_of(c: &Container, meta: Option<&Meta>) -> State {
    let bundle = meta
        .map(|m| m.bundle.clone())
        .unwrap_or_else(|| c.bundle().clone());
    State {
        oci_version: oci_spec::runtime::VERSION.to_string(),
        id: c.id().to_string(),
        pid: if c.status() == ContainerStatus::Stopped {
            0
        } else {
            c.pid().map(|p| p.as_raw()).unwrap_or(0)
        },
        status: status::status_str(c.status()).to_string(),
        rootfs: meta.map(|m| m.rootfs.clone()).unwrap_or_default(),
        bundle,
        created: c.created().unwrap_or_else(chrono::Utc::now),
        owner: meta
            .map(|m| status::owner_name(m.owner_uid))
            .unwrap_or_default(),
        annotations: meta.map(|m| m.annotations.clone()).unwrap_or_default(),
    }
}

/// libcontainer errors wrap the interesting part several levels deep and
/// often say only "failed to create container"; flatten the chain.
pub fn describe_libcontainer_error(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// The last `stats {json}` line of a sandbox log: the counters its kernel
/// wrote when it exited. Only the log's tail is read (strace output can
/// make it large; the stats line is the kernel's last word).
pub fn last_stats_line(log: &Path) -> Option<serde_json::Value> {
    crate::kmsg::read_tail(log, 1 << 20)?
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.strip_prefix("stats ")?).ok())
}

/// Reads a pid file as written by create.
pub fn read_pid_file(p: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(p)?;
    Ok(s.trim().parse()?)
}

/// The value of annotation `key` in `spec`, if it has one.
fn annotation<'a>(spec: &'a oci_spec::runtime::Spec, key: &str) -> Option<&'a str> {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}
