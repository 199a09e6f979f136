//! Logs as runc writes them, because clients parse them: containerd's runc
//! shim reads the log file and reports the last `"level":"error"` entry's
//! `msg` when a command fails.
//!
//! JSON: `{"level":"error","msg":"...","time":"2026-01-01T00:00:00Z"}`
//! text: `time="2026-01-01T00:00:00Z" level=error msg="..."` (logrus style)

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::cli::LogFormat;

pub struct RuncLog {
    out: Mutex<Box<dyn Write + Send>>,
    pub json: bool,
    max: Level,
    /// Messages from libcontainer and libcgroups: only with --debug. They
    /// repeat what atoll's own error says, and in the container's init they
    /// would land on the container's stderr.
    libraries: bool,
    /// Set when logs go to a file: the final error is also printed on stderr.
    pub to_file: bool,
}

struct MsgVisitor {
    msg: String,
    fields: String,
}

impl Visit for MsgVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "debug",
    }
}

impl RuncLog {
    pub fn line(&self, level: &Level, msg: &str) -> String {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        if self.json {
            let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
            format!("{v}\n")
        } else {
            format!("time={time:?} level={} msg={msg:?}\n", level_name(level))
        }
    }

    pub fn write(&self, level: &Level, msg: &str) {
        let line = self.line(level, msg);
        if let Ok(mut out) = self.out.lock() {
            // One write per line: with O_APPEND, lines from several
            // processes (create and the container's init) never interleave.
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

impl RuncLog {
    /// Writes to the log file, if logs go to one (stderr gets its own line).
    pub fn write_file_only(&self, level: &Level, msg: &str) {
        if self.to_file {
            self.write(level, msg);
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max {
            return;
        }
        let target = meta.target();
        let is_library = target.starts_with("libcontainer") || target.starts_with("libcgroups");
        if is_library && !self.libraries {
            // Not shown, but the root cause of a failure may be only here.
            if *meta.level() == Level::ERROR {
                let mut v = MsgVisitor {
                    msg: String::new(),
                    fields: String::new(),
                };
                event.record(&mut v);
                crate::root_cause::record(&v.msg, &v.fields);
            }
            return;
        }
        let mut v = MsgVisitor {
            msg: String::new(),
            fields: String::new(),
        };
        event.record(&mut v);
        let msg = if v.fields.is_empty() {
            v.msg
        } else {
            format!("{}{}", v.msg, v.fields)
        };
        self.write(meta.level(), &msg);
    }
}

/// The logger, shared so `main` can write the final error line itself.
pub static LOG: std::sync::OnceLock<std::sync::Arc<RuncLog>> = std::sync::OnceLock::new();

struct Shared(std::sync::Arc<RuncLog>);
impl<S: Subscriber> Layer<S> for Shared {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx)
    }
}

pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) -> anyhow::Result<()> {
    let (out, to_file): (Box<dyn Write + Send>, bool) = match log {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("log file {}: {e}", p.display()))?;
            (Box::new(f), true)
        }
        None => (Box::new(std::io::stderr()), false),
    };
    let logger = std::sync::Arc::new(RuncLog {
        out: Mutex::new(out),
        json: format == LogFormat::Json,
        max: if debug { Level::DEBUG } else { Level::WARN },
        libraries: debug,
        to_file,
    });
    let _ = LOG.set(logger.clone());
    tracing_subscriber::registry().with(Shared(logger)).init();
    Ok(())
}
