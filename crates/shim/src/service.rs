//! The shim: containerd's task API v2 for atoll containers.
//!
//! One shim process serves every container of a Kubernetes pod (grouped by
//! the CRI annotation `io.kubernetes.cri.sandbox-id`), or one container
//! outside Kubernetes.
//!
//! What runs where:
//! - `create`, `start`, `exec` and `delete` run the `atoll` binary, as
//!   containerd's runc shim runs runc. The container's init and exec'd
//!   processes inherit their stdio from the command that starts them, and
//!   atoll reserves descriptor slots for the userspace sandbox at process
//!   start; libcontainer also runs hooks as child processes it waits for,
//!   which would race with the shim's reaper. A separate process keeps all
//!   of that out of the shim.
//! - `state`, `kill`, `pause`, `resume`, `update`, `pids` and `stats` call
//!   atoll's runtime library in-process (no child processes, no stdio).
//!
//! The shim is a child subreaper: the containers' init processes and the
//! exec'd processes are re-parented to it when atoll exits. One thread
//! reaps every child (`waitpid(-1)`) and hands each exit to the service;
//! nothing else waits for children.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use containerd_shim::api::{self, Status};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageDyn};
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Context as TtrpcCtx, ExitSignal, Flags, TtrpcContext, TtrpcResult};
use log::{debug, info, warn};

use crate::io::{self, ProcIo, StdioPaths};
use crate::options::{AtollCtx, ShimOptions};

/// CRI's annotations that group a pod's containers into one shim.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// How long an atoll command may take before the shim gives up on it.
const ATOLL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
struct Exit {
    code: u32,
    at: SystemTime,
}

fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PState {
    Created,
    Running,
    Exited,
}

struct Proc {
    pid: i32,
    state: PState,
    exit: Option<Exit>,
    stdio: StdioPaths,
    io: Option<ProcIo>,
    /// exec: the runtime-spec process (JSON) containerd sent.
    spec: Vec<u8>,
}

impl Proc {
    fn new(stdio: StdioPaths) -> Proc {
        Proc {
            pid: 0,
            state: PState::Created,
            exit: None,
            stdio,
            io: None,
            spec: Vec::new(),
        }
    }

    fn set_exit(&mut self, e: Exit) {
        self.exit = Some(e);
        self.state = PState::Exited;
    }
}

struct Container {
    bundle: PathBuf,
    ctx: AtollCtx,
    /// Where the shim mounted containerd's rootfs mounts (unmounted at delete).
    rootfs: Option<PathBuf>,
    init: Proc,
    execs: HashMap<String, Proc>,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, Container>,
    /// Exits of pids no container process claims (yet): atoll commands
    /// the shim waits for, and processes that exit before atoll returned
    /// their pid.
    unclaimed: HashMap<i32, (Exit, Instant)>,
}

struct Event {
    topic: &'static str,
    msg: Box<dyn MessageDyn>,
    /// Publish only after the process's output is drained (bounded wait).
    after: Option<Arc<io::Done>>,
}

struct Inner {
    namespace: String,
    exit: Arc<ExitSignal>,
    state: Mutex<State>,
    cv: Condvar,
    events: Mutex<mpsc::Sender<Event>>,
}

/// The task service containerd talks to.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// The `Shim` side: containerd's `start` and `delete` actions and the
/// server's lifetime.
pub struct Shim {
    exit: Arc<ExitSignal>,
    namespace: String,
    id: String,
    socket: String,
}

impl containerd_shim::Shim for Shim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut containerd_shim::Config) -> Self {
        DEBUG.store(args.debug, std::sync::atomic::Ordering::Relaxed);
        Shim {
            exit: Arc::new(ExitSignal::default()),
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            socket: args.socket.clone(),
        }
    }

    fn start_shim(&mut self, opts: containerd_shim::StartOpts) -> containerd_shim::Result<String> {
        // containerd runs `start` in the container's bundle.
        let grouping = grouping(Path::new("config.json"), &opts.id);
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<api::DeleteResponse> {
        let bundle =
            std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
        cleanup_after_crash(&bundle, &self.namespace, &self.id)
            .map_err(|e| containerd_shim::Error::Other(atoll_runtime::one_line(&e)))?;
        Ok(api::DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(timestamp(SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The bundle this shim started in (its working directory, where
        // containerd-shim reads the socket address from on the way out) may
        // be gone already when the shim served a whole pod: remove the
        // socket here so it never outlives the shim.
        let path = self.socket.strip_prefix("unix://").unwrap_or(&self.socket);
        if !path.is_empty() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Service {
        Service::new(self.namespace.clone(), self.exit.clone(), publisher)
    }
}

/// The shim a container joins: its pod's sandbox id under CRI, else its own.
pub fn grouping(config_json: &Path, id: &str) -> String {
    let Ok(spec) = oci_spec::runtime::Spec::load(config_json) else {
        return id.to_string();
    };
    let a = spec.annotations().clone().unwrap_or_default();
    match (
        a.get(CRI_CONTAINER_TYPE).map(String::as_str),
        a.get(CRI_SANDBOX_ID),
    ) {
        (Some("sandbox"), _) => id.to_string(),
        (_, Some(sandbox)) if !sandbox.is_empty() => sandbox.clone(),
        _ => id.to_string(),
    }
}

/// containerd's `delete` action after the shim died: remove whatever is
/// left of the container.
fn cleanup_after_crash(bundle: &Path, namespace: &str, id: &str) -> Result<()> {
    let ctx = match AtollCtx::load(bundle) {
        Ok(c) => c,
        Err(_) => AtollCtx::new(&ShimOptions::default(), namespace)?,
    };
    let log = io::log_path(bundle, "cleanup");
    let mut cmd = atoll_command(&ctx, &log);
    cmd.args(["delete", "--force", id]).stderr(Stdio::null());
    // No reaper runs in the `delete` action: wait for the child directly.
    let status = run_command(cmd, &log, wait_pid);
    if let Err(e) = status {
        // Already gone is fine; anything else is worth a line in the log.
        if !e.to_string().contains("does not exist") {
            warn!("cleanup of {id}: {e:#}");
        }
    }
    unmount_rootfs(&bundle.join("rootfs"));
    Ok(())
}

/// Waits for one child (only where no reaper thread runs).
fn wait_pid(pid: i32) -> Result<i32> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("waiting for atoll: {e}"),
        }
    }
}

/// Reaps every child of the shim for as long as it runs.
fn reap_forever(svc: Service) {
    use nix::errno::Errno;
    use nix::sys::wait::{WaitStatus, waitpid};
    let exited = |pid: i32, code: i32| {
        // containerd-shim's own helpers (the rootfs mount's child) wait
        // for their children through its monitor.
        let _ = containerd_shim::monitor::monitor_notify_by_pid(pid, code);
        svc.on_exit(pid, code);
    };
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) => exited(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => exited(pid.as_raw(), 128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => {}
            // No children right now (none yet, or all reaped): look again
            // shortly. A child that exits meanwhile stays a zombie until then.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// `atoll` with the global flags for a container of this runtime.
fn atoll_command(ctx: &AtollCtx, log: &Path) -> Command {
    let mut cmd = Command::new(&ctx.binary);
    cmd.arg("--root")
        .arg(&ctx.root)
        .arg("--log")
        .arg(log)
        .arg("--log-format")
        .arg("json");
    if let Some(c) = &ctx.config {
        cmd.arg("--config").arg(c);
    }
    if ctx.systemd_cgroup {
        cmd.arg("--systemd-cgroup");
    }
    if let Some(level) = ctx.isolation {
        cmd.arg("--isolation").arg(level.as_str());
    }
    if DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        cmd.arg("--debug");
    }
    cmd
}

/// Set when containerd runs the shim with `-debug` (containerd's own log
/// level is debug): atoll then logs libcontainer's steps too.
static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs an atoll command, waiting for it with `wait` (the reaper owns all
/// children, so `Child::wait` must not be used). On failure, the error is
/// the last error atoll logged.
fn run_command(mut cmd: Command, log: &Path, wait: impl FnOnce(i32) -> Result<i32>) -> Result<()> {
    let _ = std::fs::remove_file(log);
    let what = format!("{cmd:?}");
    debug!("running {what}");
    let child = cmd
        .spawn()
        .with_context(|| format!("running {}", cmd.get_program().to_string_lossy()))?;
    let code = wait(child.id() as i32)?;
    drop(child);
    if code == 0 {
        return Ok(());
    }
    // The whole atoll log goes to the shim's log (containerd's, at debug
    // level): with containerd in debug mode it carries libcontainer's steps.
    if let Ok(text) = std::fs::read_to_string(log) {
        for line in text.lines() {
            warn!("atoll: {line}");
        }
    }
    match last_error(log) {
        Some(msg) => bail!("{msg}"),
        None => bail!("{what} exited with status {code}"),
    }
}

/// The `msg` of the last `"level":"error"` line of an atoll JSON log.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or_default().to_string())
    })
}

fn mount_rootfs(mounts: &[containerd_shim::protos::api::Mount], target: &Path) -> Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    for m in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()).filter(|t| !t.is_empty()),
            Some(m.source.as_str()).filter(|s| !s.is_empty()),
            &m.options,
            target,
        )
        .map_err(|e| anyhow!("mounting the rootfs ({} {}): {e}", m.type_, m.source))?;
    }
    Ok(true)
}

fn unmount_rootfs(target: &Path) {
    let Some(t) = target.to_str() else { return };
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(t), 0) {
        warn!("unmounting {t}: {e}; detaching it");
        let _ = containerd_shim::mount::umount_recursive(Some(t), libc::MNT_DETACH);
    }
}

fn read_pid(path: &Path) -> Result<i32> {
    let s =
        std::fs::read_to_string(path).with_context(|| format!("pid file {}", path.display()))?;
    s.trim()
        .parse()
        .map_err(|_| anyhow!("pid file {} holds {s:?}", path.display()))
}

/// The container `id`, or NotFound (it may be deleted by a concurrent call).
fn container<'a>(st: &'a State, id: &str) -> TtrpcResult<&'a Container> {
    st.containers
        .get(id)
        .ok_or_else(|| not_found(&format!("container {id}")))
}

fn err(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

fn internal(e: anyhow::Error) -> ttrpc::Error {
    err(Code::UNKNOWN, atoll_runtime::one_line(&e))
}

fn not_found(what: &str) -> ttrpc::Error {
    err(Code::NOT_FOUND, format!("{what}: not found"))
}

impl Service {
    fn new(namespace: String, exit: Arc<ExitSignal>, publisher: RemotePublisher) -> Service {
        let (tx, rx) = mpsc::channel::<Event>();
        let svc = Service {
            inner: Arc::new(Inner {
                namespace: namespace.clone(),
                exit,
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
                events: Mutex::new(tx),
            }),
        };
        let s = svc.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_forever(s))
            .expect("reaper thread");
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || publish_loop(publisher, namespace, rx))
            .expect("event thread");
        svc
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap()
    }

    /// Queues an event; call with the state lock held when its order
    /// relative to exit events matters.
    fn emit(
        &self,
        topic: &'static str,
        msg: impl MessageDyn + 'static,
        after: Option<Arc<io::Done>>,
    ) {
        let _ = self.inner.events.lock().unwrap().send(Event {
            topic,
            msg: Box::new(msg),
            after,
        });
    }

    fn exit_event(&self, cid: &str, id: &str, p: &Proc, e: Exit) {
        self.emit(
            topics::TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: cid.to_string(),
                id: id.to_string(),
                pid: p.pid as u32,
                exit_status: e.code,
                exited_at: Some(timestamp(e.at)).into(),
                ..Default::default()
            },
            p.io.as_ref().map(|io| io.output.clone()),
        );
    }

    fn on_exit(&self, pid: i32, code: i32) {
        let e = Exit {
            code: code as u32,
            at: SystemTime::now(),
        };
        let mut st = self.lock();
        let mut claimed = false;
        for (cid, c) in st.containers.iter_mut() {
            if c.init.pid == pid && c.init.exit.is_none() {
                c.init.set_exit(e);
                info!("container {cid}: init (pid {pid}) exited with status {code}");
                self.exit_event(cid, cid, &c.init, e);
                claimed = true;
                break;
            }
            if let Some((eid, p)) = c
                .execs
                .iter_mut()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
            {
                p.set_exit(e);
                debug!("container {cid}: exec {eid} (pid {pid}) exited with status {code}");
                self.exit_event(cid, eid, p, e);
                claimed = true;
                break;
            }
        }
        if !claimed {
            let now = Instant::now();
            st.unclaimed
                .retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(300));
            st.unclaimed.insert(pid, (e, now));
        }
        drop(st);
        self.inner.cv.notify_all();
    }

    /// Waits for a child the shim started (an atoll command).
    fn wait_child(&self, pid: i32) -> Result<i32> {
        let deadline = Instant::now() + ATOLL_TIMEOUT;
        let mut st = self.lock();
        loop {
            if let Some((e, _)) = st.unclaimed.remove(&pid) {
                return Ok(e.code as i32);
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                bail!("atoll did not finish within {ATOLL_TIMEOUT:?}");
            }
            st = self.inner.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    fn run_atoll(
        &self,
        ctx: &AtollCtx,
        log: &Path,
        args: &[&std::ffi::OsStr],
        stdio: [Option<OwnedFd>; 3],
    ) -> Result<()> {
        let mut cmd = atoll_command(ctx, log);
        cmd.args(args);
        let [i, o, e] = stdio;
        cmd.stdin(i.map(Stdio::from).unwrap_or_else(Stdio::null));
        cmd.stdout(o.map(Stdio::from).unwrap_or_else(Stdio::null));
        cmd.stderr(e.map(Stdio::from).unwrap_or_else(Stdio::null));
        run_command(cmd, log, |pid| self.wait_child(pid))
    }

    /// Registers a started process's pid, picking up an exit that arrived
    /// before atoll returned. `started` queues the start event first.
    fn claim_early_exit(st: &mut State, pid: i32) -> Option<Exit> {
        st.unclaimed.remove(&pid).map(|(e, _)| e)
    }

    fn ctx_of(&self, id: &str) -> TtrpcResult<(AtollCtx, PathBuf)> {
        let st = self.lock();
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| not_found(&format!("container {id}")))?;
        Ok((c.ctx.clone(), c.bundle.clone()))
    }

    fn runtime(&self, id: &str) -> TtrpcResult<(atoll_runtime::Runtime, PathBuf)> {
        let (ctx, bundle) = self.ctx_of(id)?;
        Ok((ctx.runtime().map_err(internal)?, bundle))
    }

    fn do_create(
        &self,
        req: &api::CreateTaskRequest,
    ) -> Result<(AtollCtx, Option<PathBuf>, i32, ProcIo)> {
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            bail!("checkpoint/restore is not supported by atoll");
        }
        let opts = ShimOptions::from_any(req.options.as_ref())?;
        let ctx = AtollCtx::new(&opts, &self.inner.namespace)?;
        std::fs::create_dir_all(&ctx.root)
            .with_context(|| format!("state root {}", ctx.root.display()))?;
        let bundle = PathBuf::from(&req.bundle);
        // Saved first: if the shim dies from here on, containerd's `delete`
        // action finds the root to clean up.
        ctx.save(&bundle)?;
        let rootfs = bundle.join("rootfs");
        let mounted = mount_rootfs(&req.rootfs, &rootfs)?;
        let made = (|| {
            let stdio = StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            let mut prep = io::prepare(&stdio)?;
            let pid_file = bundle.join("init.pid");
            let _ = std::fs::remove_file(&pid_file);
            let console = prep.console_socket();
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "create".as_ref(),
                "--bundle".as_ref(),
                bundle.as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
            ];
            if let Some(c) = &console {
                args.push("--console-socket".as_ref());
                args.push(c.as_os_str());
            }
            args.push(req.id.as_ref());
            let fds = [prep.stdin.take(), prep.stdout.take(), prep.stderr.take()];
            self.run_atoll(&ctx, &io::log_path(&bundle, "init"), &args, fds)?;
            let pid = read_pid(&pid_file)?;
            match prep.finish() {
                Ok(io) => Ok((pid, io)),
                Err(e) => {
                    let _ = self.run_atoll(
                        &ctx,
                        &io::log_path(&bundle, "delete"),
                        &["delete".as_ref(), "--force".as_ref(), req.id.as_ref()],
                        [None, None, None],
                    );
                    Err(e)
                }
            }
        })();
        match made {
            Ok((pid, io)) => Ok((ctx, mounted.then_some(rootfs), pid, io)),
            Err(e) => {
                if mounted {
                    unmount_rootfs(&rootfs);
                }
                Err(e)
            }
        }
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> Result<u32> {
        let (ctx, bundle, spec, stdio) = {
            let st = self.lock();
            let c = st
                .containers
                .get(id)
                .ok_or_else(|| anyhow!("container {id} does not exist"))?;
            let p = c
                .execs
                .get(exec_id)
                .ok_or_else(|| anyhow!("exec {exec_id} in container {id} does not exist"))?;
            if p.state != PState::Created {
                bail!("exec {exec_id} in container {id} was already started");
            }
            (
                c.ctx.clone(),
                c.bundle.clone(),
                p.spec.clone(),
                p.stdio.clone(),
            )
        };
        let process = bundle.join(format!("exec-{exec_id}.json"));
        let pid_file = bundle.join(format!("exec-{exec_id}.pid"));
        std::fs::write(&process, &spec)
            .with_context(|| format!("writing {}", process.display()))?;
        let _ = std::fs::remove_file(&pid_file);
        let mut prep = io::prepare(&stdio)?;
        let console = prep.console_socket();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "exec".as_ref(),
            "--process".as_ref(),
            process.as_os_str(),
            "--detach".as_ref(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
        ];
        if let Some(c) = &console {
            args.push("--console-socket".as_ref());
            args.push(c.as_os_str());
        }
        args.push(id.as_ref());
        let fds = [prep.stdin.take(), prep.stdout.take(), prep.stderr.take()];
        let ran = self.run_atoll(
            &ctx,
            &io::log_path(&bundle, &format!("exec-{exec_id}")),
            &args,
            fds,
        );
        let _ = std::fs::remove_file(&process);
        ran?;
        let pid = read_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        let procio = prep.finish()?;
        let mut st = self.lock();
        let Some(p) = st
            .containers
            .get_mut(id)
            .and_then(|c| c.execs.get_mut(exec_id))
        else {
            bail!("exec {exec_id} in container {id} was deleted while starting");
        };
        p.pid = pid;
        p.state = PState::Running;
        p.io = Some(procio);
        self.emit(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskExecStarted {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                pid: pid as u32,
                ..Default::default()
            },
            None,
        );
        if let Some(e) = Self::claim_early_exit(&mut st, pid) {
            let p = st
                .containers
                .get_mut(id)
                .unwrap()
                .execs
                .get_mut(exec_id)
                .unwrap();
            p.set_exit(e);
            let p = &st.containers[id].execs[exec_id];
            self.exit_event(id, exec_id, p, e);
        }
        drop(st);
        self.inner.cv.notify_all();
        Ok(pid as u32)
    }

    /// Blocks until the process has exited.
    fn wait_exit(&self, id: &str, exec_id: &str) -> TtrpcResult<(i32, Exit)> {
        let mut st = self.lock();
        loop {
            let c = st
                .containers
                .get(id)
                .ok_or_else(|| not_found(&format!("container {id}")))?;
            let p = if exec_id.is_empty() {
                &c.init
            } else {
                c.execs
                    .get(exec_id)
                    .ok_or_else(|| not_found(&format!("exec {exec_id} in container {id}")))?
            };
            if let Some(e) = p.exit {
                return Ok((p.pid, e));
            }
            st = self.inner.cv.wait(st).unwrap();
        }
    }
}

fn publish_loop(publisher: RemotePublisher, namespace: String, rx: mpsc::Receiver<Event>) {
    for ev in rx.iter() {
        if let Some(done) = &ev.after {
            done.wait(Duration::from_secs(2));
        }
        let Event { topic, msg, .. } = ev;
        // One retry: containerd may be restarting.
        let bytes = msg.write_to_bytes_dyn().unwrap_or_default();
        let mut sent = false;
        for attempt in 0..3 {
            let copy = retype(&*msg, &bytes);
            match publisher.publish(TtrpcCtx::default(), topic, &namespace, copy) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(e) => {
                    warn!("publishing {topic} (attempt {}): {e}", attempt + 1);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if !sent {
            warn!("event {topic} was not delivered");
        }
    }
}

/// A fresh boxed copy of an event message (publish consumes the box).
fn retype(msg: &dyn MessageDyn, bytes: &[u8]) -> Box<dyn MessageDyn> {
    let mut m = msg.descriptor_dyn().new_instance();
    let _ = m.merge_from_bytes_dyn(bytes);
    m
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let id = req.id.clone();
        if self.lock().containers.contains_key(&id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {id} already exists"),
            ));
        }
        info!("create {id} (bundle {})", req.bundle);
        let (ctx, rootfs, pid, procio) = self.do_create(&req).map_err(internal)?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mut init = Proc::new(stdio);
        init.pid = pid;
        init.io = Some(procio);
        let mut st = self.lock();
        self.emit(
            topics::TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                })
                .into(),
                checkpoint: req.checkpoint.clone(),
                pid: pid as u32,
                ..Default::default()
            },
            None,
        );
        if let Some(e) = Self::claim_early_exit(&mut st, pid) {
            init.set_exit(e);
            self.exit_event(&id, &id, &init, e);
        }
        st.containers.insert(
            id.clone(),
            Container {
                bundle: PathBuf::from(&req.bundle),
                ctx,
                rootfs,
                init,
                execs: HashMap::new(),
            },
        );
        drop(st);
        self.inner.cv.notify_all();
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        if !req.exec_id.is_empty() {
            let pid = self.start_exec(&req.id, &req.exec_id).map_err(|e| {
                let msg = atoll_runtime::one_line(&e);
                if msg.contains("does not exist") {
                    err(Code::NOT_FOUND, msg)
                } else {
                    err(Code::UNKNOWN, msg)
                }
            })?;
            return Ok(api::StartResponse {
                pid,
                ..Default::default()
            });
        }
        let (ctx, bundle) = self.ctx_of(&req.id)?;
        {
            let st = self.lock();
            let p = &container(&st, &req.id)?.init;
            if p.state != PState::Created {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {} was already started", req.id),
                ));
            }
        }
        self.run_atoll(
            &ctx,
            &io::log_path(&bundle, "start"),
            &["start".as_ref(), req.id.as_ref()],
            [None, None, None],
        )
        .map_err(internal)?;
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        if c.init.state == PState::Created {
            c.init.state = PState::Running;
        }
        let pid = c.init.pid;
        self.emit(
            topics::TASK_START_EVENT_TOPIC,
            TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            },
            None,
        );
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let (rt, bundle) = self.runtime(&req.id)?;
        let st = self.lock();
        let c = container(&st, &req.id)?;
        let p = if req.exec_id.is_empty() {
            &c.init
        } else {
            c.execs.get(&req.exec_id).ok_or_else(|| {
                not_found(&format!("exec {} in container {}", req.exec_id, req.id))
            })?
        };
        let status = match (p.state, req.exec_id.is_empty()) {
            (PState::Exited, _) => Status::STOPPED,
            (PState::Created, _) => Status::CREATED,
            (PState::Running, false) => Status::RUNNING,
            (PState::Running, true) => match rt.state(&req.id).map(|s| s.status) {
                Ok(s) if s == "paused" => Status::PAUSED,
                Ok(s) if s == "created" => Status::CREATED,
                _ => Status::RUNNING,
            },
        };
        let mut r = api::StateResponse {
            id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            bundle: bundle.display().to_string(),
            pid: p.pid as u32,
            status: status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            ..Default::default()
        };
        if let Some(e) = p.exit {
            r.exit_status = e.code;
            r.exited_at = Some(timestamp(e.at)).into();
        }
        Ok(r)
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let (rt, _) = self.runtime(&req.id)?;
        let pids = rt.pids(&req.id).map_err(internal)?;
        let execs: HashMap<i32, String> = {
            let st = self.lock();
            st.containers
                .get(&req.id)
                .map(|c| {
                    c.execs
                        .iter()
                        .filter(|(_, p)| p.pid > 0)
                        .map(|(id, p)| (p.pid, id.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let processes = pids
            .into_iter()
            .map(|pid| {
                let mut info = containerd_shim::protos::api::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                };
                if let Some(eid) = execs.get(&pid) {
                    let details = containerd_shim::protos::shim::oci::ProcessDetails {
                        exec_id: eid.clone(),
                        ..Default::default()
                    };
                    info.info = Some(Any {
                        type_url: "containerd.runc.v1.ProcessDetails".into(),
                        value: details.write_to_bytes().unwrap_or_default(),
                        ..Default::default()
                    })
                    .into();
                }
                info
            })
            .collect();
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let (rt, _) = self.runtime(&req.id)?;
        rt.pause(&req.id)
            .map_err(|e| err(Code::FAILED_PRECONDITION, atoll_runtime::one_line(&e)))?;
        self.emit(
            topics::TASK_PAUSED_EVENT_TOPIC,
            TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            },
            None,
        );
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let (rt, _) = self.runtime(&req.id)?;
        rt.resume(&req.id)
            .map_err(|e| err(Code::FAILED_PRECONDITION, atoll_runtime::one_line(&e)))?;
        self.emit(
            topics::TASK_RESUMED_EVENT_TOPIC,
            TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            },
            None,
        );
        Ok(api::Empty::new())
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let (rt, _) = self.runtime(&req.id)?;
        if !req.exec_id.is_empty() {
            let pid = {
                let st = self.lock();
                let p = container(&st, &req.id)?
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| {
                        not_found(&format!("exec {} in container {}", req.exec_id, req.id))
                    })?;
                match p.state {
                    PState::Running => p.pid,
                    PState::Created => {
                        return Err(err(
                            Code::FAILED_PRECONDITION,
                            format!("exec {} has not been started", req.exec_id),
                        ));
                    }
                    PState::Exited => {
                        return Err(err(Code::NOT_FOUND, "process already finished"));
                    }
                }
            };
            let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                err(
                    Code::INVALID_ARGUMENT,
                    format!("signal {} cannot be sent", req.signal),
                )
            })?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| {
                err(
                    Code::NOT_FOUND,
                    format!("signalling exec {}: {e}", req.exec_id),
                )
            })?;
            return Ok(api::Empty::new());
        }
        if container(&self.lock(), &req.id)?.init.exit.is_some() {
            return Err(err(Code::NOT_FOUND, "process already finished"));
        }
        rt.kill(&req.id, req.signal as i32, req.all).map_err(|e| {
            let msg = atoll_runtime::one_line(&e);
            if msg.contains("stopped") || msg.contains("does not exist") {
                err(Code::NOT_FOUND, format!("process already finished ({msg})"))
            } else {
                err(Code::UNKNOWN, msg)
            }
        })?;
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "exec without a process spec"))?;
        atoll_runtime::spec::parse_json::<oci_spec::runtime::Process>(&spec).map_err(|e| {
            err(
                Code::INVALID_ARGUMENT,
                format!("exec process spec: {}", atoll_runtime::one_line(&e)),
            )
        })?;
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        if c.init.state == PState::Exited {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} has stopped", req.id),
            ));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        let mut p = Proc::new(StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        });
        p.spec = spec;
        c.execs.insert(req.exec_id.clone(), p);
        self.emit(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
            None,
        );
        Ok(api::Empty::new())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let st = self.lock();
        let c = st
            .containers
            .get(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        let p = if req.exec_id.is_empty() {
            &c.init
        } else {
            c.execs
                .get(&req.exec_id)
                .ok_or_else(|| not_found(&format!("exec {}", req.exec_id)))?
        };
        match &p.io {
            Some(io) => io
                .resize(req.width, req.height)
                .map_err(|e| err(Code::FAILED_PRECONDITION, atoll_runtime::one_line(&e)))?,
            None => {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    "the process has not started",
                ));
            }
        }
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let st = self.lock();
        let c = st
            .containers
            .get(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        let p = if req.exec_id.is_empty() {
            &c.init
        } else {
            c.execs
                .get(&req.exec_id)
                .ok_or_else(|| not_found(&format!("exec {}", req.exec_id)))?
        };
        if req.stdin
            && let Some(io) = &p.io
        {
            io.close_stdin();
        }
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let (rt, _) = self.runtime(&req.id)?;
        let bytes = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "update without resources"))?;
        let res: oci_spec::runtime::LinuxResources = atoll_runtime::spec::parse_json(&bytes)
            .map_err(|e| {
                err(
                    Code::INVALID_ARGUMENT,
                    format!("resources: {}", atoll_runtime::one_line(&e)),
                )
            })?;
        rt.update(&req.id, &res).map_err(internal)?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (_, e) = self.wait_exit(&req.id, &req.exec_id)?;
        Ok(api::WaitResponse {
            exit_status: e.code,
            exited_at: Some(timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let (rt, _) = self.runtime(&req.id)?;
        let s = rt
            .cgroup_stats(&req.id)
            .map_err(|e| err(Code::UNKNOWN, format!("{e:#}")))?;
        let metrics = crate::metrics::to_metrics(&s);
        Ok(api::StatsResponse {
            stats: Some(Any {
                type_url: "io.containerd.cgroups.v1.Metrics".into(),
                value: metrics
                    .write_to_bytes()
                    .map_err(|e| err(Code::INTERNAL, e))?,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut st = self.lock();
            let c = st
                .containers
                .get_mut(&req.id)
                .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
            let p = c.execs.get(&req.exec_id).ok_or_else(|| {
                not_found(&format!("exec {} in container {}", req.exec_id, req.id))
            })?;
            if p.state == PState::Running {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} is still running", req.exec_id),
                ));
            }
            let p = c.execs.remove(&req.exec_id).unwrap();
            let e = p.exit.unwrap_or(Exit {
                code: 0,
                at: SystemTime::now(),
            });
            return Ok(api::DeleteResponse {
                pid: p.pid as u32,
                exit_status: e.code,
                exited_at: Some(timestamp(e.at)).into(),
                ..Default::default()
            });
        }
        let (ctx, bundle) = self.ctx_of(&req.id)?;
        {
            let st = self.lock();
            let init = &container(&st, &req.id)?.init;
            if init.state == PState::Running {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is still running (kill it first)", req.id),
                ));
            }
        }
        // A created (never started) init is killed by delete --force.
        self.run_atoll(
            &ctx,
            &io::log_path(&bundle, "delete"),
            &["delete".as_ref(), "--force".as_ref(), req.id.as_ref()],
            [None, None, None],
        )
        .map_err(internal)?;
        let exit = {
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut st = self.lock();
            loop {
                let init = &container(&st, &req.id)?.init;
                if init.exit.is_some() || Instant::now() >= deadline {
                    break;
                }
                st = self
                    .inner
                    .cv
                    .wait_timeout(st, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
            container(&st, &req.id)?.init.exit
        };
        let mut st = self.lock();
        let c = st
            .containers
            .remove(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        if let Some(r) = &c.rootfs {
            unmount_rootfs(r);
        }
        let e = exit.unwrap_or(Exit {
            code: 128 + libc::SIGKILL as u32,
            at: SystemTime::now(),
        });
        self.emit(
            topics::TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: req.id.clone(),
                id: req.id.clone(),
                pid: c.init.pid as u32,
                exit_status: e.code,
                exited_at: Some(timestamp(e.at)).into(),
                ..Default::default()
            },
            None,
        );
        drop(st);
        for f in ["init.pid", crate::options::CTX_FILE] {
            let _ = std::fs::remove_file(c.bundle.join(f));
        }
        info!("deleted {}", req.id);
        Ok(api::DeleteResponse {
            pid: c.init.pid as u32,
            exit_status: e.code,
            exited_at: Some(timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self
            .lock()
            .containers
            .get(&req.id)
            .map(|c| c.init.pid as u32)
            .unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: format!("atoll {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        let st = self.lock();
        if req.now || st.containers.is_empty() {
            info!("shutting down");
            self.inner.exit.signal();
        }
        Ok(api::Empty::new())
    }
}
