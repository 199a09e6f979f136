//! What the three System V registries share: keys, identifiers,
//! permissions (struct ipc64_perm).

use std::collections::BTreeMap;

use crate::errno::{Errno, SysResult};
use crate::vfs::perm::Cred;

/// Identifiers are `seq * SEQ_MULTIPLIER + index` (Linux's IPCMNI), so a
/// removed object's identifier is not reused by the next one at its index.
const SEQ_MULTIPLIER: i32 = 32768;
const SEQ_MAX: u32 = (i32::MAX / SEQ_MULTIPLIER) as u32;

/// CAP_IPC_OWNER: bypasses IPC permission checks.
const CAP_IPC_OWNER: u32 = 15;

/// Size of struct ipc64_perm.
pub const PERM_SIZE: usize = 48;

#[derive(Clone, Debug)]
pub struct IpcPerm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits and object flags (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: u16,
}

impl IpcPerm {
    pub fn new(key: i32, mode: u32, cred: &Cred) -> IpcPerm {
        IpcPerm {
            key,
            uid: cred.euid,
            gid: cred.egid,
            cuid: cred.euid,
            cgid: cred.egid,
            mode: mode & 0o777,
            seq: 0,
        }
    }

    /// ipcperms(): may `cred` have `want` (0o4 read, 0o2 write/alter,
    /// 0o1 exec; as in the low mode bits)?
    pub fn allows(&self, cred: &Cred, want: u32) -> bool {
        let granted = if cred.euid == self.uid || cred.euid == self.cuid {
            self.mode >> 6
        } else if cred.in_group(self.gid) || cred.in_group(self.cgid) {
            self.mode >> 3
        } else {
            self.mode
        } & 0o7;
        want & !granted == 0 || cred.capable(CAP_IPC_OWNER)
    }

    /// EACCES unless `cred` may `want`.
    pub fn check(&self, cred: &Cred, want: u32) -> SysResult<()> {
        if self.allows(cred, want) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// IPC_SET and IPC_RMID: the owner, the creator, or CAP_SYS_ADMIN.
    pub fn check_owner(&self, cred: &Cred) -> SysResult<()> {
        if cred.euid == self.uid
            || cred.euid == self.cuid
            || cred.capable(crate::vfs::perm::cap::SYS_ADMIN)
        {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// struct ipc64_perm.
    pub fn encode(&self, out: &mut [u8]) {
        out[..PERM_SIZE].fill(0);
        out[0..4].copy_from_slice(&self.key.to_ne_bytes());
        out[4..8].copy_from_slice(&self.uid.to_ne_bytes());
        out[8..12].copy_from_slice(&self.gid.to_ne_bytes());
        out[12..16].copy_from_slice(&self.cuid.to_ne_bytes());
        out[16..20].copy_from_slice(&self.cgid.to_ne_bytes());
        out[20..24].copy_from_slice(&self.mode.to_ne_bytes());
        out[24..26].copy_from_slice(&self.seq.to_ne_bytes());
    }

    /// IPC_SET: owner, group and permission bits from a struct ipc64_perm.
    pub fn set_from(&mut self, raw: &[u8]) {
        let u = |o: usize| u32::from_ne_bytes(raw[o..o + 4].try_into().unwrap());
        self.uid = u(4);
        self.gid = u(8);
        self.mode = (self.mode & !0o777) | (u(20) & 0o777);
    }
}

/// One object of a registry.
pub struct Object<T> {
    pub id: i32,
    pub perm: IpcPerm,
    /// Last change (creation, IPC_SET, ...), seconds.
    pub ctime: i64,
    pub inner: T,
}

/// The objects of one kind, by index.
pub struct Registry<T> {
    objs: BTreeMap<u32, Object<T>>,
    next_seq: u32,
    /// Indexes below `next_idx` that are free again.
    free: std::collections::BTreeSet<u32>,
    next_idx: u32,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            objs: BTreeMap::new(),
            next_seq: 0,
            free: std::collections::BTreeSet::new(),
            next_idx: 0,
        }
    }
}

impl<T> Registry<T> {
    /// The object with `key` (never IPC_PRIVATE, never a removed one).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        if key == 0 {
            return None;
        }
        self.objs.values().find(|o| o.perm.key == key).map(|o| o.id)
    }

    fn index_of(id: i32) -> SysResult<(u32, u16)> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        Ok(((id % SEQ_MULTIPLIER) as u32, (id / SEQ_MULTIPLIER) as u16))
    }

    pub fn get(&self, id: i32) -> SysResult<&Object<T>> {
        let (idx, seq) = Self::index_of(id)?;
        self.objs
            .get(&idx)
            .filter(|o| o.perm.seq == seq)
            .ok_or(Errno::EINVAL)
    }

    pub fn get_mut(&mut self, id: i32) -> SysResult<&mut Object<T>> {
        let (idx, seq) = Self::index_of(id)?;
        self.objs
            .get_mut(&idx)
            .filter(|o| o.perm.seq == seq)
            .ok_or(Errno::EINVAL)
    }

    /// *_STAT commands name an index, not an identifier.
    pub fn by_index(&self, idx: i32) -> SysResult<&Object<T>> {
        if idx < 0 {
            return Err(Errno::EINVAL);
        }
        self.objs.get(&(idx as u32)).ok_or(Errno::EINVAL)
    }

    /// Adds an object at the lowest free index; ENOSPC past `max` objects.
    pub fn insert(&mut self, mut perm: IpcPerm, inner: T, max: u64) -> SysResult<i32> {
        if self.objs.len() as u64 >= max.min(SEQ_MULTIPLIER as u64) {
            return Err(Errno::ENOSPC);
        }
        let idx = match self.free.pop_first() {
            Some(i) => i,
            None => {
                self.next_idx += 1;
                self.next_idx - 1
            }
        };
        let seq = self.next_seq;
        self.next_seq = if seq >= SEQ_MAX { 0 } else { seq + 1 };
        perm.seq = seq as u16;
        let id = seq as i32 * SEQ_MULTIPLIER + idx as i32;
        self.objs.insert(
            idx,
            Object {
                id,
                perm,
                ctime: super::now(),
                inner,
            },
        );
        Ok(id)
    }

    pub fn remove(&mut self, id: i32) -> Option<Object<T>> {
        let (idx, seq) = Self::index_of(id).ok()?;
        if self.objs.get(&idx).is_some_and(|o| o.perm.seq == seq) {
            self.free.insert(idx);
            self.objs.remove(&idx)
        } else {
            None
        }
    }

    /// The highest index in use (what the *_INFO commands return).
    pub fn max_index(&self) -> i32 {
        self.objs.keys().next_back().map_or(0, |i| *i as i32)
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Object<T>> {
        self.objs.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Object<T>> {
        self.objs.values_mut()
    }

    /// Identifiers of the objects `f` picks.
    pub fn ids_where(&self, f: impl Fn(&Object<T>) -> bool) -> Vec<i32> {
        self.objs.values().filter(|o| f(o)).map(|o| o.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused_at_once() {
        let cred = Cred::root();
        let mut r: Registry<()> = Registry::default();
        let a = r.insert(IpcPerm::new(5, 0o600, &cred), (), 10).unwrap();
        assert_eq!(r.find_key(5), Some(a));
        r.remove(a).unwrap();
        let b = r.insert(IpcPerm::new(5, 0o600, &cred), (), 10).unwrap();
        assert_ne!(a, b, "same index, new sequence");
        assert_eq!(a % SEQ_MULTIPLIER, b % SEQ_MULTIPLIER);
        assert!(r.get(a).is_err());
        assert!(r.get(b).is_ok());
        assert_eq!(r.get(-1).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn permission_classes() {
        let mut owner = Cred::root();
        owner.euid = 1000;
        owner.egid = 1000;
        owner.fsgid = 1000;
        owner.cap_effective = 0;
        let p = IpcPerm::new(1, 0o640, &owner);
        assert!(p.allows(&owner, 0o6));
        let mut group = owner.clone();
        group.euid = 1001;
        assert!(p.allows(&group, 0o4) && !p.allows(&group, 0o2));
        let mut other = group.clone();
        other.egid = 1001;
        other.fsgid = 1001;
        assert!(!p.allows(&other, 0o4));
        assert_eq!(p.check_owner(&other), Err(Errno::EPERM));
    }
}
