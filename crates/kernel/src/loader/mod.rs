//! Loading programs: ELF executables (static and dynamic, with their
//! PT_INTERP), `#!` scripts, and the initial stack (argv, envp, auxv).

pub mod elf;
pub mod stack;

pub use elf::{Image, load_elf, map_image};
pub use stack::build_stack;

/// Result of looking at a file's first bytes.
pub enum Format {
    Elf,
    /// `#!interpreter [arg]`
    Script {
        interp: Vec<u8>,
        arg: Option<Vec<u8>>,
    },
}

/// Classifies an executable by its header bytes.
pub fn classify(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"\x7fELF") {
        return Some(Format::Elf);
    }
    if head.starts_with(b"#!") {
        let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end.min(256)];
        let line = trim(line);
        if line.is_empty() {
            return None;
        }
        let (interp, rest) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
            Some(i) => (&line[..i], trim(&line[i..])),
            None => (line, &b""[..]),
        };
        return Some(Format::Script {
            interp: interp.to_vec(),
            arg: (!rest.is_empty()).then(|| rest.to_vec()),
        });
    }
    None
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        match classify(b"#!/bin/sh -e\necho") {
            Some(Format::Script { interp, arg }) => {
                assert_eq!(interp, b"/bin/sh");
                assert_eq!(arg.as_deref(), Some(&b"-e"[..]));
            }
            _ => panic!(),
        }
        match classify(b"#! /usr/bin/env python3  \n") {
            Some(Format::Script { interp, arg }) => {
                assert_eq!(interp, b"/usr/bin/env");
                assert_eq!(arg.as_deref(), Some(&b"python3"[..]));
            }
            _ => panic!(),
        }
        assert!(classify(b"#!\n").is_none());
        assert!(matches!(classify(b"\x7fELF\x02"), Some(Format::Elf)));
        assert!(classify(b"plain text").is_none());
    }
}
