//! Randomness for the workload (getrandom, /dev/urandom, AT_RANDOM, ASLR).

/// Fills `buf` from the host's CSPRNG.
pub fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writing into the remainder of buf.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n > 0 {
            done += n as usize;
        }
    }
}

pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_ne_bytes(b)
}
