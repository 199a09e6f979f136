//! Container id validation.
//!
//! runc accepts ids matching `^[\w+\-.]+$`. The id becomes a directory name
//! under the state root and a cgroup name, so anything that could walk out
//! of those directories (`/`, `..`) or confuse logs (control characters)
//! is refused before any side effect.

use anyhow::{Result, bail};

/// Longest id accepted: one path component (NAME_MAX).
pub const MAX_ID_LEN: usize = 255;

/// Validates a container id, with an error that names what is wrong.
pub fn validate(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: it is empty");
    }
    if id.len() > MAX_ID_LEN {
        bail!(
            "invalid container id: it is {} bytes long, the limit is {MAX_ID_LEN}",
            id.len()
        );
    }
    if id == "." || id == ".." {
        bail!("invalid container id {id:?}: it is a path component");
    }
    if id.starts_with('.') {
        // `.atoll` under the state root holds atoll's own per-container data.
        bail!("invalid container id {id:?}: it must not start with '.'");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        bail!(
            "invalid container id {:?}: character {:?} is not allowed (allowed: letters, digits, '_', '+', '-', '.')",
            id,
            c
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y.z+1", &"f".repeat(64), &"a".repeat(255)] {
            validate(id).unwrap();
        }
    }

    #[test]
    fn refuses_bad_ids() {
        let long = "a".repeat(256);
        for (id, why) in [
            ("", "empty"),
            (".", "path component"),
            ("..", "path component"),
            ("a/b", "'/'"),
            ("../x", "'.'"),
            ("a\nb", "'\\n'"),
            ("a\x07", "'\\u{7}'"),
            ("a b", "' '"),
            (long.as_str(), "256 bytes"),
            (".hidden", "start with"),
        ] {
            let err = validate(id).unwrap_err().to_string();
            assert!(err.contains(why), "{id:?}: {err}");
        }
    }
}
