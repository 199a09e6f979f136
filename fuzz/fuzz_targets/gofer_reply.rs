//! The gofer's reply decoder, as the application kernel's client uses it.
//! Any bytes must decode to a reply or an errno, never a panic; errors are
//! positive errnos; a decoded reply must encode and decode to itself.
#![no_main]

use atoll_gofer::protocol::{MAX_MESSAGE, MAX_NAME, MAX_TARGET, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (tag, rep) = Reply::decode(data);
    assert_eq!(tag.is_some(), data.len() >= 4);
    let Some(tag) = tag else {
        return;
    };
    match &rep {
        Err(e) => assert!(*e > 0, "errno {e}"),
        Ok(Reply::Target(t)) => assert!(t.len() <= MAX_TARGET),
        Ok(Reply::Entries { entries, .. }) => {
            assert!(entries.len() <= MAX_MESSAGE / 13);
            assert!(entries.iter().all(|e| e.name.len() <= MAX_NAME));
        }
        Ok(_) => {}
    }
    let again = Reply::encode(tag, &rep);
    assert_eq!(Reply::decode(&again), (Some(tag), rep));
});
