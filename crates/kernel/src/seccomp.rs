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

/// Syscall numbers the index covers (every x86_64 number; an x32 or
/// out-of-range number is looked up among `rest`).
const INDEXED: u64 = 512;

/// What the index holds for one syscall number.
#[derive(Clone, Copy, Debug)]
enum Decision {
    /// No rule names it: the default action.
    Default,
    /// Every rule naming it matches whatever the arguments (the
    /// common case: Docker's and containerd's profiles list about 400
    /// names without argument checks): the most restrictive of them.
    Fixed(Action),
    /// Some rule naming it compares arguments: its rules are
    /// `rules[start..end]`.
    Rules { start: u32, end: u32 },
}

/// A seccomp profile, indexed by syscall number once when it is built:
/// `evaluate` runs on every syscall of the workload, and a linear scan
/// of a container runtime's default profile (~440 rules) cost ~200 ns a
/// syscall, a third of a patched syscall's whole round trip. Linux keeps
/// a bitmap of the numbers whose filter result is a constant
/// (`seccomp_cache_check_allow`) for the same reason.
#[derive(Clone, Debug)]
pub struct Profile {
    default: Action,
    /// Every rule, sorted by syscall number (stable: order within a
    /// number does not change a result, which is the most restrictive
    /// match).
    rules: Vec<Rule>,
    index: Vec<Decision>,
    /// Rules for numbers from [`INDEXED`] on.
    rest: Vec<Rule>,
}

impl Profile {
    pub fn new(default: Action, rules: Vec<Rule>) -> Profile {
        let (mut rules, rest): (Vec<Rule>, Vec<Rule>) =
            rules.into_iter().partition(|r| r.nr < INDEXED);
        rules.sort_by_key(|r| r.nr);
        let mut index = vec![Decision::Default; INDEXED as usize];
        let mut start = 0;
        while start < rules.len() {
            let nr = rules[start].nr;
            let end = start + rules[start..].iter().take_while(|r| r.nr == nr).count();
            let group = &rules[start..end];
            index[nr as usize] = if group.iter().all(|r| r.args.is_empty()) {
                Decision::Fixed(group.iter().map(|r| r.action).min().expect("non-empty"))
            } else {
                Decision::Rules {
                    start: start as u32,
                    end: end as u32,
                }
            };
            start = end;
        }
        Profile {
            default,
            rules,
            index,
            rest,
        }
    }

    pub fn evaluate(&self, nr: u64, args: &[u64; 6]) -> Action {
        let candidates = match self.index.get(nr as usize) {
            Some(Decision::Default) => return self.default,
            Some(Decision::Fixed(a)) => return *a,
            Some(Decision::Rules { start, end }) => &self.rules[*start as usize..*end as usize],
            None => &self.rest[..],
        };
        candidates
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
        let p = Profile::new(
            Action::Errno(1),
            vec![
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
        );
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

    /// The index answers as a scan of every rule does, for profiles of
    /// random rules (numbers inside and outside the index, with and
    /// without argument checks, several per number) and random calls.
    #[test]
    fn the_index_agrees_with_a_scan_of_every_rule() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let actions = [
            Action::Kill,
            Action::Trap,
            Action::Errno(1),
            Action::Errno(38),
            Action::Log,
            Action::Allow,
        ];
        let ops = [Op::Ne, Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt];
        for _ in 0..200 {
            let nrs = [0, 1, 2, 59, 511, 512, 0x4000_0001];
            let rules: Vec<Rule> = (0..next() % 40)
                .map(|_| Rule {
                    nr: nrs[(next() % nrs.len() as u64) as usize],
                    action: actions[(next() % actions.len() as u64) as usize],
                    args: (0..next() % 3)
                        .map(|_| ArgCmp {
                            index: (next() % 3) as usize,
                            op: if next().is_multiple_of(4) {
                                Op::MaskedEq { mask: next() % 8 }
                            } else {
                                ops[(next() % ops.len() as u64) as usize]
                            },
                            value: next() % 4,
                        })
                        .collect(),
                })
                .collect();
            let default = actions[(next() % actions.len() as u64) as usize];
            let p = Profile::new(default, rules.clone());
            for _ in 0..50 {
                let nr = nrs[(next() % nrs.len() as u64) as usize];
                let args = [next() % 4, next() % 4, next() % 4, 0, 0, 0];
                let scan = rules
                    .iter()
                    .filter(|r| r.nr == nr && r.args.iter().all(|c| c.matches(&args)))
                    .map(|r| r.action)
                    .min()
                    .unwrap_or(default);
                assert_eq!(
                    p.evaluate(nr, &args),
                    scan,
                    "nr {nr} args {args:?} rules {rules:?}"
                );
            }
        }
    }
}
