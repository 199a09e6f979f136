//! The spec's seccomp profile, enforced by the kernel on the workload's
//! syscalls (the kernel process itself runs under atoll's own filter).
//! Same semantics as the host's seccomp: rules are matched on syscall
//! number and argument comparisons; the most restrictive matching action
//! wins; otherwise the default action.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    // Ordered from most to least restrictive (libseccomp's precedence).
    Kill,
    Trap,
    Errno(u32),
    Log,
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// (arg & mask) == value
    MaskedEq {
        mask: u64,
    },
}

#[derive(Clone, Debug)]
pub struct ArgCmp {
    pub index: usize,
    pub op: Op,
    pub value: u64,
}

impl ArgCmp {
    fn matches(&self, args: &[u64; 6]) -> bool {
        let a = args.get(self.index).copied().unwrap_or(0);
        match self.op {
            Op::Ne => a != self.value,
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Eq => a == self.value,
            Op::Ge => a >= self.value,
            Op::Gt => a > self.value,
            Op::MaskedEq { mask } => a & mask == self.value,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub nr: u64,
    pub action: Action,
    /// All must match (one rule per OCI syscall entry).
    pub args: Vec<ArgCmp>,
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub default: Action,
    pub rules: Vec<Rule>,
}

impl Profile {
    pub fn evaluate(&self, nr: u64, args: &[u64; 6]) -> Action {
        self.rules
            .iter()
            .filter(|r| r.nr == nr && r.args.iter().all(|c| c.matches(args)))
            .map(|r| r.action)
            .min()
            .unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_restrictive_match_wins() {
        let p = Profile {
            default: Action::Errno(1),
            rules: vec![
                Rule {
                    nr: 0,
                    action: Action::Allow,
                    args: vec![],
                },
                Rule {
                    nr: 1,
                    action: Action::Allow,
                    args: vec![],
                },
                Rule {
                    nr: 1,
                    action: Action::Errno(13),
                    args: vec![ArgCmp {
                        index: 0,
                        op: Op::Eq,
                        value: 2,
                    }],
                },
                Rule {
                    nr: 56,
                    action: Action::Allow,
                    args: vec![ArgCmp {
                        index: 0,
                        op: Op::MaskedEq { mask: 0x7E02_0000 },
                        value: 0,
                    }],
                },
            ],
        };
        assert_eq!(p.evaluate(0, &[0; 6]), Action::Allow);
        assert_eq!(p.evaluate(1, &[1, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(p.evaluate(1, &[2, 0, 0, 0, 0, 0]), Action::Errno(13));
        assert_eq!(p.evaluate(56, &[0x11, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            p.evaluate(56, &[0x1000_0000, 0, 0, 0, 0, 0]),
            Action::Errno(1)
        );
        assert_eq!(p.evaluate(99, &[0; 6]), Action::Errno(1));
    }
}
