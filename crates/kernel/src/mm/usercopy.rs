//! Reading and writing workload memory through the kernel's own mapping
//! of the memory file, with the checks the Linux kernel makes: the range
//! must be mapped, readable for reads and writable for writes, else EFAULT.

use super::space::AddressSpace;
use crate::errno::{Errno, SysResult};

/// Plain data that can be copied to and from workload memory.
///
/// # Safety
/// Implementors must be valid for any bit pattern and have no padding
/// whose contents matter.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(unsafe impl Pod for $t {})* };
}
pod!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}
unsafe impl Pod for libc::timespec {}
unsafe impl Pod for libc::timeval {}
unsafe impl Pod for libc::iovec {}
unsafe impl Pod for libc::stat {}
unsafe impl Pod for libc::statfs {}
unsafe impl Pod for libc::rlimit {}
unsafe impl Pod for libc::rusage {}
unsafe impl Pod for libc::utsname {}
unsafe impl Pod for libc::sysinfo {}
unsafe impl Pod for libc::pollfd {}
unsafe impl Pod for libc::winsize {}
unsafe impl Pod for libc::termios {}
unsafe impl Pod for libc::itimerval {}
unsafe impl Pod for libc::itimerspec {}
unsafe impl Pod for libc::sigset_t {}
unsafe impl Pod for libc::siginfo_t {}
unsafe impl Pod for libc::statx {}
unsafe impl Pod for libc::tms {}
unsafe impl Pod for libc::msghdr {}
unsafe impl Pod for libc::cmsghdr {}
unsafe impl Pod for libc::sockaddr_storage {}
unsafe impl Pod for libc::epoll_event {}
unsafe impl Pod for libc::linger {}

/// execve's arguments and environment, as read from the workload.
pub type ArgvEnvp = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Pointers in a page.
const PAGE_WORDS: usize = crate::arch::PAGE_SIZE as usize / 8;

/// Maximum length of a path or string argument (PATH_MAX).
pub const PATH_MAX: usize = 4096;

impl AddressSpace {
    /// Visits the memory backing `[addr, addr+len)`, checking protection;
    /// `write`: the kernel will write it (file pages become dirty).
    fn for_range(
        &self,
        addr: u64,
        len: usize,
        need: i32,
        mut f: impl FnMut(*mut u8, usize, usize),
    ) -> SysResult<()> {
        let write = need & libc::PROT_WRITE != 0;
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut pos = addr;
        while pos < end {
            let v = self.find(pos).ok_or(Errno::EFAULT)?;
            if v.prot & need != need {
                return Err(Errno::EFAULT);
            }
            let (ptr, n) = v.kernel_span(pos, end - pos, write)?;
            f(ptr, (pos - addr) as usize, n as usize);
            pos += n;
        }
        Ok(())
    }

    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        let out = buf.as_mut_ptr();
        self.for_range(addr, buf.len(), libc::PROT_READ, |src, at, n| {
            // SAFETY: src is valid for n bytes in the kernel's mapping; at+n <= buf.len().
            unsafe { std::ptr::copy_nonoverlapping(src, out.add(at), n) }
        })
    }

    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        let inp = data.as_ptr();
        self.for_range(addr, data.len(), libc::PROT_WRITE, |dst, at, n| {
            // SAFETY: as in read_bytes.
            unsafe { std::ptr::copy_nonoverlapping(inp.add(at), dst, n) }
        })
    }

    /// Writes ignoring protection (the loader filling read-only segments).
    pub fn write_force(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        let inp = data.as_ptr();
        self.for_range(addr, data.len(), 0, |dst, at, n| unsafe {
            std::ptr::copy_nonoverlapping(inp.add(at), dst, n)
        })
    }

    pub fn zero(&self, addr: u64, len: usize) -> SysResult<()> {
        self.for_range(addr, len, libc::PROT_WRITE, |dst, _, n| unsafe {
            std::ptr::write_bytes(dst, 0, n)
        })
    }

    /// `len` bytes at `addr`. The range is checked before anything is
    /// allocated (an unmapped length is EFAULT, not a kernel allocation),
    /// and a length the kernel cannot allocate is ENOMEM, never an abort;
    /// callers still bound lengths as Linux does.
    pub fn read_vec(&self, addr: u64, len: usize) -> SysResult<Vec<u8>> {
        // Every caller bounds its length far below this (the largest is
        // poll's array at fs.nr_open entries); a backstop, not a limit.
        const MAX: usize = 64 << 20;
        if len > MAX {
            return Err(Errno::ENOMEM);
        }
        self.for_range(addr, len, libc::PROT_READ, |_, _, _| {})?;
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
        v.resize(len, 0);
        self.read_bytes(addr, &mut v)?;
        Ok(v)
    }

    pub fn read_val<T: Pod>(&self, addr: u64) -> SysResult<T> {
        let mut v = std::mem::MaybeUninit::<T>::zeroed();
        // SAFETY: T is Pod; the buffer is size_of::<T>() bytes.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of::<T>())
        };
        self.read_bytes(addr, buf)?;
        Ok(unsafe { v.assume_init() })
    }

    pub fn write_val<T: Pod>(&self, addr: u64, v: &T) -> SysResult<()> {
        // SAFETY: T is Pod.
        let buf = unsafe {
            std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>())
        };
        self.write_bytes(addr, buf)
    }

    pub fn read_vals<T: Pod>(&self, addr: u64, n: usize) -> SysResult<Vec<T>> {
        let size = std::mem::size_of::<T>();
        let total = n.checked_mul(size).ok_or(Errno::EFAULT)?;
        let bytes = self.read_vec(addr, total)?;
        Ok((0..n)
            .map(|i| unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(i * size) as *const T) })
            .collect())
    }

    /// A NUL-terminated string of at most `max` bytes (ENAMETOOLONG beyond).
    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut pos = addr;
        loop {
            let v = self.find(pos).ok_or(Errno::EFAULT)?;
            if v.prot & libc::PROT_READ == 0 {
                return Err(Errno::EFAULT);
            }
            // A page at a time, and never further than the longest string
            // allowed: a string in a file mapping brings in no more of the
            // file than it needs.
            let page_left = crate::arch::PAGE_SIZE - pos % crate::arch::PAGE_SIZE;
            let want = (v.end - pos)
                .min(page_left)
                .min((max + 1 - out.len()) as u64);
            let (ptr, n) = v.kernel_span(pos, want, false)?;
            let n = n as usize;
            // SAFETY: ptr valid for n bytes.
            let s = unsafe { std::slice::from_raw_parts(ptr, n) };
            if let Some(i) = s.iter().position(|b| *b == 0) {
                out.extend_from_slice(&s[..i]);
                if out.len() >= max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(s);
            if out.len() >= max {
                return Err(Errno::ENAMETOOLONG);
            }
            pos += n as u64;
        }
    }

    /// execve's arguments and environment, as Linux reads them
    /// (`do_execveat_common`): first both pointer arrays are counted
    /// (EFAULT where one is not readable), then the limit is what
    /// RLIMIT_STACK `stack_rlimit` allows, a quarter of it, at least 128
    /// KiB and at most 6 MiB, less a pointer per string; then the
    /// program's name (`execfn_len` bytes), the environment and the
    /// arguments are read, each string at most MAX_ARG_STRLEN (128 KiB
    /// with its NUL), all of them within the limit: E2BIG beyond, EFAULT
    /// where a string is not readable.
    ///
    /// `xargs` hands a program thousands of them, so the common case does
    /// no lookup per string: the pointers are read a page at a time, and
    /// a string that ends inside the page the last one was found in is
    /// taken from there. Only pages Linux reads too are touched (the rest
    /// of a page it reads a pointer or a string from); everything else
    /// goes through [`AddressSpace::read_cstr`].
    pub fn read_exec_args(
        &self,
        argv: u64,
        envp: u64,
        execfn_len: usize,
        stack_rlimit: u64,
    ) -> SysResult<ArgvEnvp> {
        let limit = (stack_rlimit / 4).clamp(128 << 10, 6 << 20) as usize;
        // Pointers past the limit can never fit: counting stops there (a
        // workload's array could otherwise take the kernel's memory; Linux
        // counts on, to MAX_ARG_STRINGS, and may answer EFAULT instead
        // when such an array runs into an unmapped page).
        let max_ptrs = limit / 8;
        let argp = self.read_ptr_array(argv, max_ptrs)?;
        let envs = self.read_ptr_array(envp, max_ptrs - argp.len())?;
        let ptr_size = (argp.len().max(1) + envs.len()) * 8;
        if limit <= ptr_size {
            return Err(Errno::E2BIG);
        }
        let mut left = (limit - ptr_size)
            .checked_sub(execfn_len + 1)
            .ok_or(Errno::E2BIG)?;
        let envp = self.read_strings(&envs, &mut left)?;
        let argv = self.read_strings(&argp, &mut left)?;
        Ok((argv, envp))
    }

    /// The pointers of a NULL-terminated array, read a page at a time;
    /// E2BIG past `max` of them.
    fn read_ptr_array(&self, mut addr: u64, max: usize) -> SysResult<Vec<u64>> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        let mut words = [0u64; PAGE_WORDS];
        loop {
            // The pointers from `addr` to the end of its page (one, if
            // it straddles two pages).
            let left = (crate::arch::PAGE_SIZE - addr % crate::arch::PAGE_SIZE) as usize;
            let n = (left / 8).max(1);
            // SAFETY: u64s have no invalid bit patterns; n <= PAGE_WORDS.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, n * 8) };
            self.read_bytes(addr, bytes)?;
            for &p in &words[..n] {
                if p == 0 {
                    return Ok(out);
                }
                if out.len() >= max {
                    return Err(Errno::E2BIG);
                }
                out.push(p);
            }
            addr += n as u64 * 8;
        }
    }

    /// The strings at `ptrs`, each at most MAX_ARG_STRLEN with its NUL,
    /// taking their bytes (with the NULs) from `left`: E2BIG past it.
    fn read_strings(&self, ptrs: &[u64], left: &mut usize) -> SysResult<Vec<Vec<u8>>> {
        const STRING_MAX: usize = 128 * 1024;
        let mut out = Vec::with_capacity(ptrs.len());
        let mut page: Option<(u64, &[u8])> = None;
        for &p in ptrs {
            let s = match self.cstr_in_page(p, &mut page) {
                // (within a page: shorter than MAX_ARG_STRLEN)
                Some(s) => s.to_vec(),
                // Longer than MAX_ARG_STRLEN: E2BIG, as Linux.
                None => self.read_cstr(p, STRING_MAX).map_err(|e| match e {
                    Errno::ENAMETOOLONG => Errno::E2BIG,
                    e => e,
                })?,
            };
            *left = left.checked_sub(s.len() + 1).ok_or(Errno::E2BIG)?;
            out.push(s);
        }
        Ok(out)
    }

    /// The string at `p` if it ends inside the readable page `page` holds
    /// (the kernel's view of it), or else inside `p`'s own page, which
    /// `page` then holds. None: the string crosses a page, or `p` is not
    /// plainly readable (the caller's slow path says why).
    fn cstr_in_page<'a>(&'a self, p: u64, page: &mut Option<(u64, &'a [u8])>) -> Option<&'a [u8]> {
        let start = p - p % crate::arch::PAGE_SIZE;
        if page.is_none_or(|(s, _)| s != start) {
            let v = self.find(start)?;
            if v.prot & libc::PROT_READ == 0 {
                return None;
            }
            let (ptr, n) = v.kernel_span(start, crate::arch::PAGE_SIZE, false).ok()?;
            // SAFETY: the kernel's mapping of a mapped page, valid for n
            // bytes while the address space is borrowed (only the kernel
            // changes it, and it is here).
            *page = Some((start, unsafe {
                std::slice::from_raw_parts(ptr, n as usize)
            }));
        }
        let (_, bytes) = (*page)?;
        let from = bytes.get((p - start) as usize..)?;
        memchr::memchr(0, from).map(|i| &from[..i])
    }
}
