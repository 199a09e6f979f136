//! Pseudo-terminal pairs: the master (what /dev/ptmx opens) and the slave
//! (/dev/pts/N), joined by a line discipline (ldisc.rs), with the terminal
//! ioctls, hangup, and the controlling-terminal and foreground-process-
//! group bookkeeping of job control. The filesystem that names them is
//! devpts.rs.
//!
//! A pty is the controlling terminal of at most one session, recorded on
//! the pty (Linux records it on both the tty and the process; the sandbox's
//! processes of one session share it, which is what session leaders and
//! shells rely on).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::file::{File, FileOps, POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::iov::IoVecs;
use super::ldisc::{Input, KTermios, LineDisc};
use crate::errno::{Errno, SysResult};
use crate::kernel::ttysig::{self, Target};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Pid, Tid};

/// Bytes moved through the line discipline per step of a read or write.
const STEP: usize = 4096;

// Terminal ioctls not in the libc crate for every target.
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;
const TIOCPKT: u64 = 0x5420;
const TIOCGPKT: u64 = 0x8004_5438;

// Packet mode's status bits (TIOCPKT_*), a master read's first byte.
const PKT_FLUSHREAD: u8 = 1;
const PKT_FLUSHWRITE: u8 = 2;
const PKT_STOP: u8 = 4;
const PKT_START: u8 = 8;
const PKT_NOSTOP: u8 = 16;
const PKT_DOSTOP: u8 = 32;
const POLLPRI: u32 = libc::POLLPRI as u32;

pub struct Pty {
    pub index: u32,
    ld: RefCell<LineDisc>,
    /// The master's waiters: output to read, room for input, hangup.
    mq: WaitQueue,
    /// The slave's waiters: input to read, room for output, hangup.
    sq: WaitQueue,
    /// A new pty's slave cannot be opened until unlockpt (TIOCSPTLCK 0).
    locked: Cell<bool>,
    /// Open slave files; when the last closes the master reads EIO
    /// (Linux's TTY_OTHER_CLOSED), until a slave is opened again.
    slaves: Cell<u32>,
    slave_closed: Cell<bool>,
    /// The master was closed: the slave is hung up.
    master_gone: Cell<bool>,
    winsize: Cell<libc::winsize>,
    /// The session this is the controlling terminal of, and its
    /// foreground process group.
    session: Cell<Option<Pid>>,
    fg_pgrp: Cell<Pid>,
    /// Packet mode (TIOCPKT on the master), and the status changes its
    /// reader has not read yet (Linux's ctrl.pktstatus).
    packet: Cell<bool>,
    pkt_status: Cell<u8>,
    /// The master's own output stopped by TCOOFF on it: its writes take
    /// nothing (pty_write of the master) until TCOON.
    master_stopped: Cell<bool>,
    /// The slave node's owner and mode (devpts's /dev/pts/N).
    pub owner: Cell<(u32, u32, u32)>,
    /// devpts instance: device number, and the table the index is freed
    /// from when the master closes.
    pub dev: u64,
    table: Weak<RefCell<super::devpts::PtyTable>>,
}

thread_local! {
    /// Every live pty, to find a session's controlling terminal.
    static PTYS: RefCell<Vec<Weak<Pty>>> = const { RefCell::new(Vec::new()) };
}

/// The pty that is `sid`'s controlling terminal, if any.
pub fn ctty_of(sid: Pid) -> Option<Rc<Pty>> {
    PTYS.with(|p| {
        p.borrow()
            .iter()
            .filter_map(|w| w.upgrade())
            .find(|t| t.session.get() == Some(sid) && !t.master_gone.get())
    })
}

/// A session leader exited: its controlling terminal's foreground group
/// is hung up (SIGHUP, SIGCONT) and the terminal has no session any more.
pub fn session_ended(sid: Pid) {
    if let Some(t) = ctty_of(sid) {
        t.disassociate();
    }
}

impl Pty {
    pub fn new(
        index: u32,
        dev: u64,
        owner: (u32, u32, u32),
        table: Weak<RefCell<super::devpts::PtyTable>>,
    ) -> Rc<Pty> {
        let p = Rc::new(Pty {
            index,
            ld: RefCell::new(LineDisc::default()),
            mq: WaitQueue::new(),
            sq: WaitQueue::new(),
            locked: Cell::new(true),
            slaves: Cell::new(0),
            slave_closed: Cell::new(false),
            master_gone: Cell::new(false),
            // SAFETY: winsize is plain data.
            winsize: Cell::new(unsafe { std::mem::zeroed() }),
            session: Cell::new(None),
            fg_pgrp: Cell::new(0),
            packet: Cell::new(false),
            pkt_status: Cell::new(0),
            master_stopped: Cell::new(false),
            owner: Cell::new(owner),
            dev,
            table,
        });
        PTYS.with(|t| {
            let mut t = t.borrow_mut();
            t.retain(|w| w.strong_count() > 0);
            t.push(Rc::downgrade(&p));
        });
        p
    }

    /// Whether the slave may be opened: unlocked, master still open.
    pub fn may_open_slave(&self) -> SysResult<()> {
        if self.locked.get() || self.master_gone.get() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    pub fn master_gone(&self) -> bool {
        self.master_gone.get()
    }

    /// The master end (a fresh pty from /dev/ptmx).
    pub fn master(self: &Rc<Self>) -> Rc<Master> {
        Rc::new(Master(self.clone()))
    }

    /// A new open of the slave. Without O_NOCTTY, a session leader with no
    /// controlling terminal gets this one (Linux's tty_open_proc_set_tty).
    pub fn open_slave(self: &Rc<Self>, k: &Kernel, flags: i32) -> SysResult<Rc<Slave>> {
        self.may_open_slave()?;
        self.slaves.set(self.slaves.get() + 1);
        self.slave_closed.set(false);
        if flags & libc::O_NOCTTY == 0 {
            let tid = k.current.get();
            let g = k.tasks.get(&tid).and_then(|t| k.groups.get(&t.tgid));
            if let Some(g) = g
                && g.sid == g.tgid
                && self.session.get().is_none()
                && ctty_of(g.sid).is_none()
            {
                self.session.set(Some(g.sid));
                self.fg_pgrp.set(g.pgid);
            }
        }
        Ok(Rc::new(Slave(self.clone())))
    }

    /// The slave's stat (devpts: inode N + 3, char device 136+N/256:N%256).
    pub fn slave_stat(&self) -> libc::stat {
        let (uid, gid, mode) = self.owner.get();
        let mut st = super::stat_of(
            self.dev,
            self.index as u64 + 3,
            libc::S_IFCHR | (mode & 0o7777),
            1,
        );
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_rdev = libc::makedev(136 + self.index / 256, self.index % 256);
        st.st_blksize = 1024;
        st
    }

    fn raise(&self, sig: i32) {
        let pg = self.fg_pgrp.get();
        if self.session.get().is_some() && pg > 0 {
            ttysig::raise(Target::Pgrp(pg), sig);
        }
    }

    /// The session lets go of the terminal: its foreground group is hung
    /// up (Linux's disassociate_ctty).
    fn disassociate(&self) {
        self.raise(libc::SIGHUP);
        self.raise(libc::SIGCONT);
        self.session.set(None);
        self.fg_pgrp.set(0);
    }

    /// The queues' state, before a read or write, for [`Pty::wake`].
    fn queues(&self) -> Queues {
        let ld = self.ld.borrow();
        Queues {
            input: ld.input_len(),
            output: ld.output_len(),
            input_room: ld.input_room(),
            output_room: ld.output_room(),
        }
    }

    /// Wakes whoever what changed since `before` concerns, with the kind
    /// of event n_tty wakes with: readers when data arrived (a line, in
    /// canonical mode); the other end's writers when a read left its
    /// queue nearly empty (n_tty_check_unthrottle wakes a pty's peer at
    /// TTY_THRESHOLD_UNTHROTTLE), or room came to a queue that had none.
    /// Nothing else, so an edge-triggered epoll is not told of its own
    /// reads and writes.
    fn wake(&self, before: Queues) {
        const UNTHROTTLE: usize = 128;
        let now = self.queues();
        if now.input > before.input {
            self.sq.notify(POLLIN);
        }
        if now.output > before.output {
            self.mq.notify(POLLIN);
        }
        let took = |was: usize, is: usize| is < was && is <= UNTHROTTLE;
        if took(before.output, now.output) || now.output_room && !before.output_room {
            self.sq.notify(POLLOUT);
        }
        if took(before.input, now.input) || now.input_room && !before.input_room {
            self.mq.notify(POLLOUT);
        }
    }

    /// Settings or queues changed wholesale (termios, a flush): everyone
    /// looks again (Linux wakes both queues without a key).
    fn wake_all(&self) {
        self.sq.notify_all();
        self.mq.notify_all();
    }

    /// Packet mode: `bits` of status for the master's reader.
    fn pkt_event(&self, bits: u8) {
        if self.packet.get() && bits != 0 {
            self.pkt_status.set(self.pkt_status.get() | bits);
            self.mq.notify(POLLIN | POLLPRI);
        }
    }

    /// The slave's output was stopped or restarted: a packet-mode master's
    /// reader learns it (pty_stop, pty_start), its writers may write again.
    fn flow_changed(&self) {
        let Some(stopped) = self.ld.borrow_mut().flow_news.take() else {
            return;
        };
        if self.packet.get() {
            let (on, off) = if stopped {
                (PKT_STOP, PKT_START)
            } else {
                (PKT_START, PKT_STOP)
            };
            self.pkt_status.set(self.pkt_status.get() & !off);
            self.pkt_event(on);
        }
    }

    /// TCXONC (tcflow) on either end: the slave's output flow control,
    /// or the master's own output; TCIOFF and TCION on the master send
    /// the STOP or START character to the slave as input (where IXON
    /// acts on it).
    fn tcxonc(&self, master: bool, action: u64) -> SysResult<u64> {
        use super::ldisc::{TCIOFF, TCION, TCOOFF, TCOON, VSTART, VSTOP};
        let before = self.queues();
        if !master {
            self.ld
                .borrow_mut()
                .tcxonc(action)
                .map_err(|_| Errno::EINVAL)?;
        } else {
            match action {
                TCOOFF => self.master_stopped.set(true),
                TCOON => {
                    self.master_stopped.set(false);
                    self.mq.notify(POLLOUT);
                }
                TCIOFF | TCION => {
                    let mut ld = self.ld.borrow_mut();
                    let c = ld.termios.cc[if action == TCIOFF { VSTOP } else { VSTART }];
                    if c != 0 {
                        let mut sigs = Vec::new();
                        ld.receive(&[c], &mut sigs);
                        drop(ld);
                        for s in sigs {
                            self.raise(s);
                        }
                    }
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        self.flow_changed();
        self.wake(before);
        Ok(0)
    }

    /// New settings: in packet mode, the master's reader learns whether
    /// ^S/^Q flow control is now on or off (pty_set_termios).
    fn termios_changed(&self, old: &KTermios, new: &KTermios) {
        let flow = |t: &KTermios| {
            t.iflag & super::ldisc::IXON != 0
                && t.cc[super::ldisc::VSTOP] == 0x13
                && t.cc[super::ldisc::VSTART] == 0x11
        };
        if flow(old) != flow(new) && self.packet.get() {
            let s = self.pkt_status.get() & !(PKT_DOSTOP | PKT_NOSTOP);
            self.pkt_status.set(s);
            self.pkt_event(if flow(new) { PKT_DOSTOP } else { PKT_NOSTOP });
        }
    }

    /// Job control (Linux's __tty_check_change): a process of a background
    /// group of the terminal's session that reads it (SIGTTIN), writes it
    /// with TOSTOP or changes its settings (SIGTTOU) stops its group with
    /// the signal and retries after SIGCONT. A blocked or ignored SIGTTIN
    /// makes the read EIO, a blocked or ignored SIGTTOU lets the write
    /// through; an orphaned group (nobody to continue it) gets EIO.
    fn job_control(&self, k: &Kernel, tid: Tid, sig: i32) -> SysResult<()> {
        let g = k.group_of(tid);
        let fg = self.fg_pgrp.get();
        if self.session.get() != Some(g.sid) || fg <= 0 || g.pgid == fg {
            return Ok(());
        }
        let t = k.task(tid);
        if t.sigmask.has(sig)
            || t.sighand.borrow().get(sig).handler == crate::kernel::signal::SIG_IGN
        {
            return if sig == libc::SIGTTIN {
                Err(Errno::EIO)
            } else {
                Ok(())
            };
        }
        if pgrp_orphaned(k, g.pgid) {
            return Err(Errno::EIO);
        }
        ttysig::raise(Target::Pgrp(g.pgid), sig);
        Err(Errno::ERESTARTSYS)
    }

    /// Terminal ioctls both ends answer; `master` tells which end asked.
    fn ioctl(&self, k: &mut Kernel, master: bool, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        let mm = k.task_mm(tid);
        let g = k.group_of(tid);
        let (me, sid, pgid) = (g.tgid, g.sid, g.pgid);
        let mine = self.session.get() == Some(sid);
        match cmd {
            libc::TCGETS => {
                let t = self.ld.borrow().termios;
                mm.borrow().write_val(arg, &t)?;
                Ok(0)
            }
            libc::TCSETS | libc::TCSETSW | libc::TCSETSF => {
                let t: KTermios = mm.borrow().read_val(arg)?;
                if !master {
                    self.job_control(k, tid, libc::SIGTTOU)?;
                }
                let mut ld = self.ld.borrow_mut();
                if cmd == libc::TCSETSF {
                    ld.flush_input();
                }
                let old = ld.termios;
                ld.set_termios(t);
                drop(ld);
                if cmd == libc::TCSETSF && !master {
                    self.pkt_event(PKT_FLUSHREAD);
                }
                self.termios_changed(&old, &t);
                self.flow_changed();
                self.wake_all();
                Ok(0)
            }
            libc::TIOCGWINSZ => {
                mm.borrow().write_val(arg, &self.winsize.get())?;
                Ok(0)
            }
            libc::TIOCSWINSZ => {
                let w: libc::winsize = mm.borrow().read_val(arg)?;
                let old = self.winsize.replace(w);
                if (old.ws_row, old.ws_col, old.ws_xpixel, old.ws_ypixel)
                    != (w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel)
                {
                    self.raise(libc::SIGWINCH);
                }
                Ok(0)
            }
            libc::FIONREAD | libc::TIOCOUTQ => {
                let ld = self.ld.borrow();
                // A master reads what the slave wrote, and the reverse.
                let n = if master == (cmd == libc::FIONREAD) {
                    ld.output_len()
                } else {
                    ld.input_len()
                };
                drop(ld);
                mm.borrow().write_val(arg, &(n as i32))?;
                Ok(0)
            }
            libc::TCFLSH => {
                let (tci, tco) = match arg {
                    0 => (true, false),
                    1 => (false, true),
                    2 => (true, true),
                    _ => return Err(Errno::EINVAL),
                };
                if !master {
                    self.job_control(k, tid, libc::SIGTTOU)?;
                }
                let mut ld = self.ld.borrow_mut();
                // The master's input is the slave's output.
                let (inp, out) = if master { (tco, tci) } else { (tci, tco) };
                if inp {
                    ld.flush_input();
                }
                if out {
                    ld.flush_output();
                }
                drop(ld);
                // The slave's flushes are news for a packet-mode master
                // (n_tty_packet_mode_flush, pty_flush_buffer).
                if !master {
                    let read = if tci { PKT_FLUSHREAD } else { 0 };
                    self.pkt_event(read | if tco { PKT_FLUSHWRITE } else { 0 });
                }
                self.wake_all();
                Ok(0)
            }
            libc::TCXONC => {
                if !master {
                    self.job_control(k, tid, libc::SIGTTOU)?;
                }
                self.tcxonc(master, arg)
            }
            // No line breaks on a pseudo-terminal; output is delivered as
            // soon as it is written (tcdrain has nothing to wait for).
            libc::TCSBRK | libc::TCSBRKP | libc::TIOCSBRK | libc::TIOCCBRK => Ok(0),
            libc::TIOCSCTTY => {
                if mine {
                    return Ok(0);
                }
                // Only a session leader without a terminal takes one.
                if sid != me || ctty_of(sid).is_some() {
                    return Err(Errno::EPERM);
                }
                if self.session.get().is_some() {
                    // Stealing it from another session takes arg 1 and
                    // CAP_SYS_ADMIN.
                    if arg != 1 || !k.cred(tid).capable(super::perm::cap::SYS_ADMIN) {
                        return Err(Errno::EPERM);
                    }
                    self.disassociate();
                }
                self.session.set(Some(sid));
                self.fg_pgrp.set(pgid);
                Ok(0)
            }
            libc::TIOCNOTTY => {
                if !mine {
                    return Err(Errno::ENOTTY);
                }
                if sid == me {
                    self.disassociate();
                }
                Ok(0)
            }
            libc::TIOCGPGRP => {
                // The master answers for its slave (tiocgpgrp's link).
                if !mine && !master {
                    return Err(Errno::ENOTTY);
                }
                let pg = k.pid_out(tid, self.fg_pgrp.get());
                mm.borrow().write_val(arg, &pg)?;
                Ok(0)
            }
            libc::TIOCSPGRP => {
                if !mine {
                    return Err(Errno::ENOTTY);
                }
                // An orphaned background group is told ENOTTY (tiocspgrp).
                self.job_control(k, tid, libc::SIGTTOU)
                    .map_err(|e| if e == Errno::EIO { Errno::ENOTTY } else { e })?;
                let pg: i32 = mm.borrow().read_val(arg)?;
                if pg < 0 {
                    return Err(Errno::EINVAL);
                }
                let pg = k.pid_in(tid, pg).ok_or(Errno::ESRCH)?;
                if !k.groups.values().any(|g| g.pgid == pg) {
                    return Err(Errno::ESRCH);
                }
                if !k.groups.values().any(|g| g.pgid == pg && g.sid == sid) {
                    return Err(Errno::EPERM);
                }
                self.fg_pgrp.set(pg);
                Ok(0)
            }
            libc::TIOCGSID => {
                let Some(s) = self.session.get() else {
                    return Err(Errno::ENOTTY);
                };
                if !mine && !master {
                    return Err(Errno::ENOTTY);
                }
                mm.borrow().write_val(arg, &k.pid_out(tid, s))?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

/// Queue lengths and room before an operation (see [`Pty::wake`]).
#[derive(Clone, Copy)]
struct Queues {
    input: usize,
    output: usize,
    input_room: bool,
    output_room: bool,
}

/// Whether process group `pg` is orphaned: no member has a parent in
/// another group of the same session, who could continue it after a stop
/// (Linux's will_become_orphaned_pgrp).
fn pgrp_orphaned(k: &Kernel, pg: Pid) -> bool {
    !k.groups.values().any(|g| {
        g.pgid == pg
            && !g.is_zombie()
            && k.groups
                .get(&g.parent)
                .is_some_and(|p| p.pgid != pg && p.sid == g.sid)
    })
}

/// Copies a user buffer through the line discipline `step` bytes at a
/// time; `f` takes a piece and says how much of it it took.
fn feed(src: &IoVecs, mut f: impl FnMut(&[u8]) -> usize) -> usize {
    let mut buf = [0u8; STEP];
    let mut done = 0;
    while done < src.len {
        let n = STEP.min(src.len - done);
        src.copy_out(done, &mut buf[..n]);
        let took = f(&buf[..n]);
        done += took;
        if took < n {
            break;
        }
    }
    done
}

/// The master end of a pty.
pub struct Master(pub Rc<Pty>);

impl Drop for Master {
    fn drop(&mut self) {
        let p = &self.0;
        p.master_gone.set(true);
        // The slave is hung up: its session loses the terminal, and its
        // leader and foreground group learn it (Linux's tty_vhangup).
        if let Some(sid) = p.session.get() {
            ttysig::raise(Target::Process(sid), libc::SIGHUP);
            ttysig::raise(Target::Process(sid), libc::SIGCONT);
            p.disassociate();
        }
        p.sq.notify_all();
        if let Some(t) = p.table.upgrade() {
            t.borrow_mut().free(p.index);
        }
    }
}

impl FileOps for Master {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        if dst.len == 0 {
            return Ok(0);
        }
        let p = &self.0;
        if p.packet.get() {
            // Packet mode: a status change alone, else data after a
            // TIOCPKT_DATA (0) byte.
            let status = p.pkt_status.take();
            if status != 0 {
                dst.copy_in(0, &[status]);
                return Ok(1);
            }
        }
        let skip = p.packet.get() as usize;
        let before = p.queues();
        let data = p.ld.borrow_mut().read_output(dst.len - skip);
        if data.is_empty() {
            // Everything the slave wrote has been read, and it is closed.
            if p.slave_closed.get() {
                return Err(Errno::EIO);
            }
            return Err(Errno::EAGAIN);
        }
        if skip == 1 {
            dst.copy_in(0, &[0]);
        }
        dst.copy_in(skip, &data);
        p.wake(before);
        Ok(data.len() + skip)
    }

    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        if src.len == 0 {
            return Ok(0);
        }
        let p = &self.0;
        if p.master_stopped.get() {
            return Err(Errno::EAGAIN);
        }
        let mut sigs = Vec::new();
        let before = p.queues();
        let n = feed(src, |b| p.ld.borrow_mut().receive(b, &mut sigs));
        for s in sigs {
            p.raise(s);
        }
        if std::mem::take(&mut p.ld.borrow_mut().sig_flushed) {
            p.pkt_event(PKT_FLUSHREAD | PKT_FLUSHWRITE);
        }
        p.flow_changed();
        p.wake(before);
        // As the slave's write (tty_write_unlock).
        p.mq.notify(POLLOUT);
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n)
    }

    fn writes_whole(&self) -> bool {
        true
    }

    fn poll(&self, _k: &Kernel) -> u32 {
        let p = &self.0;
        let ld = p.ld.borrow();
        let mut r = 0;
        if ld.output_len() > 0 {
            r |= POLLIN;
        }
        if p.packet.get() && p.pkt_status.get() != 0 {
            r |= POLLIN | POLLPRI;
        }
        if ld.input_room() && !p.master_stopped.get() {
            r |= POLLOUT;
        }
        if p.slave_closed.get() {
            r |= POLLHUP;
        }
        r
    }

    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.0.mq.add(tid, events | POLLHUP | POLLERR);
        true
    }

    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.0.mq.remove(tid);
    }

    fn event_seq(&self, mask: u32) -> u64 {
        self.0.mq.seq(mask)
    }

    fn fasync(&self, file: &Rc<File>, on: bool) {
        if on {
            self.0.mq.add_fasync(file, POLLIN | POLLOUT | POLLHUP);
        } else {
            self.0.mq.remove_fasync(file);
        }
    }

    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        let p = &self.0;
        match cmd {
            TIOCGPTN => {
                k.task_mm(tid).borrow().write_val(arg, &p.index)?;
                Ok(0)
            }
            TIOCSPTLCK => {
                let v: i32 = k.task_mm(tid).borrow().read_val(arg)?;
                p.locked.set(v != 0);
                Ok(0)
            }
            TIOCPKT => {
                let on: i32 = k.task_mm(tid).borrow().read_val(arg)?;
                p.packet.set(on != 0);
                p.pkt_status.set(0);
                Ok(0)
            }
            TIOCGPKT => {
                k.task_mm(tid)
                    .borrow()
                    .write_val(arg, &(p.packet.get() as i32))?;
                Ok(0)
            }
            TIOCGPTLCK => {
                k.task_mm(tid)
                    .borrow()
                    .write_val(arg, &(p.locked.get() as i32))?;
                Ok(0)
            }
            TIOCGPTPEER => {
                // Opens the slave without a path lookup (a container
                // manager's way to avoid a /dev/pts it does not trust).
                let flags = arg as i32;
                let allowed = libc::O_ACCMODE | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
                if flags & !(allowed | super::file::O_LARGEFILE) != 0 {
                    return Err(Errno::EINVAL);
                }
                let slave = p.open_slave(k, flags)?;
                let f = File::new(slave, flags & !(libc::O_NOCTTY | libc::O_CLOEXEC), None);
                let limit = k.rlimit(tid, libc::RLIMIT_NOFILE).rlim_cur.min(1 << 20);
                let cloexec = flags & libc::O_CLOEXEC != 0;
                let fd = k.task(tid).files.borrow_mut().alloc(f, cloexec, 0, limit)?;
                Ok(fd as u64)
            }
            _ => p.ioctl(k, true, tid, cmd, arg),
        }
    }

    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        let mut st = super::stat_of(self.0.dev, 2, libc::S_IFCHR | 0o666, 1);
        st.st_rdev = libc::makedev(5, 2);
        Ok(st)
    }

    fn anon_name(&self) -> Option<String> {
        Some("/dev/ptmx".into())
    }

    fn fs_magic(&self) -> i64 {
        super::devpts::DEVPTS_SUPER_MAGIC
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The slave end of a pty.
pub struct Slave(pub Rc<Pty>);

impl Drop for Slave {
    fn drop(&mut self) {
        let p = &self.0;
        p.slaves.set(p.slaves.get() - 1);
        if p.slaves.get() == 0 {
            p.slave_closed.set(true);
            p.mq.notify_all();
        }
    }
}

impl FileOps for Slave {
    fn read(&self, k: &Kernel, f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        let p = &self.0;
        let tid = k.current.get();
        p.job_control(k, tid, libc::SIGTTIN)?;
        if dst.len == 0 || p.master_gone.get() {
            return Ok(0);
        }
        // The read timer (VTIME) the blocked read set ran out.
        let timed_out = k
            .task(tid)
            .sys
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d);
        let before = p.queues();
        let got =
            p.ld.borrow_mut()
                .read_input(dst.len, timed_out, f.nonblocking());
        match got {
            Input::Data(d) => {
                dst.copy_in(0, &d);
                p.wake(before);
                Ok(d.len())
            }
            Input::Eof => {
                p.wake(before);
                Ok(0)
            }
            Input::Empty => Err(Errno::EAGAIN),
        }
    }

    fn read_interrupted(&self, _k: &Kernel, dst: &IoVecs) -> usize {
        let p = &self.0;
        let before = p.queues();
        let d = p.ld.borrow_mut().take_interrupted(dst.len);
        if !d.is_empty() {
            dst.copy_in(0, &d);
            p.wake(before);
        }
        d.len()
    }

    fn read_deadline(&self, current: Option<std::time::Instant>) -> Option<std::time::Instant> {
        self.0
            .ld
            .borrow()
            .read_deadline(std::time::Instant::now(), current)
    }

    fn write(&self, k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        let p = &self.0;
        if p.master_gone.get() {
            return Err(Errno::EIO);
        }
        if p.ld.borrow().termios.l(super::ldisc::TOSTOP) {
            p.job_control(k, k.current.get(), libc::SIGTTOU)?;
        }
        if src.len == 0 {
            return Ok(0);
        }
        let before = p.queues();
        let n = feed(src, |b| p.ld.borrow_mut().transmit(b));
        p.wake(before);
        // Linux's tty_write_unlock wakes the writer's end for room after
        // every write.
        p.sq.notify(POLLOUT);
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n)
    }

    fn writes_whole(&self) -> bool {
        true
    }

    fn poll(&self, _k: &Kernel) -> u32 {
        let p = &self.0;
        // A hung-up terminal is readable (end of file) and writable (EIO).
        if p.master_gone.get() {
            return POLLIN | POLLOUT | POLLHUP | POLLERR;
        }
        let ld = p.ld.borrow();
        let mut r = 0;
        if ld.input_ready() {
            r |= POLLIN;
        }
        if ld.output_room() {
            r |= POLLOUT;
        }
        r
    }

    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        self.0.sq.add(tid, events | POLLHUP | POLLERR);
        true
    }

    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.0.sq.remove(tid);
    }

    fn event_seq(&self, mask: u32) -> u64 {
        self.0.sq.seq(mask)
    }

    fn fasync(&self, file: &Rc<File>, on: bool) {
        if on {
            self.0.sq.add_fasync(file, POLLIN | POLLOUT | POLLHUP);
        } else {
            self.0.sq.remove_fasync(file);
        }
    }

    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        self.0.ioctl(k, false, tid, cmd, arg)
    }

    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(self.0.slave_stat())
    }

    fn anon_name(&self) -> Option<String> {
        Some(format!("/dev/pts/{}", self.0.index))
    }

    fn fs_magic(&self) -> i64 {
        super::devpts::DEVPTS_SUPER_MAGIC
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
