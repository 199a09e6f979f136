//! Host path comparison for `host_paths`.
//!
//! A bind source is checked twice: as written with `.` and `..` resolved
//! lexically, and as the kernel would resolve it (symlinks followed) for as
//! much of it as exists. Both must fall under an allowed prefix, so neither
//! `/data/shared/../../etc` nor a symlink planted inside `/data/shared`
//! that points at `/etc` gets through.
//!
//! This is a check at `create` time: a symlink swapped in afterwards is
//! outside its reach. The runtime closes that window by mounting the
//! [`resolve`]d path rather than the one in the spec.

use std::path::{Component, Path, PathBuf};

/// Resolves `.` and `..` without touching the file system. `..` at the root
/// stays at the root, as the kernel does. Relative paths stay relative.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// The path the kernel would reach: the longest leading part of `path`
/// that exists is canonicalized (symlinks followed, `..` applied after
/// them), the rest is appended and normalized lexically.
pub fn resolve(path: &Path) -> PathBuf {
    let comps: Vec<Component<'_>> = path.components().collect();
    for split in (1..=comps.len()).rev() {
        let head: PathBuf = comps[..split].iter().collect();
        if let Ok(real) = std::fs::canonicalize(&head) {
            let mut out = real;
            out.extend(&comps[split..]);
            return normalize(&out);
        }
    }
    normalize(path)
}

/// Whether `path` is `prefix` or below it, on component boundaries
/// (`/data/shared` covers `/data/shared/x`, not `/data/sharedX`).
pub fn is_under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

/// Whether `source` may be mounted given the allowed prefixes: both its
/// lexical and its resolved form must be under one of them. A prefix
/// counts as written and as resolved, so an operator may name a symlinked
/// directory.
pub fn allowed(source: &Path, prefixes: &[PathBuf]) -> bool {
    let forms: Vec<PathBuf> = prefixes
        .iter()
        .flat_map(|p| [normalize(p), resolve(p)])
        .collect();
    let under_any = |p: &Path| forms.iter().any(|f| is_under(p, f));
    under_any(&normalize(source)) && under_any(&resolve(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        let cases = [
            ("/data/shared/../../etc", "/etc"),
            ("/data/./shared//x/", "/data/shared/x"),
            ("/../../etc", "/etc"),
            ("/", "/"),
            ("a/../../b", "../b"),
            ("../..", "../.."),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(Path::new(input)), Path::new(want), "{input}");
        }
    }

    #[test]
    fn boundaries() {
        let p = [PathBuf::from("/nonexistent-atoll/shared")];
        let cases = [
            ("/nonexistent-atoll/shared", true),
            ("/nonexistent-atoll/shared/x/y", true),
            ("/nonexistent-atoll/sharedX", false),
            ("/nonexistent-atoll/shared/../sharedX", false),
            ("/nonexistent-atoll/shared/../../etc", false),
            ("/nonexistent-atoll", false),
        ];
        for (src, ok) in cases {
            assert_eq!(allowed(Path::new(src), &p), ok, "{src}");
        }
    }

    #[test]
    fn symlinks_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let shared = root.join("shared");
        let outside = root.join("outside");
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, shared.join("escape")).unwrap();
        std::os::unix::fs::symlink(shared.join("sub"), shared.join("inside")).unwrap();
        let allow = [shared.clone()];

        assert!(allowed(&shared.join("sub"), &allow));
        assert!(allowed(&shared.join("inside"), &allow));
        assert!(!allowed(&shared.join("escape"), &allow));
        // Not existing below the link still resolves through it.
        assert!(!allowed(&shared.join("escape/not-yet"), &allow));
        // `..` after a symlink is applied to the link's target.
        assert!(!allowed(&shared.join("escape/../outside"), &allow));
        assert_eq!(resolve(&shared.join("escape/x")), outside.join("x"));

        // A prefix that is itself a symlink covers its target.
        let alias = root.join("alias");
        std::os::unix::fs::symlink(&shared, &alias).unwrap();
        assert!(allowed(&shared.join("sub"), &[alias]));
    }
}
