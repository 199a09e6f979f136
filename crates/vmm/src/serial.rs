//! The guest's COM1: a 16550 (vm-superio) whose output goes nowhere
//! unless asked, but whose last lines are kept so that a guest that fails
//! to boot can be explained.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// How much of the console a failure report can quote.
const TAIL_BYTES: usize = 8192;

/// Raises the serial interrupt through an irqfd.
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// The console's last bytes, shared with whoever reports a failure.
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<u8>>>);

impl Tail {
    pub fn text(&self) -> String {
        let t = self.0.lock().unwrap();
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The last non-empty console lines, joined with " | " (for one-line
    /// errors).
    pub fn last_lines(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c.is_control()))
            .filter(|l| !l.is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }
}

/// Where the guest's console output goes.
pub struct ConsoleOut {
    pub echo: Option<Box<dyn Write + Send>>,
    pub tail: Tail,
}

impl Write for ConsoleOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        {
            let mut t = self.tail.0.lock().unwrap();
            t.extend(buf);
            let excess = t.len().saturating_sub(TAIL_BYTES);
            t.drain(..excess);
        }
        if let Some(e) = &mut self.echo {
            let _ = e.write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(e) = &mut self.echo {
            let _ = e.flush();
        }
        Ok(())
    }
}

pub type Console = Serial<IrqTrigger, vm_superio::serial::NoEvents, ConsoleOut>;

pub fn new(irq: EventFd, out: ConsoleOut) -> Console {
    Serial::new(IrqTrigger(irq), out)
}
