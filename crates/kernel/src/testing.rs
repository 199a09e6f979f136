//! Helpers of the crate's unit tests.

/// A xorshift64 generator from `seed` (not zero): the same sequence on
/// every run, so a failing randomized test fails again.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
