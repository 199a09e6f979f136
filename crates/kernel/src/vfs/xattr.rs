//! Extended attributes kept in the kernel's memory: tmpfs's user.* and
//! trusted.* attributes (Linux's simple_xattr). The syscalls check names,
//! sizes and permissions (syscalls/fs/xattr.rs); this is the store, with
//! Linux's XATTR_CREATE / XATTR_REPLACE rules and a bound on what one
//! inode may hold, so no workload grows the kernel's heap without limit.

use std::collections::BTreeMap;

use crate::errno::{Errno, SysResult};

/// Longest name, prefix included (Linux's XATTR_NAME_MAX).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest value (Linux's XATTR_SIZE_MAX).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest list listxattr returns (Linux's XATTR_LIST_MAX).
pub const XATTR_LIST_MAX: usize = 65536;
pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;
/// Names and values one inode may hold in all. Linux charges tmpfs's
/// user.* attributes to the mount's inode space; a per-inode bound does
/// the same job here: ENOSPC past it.
pub const XATTR_INODE_MAX: usize = 128 << 10;

/// The namespace a name's prefix picks (Linux's xattr handlers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    User,
    Trusted,
    Security,
    System,
}

/// The namespace of `name`: EOPNOTSUPP for a prefix no handler knows,
/// EINVAL for a bare prefix ("user.") as Linux's xattr_resolve_name.
pub fn namespace(name: &[u8]) -> SysResult<Namespace> {
    let known: [(&[u8], Namespace); 4] = [
        (b"user.", Namespace::User),
        (b"trusted.", Namespace::Trusted),
        (b"security.", Namespace::Security),
        (b"system.", Namespace::System),
    ];
    for (prefix, ns) in known {
        if let Some(rest) = name.strip_prefix(prefix) {
            return if rest.is_empty() {
                Err(Errno::EINVAL)
            } else {
                Ok(ns)
            };
        }
    }
    Err(Errno::EOPNOTSUPP)
}

/// One inode's attributes.
#[derive(Default, Debug)]
pub struct Xattrs {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Bytes of names and values held (against XATTR_INODE_MAX).
    bytes: usize,
}

impl Xattrs {
    pub fn get(&self, name: &[u8]) -> SysResult<&[u8]> {
        self.map.get(name).map(|v| &v[..]).ok_or(Errno::ENODATA)
    }

    /// Sets `name` to `value`: XATTR_CREATE fails with EEXIST on an
    /// existing name, XATTR_REPLACE with ENODATA on a missing one.
    pub fn set(&mut self, name: &[u8], value: &[u8], flags: i32) -> SysResult<()> {
        let old = self.map.get(name).map(|v| name.len() + v.len());
        match old {
            Some(_) if flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST),
            None if flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA),
            _ => {}
        }
        let bytes = self.bytes - old.unwrap_or(0) + name.len() + value.len();
        if bytes > XATTR_INODE_MAX {
            return Err(Errno::ENOSPC);
        }
        self.map.insert(name.to_vec(), value.to_vec());
        self.bytes = bytes;
        Ok(())
    }

    pub fn remove(&mut self, name: &[u8]) -> SysResult<()> {
        let v = self.map.remove(name).ok_or(Errno::ENODATA)?;
        self.bytes -= name.len() + v.len();
        Ok(())
    }

    /// The names `shown` lets through, each NUL-terminated (listxattr's
    /// format).
    pub fn list(&self, shown: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for name in self.map.keys().filter(|n| shown(n)) {
            out.extend_from_slice(name);
            out.push(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_the_prefix() {
        assert_eq!(namespace(b"user.a"), Ok(Namespace::User));
        assert_eq!(namespace(b"trusted.a"), Ok(Namespace::Trusted));
        assert_eq!(namespace(b"security.capability"), Ok(Namespace::Security));
        assert_eq!(namespace(b"system.posix_acl_access"), Ok(Namespace::System));
        assert_eq!(namespace(b"user."), Err(Errno::EINVAL));
        assert_eq!(namespace(b"foo.bar"), Err(Errno::EOPNOTSUPP));
        assert_eq!(namespace(b"user"), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn create_and_replace_flags_as_linux() {
        let mut x = Xattrs::default();
        assert_eq!(x.set(b"user.a", b"1", XATTR_REPLACE), Err(Errno::ENODATA));
        x.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(x.set(b"user.a", b"2", XATTR_CREATE), Err(Errno::EEXIST));
        x.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        assert_eq!(x.get(b"user.a"), Ok(&b"22"[..]));
        x.set(b"user.b", b"", 0).unwrap();
        assert_eq!(x.list(|_| true), b"user.a\0user.b\0");
        assert_eq!(x.list(|n| n != b"user.a"), b"user.b\0");
        x.remove(b"user.a").unwrap();
        assert_eq!(x.remove(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(x.get(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(x.bytes, b"user.b".len());
    }

    #[test]
    fn an_inode_holds_a_bounded_amount() {
        let mut x = Xattrs::default();
        let big = vec![7u8; XATTR_SIZE_MAX];
        let mut n = 0;
        let err = loop {
            match x.set(format!("user.{n}").as_bytes(), &big, 0) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Errno::ENOSPC);
        assert!(x.bytes <= XATTR_INODE_MAX);
        // Replacing a value with a smaller one always fits.
        x.set(b"user.0", b"small", XATTR_REPLACE).unwrap();
        x.set(b"user.x", &big, 0).unwrap();
    }
}
