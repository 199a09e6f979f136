//! The host's vDSO in every stub: the zygote moves its pieces (the vvar
//! pages and the code, keeping their distances, which the code relies on)
//! to [`VDSO_AT`], above the workload's address space, and every stub
//! cloned from it has them there. The workload gets its address as
//! `AT_SYSINFO_EHDR`, so `clock_gettime`, `gettimeofday`, `time` and
//! `getcpu` run without a syscall, from pages the host kernel keeps
//! current. The sandbox's clocks are the host's, so nothing differs from
//! what the syscalls would answer; the fallback syscalls of the vDSO code
//! (clocks it cannot serve) are ordinary workload syscalls.

/// Where stubs have the host's vDSO block.
pub const VDSO_AT: u64 = 0x7ff1_0000_0000;
/// Largest vDSO block kept (vvar pages plus code; a few pages in practice).
pub const VDSO_MAX: u64 = 1 << 20;

/// The host vDSO of this process: its pieces (vvar pages and code, at
/// most four mappings) and the vDSO's ELF header, which the zygote moves
/// to [`VDSO_AT`] keeping their distances.
#[derive(Clone, Copy)]
pub struct HostVdso {
    pieces: [(u64, u64); 4],
    n: usize,
    base: u64,
}

impl HostVdso {
    fn lo(&self) -> u64 {
        self.pieces[..self.n].iter().map(|p| p.0).min().unwrap_or(0)
    }

    fn hi(&self) -> u64 {
        self.pieces[..self.n].iter().map(|p| p.1).max().unwrap_or(0)
    }

    /// The vDSO's address in a stub.
    pub fn in_stub(&self) -> u64 {
        VDSO_AT + (self.base - self.lo())
    }
}

static HOST_VDSO: std::sync::OnceLock<Option<HostVdso>> = std::sync::OnceLock::new();

/// Reads where the host put this process's vDSO. Call while /proc is
/// still reachable (the kernel later lives in an empty root).
pub fn capture_host_vdso() {
    HOST_VDSO.get_or_init(read_host_vdso);
}

pub fn host_vdso() -> Option<HostVdso> {
    *HOST_VDSO.get_or_init(read_host_vdso)
}

fn read_host_vdso() -> Option<HostVdso> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mut v = HostVdso {
        pieces: [(0, 0); 4],
        n: 0,
        base: 0,
    };
    for line in maps.lines() {
        let name = line.split_whitespace().nth(5).unwrap_or("");
        if !matches!(name, "[vvar]" | "[vvar_vclock]" | "[vdso]") {
            continue;
        }
        let (a, b) = line.split_whitespace().next()?.split_once('-')?;
        let (a, b) = (
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        );
        if v.n == v.pieces.len() {
            return None;
        }
        v.pieces[v.n] = (a, b);
        v.n += 1;
        if name == "[vdso]" {
            v.base = a;
        }
    }
    (v.base != 0 && v.hi() - v.lo() <= VDSO_MAX).then_some(v)
}

impl HostVdso {
    /// Moves the pieces to [`VDSO_AT`]. In a freshly forked stub only:
    /// raw syscalls, no allocation.
    ///
    /// # Safety
    /// The caller's own vDSO disappears from where libc knows it.
    pub unsafe fn relocate_raw(&self) -> bool {
        let lo = self.lo();
        let mut moved = true;
        for &(start, end) in &self.pieces[..self.n] {
            let to = VDSO_AT + (start - lo);
            // SAFETY: moving our own mappings (see the function's contract).
            let r = unsafe {
                libc::syscall(
                    libc::SYS_mremap,
                    start,
                    end - start,
                    end - start,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    to,
                )
            };
            moved &= r as u64 == to;
        }
        moved
    }

    /// The range a stub keeps once the block moved.
    pub fn kept(&self) -> (u64, u64) {
        (VDSO_AT, VDSO_AT + (self.hi() - self.lo()))
    }
}
