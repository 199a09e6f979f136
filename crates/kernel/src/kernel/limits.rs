//! Resource limits as Linux enforces them (RLIMIT_AS, RLIMIT_DATA,
//! RLIMIT_FSIZE, RLIMIT_NPROC), and the container's memory limit, which
//! the kernel turns into ENOMEM for allocations that cannot fit instead of
//! letting the host's OOM killer end the sandbox.

use super::signal::SigInfo;
use super::{Kernel, Tid};
use crate::errno::{Errno, SysResult};
use crate::mm::{AddressSpace, FileMem};

const INFINITY: u64 = libc::RLIM_INFINITY;

/// Memory kept for the kernel itself, its stubs and page tables when the
/// container has a memory limit: workload allocations that would leave
/// less than this are refused.
fn reserve(limit: u64) -> u64 {
    (16 << 20) + limit / 32
}

impl Kernel {
    /// Linux's may_expand_vm plus the container's memory: may `tid`'s
    /// process map `grow` more bytes, `data` of them private writable
    /// memory (RLIMIT_DATA's "data"), `commit` of them memory that will
    /// hold data (not PROT_NONE reservations)? ENOMEM if not.
    pub fn may_expand(
        &self,
        tid: Tid,
        mm: &AddressSpace,
        grow: u64,
        data: u64,
        commit: u64,
    ) -> SysResult<()> {
        let as_lim = self.rlimit(tid, libc::RLIMIT_AS).rlim_cur;
        if as_lim != INFINITY && mm.mapped_bytes().saturating_add(grow) > as_lim {
            return Err(Errno::ENOMEM);
        }
        let data_lim = self.rlimit(tid, libc::RLIMIT_DATA);
        // (Summed over every VMA, so only when there is a limit to check.)
        if data > 0 && data_lim.rlim_cur != INFINITY {
            let data_after = mm.data_bytes().saturating_add(data);
            // Linux lets a zero soft limit pass up to the hard one (its
            // workaround for Valgrind, which sets RLIMIT_DATA to 0).
            let zero_soft = data_lim.rlim_cur == 0 && data_after <= data_lim.rlim_max;
            if data_after > data_lim.rlim_cur && !zero_soft {
                return Err(Errno::ENOMEM);
            }
        }
        self.may_commit(commit)?;
        self.container_may_commit(tid, commit)
    }

    /// A pod container's own memory limit (its spec's): ENOMEM if `bytes`
    /// more could not fit beside what its processes hold. The cheap bound
    /// first (everything its processes map privately), the memory file's
    /// data extents only when that is over.
    fn container_may_commit(&self, tid: Tid, bytes: u64) -> SysResult<()> {
        let n = self.group_of(tid).container;
        if n == 0 || bytes == 0 {
            return Ok(());
        }
        let Some(limit) = self.pod.containers.get(&n).and_then(|c| c.config.mem_limit) else {
            return Ok(());
        };
        let ranges = self.container_ranges(n);
        let overlay = self.overlay_bytes(n);
        let mapped: u64 = ranges.iter().map(|r| r.1).sum::<u64>() + overlay;
        if mapped.saturating_add(bytes) <= limit {
            return Ok(());
        }
        let resident: u64 = ranges
            .iter()
            .map(|&(o, l)| self.mf.resident_in(o, l))
            .sum::<u64>()
            + overlay;
        if resident.saturating_add(bytes) > limit {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Pages pod container `n`'s rootfs overlay holds (vfs/overlay): its
    /// files' data, memory of the container as tmpfs pages are.
    fn overlay_bytes(&self, n: u32) -> u64 {
        self.pod
            .containers
            .get(&n)
            .map_or(0, |c| crate::vfs::overlay::upper_bytes_of(&c.root.inode))
    }

    /// May pod container `n`'s overlay store `bytes` more? ENOMEM if its
    /// own memory limit would be passed (the caller says ENOSPC, as a full
    /// tmpfs). The cheap bound first: everything the sandbox holds.
    pub fn container_may_store(&self, n: u32, bytes: u64) -> SysResult<()> {
        let Some(limit) = self.pod.containers.get(&n).and_then(|c| c.config.mem_limit) else {
            return Ok(());
        };
        if self.mf.resident().saturating_add(bytes) <= limit {
            return Ok(());
        }
        if self.container_memory(n).saturating_add(bytes) > limit {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// The memory-file ranges of pod container `n`'s private memory, each
    /// once.
    fn container_ranges(&self, n: u32) -> Vec<(u64, u64)> {
        let mut seen = std::collections::BTreeSet::new();
        for g in self.groups.values().filter(|g| g.container == n) {
            if let Some(&t) = g.threads.first()
                && let Some(task) = self.tasks.get(&t)
            {
                seen.extend(task.mm.borrow().private_ranges());
            }
        }
        seen.into_iter().collect()
    }

    /// Memory pod container `n` holds now: its processes' resident
    /// private and anonymous memory (shared file pages are the file's) and
    /// its rootfs overlay's pages.
    pub fn container_memory(&self, n: u32) -> u64 {
        self.container_ranges(n)
            .iter()
            .map(|&(o, l)| self.mf.resident_in(o, l))
            .sum::<u64>()
            + self.overlay_bytes(n)
    }

    /// The container's memory limit: ENOMEM if `bytes` more memory could
    /// not fit beside what the memory file already holds (a mapping of
    /// that size would bring the sandbox to the host's OOM killer once
    /// touched).
    pub fn may_commit(&self, bytes: u64) -> SysResult<()> {
        let Some(limit) = self.config.mem_limit else {
            return Ok(());
        };
        if bytes == 0 {
            return Ok(());
        }
        let used = self.mf.resident() + reserve(limit);
        if used.saturating_add(bytes) > limit {
            // Freed memory not yet returned to the host (punched now, even
            // where a dying stub still maps it), then page caches kept
            // for files no one uses, go before the workload is refused
            // memory.
            if (self.mf.release_retired() | FileMem::drop_retained())
                && (self.mf.resident() + reserve(limit)).saturating_add(bytes) <= limit
            {
                return Ok(());
            }
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Memory the sandbox holds now: the memory file's pages and the
    /// kernel's share (for /proc/meminfo and sysinfo).
    pub fn memory_used(&self) -> u64 {
        let reserved = self.config.mem_limit.map_or(16 << 20, reserve);
        self.mf.resident() + reserved
    }

    /// SIGXFSZ as Linux sends it (send_sig: SI_USER from the process itself).
    fn sigxfsz(&mut self, tid: Tid) {
        let pid = self.task(tid).tgid;
        let uid = self.cred(tid).uid;
        let _ = self.send_task(tid, SigInfo::user(libc::SIGXFSZ, 0, pid, uid));
    }

    /// RLIMIT_FSIZE for a write of `len` bytes at `pos` of a regular file:
    /// how many may be written. At or past the limit: SIGXFSZ and EFBIG
    /// (a process that ignores or handles SIGXFSZ sees EFBIG).
    pub fn fsize_allows(&mut self, tid: Tid, pos: u64, len: u64) -> SysResult<u64> {
        let lim = self.rlimit(tid, libc::RLIMIT_FSIZE).rlim_cur;
        if lim == INFINITY || len == 0 {
            return Ok(len);
        }
        if pos >= lim {
            self.sigxfsz(tid);
            return Err(Errno::EFBIG);
        }
        Ok(len.min(lim - pos))
    }

    /// RLIMIT_FSIZE for a file growing to `size` (truncate, fallocate).
    pub fn fsize_check(&mut self, tid: Tid, size: u64) -> SysResult<()> {
        let lim = self.rlimit(tid, libc::RLIMIT_FSIZE).rlim_cur;
        if lim != INFINITY && size > lim {
            self.sigxfsz(tid);
            return Err(Errno::EFBIG);
        }
        Ok(())
    }

    /// RLIMIT_NPROC for a new task of `parent`: the tasks of its real uid
    /// are counted, root and CAP_SYS_RESOURCE/CAP_SYS_ADMIN are exempt.
    pub fn nproc_allows(&self, parent: Tid) -> SysResult<()> {
        // Whatever the limits, the sandbox holds at most this many tasks.
        if self.tasks.len() >= 32768 {
            return Err(Errno::EAGAIN);
        }
        // A pod container's pids limit, as its cgroup's pids controller
        // would count: every task, whoever owns it.
        let n = self.group_of(parent).container;
        if n != 0
            && let Some(max) = self
                .pod
                .containers
                .get(&n)
                .and_then(|c| c.config.pids_limit)
        {
            let tasks = self
                .tasks
                .values()
                .filter(|t| self.groups.get(&t.tgid).is_some_and(|g| g.container == n))
                .count() as u64;
            if tasks >= max {
                return Err(Errno::EAGAIN);
            }
        }
        let cred = self.cred(parent);
        let lim = self.rlimit(parent, libc::RLIMIT_NPROC).rlim_cur;
        if lim == INFINITY
            || cred.uid == 0
            || cred.capable(crate::vfs::perm::cap::SYS_RESOURCE)
            || cred.capable(crate::vfs::perm::cap::SYS_ADMIN)
        {
            return Ok(());
        }
        let mine = self
            .tasks
            .values()
            .filter(|t| {
                self.groups
                    .get(&t.tgid)
                    .is_some_and(|g| g.cred.uid == cred.uid)
            })
            .count() as u64;
        if mine >= lim {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }
}
