//! I/O vectors pointing at workload memory through the kernel's mapping of
//! the memory file, so file data moves between the host and the workload
//! without an intermediate copy (readv/writev straight into the pages).

use crate::errno::{Errno, SysResult};
use crate::mm::AddressSpace;

/// Size of `struct iovec`.
pub const IOVEC_SIZE: usize = 16;

/// The `(base, len)` ranges of an iovec array as the workload wrote it
/// (`raw` holds whole `struct iovec`s). Lengths are clamped so that they
/// add up to at most `max_total`, as Linux caps one read or write rather
/// than failing it, and empty vectors are dropped. Kept apart from reading
/// the array so the fuzzers can drive it; the ranges themselves are
/// checked against the address space by [`IoVecs::from_user`].
pub fn iovec_ranges(raw: &[u8], max_total: usize) -> Vec<(u64, usize)> {
    let mut total = 0usize;
    let mut ranges = Vec::with_capacity(raw.len() / IOVEC_SIZE);
    for v in raw.chunks_exact(IOVEC_SIZE) {
        let base = u64::from_ne_bytes(v[..8].try_into().unwrap());
        let len = u64::from_ne_bytes(v[8..].try_into().unwrap()) as usize;
        let n = len.min(max_total - total);
        total += n;
        if n > 0 {
            ranges.push((base, n));
        }
    }
    ranges
}

/// EFAULT if any vector of the raw iovec array, even an empty one, lies
/// outside the user address space (Linux checks every vector with
/// access_ok before any transfer).
pub fn check_iovec_array(raw: &[u8]) -> SysResult<()> {
    for v in raw.chunks_exact(IOVEC_SIZE) {
        let base = u64::from_ne_bytes(v[..8].try_into().unwrap());
        let len = u64::from_ne_bytes(v[8..].try_into().unwrap());
        if base
            .checked_add(len)
            .is_none_or(|e| e > crate::arch::TASK_SIZE_MAX)
        {
            return Err(Errno::EFAULT);
        }
    }
    Ok(())
}

/// Kernel-side iovecs over user memory (or over kernel buffers).
pub struct IoVecs {
    pub iovs: Vec<libc::iovec>,
    pub len: usize,
}

impl IoVecs {
    /// The user ranges `(addr, len)` as kernel-side iovecs; `write` checks
    /// that the workload may write the memory (the destination of a read).
    pub fn from_user(mm: &AddressSpace, ranges: &[(u64, usize)], write: bool) -> SysResult<IoVecs> {
        let need = if write {
            libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let mut iovs = Vec::new();
        let mut len = 0usize;
        // Like Linux, a bad range after good ones ends the transfer there
        // (a short read or write); only a bad first byte is EFAULT.
        let fail = |len: usize, iovs: Vec<libc::iovec>| {
            if len > 0 {
                Ok(IoVecs { iovs, len })
            } else {
                Err(Errno::EFAULT)
            }
        };
        // Ranges outside the user address space fail the whole call
        // (Linux's access_ok when importing the vector).
        if ranges.iter().any(|&(a, n)| {
            a.checked_add(n as u64)
                .is_none_or(|e| e > crate::arch::TASK_SIZE_MAX)
        }) {
            return Err(Errno::EFAULT);
        }
        for &(addr, n) in ranges {
            let end = addr + n as u64;
            let mut pos = addr;
            while pos < end {
                let Some(v) = mm.find(pos).filter(|v| v.prot & need == need) else {
                    return fail(len, iovs);
                };
                let Ok((ptr, take)) = v.kernel_span(pos, end - pos, write) else {
                    return fail(len, iovs);
                };
                let take = take as usize;
                iovs.push(libc::iovec {
                    iov_base: ptr as *mut libc::c_void,
                    iov_len: take,
                });
                pos += take as u64;
                len += take;
            }
        }
        Ok(IoVecs { iovs, len })
    }

    pub fn single(mm: &AddressSpace, addr: u64, n: usize, write: bool) -> SysResult<IoVecs> {
        Self::from_user(mm, &[(addr, n)], write)
    }

    /// Over a kernel buffer.
    pub fn from_slice(buf: &mut [u8]) -> IoVecs {
        IoVecs {
            len: buf.len(),
            iovs: vec![libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            }],
        }
    }

    /// Copies `data` into the vectors starting at byte `at`; returns bytes copied.
    pub fn copy_in(&self, at: usize, data: &[u8]) -> usize {
        let mut skip = at;
        let mut done = 0;
        for iov in &self.iovs {
            if done == data.len() {
                break;
            }
            if skip >= iov.iov_len {
                skip -= iov.iov_len;
                continue;
            }
            let n = (iov.iov_len - skip).min(data.len() - done);
            // SAFETY: iov points at n valid bytes past skip.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr().add(done),
                    (iov.iov_base as *mut u8).add(skip),
                    n,
                )
            };
            done += n;
            skip = 0;
        }
        done
    }

    /// Copies out of the vectors from byte `at` into `out`.
    pub fn copy_out(&self, at: usize, out: &mut [u8]) -> usize {
        let mut skip = at;
        let mut done = 0;
        for iov in &self.iovs {
            if done == out.len() {
                break;
            }
            if skip >= iov.iov_len {
                skip -= iov.iov_len;
                continue;
            }
            let n = (iov.iov_len - skip).min(out.len() - done);
            // SAFETY: as above.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (iov.iov_base as *const u8).add(skip),
                    out.as_mut_ptr().add(done),
                    n,
                )
            };
            done += n;
            skip = 0;
        }
        done
    }

    /// All the data, copied out (for small writes to in-kernel objects).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        self.copy_out(0, &mut v);
        v
    }

    /// The first `n` bytes as a new vector list.
    pub fn truncated(&self, n: usize) -> IoVecs {
        let mut out = Vec::new();
        let mut left = n.min(self.len);
        let total = left;
        for iov in &self.iovs {
            if left == 0 {
                break;
            }
            let take = iov.iov_len.min(left);
            out.push(libc::iovec {
                iov_base: iov.iov_base,
                iov_len: take,
            });
            left -= take;
        }
        IoVecs {
            iovs: out,
            len: total,
        }
    }
}
