//! Pipes and FIFOs, in the kernel.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use super::file::{File, FileOps, POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::waitq::WaitQueue;
use crate::kernel::{Kernel, Tid};

pub const PIPE_BUF: usize = 4096;
pub const PIPE_SIZE: usize = 65536;
/// /proc/sys/fs/pipe-max-size.
pub const PIPE_MAX_SIZE: usize = 1 << 20;
const PAGE_SIZE: usize = 4096;

pub struct Pipe {
    buf: RefCell<VecDeque<u8>>,
    capacity: Cell<usize>,
    readers: Cell<u32>,
    writers: Cell<u32>,
    /// Readers and writers that have ever opened (FIFO open semantics).
    had_writer: Cell<bool>,
    rq: WaitQueue,
    wq: WaitQueue,
    pub ino: u64,
}

impl Pipe {
    pub fn new() -> Rc<Pipe> {
        Rc::new(Pipe {
            buf: RefCell::new(VecDeque::new()),
            capacity: Cell::new(PIPE_SIZE),
            readers: Cell::new(0),
            writers: Cell::new(0),
            had_writer: Cell::new(false),
            rq: WaitQueue::new(),
            wq: WaitQueue::new(),
            ino: super::new_ino(),
        })
    }

    /// A new end of this pipe.
    pub fn end(self: &Rc<Self>, write: bool) -> Rc<PipeEnd> {
        if write {
            self.writers.set(self.writers.get() + 1);
            self.had_writer.set(true);
            self.rq.notify_all();
        } else {
            self.readers.set(self.readers.get() + 1);
            self.wq.notify_all();
        }
        Rc::new(PipeEnd {
            pipe: self.clone(),
            write,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity.get()
    }

    /// F_SETPIPE_SZ: the size rounded up to a power-of-two number of
    /// pages, as Linux does; growing past /proc/sys/fs/pipe-max-size needs
    /// CAP_SYS_RESOURCE (`privileged`), and shrinking below what the pipe
    /// holds is EBUSY.
    pub fn set_capacity(&self, arg: u64, privileged: bool) -> SysResult<usize> {
        // Linux takes the argument as an unsigned int.
        let size = arg as u32 as usize;
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let n = size.max(PAGE_SIZE).next_power_of_two();
        if n > self.capacity.get() && n > PIPE_MAX_SIZE && !privileged {
            return Err(Errno::EPERM);
        }
        if n < self.buf.borrow().len() {
            return Err(Errno::EBUSY);
        }
        self.capacity.set(n);
        // Room may have appeared for a blocked writer.
        self.wq.notify(POLLOUT);
        Ok(n)
    }

    pub fn available(&self) -> usize {
        self.buf.borrow().len()
    }
}

pub struct PipeEnd {
    pub pipe: Rc<Pipe>,
    pub write: bool,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let p = &self.pipe;
        if self.write {
            p.writers.set(p.writers.get() - 1);
            if p.writers.get() == 0 {
                p.rq.notify_all();
            }
        } else {
            p.readers.set(p.readers.get() - 1);
            if p.readers.get() == 0 {
                p.wq.notify_all();
            }
        }
    }
}

impl FileOps for PipeEnd {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, _off: u64) -> SysResult<usize> {
        // Reading nothing returns at once (Linux's pipe_read).
        if dst.len == 0 {
            return Ok(0);
        }
        let p = &self.pipe;
        let mut buf = p.buf.borrow_mut();
        if buf.is_empty() {
            if p.writers.get() == 0 {
                return Ok(0);
            }
            return Err(Errno::EAGAIN);
        }
        let n = dst.len.min(buf.len());
        // Writers are told of room only if one may have lacked it (Linux's
        // pipe_read wakes them when the pipe was full): a write of up to
        // PIPE_BUF bytes waits for that much room, a longer one for any.
        let was_short = p.capacity.get().saturating_sub(buf.len()) < PIPE_BUF;
        let (a, b) = buf.as_slices();
        let na = n.min(a.len());
        dst.copy_in(0, &a[..na]);
        if n > na {
            dst.copy_in(na, &b[..n - na]);
        }
        buf.drain(..n);
        drop(buf);
        if was_short {
            p.wq.notify(POLLOUT);
        }
        Ok(n)
    }

    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, _off: u64) -> SysResult<usize> {
        let p = &self.pipe;
        if p.readers.get() == 0 {
            return Err(Errno::EPIPE);
        }
        let mut buf = p.buf.borrow_mut();
        let space = p.capacity.get().saturating_sub(buf.len());
        // Writes of up to PIPE_BUF bytes are atomic.
        if space == 0 || (src.len <= PIPE_BUF && space < src.len) {
            return Err(Errno::EAGAIN);
        }
        let n = src.len.min(space);
        // In pieces: a pipe may be made large (F_SETPIPE_SZ), and one write
        // must not need a kernel buffer of its size on top of the pipe's.
        let mut tmp = [0u8; 16 * 1024];
        let mut done = 0;
        while done < n {
            let k = tmp.len().min(n - done);
            src.copy_out(done, &mut tmp[..k]);
            buf.extend(&tmp[..k]);
            done += k;
        }
        drop(buf);
        p.rq.notify(POLLIN);
        Ok(n)
    }

    fn poll(&self, _k: &Kernel) -> u32 {
        let p = &self.pipe;
        let len = p.buf.borrow().len();
        if self.write {
            // Room is POLLOUT and no reader is POLLERR, each on its own
            // (pipe_poll).
            let mut r = 0;
            if len < p.capacity.get() {
                r |= POLLOUT;
            }
            if p.readers.get() == 0 {
                r |= POLLERR;
            }
            r
        } else {
            let mut r = 0;
            if len > 0 {
                r |= POLLIN;
            }
            if p.writers.get() == 0 && p.had_writer.get() {
                r |= POLLHUP;
            }
            r
        }
    }

    fn wait(&self, _k: &Kernel, tid: Tid, events: u32) -> bool {
        if self.write {
            self.pipe.wq.add(tid, events | POLLERR);
        } else {
            self.pipe.rq.add(tid, events | POLLHUP);
        }
        true
    }

    fn unwait(&self, _k: &Kernel, tid: Tid) {
        self.pipe.rq.remove(tid);
        self.pipe.wq.remove(tid);
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.pipe.rq.seq(mask).wrapping_add(self.pipe.wq.seq(mask))
    }

    fn ioctl(&self, k: &mut Kernel, _f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        if cmd == libc::FIONREAD {
            let n = self.pipe.available() as i32;
            k.task_mm(tid).borrow().write_val(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn stat(&self, _k: &Kernel) -> SysResult<libc::stat> {
        Ok(super::stat_of(
            PIPEFS_DEV.with(|d| *d),
            self.pipe.ino,
            libc::S_IFIFO | 0o600,
            1,
        ))
    }

    fn anon_name(&self) -> Option<String> {
        Some(format!("pipe:[{}]", self.pipe.ino))
    }

    fn fs_magic(&self) -> i64 {
        super::file::PIPEFS_MAGIC
    }

    fn writes_whole(&self) -> bool {
        true
    }

    fn fasync(&self, file: &Rc<File>, on: bool) {
        let (q, events) = if self.write {
            (&self.pipe.wq, POLLOUT | POLLERR)
        } else {
            (&self.pipe.rq, POLLIN | POLLHUP)
        };
        if on {
            q.add_fasync(file, events);
        } else {
            q.remove_fasync(file);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

thread_local! {
    static PIPEFS_DEV: u64 = super::new_dev();
}

/// The pipe behind a pipe or FIFO end (F_GETPIPE_SZ/F_SETPIPE_SZ, splice).
pub fn pipe_of(ops: &dyn FileOps) -> Option<&Rc<Pipe>> {
    let any = ops.as_any();
    if let Some(e) = any.downcast_ref::<PipeEnd>() {
        return Some(&e.pipe);
    }
    any.downcast_ref::<FifoEnd>().map(|f| &f.pipe)
}

/// Named pipes: one in-kernel pipe per FIFO inode while it is open.
#[derive(Default)]
pub struct FifoTable {
    fifos: RefCell<HashMap<(u64, u64), Weak<Pipe>>>,
}

impl FifoTable {
    /// Opens the FIFO identified by `id`. Opening never blocks here; a
    /// reader that finds no writer yet waits in read() until one opens
    /// (had_writer), which is what shells rely on.
    pub fn open(&self, _k: &Kernel, id: (u64, u64), flags: i32) -> SysResult<Rc<dyn FileOps>> {
        let mut map = self.fifos.borrow_mut();
        let pipe = match map.get(&id).and_then(|w| w.upgrade()) {
            Some(p) => p,
            None => {
                let p = Pipe::new();
                map.insert(id, Rc::downgrade(&p));
                p
            }
        };
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_WRONLY && flags & libc::O_NONBLOCK != 0 && pipe.readers.get() == 0 {
            return Err(Errno::ENXIO);
        }
        // O_RDWR is both a reader and a writer (Linux's fifo_open).
        let rd = (acc != libc::O_WRONLY).then(|| pipe.end(false));
        let wr = (acc != libc::O_RDONLY).then(|| pipe.end(true));
        Ok(Rc::new(FifoEnd { rd, wr, pipe }))
    }
}

/// A FIFO end: like a pipe end, but a reader with no writer yet waits for
/// one instead of seeing end of file. Opened O_RDWR it is both ends.
pub struct FifoEnd {
    rd: Option<Rc<PipeEnd>>,
    wr: Option<Rc<PipeEnd>>,
    pipe: Rc<Pipe>,
}

impl FifoEnd {
    /// The end that reads, else the one that writes.
    fn any(&self) -> &Rc<PipeEnd> {
        self.rd.as_ref().or(self.wr.as_ref()).expect("a FIFO end")
    }
}

impl FileOps for FifoEnd {
    fn read(&self, k: &Kernel, f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        let Some(rd) = &self.rd else {
            return Err(Errno::EBADF);
        };
        // Stands in for open(O_RDONLY) blocking until a writer comes; a
        // non-blocking reader reads end of file (no writers), as in Linux.
        if !self.pipe.had_writer.get() && !f.nonblocking() {
            return Err(Errno::EAGAIN);
        }
        rd.read(k, f, dst, off)
    }
    fn write(&self, k: &Kernel, f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        let Some(wr) = &self.wr else {
            return Err(Errno::EBADF);
        };
        wr.write(k, f, src, off)
    }
    fn poll(&self, k: &Kernel) -> u32 {
        let mut r = 0;
        if let Some(rd) = &self.rd {
            r |= rd.poll(k);
        }
        if let Some(wr) = &self.wr {
            r |= wr.poll(k);
        }
        r
    }
    fn wait(&self, k: &Kernel, tid: Tid, events: u32) -> bool {
        if let Some(rd) = &self.rd {
            rd.wait(k, tid, events);
        }
        if let Some(wr) = &self.wr {
            wr.wait(k, tid, events);
        }
        true
    }
    fn unwait(&self, k: &Kernel, tid: Tid) {
        self.any().unwait(k, tid)
    }
    fn writes_whole(&self) -> bool {
        true
    }
    fn event_seq(&self, mask: u32) -> u64 {
        self.any().event_seq(mask)
    }
    fn ioctl(&self, k: &mut Kernel, f: &File, tid: Tid, cmd: u64, arg: u64) -> SysResult<u64> {
        self.any().ioctl(k, f, tid, cmd, arg)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What splice and tee need of a pipe: its bytes without consuming them,
/// consuming them, and its ends.
impl Pipe {
    /// A copy of the first `n` buffered bytes (at most what is there).
    pub fn peek(&self, n: usize) -> Vec<u8> {
        let buf = self.buf.borrow();
        buf.iter().take(n).copied().collect()
    }

    /// Drops the first `n` buffered bytes (they were spliced away).
    pub fn consume(&self, n: usize) {
        let mut buf = self.buf.borrow_mut();
        let n = n.min(buf.len());
        buf.drain(..n);
        drop(buf);
        if n > 0 {
            self.wq.notify(POLLOUT);
        }
    }

    /// Room for spliced data: Linux's pipes hold pages, and a splice
    /// fills whole free pages (a write merges into a partly filled one),
    /// so a pipe whose last page is partly used has no room for a splice.
    pub fn room(&self) -> usize {
        let page = PIPE_BUF;
        let used = self.buf.borrow().len().div_ceil(page);
        (self.capacity.get() / page).saturating_sub(used) * page
    }

    pub fn has_readers(&self) -> bool {
        self.readers.get() > 0
    }

    pub fn has_writers(&self) -> bool {
        self.writers.get() > 0
    }
}
