//! Egress rules: where the workload may connect and send, decided by the
//! stack itself at connect and sendto (whatever CNI the cluster runs).
//!
//! Order: a matching deny rule refuses; if the tenant has allow rules,
//! the destination must match one; built-in denials (cloud metadata, the
//! node's own addresses, host loopback) refuse unless an allow rule at
//! least as specific as the denied range admits the destination (an
//! `0.0.0.0/0` allow does not open the metadata service; an allow of the
//! node's `10.0.0.1/32` port 53 opens exactly that).

use std::net::IpAddr;

use crate::Errno;
use crate::config::Cidr;
use crate::stack::Proto;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRule {
    pub cidr: Cidr,
    /// Inclusive port ranges; empty: any port.
    pub ports: Vec<(u16, u16)>,
    /// None: any protocol.
    pub proto: Option<Proto>,
    /// How the rule is named in refusals (`egress_deny[2]`, `metadata`).
    pub name: String,
}

impl EgressRule {
    pub fn matches(&self, dst: &IpAddr, port: u16, proto: Proto) -> bool {
        self.cidr.contains(dst)
            && self.proto.is_none_or(|p| p == proto)
            && (self.ports.is_empty()
                || proto == Proto::Icmp
                || self.ports.iter().any(|(a, b)| (*a..=*b).contains(&port)))
    }

    /// Parses a port list: `53`, `8000-9000`, comma separated.
    pub fn parse_ports(s: &str) -> Result<Vec<(u16, u16)>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let p = |x: &str| {
                x.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{part:?}: ports are 1 to 65535"))
            };
            let (a, b) = (p(a)?, p(b)?);
            if a > b {
                return Err(format!("{part:?}: range runs backwards"));
            }
            out.push((a, b));
        }
        Ok(out)
    }

    pub fn parse_proto(s: &str) -> Result<Option<Proto>, String> {
        match s {
            "" | "any" => Ok(None),
            "tcp" => Ok(Some(Proto::Tcp)),
            "udp" => Ok(Some(Proto::Udp)),
            "icmp" => Ok(Some(Proto::Icmp)),
            o => Err(format!("protocol {o:?}: expected tcp, udp, icmp or any")),
        }
    }
}

/// One refused connect or send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub dst: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub rule: String,
}

#[derive(Clone, Default, Debug)]
pub struct Egress {
    pub allow: Vec<EgressRule>,
    pub deny: Vec<EgressRule>,
    pub builtin: Vec<EgressRule>,
    /// Refusals not yet collected by the kernel (audit, metrics).
    pub refused: Vec<Refusal>,
    pub refused_total: u64,
}

impl Egress {
    /// The built-in denials: link-local metadata services, and the node's
    /// own addresses and loopback (`node`).
    pub fn builtin(node: &[IpAddr]) -> Vec<EgressRule> {
        let mut v = vec![
            EgressRule {
                cidr: Cidr::parse("169.254.169.254").unwrap(),
                ports: Vec::new(),
                proto: None,
                name: "builtin: metadata 169.254.169.254".into(),
            },
            EgressRule {
                cidr: Cidr::parse("fd00:ec2::254").unwrap(),
                ports: Vec::new(),
                proto: None,
                name: "builtin: metadata fd00:ec2::254".into(),
            },
            EgressRule {
                cidr: Cidr::parse("127.0.0.0/8").unwrap(),
                ports: Vec::new(),
                proto: None,
                name: "builtin: host loopback".into(),
            },
            EgressRule {
                cidr: Cidr::parse("::1").unwrap(),
                ports: Vec::new(),
                proto: None,
                name: "builtin: host loopback".into(),
            },
        ];
        for a in node {
            if a.is_loopback() {
                continue;
            }
            v.push(EgressRule {
                cidr: Cidr::new(*a, if a.is_ipv4() { 32 } else { 128 }),
                ports: Vec::new(),
                proto: None,
                name: format!("builtin: node address {a}"),
            });
        }
        v
    }

    /// The rule that refuses `dst:port`, if any.
    pub fn refusing(&self, dst: IpAddr, port: u16, proto: Proto) -> Option<String> {
        if let Some(r) = self.deny.iter().find(|r| r.matches(&dst, port, proto)) {
            return Some(r.name.clone());
        }
        let allowed: Vec<&EgressRule> = self
            .allow
            .iter()
            .filter(|r| r.matches(&dst, port, proto))
            .collect();
        if !self.allow.is_empty() && allowed.is_empty() {
            return Some("egress_allow: no rule matches".into());
        }
        for b in self.builtin.iter().filter(|r| r.matches(&dst, port, proto)) {
            let lifted = allowed
                .iter()
                .any(|a| a.cidr.prefix >= b.cidr.prefix && b.cidr.contains(&a.cidr.addr));
            if !lifted {
                return Some(b.name.clone());
            }
        }
        None
    }

    /// Checks a destination; a refusal is recorded and is EPERM, as a
    /// host firewall dropping locally made packets answers.
    pub fn check(&mut self, dst: IpAddr, port: u16, proto: Proto) -> Result<(), Errno> {
        match self.refusing(dst, port, proto) {
            None => Ok(()),
            Some(rule) => {
                self.refused_total += 1;
                if self.refused.len() < 1024 {
                    self.refused.push(Refusal {
                        dst,
                        port,
                        proto,
                        rule,
                    });
                }
                Err(libc::EPERM)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(c: &str, ports: &str, proto: &str, name: &str) -> EgressRule {
        EgressRule {
            cidr: Cidr::parse(c).unwrap(),
            ports: EgressRule::parse_ports(ports).unwrap(),
            proto: EgressRule::parse_proto(proto).unwrap(),
            name: name.into(),
        }
    }

    #[test]
    fn defaults_deny_metadata_and_node() {
        let node: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let mut e = Egress {
            builtin: Egress::builtin(&node),
            ..Default::default()
        };
        assert_eq!(
            e.check("169.254.169.254".parse().unwrap(), 80, Proto::Tcp),
            Err(libc::EPERM)
        );
        assert_eq!(
            e.check("fd00:ec2::254".parse().unwrap(), 80, Proto::Tcp),
            Err(libc::EPERM)
        );
        assert_eq!(
            e.check("10.0.0.1".parse().unwrap(), 53, Proto::Udp),
            Err(libc::EPERM)
        );
        assert!(e.check("10.0.0.2".parse().unwrap(), 53, Proto::Udp).is_ok());
        assert_eq!(e.refused.len(), 3);
        assert!(e.refused[0].rule.contains("metadata"));
        // A broad allow does not lift the metadata denial; a specific one
        // lifts a node address for its port only.
        e.allow = vec![
            rule("0.0.0.0/0", "", "any", "egress_allow[0]"),
            rule("10.0.0.1/32", "53", "udp", "egress_allow[1]"),
        ];
        assert!(
            e.refusing("169.254.169.254".parse().unwrap(), 80, Proto::Tcp)
                .is_some()
        );
        assert!(
            e.refusing("10.0.0.1".parse().unwrap(), 53, Proto::Udp)
                .is_none()
        );
        assert!(
            e.refusing("10.0.0.1".parse().unwrap(), 22, Proto::Tcp)
                .is_some()
        );
        assert!(
            e.refusing("8.8.8.8".parse().unwrap(), 443, Proto::Tcp)
                .is_none()
        );
    }

    #[test]
    fn allow_lists_and_denies() {
        let mut e = Egress {
            allow: vec![rule("10.1.0.0/16", "80,8000-8100", "tcp", "a")],
            deny: vec![rule("10.1.2.0/24", "", "any", "d")],
            ..Default::default()
        };
        assert!(e.check("10.1.0.5".parse().unwrap(), 80, Proto::Tcp).is_ok());
        assert!(
            e.check("10.1.0.5".parse().unwrap(), 8050, Proto::Tcp)
                .is_ok()
        );
        assert!(
            e.check("10.1.0.5".parse().unwrap(), 81, Proto::Tcp)
                .is_err()
        );
        assert!(
            e.check("10.1.0.5".parse().unwrap(), 80, Proto::Udp)
                .is_err()
        );
        assert!(
            e.check("10.1.2.5".parse().unwrap(), 80, Proto::Tcp)
                .is_err()
        );
        assert_eq!(e.refused.last().unwrap().rule, "d");
        assert!(EgressRule::parse_ports("9-1").is_err());
        assert!(EgressRule::parse_ports("0").is_err());
        assert!(EgressRule::parse_proto("sctp").is_err());
    }
}
