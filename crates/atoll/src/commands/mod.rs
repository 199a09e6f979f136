//! One function per command; `dispatch` maps the parsed command line to them.

mod admission;
pub mod audit;
mod exec;
mod info;
pub mod install;
mod lifecycle;
pub mod metrics;
mod ps;
mod vm_assets;

use anyhow::Result;
use atoll_runtime::{Config, Runtime};

use crate::cli::{Cli, Command};

/// Builds the runtime from the global flags and the node configuration.
pub fn runtime(cli: &Cli) -> Result<Runtime> {
    let config = Config::load(cli.config.as_deref())?;
    let mut rt = Runtime::new(cli.root.clone(), cli.systemd_cgroup, config);
    rt.plugins.sandbox_entry = Some(atoll_sandbox::enter);
    rt.plugins.vm_entry = Some(crate::vm::enter);
    rt.plugins.vm_kernel_check = Some(crate::vm::check_kernel);
    admission::install(&mut rt, cli);
    Ok(rt)
}

/// Runs the command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.version {
        info::version();
        return Ok(0);
    }
    let Some(command) = &cli.command else {
        anyhow::bail!("no command given (see atoll --help)");
    };
    match command {
        Command::Spec { bundle } => return info::spec(bundle).map(|_| 0),
        Command::Features => return info::features().map(|_| 0),
        Command::Compat => {
            print!("{}", atoll_sandbox::compat_markdown());
            return Ok(0);
        }
        Command::Allowlists => {
            use atoll_runtime::level::Isolation;
            match cli.isolation {
                Some(Isolation::Userspace) => print!("{}", atoll_sandbox::confine::markdown()),
                Some(Isolation::Vm) => print!("{}", atoll_vmm::seccomp::markdown()),
                Some(Isolation::Native) => anyhow::bail!(
                    "the native level runs no process of atoll's under an allowlist (the workload's seccomp profile is its spec's)"
                ),
                None => print!(
                    "{}\n{}",
                    atoll_sandbox::confine::markdown(),
                    atoll_vmm::seccomp::markdown()
                ),
            }
            return Ok(0);
        }
        Command::Check { format } => {
            // (a config file that does not load is `create`'s to report)
            let vm_assets = Config::load(cli.config.as_deref())
                .ok()
                .and_then(|c| c.vm_assets);
            return crate::check::run(*format, vm_assets.as_deref()).map(|_| 0);
        }
        Command::Install(a) | Command::Uninstall(a) if a.vm_assets.is_some() => {
            let config = Config::load(cli.config.as_deref())?;
            let dest = atoll_runtime::vm_level::assets_dir(config.vm_assets.as_deref());
            let src = a.vm_assets.clone().flatten();
            return if matches!(command, Command::Install(_)) {
                vm_assets::install(src.as_deref(), &dest, a.dry_run)
            } else {
                vm_assets::uninstall(&dest, a.dry_run)
            };
        }
        Command::Install(a) => {
            let default = cli.root == std::path::Path::new(atoll_runtime::layout::DEFAULT_ROOT);
            return install::install(&cli.root, default, a);
        }
        Command::Uninstall(a) => return install::uninstall(a),
        _ => {}
    }
    let rt = runtime(&cli)?;
    match command {
        Command::Create(a) => lifecycle::create(&rt, &cli, a).map(|_| 0),
        Command::Run(a) => lifecycle::run(&rt, &cli, a),
        Command::Start { id } => rt.start(id).map(|_| 0),
        Command::State { id } => lifecycle::state(&rt, id).map(|_| 0),
        Command::Kill { id, signal, all } => lifecycle::kill(&rt, id, signal, *all).map(|_| 0),
        Command::Delete { id, force } => rt.delete(id, *force).map(|_| 0),
        Command::Pause { id } => rt.pause(id).map(|_| 0),
        Command::Resume { id } => rt.resume(id).map(|_| 0),
        Command::Update {
            id,
            resources,
            limits,
        } => lifecycle::update(&rt, id, resources.as_deref(), limits).map(|_| 0),
        Command::Events {
            id,
            stats,
            interval,
        } => rt.events(id, *interval, *stats).map(|_| 0),
        Command::Exec(a) => exec::exec(&rt, a),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps::ps(&rt, id, *format, ps_args).map(|_| 0),
        Command::List { format, quiet } => ps::list(&rt, *format, *quiet).map(|_| 0),
        Command::Audit(a) => audit::run(&admission::audit_log_path(&cli, &rt.config), a),
        Command::Metrics(a) => metrics::run(&rt, &admission::audit_log_path(&cli, &rt.config), a),
        Command::Spec { .. }
        | Command::Features
        | Command::Check { .. }
        | Command::Compat
        | Command::Allowlists
        | Command::Install(_)
        | Command::Uninstall(_) => {
            unreachable!()
        }
    }
}
