//! `atoll metrics`: per-container and per-tenant metrics in the
//! Prometheus (OpenMetrics) text format.
//!
//! A read-only collector: every scrape reads the state root, each
//! container's cgroup, each running sandbox's counters (over its control
//! socket, with a timeout) and what was appended to the audit log since the
//! last scrape. Nothing is cached but the audit log's running counts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use atoll_policy::{AuditEvent, AuditRecord};
use atoll_runtime::meta::Meta;
use atoll_runtime::{Isolation, Runtime};
use clap::Args;
use libcontainer::container::ContainerStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Address to serve http://ADDR/metrics on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:9754", conflicts_with = "once")]
    pub listen: String,
    /// Print one scrape to stdout and exit
    #[arg(long)]
    pub once: bool,
}

/// The content type of prometheus-client's text encoding.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Limits above this are "no limit" (cgroup v1 reports unlimited memory as
/// a huge page-aligned number, v2 as u64::MAX).
const UNLIMITED: u64 = 1 << 62;

/// What one scrape saw of one container.
#[derive(Debug, Default)]
struct Sample {
    id: String,
    tenant: String,
    level: &'static str,
    status: &'static str,
    cpu_seconds: Option<f64>,
    memory_usage: Option<u64>,
    memory_limit: Option<u64>,
    pids: Option<u64>,
    oom_kills: Option<u64>,
    /// A running sandbox's kernel counters (`stats` reply).
    sandbox: Option<Value>,
}

fn status_name(s: ContainerStatus) -> &'static str {
    atoll_runtime::status::status_str(s)
}

fn sample(rt: &Runtime, id: &str) -> Option<Sample> {
    let meta = Meta::load(&rt.layout, id).ok()?;
    let (c, _) = rt.load(id).ok()?;
    let mut s = Sample {
        id: id.to_string(),
        tenant: meta.tenant.clone(),
        level: meta.level.as_str(),
        status: status_name(c.status()),
        ..Sample::default()
    };
    if matches!(
        c.status(),
        ContainerStatus::Running | ContainerStatus::Paused
    ) {
        match rt.stats(id) {
            Ok(st) => {
                s.cpu_seconds = st["cpu"]["usage"]["total"]
                    .as_u64()
                    .map(|ns| ns as f64 / 1e9);
                s.memory_usage = st["memory"]["usage"]["usage"].as_u64();
                s.memory_limit = st["memory"]["usage"]["limit"]
                    .as_u64()
                    .filter(|l| *l > 0 && *l < UNLIMITED);
                s.pids = st["pids"]["current"].as_u64();
            }
            Err(e) => tracing::debug!("metrics: stats of {id}: {e:#}"),
        }
        s.oom_kills = Some(rt.oom_kills(id));
    }
    if meta.level == Isolation::Userspace && c.status() == ContainerStatus::Running {
        match rt.sandbox_stats_within(id, Duration::from_secs(2)) {
            Ok(v) => s.sandbox = Some(v),
            Err(e) => tracing::debug!("metrics: sandbox counters of {id}: {e:#}"),
        }
    }
    Some(s)
}

/// Running counts from the audit log, read incrementally across scrapes.
#[derive(Debug, Default)]
struct AuditCounts {
    ino: u64,
    offset: u64,
    /// (tenant, rule) → refusals.
    refusals: BTreeMap<(String, String), u64>,
    /// (tenant, syscall) → refused calls of deleted sandboxes.
    syscalls_refused: BTreeMap<(String, String), u64>,
    /// (tenant, rule) → egress refusals of deleted sandboxes.
    egress_refused: BTreeMap<(String, String), u64>,
    /// (tenant, syscall) → unimplemented calls of deleted sandboxes.
    syscalls_enosys: BTreeMap<(String, String), u64>,
}

impl AuditCounts {
    /// Reads what was appended since the last call. A rotated or truncated
    /// log starts the counts over (a counter reset to Prometheus).
    fn update(&mut self, path: &Path) {
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        let Ok(meta) = f.metadata() else { return };
        if meta.ino() != self.ino || meta.len() < self.offset {
            *self = AuditCounts {
                ino: meta.ino(),
                ..AuditCounts::default()
            };
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        // Only complete lines; a torn last line is read next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        self.offset += end as u64 + 1;
        for line in buf[..end].split(|b| *b == b'\n') {
            let Ok(r) = serde_json::from_slice::<AuditRecord>(line) else {
                continue;
            };
            self.count(&r);
        }
    }

    fn count(&mut self, r: &AuditRecord) {
        let key = |s: &Option<String>| (r.tenant.clone(), s.clone().unwrap_or_default());
        match r.event {
            AuditEvent::Refuse => *self.refusals.entry(key(&r.rule)).or_default() += 1,
            AuditEvent::SyscallRefused => {
                *self.syscalls_refused.entry(key(&r.syscall)).or_default() += r.count.unwrap_or(0)
            }
            AuditEvent::SyscallUnimplemented => {
                *self.syscalls_enosys.entry(key(&r.syscall)).or_default() += r.count.unwrap_or(0)
            }
            AuditEvent::EgressRefused => {
                *self.egress_refused.entry(key(&r.rule)).or_default() += r.count.unwrap_or(0)
            }
            _ => {}
        }
    }
}

/// The collector: state root, cgroups, sandboxes, audit log.
pub struct AtollCollector {
    rt: Runtime,
    audit_log: PathBuf,
    audit: Mutex<AuditCounts>,
}

impl std::fmt::Debug for AtollCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtollCollector")
            .field("root", &self.rt.layout.root)
            .field("audit_log", &self.audit_log)
            .finish()
    }
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: name, help, unit, type and its samples.
struct Family<V> {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    samples: Vec<(Labels, V)>,
}

impl<V> Family<V> {
    fn new(name: &'static str, help: &'static str, unit: Option<Unit>) -> Self {
        Family {
            name,
            help,
            unit,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Labels, v: V) {
        self.samples.push((labels, v));
    }
}

fn encode_gauges<V>(e: &mut DescriptorEncoder, f: &Family<V>) -> std::fmt::Result
where
    V: prometheus_client::encoding::EncodeGaugeValue + Copy,
{
    if f.samples.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(f.name, f.help, f.unit.as_ref(), MetricType::Gauge)?;
    for (labels, v) in &f.samples {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn encode_counters<V>(e: &mut DescriptorEncoder, f: &Family<V>) -> std::fmt::Result
where
    V: prometheus_client::encoding::EncodeCounterValue + Copy,
{
    if f.samples.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(f.name, f.help, f.unit.as_ref(), MetricType::Counter)?;
    for (labels, v) in &f.samples {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// Sums per tenant.
#[derive(Default)]
struct TenantSums {
    running: BTreeMap<&'static str, i64>,
    cpu_seconds: f64,
    memory_usage: u64,
    memory_limit: u64,
    pids: u64,
    oom_kills: u64,
    sandbox_syscalls: u64,
}

fn counts(v: &Value, key: &str) -> Vec<(String, u64)> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

impl AtollCollector {
    pub fn new(rt: Runtime, audit_log: PathBuf) -> AtollCollector {
        AtollCollector {
            rt,
            audit_log,
            audit: Mutex::new(AuditCounts::default()),
        }
    }

    fn samples(&self) -> Vec<Sample> {
        let ids = match self.rt.layout.ids() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("metrics: state root {}: {e}", self.rt.layout.root.display());
                Vec::new()
            }
        };
        ids.iter().filter_map(|id| sample(&self.rt, id)).collect()
    }
}

impl Collector for AtollCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let samples = self.samples();
        let mut info = Family::<i64>::new(
            "atoll_container_info",
            "Every container in the state root (value 1), with its tenant, level and status.",
            None,
        );
        let mut cpu = Family::<f64>::new(
            "atoll_container_cpu",
            "CPU time used by the container's cgroup.",
            Some(Unit::Seconds),
        );
        let mut mem = Family::<i64>::new(
            "atoll_container_memory_usage",
            "Memory used by the container's cgroup.",
            Some(Unit::Bytes),
        );
        let mut mem_limit = Family::<i64>::new(
            "atoll_container_memory_limit",
            "Memory limit of the container's cgroup (absent when unlimited).",
            Some(Unit::Bytes),
        );
        let mut pids = Family::<i64>::new(
            "atoll_container_pids",
            "Processes in the container's cgroup (for a sandbox: its kernel, file server and stubs).",
            None,
        );
        let mut ooms = Family::<u64>::new(
            "atoll_container_oom_kills",
            "Processes of the container killed by the OOM killer.",
            None,
        );
        let mut sb_syscalls = Family::<u64>::new(
            "atoll_sandbox_syscalls",
            "Workload syscalls intercepted by a userspace sandbox's kernel.",
            None,
        );
        let mut sb_refused = Family::<u64>::new(
            "atoll_sandbox_syscalls_refused",
            "Workload syscalls a userspace sandbox refused (EPERM, never served), by syscall.",
            None,
        );
        let mut sb_enosys = Family::<u64>::new(
            "atoll_sandbox_syscalls_enosys",
            "Workload syscalls a userspace sandbox does not implement (ENOSYS), by syscall.",
            None,
        );
        let mut sb_procs = Family::<i64>::new(
            "atoll_sandbox_processes",
            "Processes inside a userspace sandbox, as its kernel counts them.",
            None,
        );
        let mut sb_mem = Family::<i64>::new(
            "atoll_sandbox_memory",
            "Workload memory held by a userspace sandbox's kernel (its memory file).",
            Some(Unit::Bytes),
        );

        let mut tenants: BTreeMap<String, TenantSums> = BTreeMap::new();
        for s in &samples {
            let base: Labels = vec![
                ("container", s.id.clone()),
                ("tenant", s.tenant.clone()),
                ("level", s.level.to_string()),
            ];
            let mut with_status = base.clone();
            with_status.push(("status", s.status.to_string()));
            info.push(with_status, 1);
            let t = tenants.entry(s.tenant.clone()).or_default();
            for l in Isolation::ALL {
                t.running.entry(l.as_str()).or_default();
            }
            if s.status == "running" {
                *t.running.entry(s.level).or_default() += 1;
            }
            if let Some(v) = s.cpu_seconds {
                cpu.push(base.clone(), v);
                t.cpu_seconds += v;
            }
            if let Some(v) = s.memory_usage {
                mem.push(base.clone(), v as i64);
                t.memory_usage += v;
            }
            if let Some(v) = s.memory_limit {
                mem_limit.push(base.clone(), v as i64);
                t.memory_limit += v;
            }
            if let Some(v) = s.pids {
                pids.push(base.clone(), v as i64);
                t.pids += v;
            }
            if let Some(v) = s.oom_kills {
                ooms.push(base.clone(), v);
                t.oom_kills += v;
            }
            if let Some(sb) = &s.sandbox {
                let short: Labels = vec![("container", s.id.clone()), ("tenant", s.tenant.clone())];
                if let Some(n) = sb["syscalls"].as_u64() {
                    sb_syscalls.push(short.clone(), n);
                    t.sandbox_syscalls += n;
                }
                if let Some(n) = sb["processes"].as_i64() {
                    sb_procs.push(short.clone(), n);
                }
                if let Some(n) = sb["memory_bytes"].as_i64() {
                    sb_mem.push(short.clone(), n);
                }
                for (name, n) in counts(sb, "refused") {
                    let mut l = short.clone();
                    l.push(("syscall", name));
                    sb_refused.push(l, n);
                }
                for (name, n) in counts(sb, "enosys") {
                    let mut l = short.clone();
                    l.push(("syscall", name));
                    sb_enosys.push(l, n);
                }
            }
        }

        let mut running = Family::<i64>::new(
            "atoll_tenant_containers_running",
            "Running containers of the tenant on this node, by isolation level.",
            None,
        );
        let mut t_cpu = Family::<f64>::new(
            "atoll_tenant_cpu",
            "CPU time of the tenant's current containers (a sum over containers: it drops when one is deleted; rate() the per-container counter instead).",
            Some(Unit::Seconds),
        );
        let mut t_mem = Family::<i64>::new(
            "atoll_tenant_memory_usage",
            "Memory used by the tenant's containers.",
            Some(Unit::Bytes),
        );
        let mut t_limit = Family::<i64>::new(
            "atoll_tenant_memory_limit",
            "Sum of the memory limits of the tenant's limited containers.",
            Some(Unit::Bytes),
        );
        let mut t_pids = Family::<i64>::new(
            "atoll_tenant_pids",
            "Processes in the tenant's containers' cgroups.",
            None,
        );
        let mut t_ooms = Family::<i64>::new(
            "atoll_tenant_oom_kills",
            "OOM kills in the tenant's current containers (a sum over containers).",
            None,
        );
        let mut t_syscalls = Family::<i64>::new(
            "atoll_tenant_sandbox_syscalls",
            "Syscalls intercepted in the tenant's running sandboxes (a sum over sandboxes).",
            None,
        );
        for (tenant, t) in &tenants {
            let tl: Labels = vec![("tenant", tenant.clone())];
            for (level, n) in &t.running {
                running.push(
                    vec![("tenant", tenant.clone()), ("level", level.to_string())],
                    *n,
                );
            }
            t_cpu.push(tl.clone(), t.cpu_seconds);
            t_mem.push(tl.clone(), t.memory_usage as i64);
            t_limit.push(tl.clone(), t.memory_limit as i64);
            t_pids.push(tl.clone(), t.pids as i64);
            t_ooms.push(tl.clone(), t.oom_kills as i64);
            t_syscalls.push(tl.clone(), t.sandbox_syscalls as i64);
        }

        let mut refusals = Family::<u64>::new(
            "atoll_policy_refusals",
            "Operations refused on this node, by tenant and rule (from the audit log).",
            None,
        );
        let mut a_refused = Family::<u64>::new(
            "atoll_tenant_syscalls_refused",
            "Syscalls refused in the tenant's deleted sandboxes, by syscall (from the audit log).",
            None,
        );
        let mut a_enosys = Family::<u64>::new(
            "atoll_tenant_syscalls_enosys",
            "Unimplemented syscalls in the tenant's deleted sandboxes, by syscall (from the audit log).",
            None,
        );
        let mut a_egress = Family::<u64>::new(
            "atoll_tenant_egress_refused",
            "Connects and sends the tenant's deleted sandboxes' network stacks refused, by rule (from the audit log).",
            None,
        );
        {
            let mut audit = self.audit.lock().unwrap_or_else(|p| p.into_inner());
            audit.update(&self.audit_log);
            for ((tenant, rule), n) in &audit.refusals {
                refusals.push(vec![("tenant", tenant.clone()), ("rule", rule.clone())], *n);
            }
            for ((tenant, sc), n) in &audit.syscalls_refused {
                a_refused.push(
                    vec![("tenant", tenant.clone()), ("syscall", sc.clone())],
                    *n,
                );
            }
            for ((tenant, rule), n) in &audit.egress_refused {
                a_egress.push(vec![("tenant", tenant.clone()), ("rule", rule.clone())], *n);
            }
            for ((tenant, sc), n) in &audit.syscalls_enosys {
                a_enosys.push(
                    vec![("tenant", tenant.clone()), ("syscall", sc.clone())],
                    *n,
                );
            }
        }

        encode_gauges(&mut e, &info)?;
        encode_counters(&mut e, &cpu)?;
        encode_gauges(&mut e, &mem)?;
        encode_gauges(&mut e, &mem_limit)?;
        encode_gauges(&mut e, &pids)?;
        encode_counters(&mut e, &ooms)?;
        encode_counters(&mut e, &sb_syscalls)?;
        encode_counters(&mut e, &sb_refused)?;
        encode_counters(&mut e, &sb_enosys)?;
        encode_gauges(&mut e, &sb_procs)?;
        encode_gauges(&mut e, &sb_mem)?;
        encode_gauges(&mut e, &running)?;
        encode_gauges(&mut e, &t_cpu)?;
        encode_gauges(&mut e, &t_mem)?;
        encode_gauges(&mut e, &t_limit)?;
        encode_gauges(&mut e, &t_pids)?;
        encode_gauges(&mut e, &t_ooms)?;
        encode_gauges(&mut e, &t_syscalls)?;
        encode_counters(&mut e, &refusals)?;
        encode_counters(&mut e, &a_refused)?;
        encode_counters(&mut e, &a_enosys)?;
        encode_counters(&mut e, &a_egress)?;
        Ok(())
    }
}

/// A registry holding the collector.
pub fn registry(rt: &Runtime, audit_log: &Path) -> Registry {
    let mut rt = rt.clone();
    // A read-only observer: no policy, no audit records of its own.
    rt.plugins = Default::default();
    let mut r = Registry::default();
    r.register_collector(Box::new(AtollCollector::new(rt, audit_log.to_path_buf())));
    r
}

/// One scrape, encoded.
pub fn scrape(registry: &Registry) -> Result<String> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)
        .map_err(|_| anyhow::anyhow!("encoding metrics failed"))?;
    Ok(body)
}

/// Most connections served at once; more get 503.
const MAX_CONNECTIONS: usize = 16;

fn respond(mut conn: TcpStream, registry: &Registry) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?).take(16 * 1024);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The headers are not needed; read them so the client sees a clean close.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => match scrape(registry) {
            Ok(b) => ("200 OK", CONTENT_TYPE, b),
            Err(e) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                format!("{e:#}\n"),
            ),
        },
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">atoll metrics</a></body></html>\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".into(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if method != "HEAD" {
        conn.write_all(body.as_bytes())?;
    }
    conn.flush()?;
    Ok(())
}

pub fn run(rt: &Runtime, audit_log: &Path, args: &MetricsArgs) -> Result<i32> {
    let registry = registry(rt, audit_log);
    if args.once {
        print!("{}", scrape(&registry)?);
        return Ok(0);
    }
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("atoll metrics: serving http://{addr}/metrics");
    std::io::stdout().flush().ok();
    let registry = std::sync::Arc::new(registry);
    let busy = std::sync::Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            let mut c = conn;
            let _ = c.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let (registry, busy) = (registry.clone(), busy.clone());
        std::thread::spawn(move || {
            if let Err(e) = respond(conn, &registry) {
                tracing::debug!("metrics: connection: {e:#}");
            }
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_policy::AuditDecision;

    #[test]
    fn audit_counts_are_incremental_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = atoll_policy::AuditLog::open(&path).unwrap();
        let refuse = |tenant: &str, rule: &str| AuditRecord {
            rule: Some(rule.into()),
            ..AuditRecord::new(AuditEvent::Refuse, tenant, "c", AuditDecision::Refuse)
        };
        log.append(&refuse("acme", "privileged")).unwrap();
        log.append(&refuse("acme", "privileged")).unwrap();
        log.append(&AuditRecord::syscall_refused(
            "acme",
            "c",
            atoll_policy::Level::Userspace,
            "mount",
            3,
        ))
        .unwrap();
        let mut c = AuditCounts::default();
        c.update(&path);
        assert_eq!(c.refusals[&("acme".into(), "privileged".into())], 2);
        assert_eq!(c.syscalls_refused[&("acme".into(), "mount".into())], 3);
        log.append(&refuse("beta", "max_containers")).unwrap();
        c.update(&path);
        c.update(&path);
        assert_eq!(c.refusals[&("acme".into(), "privileged".into())], 2);
        assert_eq!(c.refusals[&("beta".into(), "max_containers".into())], 1);

        std::fs::rename(&path, dir.path().join("old")).unwrap();
        let log = atoll_policy::AuditLog::open(&path).unwrap();
        log.append(&refuse("beta", "max_containers")).unwrap();
        c.update(&path);
        assert_eq!(c.refusals.len(), 1);
        assert_eq!(c.refusals[&("beta".into(), "max_containers".into())], 1);
    }

    #[test]
    fn an_empty_state_root_scrapes_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(dir.path().join("root"), false, Default::default());
        let body = scrape(&registry(&rt, &dir.path().join("none.jsonl"))).unwrap();
        assert_eq!(body, "# EOF\n");
    }
}
