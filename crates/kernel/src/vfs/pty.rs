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

    /// Wakes whoever the line discipline's state now lets go on.
    fn wake(&self) {
        let ld = self.ld.borrow();
        if ld.input_ready() {
            self.sq.notify(POLLIN);
        }
        if ld.output_room() {
            self.sq.notify(POLLOUT);
        }
        if ld.output_len() > 0 {
            self.mq.notify(POLLIN);
        }
        if ld.input_room() {
            self.mq.notify(POLLOUT);
        }
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
                let mut ld = self.ld.borrow_mut();
                if cmd == libc::TCSETSF {
                    ld.flush_input();
                }
                ld.set_termios(t);
                drop(ld);
                self.wake();
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
                self.wake();
                Ok(0)
            }
            // No flow control or line breaks on a pseudo-terminal; output
            // is delivered as soon as it is written (tcdrain has nothing to
            // wait for).
            libc::TCXONC | libc::TCSBRK | libc::TCSBRKP | libc::TIOCSBRK | libc::TIOCCBRK => Ok(0),
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
        let data = p.ld.borrow_mut().read_output(dst.len);
        if data.is_empty() {
            // Everything the slave wrote has been read, and it is closed.
            if p.slave_closed.get() {
                return Err(Errno::EIO);
            }
            return Err(Errno::EAGAIN);
        }
        dst.copy_in(0, &data);
        p.wake();
        Ok(data.len())
    }

    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        if src.len == 0 {
            return Ok(0);
        }
        let p = &self.0;
        let mut sigs = Vec::new();
        let n = feed(src, |b| p.ld.borrow_mut().receive(b, &mut sigs));
        for s in sigs {
            p.raise(s);
        }
        p.wake();
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
        if ld.input_room() {
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
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        let p = &self.0;
        if dst.len == 0 || p.master_gone.get() {
            return Ok(0);
        }
        let got = p.ld.borrow_mut().read_input(dst.len);
        match got {
            Input::Data(d) => {
                dst.copy_in(0, &d);
                p.wake();
                Ok(d.len())
            }
            Input::Eof => {
                p.wake();
                Ok(0)
            }
            Input::Empty => Err(Errno::EAGAIN),
        }
    }

    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        let p = &self.0;
        if p.master_gone.get() {
            return Err(Errno::EIO);
        }
        if src.len == 0 {
            return Ok(0);
        }
        let n = feed(src, |b| p.ld.borrow_mut().transmit(b));
        p.wake();
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
