//! `allowed_sysctls`.
//!
//! Runtimes write a sysctl `a.b.c` to `/proc/sys/a/b/c`, turning dots into
//! slashes. A key that holds a `/` or an empty component (`..` after the
//! conversion) could name a file elsewhere under /proc/sys than the
//! allowed name it starts with, so only plain dotted names are matched.

use std::collections::HashMap;

use crate::model::SysctlPattern;

/// Bytes a sysctl name component may hold.
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// A plain dotted name: non-empty components of [A-Za-z0-9_-].
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte) && name.split('.').all(|c| !c.is_empty())
}

/// The first sysctl (in name order) that no pattern allows.
pub fn first_refused(
    sysctls: &HashMap<String, String>,
    allowed: &[SysctlPattern],
) -> Option<(String, String)> {
    let mut names: Vec<&String> = sysctls.keys().collect();
    names.sort();
    names
        .into_iter()
        .find(|n| !(is_plain_name(n) && allowed.iter().any(|p| p.matches(n))))
        .map(|n| (format!("linux.sysctl[{n}]"), sysctls[n].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_matching() {
        let allowed: Vec<SysctlPattern> = ["net.ipv4.ping_group_range", "kernel.shm*"]
            .iter()
            .map(|s| SysctlPattern::try_from(s.to_string()).unwrap())
            .collect();
        let cases = [
            ("net.ipv4.ping_group_range", true),
            ("kernel.shmmax", true),
            ("kernel.shm_rmid_forced", true),
            ("net.ipv4.ping_group_range2", false),
            ("kernel.domainname", false),
            ("kernel.shm/../../kernel/core_pattern", false),
            ("kernel.shm..kernel.core_pattern", false),
            ("kernel.shm.", false),
        ];
        for (name, ok) in cases {
            let m = HashMap::from([(name.to_string(), "1".to_string())]);
            assert_eq!(first_refused(&m, &allowed).is_none(), ok, "{name}");
        }
    }
}
