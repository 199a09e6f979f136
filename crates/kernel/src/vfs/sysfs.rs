//! /sys: a minimal synthesized tree (CPU topology counts programs read to
//! size thread pools). No host sysfs content is ever exposed.

use std::rc::Rc;

use super::inode::Inode;
use super::tmpfs::{Content, TmpInode};
use crate::kernel::Kernel;

fn dir(parent: &TmpInode, name: &str) -> Rc<TmpInode> {
    let d = TmpInode::new(
        parent.dev,
        libc::S_IFDIR | 0o555,
        0,
        0,
        Content::Dir(Default::default()),
    );
    parent.add_dir(name.as_bytes(), d.clone());
    d
}

fn file(parent: &TmpInode, name: &str, text: String) {
    let f = TmpInode::new(
        parent.dev,
        libc::S_IFREG | 0o444,
        0,
        0,
        super::tmpfs::file_with(text.as_bytes()),
    );
    parent.add(name.as_bytes(), f);
}

pub fn new_sysfs(k: &Kernel) -> Rc<dyn Inode> {
    let root = TmpInode::new_root(0o555, 0, 0);
    let devices = dir(&root, "devices");
    let system = dir(&devices, "system");
    let cpu = dir(&system, "cpu");
    let n = k.config.cpus.max(1);
    let range = if n == 1 {
        "0".to_string()
    } else {
        format!("0-{}", n - 1)
    };
    for f in ["online", "possible", "present"] {
        file(&cpu, f, format!("{range}\n"));
    }
    for i in 0..n {
        let c = dir(&cpu, &format!("cpu{i}"));
        file(&c, "online", "1\n".into());
    }
    let fs = dir(&root, "fs");
    dir(&fs, "cgroup");
    let fs_cgroup = dir(&root, "class");
    let _ = fs_cgroup;
    dir(&root, "kernel");
    root
}
