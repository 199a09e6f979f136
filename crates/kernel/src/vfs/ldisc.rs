//! The line discipline of a pseudo-terminal (Linux's n_tty): what bytes
//! written to the master become for readers of the slave (input: line
//! editing, CR/NL mapping, echo, signal characters), and what bytes
//! written to the slave become for readers of the master (output: NL to
//! CR NL). Plain data, no waiting: the pty file code decides when to block.
//!
//! Both queues are bounded (Linux's 4 KiB input buffer, and a few KiB of
//! output), so a workload that never reads cannot grow kernel memory: a
//! writer finds no room and waits, echo beyond the bound is dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes of finished input a reader has not taken yet (N_TTY_BUF_SIZE).
pub const INPUT_MAX: usize = 4096;
/// Longest line being edited in canonical mode; more is dropped.
pub const LINE_MAX: usize = INPUT_MAX - 1;
/// Bytes of output the master has not read yet.
pub const OUTPUT_MAX: usize = 8192;

/// The kernel's struct termios (TCGETS/TCSETS), not glibc's larger one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KTermios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}

// Flags the line discipline acts on (asm-generic/termbits.h).
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const INLCR: u32 = 0o100;
pub const ISTRIP: u32 = 0o40;
pub const IUCLC: u32 = 0o1000;
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONLRET: u32 = 0o40;
pub const ONOCR: u32 = 0o20;
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const TOSTOP: u32 = 0o400;

pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VWERASE: usize = 14;
pub const VEOL2: usize = 16;

// SAFETY: four u32s and 20 bytes: no padding, any bit pattern is valid.
unsafe impl crate::mm::usercopy::Pod for KTermios {}

impl KTermios {
    /// A new terminal's settings (Linux's tty_std_termios): cooked mode
    /// with echo and signal characters, NL output as CR NL, 38400 baud.
    pub fn standard() -> KTermios {
        KTermios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: 0o17 | 0o60 | 0o200 | 0o2000, // B38400 | CS8 | CREAD | HUPCL
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: [
                3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0,
                0,
            ],
        }
    }

    pub fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    /// A special character is on unless it is _POSIX_VDISABLE (0).
    fn is(&self, c: u8, which: usize) -> bool {
        self.cc[which] != 0 && self.cc[which] == c
    }
}

/// What a read of the input queue found.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    /// End of file: an EOF character on an empty line (read returns 0).
    Eof,
    /// Nothing yet: the reader waits (or gets EAGAIN).
    Empty,
}

pub struct LineDisc {
    pub termios: KTermios,
    /// Finished input for the slave's readers.
    input: VecDeque<u8>,
    /// Absolute position of input's first byte.
    input_head: u64,
    /// Canonical mode: where each finished line ends (absolute positions);
    /// a read stops there. An EOF on an empty line is a zero-length line.
    line_ends: VecDeque<u64>,
    /// Canonical mode: the line being edited.
    line: Vec<u8>,
    /// Output for the master's readers.
    output: VecDeque<u8>,
    /// When input last arrived (non-canonical reads' VTIME counts from
    /// it: Linux's inter-byte timer restarts with each byte taken).
    last_input: Option<Instant>,
    /// A signal character flushed the queues (packet mode reports it).
    pub sig_flushed: bool,
    /// Output flow control (Linux's tty->flow): the slave's output is
    /// stopped, by a STOP character with IXON or by TCOOFF (`tco`, which
    /// only TCOON undoes). A stopped terminal takes no output: writers
    /// wait or get EAGAIN, as pty_write takes nothing while stopped.
    stopped: bool,
    tco_stopped: bool,
    /// Echo made while output is stopped, written when it restarts (n_tty
    /// keeps it in its echo buffer: a stopped tty has no write room).
    held_echo: Vec<u8>,
    /// Output stopped (true) or restarted (false) since the pty looked
    /// (packet mode reports it).
    pub flow_news: Option<bool>,
}

/// TCXONC's actions (tcflow).
pub const TCOOFF: u64 = 0;
pub const TCOON: u64 = 1;
pub const TCIOFF: u64 = 2;
pub const TCION: u64 = 3;

impl Default for LineDisc {
    fn default() -> Self {
        LineDisc {
            termios: KTermios::standard(),
            input: VecDeque::new(),
            input_head: 0,
            line_ends: VecDeque::new(),
            line: Vec::new(),
            output: VecDeque::new(),
            last_input: None,
            sig_flushed: false,
            stopped: false,
            tco_stopped: false,
            held_echo: Vec::new(),
            flow_news: None,
        }
    }
}

impl LineDisc {
    fn canonical(&self) -> bool {
        self.termios.l(ICANON)
    }

    fn input_end(&self) -> u64 {
        self.input_head + self.input.len() as u64
    }

    /// New settings (TCSETS*). Leaving canonical mode makes the line being
    /// edited readable; entering it makes what is already queued one line.
    pub fn set_termios(&mut self, t: KTermios) {
        let was = self.canonical();
        // Turning IXON off restarts output a STOP character stopped
        // (n_tty_set_termios).
        if self.termios.iflag & IXON != 0 && t.iflag & IXON == 0 {
            self.start();
        }
        self.termios = t;
        let now = self.canonical();
        if was && !now {
            let line = std::mem::take(&mut self.line);
            self.input.extend(line);
            self.line_ends.clear();
        } else if !was && now && !self.input.is_empty() {
            self.line_ends.clear();
            self.line_ends.push_back(self.input_end());
        }
    }

    /// Whether the slave polls readable (Linux's input_available_p for
    /// poll): a finished line; in non-canonical mode VMIN bytes when there
    /// is no timer (VTIME 0), else any byte.
    pub fn input_ready(&self) -> bool {
        if self.canonical() {
            !self.line_ends.is_empty()
        } else {
            let (min, time) = (self.termios.cc[VMIN], self.termios.cc[VTIME]);
            let need = if time == 0 && min > 0 {
                min as usize
            } else {
                1
            };
            self.input.len() >= need
        }
    }

    /// The non-canonical read timer (VTIME, tenths of a second).
    fn vtime(&self) -> Option<Duration> {
        let t = self.termios.cc[VTIME];
        (!self.canonical() && t > 0).then(|| Duration::from_millis(t as u64 * 100))
    }

    /// When a blocked slave read that started waiting (with `current` its
    /// deadline so far) gives up waiting and returns what is there
    /// (n_tty_read's timeout): with VMIN 0, VTIME after the read began;
    /// with VMIN and VTIME, VTIME after the last byte came (not before the
    /// read began), and no deadline before the first byte.
    pub fn read_deadline(&self, now: Instant, current: Option<Instant>) -> Option<Instant> {
        let time = self.vtime()?;
        let from_start = current.unwrap_or(now + time);
        if self.termios.cc[VMIN] == 0 {
            return Some(from_start);
        }
        if self.input.is_empty() {
            return None;
        }
        let from_last = self.last_input.map_or(from_start, |l| l + time);
        Some(from_start.max(from_last))
    }

    /// Bytes a slave read could take now (FIONREAD on the slave).
    pub fn input_len(&self) -> usize {
        if self.canonical() {
            self.line_ends
                .back()
                .map_or(0, |e| (e - self.input_head) as usize)
        } else {
            self.input.len()
        }
    }

    /// Whether the master may write (the input queue has room).
    pub fn input_room(&self) -> bool {
        self.input.len() < INPUT_MAX
    }

    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Whether the slave may write (the output queue has room for a byte
    /// and its NL expansion).
    pub fn output_room(&self) -> bool {
        !self.stopped && self.output.len() + 2 <= OUTPUT_MAX
    }

    /// Stops output (Linux's stop_tty).
    fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.flow_news = Some(true);
        }
    }

    /// Restarts output unless TCOOFF holds it (Linux's start_tty).
    fn start(&mut self) {
        if self.stopped && !self.tco_stopped {
            self.stopped = false;
            self.flow_news = Some(false);
            let held = std::mem::take(&mut self.held_echo);
            self.put_output(&held);
        }
    }

    /// TCXONC on the slave (n_tty_ioctl_helper): TCOOFF and TCOON stop
    /// and restart output; TCIOFF and TCION send the STOP or START
    /// character to the other end (as tty_send_xchar, even while output
    /// is stopped; nothing when the character is disabled); EINVAL for
    /// any other action.
    pub fn tcxonc(&mut self, action: u64) -> Result<(), crate::errno::Errno> {
        match action {
            TCOOFF => {
                if !self.tco_stopped {
                    // The stop comes first: TCOOFF on stopped output is no news.
                    self.stop();
                    self.tco_stopped = true;
                }
            }
            TCOON => {
                if self.tco_stopped {
                    self.tco_stopped = false;
                    self.start();
                }
            }
            TCIOFF | TCION => {
                let c = self.termios.cc[if action == TCIOFF { VSTOP } else { VSTART }];
                if c != 0 && self.output.len() < OUTPUT_MAX {
                    self.output.push_back(c);
                }
            }
            _ => return Err(crate::errno::Errno::EINVAL),
        }
        Ok(())
    }

    /// Drops the queued input (TCFLSH TCIFLUSH, signal characters).
    pub fn flush_input(&mut self) {
        self.input_head = self.input_end();
        self.input.clear();
        self.line_ends.clear();
        self.line.clear();
        // n_tty's flush resets its echo buffer too.
        self.held_echo.clear();
    }

    pub fn flush_output(&mut self) {
        self.output.clear();
    }

    /// Bytes written to the master, as the terminal's input. Returns how
    /// many were taken (fewer when the input queue is full) and appends
    /// the signals signal characters raise to `sigs`.
    pub fn receive(&mut self, bytes: &[u8], sigs: &mut Vec<i32>) -> usize {
        let before = self.input.len();
        let mut taken = bytes.len();
        for (i, &b) in bytes.iter().enumerate() {
            if !self.input_room() {
                taken = i;
                break;
            }
            self.receive_one(b, sigs);
        }
        if self.input.len() > before {
            self.last_input = Some(Instant::now());
        }
        taken
    }

    fn receive_one(&mut self, mut c: u8, sigs: &mut Vec<i32>) {
        let t = self.termios;
        if t.iflag & ISTRIP != 0 {
            c &= 0x7f;
        }
        // Flow control characters stop and restart output and go no
        // further; with IXANY any other character restarts it too
        // (n_tty_receive_char_flow_ctrl).
        if t.iflag & IXON != 0 {
            if t.is(c, VSTART) {
                self.start();
                return;
            }
            if t.is(c, VSTOP) {
                self.stop();
                return;
            }
            if t.iflag & IXANY != 0 {
                self.start();
            }
        }
        if c == b'\r' {
            if t.iflag & IGNCR != 0 {
                return;
            }
            if t.iflag & ICRNL != 0 {
                c = b'\n';
            }
        } else if c == b'\n' && t.iflag & INLCR != 0 {
            c = b'\r';
        }
        if t.iflag & IUCLC != 0 && t.l(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if t.l(ISIG) {
            let sig = if t.is(c, VINTR) {
                libc::SIGINT
            } else if t.is(c, VQUIT) {
                libc::SIGQUIT
            } else if t.is(c, VSUSP) {
                libc::SIGTSTP
            } else {
                0
            };
            if sig != 0 {
                sigs.push(sig);
                if !t.l(NOFLSH) {
                    self.flush_input();
                    self.flush_output();
                    self.sig_flushed = true;
                }
                // A signal character restarts stopped output
                // (n_tty_receive_signal_char).
                if t.iflag & IXON != 0 {
                    self.start();
                }
                self.echo(c);
                return;
            }
        }
        if self.canonical() {
            let werase = t.l(IEXTEN) && t.is(c, VWERASE);
            if t.is(c, VERASE) || werase {
                let mut erased = 0;
                // A word erase drops trailing blanks, then the word.
                while let Some(&last) = self.line.last() {
                    if werase && erased > 0 && last == b' ' {
                        break;
                    }
                    if werase && erased == 0 && last == b' ' {
                        self.line.pop();
                        self.echo_erase();
                        continue;
                    }
                    self.line.pop();
                    self.echo_erase();
                    erased += 1;
                    if !werase {
                        break;
                    }
                }
                return;
            }
            if t.is(c, VKILL) {
                let n = self.line.len();
                self.line.clear();
                if t.l(ECHO) {
                    if t.l(ECHOKE) && t.l(ECHOE) {
                        for _ in 0..n {
                            self.put_output(b"\x08 \x08");
                        }
                    } else {
                        self.echo(c);
                        if t.l(ECHOK) {
                            self.echo_raw(b'\n');
                        }
                    }
                }
                return;
            }
            if t.is(c, VEOF) {
                // The line is finished without the EOF character; on an
                // empty line it is a read of 0 bytes.
                self.finish_line();
                return;
            }
            let ends = c == b'\n' || t.is(c, VEOL) || t.is(c, VEOL2);
            if ends {
                self.line.push(c);
                if t.l(ECHO) || (c == b'\n' && t.l(ECHONL)) {
                    self.echo_raw(c);
                }
                self.finish_line();
                return;
            }
            if self.line.len() < LINE_MAX {
                self.line.push(c);
                self.echo(c);
            }
            return;
        }
        self.input.push_back(c);
        self.echo(c);
    }

    fn finish_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.input.extend(line);
        self.line_ends.push_back(self.input_end());
    }

    /// Echo of an input character, control characters as ^X (ECHOCTL).
    fn echo(&mut self, c: u8) {
        if !self.termios.l(ECHO) {
            return;
        }
        let ctl = (c < 0x20 && c != b'\t' && c != b'\n') || c == 0x7f;
        if ctl && self.termios.l(ECHOCTL) {
            self.put_output(&[b'^', c ^ 0x40]);
        } else {
            self.echo_raw(c);
        }
    }

    fn echo_raw(&mut self, c: u8) {
        if self.termios.l(ECHO) || c == b'\n' {
            self.put_output(&[c]);
        }
    }

    fn echo_erase(&mut self) {
        if self.termios.l(ECHO) && self.termios.l(ECHOE) {
            self.put_output(b"\x08 \x08");
        }
    }

    /// Echo goes through output processing; what does not fit is dropped
    /// (the master is not reading, and input must not wait for it).
    fn put_output(&mut self, bytes: &[u8]) {
        if self.stopped {
            let room = OUTPUT_MAX.saturating_sub(self.held_echo.len());
            self.held_echo.extend(bytes.iter().take(room));
            return;
        }
        for &b in bytes {
            if !self.output_room() {
                return;
            }
            self.transmit_one(b);
        }
    }

    /// Takes input for a slave read of at most `max` bytes: up to the end
    /// of the first line in canonical mode; otherwise as n_tty_read with
    /// VMIN and VTIME: VMIN bytes (or `max`, if fewer) or, once the read
    /// timer ran out (`timed_out`), what is there, nothing with VMIN 0; a
    /// read that may not wait (`nonblock`) takes what is there.
    pub fn read_input(&mut self, max: usize, timed_out: bool, nonblock: bool) -> Input {
        if self.canonical() {
            let Some(&end) = self.line_ends.front() else {
                return Input::Empty;
            };
            let avail = (end - self.input_head) as usize;
            if avail == 0 {
                self.line_ends.pop_front();
                return Input::Eof;
            }
            let n = avail.min(max);
            let data: Vec<u8> = self.input.drain(..n).collect();
            self.input_head += n as u64;
            if n == avail {
                self.line_ends.pop_front();
            }
            return Input::Data(data);
        }
        let (min, time) = (self.termios.cc[VMIN] as usize, self.termios.cc[VTIME]);
        let avail = self.input.len();
        let enough = if min == 0 {
            avail > 0
        } else {
            avail >= min.min(max)
        };
        if !enough {
            // VMIN 0: nothing when there is no timer or it ran out; with
            // VMIN, what came before the inter-byte timer ran out.
            return match (min, avail) {
                (0, _) if time == 0 || timed_out => Input::Eof,
                (m, a) if m > 0 && a > 0 && (nonblock || time > 0 && timed_out) => {
                    self.take_input(max)
                }
                _ => Input::Empty,
            };
        }
        self.take_input(max)
    }

    /// A non-canonical read waiting for VMIN bytes is interrupted: the
    /// bytes that came so far, which n_tty_read has copied out already
    /// (none in canonical mode: nothing is readable before a line ends).
    pub fn take_interrupted(&mut self, max: usize) -> Vec<u8> {
        if self.canonical() || self.termios.cc[VMIN] == 0 {
            return Vec::new();
        }
        match self.take_input(max) {
            Input::Data(d) => d,
            _ => Vec::new(),
        }
    }

    fn take_input(&mut self, max: usize) -> Input {
        let n = self.input.len().min(max);
        let data: Vec<u8> = self.input.drain(..n).collect();
        self.input_head += n as u64;
        Input::Data(data)
    }

    /// Bytes written to the slave, as the terminal's output. Returns how
    /// many were taken (fewer when the output queue is full).
    pub fn transmit(&mut self, bytes: &[u8]) -> usize {
        if self.stopped {
            return 0;
        }
        for (i, &b) in bytes.iter().enumerate() {
            if !self.output_room() {
                return i;
            }
            self.transmit_one(b);
        }
        bytes.len()
    }

    fn transmit_one(&mut self, c: u8) {
        let o = self.termios.oflag;
        if o & OPOST == 0 {
            self.output.push_back(c);
            return;
        }
        match c {
            b'\n' if o & ONLCR != 0 => self.output.extend(b"\r\n"),
            b'\r' if o & OCRNL != 0 => self.output.push_back(b'\n'),
            _ => self.output.push_back(c),
        }
    }

    /// Takes at most `max` bytes of output for a master read.
    pub fn read_output(&mut self, max: usize) -> Vec<u8> {
        let n = self.output.len().min(max);
        self.output.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(ld: &mut LineDisc) -> Vec<u8> {
        ld.read_output(usize::MAX)
    }

    #[test]
    fn canonical_lines_are_read_one_at_a_time_with_edits() {
        let mut ld = LineDisc::default();
        let mut sigs = vec![];
        assert_eq!(ld.receive(b"ab\x7fc\r", &mut sigs), 5);
        assert_eq!(ld.receive(b"xyz\x15ok\n", &mut sigs), 7);
        assert_eq!(
            ld.read_input(100, false, false),
            Input::Data(b"ac\n".to_vec())
        );
        assert_eq!(ld.read_input(1, false, false), Input::Data(b"o".to_vec()));
        assert_eq!(
            ld.read_input(100, false, false),
            Input::Data(b"k\n".to_vec())
        );
        assert_eq!(ld.read_input(100, false, false), Input::Empty);
        // An unfinished line is not readable; EOF on an empty line is 0.
        ld.receive(b"par", &mut sigs);
        assert!(!ld.input_ready());
        ld.receive(b"\x04\x04", &mut sigs);
        assert_eq!(
            ld.read_input(100, false, false),
            Input::Data(b"par".to_vec())
        );
        assert_eq!(ld.read_input(100, false, false), Input::Eof);
        assert!(sigs.is_empty());
        // Echo: typed characters, the erase, CR NL for the newlines.
        let echo = read_all(&mut ld);
        assert!(echo.starts_with(b"ab\x08 \x08c\r\n"), "{echo:?}");
    }

    #[test]
    fn signal_characters_raise_signals_and_flush() {
        let mut ld = LineDisc::default();
        let mut sigs = vec![];
        ld.receive(b"junk\x03\x1c\x1a", &mut sigs);
        assert_eq!(sigs, vec![libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP]);
        ld.receive(b"\n", &mut sigs);
        assert_eq!(
            ld.read_input(100, false, false),
            Input::Data(b"\n".to_vec())
        );
        let mut t = ld.termios;
        t.lflag &= !ISIG;
        ld.set_termios(t);
        sigs.clear();
        ld.receive(b"\x03\n", &mut sigs);
        assert!(sigs.is_empty());
        assert_eq!(
            ld.read_input(100, false, false),
            Input::Data(b"\x03\n".to_vec())
        );
    }

    #[test]
    fn raw_mode_passes_bytes_and_output_maps_newlines() {
        let mut ld = LineDisc::default();
        let mut t = ld.termios;
        t.lflag &= !(ICANON | ECHO | ISIG);
        t.iflag &= !ICRNL;
        ld.set_termios(t);
        let mut sigs = vec![];
        ld.receive(b"a\r\x03", &mut sigs);
        assert_eq!(ld.read_input(2, false, false), Input::Data(b"a\r".to_vec()));
        assert_eq!(
            ld.read_input(9, false, false),
            Input::Data(b"\x03".to_vec())
        );
        assert_eq!(ld.transmit(b"x\ny"), 3);
        assert_eq!(read_all(&mut ld), b"x\r\ny");
        t.oflag &= !OPOST;
        ld.set_termios(t);
        ld.transmit(b"x\n");
        assert_eq!(read_all(&mut ld), b"x\n");
    }

    fn raw(min: u8, time: u8) -> LineDisc {
        let mut ld = LineDisc::default();
        let mut t = ld.termios;
        t.lflag &= !(ICANON | ECHO | ISIG);
        t.cc[VMIN] = min;
        t.cc[VTIME] = time;
        ld.set_termios(t);
        ld
    }

    #[test]
    fn vmin_and_vtime_decide_when_a_raw_read_returns() {
        let mut sigs = vec![];
        // VMIN 0, VTIME 0: at once, with nothing.
        assert_eq!(raw(0, 0).read_input(9, false, false), Input::Eof);
        // VMIN 0, VTIME 5: waits for a byte until the timer runs out.
        let mut ld = raw(0, 5);
        assert_eq!(ld.read_input(9, false, false), Input::Empty);
        assert_eq!(ld.read_input(9, true, false), Input::Eof);
        ld.receive(b"a", &mut sigs);
        assert_eq!(ld.read_input(9, false, false), Input::Data(b"a".to_vec()));
        // VMIN 3: three bytes (or as many as the read takes).
        let mut ld = raw(3, 0);
        ld.receive(b"ab", &mut sigs);
        assert!(!ld.input_ready());
        assert_eq!(ld.read_input(9, false, false), Input::Empty);
        assert_eq!(ld.read_input(2, false, false), Input::Data(b"ab".to_vec()));
        ld.receive(b"cde", &mut sigs);
        assert!(ld.input_ready());
        assert_eq!(ld.read_input(9, false, false), Input::Data(b"cde".to_vec()));
        // A read that may not wait takes what is there (n_tty_read copies
        // as it goes and returns it at EAGAIN).
        ld.receive(b"f", &mut sigs);
        assert_eq!(ld.read_input(9, false, true), Input::Data(b"f".to_vec()));
        assert_eq!(ld.read_input(9, false, true), Input::Empty);
        // VMIN 3, VTIME 1: what came, once the inter-byte timer ran out.
        let mut ld = raw(3, 1);
        let now = Instant::now();
        assert_eq!(ld.read_deadline(now, None), None, "no timer before a byte");
        ld.receive(b"x", &mut sigs);
        assert!(ld.input_ready());
        let d = ld.read_deadline(now, None).unwrap();
        assert!(d >= now + Duration::from_millis(100));
        assert_eq!(ld.read_input(9, false, false), Input::Empty);
        assert_eq!(ld.read_input(9, true, false), Input::Data(b"x".to_vec()));
        // Canonical mode has no timer.
        assert_eq!(LineDisc::default().read_deadline(now, None), None);
    }

    #[test]
    fn queues_are_bounded() {
        let mut ld = LineDisc::default();
        let mut sigs = vec![];
        // A line that never ends stops growing (what is dropped is not
        // echoed either).
        let big = vec![b'a'; 3 * INPUT_MAX];
        assert_eq!(ld.receive(&big, &mut sigs), big.len());
        assert_eq!(ld.output_len(), LINE_MAX);
        ld.receive(b"\n", &mut sigs);
        assert_eq!(ld.input_len(), LINE_MAX + 1);
        let mut t = ld.termios;
        t.lflag &= !ICANON;
        ld.set_termios(t);
        assert!(ld.receive(&big, &mut sigs) < big.len());
        assert!(!ld.input_room());
        // Echo nobody reads is dropped once the output queue is full,
        // while the slave keeps reading input.
        for _ in 0..4 {
            while ld.read_input(usize::MAX, false, false) != Input::Empty {}
            ld.receive(&big, &mut sigs);
        }
        assert_eq!(ld.output_len(), OUTPUT_MAX - 1);
        // Output: the slave's writer is held back.
        ld.flush_output();
        assert!(ld.transmit(&big) < big.len());
        assert!(ld.output_len() <= OUTPUT_MAX);
    }

    #[test]
    fn an_interrupted_vmin_read_takes_what_came() {
        let mut ld = raw(5, 0);
        let mut sigs = Vec::new();
        ld.receive(b"ab", &mut sigs);
        assert_eq!(ld.read_input(10, false, false), Input::Empty);
        assert_eq!(ld.take_interrupted(10), b"ab");
        assert_eq!(ld.take_interrupted(10), b"");
        // Canonical mode: nothing is readable before the line ends.
        let mut ld = LineDisc::default();
        ld.receive(b"ab", &mut sigs);
        assert_eq!(ld.take_interrupted(10), b"");
    }

    #[test]
    fn stop_and_start_characters_and_tcflow_control_output() {
        let mut ld = raw(1, 0);
        let mut sigs = Vec::new();
        ld.receive(b"\x13", &mut sigs);
        assert_eq!(ld.flow_news.take(), Some(true));
        assert!(!ld.output_room());
        assert_eq!(ld.transmit(b"x"), 0);
        ld.receive(b"\x11", &mut sigs);
        assert_eq!(ld.flow_news.take(), Some(false));
        assert_eq!(ld.transmit(b"y"), 1);
        // Neither character is input.
        assert_eq!(ld.read_input(10, false, true), Input::Empty);
        // TCOOFF holds against ^Q until TCOON.
        ld.tcxonc(TCOOFF).unwrap();
        ld.receive(b"\x11", &mut sigs);
        assert_eq!(ld.transmit(b"x"), 0);
        ld.tcxonc(TCOON).unwrap();
        assert_eq!(ld.transmit(b"z"), 1);
        // TCIOFF and TCION send the characters, stopped or not.
        ld.tcxonc(TCIOFF).unwrap();
        ld.tcxonc(TCION).unwrap();
        assert_eq!(ld.read_output(10), b"yz\x13\x11");
        assert!(ld.tcxonc(7).is_err());
        // IXANY: any character restarts output and is input.
        let mut t = ld.termios;
        t.iflag |= IXANY;
        ld.set_termios(t);
        ld.receive(b"\x13q", &mut sigs);
        assert!(ld.output_room());
        assert_eq!(ld.read_input(10, false, true), Input::Data(b"q".to_vec()));
        // Echo while stopped waits for the restart.
        t.iflag &= !IXANY;
        t.lflag |= ECHO;
        ld.set_termios(t);
        ld.read_output(100);
        ld.receive(b"\x13e", &mut sigs);
        assert_eq!(ld.read_output(10), b"");
        ld.receive(b"\x11", &mut sigs);
        assert_eq!(ld.read_output(10), b"e");
        // IXON off restarts stopped output.
        ld.receive(b"\x13", &mut sigs);
        t.iflag &= !IXON;
        ld.set_termios(t);
        assert!(ld.output_room());
    }
}
