//! Streaming reads of a host file through a window of it mapped into the
//! kernel.
//!
//! A read of a host file is a `preadv` on its descriptor: one host
//! syscall per read on top of the workload's trap, which is most of what
//! a loop of 4 KiB reads costs here beyond native. Once an open file has
//! read `STREAM_AFTER` bytes in sequence (each read where the last one
//! ended), its reads are copies out of a `WINDOW`-sized read-only shared
//! mapping of the file instead, moved along as the reads go; a read
//! elsewhere ends the sequence and the window (random reads would map a
//! window for every read), and so does the end of the file. It is the host's page cache itself, so it sees every write to the
//! file at once, the kernel's own and anyone's.
//!
//! What the mapping does not tell is where the file ends: the kernel
//! keeps the size it read (`fstat`) when it placed the window, and asks
//! again when a read reaches past it. On a trusted file system (nothing
//! outside the sandbox changes it: the rootfs, an exclusive bind) a file
//! only shrinks through this kernel's truncate, setattr, `O_TRUNC` open or
//! fallocate, and each of them calls [`shrank`], which makes every window
//! ask again before its next read. On a revalidated mount (a bind shared
//! with the host) the size is also asked again as the mount's walks and
//! attributes are (`hostfs::RECHECK_AFTER`): after `RECHECK_AFTER`, and
//! after any news from outside (the sandbox waited for a host event, a
//! timer or a signal), so a reader told of a change made outside sees
//! the file's new end exactly. Windows are only for local file systems
//! whose mappings are their page cache (ext4, xfs, btrfs, tmpfs: the
//! ones `atime::AtimeRule` knows, but overlayfs, whose mapping of a file
//! opened before a copy-up stays on the lower file); a network or FUSE
//! file system, whose mapped pages may be revalidated less often than its
//! reads, is read with `preadv` as before.
//!
//! A file that shrinks from outside anyway (a host process truncates the
//! rootfs file under a running container) cannot harm the kernel: every
//! copy out of a window is an `mm::safecopy` copy, which a fault (SIGBUS
//! past the end) stops. The read returns what was copied, or goes to
//! `preadv` if nothing was, and the open file reads with `preadv` from
//! then on. What it cannot tell is the tail of the new last page, which
//! reads as zeros up to the size kept (docs/security.md).

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::errno::SysResult;
use crate::mm::safecopy;
use crate::vfs::IoVecs;
use crate::vfs::hostfs::{news, still_current};

/// Bytes an open file reads with `preadv` before it gets a window: a
/// program reading a small file once pays no mapping for it.
const STREAM_AFTER: u64 = 256 << 10;
/// The window's size and alignment in the file.
const WINDOW: u64 = 4 << 20;
/// Windows mapped at once, in all open files (a kernel with thousands of
/// streaming files reads the rest with `preadv`).
const LIVE_MAX: u64 = 32;

/// Moved on by every shrink of a host file through this kernel.
static SHRINKS: AtomicU64 = AtomicU64::new(0);
/// Windows mapped now.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// A host file may have become shorter through this kernel: every window
/// reads its file's size again before it serves another read.
pub fn shrank() {
    SHRINKS.fetch_add(1, Ordering::Relaxed);
}

struct Window {
    base: *const u8,
    /// Where in the file the mapping starts (a multiple of `WINDOW`).
    start: u64,
    /// The file's size as last read.
    size: u64,
    /// `SHRINKS` when `size` was read.
    shrinks: u64,
    /// When `size` was read, and the news from outside then (see
    /// `hostfs::news_from_outside`): a revalidated file's size is asked
    /// again when either is stale.
    read_at: Instant,
    news: u64,
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: our own mapping of WINDOW bytes.
        unsafe { libc::munmap(self.base as *mut libc::c_void, WINDOW as usize) };
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

fn host_size(fd: RawFd) -> Option<u64> {
    // SAFETY: fstat into a local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_size as u64)
}

/// An open host file's streaming state.
#[derive(Default)]
pub struct Stream {
    /// Bytes read in sequence (each read where the last one ended) so far,
    /// up to `STREAM_AFTER`: random reads never get a window.
    streamed: Cell<u64>,
    /// Where the last read ended.
    next: Cell<u64>,
    window: RefCell<Option<Window>>,
    /// A window's copy faulted (the file changed under it), or no window
    /// could be mapped: `preadv` only.
    off: Cell<bool>,
    /// The file is on a revalidated mount: changes from outside are
    /// expected, and its size is asked again as its attributes are.
    revalidate: bool,
}

impl Stream {
    /// The stream of a file on a revalidated mount (see `revalidate`).
    pub fn revalidated() -> Stream {
        Stream {
            revalidate: true,
            ..Stream::default()
        }
    }

    /// A read of `dst.len` bytes at `off`: from a window of `fd` while
    /// the reads go in sequence, else (and when a window cannot serve it)
    /// by `preadv`.
    pub fn read(
        &self,
        fd: RawFd,
        dst: &IoVecs,
        off: u64,
        preadv: impl FnOnce() -> SysResult<usize>,
    ) -> SysResult<usize> {
        let sequential = off == self.next.get();
        if !sequential {
            self.streamed.set(0);
            // A seek away: the window goes with the sequence.
            *self.window.borrow_mut() = None;
        }
        let n = match self.windowed(fd, dst, off) {
            Some(n) => n,
            None => {
                let n = preadv()?;
                self.streamed
                    .set((self.streamed.get() + n as u64).min(STREAM_AFTER));
                n
            }
        };
        self.next.set(off + n as u64);
        Ok(n)
    }

    /// The read from a window, or `None`.
    fn windowed(&self, fd: RawFd, dst: &IoVecs, off: u64) -> Option<usize> {
        if self.off.get() || self.streamed.get() < STREAM_AFTER || !safecopy::installed() {
            return None;
        }
        let mut window = self.window.borrow_mut();
        let mut done = 0usize;
        for iov in &dst.iovs {
            // SAFETY: the iovec points at iov_len writable bytes of the
            // kernel's view of the workload's memory.
            let buf =
                unsafe { std::slice::from_raw_parts_mut(iov.iov_base as *mut u8, iov.iov_len) };
            let mut at = 0usize;
            while at < buf.len() {
                let pos = off + (done + at) as u64;
                let want = (buf.len() - at) as u64;
                let w = match place(&mut window, fd, pos, want, self.revalidate) {
                    Ok(w) => w,
                    Err(lasting) => {
                        if lasting {
                            // A file the host will not map (a FUSE file
                            // without a page cache): no more tries.
                            self.off.set(true);
                        }
                        return (done + at > 0).then_some(done + at);
                    }
                };
                if pos >= w.size {
                    // The end: the window goes (a reader that stays at the
                    // end holds no mapping).
                    *window = None;
                    return Some(done + at);
                }
                let n = ((buf.len() - at) as u64)
                    .min(w.start + WINDOW - pos)
                    .min(w.size - pos) as usize;
                // SAFETY: [pos, pos+n) lies in the window's mapping, which
                // may fault (the copy stops there); the destination is
                // the iovec's.
                let src = unsafe { w.base.add((pos - w.start) as usize) };
                if let Err(got) = unsafe { safecopy::copy(&mut buf[at..at + n], src) } {
                    // The file shrank under the window, from outside.
                    *window = None;
                    self.off.set(true);
                    let total = done + at + got;
                    return (total > 0).then_some(total);
                }
                at += n;
            }
            done += buf.len();
        }
        Some(done)
    }
}

/// The window for a read of `want` bytes at `pos`, placed (or moved) to
/// cover `pos`, its size current enough: asked again after a shrink, when
/// the read reaches past it, and on a revalidated mount when the size is
/// stale (older than `RECHECK_AFTER`, or news from outside since:
/// `revalidate`).
/// `Err(lasting)`: no window, because the host would not map the file
/// (`true`), or for now (too many mapped, a failed `fstat`).
fn place(
    slot: &mut Option<Window>,
    fd: RawFd,
    pos: u64,
    want: u64,
    revalidate: bool,
) -> Result<&Window, bool> {
    let start = pos & !(WINDOW - 1);
    let shrinks = SHRINKS.load(Ordering::Relaxed);
    if slot.as_ref().is_some_and(|w| w.start != start) {
        *slot = None;
    }
    if slot.is_none() {
        if LIVE.load(Ordering::Relaxed) >= LIVE_MAX {
            return Err(false);
        }
        let size = host_size(fd).ok_or(false)?;
        // SAFETY: a new read-only shared mapping of the host file, placed
        // by the host; pages past the end fault (see `safecopy`). Pages
        // come in as the copies touch them (the host's fault-around and
        // readahead): populating the whole window at once would read
        // 4 MiB from disk before the first copy, with every task of the
        // sandbox waiting.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                WINDOW as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                start as i64,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(true);
        }
        LIVE.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Window {
            base: base as *const u8,
            start,
            size,
            shrinks,
            read_at: crate::clock::now(),
            news: news(),
        });
    }
    let w = slot.as_mut().ok_or(false)?;
    let stale = revalidate && !still_current(w.read_at, w.news);
    if stale || w.shrinks != shrinks || pos + want > w.size {
        w.size = host_size(fd).ok_or(false)?;
        w.shrinks = shrinks;
        w.read_at = crate::clock::now();
        w.news = news();
    }
    Ok(w)
}
