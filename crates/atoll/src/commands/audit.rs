//! `atoll audit`: the audit trail, filtered, optionally followed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use atoll_policy::{AuditEvent, AuditRecord};
use clap::{Args, ValueEnum};

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Only this tenant's records
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this container's records
    #[arg(long)]
    pub container: Option<String>,
    /// Only these events (create, start, exec, kill, delete, refuse,
    /// syscall_refused, syscall_unimplemented; repeatable)
    #[arg(long, value_parser = parse_event)]
    pub event: Vec<AuditEvent>,
    /// Print only the last N matching records (then follow, with --follow)
    #[arg(short = 'n', long)]
    pub lines: Option<usize>,
    /// Keep printing records as they are appended (survives log rotation)
    #[arg(short, long)]
    pub follow: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
    pub format: AuditFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuditFormat {
    /// The records as written: one JSON object per line
    Json,
    /// One line per record: time, event, then key=value pairs
    Text,
}

fn parse_event(s: &str) -> Result<AuditEvent, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!(
            "unknown event {s:?} (expected create, start, exec, kill, delete, refuse, \
             syscall_refused, syscall_unimplemented or egress_refused)"
        )
    })
}

impl AuditArgs {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == r.tenant)
            && self.container.as_ref().is_none_or(|c| *c == r.container)
            && (self.event.is_empty() || self.event.contains(&r.event))
    }
}

/// One record as a line of text.
pub fn text_line(r: &AuditRecord) -> String {
    let event = serde_json::to_value(r.event)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let mut out = format!(
        "{} {event} tenant={} container={}",
        r.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        quote(&r.tenant),
        quote(&r.container)
    );
    let decision = serde_json::to_value(r.decision).unwrap_or_default();
    out.push_str(&format!(" decision={}", decision.as_str().unwrap_or("")));
    let mut field = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push_str(&format!(" {k}={}", quote(&v)));
        }
    };
    field("level", r.level.map(|l| l.to_string()));
    field("rule", r.rule.clone());
    field(
        "attempted",
        r.attempted
            .and_then(|a| serde_json::to_value(a).ok())
            .and_then(|v| v.as_str().map(String::from)),
    );
    field("syscall", r.syscall.clone());
    field("count", r.count.map(|c| c.to_string()));
    field("detail", r.detail.clone());
    field("error", r.error.clone());
    out
}

/// A value as is when it is one plain word, else JSON-quoted (so a
/// record is always one line and splits unambiguously).
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '=')
    {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// Reads an audit log from an offset, a complete line at a time.
struct Tail {
    path: PathBuf,
    file: Option<File>,
    /// Inode of the open file, to notice rotation.
    ino: u64,
    offset: u64,
    /// 1-based number of the next line.
    line: usize,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            offset: 0,
            line: 1,
            partial: Vec::new(),
        }
    }

    /// Opens the file if it is not open, or reopens it from the start if
    /// it was rotated (another inode at the path) or truncated. Returns
    /// false if there is no file.
    fn reopen_if_needed(&mut self) -> Result<bool> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(self.file.is_some()),
            Err(e) => return Err(e).with_context(|| format!("audit log {}", self.path.display())),
        };
        let rotated = meta.ino() != self.ino || meta.len() < self.offset;
        if self.file.is_none() || rotated {
            // Whatever the old file still had was read by the last poll.
            let f = File::open(&self.path)
                .with_context(|| format!("audit log {}", self.path.display()))?;
            self.ino = f.metadata()?.ino();
            self.file = Some(f);
            self.offset = 0;
            self.line = 1;
            self.partial.clear();
        }
        Ok(true)
    }

    /// Records appended since the last call. A line not yet ended by a
    /// newline waits for the next call (it is still being written).
    fn poll(&mut self) -> Result<Vec<AuditRecord>> {
        if !self.reopen_if_needed()? {
            return Ok(Vec::new());
        }
        let f = self.file.as_mut().expect("opened");
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .with_context(|| format!("audit log {}", self.path.display()))?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut out = Vec::new();
        // Without the final newline: one piece per line.
        for line in complete[..complete.len() - 1].split(|b| *b == b'\n') {
            let n = self.line;
            self.line += 1;
            let text = String::from_utf8_lossy(line);
            if text.trim().is_empty() {
                continue;
            }
            let r: AuditRecord = serde_json::from_str(&text)
                .with_context(|| format!("audit log {} line {n}", self.path.display()))?;
            out.push(r);
        }
        Ok(out)
    }
}

fn print(args: &AuditArgs, records: &[AuditRecord]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in records {
        let line = match args.format {
            AuditFormat::Json => serde_json::to_string(r)?,
            AuditFormat::Text => text_line(r),
        };
        if let Err(e) = writeln!(out, "{line}") {
            // A closed pipe (`atoll audit | head`) ends the command quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }
    out.flush().ok();
    Ok(())
}

pub fn run(path: &Path, args: &AuditArgs) -> Result<i32> {
    let mut tail = Tail::new(path);
    if !args.follow && !path.exists() {
        bail!(
            "audit log {} does not exist (nothing was recorded yet?)",
            path.display()
        );
    }
    let mut first: Vec<AuditRecord> = tail
        .poll()?
        .into_iter()
        .filter(|r| args.matches(r))
        .collect();
    if let Some(n) = args.lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    print(args, &first)?;
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let new: Vec<AuditRecord> = tail
            .poll()?
            .into_iter()
            .filter(|r| args.matches(r))
            .collect();
        print(args, &new)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_policy::{AuditDecision, AuditLog};

    #[test]
    fn tail_reads_complete_lines_and_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut tail = Tail::new(&path);
        assert!(tail.poll().unwrap().is_empty());
        let log = AuditLog::open(&path).unwrap();
        let rec = |id: &str| AuditRecord::new(AuditEvent::Start, "acme", id, AuditDecision::Allow);
        log.append(&rec("c1")).unwrap();
        log.append(&rec("c2")).unwrap();
        let got: Vec<String> = tail
            .poll()
            .unwrap()
            .into_iter()
            .map(|r| r.container)
            .collect();
        assert_eq!(got, ["c1", "c2"]);
        assert!(tail.poll().unwrap().is_empty());

        // A line being written is held back until its newline arrives.
        let line = serde_json::to_string(&rec("c3")).unwrap();
        let (a, b) = line.split_at(10);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(a.as_bytes()).unwrap();
        assert!(tail.poll().unwrap().is_empty());
        f.write_all(format!("{b}\n").as_bytes()).unwrap();
        assert_eq!(tail.poll().unwrap()[0].container, "c3");

        // Rotation: the file is renamed away and a new one started.
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        let log = AuditLog::open(&path).unwrap();
        log.append(&rec("c4")).unwrap();
        let got: Vec<String> = tail
            .poll()
            .unwrap()
            .into_iter()
            .map(|r| r.container)
            .collect();
        assert_eq!(got, ["c4"]);

        // A bad line is an error naming its line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        let e = format!("{:#}", tail.poll().unwrap_err());
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn filters_and_text() {
        let args = AuditArgs {
            tenant: Some("acme".into()),
            container: None,
            event: vec![AuditEvent::Refuse],
            lines: None,
            follow: false,
            format: AuditFormat::Text,
        };
        let mut r = AuditRecord::new(AuditEvent::Refuse, "acme", "c1", AuditDecision::Refuse);
        r.rule = Some("privileged".into());
        r.detail = Some("tenant \"acme\": rule privileged forbids x=y".into());
        assert!(args.matches(&r));
        let line = text_line(&r);
        assert!(line.contains(" refuse tenant=acme container=c1 decision=refuse rule=privileged detail=\"tenant \\\"acme\\\""), "{line}");
        r.tenant = "beta".into();
        assert!(!args.matches(&r));
        r.tenant = "acme".into();
        r.event = AuditEvent::Start;
        assert!(!args.matches(&r));
        assert_eq!(
            parse_event("syscall_refused").unwrap(),
            AuditEvent::SyscallRefused
        );
        assert!(parse_event("nope").is_err());
    }
}
