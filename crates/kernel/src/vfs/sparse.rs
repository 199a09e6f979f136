//! The data of a tmpfs file (and of memfds): pages in a map, so a file is
//! sparse as on Linux's tmpfs. ftruncate to any size costs nothing, holes
//! read as zeros, and memory is spent only on pages written. Every page
//! of every file is counted against one budget (the sandbox's memory, as
//! the kernel sees it), so writes fail with ENOSPC rather than let the
//! workload make the kernel allocate without bound.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::iov::IoVecs;
use crate::errno::{Errno, SysResult};

const PAGE: usize = 4096;

/// Largest file size (Linux's MAX_LFS_FILESIZE on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

thread_local! {
    /// Pages held by all files.
    static PAGES: Cell<u64> = const { Cell::new(0) };
}

/// Bytes held by the data of all in-kernel files.
pub fn bytes_in_use() -> u64 {
    PAGES.with(|p| p.get()) * PAGE as u64
}

#[derive(Default)]
pub struct FileData {
    size: u64,
    pages: BTreeMap<u64, Box<[u8; PAGE]>>,
}

impl Drop for FileData {
    fn drop(&mut self) {
        let n = self.pages.len() as u64;
        PAGES.with(|p| p.set(p.get() - n));
    }
}

impl FileData {
    pub fn new() -> FileData {
        FileData::default()
    }

    /// A file holding `bytes` (synthesized files such as sysfs's).
    pub fn from_bytes(bytes: &[u8]) -> FileData {
        let mut d = FileData::new();
        let mut v = bytes.to_vec();
        let iov = IoVecs::from_slice(&mut v);
        // Small, kernel-made contents: no budget to respect.
        let _ = d.write(0, &iov, u64::MAX);
        d
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Bytes of memory the file holds (st_blocks counts these).
    pub fn allocated(&self) -> u64 {
        (self.pages.len() * PAGE) as u64
    }

    /// Reads from `off` into `dst`; holes read as zeros.
    pub fn read(&self, off: u64, dst: &IoVecs) -> usize {
        if off >= self.size {
            return 0;
        }
        let n = (dst.len as u64).min(self.size - off) as usize;
        static ZEROS: [u8; PAGE] = [0; PAGE];
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (idx, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let take = (PAGE - in_page).min(n - done);
            let src = match self.pages.get(&idx) {
                Some(p) => &p[in_page..in_page + take],
                None => &ZEROS[..take],
            };
            dst.copy_in(done, src);
            done += take;
        }
        n
    }

    /// Writes `src` at `off`, growing the file. New pages must fit in
    /// `budget` bytes of in-kernel file data (ENOSPC otherwise, as a full
    /// tmpfs); past the largest file size is EFBIG.
    pub fn write(&mut self, off: u64, src: &IoVecs, budget: u64) -> SysResult<usize> {
        let n = src.len;
        if n == 0 {
            return Ok(0);
        }
        let end = off
            .checked_add(n as u64)
            .filter(|e| *e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let (first, last) = (off / PAGE as u64, (end - 1) / PAGE as u64);
        let new = (first..=last)
            .filter(|i| !self.pages.contains_key(i))
            .count() as u64;
        let in_use = bytes_in_use();
        if new > 0 && in_use.saturating_add(new * PAGE as u64) > budget {
            return Err(Errno::ENOSPC);
        }
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (idx, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let take = (PAGE - in_page).min(n - done);
            let page = self.pages.entry(idx).or_insert_with(|| {
                PAGES.with(|p| p.set(p.get() + 1));
                Box::new([0; PAGE])
            });
            src.copy_out(done, &mut page[in_page..in_page + take]);
            done += take;
        }
        self.size = self.size.max(end);
        Ok(n)
    }

    /// Sets the size: pages past it go, the tail of the last is zeroed.
    pub fn set_len(&mut self, len: u64) -> SysResult<()> {
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if len < self.size {
            let keep = len.div_ceil(PAGE as u64);
            let gone = self.pages.split_off(&keep);
            PAGES.with(|p| p.set(p.get() - gone.len() as u64));
            if !len.is_multiple_of(PAGE as u64)
                && let Some(p) = self.pages.get_mut(&(len / PAGE as u64))
            {
                p[(len % PAGE as u64) as usize..].fill(0);
            }
        }
        self.size = len;
        Ok(())
    }

    /// The whole content (small synthesized files).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size as usize];
        let iov = IoVecs::from_slice(&mut v);
        self.read(0, &iov);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(d: &mut FileData, off: u64, data: &[u8], budget: u64) -> SysResult<usize> {
        let mut v = data.to_vec();
        d.write(off, &IoVecs::from_slice(&mut v), budget)
    }

    fn read(d: &FileData, off: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0xffu8; n];
        let got = d.read(off, &IoVecs::from_slice(&mut v));
        v.truncate(got);
        v
    }

    #[test]
    fn huge_sizes_cost_nothing_and_holes_read_as_zeros() {
        let mut d = FileData::new();
        d.set_len(MAX_FILE_SIZE).unwrap();
        assert_eq!(d.allocated(), 0);
        assert_eq!(read(&d, MAX_FILE_SIZE - 3, 10), vec![0, 0, 0]);
        write(&mut d, 1 << 40, b"far", u64::MAX).unwrap();
        assert_eq!(d.allocated(), 4096);
        assert_eq!(read(&d, (1 << 40) - 1, 5), b"\0far\0");
        assert_eq!(d.set_len(MAX_FILE_SIZE + 1), Err(Errno::EFBIG));
        assert_eq!(
            write(&mut d, MAX_FILE_SIZE - 1, b"ab", u64::MAX),
            Err(Errno::EFBIG)
        );
    }

    #[test]
    fn shrinking_frees_pages_and_zeroes_the_tail() {
        let mut d = FileData::new();
        write(&mut d, 0, &[7u8; 10000], u64::MAX).unwrap();
        assert_eq!(d.allocated(), 3 * 4096);
        d.set_len(5000).unwrap();
        assert_eq!(d.allocated(), 2 * 4096);
        d.set_len(10000).unwrap();
        assert_eq!(read(&d, 4999, 3), vec![7, 0, 0]);
    }

    #[test]
    fn the_budget_bounds_new_pages() {
        let mut d = FileData::new();
        let before = bytes_in_use();
        assert_eq!(
            write(&mut d, 0, &[1u8; 8192], before + 4096),
            Err(Errno::ENOSPC)
        );
        assert_eq!(d.allocated(), 0);
        write(&mut d, 0, &[1u8; 4096], before + 4096).unwrap();
        // Rewriting an allocated page needs no new memory.
        write(&mut d, 0, &[2u8; 4096], before + 4096).unwrap();
        drop(d);
        assert_eq!(bytes_in_use(), before);
    }
}
