//! The gofer's request decoder: what the file server makes of a message
//! from the application kernel (the side a compromised sandbox controls).
//! Any bytes must decode to a request or an errno, never a panic; a request
//! that decodes must respect the protocol's limits, and since the encoding
//! is canonical, encode it back to exactly the same bytes.
#![no_main]

use atoll_gofer::protocol::{MAX_NAME, MAX_TARGET, Request};
use atoll_gofer::server::check_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (tag, req) = Request::decode(data);
    assert_eq!(tag.is_some(), data.len() >= 4);
    let Ok(req) = req else {
        return;
    };
    let names: Vec<&[u8]> = match &req {
        Request::Walk { name, .. }
        | Request::Create { name, .. }
        | Request::Mkdir { name, .. }
        | Request::Mknod { name, .. }
        | Request::Link { name, .. }
        | Request::Unlink { name, .. } => vec![name],
        Request::Symlink { name, target, .. } => {
            assert!(target.len() <= MAX_TARGET);
            vec![name]
        }
        Request::Rename { old, new, .. } => vec![old, new],
        _ => vec![],
    };
    for name in names {
        assert!(name.len() <= MAX_NAME);
        // What the server checks before any system call: one component.
        if check_name(name).is_ok() {
            assert!(!name.is_empty() && !name.contains(&b'/') && !name.contains(&0));
            assert!(name != b"." && name != b"..");
        }
    }
    let tag = tag.expect("decoded requests have a tag");
    assert_eq!(req.encode(tag), data, "non-canonical request accepted");
});
