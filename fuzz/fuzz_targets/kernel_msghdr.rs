//! sendmsg's arguments as the kernel decodes them from workload memory:
//! the msghdr, its iovec array, its address and its control messages
//! (SCM_RIGHTS, SCM_CREDENTIALS). The input is a small workload memory at
//! `BASE` with the msghdr at its start; pointers outside it are EFAULT.
//! The limits are those `sendmsg_one` and `user_iovec_array` apply before
//! they read.
#![no_main]

use atoll_kernel::errno::{Errno, SysResult};
use atoll_kernel::net::SockAddr;
use atoll_kernel::net::msg::{Cmsg, Cmsgs, MSGHDR_SIZE, MsgHdr, SCM_MAX_FD};
use atoll_kernel::vfs::iov::{IOVEC_SIZE, iovec_ranges};
use libfuzzer_sys::fuzz_target;

/// Where the input sits in the pretend address space.
const BASE: u64 = 0x10_0000;
/// syscalls/fs.rs MAX_RW: Linux's MAX_RW_COUNT.
const MAX_RW: usize = 0x7fff_f000;

fuzz_target!(|data: &[u8]| {
    let read = |addr: u64, len: usize| -> SysResult<&[u8]> {
        let start = addr.checked_sub(BASE).ok_or(Errno::EFAULT)? as usize;
        let end = start.checked_add(len).ok_or(Errno::EFAULT)?;
        data.get(start..end).ok_or(Errno::EFAULT)
    };
    let Ok(raw) = read(BASE, MSGHDR_SIZE) else {
        return;
    };
    let h = MsgHdr::parse(raw.try_into().unwrap());

    // user_iovec_array
    if h.iovlen <= 1024
        && let Ok(raw) = read(h.iov, h.iovlen as usize * IOVEC_SIZE)
    {
        for max in [MAX_RW, 4096, 1] {
            let ranges = iovec_ranges(raw, max);
            assert!(ranges.len() as u64 <= h.iovlen);
            assert!(ranges.iter().all(|(_, n)| *n > 0));
            let total: usize = ranges.iter().map(|(_, n)| n).sum();
            assert!(total <= max);
        }
    }

    // read_addr
    if h.name != 0
        && h.namelen > 0
        && h.namelen <= 128
        && let Ok(b) = read(h.name, h.namelen as usize)
        && let Ok(a) = SockAddr::parse(b)
    {
        assert!(a.to_bytes().len() <= 2 + 109);
    }

    // parse_control
    if h.control != 0
        && h.controllen > 0
        && h.controllen <= 64 * 1024
        && let Ok(buf) = read(h.control, h.controllen as usize)
    {
        let mut fds = 0;
        let mut it = Cmsgs::new(buf);
        for msg in it.by_ref() {
            match msg {
                Ok(Cmsg::Rights(nums)) => fds += nums.len(),
                Ok(Cmsg::Credentials(_)) => {}
                // Left to the socket's protocol, which bounds what it reads.
                Ok(Cmsg::Level(m)) => assert!(m.data.len() <= buf.len()),
                Err(e) => {
                    assert_eq!(e, Errno::EINVAL);
                    break;
                }
            }
        }
        assert!(fds <= SCM_MAX_FD);
        assert!(it.next().is_none(), "control messages after an error");
    }
});
