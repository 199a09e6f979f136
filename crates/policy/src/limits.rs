//! `required_limits` and the resource ceilings.
//!
//! Values that mean "no limit" to libcgroups and runc (absent, 0 or -1 for
//! memory, absent or <= 0 for the cpu quota, absent or <= 0 for pids) count
//! as no limit, so they fail a requirement and exceed any ceiling.

use oci_spec::runtime::{LinuxResources, Spec};

use crate::model::Limit;

/// Default CFS period when the spec gives a quota without one.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

fn resources(spec: &Spec) -> Option<&LinuxResources> {
    spec.linux().as_ref().and_then(|l| l.resources().as_ref())
}

fn memory(spec: &Spec) -> Option<i64> {
    resources(spec)?.memory().as_ref()?.limit()
}

fn cpu(spec: &Spec) -> Option<(i64, u64)> {
    let c = resources(spec)?.cpu().as_ref()?;
    let period = c.period().filter(|p| *p > 0).unwrap_or(DEFAULT_CPU_PERIOD);
    Some((c.quota()?, period))
}

fn pids(spec: &Spec) -> Option<i64> {
    Some(resources(spec)?.pids().as_ref()?.limit())
}

fn shown(v: Option<i64>) -> String {
    v.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

const MEMORY: &str = "linux.resources.memory.limit";
const CPU: &str = "linux.resources.cpu.quota";
const PIDS: &str = "linux.resources.pids.limit";

pub fn first_missing(spec: &Spec, required: &[Limit]) -> Option<(String, String)> {
    required.iter().find_map(|l| {
        let (field, v) = match l {
            Limit::Memory => (MEMORY, memory(spec)),
            Limit::Cpu => (CPU, cpu(spec).map(|(q, _)| q)),
            Limit::Pids => (PIDS, pids(spec)),
        };
        (v.unwrap_or(0) <= 0).then(|| (field.to_string(), shown(v)))
    })
}

pub fn memory_over(spec: &Spec, max: u64) -> Option<(String, String)> {
    let v = memory(spec);
    match v {
        Some(b) if b > 0 && b as u64 <= max => None,
        _ => Some((MEMORY.to_string(), shown(v))),
    }
}

pub fn cpu_over(spec: &Spec, max: f64) -> Option<(String, String)> {
    match cpu(spec) {
        Some((q, p)) if q > 0 && q as f64 / p as f64 <= max => None,
        Some((q, p)) if q > 0 => Some((
            CPU.to_string(),
            format!("{q} (period {p}: {} cpus)", q as f64 / p as f64),
        )),
        other => Some((CPU.to_string(), shown(other.map(|(q, _)| q)))),
    }
}

pub fn pids_over(spec: &Spec, max: u64) -> Option<(String, String)> {
    let v = pids(spec);
    match v {
        Some(n) if n > 0 && n as u64 <= max => None,
        _ => Some((PIDS.to_string(), shown(v))),
    }
}
