//! `run_as_non_root`, `allowed_uids`, `allowed_gids`.

use oci_spec::runtime::Process;

use crate::model::IdRange;

/// The ids an exec `--user` argument names: `uid[:gid]`, numbers or
/// `root`. Other names are resolved by the caller into the process's
/// user, which is checked as well.
pub fn parse_user_arg(s: &str) -> (Option<u32>, Option<u32>) {
    let id = |p: &str| match p {
        "root" => Some(0),
        p => p.parse().ok(),
    };
    match s.split_once(':') {
        Some((u, g)) => (id(u), id(g)),
        None => (id(s), None),
    }
}

/// uid 0 in the `--user` argument or the process.
pub fn root_user(process: Option<&Process>, user_arg: Option<&str>) -> Option<(String, String)> {
    if let Some(arg) = user_arg
        && parse_user_arg(arg).0 == Some(0)
    {
        return Some(("process.user".to_string(), arg.to_string()));
    }
    let uid = process.map_or(0, |p| p.user().uid());
    (uid == 0).then(|| ("process.user.uid".to_string(), "0".to_string()))
}

pub fn uid_outside(
    process: Option<&Process>,
    user_arg: Option<&str>,
    ranges: &[IdRange],
) -> Option<(String, String)> {
    if let Some(arg) = user_arg
        && let (Some(uid), _) = parse_user_arg(arg)
        && !IdRange::any_contains(ranges, uid)
    {
        return Some(("process.user".to_string(), arg.to_string()));
    }
    let uid = process.map_or(0, |p| p.user().uid());
    (!IdRange::any_contains(ranges, uid)).then(|| ("process.user.uid".to_string(), uid.to_string()))
}

pub fn gid_outside(
    process: Option<&Process>,
    user_arg: Option<&str>,
    ranges: &[IdRange],
) -> Option<(String, String)> {
    if let Some(arg) = user_arg
        && let (_, Some(gid)) = parse_user_arg(arg)
        && !IdRange::any_contains(ranges, gid)
    {
        return Some(("process.user".to_string(), arg.to_string()));
    }
    let gid = process.map_or(0, |p| p.user().gid());
    if !IdRange::any_contains(ranges, gid) {
        return Some(("process.user.gid".to_string(), gid.to_string()));
    }
    let extra = process
        .and_then(|p| p.user().additional_gids().as_deref())
        .unwrap_or_default();
    extra
        .iter()
        .enumerate()
        .find(|(_, g)| !IdRange::any_contains(ranges, **g))
        .map(|(i, g)| (format!("process.user.additionalGids[{i}]"), g.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_args() {
        let cases = [
            ("0:0", (Some(0), Some(0))),
            ("0", (Some(0), None)),
            ("root", (Some(0), None)),
            ("root:root", (Some(0), Some(0))),
            ("1000:1000", (Some(1000), Some(1000))),
            ("www-data", (None, None)),
            ("1000:staff", (Some(1000), None)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_user_arg(s), want, "{s}");
        }
    }
}
