//! Signal names as `kill` accepts them: `TERM`, `SIGTERM`, `15`, `sigterm`,
//! and the real-time forms `RTMIN+3` / `SIGRTMAX-1`.

use anyhow::{Result, bail};

const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

/// Parses a signal name or number into its number.
pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=SIGRTMAX).contains(&n) {
            return Ok(n);
        }
        bail!("unknown signal {s:?}: numbers go from 1 to {SIGRTMAX}");
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        if rest.is_empty() {
            return Some(base);
        }
        let off: i32 = rest.get(1..)?.parse().ok()?;
        let n = base + sign * off;
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN")
        && (rest.is_empty() || rest.starts_with('+'))
        && let Some(n) = rt(SIGRTMIN, rest, 1)
    {
        return Ok(n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX")
        && (rest.is_empty() || rest.starts_with('-'))
        && let Some(n) = rt(SIGRTMAX, rest, -1)
    {
        return Ok(n);
    }
    bail!("unknown signal {s:?}")
}

/// The conventional name of a signal number (`SIGTERM`), for messages.
pub fn name(n: i32) -> String {
    match NAMES.iter().find(|(_, v)| *v == n) {
        Some((k, _)) => format!("SIG{k}"),
        None if (SIGRTMIN..=SIGRTMAX).contains(&n) => format!("SIGRTMIN+{}", n - SIGRTMIN),
        None => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").unwrap(), 15);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sigkill").unwrap(), 9);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("SIGRTMIN").unwrap(), 34);
        assert_eq!(parse("RTMIN+2").unwrap(), 36);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), 63);
        assert_eq!(name(15), "SIGTERM");
    }

    #[test]
    fn unknown_signals() {
        for bad in [
            "", "0", "65", "-1", "SIGFOO", "RTMIN+40", "TERMX", "RTMAX+1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
