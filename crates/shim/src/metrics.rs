//! Container statistics in containerd's format: `io.containerd.cgroups.v1.Metrics`
//! (what `ctr task metrics` prints and CRI's ContainerStats reads), from
//! the cgroup statistics atoll's runtime library collects.

use std::collections::HashMap;

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};

fn entry(m: &MemoryData) -> MemoryEntry {
    MemoryEntry {
        limit: m.limit,
        usage: m.usage,
        max: m.max_usage,
        failcnt: m.fail_count,
        ..Default::default()
    }
}

fn blkio(list: &[BlkioDeviceStat]) -> Vec<BlkIOEntry> {
    list.iter()
        .map(|e| BlkIOEntry {
            op: e.op_type.clone().unwrap_or_default(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

/// libcgroups' statistics as containerd's cgroup v1 metrics.
pub fn to_metrics(s: &Stats) -> Metrics {
    let u = &s.cpu.usage;
    let st: &HashMap<String, u64> = &s.memory.stats;
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    let memory = MemoryStat {
        cache: if s.memory.cache > 0 {
            s.memory.cache
        } else {
            g("cache")
        },
        rss: g("rss"),
        rss_huge: g("rss_huge"),
        mapped_file: g("mapped_file"),
        dirty: g("dirty"),
        writeback: g("writeback"),
        pg_pg_in: g("pgpgin"),
        pg_pg_out: g("pgpgout"),
        pg_fault: g("pgfault"),
        pg_maj_fault: g("pgmajfault"),
        inactive_anon: g("inactive_anon"),
        active_anon: g("active_anon"),
        inactive_file: g("inactive_file"),
        active_file: g("active_file"),
        unevictable: g("unevictable"),
        hierarchical_memory_limit: g("hierarchical_memory_limit"),
        hierarchical_swap_limit: g("hierarchical_memsw_limit"),
        total_cache: g("total_cache"),
        total_rss: g("total_rss"),
        total_rss_huge: g("total_rss_huge"),
        total_mapped_file: g("total_mapped_file"),
        total_dirty: g("total_dirty"),
        total_writeback: g("total_writeback"),
        total_pg_pg_in: g("total_pgpgin"),
        total_pg_pg_out: g("total_pgpgout"),
        total_pg_fault: g("total_pgfault"),
        total_pg_maj_fault: g("total_pgmajfault"),
        total_inactive_anon: g("total_inactive_anon"),
        total_active_anon: g("total_active_anon"),
        total_inactive_file: g("total_inactive_file"),
        total_active_file: g("total_active_file"),
        total_unevictable: g("total_unevictable"),
        usage: Some(entry(&s.memory.memory)).into(),
        swap: Some(entry(&s.memory.memswap)).into(),
        kernel: Some(entry(&s.memory.kernel)).into(),
        kernel_tcp: Some(entry(&s.memory.kernel_tcp)).into(),
        ..Default::default()
    };
    let mut hugetlb: Vec<HugetlbStat> = s
        .hugetlb
        .iter()
        .map(|(size, h)| HugetlbStat {
            usage: h.usage,
            max: h.max_usage,
            failcnt: h.fail_count,
            pagesize: size.clone(),
            ..Default::default()
        })
        .collect();
    hugetlb.sort_by(|a, b| a.pagesize.cmp(&b.pagesize));
    Metrics {
        hugetlb,
        pids: Some(PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(CPUStat {
            usage: Some(CPUUsage {
                total: u.usage_total,
                kernel: u.usage_kernel,
                user: u.usage_user,
                per_cpu: u.per_core_usage_total.clone(),
                ..Default::default()
            })
            .into(),
            throttling: Some(Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into(),
        memory: Some(memory).into(),
        blkio: Some(BlkIOStat {
            io_service_bytes_recursive: blkio(&s.blkio.service_bytes),
            io_serviced_recursive: blkio(&s.blkio.serviced),
            io_queued_recursive: blkio(&s.blkio.queued),
            io_service_time_recursive: blkio(&s.blkio.service_time),
            io_wait_time_recursive: blkio(&s.blkio.wait_time),
            io_merged_recursive: blkio(&s.blkio.merged),
            io_time_recursive: blkio(&s.blkio.time),
            sectors_recursive: blkio(&s.blkio.sectors),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::{Message, MessageFull};

    #[test]
    fn converts_and_names_the_type() {
        let mut s = Stats::default();
        s.cpu.usage.usage_total = 5_000;
        s.cpu.usage.per_core_usage_total = vec![2_000, 3_000];
        s.pids.current = 3;
        s.pids.limit = 100;
        s.memory.memory.usage = 4096;
        s.memory.memory.limit = 1 << 20;
        s.memory.stats.insert("total_rss".into(), 1234);
        s.memory.stats.insert("pgfault".into(), 7);
        let m = to_metrics(&s);
        assert_eq!(m.cpu.usage.total, 5_000);
        assert_eq!(m.cpu.usage.per_cpu, vec![2_000, 3_000]);
        assert_eq!((m.pids.current, m.pids.limit), (3, 100));
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 1 << 20);
        assert_eq!(m.memory.total_rss, 1234);
        assert_eq!(m.memory.pg_fault, 7);
        // containerd decodes the Any by this name
        assert_eq!(
            Metrics::descriptor().full_name(),
            "io.containerd.cgroups.v1.Metrics"
        );
        let bytes = m.write_to_bytes().unwrap();
        assert_eq!(Metrics::parse_from_bytes(&bytes).unwrap(), m);
    }
}
