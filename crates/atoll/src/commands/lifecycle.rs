//! create, run, state, kill, update.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use atoll_runtime::executor::SandboxOptions;
use atoll_runtime::{CreateOptions, Runtime, signal, wait};
use oci_spec::runtime::LinuxResources;

use crate::cli::{Cli, CreateArgs, RunArgs, UpdateLimits};

fn create_options(cli: &Cli, a: &CreateArgs, detach: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        isolation: cli.isolation,
        detach,
        sandbox: SandboxOptions {
            strace: a.strace,
            log_file: a.sandbox_log.clone(),
            debug_confinement: a.debug_confinement.clone(),
            platform: cli.platform.clone(),
            network: cli.network.clone(),
            overlay: cli.overlay.clone(),
            ..Default::default()
        },
    }
}

pub fn create(rt: &Runtime, cli: &Cli, a: &CreateArgs) -> Result<()> {
    rt.create(&create_options(cli, a, true))?;
    Ok(())
}

/// create + start; in the foreground, wait for the process, forward
/// signals to it, delete the container and exit with its status.
pub fn run(rt: &Runtime, cli: &Cli, a: &RunArgs) -> Result<i32> {
    let created = rt.create(&create_options(cli, &a.create, a.detach))?;
    let id = &a.create.id;
    // Block before start so no signal is lost between start and the wait.
    let set = (!a.detach).then(wait::block_signals);
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        return Err(e);
    }
    let Some(set) = set else {
        return Ok(0);
    };
    let code = wait::forward_until_exit(created.pid, &set);
    if !a.keep {
        rt.delete(id, true)
            .with_context(|| format!("removing container {id} after it exited"))?;
    }
    Ok(code)
}

pub fn state(rt: &Runtime, id: &str) -> Result<()> {
    let st = rt.state(id)?;
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(())
}

pub fn kill(rt: &Runtime, id: &str, sig: &str, all: bool) -> Result<()> {
    let n = signal::parse(sig)?;
    rt.kill(id, n, all)
}

pub fn update(rt: &Runtime, id: &str, file: Option<&Path>, limits: &UpdateLimits) -> Result<()> {
    let mut r: LinuxResources = match file {
        Some(p) => {
            let bytes = if p == Path::new("-") {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(p).with_context(|| format!("resources file {}", p.display()))?
            };
            atoll_runtime::spec::parse_json(&bytes)
                .with_context(|| format!("resources {}", p.display()))?
        }
        None => LinuxResources::default(),
    };
    apply_flags(&mut r, limits)?;
    rt.update(id, &r)
}

fn apply_flags(r: &mut LinuxResources, l: &UpdateLimits) -> Result<()> {
    use oci_spec::runtime::*;
    if l.memory.is_some() || l.memory_swap.is_some() || l.memory_reservation.is_some() {
        let mut m = (*r.memory()).unwrap_or_default();
        if let Some(v) = l.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = l.memory_swap {
            m.set_swap(Some(v));
        }
        if let Some(v) = l.memory_reservation {
            m.set_reservation(Some(v));
        }
        r.set_memory(Some(m));
    }
    if l.cpu_shares.is_some()
        || l.cpu_quota.is_some()
        || l.cpu_period.is_some()
        || l.cpuset_cpus.is_some()
        || l.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if let Some(v) = l.cpu_shares {
            c.set_shares(Some(v));
        }
        if let Some(v) = l.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = l.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = &l.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &l.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
        r.set_cpu(Some(c));
    }
    if let Some(v) = l.pids_limit {
        let p = LinuxPidsBuilder::default()
            .limit(v)
            .build()
            .map_err(|e| anyhow!("pids limit: {e}"))?;
        r.set_pids(Some(p));
    }
    if let Some(v) = l.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    Ok(())
}
