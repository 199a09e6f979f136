//! /proc/PID/mem: another process's memory as a file, at offsets that
//! are its addresses. Opening it takes what attaching with ptrace takes
//! (Linux's mm_access in PTRACE_MODE_ATTACH: the same credentials or
//! CAP_SYS_PTRACE, and Yama's scope, whose exception keeps an attached
//! tracer's access). The file holds the address space it was opened on,
//! weakly: after the process execs or exits, reads and writes find
//! nothing (0), as Linux's do once the old mm is gone.
//!
//! Reads and writes go a page at a time and stop at the first page the
//! mapping's protection refuses: a short count, or EIO when the first
//! page fails. Unlike Linux (FOLL_FORCE) a write-protected mapping is
//! not written through: PTRACE_POKEDATA does that.

use std::any::Any;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::file::{File, FileOps};
use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};
use crate::kernel::{Kernel, Pid};
use crate::mm::AddressSpace;

const PAGE: u64 = crate::arch::PAGE_SIZE;

pub struct MemFile {
    mm: Weak<RefCell<AddressSpace>>,
}

/// Opens process `pid`'s memory for the current task.
pub fn open(k: &Kernel, pid: Pid) -> SysResult<Rc<dyn FileOps>> {
    let g = k.groups.get(&pid).ok_or(Errno::ENOENT)?;
    let leader = *g.threads.first().ok_or(Errno::ENOENT)?;
    let me = k.current.get();
    k.ptrace_may_access(me, leader).map_err(|_| Errno::EACCES)?;
    Ok(Rc::new(MemFile {
        mm: Rc::downgrade(&k.task_mm(leader)),
    }))
}

impl MemFile {
    /// Runs `f` on each piece of [off, off+len) within one page, with the
    /// piece's offset into the caller's buffer; stops at the first
    /// refusal. Returns the bytes done, EIO if none could be.
    fn each_page(
        &self,
        off: u64,
        len: usize,
        mut f: impl FnMut(&AddressSpace, u64, usize, usize) -> SysResult<()>,
    ) -> SysResult<usize> {
        let Some(mm) = self.mm.upgrade() else {
            return Ok(0);
        };
        let mm = mm.borrow();
        let mut done = 0usize;
        while done < len {
            let Some(addr) = off.checked_add(done as u64) else {
                break;
            };
            let n = ((PAGE - addr % PAGE) as usize).min(len - done);
            if f(&mm, addr, done, n).is_err() {
                break;
            }
            done += n;
        }
        if done == 0 && len > 0 {
            return Err(Errno::EIO);
        }
        Ok(done)
    }
}

impl FileOps for MemFile {
    fn read(&self, _k: &Kernel, _f: &File, dst: &IoVecs, off: u64) -> SysResult<usize> {
        let mut page = [0u8; PAGE as usize];
        self.each_page(off, dst.len, |mm, addr, at, n| {
            mm.read_bytes(addr, &mut page[..n])?;
            dst.copy_in(at, &page[..n]);
            Ok(())
        })
    }
    fn write(&self, _k: &Kernel, _f: &File, src: &IoVecs, off: u64) -> SysResult<usize> {
        let mut page = [0u8; PAGE as usize];
        self.each_page(off, src.len, |mm, addr, at, n| {
            src.copy_out(at, &mut page[..n]);
            mm.write_bytes(addr, &page[..n])
        })
    }
    fn seekable(&self) -> bool {
        true
    }
    fn seek_end(&self) -> bool {
        false
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
