//! The descriptor table of a process.

use std::rc::Rc;

use super::file::File;
use crate::errno::{Errno, SysResult};

#[derive(Clone)]
pub struct FdEntry {
    pub file: Rc<File>,
    pub cloexec: bool,
}

#[derive(Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
    /// Every descriptor below this one is open (Linux's `next_fd`): the
    /// search for the lowest free one starts here, not at 0 (with 10,000
    /// open, each open or dup walked them all).
    next_fd: usize,
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable::default()
    }

    pub fn get(&self, fd: i32) -> SysResult<Rc<File>> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds
            .get(fd as usize)
            .and_then(|e| e.as_ref())
            .map(|e| e.file.clone())
            .ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> Option<&FdEntry> {
        if fd < 0 {
            return None;
        }
        self.fds.get(fd as usize).and_then(|e| e.as_ref())
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> SysResult<()> {
        match self.fds.get_mut(fd as usize).and_then(|e| e.as_mut()) {
            Some(e) if fd >= 0 => {
                e.cloexec = on;
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// Lowest free descriptor >= `min`, below `limit` (RLIMIT_NOFILE).
    pub fn alloc(&mut self, file: Rc<File>, cloexec: bool, min: i32, limit: u64) -> SysResult<i32> {
        let min = min.max(0) as usize;
        let from_hint = min <= self.next_fd;
        let mut fd = min.max(self.next_fd);
        while fd < self.fds.len() && self.fds[fd].is_some() {
            fd += 1;
        }
        if fd as u64 >= limit {
            return Err(Errno::EMFILE);
        }
        if from_hint {
            // [next_fd, fd) was open too, and fd is now.
            self.next_fd = fd + 1;
        }
        self.put(fd as i32, file, cloexec);
        Ok(fd as i32)
    }

    /// Installs at exactly `fd`, returning what was there (closed by the caller).
    pub fn put(&mut self, fd: i32, file: Rc<File>, cloexec: bool) -> Option<FdEntry> {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        self.fds[i].replace(FdEntry { file, cloexec })
    }

    pub fn remove(&mut self, fd: i32) -> SysResult<FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let e = self
            .fds
            .get_mut(fd as usize)
            .and_then(|e| e.take())
            .ok_or(Errno::EBADF)?;
        self.next_fd = self.next_fd.min(fd as usize);
        Ok(e)
    }

    /// Drops close-on-exec descriptors (execve).
    pub fn close_on_exec(&mut self) -> Vec<FdEntry> {
        let mut closed = Vec::new();
        for (fd, slot) in self.fds.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                closed.push(slot.take().unwrap());
                self.next_fd = self.next_fd.min(fd);
            }
        }
        closed
    }

    /// (fd, entry) for every open descriptor.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.fds
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e)))
    }

    pub fn count(&self) -> usize {
        self.fds.iter().filter(|e| e.is_some()).count()
    }

    pub fn take_all(&mut self) -> Vec<FdEntry> {
        self.next_fd = 0;
        self.fds.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest free descriptor, the slow way.
    fn lowest_free(t: &FdTable, min: usize) -> usize {
        (min..).find(|&fd| t.entry(fd as i32).is_none()).unwrap()
    }

    #[test]
    fn descriptors_are_the_lowest_free_ones_whatever_was_closed() {
        let file = File::new(Rc::new(super::super::epoll::Epoll::new()), 0, None);
        let mut t = FdTable::new();
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let rng = next();
            match rng % 6 {
                0 | 1 if t.count() > 0 => {
                    let open: Vec<i32> = t.iter().map(|(fd, _)| fd).collect();
                    t.remove(open[(rng >> 8) as usize % open.len()]).unwrap();
                }
                2 => {
                    let at = ((rng >> 8) % 300) as i32;
                    t.put(at, file.clone(), (rng >> 20).is_multiple_of(2));
                }
                3 if (rng >> 8).is_multiple_of(50) => {
                    t.close_on_exec();
                }
                _ => {
                    let min = if (rng >> 8).is_multiple_of(4) {
                        ((rng >> 12) % 200) as usize
                    } else {
                        0
                    };
                    let want = lowest_free(&t, min);
                    let got = t.alloc(
                        file.clone(),
                        (rng >> 20).is_multiple_of(2),
                        min as i32,
                        1 << 20,
                    );
                    assert_eq!(got, Ok(want as i32));
                }
            }
        }
        assert_eq!(t.alloc(file.clone(), false, 0, 0), Err(Errno::EMFILE));
    }
}
