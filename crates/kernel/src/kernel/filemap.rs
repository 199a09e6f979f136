//! File mappings across the whole sandbox: faults that bring file pages
//! in, truncations that take them out of every process, and write-back
//! of what mappings wrote (the per-file parts are in `mm::filemem`, the
//! per-process parts in `mm::space`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{Kernel, Tid};
use crate::errno::SysResult;
use crate::mm::space::Fault;
use crate::mm::{AddressSpace, FileMem, filemem};

const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRERR: i32 = 2;

thread_local! {
    /// The last fault a thread was told to retry on a page already dirty
    /// (see `AddressSpace::fault`): (thread, address).
    static RETRIED: Cell<Option<(Tid, u64)>> = const { Cell::new(None) };
}

impl Kernel {
    /// Every address space of the sandbox, once each.
    pub fn address_spaces(&self) -> Vec<Rc<RefCell<AddressSpace>>> {
        let mut out: Vec<Rc<RefCell<AddressSpace>>> = Vec::new();
        for t in self.tasks.values() {
            if !out.iter().any(|m| Rc::ptr_eq(m, &t.mm)) {
                out.push(t.mm.clone());
            }
        }
        out
    }

    /// Applies the truncations of the last syscall: their pages leave
    /// every process that maps them. A process whose stub the host would
    /// not unmap them from is killed (SIGKILL): it could go on using
    /// pages the file no longer has.
    pub fn apply_invalidations(&mut self) {
        let todo = filemem::take_invalidations();
        if todo.is_empty() {
            return;
        }
        let spaces = self.address_spaces();
        for inv in &todo {
            let Some(mem) = inv.mem.upgrade() else {
                continue;
            };
            for mm in &spaces {
                let r = mm
                    .borrow_mut()
                    .invalidate(&mut self.platform, &mem, inv.from_page);
                if r.is_err() {
                    self.kill_space(mm);
                }
            }
        }
    }

    /// Kills every process of address space `mm` (SIGKILL): the host
    /// refused a change the kernel must make to it, so the kernel's
    /// records and the stub's mappings would differ.
    fn kill_space(&mut self, mm: &Rc<RefCell<AddressSpace>>) {
        let mut groups: Vec<_> = self
            .tasks
            .values()
            .filter(|t| Rc::ptr_eq(&t.mm, mm))
            .map(|t| t.tgid)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for tgid in groups {
            self.log.line(&format!(
                "process {tgid} killed: the host refused to unmap file pages from it"
            ));
            self.group_exit(tgid, libc::SIGKILL);
        }
    }

    /// Writes the dirty pages `[p0, p1)` of a host file back, after
    /// write-protecting them in every process (a write racing with the
    /// copy faults and makes the page dirty again).
    pub fn sync_file_pages(&mut self, mem: &Rc<FileMem>, p0: u64, p1: u64) -> SysResult<()> {
        if mem.dirty_runs(p0, p1).is_empty() {
            return Ok(());
        }
        for mm in self.address_spaces() {
            let r = mm
                .borrow_mut()
                .write_protect(&mut self.platform, mem, p0, p1);
            if r.is_err() {
                // Its stub keeps the dirty pages writable: writes after
                // the write-back would go unnoticed (lost); the process
                // goes instead.
                self.kill_space(&mm);
            }
        }
        mem.writeback(p0, p1, true)
    }

    /// A fault of `tid` in workload code. None: served (a file page was
    /// brought in), retry the access; else the signal and code to deliver.
    pub fn page_fault(&mut self, tid: Tid, signo: i32, code: i32, addr: u64) -> Option<(i32, i32)> {
        if signo != libc::SIGSEGV {
            return Some((signo, code));
        }
        let retried = RETRIED.with(|r| r.get()) == Some((tid, addr));
        let mm = self.task_mm(tid);
        let outcome = mm
            .borrow_mut()
            .fault(&mut self.platform, addr, code == SEGV_MAPERR, retried);
        RETRIED.with(|r| {
            r.set(match outcome {
                Fault::Handled if code != SEGV_MAPERR => Some((tid, addr)),
                _ => None,
            })
        });
        match outcome {
            Fault::Handled => None,
            Fault::SigBus => Some((libc::SIGBUS, BUS_ADRERR)),
            // Inside a mapping the access was not allowed (a PROT_NONE
            // range the host may not map at all): SEGV_ACCERR, as Linux.
            Fault::NotMine if code == SEGV_MAPERR && mm.borrow().find(addr).is_some() => {
                Some((signo, SEGV_ACCERR))
            }
            Fault::NotMine => Some((signo, code)),
        }
    }
}
