//! What the kernel makes of a path argument's bytes (after `read_path`
//! has taken them up to the NUL): the components a walk visits and, for
//! calls that create, remove or rename, the parent to walk and the last
//! name. Also the `#!` line of a script execve loads (interpreter path and
//! argument). None may panic; names must be single components.
#![no_main]

use atoll_kernel::errno::Errno;
use atoll_kernel::loader::{Format, classify};
use atoll_kernel::vfs::dentry::{NAME_MAX, split_parent, split_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (comps, trailing_slash) = split_path(data);
    assert!(comps.iter().all(|c| !c.is_empty() && !c.contains(&b'/')));
    assert_eq!(
        comps.concat().len(),
        data.iter().filter(|b| **b != b'/').count()
    );
    assert_eq!(trailing_slash, data.len() > 1 && data.ends_with(b"/"));

    match split_parent(data) {
        Err(e) => assert!(
            (e == Errno::ENOENT && data.is_empty())
                || (e == Errno::ENAMETOOLONG && comps.last().is_some_and(|c| c.len() > NAME_MAX)),
            "{e:?}"
        ),
        // Only slashes: the root itself.
        Ok(None) => assert!(!data.is_empty() && comps.is_empty()),
        Ok(Some((dir, name))) => {
            assert_eq!(Some(&name), comps.last());
            assert!(name.len() <= NAME_MAX);
            assert!(!dir.is_empty());
            // The parent's components are the path's but the last ("."
            // stands for none before a relative single name).
            let (parent, _) = split_path(dir);
            if !(dir == b"." && comps.len() == 1 && data[0] != b'/') {
                assert_eq!(parent, comps[..comps.len() - 1]);
            }
        }
    }

    if let Some(Format::Script { interp, arg }) = classify(data) {
        assert!(!interp.is_empty() && interp.len() <= 254);
        assert!(
            !interp
                .iter()
                .any(|b| *b == b'\n' || *b == b' ' || *b == b'\t')
        );
        assert!(arg.is_none_or(|a| !a.is_empty() && !a.contains(&b'\n')));
    }
});
