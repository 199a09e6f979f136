//! `ps` and `list`.

use anyhow::{Context, Result};
use atoll_runtime::Runtime;

use crate::cli::ListFormat;

/// runc's ps: JSON is the pid list; the table is ps(1)'s own output
/// filtered to the container's processes.
pub fn ps(rt: &Runtime, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    match rt.exec_target(id, false).ok() {
        Some(atoll_runtime::Isolation::Userspace) => return sandbox_ps(rt, id, format),
        Some(atoll_runtime::Isolation::Vm) => return vm_ps(rt, id, format),
        _ => {}
    }
    let pids = rt.pids(id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps(1)")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

pub fn list(rt: &Runtime, format: ListFormat, quiet: bool) -> Result<()> {
    let states = rt.list()?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(());
    }
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.pid.to_string(),
                s.status.clone(),
                s.bundle.display().to_string(),
                s.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                s.owner.clone(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("   ").trim_end());
    }
    Ok(())
}

/// ps of a userspace sandbox: its own processes with virtual pids (the
/// host only sees the kernel, the gofer and stub processes).
fn sandbox_ps(rt: &Runtime, id: &str, format: ListFormat) -> Result<()> {
    let procs = rt.sandbox_processes(id)?;
    if format == ListFormat::Json {
        let pids: Vec<i64> = procs.iter().filter_map(|p| p["pid"].as_i64()).collect();
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    println!("{:>7} {:>7} {:>7} {:>4} CMD", "PID", "PPID", "UID", "THR");
    for p in &procs {
        let n = |k: &str| p[k].as_i64().unwrap_or(0);
        println!(
            "{:>7} {:>7} {:>7} {:>4} {}",
            n("pid"),
            n("ppid"),
            n("uid"),
            n("threads"),
            p["cmd"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// ps at the vm level: the container's processes as the guest agent sees
/// them, by guest pid (on the host there is only the VMM).
fn vm_ps(rt: &Runtime, id: &str, format: ListFormat) -> Result<()> {
    let pids = rt.vm_processes(id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    println!("{:>7}", "PID");
    for p in pids {
        println!("{p:>7}");
    }
    Ok(())
}
