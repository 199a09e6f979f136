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
        let mut fd = min.max(0) as usize;
        while fd < self.fds.len() && self.fds[fd].is_some() {
            fd += 1;
        }
        if fd as u64 >= limit {
            return Err(Errno::EMFILE);
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
        self.fds
            .get_mut(fd as usize)
            .and_then(|e| e.take())
            .ok_or(Errno::EBADF)
    }

    /// Drops close-on-exec descriptors (execve).
    pub fn close_on_exec(&mut self) -> Vec<FdEntry> {
        let mut closed = Vec::new();
        for slot in self.fds.iter_mut() {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                closed.push(slot.take().unwrap());
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
        self.fds.drain(..).flatten().collect()
    }
}
