//! The userspace level's entry point: runs in the container's init (after
//! libcontainer has set up namespaces, cgroup and rootfs), turns the OCI
//! spec into the kernel's configuration, starts the file server and the
//! application kernel, and exits with the workload's status.

mod config;
pub mod confine;
mod gofer;

use std::os::fd::FromRawFd;
use std::rc::Rc;

use atoll_kernel::kernel::Kernel;
use atoll_runtime::executor::SandboxLaunch;

pub use config::sandbox_config;

/// docs/compatibility.md content.
pub fn compat_markdown() -> String {
    atoll_kernel::syscalls::compat_markdown()
}

/// `SandboxEntry` for the runtime: never returns on success.
pub fn enter(launch: &SandboxLaunch) -> Result<(), String> {
    let config = sandbox_config(&launch.spec)?;
    // Compiled before anything is forked; installed by the gofer and the
    // kernel once each holds what it needs.
    let filters = confine::compile()?;
    atoll_kernel::vfs::procfs::capture_host_facts(config.cpus);
    let log = launch
        .options
        .log_fd
        // SAFETY: the runtime passed us this descriptor for the sandbox log.
        .map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    let control = launch.options.control_fd;
    let mut config = config;
    config.strace = launch.options.strace;
    // The gofer is the only component that opens the container's files.
    let gofer = gofer::start(&filters.gofer)?;
    config.gofer_pid = Some(gofer.pid);
    // From here on the kernel names no file: its root is an empty tmpfs.
    confine::enter_empty_root()?;
    confine::set_name(c"atoll-kernel");
    let keep = confine::kernel_caps(&launch.spec);
    let probe = launch.options.debug_confinement.clone();
    let mut confine_kernel = || confine::confine_kernel(&filters.kernel, &keep, probe.as_deref());
    let files: Rc<dyn atoll_gofer::FileService> =
        Rc::new(atoll_gofer::serve::Client::new(gofer.sock));
    let stdio = atoll_kernel::kernel::boot::dup_stdio().map_err(|e| format!("stdio: {e}"))?;
    let mut k = match Kernel::boot(config, files, stdio, log, &mut confine_kernel) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("atoll: {}", e.message);
            std::process::exit(e.code);
        }
    };
    if let Some(fd) = control {
        k.set_control(fd);
    }
    let status = k.run();
    // The counters outlive the sandbox in its log: atoll reads them at
    // delete for the audit trail (refused syscalls per container).
    let stats = atoll_kernel::kernel::control_proto::stats(&k);
    k.log.line(&format!(
        "stats {}",
        serde_json::to_string(&stats).unwrap_or_default()
    ));
    std::process::exit(atoll_kernel::kernel::exit::exit_code_of(status));
}
