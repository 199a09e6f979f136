//! /dev/pts: pseudo-terminal pairs inside the sandbox (filled in with
//! the terminal work; the directory exists so mounts of devpts succeed).

use std::rc::Rc;

use super::inode::Inode;
use super::tmpfs::TmpInode;

pub fn new_devpts() -> Rc<dyn Inode> {
    TmpInode::new_root(0o755, 0, 0)
}
