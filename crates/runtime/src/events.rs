//! `events`: resource statistics in runc's JSON (`types/events.go`), which
//! containerd and monitoring tools parse, and OOM notifications.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use libcgroups::common::CgroupManager;
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use libcontainer::container::ContainerStatus;
use serde_json::{Value, json};

use crate::lifecycle::Runtime;

fn mem_entry(m: &MemoryData) -> Value {
    json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count})
}

fn blkio(entries: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({"major": e.major, "minor": e.minor,
                       "op": e.op_type.clone().unwrap_or_default(), "value": e.value})
            })
            .collect(),
    )
}

/// runc's `Stats` object from libcgroups' statistics.
pub fn runc_stats(s: &Stats) -> Value {
    let u = &s.cpu.usage;
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({"usage": v.usage, "max": v.max_usage, "failcnt": v.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": u.usage_total, "kernel": u.usage_kernel, "user": u.usage_user,
                "percpu": u.per_core_usage_total, "percpu_kernel": u.per_core_usage_kernel,
                "percpu_user": u.per_core_usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttledPeriods": s.cpu.throttling.throttled_periods,
                "throttledTime": s.cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": mem_entry(&s.memory.memory),
            "swap": mem_entry(&s.memory.memswap),
            "kernel": mem_entry(&s.memory.kernel),
            "kernelTCP": mem_entry(&s.memory.kernel_tcp),
            "raw": s.memory.stats,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio(&s.blkio.service_bytes),
            "ioServicedRecursive": blkio(&s.blkio.serviced),
            "ioQueueRecursive": blkio(&s.blkio.queued),
            "ioServiceTimeRecursive": blkio(&s.blkio.service_time),
            "ioWaitTimeRecursive": blkio(&s.blkio.wait_time),
            "ioMergedRecursive": blkio(&s.blkio.merged),
            "ioTimeRecursive": blkio(&s.blkio.time),
            "sectorsRecursive": blkio(&s.blkio.sectors),
        },
        "hugetlb": hugetlb,
    })
}

impl Runtime {
    /// Statistics of a running container as runc's `Stats` object.
    pub fn stats(&self, id: &str) -> Result<Value> {
        let (c, _) = self.load(id)?;
        if !matches!(
            c.status(),
            ContainerStatus::Running | ContainerStatus::Paused
        ) {
            bail!(
                "container {id} is not running (it is {})",
                crate::status::status_str(c.status())
            );
        }
        Ok(runc_stats(&self.cgroup_stats(id)?))
    }

    /// A container's cgroup statistics. A pod container at the userspace
    /// level runs in its pod's kernel: its cgroup holds only its proxy
    /// init, its processes' stubs are in the sandbox container's, so its
    /// memory and task counts add what that kernel counts for it.
    pub fn cgroup_stats(&self, id: &str) -> Result<Stats> {
        let m = self.cgroup_manager(id)?;
        let mut s = m
            .stats()
            .map_err(|e| anyhow!("statistics of container {id}: {e}"))?;
        let member = crate::meta::Meta::load(&self.layout, id)
            .ok()
            .and_then(|m| m.pod_sandbox)
            .is_some();
        if member {
            let k = self
                .sandbox_stats_within(id, Duration::from_secs(2))
                .map_err(|e| {
                    anyhow!("statistics of container {id} from its pod's kernel: {e:#}")
                })?;
            let mem = &mut s.memory.memory;
            mem.usage += k["memory_bytes"].as_u64().unwrap_or(0);
            mem.max_usage = mem.max_usage.max(mem.usage);
            s.pids.current += k["threads"].as_u64().unwrap_or(0);
        }
        Ok(s)
    }

    /// OOM kills recorded by the memory controller (cgroup v1 oom_control,
    /// v2 memory.events).
    pub fn oom_kills(&self, id: &str) -> u64 {
        let (path, _) = crate::cleanup::cgroup_of(self, id);
        let rel = path.to_string_lossy().trim_start_matches('/').to_string();
        for (file, key) in [
            (
                format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
                "oom_kill ",
            ),
            (format!("/sys/fs/cgroup/{rel}/memory.events"), "oom_kill "),
            (
                format!("/sys/fs/cgroup/unified/{rel}/memory.events"),
                "oom_kill ",
            ),
        ] {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(n) = text
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|n| n.trim().parse().ok())
            {
                return n;
            }
        }
        0
    }

    /// `events`: one stats event with `--stats`, else a stream of stats
    /// every `interval` seconds plus an `oom` event whenever a process of
    /// the container is OOM-killed, until the container stops.
    pub fn events(&self, id: &str, interval: u32, stats_once: bool) -> Result<()> {
        let event = |t: &str, data: Option<Value>| {
            let mut e = json!({"type": t, "id": id});
            if let Some(d) = data {
                e["data"] = d;
            }
            println!("{e}");
        };
        if stats_once {
            event("stats", Some(self.stats(id)?));
            return Ok(());
        }
        let mut ooms = self.oom_kills(id);
        loop {
            let s = match self.stats(id) {
                Ok(s) => s,
                Err(_) => return Ok(()), // stopped: the stream ends
            };
            let now = self.oom_kills(id);
            if now > ooms {
                event("oom", None);
                ooms = now;
            }
            event("stats", Some(s));
            std::thread::sleep(Duration::from_secs(interval as u64));
        }
    }
}
